//! Our side of KRPC: the queries we sent and await an answer to, each under a random
//! transaction id, retransmitted once, and matched to the reply from the address we
//! asked (BEP 5).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::events::{DhtStats, Outbox};
use super::id::NodeId;
use super::krpc::{Body, Message, Query};
use super::lookup::LookupId;
use crate::seed::Rng;

/// Queries of ours awaiting an answer at most (≤ lookups × α + announces + pings).
pub const MAX_PENDING: usize = 1024;
/// Our client version in `v`: "DM" and a 2-byte version (BEP 20 style).
pub const CLIENT_VERSION: [u8; 4] = *b"DM\x00\x01";
/// Attempts per query (the first send plus one retransmission).
const ATTEMPTS: u8 = 2;
/// A lookup query's soft timeout before any round-trip time was measured.
pub const INITIAL_SOFT_TIMEOUT: Duration = Duration::from_millis(500);
/// The shortest soft timeout, however fast the answers so far.
pub const MIN_SOFT_TIMEOUT: Duration = Duration::from_millis(50);

/// Why we sent a query: where its answer or failure goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Lookup(LookupId),
    Announce(LookupId),
    Ping,
    /// An extension query (meeting signaling): fire and forget, retransmitted once.
    Extension,
}

/// A query to send.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) to: SocketAddr,
    /// The node's id, if we know it (bootstrap addresses and pings of strangers: not).
    pub(super) id: Option<NodeId>,
    pub(super) query: Query,
    pub(super) purpose: Purpose,
}

/// A query of ours that was answered, refused, or went unanswered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settled {
    pub(super) to: SocketAddr,
    pub(super) id: Option<NodeId>,
    pub(super) purpose: Purpose,
}

#[derive(Debug)]
struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    bytes: Vec<u8>,
    /// When the latest attempt was sent.
    sent: Instant,
    /// How long each attempt waits: from measured round-trip times for lookup queries,
    /// `rpc_timeout` for the others.
    timeout: Duration,
    deadline: Instant,
    /// A lookup query's first deadline: past it, the lookup moves on to the next
    /// candidate while the query is sent again (its answer still counts). `None` once
    /// passed, or for queries of other purposes.
    soft_deadline: Option<Instant>,
    attempts: u8,
}

impl Pending {
    fn settled(&self) -> Settled {
        Settled {
            to: self.to,
            id: self.id,
            purpose: self.purpose,
        }
    }
}

/// The round-trip times of our answered queries, smoothed as RFC 6298 does for TCP
/// (SRTT and RTTVAR, gains 1/8 and 1/4), over every node we ask.
#[derive(Clone, Copy, Debug, Default)]
struct RttEstimate {
    smoothed: Option<Duration>,
    variation: Duration,
}

