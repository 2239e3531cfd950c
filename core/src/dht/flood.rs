//! Rate limits on incoming queries: per [`Source`] (an IPv4 address or IPv6 /64, never the
//! port, which an attacker picks freely) and in total, in a bounded table that a flood
//! cannot fill against new sources.
//!
//! Each budget is a GCRA cell (the token bucket in one instant): its *theoretical arrival
//! time* `tat` moves one interval (1 / rate) later with every query admitted, and a query
//! is admitted while `tat` is at most `burst - 1` intervals ahead of now. A cell whose
//! `tat` has passed is full, exactly like a cell never used, so forgetting it changes
//! nothing: that is the only entry evicted to make room. When the table is full of
//! sources that all spent from their budget within the last few seconds, a new source is
//! answered from a small budget shared by all such newcomers rather than not at all.
//!
//! The node keeps two guards: one for DHT queries and one for registered extension
//! queries (meeting signaling), so that no flood of DHT traffic delays a meeting.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::source::Source;

/// A sustained rate with a burst above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Queries per second sustained (at least 1).
    pub per_second: u32,
    /// Queries allowed at once after an idle spell (at least 1).
    pub burst: u32,
}

/// What a guard admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Each source.
    pub per_source: Rate,
    /// All sources together.
    pub total: Rate,
    /// All new sources together while the table is full of sources none of which is idle.
    pub newcomers: Rate,
}

/// DHT queries: 20/s per source (burst 60); 5,000/s in all (burst 10,000); 200/s for the
/// new sources that find the table full of busy ones.
pub const DHT_QUERIES: Budget = Budget {
    per_source: Rate {
        per_second: 20,
        burst: 60,
    },
    total: Rate {
        per_second: 5_000,
        burst: 10_000,
    },
    newcomers: Rate {
        per_second: 200,
        burst: 400,
    },
};

/// Registered extension queries (meeting signaling): 100/s per source (burst 300), since
/// the members behind one NAT share their public address; 2,000/s in all (burst 4,000);
/// 200/s for new sources that find the table full of busy ones.
pub const EXTENSION_QUERIES: Budget = Budget {
    per_source: Rate {
        per_second: 100,
        burst: 300,
    },
    total: Rate {
        per_second: 2_000,
        burst: 4_000,
    },
    newcomers: Rate {
        per_second: 200,
        burst: 400,
    },
};

/// Sources tracked at most per guard.
pub const MAX_SOURCES: usize = 4096;

impl Rate {
    fn interval(self) -> Duration {
        Duration::from_secs(1) / self.per_second.max(1)
    }

    /// The cell's next `tat` if a query at `now` fits a cell at `tat`.
    fn admit(self, tat: Instant, now: Instant) -> Option<Instant> {
        let tat = tat.max(now);
        let ahead = tat.saturating_duration_since(now);
        (ahead <= self.interval() * self.burst.max(1).saturating_sub(1))
            .then(|| tat + self.interval())
    }
}

/// Per-source and total budgets of one kind of query.
#[derive(Debug)]
pub struct FloodGuard {
    budget: Budget,
    /// Each tracked source's `tat`.
    sources: BTreeMap<Source, Instant>,
    /// The same, earliest `tat` (the idlest source) first.
    by_tat: BTreeSet<(Instant, Source)>,
    total: Instant,
    newcomers: Instant,
}

impl FloodGuard {
    /// No source seen yet at `now`; every budget full.
    pub fn new(budget: Budget, now: Instant) -> Self {
        FloodGuard {
            budget,
            sources: BTreeMap::new(),
            by_tat: BTreeSet::new(),
            total: now,
            newcomers: now,
        }
    }

    /// Whether a query from `ip` at `now` is within its source's budget and the total
    /// (and spends from both).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let source = Source::from(ip);
        let tat = match self.sources.get(&source).copied() {
            Some(tat) => tat,
            None if self.sources.len() < MAX_SOURCES || self.evict_idle(now) => now,
            None => return self.allow_newcomer(now),
        };
        let Some(next) = self.budget.per_source.admit(tat, now) else {
            return false;
        };
        let Some(total) = self.budget.total.admit(self.total, now) else {
            return false;
        };
        self.total = total;
        self.by_tat.remove(&(tat, source));
        self.by_tat.insert((next, source));
        self.sources.insert(source, next);
        true
    }

    /// Forgets the sources whose budget is full again (idle long enough).
    pub fn expire(&mut self, now: Instant) {
        while self.evict_idle(now) {}
    }

    /// Sources tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// A source not tracked while the table is full of busy ones: answered from the
    /// newcomers' shared budget.
    fn allow_newcomer(&mut self, now: Instant) -> bool {
        let Some(newcomers) = self.budget.newcomers.admit(self.newcomers, now) else {
            return false;
        };
        let Some(total) = self.budget.total.admit(self.total, now) else {
            return false;
        };
        self.newcomers = newcomers;
        self.total = total;
        true
    }

    /// Forgets the idlest source if its budget is full (so forgetting it changes nothing).
    fn evict_idle(&mut self, now: Instant) -> bool {
        match self.by_tat.first() {
            Some(&(tat, source)) if tat <= now => {
                self.by_tat.remove(&(tat, source));
                self.sources.remove(&source);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "flood_tests.rs"]
mod tests;
