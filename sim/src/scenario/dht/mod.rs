//! `dht`: a simulated Mainline DHT of many nodes, bootstrapped, then measured with
//! announces, get_peers and find_node lookups checked against a brute-force oracle.
//!
//! ## The network
//!
//! * `nodes` DHT nodes with public addresses in `198.18.0.0/16` (RFC 2544, benchmarking)
//!   on port 6881; the first `bootstrap_nodes` of them are the bootstrap nodes of all
//!   others (bootstrap node `i` bootstraps from the ones before it).
//! * `nat_clients` DHT nodes behind NAT presets (cycling through home, port-restricted
//!   cone, symmetric, CGNAT, full cone, restricted cone), each NAT with its own public
//!   address in `198.19.0.0/16` and the node at `192.168.1.10:4000` behind it. They run the
//!   same, unmodified [`Dht`] (not read-only): whether they end up in others' routing
//!   tables is measured ([`NatSummary::in_tables`]), not assumed.
//! * Every host (or NAT'd client's NAT) has an access link whose one-way latency is drawn
//!   uniformly from `[min_delay / 2, max_delay / 2]`: a datagram crosses the sender's and
//!   the receiver's links, so every path's one-way delay lies in `[min_delay, max_delay]`
//!   (10–150 ms by default, median 80 ms). `loss` is the loss of a *path*: each link loses
//!   `1 - sqrt(1 - loss)` of its datagrams.
//! * Members join one after another at `join_rate` per second (the bootstrap nodes first,
//!   100 ms apart), NAT'd clients spread evenly among them; then the network settles for
//!   `settle`.
//!
//! ## The measurement
//!
//! 1. Churn starts when every member has joined, before the network settles (if
//!    `churn > 0`): that fraction of the non-bootstrap public nodes crash after an
//!    exponentially distributed uptime and come back after an exponentially distributed
//!    downtime (both with mean `churn_period`, 30 s by default: a stress test, real DHT
//!    sessions last minutes to hours), as new nodes (new id, empty table, bootstrapping
//!    again). By the time lookups run, about `churn / 2` of the public nodes are down and
//!    as many are freshly restarted. Lookups are run by members that do not churn, so a
//!    lookup never loses its own node.
//! 2. `lookups` announces (get_peers, then announce_peer with `implied_port`), each of a
//!    fresh random info-hash by a random member, `spacing` apart. Success: at least one
//!    node stored the peer.
//! 3. `lookups` get_peers and `lookups` find_node lookups, interleaved `spacing` apart,
//!    by random members. get_peers of announce `j`'s info-hash (by another member)
//!    succeeds if it finds the announcer: its exact socket for a public node, its public
//!    IP for a NAT'd client (behind a symmetric NAT each storing node saw another port).
//!    find_node of a random target succeeds if the k closest nodes it returns are exactly
//!    the k closest to the target among all live nodes at the moment it finished, by a
//!    brute-force scan of every id. NAT'd clients are not expected in the answer (nobody
//!    can reach them unasked), but one that did answer may appear: the oracle ranks the
//!    live public nodes plus the NAT'd clients present in the answer.
//!
//! Every lookup's time is the DHT's own [`LookupSummary::elapsed`] (start to the last
//! answer needed), its RPCs are [`LookupSummary::rpcs`] (queries, retransmissions not
//! counted); "round trips" divide the time by the network's median round trip
//! ([`DhtOutcome::median_rtt`], sampled from the drawn delays).
//!
//! [`LookupSummary::elapsed`]: dhtmeet_core::dht::LookupSummary::elapsed
//! [`LookupSummary::rpcs`]: dhtmeet_core::dht::LookupSummary::rpcs

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use dhtmeet_core::dht::{Dht, DhtConfig, LookupId};
use dhtmeet_core::{Rng, Seed};
use rand_core::Rng as _;

use super::{LAN_HOST, ScenarioError};
use crate::engine::Sim;
use crate::faults::ChurnConfig;
use crate::link::LinkConfig;
use crate::topology::{HostId, HostSpec, Realm};

mod config;
mod measure;
mod report;

pub use config::{CLIENT_PRESETS, DHT_PORT, DRAIN, DhtSimConfig, DhtSimConfigError, MAX_NODES};
pub use report::{
    DhtOutcome, KindSummary, LookupRecord, MeasuredKind, Member, NatSummary, percentile,
};

/// Where a run is, for progress reports on long runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// `joining`, `settling`, `announcing`, `looking up` or `draining`.
    pub phase: &'static str,
    /// Steps of the phase done.
    pub done: usize,
    /// Steps of the phase in all.
    pub total: usize,
    /// Virtual time since the origin.
    pub at: Duration,
}

/// The socket of public node `i`.
pub fn public_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc612_0001 + i as u32)), DHT_PORT)
}

/// The public address of NAT'd client `j`'s (outermost) NAT.
pub fn client_public_ip(j: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc613_0001 + j as u32))
}

