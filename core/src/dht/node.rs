//! The DHT node: the sans-IO state machine that speaks KRPC on the node's socket.
//!
//! [`Dht`] composes the owned parts listed in the module map (`mod.rs`) and routes
//! between them: each part owns its state, the node hands each what it needs from the
//! others, and every part writes its datagrams and events to one outbox, in order.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::bootstrap::Bootstrap;
use super::config::{DhtConfig, DhtConfigError};
use super::events::Outbox;
use super::events::{DhtError, DhtEvent, DhtStats};
use super::extension::{ExtensionReply, ExtensionVerdict, Extensions};
use super::id::{InfoHash, NodeId};
use super::krpc::{Body, CompactNode, Message, Query, Response};
use super::lookup::{LookupId, LookupKind};
use super::lookups::{Lookups, MAX_LOOKUPS};
use super::queries::{Outgoing, Purpose, Queries};
use super::routing::RoutingTable;
use super::server::{Context, Server};
use super::tables::Tables;
use super::topics::Topics;
use crate::seed::{Rng, Seed};
use crate::state::SavedState;
use crate::transmit::{SansIo, Transmit};

/// Pings of unknown queriers in flight at most.
pub const MAX_PINGS_IN_FLIGHT: usize = 8;
/// How often the node does its maintenance (expiry, bucket refresh, pings).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(10);

/// The Mainline DHT node.
#[derive(Debug)]
pub struct Dht {
    config: DhtConfig,
    now: Instant,
    /// Node ids, transaction ids and bucket-refresh targets, in the order they are drawn.
    rng: Rng,
    tables: Tables,
    bootstrap: Bootstrap,
    queries: Queries,
    server: Server,
    lookups: Lookups,
    topics: Topics,
    extensions: Extensions,
    next_maintenance: Instant,
    out: Outbox,
}

impl Dht {
    /// Validates `config` and starts at `now`: bootstrap begins at once.
    pub fn new(now: Instant, config: DhtConfig, seed: Seed) -> Result<Dht, DhtConfigError> {
        Dht::with_saved(now, config, seed, &SavedState::default())
    }

    /// Like [`Dht::new`], resuming from a saved state: its node id (unless the config
    /// fixes one) and its nodes, which enter the routing table as questionable until they
    /// answer. Bootstrap asks them together with the configured bootstrap nodes.
    pub fn with_saved(
        now: Instant,
        config: DhtConfig,
        seed: Seed,
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
        let mut tables = Tables::new(now, id, id_ip, config.enforce_bep42);
        tables.restore(now, &saved.nodes);
        let mut dht = Dht {
            tables,
            bootstrap: Bootstrap::default(),
            queries: Queries::new(config.rpc_timeout),
            server: Server::new(now, seed.child("dht/tokens").rng()),
            lookups: Lookups::new(config.k, config.alpha),
            topics: Topics::new(config.refresh_interval),
            extensions: Extensions::default(),
            config,
            rng,
            now,
            next_maintenance: now + MAINTENANCE_EVERY,
            out: Outbox::default(),
        };
        dht.start_bootstrap();
        Ok(dht)
    }

    /// The nodes worth remembering, at most `max`: nodes that have not failed, the good
    /// ones (answered within 15 minutes) first, each group most recently seen first.
    /// Remembered nodes not heard from yet are kept too (they were good when saved).
    pub fn nodes_to_save(&self, max: usize) -> Vec<CompactNode> {
        self.tables.nodes_to_save(self.now, max)
    }

    /// The public IP our id was derived for (BEP 42), once [`Dht::set_public_ip`] bound it.
    pub fn id_ip(&self) -> Option<IpAddr> {
        self.tables.id_ip()
    }

    /// Routing-table nodes that answered us within the last 15 minutes.
    pub fn good_nodes(&self) -> usize {
        self.tables.good_count(self.now)
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.tables.id()
    }

    /// Whether bootstrap has finished.
    pub fn is_ready(&self) -> bool {
        self.bootstrap.is_ready()
    }

    /// Nodes in the routing tables (IPv4 and IPv6).
    pub fn routing_table_size(&self) -> usize {
        self.tables.len()
    }

