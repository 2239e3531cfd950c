//! The routing table of BEP 5: k-buckets over the 160-bit XOR metric, split around our own
//! id, with good / questionable / bad nodes and a replacement cache per bucket.
//!
//! Representation: bucket `i` (for `i < last`) holds the nodes whose id shares exactly `i`
//! leading bits with ours; the last bucket holds everything closer. Splitting the bucket
//! that contains our own id is then "open a new last bucket and move the closer nodes
//! into it" — the same tree BEP 5 describes, stored as a vector.
//!
//! Only nodes that answered one of our queries enter the table ([`RoutingTable::on_response`]).
//! A node that only queried us is a *candidate*: the DHT pings it first. This keeps
//! spoofed sources and read-only nodes (BEP 43) out.
//!
//! Bounds: at most 160 buckets of [`K`] nodes each, plus [`REPLACEMENTS`] replacement
//! candidates per bucket: 160 × 16 entries at worst, ~2,500 in practice for a full
//! network; one table per address family.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::id::NodeId;
use super::krpc::CompactNode;

/// Nodes per bucket (BEP 5's k).
pub const K: usize = 8;
/// Replacement candidates kept per bucket.
pub const REPLACEMENTS: usize = 8;
/// A node silent for this long is questionable; a bucket unchanged this long is refreshed.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Consecutive unanswered queries that make a node bad.
pub const MAX_FAILURES: u8 = 2;
/// Number of buckets at most (one per prefix length, plus the closest).
pub const MAX_BUCKETS: usize = 160;

/// The state of a routing-table entry (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Answered a query of ours, or queried us after answering once, within 15 minutes.
    Good,
    /// Silent for 15 minutes.
    Questionable,
    /// Failed to answer [`MAX_FAILURES`] queries in a row, or, remembered from a saved
    /// state and never heard from since, failed to answer one.
    Bad,
}

/// One node in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its id and address.
    pub node: CompactNode,
    /// When it last answered us or (having answered once) queried us.
    pub last_seen: Instant,
    /// Unanswered queries in a row.
    pub failures: u8,
    /// Whether it ever answered us since it entered the table. Nodes imported from a
    /// saved state ([`RoutingTable::insert_unverified`]) have not: questionable until
    /// they do.
    pub answered: bool,
}

impl Entry {
    /// Its status at `now`.
    pub fn status(&self, now: Instant) -> NodeStatus {
        // A remembered node that has not answered since the restart has nothing in its
        // favour: one unanswered query (itself sent twice) shows it gone, and it must
        // not hold up the next lookup too.
        if self.failures >= MAX_FAILURES || (!self.answered && self.failures > 0) {
            NodeStatus::Bad
        } else if !self.answered || now.saturating_duration_since(self.last_seen) >= GOOD_FOR {
            NodeStatus::Questionable
        } else {
            NodeStatus::Good
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}

/// What the table did with a node that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// It was already there: refreshed.
    Refreshed,
    /// Added to a bucket.
    Added,
    /// Replaced a bad node.
    ReplacedBad,
    /// The bucket is full of good or questionable nodes: kept as a replacement. If
    /// `ping` is set, that questionable node should be pinged; if it fails, the
    /// replacement takes its place.
    Cached {
        /// The least recently seen questionable node of the bucket, to ping.
        ping: Option<CompactNode>,
    },
    /// Not inserted (our own id, or an address of the wrong family).
    Rejected,
}

/// A BEP 5 routing table for one address family.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own_id: NodeId,
    buckets: Vec<Bucket>,
    ipv6: bool,
}

impl RoutingTable {
    /// An empty table around `own_id` for IPv4 (`ipv6 = false`) or IPv6 nodes.
    pub fn new(own_id: NodeId, ipv6: bool, now: Instant) -> Self {
        RoutingTable {
            own_id,
            buckets: vec![Bucket::new(now)],
            ipv6,
        }
    }

    /// Our id.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// Nodes in the table (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table has no node.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.nodes.is_empty())
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Every entry, bucket by bucket.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// Number of good nodes at `now`.
    pub fn good_count(&self, now: Instant) -> usize {
        self.entries()
            .filter(|e| e.status(now) == NodeStatus::Good)
            .count()
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        self.own_id
            .common_prefix_len(id)
            .min(self.buckets.len() - 1)
    }