/// What a running lookup must achieve.
#[derive(Clone, Copy, Debug)]
enum Goal {
    Announce,
    /// Find this announcer: exactly this socket, or (NAT'd) any port on its IP.
    Peer {
        addr: SocketAddr,
        exact: bool,
    },
    Closest,
}

#[derive(Clone, Copy, Debug)]
struct Running {
    record: usize,
    goal: Goal,
}

struct Run<'p> {
    cfg: DhtSimConfig,
    sim: Sim<Dht>,
    rng: Rng,
    members: Vec<Member>,
    hosts: Vec<HostId>,
    by_host: BTreeMap<HostId, usize>,
    ready: Vec<bool>,
    bootstrap_failed: usize,
    records: Vec<LookupRecord>,
    running: BTreeMap<(HostId, LookupId), Running>,
    progress: &'p mut dyn FnMut(Progress),
}

/// Runs the scenario with `seed`, capturing to `pcap` if given, reporting progress to
/// `progress` now and then.
pub fn run(
    config: &DhtSimConfig,
    seed: u64,
    pcap: Option<Box<dyn Write>>,
    progress: &mut dyn FnMut(Progress),
) -> Result<DhtOutcome, ScenarioError> {
    config.validate()?;
    let sim_seed = Seed::from_u64(seed);
    let mut sim: Sim<Dht> = Sim::new(sim_seed);
    if let Some(out) = pcap {
        sim.capture_pcap(out)?;
    }
    let mut run = Run {
        cfg: config.clone(),
        sim,
        rng: sim_seed.child("scenario/dht").rng(),
        members: Vec::new(),
        hosts: Vec::new(),
        by_host: BTreeMap::new(),
        ready: Vec::new(),
        bootstrap_failed: 0,
        records: Vec::new(),
        running: BTreeMap::new(),
        progress,
    };
    run.join_all()?;
    let restarts = run.start_churn();
    run.settle();
    let table_median = run.table_median();
    run.measure();
    run.finish(seed, table_median, restarts.get())
}

/// A built and settled DHT, without the measurement: for benchmarks and experiments of
/// one's own (start lookups with [`Sim::with_machine`], read [`DhtEvent`]s with
/// [`Sim::run_until_event`]).
#[derive(Debug)]
pub struct DhtNetwork {
    /// The simulation, at the end of the settle phase.
    pub sim: Sim<Dht>,
    /// Every member's host, in join order.
    pub hosts: Vec<HostId>,
    /// Every member, in join order.
    pub members: Vec<Member>,
    /// The median round trip between two random members.
    pub median_rtt: Duration,
}

/// Builds the network of `config` with `seed`: members join, churn starts (if asked),
/// the network settles. Nothing is measured.
pub fn build(config: &DhtSimConfig, seed: u64) -> Result<DhtNetwork, ScenarioError> {
    config.validate()?;
    let sim_seed = Seed::from_u64(seed);
    let mut quiet = |_: Progress| {};
    let mut run = Run {
        cfg: config.clone(),
        sim: Sim::new(sim_seed),
        rng: sim_seed.child("scenario/dht").rng(),
        members: Vec::new(),
        hosts: Vec::new(),
        by_host: BTreeMap::new(),
        ready: Vec::new(),
        bootstrap_failed: 0,
        records: Vec::new(),
        running: BTreeMap::new(),
        progress: &mut quiet,
    };
    run.join_all()?;
    run.start_churn();
    run.settle();
    let median_rtt = run.median_rtt();
    Ok(DhtNetwork {
        sim: run.sim,
        hosts: run.hosts,
        members: run.members,
        median_rtt,
    })
}

