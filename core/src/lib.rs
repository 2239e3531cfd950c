//! # dhtmeet-core: the sans-IO protocol core of dhtmeet
//!
//! People who share an invitation code meet directly: each node learns its public
//! address with STUN, finds the others through the Mainline DHT, punches through NATs
//! and opens WebRTC data channels. This crate is the protocol logic of all of that, as
//! pure, deterministic state machines: no sockets, no clocks, no threads, no OS
//! randomness.
//!
//! ## The contract
//!
//! * **Time comes in.** Every input carries `now: Instant`; the core never reads a clock.
//! * **Randomness comes in.** A [`Seed`] in the config; each sub-machine derives its own
//!   child seed ([`Seed::child`]). Same seed + same inputs ⇒ same outputs.
//! * **One face** ([`SansIo`]): inputs `handle_datagram(now, local, remote, bytes)` and
//!   `handle_timeout(now)` (safe to call spuriously) plus API calls; outputs drained
//!   after every input until empty: `poll_transmit`, `poll_event`, `poll_timeout`.
//! * **Input never panics.** Malformed, hostile or unexpected datagrams are counted in
//!   the stats and dropped (or answered with a protocol error). A panic is a bug.
//! * **Every table has a bound**, stated where it is defined and in `docs/` (e.g. the
//!   STUN client's `MAX_SERVERS`, the responder's `SERVER_BACKLOG`).
//!
//! One UDP socket carries every protocol; [`PacketKind`] demultiplexes it by first byte
//! (RFC 7983, plus `d` for bencoded KRPC).
//!
//! ## The run loop
//!
//! A runtime reads the socket into `handle_datagram`, sends what `poll_transmit` gives,
//! hands `poll_event` to the application and sleeps until `poll_timeout`. Here two nodes
//! run in memory, one asking the other for its public address:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use dhtmeet_core::{Event, Node, NodeConfig, SansIo, Seed};
//!
//! let me: SocketAddr = "198.51.100.7:4000".parse().unwrap();
//! let peer: SocketAddr = "192.0.2.1:3478".parse().unwrap();
//! let mut now = Instant::now(); // in a runtime; the core itself never reads a clock
//!
//! let mut config = NodeConfig::new(Seed::from_u64(42));
//! config.stun.servers = vec![peer];
//! let mut node = Node::new(now, config).expect("valid config");
//! let mut other = Node::new(now, NodeConfig::new(Seed::from_u64(7))).unwrap();
//!
//! let discovered = loop {
//!     // 1. Drain transmits (here: deliver them straight to the other side).
//!     while let Some(t) = node.poll_transmit() {
//!         other.handle_datagram(now, t.destination, me, &t.contents);
//!     }
//!     while let Some(t) = other.poll_transmit() {
//!         node.handle_datagram(now, t.destination, peer, &t.contents);
//!     }
//!     // 2. Drain events.
//!     if let Some(Event::AddressDiscovered(report)) = node.poll_event() {
//!         break report;
//!     }
//!     // 3. Sleep until the next timeout (a simulator jumps there), then handle it.
//!     match node.poll_timeout() {
//!         Some(t) => {
//!             now = now.max(t);
//!             node.handle_timeout(now);
//!         }
//!         None => now += Duration::from_millis(10),
//!     }
//! };
//! assert_eq!(discovered.first.mapped, me);
//! ```
//!
//! `dhtmeet-std` and `dhtmeet-smol` are this loop over a real socket; `dhtmeet-sim` is
//! this loop over a simulated network with NATs.
//!
//! ## The public API
//!
//! What an embedder uses is at the crate root: [`Node`] and its [`NodeConfig`] (with
//! [`StunConfig`], [`DhtConfig`], [`MeetingConfig`], [`SessionConfig`]), the [`SansIo`]
//! face and [`Transmit`], [`Event`] (with [`MemberId`], [`PeerGone`],
//! [`DisconnectReason`]), [`SendError`], [`Health`], [`SavedState`], [`Seed`], and the
//! [`code`] module to make and check invitation codes. Two protocol-level modules are
//! public too: [`webrtc`] (the same data channel to any standard WebRTC peer, a browser
//! tab, negotiated by SDP offer/answer: `docs/webrtc-sdp.md`) and [`transfer`] (files
//! between members over meeting messages, the caller doing the IO).
//!
//! The protocol modules themselves — `stun` (RFC 8489 Binding client and responder),
//! `dht` (the Mainline DHT, BEP 5, 32, 42 and 43: `docs/dht.md`), `meeting` (keys,
//! `dm_signal` signaling, the meeting state machine) and `state` (the saved-state byte
//! format) — are public only with the `internals` feature, for benches, the simulator,
//! fuzzing and the `dhtmeet` binary. `docs/ARCHITECTURE.md` maps them.
//!
//! A meeting in a few lines (a runtime drives the node as in the loop above):
//!
//! ```no_run
//! # use std::time::Instant;
//! # use dhtmeet_core::{Event, Node, NodeConfig, SansIo, Seed};
//! let mut config = NodeConfig::new(Seed::from_u64(1)); // a runtime seeds from the OS
//! config.dht.as_mut().unwrap().bootstrap = vec!["192.0.2.1:6881".parse().unwrap()];
//! config.local_addr = Some("198.51.100.7:4000".parse().unwrap());
//! let mut node = Node::new(Instant::now(), config).unwrap();
//! let code = "zihuk-nirur-zopup-hifat-kipul-bopaj"; // from dhtmeet_core::code::generate
//! node.join(Instant::now(), code, false).unwrap();
//! // … drive it; then, on Event::PeerConnected { member, .. }:
//! # let member = node.meeting().unwrap().member_id();
//! node.send(&member, b"hello").ok();
//! ```
//!
//! str0m reads a clock and OS randomness internally (DTLS keys and certificates, SCTP
//! tags, DTLS retransmission jitter): handshake *bytes* are not reproducible, timings and
//! counts are unless a DTLS datagram is lost. `docs/webrtc.md` says exactly where.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The protocol modules: codecs and state machines that benches, the simulator, fuzzing
// and the `dhtmeet` binary reach into. An embedder needs only the root (below), so they
// are public only with the `internals` feature; without it they are the crate's own.
macro_rules! internal_mod {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code, unused_imports)]
        pub(crate) mod $name;
    )*};
}

