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
    /// Whether no path is aliased (the usual case: nothing to do per datagram).
    pub(super) fn is_empty(&self) -> bool {
        self.by_remote.is_empty()
    }

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
        if self.pool.take_kept() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::stun::wire::{TransactionId, binding_request};
    use crate::{Seed, test_clock};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A node (no STUN servers, no DHT) with pool socket 5001 open and a predicted path
    /// to `peer` aliased on it.
    fn node_with_path(peer: SocketAddr) -> Node {
        let mut config = NodeConfig::new(Seed::from_u64(1));
        config.dht = None;
        config.local_addr = Some(addr("192.168.1.10:4000"));
        let mut node = Node::new(test_clock::start(), config).unwrap();
        node.pool.request(1);
        let _ = node.poll_socket_command();
        assert!(node.pool.opened(addr("0.0.0.0:5001")));
        node.paths.open(peer, 5001);
        node
    }

    #[test]
    fn a_path_on_a_pool_socket_is_aliased_both_ways() {
        let now = test_clock::start();
        let peer = addr("203.0.113.5:4000");
        let mut node = node_with_path(peer);
        // A Binding request from the peer on the pool socket is answered as if it had
        // come to the main socket, and the answer leaves from the pool socket.
        let request = binding_request(TransactionId([1; 12]));
        node.handle_datagram(now, addr("0.0.0.0:5001"), peer, &request);
        let answer = node.poll_transmit().expect("answered");
        assert_eq!(answer.destination, peer);
        assert_eq!(answer.source_port, Some(5001));
        // Anything else for the peer leaves from the pool socket too.
        let other = node.aliased(Transmit::new(peer, vec![1]));
        assert_eq!(other.source_port, Some(5001));
        assert_eq!(
            node.aliased(Transmit::new(addr("192.0.2.1:1"), vec![1]))
                .source_port,
            None
        );
    }

    #[test]
    fn a_stranger_on_a_pool_socket_is_counted_and_dropped() {
        let now = test_clock::start();
        let mut node = node_with_path(addr("203.0.113.5:4000"));
        let request = binding_request(TransactionId([2; 12]));
        node.handle_datagram(
            now,
            addr("0.0.0.0:5001"),
            addr("203.0.113.5:4001"),
            &request,
        );
        node.handle_datagram(
            now,
            addr("0.0.0.0:5001"),
            addr("192.0.2.9:4000"),
            b"d1:ad2:id20:",
        );
        assert!(node.poll_transmit().is_none());
        assert_eq!(node.stats.dropped_pool_unrouted, 2);
        // The main socket still answers.
        node.handle_datagram(now, addr("0.0.0.0:4000"), addr("192.0.2.9:4000"), &request);
        assert_eq!(node.poll_transmit().map(|t| t.source_port), Some(None));
    }

    #[test]
    fn closing_a_pool_socket_ends_its_paths() {
        let peer = addr("203.0.113.5:4000");
        let mut paths = Paths::default();
        paths.open(peer, 5001);
        paths.open(addr("203.0.113.6:4000"), 5002);
        paths.close_port(5001);
        assert_eq!(paths.port_for(peer), None);
        assert_eq!(paths.port_for(addr("203.0.113.6:4000")), Some(5002));
    }
}
