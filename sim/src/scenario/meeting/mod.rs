//! `meeting`: members behind NAT presets meet through a small public DHT and talk.
//!
//! ## The network
//!
//! * `dht_nodes` [`Node`]s with the DHT on, at public addresses in `198.18.0.0/16` port
//!   6881 (as the `dht` scenario); the first is the bootstrap node of all the others. They
//!   join 50 ms apart, then the DHT settles for [`MeetingSimConfig::settle`].
//! * One public STUN-capable [`Node`] (no DHT) at [`STUN_SERVERS`]`[0]`.
//! * Member `i` behind preset `presets[i]`: its NAT's public address is
//!   [`site_public`]`(i + 1)` and the member sits at [`LAN_HOST`] in the NAT's own realm
//!   (its `local_addr`, the ICE host candidate, is that LAN socket); an `open` member sits
//!   at `site_public(i + 1):4000` on the Internet. Members ask the STUN node for their
//!   address and bootstrap from the bootstrap node.
//! * Links: DHT nodes and members' access links 10 ms ± 2 ms each way
//!   ([`access_link`]), the STUN node 20 ms ± 2 ms ([`server_link`]).
//!
//! ## The run
//!
//! 1. Members are added at once, and all [`Node::join`] one generated code
//!    [`MeetingSimConfig::join_after`] later (STUN and the DHT bootstrap are done by then).
//! 2. The run goes on until every pair of members is connected both ways
//!    ([`Event::PeerConnected`] on each side, not lost since) or
//!    [`MeetingSimConfig::deadline`] after the join.
//! 3. Every member broadcasts one message of [`MESSAGE_LEN`] bytes (distinct per sender,
//!    from the seed), and the run goes on until every connected pair has delivered both
//!    ways, then [`DUPLICATE_WATCH`] more to catch duplicates (at most
//!    [`DELIVERY_DEADLINE`] in all).
//!
//! A pair's connect time is virtual time from the join to the later of the two sides'
//! first `PeerConnected`; its `via` is what those two events said (see
//! [`PairOutcome::via`]).
//!
//! Every member runs port prediction unless [`MeetingSimConfig::port_prediction`] is
//! off; the expected outcomes follow ([`predict`] or [`predict_without_prediction`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::{Event, Node, NodeConfig, SansIo as _, Seed, Via};
use rand_core::Rng as _;

use super::{LAN_HOST, STUN_SERVERS, ScenarioError, access_link, server_link, site_public};
use crate::engine::{PcapSummary, Sim, SimEvent, SimStats};
use crate::preset::NatPreset;
use crate::topology::{HostId, HostSpec, Realm};
use crate::trace::TraceHash;

pub mod matrix;
mod prediction;

pub use prediction::{Prediction, predict, predict_without_prediction, punch_predicted};

/// Members at most (one `site_public` address each).
pub const MAX_MEMBERS: usize = 64;

/// DHT nodes at most.
pub const MAX_DHT_NODES: usize = 10_000;

/// The size of each member's broadcast message (above one SCTP fragment's worth).
pub const MESSAGE_LEN: usize = 3000;

/// How long the scenario waits for broadcast messages at most.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

/// How long the scenario keeps running after the last expected message, to see
/// duplicates.
pub const DUPLICATE_WATCH: Duration = Duration::from_secs(2);

/// The DHT port of every DHT node.
pub const DHT_PORT: u16 = 6881;

/// The `meeting` scenario's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MeetingSimConfig {
    /// One preset per member (at least two members).
    pub presets: Vec<NatPreset>,
    /// Public DHT nodes (the first is the bootstrap node).
    pub dht_nodes: usize,
    /// Virtual time the DHT settles before the members arrive.
    pub settle: Duration,
    /// Virtual time between the members' arrival and their join.
    pub join_after: Duration,
    /// Virtual time after the join by which every pair should be connected.
    pub deadline: Duration,
    /// Random loss (0–1) on each member's access link, both ways: a path between two
    /// members crosses two such links.
    pub member_loss: f64,
    /// Every member's [`MeetingConfig::port_prediction`](dhtmeet_core::MeetingConfig):
    /// on by default; off shows the behaviour before port prediction
    /// (`--no-prediction`), and the expected outcomes are then
    /// [`predict_without_prediction`]'s.
    pub port_prediction: bool,
}

