//! Links: latency, jitter, random and bursty loss, duplication, reordering, rate and
//! queue limits.
//!
//! Every host and every NAT's external side is attached to its realm by one link, with
//! the same [`LinkConfig`] in both directions and separate state per direction. A
//! datagram between two hosts of one realm crosses the sender's link up and the
//! receiver's link down, so its one-way delay is the sum of the two.
//!
//! Order of effects for each datagram entering a link (like `netem`):
//! 1. loss: random (`loss`) or bursty ([`GilbertElliott`]), decided first;
//! 2. the rate limit: the datagram waits behind the ones queued before it, and is
//!    dropped if the queue already holds `queue_limit` bytes (tail drop);
//! 3. delay: `latency` plus a uniform jitter in `[0, jitter]`; a link keeps FIFO order
//!    (a datagram never overtakes an earlier one), except that with probability
//!    `reorder` a datagram is held `reorder_delay` more and lets later ones pass;
//! 4. duplication: with probability `duplicate` a second copy arrives one µs later.
//!
//! The RNG is only drawn from when a feature is on, so an ideal link costs nothing.

use std::time::Duration;

use rand_core::Rng as _;

use crate::Rng;

/// The two-state Markov model of bursty loss (Gilbert 1960, Elliott 1963).
///
/// Before each datagram the link changes state (good → bad with `p_enter_bad`, bad →
/// good with `p_leave_bad`), then loses the datagram with the state's loss
/// probability. Mean burst length is `1 / p_leave_bad` datagrams.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Probability of going from the good to the bad state, per datagram.
    pub p_enter_bad: f64,
    /// Probability of going from the bad to the good state, per datagram.
    pub p_leave_bad: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

/// How a link behaves. `Default` is an ideal link: no delay, no loss, no limit.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter]`, per datagram (order is kept; see
    /// `reorder`).
    pub jitter: Duration,
    /// Probability of losing each datagram (independent losses).
    pub loss: f64,
    /// Bursty loss; replaces `loss` when set.
    pub burst: Option<GilbertElliott>,
    /// Probability of delivering a datagram twice.
    pub duplicate: f64,
    /// Probability of holding a datagram back by `reorder_delay`, letting later ones
    /// overtake it.
    pub reorder: f64,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Bytes per second the link serialises; `None` for unlimited.
    pub rate: Option<u64>,
    /// Bytes that may wait for the rate limit; more are dropped (tail drop).
    pub queue_limit: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            rate: None,
            queue_limit: 64 * 1024,
        }
    }
}

impl LinkConfig {
    /// An otherwise ideal link with this one-way latency.
    pub fn with_latency(latency: Duration) -> Self {
        LinkConfig {
            latency,
            ..LinkConfig::default()
        }
    }

    /// Checks that probabilities are in `[0, 1]` and limits are positive.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        let mut probabilities = vec![
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ];
        if let Some(ge) = &self.burst {
            probabilities.extend([
                ("p_enter_bad", ge.p_enter_bad),
                ("p_leave_bad", ge.p_leave_bad),
                ("loss_good", ge.loss_good),
                ("loss_bad", ge.loss_bad),
            ]);
        }
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(LinkConfigError::Probability(name));
            }
        }
        if self.rate == Some(0) {
            return Err(LinkConfigError::ZeroRate);
        }
        Ok(())
    }
}

/// A [`LinkConfig`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkConfigError {
    /// A probability outside `[0, 1]` (or NaN).
    #[error("link {0} must be a probability in [0, 1]")]
    Probability(&'static str),
    /// A rate of zero bytes per second.
    #[error("link rate must be positive (None for unlimited)")]
    ZeroRate,
}

/// Why a link dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkDrop {
    Lost,
    BurstLost,
    QueueOverflow,
}

/// Where a datagram entering a link comes out (times in nanoseconds of virtual time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crossing {
    Arrives { at: u64, duplicate_at: Option<u64> },
    Dropped(LinkDrop),
}

/// The state of one direction of a link.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Direction {
    /// When the rate limiter finishes serialising what is queued.
    busy_until: u64,
    /// The latest arrival time handed out (for FIFO order).
    last_arrival: u64,
    /// Gilbert–Elliott: in the bad state.
    bad: bool,
}

/// A link: its configuration and the state of both directions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Link {
    pub(crate) config: LinkConfig,
    pub(crate) up: Direction,
    pub(crate) down: Direction,
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    p > 0.0 && (p >= 1.0 || uniform(rng) < p)
}

