//! Contacts: addresses the DHT gave under the meeting's topic, greeted with hellos until
//! they answer as members.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::signal::MemberId;

/// Addresses from the DHT remembered at most (each gets hellos until it answers).
pub const MAX_CONTACTS: usize = 256;
/// The gap after a contact's first hello; it doubles with each hello until
/// `MeetingConfig::hello_every`.
const FIRST_HELLO_GAP: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Contact {
    member: Option<MemberId>,
    next_hello: Instant,
    /// Hellos sent so far: the first few follow each other quickly (see `FIRST_HELLO_GAP`).
    hellos: u32,
    seen: Instant,
}

/// The addresses found under the topic, at most [`MAX_CONTACTS`].
#[derive(Debug, Default)]
pub(super) struct Contacts {
    by_addr: BTreeMap<SocketAddr, Contact>,
}

impl Contacts {
    /// The DHT gave `addr` (again) at `now`; true if it is new (and was taken).
    pub(super) fn found(&mut self, now: Instant, addr: SocketAddr) -> bool {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            c.seen = now;
            return false;
        }
        if self.by_addr.len() >= MAX_CONTACTS {
            return false;
        }
        self.by_addr.insert(
            addr,
            Contact {
                member: None,
                next_hello: now,
                hellos: 0,
                seen: now,
            },
        );
        true
    }

    /// The contacts owed a hello at `now`, with their next one scheduled: 0.25 s, 0.5 s,
    /// 1 s, 2 s, 4 s later, then every `hello_every`. A hello that meets a NAT that has
    /// not yet seen the peer's own hello is dropped, and the next one should not wait
    /// long once that hole is open.
    pub(super) fn due_hellos(&mut self, now: Instant, hello_every: Duration) -> Vec<SocketAddr> {
        let mut due = Vec::new();
        for (addr, c) in &mut self.by_addr {
            if c.member.is_some() || c.next_hello > now {
                continue;
            }
            let gap = FIRST_HELLO_GAP
                .saturating_mul(1 << c.hellos.min(8))
                .min(hello_every);
            c.hellos = c.hellos.saturating_add(1);
            c.next_hello = now + gap;
            due.push(*addr);
        }
        due
    }

    /// Contacts that have had `hellos` hellos or more and not answered.
    pub(super) fn unanswered(&self, hellos: u32) -> Vec<SocketAddr> {
        self.by_addr
            .iter()
            .filter(|(_, c)| c.member.is_none() && c.hellos >= hellos)
            .map(|(a, _)| *a)
            .collect()
    }

    /// A path to `addr` was just found: its next hello is due now, and the next ones
    /// follow quickly again.
    pub(super) fn hello_now(&mut self, now: Instant, addr: SocketAddr) {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            c.next_hello = now;
            c.hellos = 0;
        }
    }

    /// Signaling from `addr` proved it is `member`: no more hellos to it.
    pub(super) fn answered(&mut self, addr: SocketAddr, member: MemberId) {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            c.member = Some(member);
        }
    }

    /// Forgets contacts not rediscovered for `ttl`.
    pub(super) fn expire(&mut self, now: Instant, ttl: Duration) {
        self.by_addr
            .retain(|_, c| now.saturating_duration_since(c.seen) < ttl);
    }

    /// When the next hello is due.
    pub(super) fn next_hello(&self) -> Option<Instant> {
        self.by_addr
            .values()
            .filter(|c| c.member.is_none())
            .map(|c| c.next_hello)
            .min()
    }

    /// Addresses that answered as members.
    pub(super) fn member_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.by_addr
            .iter()
            .filter(|(_, c)| c.member.is_some())
            .map(|(a, _)| *a)
    }

    pub(super) fn clear(&mut self) {
        self.by_addr.clear();
    }
}
