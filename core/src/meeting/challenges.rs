//! Challenges: how a member proves it holds the meeting's key *now*, not merely a copy of
//! one of its old messages.
//!
//! Every hello we send to an address carries a challenge made for that address (`x`);
//! a member answers with a message that echoes it (`e`) under the meeting's MAC. Only a
//! message echoing a challenge we sent to the address it comes from, within
//! [`CHALLENGE_LIFETIME`], proves its sender; a hello replayed from anywhere cannot, for
//! its sender never saw our challenge. Per address we also keep the latest challenge the
//! member there sent us, to echo in what we send it.
//!
//! At most [`MAX_CHALLENGES`] addresses; the least recently used is forgotten first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::signal::{CHALLENGE_LEN, Challenge, MemberId};
use crate::seed::{Rng, Seed};

/// Addresses with challenges kept at most.
pub const MAX_CHALLENGES: usize = 256;
/// How long an echo of a challenge proves its sender.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(30);
/// A challenge older than this is replaced by a fresh one in the next hello (the old one
/// stays good until its lifetime ends, for answers already on their way).
const RENEW_AFTER: Duration = Duration::from_secs(10);
/// At most one hello in answer to unproven signaling per address this often: copies of
/// hellos, however many, get few answers.
const ANSWER_GAP: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Entry {
    /// Our challenges for the address, newest first, with when each was made.
    ours: Vec<(Challenge, Instant)>,
    /// The latest challenge the member at the address sent us, to echo.
    theirs: Option<(MemberId, Challenge, Instant)>,
    /// When we last answered unproven signaling from the address.
    answered: Option<Instant>,
    used: Instant,
}

/// Our outstanding challenges and the ones to echo, per address.
#[derive(Debug)]
pub(super) struct Challenges {
    by_addr: BTreeMap<SocketAddr, Entry>,
    rng: Rng,
}

impl Challenges {
    /// An empty table, challenges drawn from `seed`.
    pub(super) fn new(seed: &Seed) -> Self {
        Challenges {
            by_addr: BTreeMap::new(),
            rng: seed.child("challenges").rng(),
        }
    }

