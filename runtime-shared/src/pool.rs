//! The pool of extra sockets both drivers keep for their machine (see
//! [`SocketCommand`]): what to bind, the bound, and datagrams sent with a TTL.
//!
//! A machine asks for pool sockets with [`SocketCommand::Open`] and releases them with
//! [`SocketCommand::Close`]; [`SocketPool::apply`] does both and reports each socket to
//! the machine. Each runtime wraps the bound sockets in its own type (`UdpSocket` made
//! non-blocking for `dhtmeet-std`, `Async<UdpSocket>` for `dhtmeet-smol`) and waits on
//! them its own way; the pool only keeps them, at most [`MAX_POOL_SOCKETS`].

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use dhtmeet_core::{MAX_POOL_SOCKETS, SansIo, SocketCommand, canonical_remote};

use crate::{BurstStep, MAX_READ_BATCH, burst_step};

/// One pool socket: its local address and the runtime's socket.
#[derive(Debug)]
pub struct PoolSocket<S> {
    /// Where it is bound (the node socket's IP, a port of the OS's choosing).
    pub local: SocketAddr,
    /// The socket.
    pub socket: S,
}

/// The open pool sockets of one driver, at most [`MAX_POOL_SOCKETS`]. Dropping the
/// pool closes them all.
#[derive(Debug)]
pub struct SocketPool<S> {
    sockets: Vec<PoolSocket<S>>,
    /// Where a driver's next look at the sockets starts, so that a busy socket at the
    /// front cannot starve the others.
    next: usize,
}

impl<S> Default for SocketPool<S> {
    fn default() -> Self {
        SocketPool {
            sockets: Vec::new(),
            next: 0,
        }
    }
}

impl<S> SocketPool<S> {
    /// Whether no pool socket is open (the drivers' fast path: one socket).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Open pool sockets.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// The open sockets, in a stable order until the next [`SocketPool::apply`].
    pub fn sockets(&self) -> &[PoolSocket<S>] {
        &self.sockets
    }

    /// The socket bound to local port `port`.
    pub fn get(&self, port: u16) -> Option<&PoolSocket<S>> {
        self.sockets.iter().find(|s| s.local.port() == port)
    }

    /// Where to start looking for a ready socket (an index into
    /// [`SocketPool::sockets`]).
    pub fn next_index(&self) -> usize {
        if self.next < self.sockets.len() {
            self.next
        } else {
            0
        }
    }

    /// The socket at `index` was served: start after it next time.
    pub fn served(&mut self, index: usize) {
        self.next = index + 1;
    }

    /// Closes every pool socket.
    pub fn clear(&mut self) {
        self.sockets.clear();
    }

    /// Does what `machine` asks of the pool ([`SansIo::poll_socket_command`] until
    /// `None`): opens sockets beside `node` (its IP, family and dual-stack setting, any
    /// port), each turned into the runtime's type by `wrap`, and reports each to the
    /// machine as opened or failed; more than [`MAX_POOL_SOCKETS`] open fail. Closes
    /// the ones it names (an unknown port is ignored). Returns whether it did anything.
    pub fn apply<M: SansIo>(
        &mut self,
        machine: &mut M,
        node: &UdpSocket,
        mut wrap: impl FnMut(UdpSocket) -> io::Result<S>,
    ) -> bool {
        let mut any = false;
        while let Some(command) = machine.poll_socket_command() {
            any = true;
            match command {
                SocketCommand::Open { count } => {
                    for _ in 0..count {
                        let opened = if self.sockets.len() >= MAX_POOL_SOCKETS {
                            Err(io::Error::other("the pool is full"))
                        } else {
                            bind_pool_socket(node).and_then(|socket| {
                                let local = socket.local_addr()?;
                                Ok(PoolSocket {
                                    local,
                                    socket: wrap(socket)?,
                                })
                            })
                        };
                        match opened {
                            Ok(socket) => {
                                let local = socket.local;
                                self.sockets.push(socket);
                                machine.handle_socket_opened(Instant::now(), local);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "no pool socket");
                                machine.handle_socket_failed(Instant::now());
                            }
                        }
                    }
                }
                SocketCommand::Close { port } => {
                    self.sockets.retain(|s| s.local.port() != port);
                }
            }
        }
        any
    }
}

