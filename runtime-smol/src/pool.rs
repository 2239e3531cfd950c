//! The smol driver's pool sockets ([`SocketCommand`](dhtmeet_core::SocketCommand)):
//! sending from them, and waiting on them beside the node's own socket.
//!
//! Each pool socket is an `Async<UdpSocket>` registered with async-io's reactor (one
//! epoll/kqueue for the process). The driver's select gains one branch, a future that
//! polls each pool socket's readiness ([`Async::poll_readable`]) in turn, starting after
//! the one served last so a busy socket cannot starve the others; the first ready one
//! is read without blocking, up to [`MAX_READ_BATCH`] datagrams. No task per socket and
//! no channel: closing a socket is dropping it (which deregisters it), and with no pool
//! open the branch is a check of an empty `Vec`. The cost while a pool is open: each
//! wake-up of the driver looks at every pool socket once (a mutex each, at most 256).

use std::io;
use std::net::UdpSocket;
use std::task::Poll;

use async_io::Async;
use dhtmeet_core::{SansIo, Transmit, socket_destination};
use dhtmeet_runtime::pool::{SocketPool, TtlOverride, read_pool_burst};

use crate::Driver;

impl<M: SansIo> Driver<M> {
    /// Open pool sockets.
    pub fn pool_sockets(&self) -> usize {
        self.pool.len()
    }

    /// Does what the machine asks of its pool; whether it asked anything.
    pub(crate) fn apply_socket_commands(&mut self) -> bool {
        self.pool
            .apply(&mut self.machine, self.socket.get_ref(), Async::new)
    }

    /// Sends a datagram that names a pool socket or a TTL (the uncommon case).
    pub(crate) async fn send_special(&mut self, t: &Transmit) {
        let socket = match t.source_port {
            None => &self.socket,
            Some(port) => match self.pool.get(port) {
                Some(pool) => &pool.socket,
                None => {
                    self.stats.no_pool_socket += 1;
                    tracing::debug!(port, destination = %t.destination, "no pool socket of that port");
                    return;
                }
            },
        };
        let sent = async {
            let local = socket.get_ref().local_addr()?;
            let to = socket_destination(local, t.destination)
                .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
            // Restored when dropped, after the send or if the run is dropped meanwhile.
            let _ttl = t
                .ttl
                .map(|ttl| TtlOverride::set(socket.get_ref(), to, ttl))
                .transpose()?;
            socket.send_to(&t.contents, to).await
        }
        .await;
        match sent {
            Ok(_) => self.stats.sent += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                tracing::debug!(destination = %t.destination, source_port = ?t.source_port, error = %e, "send failed");
            }
        }
    }

    /// Reads what is waiting on the pool socket at `index` (non-blocking), up to
    /// [`MAX_READ_BATCH`] datagrams, into the machine with that socket's address.
    pub(crate) fn read_pool_socket(&mut self, index: usize) {
        self.pool.served(index);
        let Some(pool) = self.pool.sockets().get(index) else {
            return;
        };
        self.stats.received += read_pool_burst(
            pool.socket.get_ref(),
            pool.local,
            &mut self.buf,
            &mut self.machine,
        );
    }
}

/// The index of a pool socket that is readable (or has an error to report); pending
/// for ever while the pool is empty.
pub(crate) async fn readable(pool: &SocketPool<Async<UdpSocket>>) -> usize {
    std::future::poll_fn(|cx| {
        let sockets = pool.sockets();
        let start = pool.next_index();
        for index in (start..sockets.len()).chain(0..start) {
            if sockets[index].socket.poll_readable(cx).is_ready() {
                return Poll::Ready(index);
            }
        }
        Poll::Pending
    })
    .await
}