impl MeetingSimConfig {
    /// Members behind `presets` over a DHT of `dht_nodes`, with the default timings
    /// (settle 5 s, join 3 s after arriving, deadline 120 s).
    pub fn new(presets: Vec<NatPreset>, dht_nodes: usize) -> Self {
        MeetingSimConfig {
            presets,
            dht_nodes,
            settle: Duration::from_secs(5),
            join_after: Duration::from_secs(3),
            deadline: Duration::from_secs(120),
            member_loss: 0.0,
            port_prediction: true,
        }
    }

    /// The expected outcome for members behind `a` and `b` under these settings:
    /// [`predict`], or [`predict_without_prediction`] with port prediction off.
    pub fn prediction(&self, a: NatPreset, b: NatPreset) -> Prediction {
        if self.port_prediction {
            predict(a, b)
        } else {
            predict_without_prediction(a, b)
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), MeetingSimConfigError> {
        if !(2..=MAX_MEMBERS).contains(&self.presets.len()) {
            return Err(MeetingSimConfigError::MemberCount);
        }
        if !(1..=MAX_DHT_NODES).contains(&self.dht_nodes) {
            return Err(MeetingSimConfigError::DhtNodeCount);
        }
        if !(0.0..1.0).contains(&self.member_loss) {
            return Err(MeetingSimConfigError::Loss);
        }
        Ok(())
    }
}

/// A [`MeetingSimConfig`] that cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeetingSimConfigError {
    /// Fewer than 2 or more than [`MAX_MEMBERS`] members.
    #[error("a meeting needs between 2 and {MAX_MEMBERS} members")]
    MemberCount,
    /// No DHT node, or more than [`MAX_DHT_NODES`].
    #[error("the DHT needs between 1 and {MAX_DHT_NODES} nodes")]
    DhtNodeCount,
    /// Loss outside 0 ≤ P < 1.
    #[error("loss must be at least 0 and below 1")]
    Loss,
}

/// One member of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberReport {
    /// The preset it sat behind.
    pub preset: NatPreset,
    /// Its socket (in its LAN, or public if `open`).
    pub local: SocketAddr,
    /// Its member id in the meeting.
    pub id: MemberId,
    /// Its public address as STUN saw it, if STUN answered.
    pub public: Option<SocketAddr>,
}

/// One pair of members (`a < b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairOutcome {
    /// The first member's index.
    pub a: usize,
    /// The second member's index.
    pub b: usize,
    /// Both sides saw the data channel open, and neither lost it before the messages.
    pub connected: bool,
    /// Virtual time from the join to the earlier side's first [`Event::PeerDiscovered`]
    /// of the other (the DHT gave it an address on the other's public IP).
    pub discover_time: Option<Duration>,
    /// Virtual time from the join to the later side's first `PeerConnected`.
    pub connect_time: Option<Duration>,
    /// How the pair connected: [`Via::Predicted`] if either side's first
    /// `PeerConnected` of the other said so (a predicted path is one both ends
    /// confirmed, though a side that set up its session before the path was found
    /// reports [`Via::Direct`]), [`Via::Direct`] if both said direct; `None` unless
    /// [`PairOutcome::connected`]. [`PairOutcome::via_sides`] has each side's word.
    pub via: Option<Via>,
    /// The `via` of `a`'s first `PeerConnected` of `b`, and of `b`'s of `a` (`None`
    /// where there was none).
    pub via_sides: (Option<Via>, Option<Via>),
    /// Whether the expected outcome leaves room for a direct connection
    /// ([`PairOutcome::prediction`] is [`Prediction::Connects`] or
    /// [`Prediction::DependsOnOrder`]).
    pub predicted: bool,
    /// The expected outcome for the pair ([`MeetingSimConfig::prediction`]).
    pub prediction: Prediction,
}

impl PairOutcome {
    /// Whether the two sides' `PeerConnected` events named different `via`s.
    pub fn via_differs(&self) -> bool {
        matches!(self.via_sides, (Some(x), Some(y)) if x != y)
    }
}

/// The `via` of a pair from each side's (see [`PairOutcome::via`]).
fn pair_via(connected: bool, sides: (Option<Via>, Option<Via>)) -> Option<Via> {
    if !connected {
        return None;
    }
    match sides {
        (Some(Via::Predicted), _) | (_, Some(Via::Predicted)) => Some(Via::Predicted),
        _ => Some(Via::Direct),
    }
}

