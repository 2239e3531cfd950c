//! How often a node starts attempts: the caller-side cap that keeps a member (or one
//! that restarts with a new member id, or claims a NAT class it does not have) from
//! making us probe over and over.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Attempts towards one peer address (an IPv4 address, an IPv6 /64) per window.
pub const ATTEMPTS_PER_PEER: u32 = 4;
/// Attempts towards anyone per window.
pub const ATTEMPTS_TOTAL: u32 = 32;
/// The window.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// Peer addresses tracked at once; when all are in their window, a new address is
/// refused until one's window ends.
pub const MAX_TRACKED: usize = 256;

/// Counts attempts per peer address (never per port or member id, which a peer chooses
/// freely) and in all, in fixed windows of [`LIMIT_WINDOW`].
#[derive(Debug)]
pub struct AttemptLimiter {
    per_peer: BTreeMap<[u8; 8], (Instant, u32)>,
    total: (Option<Instant>, u32),
}

/// Why an attempt may not start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// [`ATTEMPTS_PER_PEER`] attempts towards this address in the window.
    #[error("too many attempts towards this peer address")]
    PerPeer,
    /// [`ATTEMPTS_TOTAL`] attempts in the window, or [`MAX_TRACKED`] addresses.
    #[error("too many attempts")]
    Total,
}

impl Default for AttemptLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl AttemptLimiter {
    /// An empty limiter.
    pub fn new() -> AttemptLimiter {
        AttemptLimiter {
            per_peer: BTreeMap::new(),
            total: (None, 0),
        }
    }

    /// Counts an attempt towards `peer_ip` at `now` if the limits allow it.
    pub fn try_start(&mut self, now: Instant, peer_ip: IpAddr) -> Result<(), LimitError> {
        let expired = |start: Instant| now.saturating_duration_since(start) >= LIMIT_WINDOW;
        self.per_peer.retain(|_, (start, _)| !expired(*start));
        if self.total.0.is_none_or(expired) {
            self.total = (Some(now), 0);
        }
        let key = prefix(peer_ip);
        let used = self.per_peer.get(&key).map_or(0, |(_, n)| *n);
        if used >= ATTEMPTS_PER_PEER {
            return Err(LimitError::PerPeer);
        }
        if self.total.1 >= ATTEMPTS_TOTAL
            || (used == 0 && self.per_peer.len() >= MAX_TRACKED)
        {
            return Err(LimitError::Total);
        }
        self.total.1 += 1;
        self.per_peer.entry(key).or_insert((now, 0)).1 += 1;
        Ok(())
    }
}

/// The part of an address a peer cannot change at will: an IPv4 address, an IPv6 /64.
fn prefix(ip: IpAddr) -> [u8; 8] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, 0, 0, 0, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let mut k = [0u8; 8];
            k.copy_from_slice(&v6.octets()[..8]);
            // A /64 whose first byte is 4 with three zero bytes would collide with the
            // IPv4 keys; it is reserved space (0400::/8), never a peer's.
            k
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_asks_over_and_over_is_refused_until_the_window_ends() {
        let t0 = crate::test_clock::start();
        let mut l = AttemptLimiter::new();
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        for _ in 0..ATTEMPTS_PER_PEER {
            assert_eq!(l.try_start(t0, ip), Ok(()));
        }
        assert_eq!(l.try_start(t0, ip), Err(LimitError::PerPeer));
        // The same peer through IPv4-mapped IPv6 is the same key.
        let mapped: IpAddr = "::ffff:198.51.100.9".parse().unwrap();
        assert_eq!(l.try_start(t0, mapped), Err(LimitError::PerPeer));
        assert_eq!(l.try_start(t0 + LIMIT_WINDOW, ip), Ok(()));
    }

    #[test]
    fn one_ipv6_64_is_one_peer_and_the_total_is_capped() {
        let t0 = crate::test_clock::start();
        let mut l = AttemptLimiter::new();
        for i in 0..ATTEMPTS_PER_PEER {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert_eq!(l.try_start(t0, ip), Ok(()));
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(l.try_start(t0, same_64), Err(LimitError::PerPeer));
        let mut started = ATTEMPTS_PER_PEER;
        for i in 0..100u32 {
            let ip: IpAddr = format!("2001:db8:2:{i:x}::1").parse().unwrap();
            if l.try_start(t0, ip).is_ok() {
                started += 1;
            }
        }
        assert_eq!(started, ATTEMPTS_TOTAL);
    }
}