    /// The IPv4 routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        self.tables.ipv4()
    }

    /// Our address as the latest responder reported it (BEP 42 `ip`).
    pub fn external_address(&self) -> Option<SocketAddr> {
        self.tables.external()
    }

    /// Counters.
    pub fn stats(&self) -> DhtStats {
        let mut stats = DhtStats::default();
        self.server.count_into(&mut stats);
        self.queries.count_into(&mut stats);
        stats
    }

    /// Peers stored for others: (info-hashes, peers).
    pub fn peer_store_size(&self) -> (usize, usize) {
        self.server.peer_store_size()
    }

    /// Switches BEP 43 read-only mode: while on, our queries carry `ro=1` (nodes that
    /// stored us drop us when they see it) and incoming DHT queries are dropped; meeting
    /// signaling (registered extension queries) still gets through. Switching it off
    /// looks our own id up again (during the bootstrap too), so that the nodes near us,
    /// which were told not to store us, learn us now.
    pub fn set_read_only(&mut self, now: Instant, read_only: bool) {
        self.advance(now);
        let was = std::mem::replace(&mut self.config.read_only, read_only);
        if was && !read_only {
            let _ = self.start_lookup(self.tables.id(), LookupKind::FindNode);
        }
    }

    /// Whether the DHT runs read-only (BEP 43).
    pub fn is_read_only(&self) -> bool {
        self.config.read_only
    }

    /// Our public IP is known (from STUN): unless the id was fixed, take a BEP 42 id for
    /// it, keeping the nodes we know. Call before joining meetings.
    pub fn set_public_ip(&mut self, now: Instant, ip: IpAddr) {
        self.advance(now);
        if self.config.node_id.is_some() {
            return;
        }
        self.tables.set_public_ip(self.now, ip, &mut self.rng);
    }

    /// Starts a get_peers lookup for `info_hash`.
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(NodeId(info_hash.0), LookupKind::GetPeers)
    }

    /// Starts a get_peers lookup and then announces us under `info_hash` to the k closest
    /// nodes; `port: None` announces with `implied_port` (our UDP source port, which is
    /// what a NAT's mapping needs).
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(NodeId(info_hash.0), LookupKind::Announce { port })
    }

    /// Starts a find_node lookup for `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> Result<LookupId, DhtError> {
        self.advance(now);
        self.start_lookup(target, LookupKind::FindNode)
    }

    /// Keeps `info_hash` looked up (and announced, for [`LookupKind::Announce`]) now and
    /// every [`DhtConfig::refresh_interval`] until [`Dht::unwatch`].
    pub fn watch(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        kind: LookupKind,
    ) -> Result<(), DhtError> {
        self.advance(now);
        self.topics.watch(self.now, info_hash, kind)?;
        self.run_due_topics();
        Ok(())
    }

    /// Stops watching `info_hash` (a running lookup finishes normally).
    pub fn unwatch(&mut self, info_hash: &InfoHash) {
        self.topics.unwatch(info_hash);
    }

    /// Reports queries of `method` as [`DhtEvent::ExtensionQuery`], to be answered with
    /// [`Dht::answer_extension`]. Returns false if the method name is too long or
    /// [`MAX_EXTENSIONS`](super::MAX_EXTENSIONS) are registered.
    pub fn register_extension(&mut self, method: &[u8]) -> bool {
        self.extensions.register(method)
    }

    /// Answers an extension query as its owner judged it: [`ExtensionVerdict::Acknowledge`]
    /// with an empty response; [`ExtensionVerdict::AsUnknownMethod`] exactly as a node
    /// without the method answers (204 Method Unknown; nothing while read-only), so
    /// that invalid queries cannot probe whether the method is registered here.
    pub fn answer_extension(&mut self, reply: ExtensionReply, verdict: ExtensionVerdict) {
        let cx = Context {
            tables: &self.tables,
            extensions: &self.extensions,
            k: self.config.k,
        };
        self.server
            .answer_extension(reply, verdict, self.config.read_only, &cx, &mut self.out);
    }

    /// Sends an extension query with the raw bencoded `args` (which must hold `id`, as
    /// every KRPC query's arguments do) to `to`, retransmitted once if unanswered.
    /// Returns false if it could not be sent (too many queries pending).
    pub fn send_extension(&mut self, to: SocketAddr, method: &[u8], args: Vec<u8>) -> bool {
        let query = Query::Other {
            method: method.to_vec(),
            args,
        };
        self.send_query(Outgoing {
            to,
            id: None,
            query,
            purpose: Purpose::Extension,
        })
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn start_bootstrap(&mut self) {
        if self.config.bootstrap.is_empty() && self.tables.len() == 0 {
            self.bootstrap.set_ready();
            self.out.report(DhtEvent::Ready { nodes: 0 });
            return;
        }
        match self.start_lookup(self.tables.id(), LookupKind::FindNode) {
            Ok(id) => self.bootstrap.started(id),
            Err(_) => self
                .bootstrap
                .retry_at(self.now + self.config.bootstrap_retry),
        }
    }

    fn start_lookup(&mut self, target: NodeId, kind: LookupKind) -> Result<LookupId, DhtError> {
        let seeds = self.tables.closest(self.now, &target, 2 * self.config.k);
        // Bootstrap addresses join when we know too few good nodes to converge alone
        // (nodes remembered from a saved state may all be gone).
        let bootstrap: &[SocketAddr] = if self.good_nodes() < self.config.k {
            &self.config.bootstrap
        } else {
            &[]
        };
        let id = self
            .lookups
            .start(self.now, target, kind, &seeds, bootstrap)?;
        self.drive(id);
        Ok(id)
    }

    /// Sends what a lookup wants sent, and finishes it when it is done.
    fn drive(&mut self, id: LookupId) {
        let Some(step) = self.lookups.step(id) else {
            return;
        };
        for query in step.queries {
            let to = query.to;
            if !self.send_query(query) {
                self.lookups.not_sent(id, to);
            }
        }
        if step.done {
            self.finish_lookup(id);
        }
    }

    fn finish_lookup(&mut self, id: LookupId) {
        let Some(mut done) = self.lookups.finish(self.now, id) else {
            return;
        };
        if self.bootstrap.take_finished(id) {
            if self.good_nodes() > 0 {
                self.bootstrap.set_ready();
                self.out.report(DhtEvent::Ready {
                    nodes: self.tables.len(),
                });
                self.refresh_sparse_buckets();
            } else {
                self.out.report(DhtEvent::BootstrapFailed);
                self.bootstrap
                    .retry_at(self.now + self.config.bootstrap_retry);
            }
            return;
        }
        self.topics.finished(self.now, id);
        let Some(announces) = done.announces() else {
            self.out.report(DhtEvent::LookupDone(done.summary));
            return;
        };
        let mut outstanding = 0;
        for query in announces {
            if self.send_query(query) {
                outstanding += 1;
            }
        }
        if outstanding == 0 {
            self.out.report(DhtEvent::LookupDone(done.summary));
        } else {
            self.lookups.await_announces(done, outstanding);
        }
    }

    /// After bootstrap: look up a random id in every bucket farther than our closest
    /// neighbours that is not full (Kademlia's join), at most [`MAX_LOOKUPS`] / 4 of them.
    fn refresh_sparse_buckets(&mut self) {
        let mut targets = self.tables.sparse_targets(&mut self.rng);
        targets.truncate(MAX_LOOKUPS / 4);
        for target in targets {
            let _ = self.start_lookup(target, LookupKind::FindNode);
        }
    }

    fn announce_answered(&mut self, id: LookupId, acknowledged: bool) {
        if let Some(summary) = self.lookups.announce_answered(self.now, id, acknowledged) {
            self.out.report(DhtEvent::LookupDone(summary));
        }
    }

    /// Sends a query of ours; false if it could not be sent (too many pending).
    fn send_query(&mut self, query: Outgoing) -> bool {
        self.queries.send(
            self.now,
            &mut self.rng,
            self.tables.id(),
            self.config.read_only,
            &mut self.out,
            query,
        )
    }

    fn ping(&mut self, to: SocketAddr) {
        self.send_query(Outgoing {
            to,
            id: None,
            query: Query::Ping,
            purpose: Purpose::Ping,
        });
    }

    /// Pings queued unknown queriers while fewer than [`MAX_PINGS_IN_FLIGHT`] pings are
    /// pending, so that new nodes enter the table within a round trip without letting a
    /// crowd of queriers make us send a crowd of pings.
    fn pump_pings(&mut self) {
        let mut in_flight = self.queries.pings_in_flight();
        while in_flight < MAX_PINGS_IN_FLIGHT {
            let Some(addr) = self.tables.next_to_ping() else {
                break;
            };
            self.ping(addr);
            in_flight += 1;
        }
    }

    /// Handles one KRPC datagram from `remote`.
    fn handle_krpc(&mut self, remote: SocketAddr, datagram: &[u8]) {
        match Message::decode(datagram) {
            Ok(msg) if matches!(msg.body, Body::Query { .. }) => self.handle_query(remote, msg),
            Ok(msg) => self.handle_reply(remote, msg),
            Err(e) => {
                self.server
                    .malformed(self.now, remote, e, self.config.read_only, &mut self.out);
            }
        }
    }

    /// A query from another node: admitted by the server, its sender noted in the
    /// routing tables, then answered.
    fn handle_query(&mut self, remote: SocketAddr, msg: Message) {
        let Body::Query { id, query } = msg.body else {
            return;
        };
        let now = self.now;
        if !self
            .server
            .admit(now, remote, &query, self.config.read_only, &self.extensions)
        {
            return;
        }
        self.tables.note_querier(now, id, remote, msg.read_only);
        self.pump_pings();
        let cx = Context {
            tables: &self.tables,
            extensions: &self.extensions,
            k: self.config.k,
        };
        self.server
            .answer(now, remote, msg.transaction_id, query, &cx, &mut self.out);
    }

    /// A response or error to one of our queries.
    fn handle_reply(&mut self, remote: SocketAddr, msg: Message) {
        let Some(settled) = self.queries.take_reply(self.now, remote, &msg) else {
            return;
        };
        match msg.body {
            Body::Response { id, response } => {
                if let Some(ip) = msg.ip {
                    self.tables.set_external(ip);
                    self.out.report(DhtEvent::AddressReported {
                        by: remote,
                        address: ip,
                    });
                }
                let node = CompactNode { id, addr: remote };
                if let Some(stale) =
                    self.tables
                        .on_answer(self.now, node, settled.id, msg.read_only)
                {
                    self.ping(stale);
                }
                self.on_answer(settled.purpose, remote, id, response);
            }
            Body::Error { code, .. } => {
                tracing::debug!(%remote, code, "DHT error reply");
                self.on_failure(settled.purpose, remote);
            }
            Body::Query { .. } => {}
        }
    }

    fn on_answer(&mut self, purpose: Purpose, remote: SocketAddr, id: NodeId, response: Response) {
        match purpose {
            Purpose::Lookup(lid) => {
                let own = self.tables.id();
                if self
                    .lookups
                    .on_response(lid, own, remote, id, response, &mut self.out)
                {
                    self.drive(lid);
                }
            }
            Purpose::Announce(lid) => self.announce_answered(lid, true),
            Purpose::Ping | Purpose::Extension => {}
        }
    }

    fn on_failure(&mut self, purpose: Purpose, remote: SocketAddr) {
        match purpose {
            Purpose::Lookup(lid) => {
                if self.lookups.on_failure(lid, remote) {
                    self.drive(lid);
                }
            }
            Purpose::Announce(lid) => self.announce_answered(lid, false),
            Purpose::Ping | Purpose::Extension => {}
        }
    }

    /// Lets lookups move on past queries whose soft timeout passed; retransmits overdue
    /// queries once; the ones overdue again have failed.
    fn expire_queries(&mut self) {
        let now = self.now;
        for stalled in self.queries.stalled(now) {
            if let Purpose::Lookup(lid) = stalled.purpose {
                if self.lookups.on_stalled(lid, stalled.to) {
                    self.drive(lid);
                }
            }
        }
        for t in self.queries.overdue(now) {
            let Some(failed) = self.queries.retry_or_expire(now, t, &mut self.out) else {
                continue;
            };
            if let Some(id) = failed.id {
                self.tables.on_timeout(now, &id, failed.to);
            }
            self.on_failure(failed.purpose, failed.to);
        }
    }

    fn maintenance(&mut self) {
        self.next_maintenance = self.now + MAINTENANCE_EVERY;
        self.server.expire(self.now);
        if self.bootstrap.take_due_retry(self.now) {
            self.start_bootstrap();
        }
        // Unknown nodes that queried us: ping a few so that they can enter the table.
        for _ in 0..4 {
            let Some(addr) = self.tables.next_to_ping() else {
                break;
            };
            self.ping(addr);
        }
        // A sparse table (a network that is young, or that we joined at the same moment
        // as many others): look ourselves up again, which fills the buckets near us.
        let ready = self.bootstrap.is_ready();
        if ready && self.tables.len() < 2 * self.config.k && !self.config.bootstrap.is_empty() {
            let _ = self.start_lookup(self.tables.id(), LookupKind::FindNode);
        }
        if ready {
            let stale = self.tables.refresh_targets(self.now, &mut self.rng, 4);
            for target in stale {
                let _ = self.start_lookup(target, LookupKind::FindNode);
            }
        }
    }

    /// Starts the lookups of the topics that are due (none before the bootstrap).
    fn run_due_topics(&mut self) {
        if !self.bootstrap.is_ready() {
            return;
        }
        for due in self.topics.due(self.now) {
            let started = self.start_lookup(NodeId(due.info_hash.0), due.kind).ok();
            self.topics.started(self.now, due, started);
        }
    }

    fn next_event_time(&self) -> Instant {
        // Topics wait for the bootstrap (`run_due_topics` starts nothing before it): a
        // due topic must not make the owner spin until then.
        let topics = if self.bootstrap.is_ready() {
            self.topics.next_due()
        } else {
            None
        };
        [
            Some(self.next_maintenance),
            self.queries.next_deadline(),
            topics,
            self.bootstrap.next_retry(),
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
        self.expire_queries();
        self.pump_pings();
        if self.next_maintenance <= self.now {
            self.maintenance();
        }
        if self.bootstrap.take_due_retry(self.now) {
            self.start_bootstrap();
        }
        self.run_due_topics();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<DhtEvent> {
        self.out.poll_event()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_event_time())
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "hostile_tests.rs"]
mod hostile_tests;
