//! The DHT node: the sans-IO state machine that speaks KRPC on the node's socket.
//!
//! It answers queries (node mode, `server.rs`), runs iterative lookups (`lookup.rs`),
//! keeps the routing table (`routing.rs`) fresh, bootstraps, and keeps watched topics
//! announced and looked up every [`DhtConfig::refresh_interval`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::bep42;
pub use super::config::{DhtConfig, DhtConfigError, MAX_BOOTSTRAP};
pub use super::events::{DhtError, DhtEvent, DhtStats, LookupSummary};
use super::flood::FloodGuard;
use super::id::{InfoHash, NodeId};
use super::krpc::{Body, CompactNode, Message, Query, Response, Want};
use super::lookup::{Lookup, LookupId, LookupKind};
use super::peer_store::PeerStore;
use super::routing::{Entry, Insertion, NodeStatus, RoutingTable};
use super::token::Tokens;
use super::topics::Topic;
use crate::seed::{Rng, Seed};
use crate::state::SavedState;
use crate::transmit::{SansIo, Transmit};

/// Lookups running at once at most (API calls beyond get [`DhtError::TooManyLookups`]).
pub const MAX_LOOKUPS: usize = 64;
/// Topics watched at once at most.
pub const MAX_TOPICS: usize = 32;
/// Queries of ours awaiting an answer at most (≤ lookups × α + announces + pings).
pub const MAX_PENDING: usize = 1024;
/// Unknown nodes that queried us, waiting to be pinged before they may enter the table.
pub const MAX_PING_QUEUE: usize = 64;
/// Pings of unknown queriers in flight at most.
pub const MAX_PINGS_IN_FLIGHT: usize = 8;
/// Our client version in `v`: "DM" and a 2-byte version (BEP 20 style).
pub const CLIENT_VERSION: [u8; 4] = *b"DM\x00\x01";
/// How often the node does its maintenance (expiry, bucket refresh, pings).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(10);
/// Attempts per query (the first send plus one retransmission).
const ATTEMPTS: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Lookup(LookupId),
    Announce(LookupId),
    Ping,
    /// An extension query (meeting signaling): fire and forget, retransmitted once.
    Extension,
}

#[derive(Debug)]
struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    bytes: Vec<u8>,
    deadline: Instant,
    attempts: u8,
}

#[derive(Debug)]
struct Announcing {
    summary: LookupSummary,
    outstanding: usize,
    started: Instant,
}

/// The Mainline DHT node.
#[derive(Debug)]
pub struct Dht {
    pub(super) config: DhtConfig,
    pub(super) id: NodeId,
    /// The public IP `id` was derived for, once known.
    id_ip: Option<std::net::IpAddr>,
    pub(super) rng: Rng,
    pub(super) now: Instant,
    pub(super) table4: RoutingTable,
    pub(super) table6: RoutingTable,
    pub(super) tokens: Tokens,
    pub(super) peers: PeerStore,
    pub(super) flood: FloodGuard,
    pending: BTreeMap<[u8; 4], Pending>,
    lookups: BTreeMap<LookupId, Lookup>,
    announcing: BTreeMap<LookupId, Announcing>,
    next_lookup: u64,
    pub(super) ping_queue: VecDeque<SocketAddr>,
    pub(super) topics: Vec<Topic>,
    pub(super) ready: bool,
    bootstrap_lookup: Option<LookupId>,
    bootstrap_retry_at: Option<Instant>,
    next_maintenance: Instant,
    external: Option<SocketAddr>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<DhtEvent>,
    /// Extension methods answered with an acknowledgement and reported as events.
    pub(super) extensions: Vec<Vec<u8>>,
    pub(super) stats: DhtStats,
}

impl Dht {
    /// Validates `config` and starts at `now`: bootstrap begins at once.
    pub fn new(config: DhtConfig, seed: Seed, now: Instant) -> Result<Dht, DhtConfigError> {
        Dht::with_saved(config, seed, now, &SavedState::default())
    }

