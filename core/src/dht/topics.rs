//! Watched topics: an info-hash kept looked up (or announced) now, four times more
//! in quick succession (see `QUICK_ROUNDS`), then every refresh interval, until
//! unwatched.

use std::time::{Duration, Instant};

use super::events::DhtError;
use super::id::InfoHash;
use super::lookup::{LookupId, LookupKind};

/// Topics watched at once at most.
pub const MAX_TOPICS: usize = 32;

/// Rounds of a new topic that follow each other quickly: the second as soon as the first
/// finished, the third half a second later (a sixtieth of the refresh interval), the
/// next two a fifteenth (2 s) after the previous one. Two members who join at the same
/// moment each look up before the other's announce is stored, so their first round finds
/// nobody; by the end of the first round both announces have been sent, and the second
/// round almost always finds them. The 0.5 s and 2 s rounds catch the rest. In the
/// simulator (5 members behind home and cone NATs, seeds 1–30) this took the median
/// connect time from 2.4 s to 0.36 s, the worst from 5.4 s to 0.93 s (with the
/// read-only mode of `DhtConfig::read_only_behind_nat`); the `dhtmeet demo` meeting on
/// loopback from about 2 s to 5–55 ms.
const QUICK_ROUNDS: u32 = 5;

#[derive(Debug)]
struct Topic {
    info_hash: InfoHash,
    kind: LookupKind,
    next_at: Instant,
    running: Option<LookupId>,
    /// Rounds finished. The first few come quickly: members who join at the same moment
    /// look up before each other's announces are stored, and would otherwise wait a
    /// whole refresh interval to meet.
    rounds: u32,
}

/// A topic whose next round is due: the lookup to start for it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Due {
    index: usize,
    pub(super) info_hash: InfoHash,
    pub(super) kind: LookupKind,
}

/// The watched topics and when each is looked up next.
#[derive(Debug)]
pub(super) struct Topics {
    watched: Vec<Topic>,
    /// Time between rounds once the quick ones are over.
    refresh_interval: Duration,
}

impl Topics {
    /// None watched; rounds every `refresh_interval` after the quick ones.
    pub(super) fn new(refresh_interval: Duration) -> Self {
        Topics {
            watched: Vec::new(),
            refresh_interval,
        }
    }

    /// Watches `info_hash` (or changes its kind), due at `now`.
    pub(super) fn watch(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        kind: LookupKind,
    ) -> Result<(), DhtError> {
        if let Some(t) = self.watched.iter_mut().find(|t| t.info_hash == info_hash) {
            t.kind = kind;
            t.next_at = now;
            return Ok(());
        }
        if self.watched.len() >= MAX_TOPICS {
            return Err(DhtError::TooManyTopics);
        }
        self.watched.push(Topic {
            info_hash,
            kind,
            next_at: now,
            running: None,
            rounds: 0,
        });
        Ok(())
    }

    /// Stops watching `info_hash`.
    pub(super) fn unwatch(&mut self, info_hash: &InfoHash) {
        self.watched.retain(|t| t.info_hash != *info_hash);
    }

    /// The lookup `id` finished: the topics it ran for are due again, soon for the quick
    /// rounds, then after the refresh interval.
    pub(super) fn finished(&mut self, now: Instant, id: LookupId) {
        let interval = self.refresh_interval;
        for t in self.watched.iter_mut().filter(|t| t.running == Some(id)) {
            t.running = None;
            t.rounds += 1;
            t.next_at = now
                + if t.rounds == 1 {
                    Duration::ZERO
                } else if t.rounds == 2 {
                    interval / 60
                } else if t.rounds < QUICK_ROUNDS {
                    interval / 15
                } else {
                    interval
                };
        }
    }

    /// The topics due at `now` with no lookup running.
    pub(super) fn due(&self, now: Instant) -> Vec<Due> {
        self.watched
            .iter()
            .enumerate()
            .filter(|(_, t)| t.running.is_none() && t.next_at <= now)
            .map(|(index, t)| Due {
                index,
                info_hash: t.info_hash,
                kind: t.kind,
            })
            .collect()
    }

    /// The lookup for a due topic started as `started`, or could not start: then the
    /// topic waits a refresh interval.
    pub(super) fn started(&mut self, now: Instant, due: Due, started: Option<LookupId>) {
        let Some(t) = self.watched.get_mut(due.index) else {
            return;
        };
        match started {
            Some(id) => t.running = Some(id),
            None => t.next_at = now + self.refresh_interval,
        }
    }

    /// When the next topic with no lookup running is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.watched
            .iter()
            .filter(|t| t.running.is_none())
            .map(|t| t.next_at)
            .min()
    }
}
