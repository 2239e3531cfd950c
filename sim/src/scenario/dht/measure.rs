//! The measurement of the `dht` scenario: announces, get_peers and find_node lookups by
//! members that do not churn, each checked as it finishes (find_node against the
//! brute-force oracle), and the outcome built from their records.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use dhtmeet_core::dht::krpc::CompactNode;
use dhtmeet_core::dht::{DhtEvent, InfoHash, LookupSummary, NodeId};
use rand_core::Rng as _;

use super::config::{CLIENT_PRESETS, DRAIN};
use super::{
    DhtOutcome, Goal, KindSummary, LookupRecord, MeasuredKind, NatSummary, Run, Running,
    ScenarioError, percentile, pick,
};
use crate::engine::SimEvent;
use crate::topology::HostId;

impl Run<'_> {
    pub(super) fn on_event(&mut self, e: SimEvent<DhtEvent>) {
        let Some(&index) = self.by_host.get(&e.host) else {
            return;
        };
        match e.event {
            DhtEvent::Ready { .. } => {
                if let Some(r) = self.ready.get_mut(index) {
                    *r = true;
                }
            }
            DhtEvent::BootstrapFailed => self.bootstrap_failed += 1,
            DhtEvent::PeersFound { lookup, peers, .. } => {
                let Some(run) = self.running.get(&(e.host, lookup)).copied() else {
                    return;
                };
                let record = &mut self.records[run.record];
                if let Goal::Peer { addr, exact } = run.goal {
                    if record.first_peer.is_none() && peers.iter().any(|p| matches(*p, addr, exact))
                    {
                        record.first_peer = Some(e.at.saturating_sub(record.started));
                    }
                }
            }
            DhtEvent::LookupDone(summary) => {
                if let Some(run) = self.running.remove(&(e.host, summary.id)) {
                    self.lookup_done(e.host, run, &summary);
                }
            }
            // Anything else (signaling over KRPC extensions, …) is not this scenario's.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn lookup_done(&mut self, host: HostId, run: Running, s: &LookupSummary) {
        let success = match run.goal {
            Goal::Announce => s.announced > 0,
            Goal::Peer { addr, exact } => s.peers.iter().any(|p| matches(*p, addr, exact)),
            Goal::Closest => self.is_true_closest(host, s),
        };
        let nat_in_answer = s.closest.iter().filter(|n| self.is_client(n.addr)).count();
        let record = &mut self.records[run.record];
        record.finished = true;
        record.success = success;
        record.elapsed = s.elapsed;
        record.rpcs = s.rpcs;
        record.count = match run.goal {
            Goal::Announce => s.announced,
            _ => nat_in_answer,
        };
    }

    fn is_client(&self, addr: SocketAddr) -> bool {
        match addr.ip() {
            IpAddr::V4(ip) => (u32::from(ip) >> 16) == 0xc613,
            IpAddr::V6(_) => false,
        }
    }

    /// The oracle: the k closest live nodes to the target, by a scan of every member.
    fn is_true_closest(&self, querier: HostId, s: &LookupSummary) -> bool {
        let mut all: Vec<CompactNode> = self
            .members
            .iter()
            .zip(&self.hosts)
            .filter(|(m, h)| m.nat.is_none() && **h != querier)
            .filter_map(|(m, h)| {
                let id = self.sim.machine(*h)?.id();
                Some(CompactNode { id, addr: m.local })
            })
            .collect();
        all.extend(s.closest.iter().filter(|n| self.is_client(n.addr)).copied());
        let k = self.cfg.dht.k;
        let target = s.target;
        if all.len() > k {
            all.select_nth_unstable_by_key(k, |n| target.distance(&n.id));
            all.truncate(k);
        }
        all.sort_by_key(|n| target.distance(&n.id));
        all == s.closest
    }

    /// A member that does not churn, other than `not`.
    fn stable_member(&mut self, not: Option<usize>) -> usize {
        loop {
            let i = pick(&mut self.rng, self.members.len());
            if !self.members[i].churns && Some(i) != not {
                return i;
            }
        }
    }

    fn random_id(&mut self) -> [u8; 20] {
        let mut b = [0u8; 20];
        self.rng.fill_bytes(&mut b);
        b
    }

    pub(super) fn start(
        &mut self,
        kind: MeasuredKind,
        member: usize,
        goal: Goal,
        target: [u8; 20],
    ) {
        let host = self.hosts[member];
        let record = self.records.len();
        self.records.push(LookupRecord {
            kind,
            member,
            started: self.sim.elapsed(),
            finished: false,
            success: false,
            elapsed: Duration::ZERO,
            first_peer: None,
            rpcs: 0,
            count: 0,
        });
        let started = self.sim.with_machine(host, |dht, now| match kind {
            MeasuredKind::Announce => dht.announce(now, InfoHash(target), None),
            MeasuredKind::GetPeers => dht.get_peers(now, InfoHash(target)),
            MeasuredKind::FindNode => dht.find_node(now, NodeId(target)),
        });
        if let Some(Ok(id)) = started {
            self.running.insert((host, id), Running { record, goal });
        }
        // A refusal (too many lookups) stays a failed, unfinished record. The lookup may
        // already be done (a DHT that knows nobody): its event is handled by `run_to`.
    }

    pub(super) fn wait_for_running(&mut self, phase: &'static str) {
        let deadline = self.sim.elapsed() + DRAIN;
        while !self.running.is_empty() && self.sim.elapsed() < deadline {
            self.run_to(self.sim.elapsed() + Duration::from_secs(1));
        }
        let left = self.running.len();
        self.report(phase, self.records.len() - left, self.records.len());
    }

    pub(super) fn measure(&mut self) {
        let l = self.cfg.lookups;
        let mut hashes = Vec::with_capacity(l);
        let mut announcers = Vec::with_capacity(l);
        for j in 0..l {
            self.run_to(self.sim.elapsed() + self.cfg.spacing);
            let a = self.stable_member(None);
            let hash = self.random_id();
            self.start(MeasuredKind::Announce, a, Goal::Announce, hash);
            hashes.push(hash);
            announcers.push(a);
            if (j + 1) % 100 == 0 || j + 1 == l {
                self.report("announcing", j + 1, l);
            }
        }
        self.wait_for_running("announced");
        for j in 0..l {
            self.run_to(self.sim.elapsed() + self.cfg.spacing);
            let announcer = &self.members[announcers[j]];
            let goal = match announcer.nat {
                None => Goal::Peer {
                    addr: announcer.local,
                    exact: true,
                },
                Some(_) => Goal::Peer {
                    addr: SocketAddr::new(announcer.public_ip, 0),
                    exact: false,
                },
            };
            let q = self.stable_member(Some(announcers[j]));
            self.start(MeasuredKind::GetPeers, q, goal, hashes[j]);
            self.run_to(self.sim.elapsed() + self.cfg.spacing);
            let q = self.stable_member(None);
            let target = self.random_id();
            self.start(MeasuredKind::FindNode, q, Goal::Closest, target);
            if (j + 1) % 100 == 0 || j + 1 == l {
                self.report("looking up", j + 1, l);
            }
        }
        self.wait_for_running("draining");
    }

    pub(super) fn finish(
        mut self,
        seed: u64,
        table_median: usize,
        restarts: usize,
    ) -> Result<DhtOutcome, ScenarioError> {
        let pcap = self.sim.finish_pcap()?;
        let median_rtt = self.median_rtt();
        let summary =
            |kind| KindSummary::of(self.records.iter().filter(|r| r.kind == kind), median_rtt);
        let (announce, get_peers, find_node) = (
            summary(MeasuredKind::Announce),
            summary(MeasuredKind::GetPeers),
            summary(MeasuredKind::FindNode),
        );
        // Who holds NAT'd clients in their routing table now.
        let mut in_tables: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let mut tables_with_nat_clients = 0;
        let (mut queries_sent, mut query_timeouts) = (0, 0);
        for (m, h) in self.members.iter().zip(&self.hosts) {
            let Some(dht) = self.sim.machine(*h) else {
                continue;
            };
            queries_sent += dht.stats().queries_sent;
            query_timeouts += dht.stats().timeouts;
            if m.nat.is_some() {
                continue;
            }
            let mut any = false;
            for e in dht.routing_table().entries() {
                if self.is_client(e.node.addr) {
                    *in_tables.entry(e.node.addr.ip()).or_default() += 1;
                    any = true;
                }
            }
            tables_with_nat_clients += usize::from(any);
        }
        let nat = CLIENT_PRESETS
            .iter()
            .filter_map(|&preset| {
                let of: Vec<usize> = (0..self.members.len())
                    .filter(|&i| self.members[i].nat == Some(preset))
                    .collect();
                if of.is_empty() {
                    return None;
                }
                let count = |kind| {
                    let rs: Vec<&LookupRecord> = self
                        .records
                        .iter()
                        .filter(|r| r.kind == kind && of.contains(&r.member))
                        .collect();
                    (rs.len(), rs.iter().filter(|r| r.success).count())
                };
                Some(NatSummary {
                    preset,
                    clients: of.len(),
                    ready: of.iter().filter(|&&i| self.ready[i]).count(),
                    announces: count(MeasuredKind::Announce),
                    get_peers: count(MeasuredKind::GetPeers),
                    find_node: count(MeasuredKind::FindNode),
                    in_tables: of
                        .iter()
                        .map(|&i| {
                            in_tables
                                .get(&self.members[i].public_ip)
                                .copied()
                                .unwrap_or(0)
                        })
                        .sum(),
                })
            })
            .collect();
        Ok(DhtOutcome {
            seed,
            ready: self.ready.iter().filter(|&&r| r).count(),
            bootstrap_failed: self.bootstrap_failed,
            table_median,
            median_rtt,
            announce,
            get_peers,
            find_node,
            nat,
            tables_with_nat_clients,
            restarts,
            queries_sent,
            query_timeouts,
            trace_hash: self.sim.trace_hash(),
            stats: self.sim.stats(),
            pcap,
            config: self.cfg,
            members: self.members,
            records: self.records,
        })
    }

    /// The median round trip between two distinct random members, from their drawn
    /// access delays (sampled, from its own seeded stream).
    pub(super) fn median_rtt(&self) -> Duration {
        let n = self.members.len();
        if n < 2 {
            return Duration::ZERO;
        }
        let mut rng = self.sim.seed().child("scenario/dht/rtt").rng();
        let mut rtts: Vec<Duration> = (0..20_001)
            .map(|_| {
                let a = pick(&mut rng, n);
                let b = (a + 1 + pick(&mut rng, n - 1)) % n;
                (self.members[a].access_delay + self.members[b].access_delay) * 2
            })
            .collect();
        rtts.sort_unstable();
        percentile(&rtts, 0.5).unwrap_or_default()
    }
}

fn matches(found: SocketAddr, want: SocketAddr, exact: bool) -> bool {
    if exact {
        found == want
    } else {
        found.ip() == want.ip()
    }
}