    /// Like [`Dht::new`], resuming from a saved state: its node id (unless the config
    /// fixes one) and its nodes, which enter the routing table as questionable until they
    /// answer. Bootstrap asks them together with the configured bootstrap nodes.
    pub fn with_saved(
        config: DhtConfig,
        seed: Seed,
        now: Instant,
        saved: &SavedState,
    ) -> Result<Dht, DhtConfigError> {
        config.validate()?;
        let mut rng = seed.child("dht/rng").rng();
        let (id, id_ip) = match (config.node_id, saved.node_id) {
            (Some(fixed), _) => (fixed, None),
            (None, Some(kept)) => (kept, saved.id_ip),
            (None, None) => {
                let mut b = [0u8; 20];
                rng.fill_bytes(&mut b);
                (NodeId(b), None)
            }
        };
        let mut dht = Dht {
            table4: RoutingTable::new(id, false, now),
            table6: RoutingTable::new(id, true, now),
            tokens: Tokens::new(seed.child("dht/tokens").rng(), now),
            peers: PeerStore::new(),
            flood: FloodGuard::new(),
            config,
            id,
            id_ip,
            rng,
            now,
            pending: BTreeMap::new(),
            lookups: BTreeMap::new(),
            announcing: BTreeMap::new(),
            next_lookup: 0,
            ping_queue: VecDeque::new(),
            topics: Vec::new(),
            ready: false,
            bootstrap_lookup: None,
            bootstrap_retry_at: None,
            next_maintenance: now + MAINTENANCE_EVERY,
            external: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            extensions: Vec::new(),
            stats: DhtStats::default(),
        };
        for node in &saved.nodes {
            if dht.config.enforce_bep42 && !bep42::is_valid(&node.id, node.addr.ip()) {
                continue; // the same rule as for nodes that answer
            }
            dht.table_for(node.addr).insert_unverified(*node, now);
        }
        dht.bootstrap();
        Ok(dht)
    }

    /// The nodes worth remembering, at most `max`: nodes that have not failed, the good
    /// ones (answered within 15 minutes) first, each group most recently seen first.
    /// Remembered nodes not heard from yet are kept too (they were good when saved).
    pub fn nodes_to_save(&self, max: usize) -> Vec<CompactNode> {
        let now = self.now;
        let mut entries: Vec<&Entry> = self
            .table4
            .entries()
            .chain(self.table6.entries())
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

    /// The public IP our id was derived for (BEP 42), once [`Dht::set_public_ip`] bound it.
    pub fn id_ip(&self) -> Option<std::net::IpAddr> {
        self.id_ip
    }

    /// Routing-table nodes that answered us within the last 15 minutes.
    pub fn good_nodes(&self) -> usize {
        self.table4.good_count(self.now) + self.table6.good_count(self.now)
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether bootstrap has finished.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Nodes in the routing tables (IPv4 and IPv6).
    pub fn routing_table_size(&self) -> usize {
        self.table4.len() + self.table6.len()
    }

    /// The IPv4 routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table4
    }

    /// Our address as the latest responder reported it (BEP 42 `ip`).
    pub fn external_address(&self) -> Option<SocketAddr> {
        self.external
    }

    /// Counters.
    pub fn stats(&self) -> DhtStats {
        self.stats
    }

    /// Peers stored for others: (info-hashes, peers).
    pub fn peer_store_size(&self) -> (usize, usize) {
        self.peers.size()
    }

    /// Switches BEP 43 read-only mode: while on, our queries carry `ro=1` (nodes that
    /// stored us drop us when they see it) and incoming DHT queries are dropped; meeting
    /// signaling (registered extension queries) still gets through. Switching it off
    /// looks our own id up again (during the bootstrap too), so that the nodes near us,
    /// which were told not to store us, learn us now.
    pub fn set_read_only(&mut self, read_only: bool, now: Instant) {
        self.advance(now);
        let was = std::mem::replace(&mut self.config.read_only, read_only);
        if was && !read_only {
            let _ = self.start_lookup(self.id, LookupKind::FindNode);
        }
    }

    /// Whether the DHT runs read-only (BEP 43).
    pub fn is_read_only(&self) -> bool {
        self.config.read_only
    }

    /// Our public IP is known (from STUN): unless the id was fixed, take a BEP 42 id for
    /// it, keeping the nodes we know. Call before joining meetings.
    pub fn set_public_ip(&mut self, ip: std::net::IpAddr, now: Instant) {
        self.advance(now);
        if self.config.node_id.is_some() {
            return;
        }
        if bep42::is_valid(&self.id, ip) {
            self.id_ip = Some(ip);
            return;
        }
        let mut random = [0u8; 20];
        self.rng.fill_bytes(&mut random);
        self.id = bep42::secure_id(ip, random);
        self.id_ip = Some(ip);
        let old4 = std::mem::replace(
            &mut self.table4,
            RoutingTable::new(self.id, false, self.now),
        );
        let old6 = std::mem::replace(&mut self.table6, RoutingTable::new(self.id, true, self.now));
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

    /// Starts a get_peers lookup for `info_hash`.
    pub fn get_peers(&mut self, info_hash: InfoHash, now: Instant) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(NodeId(info_hash.0), LookupKind::GetPeers)
    }

    /// Starts a get_peers lookup and then announces us under `info_hash` to the k closest
    /// nodes; `port: None` announces with `implied_port` (our UDP source port, which is
    /// what a NAT's mapping needs).
    pub fn announce(
        &mut self,
        info_hash: InfoHash,
        port: Option<u16>,
        now: Instant,
    ) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(NodeId(info_hash.0), LookupKind::Announce { port })
    }