/// Reads what is waiting on the pool socket `socket`, bound at `local` (non-blocking), up
/// to [`MAX_READ_BATCH`] datagrams, into `machine` with that address; returns how many.
/// A pool socket's error ends its burst (logged at debug) and never stops the node: the
/// machine's attempt on it simply hears nothing more.
pub fn read_pool_burst<M: SansIo>(
    socket: &UdpSocket,
    local: SocketAddr,
    buf: &mut [u8],
    machine: &mut M,
) -> u64 {
    let mut received = 0;
    for _ in 0..MAX_READ_BATCH {
        match burst_step(socket.recv_from(buf)) {
            BurstStep::Datagram(len, from) => {
                received += 1;
                machine.handle_datagram(Instant::now(), local, canonical_remote(from), &buf[..len]);
            }
            BurstStep::Skip => {}
            BurstStep::Done => break,
            BurstStep::Fatal(e) => {
                tracing::debug!(%local, error = %e, "pool socket read failed");
                break;
            }
        }
    }
    received
}

/// Binds a pool socket beside the node's socket: the same IP (so the same family), the
/// same `IPV6_V6ONLY` setting, port 0; non-blocking. Its buffers stay the OS default
/// (the node socket's are enlarged; 256 pool sockets at 4 MiB each would be a gigabyte).
pub fn bind_pool_socket(node: &UdpSocket) -> io::Result<UdpSocket> {
    let local = node.local_addr()?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(local),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if local.is_ipv6() {
        socket.set_only_v6(socket2::SockRef::from(node).only_v6()?)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(local.ip(), 0).into())?;
    Ok(socket.into())
}

/// A TTL (IPv4) or hop limit (IPv6) set on a socket for one datagram; the socket's
/// previous value comes back when this is dropped.
#[derive(Debug)]
pub struct TtlOverride<'a> {
    socket: &'a UdpSocket,
    v4: bool,
    previous: u32,
}

impl<'a> TtlOverride<'a> {
    /// Sets `ttl` on `socket` for a datagram to `to` (the address passed to
    /// `send_to`): IPv4 and IPv4-mapped destinations take `IP_TTL` (Linux applies it to
    /// the IPv4 traffic of a dual-stack socket), IPv6 ones `IPV6_UNICAST_HOPS`.
    pub fn set(socket: &'a UdpSocket, to: SocketAddr, ttl: u8) -> io::Result<Self> {
        let v4 = match to {
            SocketAddr::V4(_) => true,
            SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().is_some(),
        };
        let s = socket2::SockRef::from(socket);
        let previous = if v4 {
            s.ttl_v4()?
        } else {
            s.unicast_hops_v6()?
        };
        set_ttl(socket, v4, u32::from(ttl))?;
        Ok(TtlOverride {
            socket,
            v4,
            previous,
        })
    }
}

impl Drop for TtlOverride<'_> {
    fn drop(&mut self) {
        if let Err(e) = set_ttl(self.socket, self.v4, self.previous) {
            tracing::debug!(error = %e, "could not restore the socket's TTL");
        }
    }
}

fn set_ttl(socket: &UdpSocket, v4: bool, ttl: u32) -> io::Result<()> {
    let s = socket2::SockRef::from(socket);
    if v4 {
        s.set_ttl_v4(ttl)
    } else {
        s.set_unicast_hops_v6(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_override_is_undone_when_dropped() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = socket.ttl().unwrap();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        {
            let _ttl = TtlOverride::set(&socket, to, 3).unwrap();
            assert_eq!(socket.ttl().unwrap(), 3);
        }
        assert_eq!(socket.ttl().unwrap(), before);
    }

    #[test]
    fn an_ipv6_hop_limit_override_is_undone_when_dropped() {
        let Ok(socket) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 on this machine
        };
        let s = socket2::SockRef::from(&socket);
        let before = s.unicast_hops_v6().unwrap();
        let to: SocketAddr = "[::1]:9".parse().unwrap();
        {
            let _ttl = TtlOverride::set(&socket, to, 2).unwrap();
            assert_eq!(s.unicast_hops_v6().unwrap(), 2);
        }
        assert_eq!(s.unicast_hops_v6().unwrap(), before);
    }

    #[test]
    fn a_pool_socket_takes_the_node_sockets_ip_and_a_new_port() {
        let node = UdpSocket::bind("127.0.0.1:0").unwrap();
        let pool = bind_pool_socket(&node).unwrap();
        let (n, p) = (node.local_addr().unwrap(), pool.local_addr().unwrap());
        assert_eq!(p.ip(), n.ip());
        assert_ne!(p.port(), n.port());
        assert_ne!(p.port(), 0);
    }
}
