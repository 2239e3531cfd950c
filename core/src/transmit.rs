//! The face every state machine of the core shares: [`SansIo`] and [`Transmit`].

use std::net::SocketAddr;
use std::time::Instant;

/// A datagram the state machine wants sent. The runtime sends it from the node's one
/// socket of the destination's address family.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit")
            .field("destination", &self.destination)
            .field("len", &self.contents.len())
            .finish()
    }
}

/// The one face of every sans-IO state machine in dhtmeet.
///
/// Inputs are `handle_*` calls, each carrying `now`; outputs are drained with `poll_*`
/// after every input until they return `None`:
///
/// 1. `poll_transmit` until `None`: send each datagram;
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
