//! The rate cap of an attempt: a token bucket and a total.

use std::time::{Duration, Instant};

/// A token bucket and a total: the rate cap of the attempt.
#[derive(Debug)]
pub(super) struct Pacer {
    pub(super) tokens: u32,
    pub(super) burst: u32,
    pub(super) refill: Duration,
    pub(super) refilled: Instant,
    pub(super) sent: u32,
    pub(super) max: u32,
}

impl Pacer {
    pub(super) fn update(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        let n = elapsed.as_nanos() / self.refill.as_nanos().max(1);
        if n == 0 {
            return;
        }
        if u128::from(self.tokens) + n >= u128::from(self.burst) {
            self.tokens = self.burst;
            self.refilled = now;
        } else {
            // n < burst ≤ u32::MAX here.
            self.tokens += n as u32;
            self.refilled += self.refill * n as u32;
        }
    }

    /// Whether more than `reserve` tokens are left and the total allows one more.
    pub(super) fn can(&self, reserve: u32) -> bool {
        self.sent < self.max && self.tokens > reserve
    }

    /// Takes a token if [`Pacer::can`].
    pub(super) fn take(&mut self, reserve: u32) -> bool {
        if !self.can(reserve) {
            return false;
        }
        self.tokens -= 1;
        self.sent += 1;
        true
    }

    /// When more than `reserve` tokens will be there (`None`: never, the total is spent).
    pub(super) fn ready_at(&self, reserve: u32) -> Option<Instant> {
        if self.sent >= self.max {
            return None;
        }
        let missing = (reserve + 1).saturating_sub(self.tokens);
        Some(self.refilled + self.refill * missing)
    }
}

