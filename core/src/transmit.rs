//! The face every state machine of the core shares: [`SansIo`] and [`Transmit`].

use std::net::SocketAddr;
use std::time::Instant;

/// A datagram the state machine wants sent. The runtime sends it from the node's own
/// socket, or from the pool socket `source_port` names (see [`SocketCommand`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub contents: Vec<u8>,
    /// The pool socket that sends it, by its local port; `None`: the node's own socket.
    /// A runtime that has no open pool socket of that port drops the datagram.
    pub source_port: Option<u16>,
    /// The IP TTL (hop limit) to send it with; `None`: the socket's default. Port
    /// prediction sends its first datagrams with a low TTL: they open a mapping in our
    /// own NAT and expire before they reach the peer's.
    pub ttl: Option<u8>,
}

impl Transmit {
    /// A datagram from the node's own socket with the default TTL.
    pub fn new(destination: SocketAddr, contents: Vec<u8>) -> Transmit {
        Transmit {
            destination,
            contents,
            source_port: None,
            ttl: None,
        }
    }
}

/// What a state machine asks of its runtime about its pool of extra sockets (port
/// prediction needs many local ports at once). At most [`MAX_POOL_SOCKETS`] are open at
/// a time; a runtime may refuse more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketCommand {
    /// Bind `count` more UDP sockets on the node socket's address, each with any free
    /// port, and report each with [`SansIo::handle_socket_opened`] (or one that could
    /// not be bound with [`SansIo::handle_socket_failed`]). Datagrams arriving on a pool
    /// socket go to `handle_datagram` with that socket's address as `local`.
    Open {
        /// How many sockets.
        count: u16,
    },
    /// Close the pool socket bound to local port `port`.
    Close {
        /// The socket's local port.
        port: u16,
    },
}

/// Pool sockets a machine may hold open at once.
pub const MAX_POOL_SOCKETS: usize = 256;

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit")
            .field("destination", &self.destination)
            .field("len", &self.contents.len())
            .field("source_port", &self.source_port)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The one face of every sans-IO state machine in dhtmeet.
///
/// Inputs are `handle_*` calls, each carrying `now`; outputs are drained with `poll_*`
/// after every input until they return `None`:
///
/// 1. `poll_transmit` until `None`: send each datagram (and `poll_socket_command`
///    until `None`, if the runtime has a pool of sockets);
/// 2. `poll_event` until `None`: hand each event to the application;
/// 3. `poll_timeout`: call `handle_timeout` once that instant has passed.
///
/// `handle_timeout` may be called spuriously (early, late, twice): a machine does what
/// is due at `now` and nothing else. Time never goes backwards for a machine; an
/// earlier `now` than one already seen is treated as equal to it.
pub trait SansIo {
    /// What the machine reports to its owner.
    type Event;

    /// A datagram arrived on `local` from `remote`. Never panics, whatever the bytes.
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    );

    /// Time has advanced to `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// The next datagram to send.
    #[must_use]
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// The next event for the application.
    #[must_use]
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When `handle_timeout` is next due, if ever.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next request about the pool of extra sockets ([`SocketCommand`]); drained
    /// with `poll_transmit`. Machines that need no pool never ask.
    #[must_use]
    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        None
    }

    /// A pool socket asked for with [`SocketCommand::Open`] is bound at `local`.
    fn handle_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        let _ = (now, local);
    }

    /// A pool socket asked for could not be bound (out of ports or descriptors, or the
    /// runtime has no pool).
    fn handle_socket_failed(&mut self, now: Instant) {
        let _ = now;
    }
}

/// The destination to pass to a socket bound to `socket`: IPv4 destinations become
/// IPv4-mapped IPv6 on an IPv6 (dual-stack) socket; `None` if the socket cannot reach
/// that family (an IPv6 destination from an IPv4 socket).
pub fn socket_destination(socket: SocketAddr, destination: SocketAddr) -> Option<SocketAddr> {
    match (socket, destination) {
        (SocketAddr::V6(_), SocketAddr::V4(v4)) => Some(SocketAddr::new(
            std::net::IpAddr::V6(v4.ip().to_ipv6_mapped()),
            v4.port(),
        )),
        (SocketAddr::V4(_), SocketAddr::V6(_)) => None,
        _ => Some(destination),
    }
}

/// The address a datagram came from, with IPv4-mapped IPv6 turned back into IPv4, so
/// that the core sees one address per peer whatever socket family received it.
pub fn canonical_remote(remote: SocketAddr) -> SocketAddr {
    SocketAddr::new(remote.ip().to_canonical(), remote.port())
}
