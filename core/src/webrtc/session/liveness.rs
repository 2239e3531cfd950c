//! Liveness: where a session is in its life (new, connecting, connected, closed), the
//! round trips it measured, when it last heard from the peer, and the deadlines that
//! end it (connect timeout, dead path) or end the drain after `close`.

use std::time::{Duration, Instant};

use super::types::{DisconnectReason, SessionConfig};

/// How long after `close` str0m is still driven to send its close output.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the remote parameters (`set_remote`, or the SDP answer).
    New,
    /// ICE/DTLS/SCTP under way since then.
    Connecting { deadline: Instant },
    /// The channel is open.
    Connected,
    /// Over.
    Closed,
}

/// The life of one session and the round trips seen on its path.
#[derive(Debug)]
pub(super) struct Liveness {
    phase: Phase,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// ICE and DTLS are up (str0m's `Connected`).
    dtls_connected: bool,
    /// The data channel is open (with SNAP, str0m says so before DTLS is up).
    channel_open: bool,
    /// The last datagram str0m recognised as the peer's.
    last_received: Instant,
    /// After `close`, str0m is still driven until then to send its close output.
    closing_until: Option<Instant>,
    /// Half the time from starting to connect to `Connected` (the handshake takes at
    /// least two round trips, fewer only if the peer started long before us): an RTT
    /// estimate until ICE measures one.
    handshake_rtt: Option<Duration>,
    /// The smallest ICE round trip measured: the path's own delay, without the queueing
    /// our own data adds (see `SendPath::budget`).
    min_rtt: Option<Duration>,
    /// The latest ICE round trip on the selected pair.
    rtt: Option<Duration>,
}

impl Liveness {
    pub fn new(now: Instant, config: &SessionConfig) -> Liveness {
        Liveness {
            phase: Phase::New,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            dtls_connected: false,
            channel_open: false,
            last_received: now,
            closing_until: None,
            handshake_rtt: None,
            min_rtt: None,
            rtt: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// From `New`: connecting starts, with its deadline. `false` in any other phase.
    pub fn start_connecting(&mut self, now: Instant) -> bool {
        if self.phase != Phase::New {
            return false;
        }
        self.phase = Phase::Connecting {
            deadline: now + self.connect_timeout,
        };
        true
    }

    /// str0m says ICE and DTLS are up; `true` if that made the session connected.
    pub fn dtls_up(&mut self, now: Instant) -> bool {
        self.dtls_connected = true;
        self.maybe_connected(now)
    }

    /// The data channel opened; `true` if that made the session connected.
    pub fn channel_up(&mut self, now: Instant) -> bool {
        self.channel_open = true;
        self.maybe_connected(now)
    }

    /// Connected once DTLS is up and the channel open, whichever comes last.
    fn maybe_connected(&mut self, now: Instant) -> bool {
        if !self.dtls_connected || !self.channel_open {
            return false;
        }
        let Phase::Connecting { deadline } = self.phase else {
            return false;
        };
        self.handshake_rtt = deadline
            .checked_sub(self.connect_timeout)
            .map(|started| now.saturating_duration_since(started) / 2);
        self.phase = Phase::Connected;
        self.last_received = now;
        true
    }

    /// A datagram str0m recognised as the peer's: the path is alive.
    pub fn heard_from_peer(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// An ICE round-trip measurement on the selected pair.
    pub fn observe_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// The latest measured round trip.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The path's own round trip: the smallest ICE measurement, or the handshake's
    /// estimate until ICE has one.
    pub fn path_rtt(&self) -> Option<Duration> {
        self.min_rtt.or(self.handshake_rtt)
    }

    /// Why the session ends at `now`, if a deadline passed: the connect timeout, or the
    /// idle timeout (a dead path).
    pub fn expired(&self, now: Instant) -> Option<DisconnectReason> {
        match self.phase {
            Phase::Connecting { deadline } if now >= deadline => {
                Some(DisconnectReason::ConnectTimeout)
            }
            Phase::Connected if now >= self.last_received + self.idle_timeout => {
                Some(DisconnectReason::Timeout)
            }
            _ => None,
        }
    }

    /// The next deadline of [`Liveness::expired`].
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Connected => Some(self.last_received + self.idle_timeout),
            Phase::New | Phase::Closed => None,
        }
    }

    /// Ends the session; `false` if it was over already.
    pub fn close(&mut self) -> bool {
        if self.phase == Phase::Closed {
            return false;
        }
        self.phase = Phase::Closed;
        true
    }

    /// After a local `close`: keep driving str0m for a while to send its close output.
    pub fn start_draining(&mut self, now: Instant) {
        self.closing_until = Some(now + CLOSE_DRAIN);
    }

    /// Whether the drain after `close` still runs at `now`.
    pub fn draining(&self, now: Instant) -> bool {
        self.closing_until.is_some_and(|t| now < t)
    }

    /// The drain after `close` is over.
    pub fn stop_draining(&mut self) {
        self.closing_until = None;
    }

    /// When the drain after `close` ends.
    pub fn drain_until(&self) -> Option<Instant> {
        self.closing_until
    }

    /// Tests: set the measured round trips directly.
    #[cfg(test)]
    pub fn set_rtts(&mut self, min_rtt: Duration, latest: Duration) {
        self.min_rtt = Some(min_rtt);
        self.rtt = Some(latest);
    }
}
