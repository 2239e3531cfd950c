//! What the `dht` scenario measured: one record per lookup, and the summaries built from
//! them (success rates, percentiles of time and RPCs, round trips).

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::{PcapSummary, SimStats};
use crate::preset::NatPreset;
use crate::trace::TraceHash;

use super::DhtSimConfig;

/// Which lookup a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasuredKind {
    /// get_peers followed by announce_peer (the peer that later lookups must find).
    Announce,
    /// get_peers of an info-hash announced earlier.
    GetPeers,
    /// find_node of a random target, checked against the brute-force oracle.
    FindNode,
}

impl MeasuredKind {
    /// The name used in summaries and JSON.
    pub fn name(self) -> &'static str {
        match self {
            MeasuredKind::Announce => "announce",
            MeasuredKind::GetPeers => "get_peers",
            MeasuredKind::FindNode => "find_node",
        }
    }
}

/// One lookup the scenario started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupRecord {
    /// What it was.
    pub kind: MeasuredKind,
    /// Index of the member that ran it (in join order; see [`DhtOutcome::members`]).
    pub member: usize,
    /// Virtual time it started (since the origin).
    pub started: Duration,
    /// Whether it reported `LookupDone` before the scenario ended.
    pub finished: bool,
    /// Whether it did what it was for (see the module docs for each kind's criterion).
    pub success: bool,
    /// Lookup time as the DHT reported it (start to the last answer needed).
    pub elapsed: Duration,
    /// Time to the first peer found (get_peers).
    pub first_peer: Option<Duration>,
    /// Queries the lookup sent (retransmissions not counted).
    pub rpcs: u32,
    /// Announce: nodes that stored us. find_node: result entries that are NAT'd clients.
    pub count: usize,
}

/// A member of the simulated DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `None` for a node with a public address, else the NAT preset it sits behind.
    pub nat: Option<NatPreset>,
    /// Its own socket (a LAN address for a NAT'd client).
    pub local: SocketAddr,
    /// Its public IP (the outermost NAT's external address for a NAT'd client).
    pub public_ip: std::net::IpAddr,
    /// One of the bootstrap nodes.
    pub bootstrap: bool,
    /// It crashes and restarts during the measurement (churn).
    pub churns: bool,
    /// Its one-way access delay (half of a path's delay to a peer of equal delay).
    pub access_delay: Duration,
    /// Virtual time it joined.
    pub joined_at: Duration,
}

/// Percentiles and rates of one kind of lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindSummary {
    /// Lookups started.
    pub started: usize,
    /// Lookups that finished before the scenario ended.
    pub finished: usize,
    /// Lookups that succeeded.
    pub succeeded: usize,
    /// Median lookup time (finished lookups).
    pub time_median: Duration,
    /// 99th percentile lookup time.
    pub time_p99: Duration,
    /// Median time to the first peer (get_peers that found one).
    pub first_peer_median: Option<Duration>,
    /// 99th percentile time to the first peer.
    pub first_peer_p99: Option<Duration>,
    /// Median RPCs per lookup.
    pub rpcs_median: u32,
    /// 99th percentile RPCs per lookup.
    pub rpcs_p99: u32,
    /// Median lookup time in median network round trips.
    pub round_trips_median: f64,
}

impl KindSummary {
    /// Succeeded / started (1 when none started).
    pub fn success_rate(&self) -> f64 {
        if self.started == 0 {
            1.0
        } else {
            self.succeeded as f64 / self.started as f64
        }
    }