fn uniform(rng: &mut Rng) -> f64 {
    crate::link::uniform(rng)
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

impl Run<'_> {
    fn report(&mut self, phase: &'static str, done: usize, total: usize) {
        let at = self.sim.elapsed();
        (self.progress)(Progress {
            phase,
            done,
            total,
            at,
        });
    }

    fn dht_config(&self, index: usize) -> DhtConfig {
        let boot = index.min(self.cfg.bootstrap_nodes);
        DhtConfig {
            bootstrap: (0..boot.min(dhtmeet_core::dht::MAX_BOOTSTRAP))
                .map(public_addr)
                .collect(),
            ..self.cfg.dht.clone()
        }
    }

    /// Runs until `t`, handling every event at the moment it happens.
    fn run_to(&mut self, t: Duration) {
        while let Some(e) = self.sim.run_until_event(t) {
            self.on_event(e);
        }
    }

    fn link(&mut self) -> (LinkConfig, Duration) {
        let (lo, hi) = (self.cfg.min_delay / 2, self.cfg.max_delay / 2);
        let delay = lo + (hi - lo).mul_f64(uniform(&mut self.rng));
        let link = LinkConfig {
            latency: delay,
            loss: 1.0 - (1.0 - self.cfg.loss).sqrt(),
            ..LinkConfig::default()
        };
        (link, delay)
    }

    /// Adds every member at its join time, then lets the network settle.
    fn join_all(&mut self) -> Result<(), ScenarioError> {
        let (n, b, c) = (
            self.cfg.nodes,
            self.cfg.bootstrap_nodes,
            self.cfg.nat_clients,
        );
        // Public node indices in join order, with NAT'd clients spread evenly among them.
        let mut order: Vec<Option<usize>> = Vec::with_capacity(n + c);
        let mut next_client = 0;
        for p in 0..n {
            while p >= b && next_client < c && (next_client + 1) * (n - b) / (c + 1) <= p - b {
                order.push(None);
                next_client += 1;
            }
            order.push(Some(p));
        }
        order.extend((next_client..c).map(|_| None));
        let total = order.len();
        let mut client = 0;
        for (i, who) in order.into_iter().enumerate() {
            let at = if i < b {
                Duration::from_millis(100) * i as u32
            } else {
                Duration::from_millis(100) * b as u32
                    + Duration::from_secs_f64((i - b) as f64 / f64::from(self.cfg.join_rate))
            };
            self.run_to(at);
            let (link, delay) = self.link();
            let (spec, member) = match who {
                Some(p) => {
                    let addr = public_addr(p);
                    let spec =
                        HostSpec::new(format!("dht-{p}"), Realm::Internet, addr).with_link(link);
                    let member = Member {
                        nat: None,
                        local: addr,
                        public_ip: addr.ip(),
                        bootstrap: p < b,
                        churns: false,
                        access_delay: delay,
                        joined_at: at,
                    };
                    (spec, member)
                }
                None => {
                    let preset = CLIENT_PRESETS[client % CLIENT_PRESETS.len()];
                    let ip = client_public_ip(client);
                    let name = format!("client-{client}");
                    let realm = preset.install(&mut self.sim, &name, Realm::Internet, ip, link)?;
                    client += 1;
                    let member = Member {
                        nat: Some(preset),
                        local: LAN_HOST,
                        public_ip: ip,
                        bootstrap: false,
                        churns: false,
                        access_delay: delay,
                        joined_at: at,
                    };
                    (HostSpec::new(name, realm, LAN_HOST), member)
                }
            };
            let mut config = self.dht_config(i);
            config.read_only = who.is_none() && self.cfg.nat_read_only;
            let dht = Dht::new(self.sim.now(), config, self.sim.host_seed(&spec.name))
                .map_err(DhtSimConfigError::from)?;
            let index = self.members.len();
            self.members.push(member);
            self.ready.push(false);
            let host = self.sim.add_host(spec, dht)?;
            self.hosts.push(host);
            self.by_host.insert(host, index);
            if (i + 1) % 500 == 0 || i + 1 == total {
                self.report("joining", i + 1, total);
            }
        }
        Ok(())
    }

    /// Lets the network settle (churning, if asked) before measuring.
    fn settle(&mut self) {
        let settle_end = self.sim.elapsed() + self.cfg.settle;
        let steps = self.cfg.settle.as_secs().max(1) as usize;
        for s in 1..=steps {
            self.run_to(self.sim.elapsed() + self.cfg.settle / steps as u32);
            if s % 10 == 0 || s == steps {
                self.report("settling", s, steps);
            }
        }
        self.run_to(settle_end);
    }

    fn table_median(&self) -> usize {
        let mut sizes: Vec<usize> = self
            .members
            .iter()
            .zip(&self.hosts)
            .filter(|(m, _)| m.nat.is_none())
            .filter_map(|(_, h)| self.sim.machine(*h).map(Dht::routing_table_size))
            .collect();
        sizes.sort_unstable();
        percentile(&sizes, 0.5).unwrap_or(0)
    }

    /// Starts churn; returns the restart counter.
    fn start_churn(&mut self) -> Rc<Cell<usize>> {
        let restarts = Rc::new(Cell::new(0));
        if self.cfg.churn <= 0.0 {
            return restarts;
        }
        let mut candidates: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].nat.is_none() && !self.members[i].bootstrap)
            .collect();
        let count = (self.cfg.churn * candidates.len() as f64).round() as usize;
        for i in 0..count.min(candidates.len()) {
            let j = i + pick(&mut self.rng, candidates.len() - i);
            candidates.swap(i, j);
        }
        candidates.truncate(count);
        candidates.sort_unstable();
        let hosts: Vec<HostId> = candidates.iter().map(|&i| self.hosts[i]).collect();
        for &i in &candidates {
            self.members[i].churns = true;
        }
        let config = self.dht_config(self.cfg.bootstrap_nodes);
        let counter = Rc::clone(&restarts);
        let period = self.cfg.churn_period;
        self.sim.churn(
            &hosts,
            ChurnConfig {
                mean_uptime: period,
                mean_downtime: period,
            },
            Box::new(move |_host, seed, now| {
                counter.set(counter.get() + 1);
                #[allow(clippy::expect_used)] // validated in `run` before anything started
                Dht::new(now, config.clone(), seed).expect("the DHT config was validated")
            }),
        );
        restarts
    }
}
