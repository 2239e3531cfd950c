//! announce_peer tokens (BEP 5): a get_peers response carries a token bound to the
//! requester's IP; an announce_peer must bring it back. Secrets rotate every
//! [`ROTATE_EVERY`]; tokens from the current and the previous secret are accepted, so a
//! token lives between 5 and 10 minutes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;
use sha2::{Digest, Sha256};

use crate::seed::Rng;

/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Token length in bytes.
pub const TOKEN_LEN: usize = 8;

/// Issues and checks tokens.
#[derive(Debug)]
pub struct Tokens {
    rng: Rng,
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    /// Fresh secrets from `rng`, starting at `now`.
    pub fn new(mut rng: Rng, now: Instant) -> Self {
        let mut current = [0u8; 16];
        let mut previous = [0u8; 16];
        rng.fill_bytes(&mut current);
        rng.fill_bytes(&mut previous);
        Tokens {
            rng,
            current,
            previous,
            rotated_at: now,
        }
    }

    fn rotate(&mut self, now: Instant) {
        while now.saturating_duration_since(self.rotated_at) >= ROTATE_EVERY {
            self.previous = self.current;
            self.rng.fill_bytes(&mut self.current);
            self.rotated_at += ROTATE_EVERY;
            if now.saturating_duration_since(self.rotated_at) >= 2 * ROTATE_EVERY {
                // Long idle: both secrets are stale; skip ahead.
                self.rng.fill_bytes(&mut self.previous);
                self.rotated_at = now;
            }
        }
    }

    fn token(secret: &[u8; 16], ip: IpAddr) -> [u8; TOKEN_LEN] {
        let mut h = Sha256::new();
        h.update(b"dhtmeet/token/v1");
        h.update(secret);
        match ip {
            IpAddr::V4(ip) => h.update(ip.octets()),
            IpAddr::V6(ip) => h.update(ip.octets()),
        }
        let digest = h.finalize();
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&digest[..TOKEN_LEN]);
        out
    }

    /// A token for `ip` at `now`.
    pub fn issue(&mut self, ip: IpAddr, now: Instant) -> [u8; TOKEN_LEN] {
        self.rotate(now);
        Self::token(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` by the current or previous secret.
    pub fn verify(&mut self, ip: IpAddr, token: &[u8], now: Instant) -> bool {
        self.rotate(now);
        token == Self::token(&self.current, ip) || token == Self::token(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Seed;

    #[test]
    fn tokens_are_bound_to_the_ip_and_expire_after_two_rotations() {
        let start = crate::test_clock::start();
        let mut t = Tokens::new(Seed::from_u64(1).rng(), start);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let token = t.issue(a, start);
        assert!(t.verify(a, &token, start));
        assert!(!t.verify(b, &token, start), "bound to the IP");
        assert!(!t.verify(a, &token[..4], start));
        assert!(
            t.verify(a, &token, start + ROTATE_EVERY + Duration::from_secs(1)),
            "previous secret"
        );
        assert!(
            !t.verify(a, &token, start + 2 * ROTATE_EVERY + Duration::from_secs(1)),
            "expired"
        );
        assert!(!t.verify(a, &token, start + Duration::from_secs(86_400)));
    }
}