/// What the `meeting` scenario found.
#[derive(Debug)]
pub struct MeetingOutcome {
    /// The seed of the run.
    pub seed: u64,
    /// The settings of the run.
    pub config: MeetingSimConfig,
    /// Every member, in index order.
    pub members: Vec<MemberReport>,
    /// Every pair, `(0, 1), (0, 2), …`.
    pub pairs: Vec<PairOutcome>,
    /// Virtual time of the join.
    pub joined_at: Duration,
    /// Messages that should arrive: one per connected pair and direction.
    pub messages_expected: usize,
    /// Messages that arrived (intact or not, duplicates included).
    pub messages_delivered: usize,
    /// Expected messages that arrived exactly once.
    pub messages_once: usize,
    /// Messages whose bytes differ from what was sent.
    pub corrupted: usize,
    /// Messages that arrived more than once (counting each extra copy).
    pub duplicates: usize,
    /// Broadcasts refused for a full send queue (per receiver).
    pub refused: usize,
    /// Every expected message arrived exactly once, byte for byte, and nothing else did.
    pub intact: bool,
    /// The hash of the run's trace.
    pub trace_hash: TraceHash,
    /// Counters of the run.
    pub stats: SimStats,
    /// What the pcap capture holds, if one was written.
    pub pcap: Option<PcapSummary>,
}

impl MeetingOutcome {
    /// Whether every pair connected.
    pub fn all_connected(&self) -> bool {
        self.pairs.iter().all(|p| p.connected)
    }
}

/// The socket of DHT node `i`.
pub fn dht_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc612_0001 + i as u32)), DHT_PORT)
}

/// The message member `i` broadcasts: its index, then bytes from the run's seed.
pub fn message_of(seed: u64, i: usize) -> Vec<u8> {
    let mut rng = Seed::from_u64(seed)
        .child(&format!("scenario/meeting/message/{i}"))
        .rng();
    let mut m = vec![0u8; MESSAGE_LEN];
    rng.fill_bytes(&mut m);
    m[..8].copy_from_slice(&(i as u64).to_be_bytes());
    m
}

struct Run {
    sim: Sim<Node>,
    seed: u64,
    /// Member hosts, by member index.
    hosts: Vec<HostId>,
    by_host: BTreeMap<HostId, usize>,
    by_id: BTreeMap<MemberId, usize>,
    joined_at: Duration,
    /// First `PeerDiscovered` of (observer, peer).
    first_discovered: BTreeMap<(usize, usize), Duration>,
    /// Members' public IPs (their own, or their outermost NAT's).
    public_ips: BTreeMap<IpAddr, usize>,
    /// First `PeerConnected` of (observer, peer), and its `via`.
    first_connected: BTreeMap<(usize, usize), (Duration, Via)>,
    /// Data channels open now, (observer, peer).
    live: BTreeSet<(usize, usize)>,
    /// (sender, receiver) → copies received, and how many were intact.
    received: BTreeMap<(usize, usize), (usize, usize)>,
}

