//! The node's side of port prediction: the meeting's attempts get pool sockets from the
//! node's [`SocketPool`](super::pool::SocketPool), their probes (first byte 0x0F) from
//! any socket, and a path an attempt found on a pool socket is *aliased*: datagrams for
//! the peer's address leave from that pool socket, and what arrives there from the peer
//! is routed as if it came to the main socket. So the DHT's signaling and the WebRTC
//! session use the predicted path without knowing it (`docs/port-prediction.md`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::Node;
use crate::meeting::PathChange;
use crate::transmit::{MAX_POOL_SOCKETS, SansIo, SocketCommand, Transmit, canonical_remote};

/// Peers' addresses whose datagrams leave from a pool socket, by local port.
#[derive(Debug, Default)]
pub(super) struct Paths {
    by_remote: BTreeMap<SocketAddr, u16>,
}

impl Paths {
    fn open(&mut self, remote: SocketAddr, port: u16) {
        if self.by_remote.len() < MAX_POOL_SOCKETS || self.by_remote.contains_key(&remote) {
            self.by_remote.insert(canonical_remote(remote), port);
        }
    }

    fn close_port(&mut self, port: u16) {
        self.by_remote.retain(|_, p| *p != port);
    }

    /// The pool socket a datagram for `remote` leaves from, if a path is aliased.
    fn port_for(&self, remote: SocketAddr) -> Option<u16> {
        if self.by_remote.is_empty() {
            return None;
        }
        self.by_remote.get(&canonical_remote(remote)).copied()
    }
}

impl Node {
    /// Routes a datagram that arrived on a socket: a probe to the meeting's attempts
    /// (`true`: taken), and one on a pool socket either aliased to the main socket (the
    /// returned address) or dropped.
    pub(super) fn route_pool(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        probe: bool,
    ) -> Option<SocketAddr> {
        let main = self.local.unwrap_or(local);
        let on_pool = local.port() != main.port() && self.pool.contains(local.port());
        if probe {
            match &mut self.meeting {
                Some(m) => m.handle_punch(now, on_pool.then_some(local.port()), remote, datagram),
                None => self.stats.dropped_unknown_kind += 1,
            }
            return None;
        }
        if !on_pool {
            return Some(local);
        }
        if self.paths.port_for(remote) == Some(local.port()) {
            return Some(main);
        }
        self.stats.dropped_pool_unrouted += 1;
        None
    }

    /// The meeting's requests for pool sockets and its path changes.
    pub(super) fn collect_pool(&mut self) {
        let now = self.now;
        let Some(m) = &mut self.meeting else {
            return;
        };
        while let Some(c) = m.poll_socket_command() {
            match c {
                SocketCommand::Open { count } => {
                    let granted = self.pool.request(usize::from(count));
                    for _ in granted..usize::from(count) {
                        m.handle_socket_failed(now);
                    }
                }
                SocketCommand::Close { port } => {
                    self.paths.close_port(port);
                    self.pool.close(port);
                }
            }
        }
        while let Some(change) = m.poll_path() {
            match change {
                PathChange::Opened { remote, port } if self.pool.contains(port) => {
                    self.paths.open(remote, port);
                }
                PathChange::Opened { .. } => {}
                PathChange::Closed { remote } => {
                    self.paths.by_remote.remove(&canonical_remote(remote));
                }
            }
        }
    }

    /// A pool socket the meeting asked for is open: its attempts take it.
    pub(super) fn pool_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        if !self.pool.opened(local) {
            tracing::debug!(%local, "closed a pool socket nobody asked for");
            return;
        }
        match &mut self.meeting {
            Some(m) => m.handle_socket_opened(now, local),
            None => self.pool.close(local.port()),
        }
    }

    /// A datagram leaves from the pool socket of its destination's aliased path.
    pub(super) fn aliased(&self, mut t: Transmit) -> Transmit {
        if t.source_port.is_none() {
            t.source_port = self.paths.port_for(t.destination);
        }
        t
    }
}