internal_mod! {
    dht;
    meeting;
    nat;
    punch;
    state;
    stun;
}

mod demux;
mod event;
mod node;
mod seed;
pub mod transfer;
mod transmit;
pub mod webrtc;

#[cfg(feature = "fuzzing")]
pub mod fuzz;

/// Invitation codes: make one ([`code::generate`]), check one a person typed
/// ([`code::check`]).
pub mod code {
    pub use crate::meeting::code::*;
}

pub use demux::PacketKind;
pub use dht::krpc::CompactNode;
pub use dht::{DhtConfig, InfoHash, LookupId, LookupKind, LookupSummary, NodeId};
pub use event::{Event, PeerGone};
pub use meeting::code::{CodeError, CodeStrength};
pub use meeting::signal::MemberId;
pub use meeting::{MeetingConfig, MeetingStats, PredictionStats, Via};
pub use nat::{NatClass, NatObservation, ObservationSource};
pub use node::{
    ConfigError, Health, JoinError, LookupError, Node, NodeConfig, NodeStats, PeerHealth,
};
pub use seed::{Rng, Seed};
pub use state::{MAX_STATE_BYTES, SavedState, StateError};
pub use stun::{AllServersFailed, Mapping, StunConfig, StunReport};
pub use transmit::{
    MAX_POOL_SOCKETS, SansIo, SocketCommand, Transmit, canonical_remote, socket_destination,
};
pub use webrtc::{DisconnectReason, SendError, SessionConfig};

#[cfg(test)]
mod test_net;

#[cfg(test)]
pub(crate) mod test_clock {
    use std::time::Instant;

    /// The origin of a test's virtual time. Only the origin comes from the clock; every
    /// later instant is this plus a computed offset, so tests stay deterministic.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Instant {
        Instant::now()
    }
}
