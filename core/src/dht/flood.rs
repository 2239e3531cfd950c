//! Per-source rate limiting of incoming queries: a token bucket per address, in a bounded
//! map, so one address cannot make the node spend unbounded work or bandwidth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Queries per second one address may sustain.
pub const RATE_PER_SECOND: u32 = 20;
/// Burst allowed above the rate.
pub const BURST: u32 = 60;
/// Sources tracked at most; idle ones are forgotten first.
pub const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    refilled: Instant,
}

/// Token buckets by source address.
#[derive(Debug, Default)]
pub struct FloodGuard {
    buckets: BTreeMap<SocketAddr, Bucket>,
}

impl FloodGuard {
    /// No source seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a query from `source` at `now` is within its budget (and spends it).
    pub fn allow(&mut self, source: SocketAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            self.expire(now);
            if self.buckets.len() >= MAX_SOURCES {
                // Under a many-source flood, new sources wait until old ones go idle.
                return false;
            }
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: BURST,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled);
        let refill = (elapsed.as_millis() * u128::from(RATE_PER_SECOND) / 1000) as u64;
        if refill > 0 {
            bucket.tokens = (u64::from(bucket.tokens) + refill).min(u64::from(BURST)) as u32;
            bucket.refilled = now;
        }
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Forgets sources whose bucket has refilled completely (idle for a while).
    pub fn expire(&mut self, now: Instant) {
        let full_after =
            Duration::from_millis(u64::from(BURST) * 1000 / u64::from(RATE_PER_SECOND));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.refilled) < full_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_source_is_limited_and_others_are_not() {
        let now = crate::test_clock::start();
        let mut g = FloodGuard::new();
        let bad: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let good: SocketAddr = "192.0.2.2:1".parse().unwrap();
        let allowed = (0..1000).filter(|_| g.allow(bad, now)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(g.allow(good, now));
        let later = now + Duration::from_secs(1);
        let allowed = (0..1000).filter(|_| g.allow(bad, later)).count();
        assert_eq!(allowed, RATE_PER_SECOND as usize);
    }

    #[test]
    fn the_source_map_is_bounded() {
        let now = crate::test_clock::start();
        let mut g = FloodGuard::new();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let addr = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1));
            g.allow(addr, now);
        }
        assert_eq!(g.buckets.len(), MAX_SOURCES);
        g.expire(now + Duration::from_secs(60));
        assert!(g.buckets.is_empty());
    }
}