    fn entry(&mut self, now: Instant, addr: SocketAddr) -> &mut Entry {
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= MAX_CHALLENGES {
            let oldest = self.by_addr.iter().min_by_key(|(_, e)| e.used).map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.by_addr.remove(&oldest);
            }
        }
        let entry = self.by_addr.entry(addr).or_insert(Entry {
            ours: Vec::new(),
            theirs: None,
            answered: None,
            used: now,
        });
        entry.used = now;
        entry
    }

    /// The challenge for a hello to `addr` at `now`: the current one, or a fresh one if
    /// there is none younger than `RENEW_AFTER`.
    pub(super) fn issue(&mut self, now: Instant, addr: SocketAddr) -> Challenge {
        let mut fresh = [0u8; CHALLENGE_LEN];
        self.rng.fill_bytes(&mut fresh);
        let entry = self.entry(now, addr);
        entry
            .ours
            .retain(|(_, made)| now.saturating_duration_since(*made) < CHALLENGE_LIFETIME);
        match entry.ours.first() {
            Some((c, made)) if now.saturating_duration_since(*made) < RENEW_AFTER => *c,
            _ => {
                // Live challenges are at most CHALLENGE_LIFETIME / RENEW_AFTER + 1.
                entry.ours.insert(0, (Challenge(fresh), now));
                Challenge(fresh)
            }
        }
    }

    /// Whether `echo`, in an authenticated message from `addr`, answers a challenge we
    /// sent there less than [`CHALLENGE_LIFETIME`] ago.
    pub(super) fn proves(&self, now: Instant, addr: SocketAddr, echo: Challenge) -> bool {
        self.by_addr.get(&addr).is_some_and(|e| {
            e.ours.iter().any(|(c, made)| {
                *c == echo && now.saturating_duration_since(*made) < CHALLENGE_LIFETIME
            })
        })
    }

    /// `member` at `addr` sent us `challenge`: what we send there next echoes it.
    pub(super) fn received(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        member: MemberId,
        challenge: Challenge,
    ) {
        self.entry(now, addr).theirs = Some((member, challenge, now));
    }

    /// The latest challenge from `addr` still worth echoing, and whose it is.
    pub(super) fn to_echo(&self, now: Instant, addr: SocketAddr) -> Option<(MemberId, Challenge)> {
        let (member, challenge, at) = self.by_addr.get(&addr)?.theirs?;
        (now.saturating_duration_since(at) < CHALLENGE_LIFETIME).then_some((member, challenge))
    }

    /// Whether unproven signaling from `addr` may be answered now (with a hello); if
    /// so, the answer is counted as sent.
    pub(super) fn may_answer(&mut self, now: Instant, addr: SocketAddr) -> bool {
        let entry = self.entry(now, addr);
        if entry
            .answered
            .is_some_and(|t| now.saturating_duration_since(t) < ANSWER_GAP)
        {
            return false;
        }
        entry.answered = Some(now);
        true
    }

    /// Forgets addresses with nothing left alive.
    pub(super) fn expire(&mut self, now: Instant) {
        let alive = |t: Instant| now.saturating_duration_since(t) < CHALLENGE_LIFETIME;
        self.by_addr.retain(|_, e| {
            e.ours.retain(|(_, made)| alive(*made));
            !e.ours.is_empty() || e.theirs.is_some_and(|t| alive(t.2))
        });
    }

    pub(super) fn clear(&mut self) {
        self.by_addr.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock;

    fn at(i: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], i))
    }

    #[test]
    fn an_echo_proves_only_from_the_address_challenged_and_only_while_fresh() {
        let now = test_clock::start();
        let mut table = Challenges::new(&Seed::from_u64(1));
        let c = table.issue(now, at(1));
        assert!(table.proves(now, at(1), c));
        assert!(!table.proves(now, at(2), c), "another address");
        assert!(!table.proves(now, at(1), Challenge([0; 8])), "another value");
        let later = now + CHALLENGE_LIFETIME;
        assert!(!table.proves(later, at(1), c), "too old");
    }

    #[test]
    fn hellos_reuse_a_challenge_then_renew_it_and_the_old_one_stays_good_a_while() {
        let now = test_clock::start();
        let mut table = Challenges::new(&Seed::from_u64(1));
        let first = table.issue(now, at(1));
        assert_eq!(table.issue(now + Duration::from_secs(1), at(1)), first);
        let renewed = table.issue(now + RENEW_AFTER, at(1));
        assert_ne!(renewed, first);
        let t = now + RENEW_AFTER + Duration::from_secs(1);
        assert!(table.proves(t, at(1), first) && table.proves(t, at(1), renewed));
        assert_ne!(table.issue(now, at(2)), first, "each address its own");
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_least_recently_used() {
        let now = test_clock::start();
        let mut table = Challenges::new(&Seed::from_u64(1));
        let kept = table.issue(now, at(0));
        for i in 1..=MAX_CHALLENGES as u16 {
            let t = now + Duration::from_millis(u64::from(i));
            table.issue(t, at(i));
            if i == 10 {
                table.issue(t, at(0)); // used again: not the oldest any more
            }
        }
        assert_eq!(table.by_addr.len(), MAX_CHALLENGES);
        assert!(table.proves(now, at(0), kept));
        assert!(!table.by_addr.contains_key(&at(1)), "the least recently used went");
        table.expire(now + CHALLENGE_LIFETIME + Duration::from_secs(1));
        assert_eq!(table.by_addr.len(), 0, "all expired");
    }

    #[test]
    fn answers_to_one_address_are_spaced_and_echoes_expire() {
        let now = test_clock::start();
        let mut table = Challenges::new(&Seed::from_u64(1));
        assert!(table.may_answer(now, at(1)));
        assert!(!table.may_answer(now + Duration::from_millis(50), at(1)));
        assert!(table.may_answer(now, at(2)));
        assert!(table.may_answer(now + ANSWER_GAP, at(1)));
        let (m, c) = (MemberId([7; 8]), Challenge([9; 8]));
        table.received(now, at(3), m, c);
        assert_eq!(table.to_echo(now, at(3)), Some((m, c)));
        assert_eq!(table.to_echo(now + CHALLENGE_LIFETIME, at(3)), None);
    }
}
