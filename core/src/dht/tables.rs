//! The routing part of the node: who we are (our id, the public IP it was derived for,
//! the address responders see), the IPv4 and IPv6 routing tables, and the unknown
//! queriers waiting for a ping before they may enter a table.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_core::Rng as _;

use super::bep42;
use super::id::NodeId;
use super::krpc::CompactNode;
use super::routing::{self, Entry, Insertion, NodeStatus, RoutingTable};
use crate::seed::Rng;

/// Unknown nodes that queried us, waiting to be pinged before they may enter the table.
pub const MAX_PING_QUEUE: usize = 64;

/// Our identity and the routing tables of both address families.
#[derive(Debug)]
pub(super) struct Tables {
    id: NodeId,
    /// The public IP `id` was derived for, once known.
    id_ip: Option<IpAddr>,
    /// Our address as the latest responder reported it (BEP 42 `ip`).
    external: Option<SocketAddr>,
    v4: RoutingTable,
    v6: RoutingTable,
    /// Unknown nodes that queried us, to ping before they may enter a table (a query's
    /// source could be spoofed; an answer to our ping cannot).
    ping_queue: VecDeque<SocketAddr>,
    /// Whether nodes must have a BEP 42 id for their IP to enter a table.
    enforce_bep42: bool,
}

impl Tables {
    /// Empty tables around `id`.
    pub(super) fn new(
        now: Instant,
        id: NodeId,
        id_ip: Option<IpAddr>,
        enforce_bep42: bool,
    ) -> Self {
        Tables {
            id,
            id_ip,
            external: None,
            v4: RoutingTable::new(id, false, now),
            v6: RoutingTable::new(id, true, now),
            ping_queue: VecDeque::new(),
            enforce_bep42,
        }
    }

    /// Takes in nodes remembered from a saved state, questionable until they answer.
    pub(super) fn restore(&mut self, now: Instant, nodes: &[CompactNode]) {
        for node in nodes {
            if self.enforce_bep42 && !bep42::is_valid(&node.id, node.addr.ip()) {
                continue; // the same rule as for nodes that answer
            }
            self.table_for(node.addr).insert_unverified(*node, now);
        }
    }

    pub(super) fn id(&self) -> NodeId {
        self.id
    }

    pub(super) fn id_ip(&self) -> Option<IpAddr> {
        self.id_ip
    }

    pub(super) fn external(&self) -> Option<SocketAddr> {
        self.external
    }

    /// A responder told us the address it sees us at.
    pub(super) fn set_external(&mut self, addr: SocketAddr) {
        self.external = Some(addr);
    }

    pub(super) fn ipv4(&self) -> &RoutingTable {
        &self.v4
    }

    /// Nodes in both tables.
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Nodes in both tables that answered us within the last 15 minutes.
    pub(super) fn good_count(&self, now: Instant) -> usize {
        self.v4.good_count(now) + self.v6.good_count(now)
    }

