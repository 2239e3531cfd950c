//! The peers announced to this node (BEP 5 node mode): bounded, fair between sources, and
//! expired in time order.
//!
//! Every peer is charged to its [`Source`] (its IPv4 address or IPv6 /64). The bounds are
//! [`MAX_PEERS`] in all, [`MAX_PEERS_PER_HASH`] per info-hash and [`MAX_PEERS_PER_SOURCE`]
//! per source across all info-hashes. An announce is always stored, so the empty response
//! the server sends for it is true: room is made by evicting, never by refusing (as
//! libtorrent makes room for a new torrent), and the victim is chosen so that a source can
//! only displace sources that hold at least as many peers as it does:
//!
//! - a source at its quota loses its own least recently announced peer;
//! - a full info-hash loses the least recently announced peer of the source holding the
//!   most of that info-hash's peers, or the announcer's own if it holds as many as anyone;
//! - a full store loses the least recently announced peer of the source holding the most
//!   peers (of those tied, the one whose oldest peer is oldest), or the announcer's own if
//!   it holds as many as anyone.
//!
//! So entries of one attacker, however many info-hashes it announces, crowd out nobody who
//! holds fewer than it does: a new meeting's first announce always finds room. Members
//! re-announce every 30 s, so a source's least recently announced peers are its departed
//! ones.
//!
//! Every index is ordered by announce time: expiry pops the oldest peers off one queue and
//! stops at the first live one, so each peer costs one removal when it expires and an
//! announce costs a few O(log n) map operations, whatever the store holds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::id::InfoHash;
use super::source::Source;

/// How long an announced peer is kept without a re-announce.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Peers kept per info-hash.
pub const MAX_PEERS_PER_HASH: usize = 100;
/// Peers kept per source (IPv4 address or IPv6 /64), across all info-hashes.
pub const MAX_PEERS_PER_SOURCE: usize = 64;
/// Peers kept in all (so info-hashes too: each has at least one peer).
pub const MAX_PEERS: usize = 10_000;
/// Peers returned in one get_peers response (~50 × 6 bytes keeps it under 1 KiB).
pub const MAX_VALUES_PER_RESPONSE: usize = 50;

/// When a peer was announced, then the order of arrival (which makes every stamp unique).
type Stamp = (Instant, u64);
/// A stored peer: the info-hash it was announced under, and its address.
type Key = (InfoHash, SocketAddr);

#[derive(Debug, Clone, Copy)]
struct Stored {
    source: Source,
    stamp: Stamp,
}

/// Announced peers, indexed by info-hash, by source and by time.
#[derive(Debug, Default)]
pub struct PeerStore {
    peers: BTreeMap<Key, Stored>,
    /// Every peer, least recently announced first (expiry).
    by_time: BTreeMap<Stamp, Key>,
    /// Each info-hash's peers, least recently announced first.
    by_hash: BTreeMap<InfoHash, BTreeMap<Stamp, SocketAddr>>,
    /// Each source's peers, least recently announced first.
    by_source: BTreeMap<Source, BTreeMap<Stamp, Key>>,
    /// Every source that holds peers: (how many, its oldest announce reversed, source),
    /// so the last is the biggest holder, and of those tied the one announced least
    /// recently.
    holders: BTreeSet<(usize, Reverse<Stamp>, Source)>,
    next_seq: u64,
    evicted: u64,
}

