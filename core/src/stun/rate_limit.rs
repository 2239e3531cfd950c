//! The responder's answer budget: a Binding response is 1.4–2× its request, so an
//! unlimited responder is a reflector for anyone who can forge a source address. Each
//! source *IP* (an IPv6 /64 counts as one) gets a token bucket, however many ports it
//! uses; the buckets live in a bounded table, and sources that find it full share one
//! overflow bucket, so neither one IP nor many of them get more than their budget.
//!
//! Each bucket is kept as a GCRA "theoretical arrival time" (one `Instant`): a request
//! at `now` is within budget while `tat <= now + (burst − 1) × interval`, and spends
//! one interval. A source whose `tat` has passed has a full bucket, so forgetting it
//! changes nothing: that is the only eviction, and a busy source is never evicted.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Answers per second one source IP (IPv6: /64) may sustain.
pub const ANSWERS_PER_SECOND: u32 = 20;
/// Answers one source IP may get at once above that rate.
pub const ANSWER_BURST: u32 = 60;
/// Source IPs with a bucket of their own at most.
pub const MAX_SOURCES: usize = 1024;
/// Answers per second shared by all sources that found the table full.
pub const OVERFLOW_PER_SECOND: u32 = 200;
/// Burst of the shared overflow bucket.
pub const OVERFLOW_BURST: u32 = 200;
/// How often a full table is swept for idle sources (so a many-source flood costs one
/// sweep per interval, not one per datagram).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One token bucket as GCRA state.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// When the bucket will be full again.
    tat: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Bucket { tat: now }
    }

    /// Spends one answer if the bucket has one.
    fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let interval = Duration::from_secs(1) / rate.max(1);
        let tolerance = interval * burst.saturating_sub(1);
        if self.tat > now + tolerance {
            return false;
        }
        self.tat = self.tat.max(now) + interval;
        true
    }

    fn is_full(&self, now: Instant) -> bool {
        self.tat <= now
    }
}

/// What the limiter saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitStats {
    /// Requests refused because their source had spent its budget.
    pub over_budget: u64,
    /// Requests refused because the table was full and the shared overflow budget was
    /// spent.
    pub overflow_spent: u64,
}

/// Token buckets by source IP (IPv6 by /64), bounded, with a shared overflow bucket.
#[derive(Debug)]
pub struct ResponseRateLimit {
    buckets: BTreeMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
    next_sweep: Option<Instant>,
    stats: RateLimitStats,
}

impl Default for ResponseRateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseRateLimit {
    /// No source seen yet.
    pub fn new() -> Self {
        ResponseRateLimit {
            buckets: BTreeMap::new(),
            overflow: None,
            next_sweep: None,
            stats: RateLimitStats::default(),
        }
    }

    /// What was refused so far.
    pub fn stats(&self) -> RateLimitStats {
        self.stats
    }

    /// Sources with a bucket of their own (at most [`MAX_SOURCES`]).
    #[cfg(test)]
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    /// Whether an answer to `source` at `now` is within budget (and spends it).
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        let key = source_key(source);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_SOURCES {
            self.sweep(now);
        }
        if let Some(bucket) = self.buckets.get_mut(&key) {
            let allowed = bucket.take(now, ANSWERS_PER_SECOND, ANSWER_BURST);
            self.stats.over_budget += u64::from(!allowed);
            return allowed;
        }
        if self.buckets.len() < MAX_SOURCES {
            let mut bucket = Bucket::full(now);
            let allowed = bucket.take(now, ANSWERS_PER_SECOND, ANSWER_BURST);
            self.buckets.insert(key, bucket);
            return allowed;
        }
        // The table is full of sources that are still busy: newcomers share one budget
        // rather than pushing anyone out.
        let overflow = self.overflow.get_or_insert(Bucket::full(now));
        let allowed = overflow.take(now, OVERFLOW_PER_SECOND, OVERFLOW_BURST);
        self.stats.overflow_spent += u64::from(!allowed);
        allowed
    }

    /// Forgets sources whose bucket is full again, at most once per [`SWEEP_EVERY`].
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        self.buckets.retain(|_, b| !b.is_full(now));
    }
}

/// The address a budget belongs to: an IPv4 address (IPv4-mapped IPv6 included), or
/// an IPv6 /64 (one subscriber's prefix, RFC 6177), so a host cannot multiply its
/// budget by choosing addresses in its own prefix.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_ip_gets_its_burst_then_its_rate() {
        let now = crate::test_clock::start();
        let mut limit = ResponseRateLimit::new();
        let allowed = (0..1000).filter(|_| limit.allow(now, ip("192.0.2.1"))).count();
        assert_eq!(allowed, ANSWER_BURST as usize);
        assert!(limit.allow(now, ip("192.0.2.2")), "another IP is answered");
        let later = now + Duration::from_secs(1);
        let allowed = (0..1000).filter(|_| limit.allow(later, ip("192.0.2.1"))).count();
        assert_eq!(allowed, ANSWERS_PER_SECOND as usize);
        assert_eq!(limit.stats().over_budget, 2000 - 60 - 20);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let now = crate::test_clock::start();
        let mut limit = ResponseRateLimit::new();
        let allowed = (0..1000u32)
            .filter(|i| limit.allow(now, ip(&format!("2001:db8:1:2::{:x}", i + 1))))
            .count();
        assert_eq!(allowed, ANSWER_BURST as usize);
        assert!(limit.allow(now, ip("2001:db8:1:3::1")), "the next /64 is answered");
        assert_eq!(limit.sources(), 2);
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_its_ipv4_address() {
        let now = crate::test_clock::start();
        let mut limit = ResponseRateLimit::new();
        for _ in 0..ANSWER_BURST {
            assert!(limit.allow(now, ip("192.0.2.1")));
        }
        assert!(!limit.allow(now, ip("::ffff:192.0.2.1")));
    }

    #[test]
    fn many_ips_share_the_overflow_and_evict_no_one() {
        let now = crate::test_clock::start();
        let mut limit = ResponseRateLimit::new();
        let old = ip("198.51.100.1");
        assert!(limit.allow(now, old));
        let flood = |i: u32| IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let mut answered = 0;
        for i in 0..(MAX_SOURCES as u32 * 4) {
            answered += usize::from(limit.allow(now, flood(i)));
        }
        assert_eq!(limit.sources(), MAX_SOURCES);
        // The first MAX_SOURCES - 1 got a bucket each, the rest shared the overflow.
        assert_eq!(answered, MAX_SOURCES - 1 + OVERFLOW_BURST as usize);
        assert!(limit.allow(now, old), "a source in the table keeps its budget");
        // Once the flood has gone idle, newcomers get buckets of their own again.
        let later = now + Duration::from_secs(10);
        assert!(limit.allow(later, ip("203.0.113.9")));
        assert!(limit.sources() <= 2);
    }

    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let now = crate::test_clock::start();
        let mut limit = ResponseRateLimit::new();
        for i in 0..MAX_SOURCES as u32 {
            limit.allow(now, IpAddr::from(i.to_be_bytes()));
        }
        // Idle now, but the sweep just ran (at `now`): they stay until the next one.
        let soon = now + Duration::from_millis(100);
        limit.allow(now, ip("203.0.113.1"));
        for i in 0..MAX_SOURCES as u32 {
            limit.allow(soon, IpAddr::from(((i + 1) << 20).to_be_bytes()));
        }
        assert_eq!(limit.sources(), MAX_SOURCES);
    }
}
