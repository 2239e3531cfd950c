//! Which of the peer's probes we have answered: per peer attempt id, the highest
//! sequence number and a bitmap of the 64 below it (as IPsec and our signaling do).

use super::wire::AttemptId;

/// Peer attempt ids tracked in one attempt: a peer that restarts its attempt more
/// often than this within one of ours is not answered any more.
pub const MAX_PEER_ATTEMPTS: usize = 4;
/// How far below the highest sequence number a probe may arrive (reordering).
pub const REPLAY_WINDOW: u32 = 64;

/// Why a probe is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Seen before, or older than the window.
    Replay,
    /// A new peer attempt id beyond [`MAX_PEER_ATTEMPTS`].
    TooManyPeerAttempts,
}

#[derive(Debug)]
struct Window {
    attempt: AttemptId,
    highest: u32,
    /// Bit i: `highest − i` seen.
    bits: u64,
}

/// The replay windows of the peer's attempts.
#[derive(Debug, Default)]
pub struct PeerWindows {
    windows: Vec<Window>,
}

impl PeerWindows {
    /// Records probe `seq` of peer attempt `attempt`, or says why it is refused.
    pub fn accept(&mut self, attempt: AttemptId, seq: u32) -> Result<(), Refused> {
        let Some(w) = self.windows.iter_mut().find(|w| w.attempt == attempt) else {
            if self.windows.len() >= MAX_PEER_ATTEMPTS {
                return Err(Refused::TooManyPeerAttempts);
            }
            self.windows.push(Window {
                attempt,
                highest: seq,
                bits: 1,
            });
            return Ok(());
        };
        if seq > w.highest {
            let shift = seq - w.highest;
            w.bits = if shift >= 64 { 0 } else { w.bits << shift } | 1;
            w.highest = seq;
            return Ok(());
        }
        let below = w.highest - seq;
        if below >= REPLAY_WINDOW || w.bits & (1 << below) != 0 {
            return Err(Refused::Replay);
        }
        w.bits |= 1 << below;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_and_old_probes_are_refused_reordering_is_not() {
        let mut w = PeerWindows::default();
        let a = AttemptId([1; 8]);
        assert_eq!(w.accept(a, 10), Ok(()));
        assert_eq!(w.accept(a, 10), Err(Refused::Replay));
        assert_eq!(w.accept(a, 9), Ok(()));
        assert_eq!(w.accept(a, 100), Ok(()));
        assert_eq!(w.accept(a, 37), Ok(()), "63 below the highest");
        assert_eq!(w.accept(a, 37), Err(Refused::Replay));
        assert_eq!(w.accept(a, 36), Err(Refused::Replay), "64 below");
        assert_eq!(w.accept(a, 9), Err(Refused::Replay));
        assert_eq!(w.accept(a, u32::MAX), Ok(()));
        assert_eq!(w.accept(a, 100), Err(Refused::Replay));
    }

    #[test]
    fn a_peer_restarting_over_and_over_is_refused_after_four_attempts() {
        let mut w = PeerWindows::default();
        for i in 0..MAX_PEER_ATTEMPTS as u8 {
            assert_eq!(w.accept(AttemptId([i; 8]), 0), Ok(()));
        }
        assert_eq!(
            w.accept(AttemptId([99; 8]), 0),
            Err(Refused::TooManyPeerAttempts)
        );
        assert_eq!(w.accept(AttemptId([0; 8]), 1), Ok(()));
    }
}