impl PeerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `peer` under `info_hash` at `now`, evicting as the module says if a bound
    /// is reached. A peer is always stored.
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddr, now: Instant) {
        self.expire(now);
        let key = (info_hash, peer);
        let source = Source::from(peer.ip());
        if self.remove(&key).is_none() {
            self.make_room(info_hash, source);
        }
        let stamp = (now, self.next_seq);
        self.next_seq += 1;
        self.insert(key, source, stamp);
    }

    /// Up to [`MAX_VALUES_PER_RESPONSE`] live peers of `info_hash` whose family is wanted,
    /// most recently announced first.
    pub fn get(&self, info_hash: &InfoHash, v4: bool, v6: bool, now: Instant) -> Vec<SocketAddr> {
        let Some(peers) = self.by_hash.get(info_hash) else {
            return Vec::new();
        };
        peers
            .iter()
            .rev()
            .filter(|((at, _), p)| {
                now.saturating_duration_since(*at) < PEER_TTL && (if p.is_ipv4() { v4 } else { v6 })
            })
            .take(MAX_VALUES_PER_RESPONSE)
            .map(|(_, p)| *p)
            .collect()
    }

    /// Drops the peers not re-announced within [`PEER_TTL`], oldest first, stopping at
    /// the first live one.
    pub fn expire(&mut self, now: Instant) {
        while let Some((&(at, _), &key)) = self.by_time.first_key_value() {
            if now.saturating_duration_since(at) < PEER_TTL {
                break;
            }
            self.remove(&key);
        }
    }

    /// Number of info-hashes and of peers stored.
    pub fn size(&self) -> (usize, usize) {
        (self.by_hash.len(), self.peers.len())
    }

    /// Peers stored for `source` (an IPv4 address, or any address of an IPv6 /64).
    pub fn held_by(&self, source: Source) -> usize {
        self.by_source.get(&source).map_or(0, BTreeMap::len)
    }

    /// Live peers evicted to make room for others.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Makes room for a new peer of `source` under `info_hash`.
    fn make_room(&mut self, info_hash: InfoHash, source: Source) {
        if self.held_by(source) >= MAX_PEERS_PER_SOURCE {
            self.evict_oldest_of(source);
        }
        if self
            .by_hash
            .get(&info_hash)
            .is_some_and(|peers| peers.len() >= MAX_PEERS_PER_HASH)
        {
            self.evict_in_hash(info_hash, source);
        }
        if self.peers.len() >= MAX_PEERS {
            let mine = self.held_by(source);
            let victim = match self.holders.last() {
                Some(&(most, _, biggest)) if most > mine => biggest,
                _ => source,
            };
            self.evict_oldest_of(victim);
        }
    }

    /// Evicts from a full info-hash the oldest peer of the source holding most of its
    /// peers (of those tied, the oldest such peer), or `announcer`'s oldest there if it
    /// holds as many as anyone. At most [`MAX_PEERS_PER_HASH`] peers are looked at.
    fn evict_in_hash(&mut self, info_hash: InfoHash, announcer: Source) {
        let Some(peers) = self.by_hash.get(&info_hash) else {
            return;
        };
        let mut held: BTreeMap<Source, usize> = BTreeMap::new();
        for peer in peers.values() {
            *held.entry(Source::from(peer.ip())).or_default() += 1;
        }
        let most = held.values().copied().max().unwrap_or(0);
        let mine = held.get(&announcer).copied().unwrap_or(0);
        // Peers come least recently announced first.
        let victim = peers.values().copied().find(|peer| {
            let source = Source::from(peer.ip());
            if mine >= most {
                source == announcer
            } else {
                held.get(&source) == Some(&most)
            }
        });
        if let Some(victim) = victim {
            self.remove(&(info_hash, victim));
            self.evicted += 1;
        }
    }

    fn evict_oldest_of(&mut self, source: Source) {
        let oldest = self
            .by_source
            .get(&source)
            .and_then(|peers| peers.first_key_value())
            .map(|(_, key)| *key);
        if let Some(key) = oldest {
            self.remove(&key);
            self.evicted += 1;
        }
    }

    fn insert(&mut self, key: Key, source: Source, stamp: Stamp) {
        self.unhold(source);
        self.peers.insert(key, Stored { source, stamp });
        self.by_time.insert(stamp, key);
        self.by_hash
            .entry(key.0)
            .or_default()
            .insert(stamp, key.1);
        self.by_source
            .entry(source)
            .or_default()
            .insert(stamp, key);
        self.hold(source);
    }

    fn remove(&mut self, key: &Key) -> Option<Stored> {
        let stored = self.peers.remove(key)?;
        self.unhold(stored.source);
        self.by_time.remove(&stored.stamp);
        if let Some(peers) = self.by_hash.get_mut(&key.0) {
            peers.remove(&stored.stamp);
            if peers.is_empty() {
                self.by_hash.remove(&key.0);
            }
        }
        if let Some(peers) = self.by_source.get_mut(&stored.source) {
            peers.remove(&stored.stamp);
            if peers.is_empty() {
                self.by_source.remove(&stored.source);
            }
        }
        self.hold(stored.source);
        Some(stored)
    }

    /// `source`'s entry in `holders`, from its peers as they are now.
    fn holder(&self, source: Source) -> Option<(usize, Reverse<Stamp>, Source)> {
        let peers = self.by_source.get(&source)?;
        let (&oldest, _) = peers.first_key_value()?;
        Some((peers.len(), Reverse(oldest), source))
    }

    fn unhold(&mut self, source: Source) {
        if let Some(h) = self.holder(source) {
            self.holders.remove(&h);
        }
    }

    fn hold(&mut self, source: Source) {
        if let Some(h) = self.holder(source) {
            self.holders.insert(h);
        }
    }
}

#[cfg(test)]
#[path = "peer_store_tests.rs"]
mod tests;
