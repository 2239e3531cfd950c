//! Watched topics: an info-hash kept looked up (or announced) now, four times more
//! in quick succession (see `QUICK_ROUNDS`), then every refresh interval, until
//! unwatched.

use std::time::{Duration, Instant};

use super::events::DhtError;
use super::id::{InfoHash, NodeId};
use super::lookup::{LookupId, LookupKind};
use super::node::{Dht, MAX_TOPICS};

#[derive(Debug)]
pub(super) struct Topic {
    pub(super) info_hash: InfoHash,
    pub(super) kind: LookupKind,
    pub(super) next_at: Instant,
    pub(super) running: Option<LookupId>,
    /// Rounds finished. The first few come quickly: members who join at the same moment
    /// look up before each other's announces are stored, and would otherwise wait a
    /// whole refresh interval to meet.
    pub(super) rounds: u32,
}

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

impl Dht {
    /// Keeps `info_hash` looked up (and announced, for [`LookupKind::Announce`]) now and
    /// every [`DhtConfig::refresh_interval`](super::DhtConfig::refresh_interval) until [`Dht::unwatch`].
    pub fn watch(
        &mut self,
        info_hash: InfoHash,
        kind: LookupKind,
        now: Instant,
    ) -> Result<(), DhtError> {
        self.advance(now);
        if let Some(t) = self.topics.iter_mut().find(|t| t.info_hash == info_hash) {
            t.kind = kind;
            t.next_at = self.now;
        } else {
            if self.topics.len() >= MAX_TOPICS {
                return Err(DhtError::TooManyTopics);
            }
            self.topics.push(Topic {
                info_hash,
                kind,
                next_at: self.now,
                running: None,
                rounds: 0,
            });
        }
        self.run_due_topics();
        Ok(())
    }

    /// Stops watching `info_hash` (a running lookup finishes normally).
    pub fn unwatch(&mut self, info_hash: &InfoHash) {
        self.topics.retain(|t| t.info_hash != *info_hash);
    }

    pub(super) fn topic_finished(&mut self, id: LookupId) {
        let interval = self.config.refresh_interval;
        let now = self.now;
        for t in self.topics.iter_mut().filter(|t| t.running == Some(id)) {
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

    pub(super) fn run_due_topics(&mut self) {
        if !self.ready {
            return;
        }
        let due: Vec<(usize, InfoHash, LookupKind)> = self
            .topics
            .iter()
            .enumerate()
            .filter(|(_, t)| t.running.is_none() && t.next_at <= self.now)
            .map(|(i, t)| (i, t.info_hash, t.kind))
            .collect();
        for (i, info_hash, kind) in due {
            match self.start_lookup(NodeId(info_hash.0), kind) {
                Ok(id) => {
                    if let Some(t) = self.topics.get_mut(i) {
                        t.running = Some(id);
                    }
                }
                Err(_) => {
                    if let Some(t) = self.topics.get_mut(i) {
                        t.next_at = self.now + self.config.refresh_interval;
                    }
                }
            }
        }
    }
}
