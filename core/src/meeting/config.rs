//! A meeting's settings and counters.

use std::time::Duration;

use crate::webrtc::SessionConfig;

/// Meeting settings; `Default` gives the design's values.
#[derive(Clone, Debug)]
pub struct MeetingConfig {
    /// Settings of each WebRTC session (connect timeout 30 s, dead-path 15 s, …).
    pub session: SessionConfig,
    /// Members connected at most (sessions are the expensive state).
    pub max_members: usize,
    /// A discovered address that has not answered gets a hello this often, once the
    /// first few (0.25 s apart, the gap doubling each time) have gone unanswered.
    pub hello_every: Duration,
    /// A discovered address that is not rediscovered for this long is forgotten.
    pub contact_ttl: Duration,
    /// Reconnection attempts after a session fails (3).
    pub reconnect_attempts: u32,
    /// Delay before each reconnection attempt (5 s).
    pub reconnect_delay: Duration,
    /// Port prediction towards contacts that do not answer (on): see
    /// `docs/port-prediction.md`.
    pub port_prediction: bool,
}

impl Default for MeetingConfig {
    fn default() -> Self {
        MeetingConfig {
            session: SessionConfig::default(),
            max_members: 32,
            hello_every: Duration::from_secs(5),
            contact_ttl: Duration::from_secs(120),
            reconnect_attempts: 3,
            reconnect_delay: Duration::from_secs(5),
            port_prediction: true,
        }
    }
}

/// Counters of the meeting's signaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeetingStats {
    /// Signaling messages queued for sending.
    pub signals_sent: u64,
    /// Signaling messages accepted.
    pub signals_accepted: u64,
    /// Refused: malformed.
    pub dropped_malformed: u64,
    /// Refused: not authenticated (not a member, or altered).
    pub dropped_bad_mac: u64,
    /// Refused: replayed or too old.
    pub dropped_replayed: u64,
    /// Refused: addressed to another member.
    pub dropped_not_for_us: u64,
    /// Hellos from members not proven yet (each a copy of an old hello, or a member we
    /// have not challenged yet): answered with a challenge, nothing more.
    pub unproven_hellos: u64,
    /// Refused: parameters or a bye from a member that has not answered a challenge
    /// (a copy of an old message from another address).
    pub dropped_unproven: u64,
    /// New members refused because [`MeetingConfig::max_members`] were present.
    pub dropped_full: u64,
    /// Datagrams for no session.
    pub dropped_unrouted: u64,
}