impl RttEstimate {
    fn sample(&mut self, rtt: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(srtt) => {
                let deviation = srtt.abs_diff(rtt);
                self.variation = (self.variation * 3 + deviation) / 4;
                self.smoothed = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// How long an answer may take before a lookup stops waiting for it: SRTT + 4 ×
    /// RTTVAR, within [`MIN_SOFT_TIMEOUT`] and `cap`.
    fn soft_timeout(&self, cap: Duration) -> Duration {
        match self.smoothed {
            None => INITIAL_SOFT_TIMEOUT.min(cap),
            Some(srtt) => (srtt + self.variation * 4).clamp(MIN_SOFT_TIMEOUT.min(cap), cap),
        }
    }
}

/// The transactions we have open.
#[derive(Debug)]
pub(super) struct Queries {
    pending: BTreeMap<[u8; 4], Pending>,
    rpc_timeout: Duration,
    rtt: RttEstimate,
    counts: DhtStats,
}

impl Queries {
    /// None open; each attempt waits `rpc_timeout` for its answer.
    pub(super) fn new(rpc_timeout: Duration) -> Self {
        Queries {
            pending: BTreeMap::new(),
            rpc_timeout,
            rtt: RttEstimate::default(),
            counts: DhtStats::default(),
        }
    }

    /// How long a lookup query's attempt waits for its answer: after the first, the
    /// lookup moves on to the next candidate and the query is sent again; after the
    /// second, it has failed.
    pub(super) fn soft_timeout(&self) -> Duration {
        self.rtt.soft_timeout(self.rpc_timeout)
    }

    /// Builds and sends a query from `from` (marked `ro` if `read_only`) under a fresh
    /// transaction id drawn from `rng`; false if it could not be sent (too many pending).
    pub(super) fn send(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        from: NodeId,
        read_only: bool,
        out: &mut Outbox,
        q: Outgoing,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            self.counts.dropped_pending_full += 1;
            return false;
        }
        let mut t = [0u8; 4];
        loop {
            rng.fill_bytes(&mut t);
            if !self.pending.contains_key(&t) {
                break;
            }
        }
        let msg = Message {
            transaction_id: t.to_vec(),
            version: Some(CLIENT_VERSION.to_vec()),
            read_only,
            ip: None,
            body: Body::Query {
                id: from,
                query: q.query,
            },
        };
        let bytes = msg.encode();
        out.send(q.to, bytes.clone());
        self.counts.queries_sent += 1;
        let lookup = matches!(q.purpose, Purpose::Lookup(_));
        let timeout = if lookup {
            self.soft_timeout()
        } else {
            self.rpc_timeout
        };
        let soft_deadline = lookup.then(|| now + timeout);
        self.pending.insert(
            t,
            Pending {
                to: q.to,
                id: q.id,
                purpose: q.purpose,
                bytes,
                sent: now,
                timeout,
                deadline: now + timeout,
                soft_deadline,
                attempts: 1,
            },
        );
        true
    }

    /// Pings in flight.
    pub(super) fn pings_in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.purpose == Purpose::Ping)
            .count()
    }

    /// The query a reply from `remote` at `now` answers, closed; `None` (counted) if it
    /// answers none of ours or comes from another address than the one we asked. An
    /// answer to a query sent once is a round-trip time sample (Karn: after a
    /// retransmission, which send it answers is ambiguous).
    pub(super) fn take_reply(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        msg: &Message,
    ) -> Option<Settled> {
        let Ok(t) = <[u8; 4]>::try_from(msg.transaction_id.as_slice()) else {
            self.counts.dropped_unknown_transaction += 1;
            return None;
        };
        let Some(pending) = self.pending.get(&t) else {
            self.counts.dropped_unknown_transaction += 1;
            return None;
        };
        if pending.to != remote {
            self.counts.dropped_unexpected_source += 1;
            return None;
        }
        let pending = self.pending.remove(&t)?;
        match msg.body {
            Body::Response { .. } => {
                self.counts.responses_received += 1;
                if pending.attempts == 1 {
                    let first = self.rtt.smoothed.is_none();
                    self.rtt.sample(now.saturating_duration_since(pending.sent));
                    if first {
                        self.rearm_unmeasured();
                    }
                }
            }
            Body::Error { .. } => self.counts.errors_received += 1,
            Body::Query { .. } => {}
        }
        Some(pending.settled())
    }

    /// The first round-trip time was measured: the lookup queries still waiting were sent
    /// with [`INITIAL_SOFT_TIMEOUT`], a guess made knowing nothing, and now wait the
    /// measured timeout from when they were sent instead (never longer than before). So a
    /// node that starts by asking dead nodes (remembered ones, from a saved state) moves
    /// past them as soon as a live node has shown what an answer takes.
    fn rearm_unmeasured(&mut self) {
        let timeout = self.soft_timeout();
        for p in self.pending.values_mut() {
            if !matches!(p.purpose, Purpose::Lookup(_)) || timeout >= p.timeout {
                continue;
            }
            p.timeout = timeout;
            p.deadline = p.deadline.min(p.sent + timeout);
            p.soft_deadline = p.soft_deadline.map(|t| t.min(p.sent + timeout));
        }
    }

    /// Lookup queries whose first attempt went unanswered by `now`: their lookups may
    /// move on. Each is reported once; the query stays open until answered or failed.
    pub(super) fn stalled(&mut self, now: Instant) -> Vec<Settled> {
        let mut stalled = Vec::new();
        for p in self.pending.values_mut() {
            if p.soft_deadline.is_some_and(|t| t <= now) {
                p.soft_deadline = None;
                self.counts.soft_timeouts += 1;
                stalled.push(p.settled());
            }
        }
        stalled
    }

    /// Transactions whose answer is overdue at `now`, for [`Queries::retry_or_expire`].
    pub(super) fn overdue(&self, now: Instant) -> Vec<[u8; 4]> {
        self.pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Retransmits the overdue query `t` if it has an attempt left; otherwise closes it
    /// and returns it as failed.
    pub(super) fn retry_or_expire(
        &mut self,
        now: Instant,
        t: [u8; 4],
        out: &mut Outbox,
    ) -> Option<Settled> {
        let p = self.pending.get_mut(&t)?;
        if p.attempts < ATTEMPTS {
            p.attempts += 1;
            p.sent = now;
            p.deadline = now + p.timeout;
            out.send(p.to, p.bytes.clone());
            self.counts.queries_sent += 1;
            return None;
        }
        let p = self.pending.remove(&t)?;
        self.counts.timeouts += 1;
        Some(p.settled())
    }

    /// When the next open query is overdue, or its soft timeout passes.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.soft_deadline.map_or(p.deadline, |soft| soft.min(p.deadline)))
            .min()
    }

    /// Fills in our counters (queries sent, replies, timeouts, and what we dropped of
    /// them) in `stats`.
    pub(super) fn count_into(&self, stats: &mut DhtStats) {
        let c = &self.counts;
        stats.queries_sent = c.queries_sent;
        stats.responses_received = c.responses_received;
        stats.errors_received = c.errors_received;
        stats.timeouts = c.timeouts;
        stats.soft_timeouts = c.soft_timeouts;
        stats.dropped_unknown_transaction = c.dropped_unknown_transaction;
        stats.dropped_unexpected_source = c.dropped_unexpected_source;
        stats.dropped_pending_full = c.dropped_pending_full;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_timeout_follows_measured_round_trip_times() {
        let cap = Duration::from_millis(1500);
        let mut rtt = RttEstimate::default();
        assert_eq!(rtt.soft_timeout(cap), INITIAL_SOFT_TIMEOUT);
        // 40 ms answers: 40 + 4 × 20 = 120 ms.
        rtt.sample(Duration::from_millis(40));
        assert_eq!(rtt.soft_timeout(cap), Duration::from_millis(120));
        // Steady fast answers shrink it to the floor.
        for _ in 0..50 {
            rtt.sample(Duration::from_millis(10));
        }
        assert_eq!(rtt.soft_timeout(cap), MIN_SOFT_TIMEOUT);
        // Slow answers raise it, never beyond the hard timeout.
        for _ in 0..50 {
            rtt.sample(Duration::from_secs(2));
        }
        assert_eq!(rtt.soft_timeout(cap), cap);
    }

    /// A node resuming from a saved state asks its remembered nodes and the bootstrap
    /// node at once, knowing no round-trip time: the queries to the remembered nodes that
    /// are gone must not wait the 500 ms guess once the bootstrap node has answered in
    /// 20 ms.
    #[test]
    fn queries_sent_before_any_answer_wait_the_measured_timeout_once_one_comes() {
        let now = crate::test_clock::start();
        let mut queries = Queries::new(Duration::from_millis(1500));
        let mut rng = crate::Seed::from_u64(1).rng();
        let mut out = Outbox::default();
        let to = |i: u8| SocketAddr::from(([192, 0, 2, i], 6881));
        for i in 1..=3 {
            let sent = queries.send(
                now,
                &mut rng,
                NodeId([0; 20]),
                false,
                &mut out,
                Outgoing {
                    to: to(i),
                    id: None,
                    query: Query::Ping,
                    purpose: Purpose::Lookup(LookupId(1)),
                },
            );
            assert!(sent);
        }
        assert_eq!(queries.next_deadline(), Some(now + INITIAL_SOFT_TIMEOUT));
        let first = out.poll_transmit().unwrap();
        let t = Message::decode(&first.contents).unwrap().transaction_id;
        let answer = Message {
            transaction_id: t,
            version: None,
            read_only: false,
            ip: None,
            body: Body::Response {
                id: NodeId([1; 20]),
                response: Default::default(),
            },
        };
        let answered = now + Duration::from_millis(20);
        assert!(queries.take_reply(answered, to(1), &answer).is_some());
        // 20 ms measured: 20 + 4 × 10 = 60 ms from when the others were sent.
        let measured = now + Duration::from_millis(60);
        assert_eq!(queries.next_deadline(), Some(measured));
        let mut stalled: Vec<_> = queries.stalled(measured).iter().map(|s| s.to).collect();
        stalled.sort();
        assert_eq!(stalled, [to(2), to(3)]);
        // Their second attempts wait as long, and then they have failed.
        for t in queries.overdue(measured) {
            assert!(queries.retry_or_expire(measured, t, &mut out).is_none());
        }
        let failed = measured + Duration::from_millis(60);
        assert_eq!(queries.next_deadline(), Some(failed));
        let failed: Vec<_> = queries
            .overdue(failed)
            .into_iter()
            .filter_map(|t| queries.retry_or_expire(failed, t, &mut out))
            .map(|s| s.to)
            .collect();
        assert_eq!(failed.len(), 2);
    }
}