/// Runs the scenario with `seed`, capturing to `pcap` if given.
pub fn run(
    config: &MeetingSimConfig,
    seed: u64,
    pcap: Option<Box<dyn Write>>,
) -> Result<MeetingOutcome, ScenarioError> {
    config.validate()?;
    let sim_seed = Seed::from_u64(seed);
    let mut sim: Sim<Node> = Sim::new(sim_seed);
    if let Some(out) = pcap {
        sim.capture_pcap(out)?;
    }
    let mut run = Run {
        sim,
        seed,
        hosts: Vec::new(),
        by_host: BTreeMap::new(),
        by_id: BTreeMap::new(),
        joined_at: Duration::ZERO,
        first_discovered: BTreeMap::new(),
        public_ips: BTreeMap::new(),
        first_connected: BTreeMap::new(),
        live: BTreeSet::new(),
        received: BTreeMap::new(),
    };
    run.build_dht(config)?;
    let locals = run.add_members(config)?;
    run.run_to(run.sim.elapsed() + config.join_after);
    let code = code::generate(&mut sim_seed.child("scenario/meeting/code").rng());
    let members = run.join(config, &code, &locals)?;
    run.run_until_connected(config.deadline);
    let connected: Vec<(usize, usize)> = all_pairs(members.len())
        .filter(|&(a, b)| run.pair_connected(a, b))
        .collect();
    let refused = run.broadcast_all(members.len());
    let expected: usize = connected.len() * 2;
    run.run_until_delivered(&connected);
    let messages_delivered = run.received.values().map(|r| r.0).sum();
    let corrupted = run.received.values().map(|r| r.0 - r.1).sum();
    let duplicates = run.received.values().map(|r| r.0.saturating_sub(1)).sum();
    let messages_once = connected
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .filter(|k| run.received.get(k) == Some(&(1, 1)))
        .count();
    let intact = messages_once == expected && messages_delivered == expected;
    let pairs = all_pairs(members.len())
        .map(|(a, b)| {
            let firsts = (
                run.first_connected.get(&(a, b)),
                run.first_connected.get(&(b, a)),
            );
            let is_connected = connected.contains(&(a, b));
            let via_sides = (firsts.0.map(|f| f.1), firsts.1.map(|f| f.1));
            let (pa, pb) = (config.presets[a], config.presets[b]);
            let prediction = config.prediction(pa, pb);
            PairOutcome {
                a,
                b,
                connected: is_connected,
                connect_time: match firsts {
                    (Some(x), Some(y)) => Some(x.0.max(y.0).saturating_sub(run.joined_at)),
                    _ => None,
                },
                via: pair_via(is_connected, via_sides),
                via_sides,
                discover_time: [(a, b), (b, a)]
                    .iter()
                    .filter_map(|k| run.first_discovered.get(k))
                    .min()
                    .map(|t| t.saturating_sub(run.joined_at)),
                predicted: prediction != Prediction::Fails,
                prediction,
            }
        })
        .collect();
    let pcap = run.sim.finish_pcap()?;
    Ok(MeetingOutcome {
        seed,
        config: config.clone(),
        members,
        pairs,
        joined_at: run.joined_at,
        messages_expected: expected,
        messages_delivered,
        messages_once,
        corrupted,
        duplicates,
        refused,
        intact,
        trace_hash: run.sim.trace_hash(),
        stats: run.sim.stats(),
        pcap,
    })
}

fn all_pairs(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |a| (a + 1..n).map(move |b| (a, b)))
}

impl Run {
    fn build_dht(&mut self, config: &MeetingSimConfig) -> Result<(), ScenarioError> {
        let stun = Node::new(
            self.sim.now(),
            NodeConfig {
                dht: None,
                local_addr: Some(STUN_SERVERS[0]),
                ..NodeConfig::new(self.sim.host_seed("stun"))
            },
        )?;
        let spec = HostSpec::new("stun", Realm::Internet, STUN_SERVERS[0]).with_link(server_link());
        self.sim.add_host(spec, stun)?;
        for i in 0..config.dht_nodes {
            let addr = dht_addr(i);
            let name = format!("dht-{i}");
            let mut node_config = NodeConfig::new(self.sim.host_seed(&name));
            node_config.local_addr = Some(addr);
            node_config.dht = Some(DhtConfig {
                bootstrap: if i == 0 {
                    Vec::new()
                } else {
                    vec![dht_addr(0)]
                },
                ..DhtConfig::default()
            });
            let node = Node::new(self.sim.now(), node_config)?;
            let spec = HostSpec::new(name, Realm::Internet, addr).with_link(access_link());
            self.sim.add_host(spec, node)?;
            self.run_to(self.sim.elapsed() + Duration::from_millis(50));
        }
        self.run_to(self.sim.elapsed() + config.settle);
        Ok(())
    }

    /// Adds every member behind its preset; returns their sockets.
    fn add_members(&mut self, config: &MeetingSimConfig) -> Result<Vec<SocketAddr>, ScenarioError> {
        let mut locals = Vec::new();
        for (i, &preset) in config.presets.iter().enumerate() {
            let name = format!("member-{i}");
            // `validate` bounds the members to 64, so `i + 1` fits a byte.
            let public = site_public((i + 1) as u8);
            let mut uplink = access_link();
            uplink.loss = config.member_loss;
            let (realm, local, link) = match preset {
                NatPreset::Open => (
                    Realm::Internet,
                    SocketAddr::new(public, LAN_HOST.port()),
                    uplink,
                ),
                _ => {
                    let realm =
                        preset.install(&mut self.sim, &name, Realm::Internet, public, uplink)?;
                    (realm, LAN_HOST, Default::default())
                }
            };
            let mut node_config = NodeConfig::new(self.sim.host_seed(&name));
            node_config.stun.servers = vec![STUN_SERVERS[0]];
            node_config.local_addr = Some(local);
            node_config.meeting.port_prediction = config.port_prediction;
            node_config.dht = Some(DhtConfig {
                bootstrap: vec![dht_addr(0)],
                ..DhtConfig::default()
            });
            let node = Node::new(self.sim.now(), node_config)?;
            let host = self
                .sim
                .add_host(HostSpec::new(name, realm, local).with_link(link), node)?;
            self.by_host.insert(host, i);
            self.public_ips.insert(public, i);
            self.hosts.push(host);
            locals.push(local);
        }
        Ok(locals)
    }