    fn family_matches(&self, addr: &SocketAddr) -> bool {
        addr.is_ipv6() == self.ipv6
    }

    /// A node answered one of our queries at `now`: add or refresh it.
    pub fn on_response(&mut self, node: CompactNode, now: Instant) -> Insertion {
        self.insert(node, now, true)
    }

    /// A node remembered from a saved state, not heard from yet: it enters a bucket with
    /// room as *questionable* (so lookups try it) and becomes good only when it answers.
    /// It never displaces a node, never enters the replacement cache, and a node already
    /// in the table is left as it is.
    pub fn insert_unverified(&mut self, node: CompactNode, now: Instant) -> Insertion {
        self.insert(node, now, false)
    }

    fn insert(&mut self, node: CompactNode, now: Instant, answered: bool) -> Insertion {
        if node.id == self.own_id || !self.family_matches(&node.addr) || !is_routable(node.addr) {
            return Insertion::Rejected;
        }
        loop {
            let index = self.bucket_index(&node.id);
            let can_split = index == self.buckets.len() - 1 && self.buckets.len() < MAX_BUCKETS;
            let bucket = &mut self.buckets[index];
            if let Some(e) = bucket.nodes.iter_mut().find(|e| e.node.id == node.id) {
                if e.node.addr != node.addr {
                    // Same id from another address: keep the one we know (BEP 42 and
                    // common practice: an id hijack must not move a good entry).
                    return Insertion::Rejected;
                }
                if !answered {
                    return Insertion::Refreshed;
                }
                e.last_seen = now;
                e.failures = 0;
                e.answered = true;
                bucket.last_changed = now;
                return Insertion::Refreshed;
            }
            if answered {
                // A remembered node that never answered under its old id is stale: the
                // node at its address now answers with this one.
                bucket
                    .nodes
                    .retain(|e| e.answered || e.node.addr != node.addr);
            }
            if bucket.nodes.iter().any(|e| e.node.addr == node.addr) {
                // Another id at a known address: the node restarted with a new id, or
                // someone forges; the old entry ages out normally.
                return Insertion::Rejected;
            }
            let entry = Entry {
                node,
                last_seen: now,
                failures: 0,
                answered,
            };
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.last_changed = now;
                return Insertion::Added;
            }
            let bad = bucket
                .nodes
                .iter()
                .position(|e| e.status(now) == NodeStatus::Bad);
            if let (Some(bad), true) = (bad, answered) {
                bucket.nodes[bad] = entry;
                bucket.last_changed = now;
                return Insertion::ReplacedBad;
            }
            if can_split {
                self.split_last(now);
                continue;
            }
            if !answered {
                return Insertion::Rejected;
            }
            let ping = bucket
                .nodes
                .iter()
                .filter(|e| e.status(now) == NodeStatus::Questionable)
                .min_by_key(|e| e.last_seen)
                .map(|e| e.node);
            bucket.replacements.retain(|e| e.node.id != node.id);
            if bucket.replacements.len() >= REPLACEMENTS {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(entry);
            return Insertion::Cached { ping };
        }
    }

    fn split_last(&mut self, now: Instant) {
        let depth = self.buckets.len() - 1;
        let own = self.own_id;
        let last = &mut self.buckets[depth];
        let (stay, go): (Vec<Entry>, Vec<Entry>) = last
            .nodes
            .drain(..)
            .partition(|e| own.common_prefix_len(&e.node.id) == depth);
        let (stay_r, go_r): (Vec<Entry>, Vec<Entry>) = last
            .replacements
            .drain(..)
            .partition(|e| own.common_prefix_len(&e.node.id) == depth);
        last.nodes = stay;
        last.replacements = stay_r;
        let mut next = Bucket::new(now);
        next.nodes = go;
        next.replacements = go_r;
        self.buckets.push(next);
    }