/// A uniform draw in `[0, 1)` with 53 bits of precision.
pub(crate) fn uniform(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Link {
    pub(crate) fn new(config: LinkConfig) -> Self {
        Link {
            config,
            up: Direction::default(),
            down: Direction::default(),
        }
    }

    /// A datagram of `len` bytes enters the link in direction `up` (or down) at `now`.
    pub(crate) fn cross(&mut self, up: bool, now: u64, len: usize, rng: &mut Rng) -> Crossing {
        let c = &self.config;
        let dir = if up { &mut self.up } else { &mut self.down };
        if let Some(ge) = &c.burst {
            let flip = if dir.bad {
                ge.p_leave_bad
            } else {
                ge.p_enter_bad
            };
            if chance(rng, flip) {
                dir.bad = !dir.bad;
            }
            let p = if dir.bad { ge.loss_bad } else { ge.loss_good };
            if chance(rng, p) {
                return Crossing::Dropped(if dir.bad {
                    LinkDrop::BurstLost
                } else {
                    LinkDrop::Lost
                });
            }
        } else if chance(rng, c.loss) {
            return Crossing::Dropped(LinkDrop::Lost);
        }
        let mut depart = now;
        if let Some(rate) = c.rate {
            let backlog_ns = dir.busy_until.saturating_sub(now);
            let backlog_bytes = u128::from(backlog_ns) * u128::from(rate) / 1_000_000_000;
            if backlog_bytes + len as u128 > c.queue_limit as u128 {
                return Crossing::Dropped(LinkDrop::QueueOverflow);
            }
            let serialise = (len as u128 * 1_000_000_000).div_ceil(u128::from(rate));
            let serialise = u64::try_from(serialise).unwrap_or(u64::MAX);
            depart = dir.busy_until.max(now).saturating_add(serialise);
            dir.busy_until = depart;
        }
        let mut at = depart.saturating_add(nanos(c.latency));
        if !c.jitter.is_zero() {
            let j = (uniform(rng) * nanos(c.jitter) as f64) as u64;
            at = at.saturating_add(j);
        }
        if chance(rng, c.reorder) {
            at = at.saturating_add(nanos(c.reorder_delay));
        } else {
            at = at.max(dir.last_arrival);
            dir.last_arrival = at;
        }
        let duplicate_at = chance(rng, c.duplicate).then(|| at.saturating_add(1_000));
        Crossing::Arrives { at, duplicate_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhtmeet_core::Seed;

    #[test]
    fn ideal_link_is_instant_and_draws_nothing() {
        let mut rng = Seed::from_u64(1).rng();
        let mut reference = Seed::from_u64(1).rng();
        let mut link = Link::new(LinkConfig::default());
        assert_eq!(
            link.cross(true, 5, 100, &mut rng),
            Crossing::Arrives {
                at: 5,
                duplicate_at: None
            }
        );
        assert_eq!(rng.next_u64(), reference.next_u64());
    }

    #[test]
    fn rate_limit_serialises_and_tail_drops() {
        let mut rng = Seed::from_u64(1).rng();
        let config = LinkConfig {
            rate: Some(1_000_000), // 1 byte per µs
            queue_limit: 2_500,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config);
        let at = |c| match c {
            Crossing::Arrives { at, .. } => at,
            Crossing::Dropped(d) => panic!("dropped: {d:?}"),
        };
        assert_eq!(at(link.cross(true, 0, 1000, &mut rng)), 1_000_000);
        assert_eq!(at(link.cross(true, 0, 1000, &mut rng)), 2_000_000);
        // 2000 bytes queued + 1000 > 2500: dropped.
        assert_eq!(
            link.cross(true, 0, 1000, &mut rng),
            Crossing::Dropped(LinkDrop::QueueOverflow)
        );
        // The other direction is independent.
        assert_eq!(at(link.cross(false, 0, 1000, &mut rng)), 1_000_000);
    }

    #[test]
    fn invalid_probabilities_are_refused() {
        let bad = LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        };
        assert_eq!(bad.validate(), Err(LinkConfigError::Probability("loss")));
        let nan = LinkConfig {
            duplicate: f64::NAN,
            ..LinkConfig::default()
        };
        assert!(nan.validate().is_err());
        assert!(LinkConfig::default().validate().is_ok());
    }
}