    fn join(
        &mut self,
        config: &MeetingSimConfig,
        code: &str,
        locals: &[SocketAddr],
    ) -> Result<Vec<MemberReport>, ScenarioError> {
        self.joined_at = self.sim.elapsed();
        let mut members = Vec::new();
        for (i, &host) in self.hosts.clone().iter().enumerate() {
            let joined = self
                .sim
                .with_machine(host, |n, now| {
                    n.join(now, code, false)
                        .map(|(id, _)| (id, n.health().public_address))
                })
                .ok_or(ScenarioError::Failed {
                    what: "a member's host is down",
                    after: self.sim.elapsed(),
                    hash: self.sim.trace_hash(),
                })?;
            let (id, public) = joined?;
            self.by_id.insert(id, i);
            members.push(MemberReport {
                preset: config.presets[i],
                local: locals[i],
                id,
                public,
            });
        }
        Ok(members)
    }

    fn pair_connected(&self, a: usize, b: usize) -> bool {
        [(a, b), (b, a)].iter().all(|k| self.live.contains(k))
    }

    fn run_until_connected(&mut self, deadline: Duration) {
        let n = self.hosts.len();
        let end = self.joined_at + deadline;
        while !all_pairs(n).all(|(a, b)| self.pair_connected(a, b)) {
            match self.sim.run_until_event(end) {
                Some(e) => self.on_event(e),
                None => break,
            }
        }
    }

    /// Every member broadcasts its message; returns the receivers refused for a full
    /// queue.
    fn broadcast_all(&mut self, n: usize) -> usize {
        let mut refused = 0;
        for i in 0..n {
            let message = message_of(self.seed, i);
            refused += self
                .sim
                .with_machine(self.hosts[i], |node, now| {
                    let full = node.broadcast(&message);
                    // The sessions write on their next timeout; do it now (a spurious
                    // timeout is harmless).
                    node.handle_timeout(now);
                    full.len()
                })
                .unwrap_or(0);
        }
        refused
    }

    fn run_until_delivered(&mut self, connected: &[(usize, usize)]) {
        let end = self.sim.elapsed() + DELIVERY_DEADLINE;
        let done = |r: &Run| {
            connected
                .iter()
                .flat_map(|&(a, b)| [(a, b), (b, a)])
                .all(|k| r.received.contains_key(&k))
        };
        while !done(self) {
            match self.sim.run_until_event(end) {
                Some(e) => self.on_event(e),
                None => break,
            }
        }
        let watch = (self.sim.elapsed() + DUPLICATE_WATCH).min(end.max(self.sim.elapsed()));
        self.run_to(watch);
    }

    fn run_to(&mut self, t: Duration) {
        while let Some(e) = self.sim.run_until_event(t) {
            self.on_event(e);
        }
    }

    fn on_event(&mut self, e: SimEvent<Event>) {
        let Some(&me) = self.by_host.get(&e.host) else {
            return; // a DHT or STUN node
        };
        let peer = |m: &MemberId| self.by_id.get(m).copied();
        match &e.event {
            Event::PeerDiscovered { addr } => {
                if let Some(&p) = self.public_ips.get(&addr.ip()) {
                    self.first_discovered.entry((me, p)).or_insert(e.at);
                }
            }
            Event::PeerConnected { member, via } => {
                if let Some(p) = peer(member) {
                    self.first_connected.entry((me, p)).or_insert((e.at, *via));
                    self.live.insert((me, p));
                }
            }
            Event::PeerReconnecting { member, .. } | Event::PeerDisconnected { member, .. } => {
                if let Some(p) = peer(member) {
                    if self.live.remove(&(me, p)) {
                        tracing::debug!(me, p, event = ?e.event, "member lost a channel");
                    }
                }
            }
            Event::Message { member, data } => {
                if let Some(p) = peer(member) {
                    let intact = *data == message_of(self.seed, p);
                    let r = self.received.entry((p, me)).or_default();
                    r.0 += 1;
                    r.1 += usize::from(intact);
                }
            }
            _ => {}
        }
    }
}