    /// Whether a node with this id that answered now would enter a bucket (room, a bad
    /// node to replace, or a split to make), rather than only the replacement cache.
    pub fn has_room_for(&self, id: &NodeId, now: Instant) -> bool {
        if *id == self.own_id {
            return false;
        }
        let index = self.bucket_index(id);
        let bucket = &self.buckets[index];
        bucket.nodes.len() < K
            || bucket
                .nodes
                .iter()
                .any(|e| e.status(now) == NodeStatus::Bad)
            || (index == self.buckets.len() - 1 && self.buckets.len() < MAX_BUCKETS)
    }

    /// A node in the table (having answered before) sent us a query: it stays good.
    pub fn on_query(&mut self, id: &NodeId, addr: SocketAddr, now: Instant) -> bool {
        let index = self.bucket_index(id);
        match self.buckets[index]
            .nodes
            .iter_mut()
            .find(|e| e.node.id == *id && e.node.addr == addr)
        {
            Some(e) => {
                e.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// A query to `id` at `addr` went unanswered. A node that turns bad is replaced by
    /// the freshest replacement candidate, if any.
    pub fn on_timeout(&mut self, id: &NodeId, addr: SocketAddr, now: Instant) {
        let index = self.bucket_index(id);
        let bucket = &mut self.buckets[index];
        let Some(pos) = bucket
            .nodes
            .iter()
            .position(|e| e.node.id == *id && e.node.addr == addr)
        else {
            bucket
                .replacements
                .retain(|e| !(e.node.id == *id && e.node.addr == addr));
            return;
        };
        let entry = &mut bucket.nodes[pos];
        entry.failures = entry.failures.saturating_add(1);
        if entry.status(now) == NodeStatus::Bad {
            if let Some(replacement) = bucket.replacements.pop() {
                bucket.nodes[pos] = replacement;
                bucket.last_changed = now;
            }
        }
    }

    /// Removes a node outright (e.g. it told us it is read-only).
    pub fn remove(&mut self, id: &NodeId) {
        let index = self.bucket_index(id);
        let bucket = &mut self.buckets[index];
        bucket.nodes.retain(|e| e.node.id != *id);
        bucket.replacements.retain(|e| e.node.id != *id);
    }

    /// Removes the node `id` if the table knows it at `addr` (a node there answered with
    /// another id: it restarted). A lookup candidate's claimed id never removes a node
    /// known at another address.
    pub fn forget(&mut self, id: &NodeId, addr: SocketAddr) {
        let index = self.bucket_index(id);
        let bucket = &mut self.buckets[index];
        bucket
            .nodes
            .retain(|e| !(e.node.id == *id && e.node.addr == addr));
        bucket
            .replacements
            .retain(|e| !(e.node.id == *id && e.node.addr == addr));
    }

    /// The `count` nodes closest to `target` that are not bad, closest first.
    pub fn closest(&self, target: &NodeId, count: usize, now: Instant) -> Vec<CompactNode> {
        if count == 0 {
            return Vec::new();
        }
        // Distances computed once; a partial selection, then a sort of just the winners.
        let mut all: Vec<(super::id::Distance, CompactNode)> = self
            .entries()
            .filter(|e| e.status(now) != NodeStatus::Bad)
            .map(|e| (target.distance(&e.node.id), e.node))
            .collect();
        if all.len() > count {
            all.select_nth_unstable_by(count - 1, |a, b| a.0.cmp(&b.0));
            all.truncate(count);
        }
        all.sort_unstable_by_key(|a| a.0);
        all.into_iter().map(|(_, n)| n).collect()
    }

    /// Buckets unchanged for [`GOOD_FOR`]: for each, a random id in its range to look up
    /// (BEP 5 bucket refresh). `random` supplies 20 random bytes per bucket.
    pub fn stale_buckets(&self, now: Instant, mut random: impl FnMut() -> [u8; 20]) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| now.saturating_duration_since(b.last_changed) >= GOOD_FOR)
            .map(|(i, _)| self.random_id_in_bucket(i, i == last, random()))
            .collect()
    }

    /// Buckets that are not full, except the last (the one around our own id, which the
    /// bootstrap lookup of our own id has just filled): for each, a random id in its range
    /// to look up. Kademlia's join ends with this refresh ("refreshes all k-buckets further
    /// away than its closest neighbor"), so that a new node knows nodes at every distance
    /// and its lookups take few hops. `random` supplies 20 random bytes per bucket.
    pub fn sparse_buckets(&self, mut random: impl FnMut() -> [u8; 20]) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        self.buckets[..last]
            .iter()
            .enumerate()
            .filter(|(_, b)| b.nodes.len() < K)
            .map(|(i, _)| self.random_id_in_bucket(i, false, random()))
            .collect()
    }

