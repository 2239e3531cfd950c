//! The peers announced to this node (BEP 5 node mode), with expiry and hard bounds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::id::InfoHash;

/// How long an announced peer is kept without a re-announce.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Peers kept per info-hash (the oldest is evicted beyond).
pub const MAX_PEERS_PER_HASH: usize = 100;
/// Info-hashes kept (new ones are refused beyond, until some expire).
pub const MAX_INFO_HASHES: usize = 2_000;
/// Peers returned in one get_peers response (~50 × 6 bytes keeps it under 1 KiB).
pub const MAX_VALUES_PER_RESPONSE: usize = 50;

/// Announced peers by info-hash.
#[derive(Debug, Default)]
pub struct PeerStore {
    by_hash: BTreeMap<InfoHash, Vec<(SocketAddr, Instant)>>,
    refused: u64,
}

impl PeerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `peer` under `info_hash` at `now`; false if refused for lack of room.
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddr, now: Instant) -> bool {
        if !self.by_hash.contains_key(&info_hash) && self.by_hash.len() >= MAX_INFO_HASHES {
            self.expire(now);
            if self.by_hash.len() >= MAX_INFO_HASHES {
                self.refused += 1;
                return false;
            }
        }
        let peers = self.by_hash.entry(info_hash).or_default();
        peers.retain(|(p, _)| *p != peer);
        if peers.len() >= MAX_PEERS_PER_HASH {
            // Oldest first: evict the least recently announced.
            peers.remove(0);
        }
        peers.push((peer, now));
        true
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
            .filter(|(p, at)| {
                now.saturating_duration_since(*at) < PEER_TTL && (if p.is_ipv4() { v4 } else { v6 })
            })
            .take(MAX_VALUES_PER_RESPONSE)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Drops expired peers and empty info-hashes.
    pub fn expire(&mut self, now: Instant) {
        self.by_hash.retain(|_, peers| {
            peers.retain(|(_, at)| now.saturating_duration_since(*at) < PEER_TTL);
            !peers.is_empty()
        });
    }

    /// Number of info-hashes and of peers stored.
    pub fn size(&self) -> (usize, usize) {
        (
            self.by_hash.len(),
            self.by_hash.values().map(Vec::len).sum(),
        )
    }

    /// Announces refused because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u16) -> InfoHash {
        let mut b = [0u8; 20];
        b[..2].copy_from_slice(&n.to_be_bytes());
        InfoHash(b)
    }

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, (n >> 8) as u8, n as u8], 6881))
    }

    #[test]
    fn peers_expire_and_reannounce_refreshes() {
        let start = crate::test_clock::start();
        let mut s = PeerStore::new();
        s.announce(hash(1), peer(1), start);
        s.announce(hash(1), peer(2), start + PEER_TTL / 2);
        assert_eq!(s.get(&hash(1), true, true, start), vec![peer(2), peer(1)]);
        assert_eq!(s.get(&hash(1), true, true, start + PEER_TTL), vec![peer(2)]);
        s.announce(hash(1), peer(1), start + PEER_TTL);
        assert_eq!(s.get(&hash(1), true, true, start + PEER_TTL).len(), 2);
        assert!(
            s.get(&hash(1), false, true, start).is_empty(),
            "family filter"
        );
    }

    #[test]
    fn bounds_hold_under_a_flood() {
        let now = crate::test_clock::start();
        let mut s = PeerStore::new();
        for i in 0..(MAX_PEERS_PER_HASH as u16 + 50) {
            s.announce(hash(0), peer(i), now);
        }
        assert_eq!(s.size(), (1, MAX_PEERS_PER_HASH));
        assert_eq!(
            s.get(&hash(0), true, true, now).len(),
            MAX_VALUES_PER_RESPONSE
        );
        for i in 1..(MAX_INFO_HASHES as u16 + 10) {
            s.announce(hash(i), peer(1), now);
        }
        assert_eq!(s.size().0, MAX_INFO_HASHES);
        assert_eq!(s.refused(), 10);
        s.announce(hash(60_000), peer(1), now + PEER_TTL);
        assert_eq!(s.size(), (1, 1), "expired entries make room");
    }
}