    /// Starts a find_node lookup for `target`.
    pub fn find_node(&mut self, target: NodeId, now: Instant) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(target, LookupKind::FindNode)
    }

    pub(super) fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    pub(super) fn table_for(&mut self, addr: SocketAddr) -> &mut RoutingTable {
        if addr.is_ipv4() {
            &mut self.table4
        } else {
            &mut self.table6
        }
    }

    fn closest_known(&self, target: &NodeId, count: usize) -> Vec<CompactNode> {
        let mut all = self.table4.closest(target, count, self.now);
        all.extend(self.table6.closest(target, count, self.now));
        all.sort_by_key(|n| target.distance(&n.id));
        all.truncate(count);
        all
    }

    fn bootstrap(&mut self) {
        if self.config.bootstrap.is_empty() && self.routing_table_size() == 0 {
            self.ready = true;
            self.events.push_back(DhtEvent::Ready { nodes: 0 });
            return;
        }
        match self.start_lookup(self.id, LookupKind::FindNode) {
            Ok(id) => self.bootstrap_lookup = Some(id),
            Err(_) => self.bootstrap_retry_at = Some(self.now + self.config.bootstrap_retry),
        }
    }

    pub(super) fn start_lookup(
        &mut self,
        target: NodeId,
        kind: LookupKind,
    ) -> Result<LookupId, DhtError> {
        if self.lookups.len() + self.announcing.len() >= MAX_LOOKUPS {
            return Err(DhtError::TooManyLookups);
        }
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let seeds = self.closest_known(&target, 2 * self.config.k);
        // Bootstrap addresses join when we know too few good nodes to converge alone
        // (nodes remembered from a saved state may all be gone).
        let bootstrap: Vec<SocketAddr> = if self.good_nodes() < self.config.k {
            self.config.bootstrap.clone()
        } else {
            Vec::new()
        };
        let lookup = Lookup::new(
            target,
            kind,
            &seeds,
            &bootstrap,
            self.config.k,
            self.config.alpha,
            self.now,
        );
        self.lookups.insert(id, lookup);
        self.drive(id);
        Ok(id)
    }

    /// Sends what a lookup wants sent, and finishes it when it is done.
    fn drive(&mut self, id: LookupId) {
        let mut queries = Vec::new();
        let done = {
            let Some(lookup) = self.lookups.get_mut(&id) else {
                return;
            };
            while let Some(next) = lookup.next_query() {
                queries.push(next);
            }
            lookup.is_done()
        };
        for (node_id, addr) in queries {
            let target = self.lookups.get(&id).map(|l| (l.target, l.kind));
            let Some((target, kind)) = target else { return };
            let query = match kind {
                LookupKind::FindNode => Query::FindNode {
                    target,
                    want: Want::default(),
                },
                _ => Query::GetPeers {
                    info_hash: InfoHash(target.0),
                    want: Want::default(),
                },
            };
            if !self.send_query(addr, node_id, query, Purpose::Lookup(id)) {
                if let Some(l) = self.lookups.get_mut(&id) {
                    l.on_failure(addr);
                }
            }
        }
        if done {
            self.finish_lookup(id);
        }
    }

    fn finish_lookup(&mut self, id: LookupId) {
        let Some(lookup) = self.lookups.remove(&id) else {
            return;
        };
        let closest = lookup.closest_responded();
        let summary = LookupSummary {
            id,
            kind: lookup.kind,
            target: lookup.target,
            peers: lookup.peers.clone(),
            closest: closest.iter().map(|(n, _)| *n).collect(),
            rpcs: lookup.rpcs,
            elapsed: self.now.saturating_duration_since(lookup.started),
            announced: 0,
        };
        if self.bootstrap_lookup == Some(id) {
            self.bootstrap_lookup = None;
            if self.good_nodes() > 0 {
                self.ready = true;
                self.events.push_back(DhtEvent::Ready {
                    nodes: self.routing_table_size(),
                });
                self.refresh_sparse_buckets();
            } else {
                self.events.push_back(DhtEvent::BootstrapFailed);
                self.bootstrap_retry_at = Some(self.now + self.config.bootstrap_retry);
            }
            return;
        }
        self.topic_finished(id);
        let LookupKind::Announce { port } = lookup.kind else {
            self.events.push_back(DhtEvent::LookupDone(summary));
            return;
        };
        let mut outstanding = 0;
        for (node, token) in closest {
            let Some(token) = token else { continue };
            let query = Query::AnnouncePeer {
                info_hash: InfoHash(lookup.target.0),
                port: port.unwrap_or(0),
                implied_port: port.is_none(),
                token,
            };
            if self.send_query(node.addr, Some(node.id), query, Purpose::Announce(id)) {
                outstanding += 1;
            }
        }
        if outstanding == 0 {
            self.events.push_back(DhtEvent::LookupDone(summary));
        } else {
            self.announcing.insert(
                id,
                Announcing {
                    summary,
                    outstanding,
                    started: lookup.started,
                },
            );
        }
    }

    /// After bootstrap: look up a random id in every bucket farther than our closest
    /// neighbours that is not full (Kademlia's join), at most [`MAX_LOOKUPS`] / 4 of them.
    fn refresh_sparse_buckets(&mut self) {
        let rng = &mut self.rng;
        let mut targets = self.table4.sparse_buckets(|| {
            let mut b = [0u8; 20];
            rng.fill_bytes(&mut b);
            b
        });
        targets.truncate(MAX_LOOKUPS / 4);
        for target in targets {
            let _ = self.start_lookup(target, LookupKind::FindNode);
        }
    }

    fn announce_answered(&mut self, id: LookupId, acknowledged: bool) {
        let Some(a) = self.announcing.get_mut(&id) else {
            return;
        };
        a.outstanding = a.outstanding.saturating_sub(1);
        if acknowledged {
            a.summary.announced += 1;
        }
        if a.outstanding == 0 {
            if let Some(mut a) = self.announcing.remove(&id) {
                a.summary.elapsed = self.now.saturating_duration_since(a.started);
                self.events.push_back(DhtEvent::LookupDone(a.summary));
            }
        }
    }

    /// Builds and sends a query; false if it could not be sent (too many pending).
    pub(super) fn send_query(
        &mut self,
        to: SocketAddr,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            self.stats.dropped_pending_full += 1;
            return false;
        }
        let mut t = [0u8; 4];
        loop {
            self.rng.fill_bytes(&mut t);
            if !self.pending.contains_key(&t) {
                break;
            }
        }
        let msg = Message {
            transaction_id: t.to_vec(),
            version: Some(CLIENT_VERSION.to_vec()),
            read_only: self.config.read_only,
            ip: None,
            body: Body::Query { id: self.id, query },
        };
        let bytes = msg.encode();
        self.transmits.push_back(Transmit {
            destination: to,
            contents: bytes.clone(),
        });
        self.stats.queries_sent += 1;
        let deadline = self.now + self.config.rpc_timeout;
        self.pending.insert(
            t,
            Pending {
                to,
                id,
                purpose,
                bytes,
                deadline,
                attempts: 1,
            },
        );
        true
    }

    pub(super) fn ping(&mut self, to: SocketAddr) {
        self.send_query(to, None, Query::Ping, Purpose::Ping);
    }

    /// Pings queued unknown queriers while fewer than [`MAX_PINGS_IN_FLIGHT`] pings are
    /// pending, so that new nodes enter the table within a round trip without letting a
    /// crowd of queriers make us send a crowd of pings.
    pub(super) fn pump_pings(&mut self) {
        let mut in_flight = self
            .pending
            .values()
            .filter(|p| p.purpose == Purpose::Ping)
            .count();
        while in_flight < MAX_PINGS_IN_FLIGHT {
            let Some(addr) = self.ping_queue.pop_front() else {
                break;
            };
            self.ping(addr);
            in_flight += 1;
        }
    }

    /// A response or error to one of our queries.
    pub(super) fn handle_reply(&mut self, remote: SocketAddr, msg: Message) {
        let Ok(t) = <[u8; 4]>::try_from(msg.transaction_id.as_slice()) else {
            self.stats.dropped_unknown_transaction += 1;
            return;
        };
        let Some(pending) = self.pending.get(&t) else {
            self.stats.dropped_unknown_transaction += 1;
            return;
        };
        if pending.to != remote {
            self.stats.dropped_unexpected_source += 1;
            return;
        }
        let Some(pending) = self.pending.remove(&t) else {
            return;
        };
        match msg.body {
            Body::Response { id, response } => {
                self.stats.responses_received += 1;
                if let Some(ip) = msg.ip {
                    self.external = Some(ip);
                }
                let node = CompactNode { id, addr: remote };
                if let Some(expected) = pending.id.filter(|e| *e != id) {
                    // The node at that address has a new id (it restarted): forget the old.
                    self.table_for(remote).forget(&expected, remote);
                }
                if msg.read_only {
                    self.table_for(remote).remove(&id);
                } else if !self.config.enforce_bep42 || bep42::is_valid(&id, remote.ip()) {
                    let now = self.now;
                    if let Insertion::Cached { ping: Some(stale) } =
                        self.table_for(remote).on_response(node, now)
                    {
                        self.ping(stale.addr);
                    }
                }
                self.on_answer(pending.purpose, remote, id, response);
            }
            Body::Error { code, .. } => {
                self.stats.errors_received += 1;
                tracing::debug!(%remote, code, "DHT error reply");
                self.on_failure(pending.purpose, remote);
            }
            Body::Query { .. } => {}
        }
    }

    fn on_answer(&mut self, purpose: Purpose, remote: SocketAddr, id: NodeId, response: Response) {
        match purpose {
            Purpose::Lookup(lid) => {
                let own = self.id;
                let Some(lookup) = self.lookups.get_mut(&lid) else {
                    return;
                };
                lookup.on_response(remote, id, response.token);
                // Never ourselves: implementations that do not leave the querier out of
                // `nodes` (bittorrent-dht) hand us our own id, and querying and announcing
                // to ourselves would take one of the k places from a real node.
                let others = |nodes: &[CompactNode]| -> Vec<CompactNode> {
                    nodes.iter().filter(|n| n.id != own).copied().collect()
                };
                lookup.add_nodes(&others(&response.nodes));
                lookup.add_nodes(&others(&response.nodes6));
                let new = lookup.add_peers(&response.values);
                let info_hash = lookup.info_hash();
                if !new.is_empty() {
                    self.events.push_back(DhtEvent::PeersFound {
                        lookup: lid,
                        info_hash,
                        peers: new,
                    });
                }
                self.drive(lid);
            }
            Purpose::Announce(lid) => self.announce_answered(lid, true),
            Purpose::Ping | Purpose::Extension => {}
        }
    }

    fn on_failure(&mut self, purpose: Purpose, remote: SocketAddr) {
        match purpose {
            Purpose::Lookup(lid) => {
                if let Some(lookup) = self.lookups.get_mut(&lid) {
                    lookup.on_failure(remote);
                    self.drive(lid);
                }
            }
            Purpose::Announce(lid) => self.announce_answered(lid, false),
            Purpose::Ping | Purpose::Extension => {}
        }
    }

    fn expire_pending(&mut self) {
        let now = self.now;
        let due: Vec<[u8; 4]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in due {
            let Some(p) = self.pending.get_mut(&t) else {
                continue;
            };
            if p.attempts < ATTEMPTS {
                p.attempts += 1;
                p.deadline = now + self.config.rpc_timeout;
                self.transmits.push_back(Transmit {
                    destination: p.to,
                    contents: p.bytes.clone(),
                });
                self.stats.queries_sent += 1;
                continue;
            }
            let Some(p) = self.pending.remove(&t) else {
                continue;
            };
            self.stats.timeouts += 1;
            if let Some(id) = p.id {
                self.table_for(p.to).on_timeout(&id, p.to, now);
            }
            self.on_failure(p.purpose, p.to);
        }
    }

    fn maintenance(&mut self) {
        self.next_maintenance = self.now + MAINTENANCE_EVERY;
        self.peers.expire(self.now);
        self.flood.expire(self.now);
        if self.bootstrap_retry_at.is_some_and(|t| t <= self.now) {
            self.bootstrap_retry_at = None;
            self.bootstrap();
        }
        // Unknown nodes that queried us: ping a few so that they can enter the table.
        for _ in 0..4 {
            let Some(addr) = self.ping_queue.pop_front() else {
                break;
            };
            self.ping(addr);
        }
        // A sparse table (a network that is young, or that we joined at the same moment
        // as many others): look ourselves up again, which fills the buckets near us.
        if self.ready
            && self.routing_table_size() < 2 * self.config.k
            && !self.config.bootstrap.is_empty()
        {
            let _ = self.start_lookup(self.id, LookupKind::FindNode);
        }
        if self.ready {
            let rng = &mut self.rng;
            let mut stale = self.table4.stale_buckets(self.now, || {
                let mut b = [0u8; 20];
                rng.fill_bytes(&mut b);
                b
            });
            stale.truncate(4);
            if !stale.is_empty() {
                self.table4.touch_all(self.now);
            }
            for target in stale {
                let _ = self.start_lookup(target, LookupKind::FindNode);
            }
        }
    }

    fn next_event_time(&self) -> Instant {
        let pending = self.pending.values().map(|p| p.deadline).min();
        // Topics wait for the bootstrap (`run_due_topics` starts nothing before it): a
        // due topic must not make the owner spin until then.
        let topics = self
            .topics
            .iter()
            .filter(|t| self.ready && t.running.is_none())
            .map(|t| t.next_at)
            .min();
        [
            Some(self.next_maintenance),
            pending,
            topics,
            self.bootstrap_retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_maintenance)
    }
}

impl SansIo for Dht {
    type Event = DhtEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.advance(now);
        let _ = local;
        self.handle_krpc(remote, datagram);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.expire_pending();
        self.pump_pings();
        if self.next_maintenance <= self.now {
            self.maintenance();
        }
        if self.bootstrap_retry_at.is_some_and(|t| t <= self.now) {
            self.bootstrap_retry_at = None;
            self.bootstrap();
        }
        self.run_due_topics();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_event_time())
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