    /// Marks every bucket as changed at `now` (after a refresh was started for them).
    pub fn touch_all(&mut self, now: Instant) {
        for b in &mut self.buckets {
            b.last_changed = now;
        }
    }

    /// A random id that falls in bucket `index`: shares exactly `index` leading bits with
    /// our id (or at least `index`, for the last bucket).
    fn random_id_in_bucket(&self, index: usize, is_last: bool, mut random: [u8; 20]) -> NodeId {
        let own = self.own_id.0;
        for bit in 0..=index.min(159) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let own_bit = own[byte] & mask;
            let want = if bit < index || is_last {
                own_bit
            } else {
                own_bit ^ mask
            };
            random[byte] = (random[byte] & !mask) | want;
        }
        NodeId(random)
    }
}

/// Whether an address can be a DHT node at all: not unspecified, not multicast, not
/// port 0. (Private and loopback addresses are allowed: test networks use them.)
pub fn is_routable(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;

#[cfg(test)]
mod join_refresh_tests {
    use super::*;

    fn node(id: [u8; 20], i: u8) -> CompactNode {
        CompactNode {
            id: NodeId(id),
            addr: SocketAddr::from(([10, 9, 0, i], 6881)),
        }
    }

    #[test]
    fn sparse_buckets_name_every_bucket_but_the_last_that_is_not_full() {
        let now = crate::test_clock::start();
        let mut t = RoutingTable::new(NodeId([0; 20]), false, now);
        // Nine nodes in the far half force a split: bucket 0 (far) holds 8 of them...
        for i in 0..9u8 {
            let mut id = [0u8; 20];
            id[0] = 0x80 | i;
            t.on_response(node(id, i), now);
        }
        // ...and nine nodes very close to us split the last bucket down to them.
        for i in 1..=9u8 {
            let mut id = [0u8; 20];
            id[19] = i;
            t.on_response(node(id, 100 + i), now);
        }
        let mut n = 0u8;
        let targets = t.sparse_buckets(|| {
            n += 1;
            [n; 20]
        });
        let last = t.bucket_count() - 1;
        assert!(last > 100, "{last} buckets");
        // Bucket 0 is full (8 of the 9 far nodes): not refreshed; the others below the
        // last are empty: refreshed, each with an id in its own range.
        assert_eq!(targets.len(), last - 1);
        for (target, bucket) in targets.iter().zip(1..) {
            assert_eq!(NodeId([0; 20]).common_prefix_len(target), bucket);
        }
    }

    #[test]
    fn room_for_a_querier_only_where_it_could_enter_a_bucket() {
        let now = crate::test_clock::start();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, false, now);
        assert!(!t.has_room_for(&own, now), "never ourselves");
        for i in 0..8u8 {
            let mut id = [0u8; 20];
            id[0] = 0x80 | i;
            t.on_response(node(id, i), now);
        }
        let mut far = [0u8; 20];
        far[0] = 0xff;
        assert!(
            t.has_room_for(&NodeId(far), now),
            "the full last bucket can split"
        );
        let mut near = [0u8; 20];
        near[0] = 0x01;
        t.on_response(node(near, 50), now); // splits: the far half is now bucket 0
        assert!(
            !t.has_room_for(&NodeId(far), now),
            "bucket 0 is full of good nodes"
        );
        let mut other_near = [0u8; 20];
        other_near[0] = 0x02;
        assert!(t.has_room_for(&NodeId(other_near), now));
        // A far node that turns bad makes room again.
        let mut bad = [0u8; 20];
        bad[0] = 0x80;
        for _ in 0..MAX_FAILURES {
            t.on_timeout(&NodeId(bad), node(bad, 0).addr, now);
        }
        assert!(t.has_room_for(&NodeId(far), now));
    }
}