    /// Summarises `records` of one kind; `rtt` is the network's median round trip.
    pub fn of<'a>(records: impl Iterator<Item = &'a LookupRecord>, rtt: Duration) -> Self {
        let records: Vec<&LookupRecord> = records.collect();
        let done: Vec<&&LookupRecord> = records.iter().filter(|r| r.finished).collect();
        let mut times: Vec<Duration> = done.iter().map(|r| r.elapsed).collect();
        let mut rpcs: Vec<u32> = done.iter().map(|r| r.rpcs).collect();
        let mut firsts: Vec<Duration> = records.iter().filter_map(|r| r.first_peer).collect();
        times.sort();
        rpcs.sort();
        firsts.sort();
        let time_median = percentile(&times, 0.5).unwrap_or_default();
        KindSummary {
            started: records.len(),
            finished: done.len(),
            succeeded: records.iter().filter(|r| r.success).count(),
            time_median,
            time_p99: percentile(&times, 0.99).unwrap_or_default(),
            first_peer_median: percentile(&firsts, 0.5),
            first_peer_p99: percentile(&firsts, 0.99),
            rpcs_median: percentile(&rpcs, 0.5).unwrap_or_default(),
            rpcs_p99: percentile(&rpcs, 0.99).unwrap_or_default(),
            round_trips_median: if rtt.is_zero() {
                0.0
            } else {
                time_median.as_secs_f64() / rtt.as_secs_f64()
            },
        }
    }
}

/// The nearest-rank percentile `p` (0–1] of sorted values.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// How the NAT'd clients fared, per preset.
#[derive(Clone, Debug, PartialEq)]
pub struct NatSummary {
    /// The preset.
    pub preset: NatPreset,
    /// Clients behind it.
    pub clients: usize,
    /// Clients whose bootstrap finished.
    pub ready: usize,
    /// Their announces / those that some node stored.
    pub announces: (usize, usize),
    /// Their get_peers lookups / successful ones.
    pub get_peers: (usize, usize),
    /// Their find_node lookups / exact ones.
    pub find_node: (usize, usize),
    /// Routing-table entries of public nodes that point at these clients (at the end).
    pub in_tables: usize,
}

/// Everything a run of the `dht` scenario measured.
#[derive(Debug)]
pub struct DhtOutcome {
    /// The seed of the run.
    pub seed: u64,
    /// The configuration it ran with.
    pub config: DhtSimConfig,
    /// Every member, in join order.
    pub members: Vec<Member>,
    /// Every lookup the scenario started.
    pub records: Vec<LookupRecord>,
    /// Members whose first bootstrap finished (`Ready`).
    pub ready: usize,
    /// `BootstrapFailed` reports (retried later by the DHT).
    pub bootstrap_failed: usize,
    /// Median routing-table size of the public nodes when measuring starts.
    pub table_median: usize,
    /// The median round-trip time between two random members (from the drawn delays).
    pub median_rtt: Duration,
    /// announce lookups.
    pub announce: KindSummary,
    /// get_peers lookups.
    pub get_peers: KindSummary,
    /// find_node lookups.
    pub find_node: KindSummary,
    /// Per NAT preset.
    pub nat: Vec<NatSummary>,
    /// Public nodes holding at least one NAT'd client in their routing table (at the end).
    pub tables_with_nat_clients: usize,
    /// Host restarts caused by churn (each after a crash).
    pub restarts: usize,
    /// KRPC queries sent by the live nodes at the end (retransmissions included).
    pub queries_sent: u64,
    /// Of those, queries that went unanswered after every attempt.
    pub query_timeouts: u64,
    /// The hash of the run's trace.
    pub trace_hash: TraceHash,
    /// Counters of the run.
    pub stats: SimStats,
    /// What the pcap capture holds, if one was written.
    pub pcap: Option<PcapSummary>,
}

impl DhtOutcome {
    /// The records of one kind.
    pub fn of_kind(&self, kind: MeasuredKind) -> impl Iterator<Item = &LookupRecord> {
        self.records.iter().filter(move |r| r.kind == kind)
    }

    /// The records of lookups run by NAT'd clients.
    pub fn by_nat_clients(&self) -> impl Iterator<Item = &LookupRecord> {
        self.records
            .iter()
            .filter(|r| self.members.get(r.member).is_some_and(|m| m.nat.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&[7u32], 0.99), Some(7));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
    }
}
