//! The std driver's pool sockets ([`SocketCommand`](dhtmeet_core::SocketCommand)):
//! sending from them, and waiting on them beside the node's own socket.
//!
//! With no pool socket open the driver blocks in `recv_from` on its one socket, as it
//! always did. Once the machine has pool sockets, the driver waits in one `poll(2)`
//! (`rustix::event::poll`, no `unsafe`) over the node socket and every pool socket, with
//! the same timeout, then reads each ready socket without blocking, up to
//! [`MAX_READ_BATCH`] datagrams. The waker still works: its datagram arrives on the node
//! socket, which is in the set. One thread, no busy-polling; the cost is one `Vec` of
//! poll entries per wait while a pool is open, and `poll` is O(sockets) in the kernel
//! (at most 257).

use std::io;
use std::time::Duration;

use dhtmeet_core::{SansIo, Transmit, socket_destination};
use dhtmeet_runtime::pool::{TtlOverride, read_pool_burst};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::Driver;

impl<M: SansIo> Driver<M> {
    /// Open pool sockets.
    pub fn pool_sockets(&self) -> usize {
        self.pool.len()
    }

    /// Does what the machine asks of its pool; whether it asked anything.
    pub(crate) fn apply_socket_commands(&mut self) -> bool {
        self.pool.apply(&mut self.machine, &self.socket, Ok)
    }

    /// Sends a datagram that names a pool socket or a TTL (the uncommon case).
    pub(crate) fn send_special(&mut self, t: &Transmit) {
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
        let local = socket.local_addr();
        let sent = local
            .and_then(|local| {
                socket_destination(local, t.destination)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))
            })
            .and_then(|to| {
                let _ttl = t
                    .ttl
                    .map(|ttl| TtlOverride::set(socket, to, ttl))
                    .transpose()?;
                socket.send_to(&t.contents, to)
            });
        match sent {
            Ok(_) => self.stats.sent += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                tracing::debug!(destination = %t.destination, source_port = ?t.source_port, error = %e, "send failed");
            }
        }
    }

    /// Waits up to `wait` (`None`: for ever) for the node socket or any pool socket,
    /// and reads what is ready. Errors of the node socket are fatal as in the
    /// one-socket wait; a pool socket's are logged and that socket is read no further
    /// this time.
    pub(crate) fn wait_with_pool(&mut self, wait: Option<Duration>) -> io::Result<()> {
        // At most an hour per wait (the loop waits again): `poll` without `ppoll` takes
        // at most `c_int::MAX` milliseconds.
        let hour = Timespec {
            tv_sec: 3600,
            tv_nsec: 0,
        };
        let timeout = wait.map(|w| Timespec::try_from(w).unwrap_or(hour).min(hour));
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = std::iter::once(&self.socket)
                .chain(self.pool.sockets().iter().map(|p| &p.socket))
                .map(|s| PollFd::new(s, PollFlags::IN))
                .collect();
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            fds.iter().map(|f| !f.revents().is_empty()).collect()
        };
        if ready[0] {
            self.read_ready()?;
        }
        for (index, _) in ready[1..].iter().enumerate().filter(|(_, r)| **r) {
            self.read_pool_socket(index);
        }
        Ok(())
    }

    /// Reads what is waiting on the pool socket at `index` (non-blocking), up to
    /// [`MAX_READ_BATCH`] datagrams, into the machine with that socket's address.
    fn read_pool_socket(&mut self, index: usize) {
        let Some(pool) = self.pool.sockets().get(index) else {
            return;
        };
        self.stats.received +=
            read_pool_burst(&pool.socket, pool.local, &mut self.buf, &mut self.machine);
    }
}
