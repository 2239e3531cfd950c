//! Port prediction: reaching a member behind a NAT that gives a new public port per
//! destination (docs/port-prediction.md).
//!
//! * [`plan::decide`]: from both NAT classes, the plan for a pair ([`Plan`]): ordinary
//!   ICE, a relay, or one side of a [`Punch`].
//! * [`PunchAttempt`]: one attempt towards one member, a sans-IO state machine that
//!   asks for pool sockets, sends authenticated probes ([`wire`]) at a capped rate,
//!   answers the peer's, and reports the path that works both ways.
//! * [`AttemptLimiter`]: how often a node may start attempts.
//!
//! Every datagram an attempt sends goes to the one peer IP of its plan, at most
//! [`PunchConfig::max_datagrams`] of them, at most [`PunchConfig::burst`] at once and
//! then one per [`PunchConfig::refill`].

use std::net::SocketAddr;
use std::time::Duration;

mod attempt;
mod limit;
mod pacer;
pub mod plan;
mod replay;
mod schedule;
pub mod wire;

#[cfg(test)]
mod attempt_tests;
#[cfg(test)]
mod nat_model;

pub use attempt::PunchAttempt;
pub use limit::{ATTEMPTS_PER_PEER, ATTEMPTS_TOTAL, AttemptLimiter, LIMIT_WINDOW, LimitError};
pub use plan::{Plan, Punch, Situation, decide, decide_blind};
pub use replay::{MAX_PEER_ATTEMPTS, REPLAY_WINDOW};
pub use wire::{AttemptId, ProbeKeys};

/// The limits and pace of an attempt. The defaults are the ones docs/port-prediction.md
/// states and measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PunchConfig {
    /// Between two scheduled probes (5 ms: 200 probes/s).
    pub probe_interval: Duration,
    /// Datagrams the attempt may send at once (288: the 256 openings of the birthday
    /// hard side, and some to spare for answers).
    pub burst: u32,
    /// One more datagram may be sent per `refill` (2.5 ms: 400/s at most, twice the
    /// probe rate, so answers and retries are never starved by scheduled probes).
    pub refill: Duration,
    /// Datagrams the attempt sends in all, whatever the peer does (3,400).
    pub max_datagrams: u32,
    /// The attempt fails this long after it starts if no path worked (20 s). A probing
    /// side gives up earlier: 2 s after its last scheduled probe.
    pub timeout: Duration,
    /// The TTL of the hard side's opening probes (`None`: the socket's default). A low
    /// TTL keeps them from reaching the peer's NAT, where a Linux router without a
    /// firewall would let them claim the port the peer's probes must leave from (and
    /// divert those probes to another port). 2 passes a NAT one hop away (the home
    /// router or the phone) and expires at the next router; a carrier NAT further away
    /// gets no mapping from it, hence [`PunchConfig::reopen_after`].
    pub opening_ttl: Option<u8>,
    /// With a low `opening_ttl`, the openings go again at the full TTL this long after
    /// the start (8 s: by then 99.8% of birthday attempts against a NAT one hop away
    /// have connected), for a NAT the low TTL does not reach.
    pub reopen_after: Option<Duration>,
    /// After success, how long the attempt still answers the peer's probes (3 s), so
    /// that the peer completes too.
    pub linger: Duration,
}

impl Default for PunchConfig {
    fn default() -> Self {
        PunchConfig {
            probe_interval: plan::PROBE_INTERVAL,
            burst: 288,
            refill: Duration::from_micros(2500),
            max_datagrams: 3_400,
            timeout: Duration::from_secs(20),
            opening_ttl: Some(2),
            reopen_after: Some(Duration::from_secs(8)),
            linger: Duration::from_secs(3),
        }
    }
}

/// What an attempt reports, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PunchEvent {
    /// A path works both ways: we received the peer's ack of our probe sent from
    /// `local_port` to `remote`, on that socket and from that address. Every other pool
    /// socket has been released; this one (if any) is the session's now, the caller's
    /// to close when the session ends.
    Connected {
        /// The pool socket of the path; `None`: the node's main socket.
        local_port: Option<u16>,
        /// The peer's address on this path.
        remote: SocketAddr,
    },
    /// No path worked; every pool socket has been released.
    Failed {
        /// Why.
        reason: FailReason,
    },
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Every scheduled probe was sent and none was answered in time.
    ProbesExhausted,
    /// [`PunchConfig::timeout`] passed.
    TimedOut,
    /// [`PunchConfig::max_datagrams`] were sent.
    Budget,
    /// The hard side got no pool socket at all.
    NoSockets,
}

/// What an attempt counted. Every refused datagram is in exactly one `dropped_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PunchStats {
    /// Datagrams sent (probes, acks, openings).
    pub datagrams_sent: u32,
    /// Of which probes (openings included).
    pub probes_sent: u32,
    /// Of which acks.
    pub acks_sent: u32,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// Valid probes of the peer received (and answered).
    pub probes_received: u32,
    /// Valid acks of our probes received.
    pub acks_received: u32,
    /// Pool sockets granted and kept.
    pub sockets_opened: u32,
    /// Pool sockets the runtime could not open.
    pub sockets_failed: u32,
    /// Pool sockets granted when none was wanted (released at once).
    pub sockets_unwanted: u32,
    /// Acks whose path differs from the probe's (the path is probed in turn).
    pub path_mismatches: u32,
    /// From an IP other than the peer's.
    pub dropped_not_peer: u32,
    /// On a pool socket this attempt does not hold.
    pub dropped_unknown_socket: u32,
    /// Not a probe or ack (length, first byte, kind).
    pub dropped_malformed: u32,
    /// MAC does not verify (forged, altered, another pair's, reflected).
    pub dropped_bad_mac: u32,
    /// A probe seen before or older than the replay window.
    pub dropped_replay: u32,
    /// A probe of a peer attempt beyond [`MAX_PEER_ATTEMPTS`].
    pub dropped_peer_restarts: u32,
    /// An ack for a probe we never sent (another attempt's id, or a sequence number
    /// not sent).
    pub dropped_unknown_ack: u32,
    /// An ack for a probe already acknowledged.
    pub dropped_duplicate_ack: u32,
    /// A valid datagram after the attempt finished.
    pub dropped_finished: u32,
    /// An answer not sent because the rate cap or the budget was reached.
    pub dropped_rate: u32,
}