    fn table_for(&mut self, addr: SocketAddr) -> &mut RoutingTable {
        if addr.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        }
    }

    /// The `count` nodes of both families closest to `target`, closest first.
    pub(super) fn closest(&self, now: Instant, target: &NodeId, count: usize) -> Vec<CompactNode> {
        let mut all = self.v4.closest(target, count, now);
        all.extend(self.v6.closest(target, count, now));
        all.sort_by_key(|n| target.distance(&n.id));
        all.truncate(count);
        all
    }

    /// The `count` nodes of one family closest to `target`.
    pub(super) fn closest_in(
        &self,
        now: Instant,
        ipv6: bool,
        target: &NodeId,
        count: usize,
    ) -> Vec<CompactNode> {
        let table = if ipv6 { &self.v6 } else { &self.v4 };
        table.closest(target, count, now)
    }

    /// The nodes worth remembering, at most `max`: nodes that have not failed, the good
    /// ones first, each group most recently seen first.
    pub(super) fn nodes_to_save(&self, now: Instant, max: usize) -> Vec<CompactNode> {
        let mut entries: Vec<&Entry> = self
            .v4
            .entries()
            .chain(self.v6.entries())
            .filter(|e| e.failures == 0)
            .collect();
        entries.sort_by_key(|e| {
            (
                e.status(now) != NodeStatus::Good,
                std::cmp::Reverse(e.last_seen),
            )
        });
        entries.into_iter().take(max).map(|e| e.node).collect()
    }

    /// Our public IP is known: keep our id if it is a BEP 42 id for `ip`, or take one
    /// (drawn from `rng`) and rebuild the tables around it, keeping every node.
    pub(super) fn set_public_ip(&mut self, now: Instant, ip: IpAddr, rng: &mut Rng) {
        if bep42::is_valid(&self.id, ip) {
            self.id_ip = Some(ip);
            return;
        }
        let mut random = [0u8; 20];
        rng.fill_bytes(&mut random);
        self.id = bep42::secure_id(ip, random);
        self.id_ip = Some(ip);
        let old4 = std::mem::replace(&mut self.v4, RoutingTable::new(self.id, false, now));
        let old6 = std::mem::replace(&mut self.v6, RoutingTable::new(self.id, true, now));
        for e in old4.entries().chain(old6.entries()) {
            let table = self.table_for(e.node.addr);
            if e.answered {
                table.on_response(e.node, e.last_seen);
            } else {
                table.insert_unverified(e.node, e.last_seen);
            }
        }
        tracing::info!(id = %self.id, %ip, "new BEP 42 node id for our public IP");
    }

    /// The node at `remote` answered us with `id` (we expected `expected`, if we knew
    /// it). Returns a questionable node to ping, if the answer could only be cached.
    pub(super) fn on_answer(
        &mut self,
        now: Instant,
        node: CompactNode,
        expected: Option<NodeId>,
        read_only: bool,
    ) -> Option<SocketAddr> {
        let CompactNode { id, addr: remote } = node;
        if let Some(expected) = expected.filter(|e| *e != id) {
            // The node at that address has a new id (it restarted): forget the old.
            self.table_for(remote).forget(&expected, remote);
        }
        if read_only {
            self.table_for(remote).remove(&id);
        } else if !self.enforce_bep42 || bep42::is_valid(&id, remote.ip()) {
            if let Insertion::Cached { ping: Some(stale) } =
                self.table_for(remote).on_response(node, now)
            {
                return Some(stale.addr);
            }
        }
        None
    }

    /// A query of ours to `id` at `addr` went unanswered.
    pub(super) fn on_timeout(&mut self, now: Instant, id: &NodeId, addr: SocketAddr) {
        self.table_for(addr).on_timeout(id, addr, now);
    }

    /// A querier we know stays good; one we do not know is queued for a ping before it
    /// may enter the table (a query's source could be spoofed; an answer cannot).
    pub(super) fn note_querier(
        &mut self,
        now: Instant,
        id: NodeId,
        remote: SocketAddr,
        read_only: bool,
    ) {
        if read_only || id == self.id || !routing::is_routable(remote) {
            return;
        }
        if self.enforce_bep42 && !bep42::is_valid(&id, remote.ip()) {
            return;
        }
        // Only ping a querier that could enter a bucket: one bound for a full bucket would
        // only be cached, and two such nodes would ping each other for ever (each ping is
        // a query from an unknown node).
        let table = self.table_for(remote);
        if !table.on_query(&id, remote, now)
            && table.has_room_for(&id, now)
            && self.ping_queue.len() < MAX_PING_QUEUE
            && !self.ping_queue.contains(&remote)
        {
            self.ping_queue.push_back(remote);
        }
    }

    /// The next unknown querier to ping.
    pub(super) fn next_to_ping(&mut self) -> Option<SocketAddr> {
        self.ping_queue.pop_front()
    }

    /// Unknown queriers waiting for a ping.
    #[cfg(test)]
    pub(super) fn ping_queue_len(&self) -> usize {
        self.ping_queue.len()
    }

    /// A random id in every IPv4 bucket farther than our closest neighbours that is not
    /// full (see [`RoutingTable::sparse_buckets`]).
    pub(super) fn sparse_targets(&self, rng: &mut Rng) -> Vec<NodeId> {
        self.v4.sparse_buckets(|| {
            let mut b = [0u8; 20];
            rng.fill_bytes(&mut b);
            b
        })
    }

    /// A random id in up to `max` IPv4 buckets unchanged for 15 minutes, marking every
    /// bucket refreshed if there were any.
    pub(super) fn refresh_targets(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        max: usize,
    ) -> Vec<NodeId> {
        let mut stale = self.v4.stale_buckets(now, || {
            let mut b = [0u8; 20];
            rng.fill_bytes(&mut b);
            b
        });
        stale.truncate(max);
        if !stale.is_empty() {
            self.v4.touch_all(now);
        }
        stale
    }
}
