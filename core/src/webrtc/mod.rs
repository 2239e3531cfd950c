//! WebRTC data channels on str0m: the [`Session`] (one peer connection with one
//! reliable, ordered data channel, the meetings' DHT-signaled path uses it directly),
//! and standard WebRTC interop: a data channel to a browser tab or any other WebRTC
//! stack, set up by SDP offer/answer that the application carries out of band (copy
//! and paste, a QR code, a chat).
//!
//! * [`Session`]: ICE, DTLS and SCTP on str0m's direct API, as a sans-IO machine
//!   (`session/`: see its module docs and `docs/webrtc.md`).
//! * [`signal`]: the JSON signal shapes pages use (`{"type":"offer","sdp":…}`,
//!   `{"candidate":…}`, simple-peer's), parsed without panics and bounded.
//! * [`sdp`]: a first pass over a remote SDP that checks what a data channel needs and
//!   drops what str0m cannot use (mDNS candidates, extra fingerprints, TCP candidates).
//! * [`PeerConnection`]: the offerer's or the answerer's side, on str0m's SDP API,
//!   driven like every machine of the core ([`SansIo`](crate::SansIo)). Underneath it
//!   is a [`Session`]: same events, stats and bounds.
//!
//! Between two dhtmeet peers messages are framed as in meetings (both announce
//! [`sdp::FRAMING_ATTRIBUTE`]); towards a standard peer one message is one SCTP message,
//! up to the peer's `a=max-message-size` (Chromium: 256 KiB). DTLS 1.2 and no SNAP
//! unless the remote offers it: that is what browsers speak. `docs/webrtc-sdp.md` has
//! the decisions.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dhtmeet_core::webrtc::{PeerConfig, PeerConnection, SessionEvent, Signal};
//! use dhtmeet_core::{SansIo, Seed};
//!
//! let (a_addr, b_addr) = ("127.0.0.1:4001".parse().unwrap(), "127.0.0.1:4002".parse().unwrap());
//! let mut now = Instant::now(); // in a runtime; the core itself never reads a clock
//! let (mut a, offer) = PeerConnection::offer(now, PeerConfig::default(), a_addr, Seed::from_u64(1)).unwrap();
//! // The offer travels as JSON, out of band.
//! let offer = Signal::parse(offer.to_json().as_bytes()).unwrap();
//! let (mut b, answer) = PeerConnection::answer(now, PeerConfig::default(), b_addr, Seed::from_u64(2), &offer).unwrap();
//! a.handle_signal(now, &answer).unwrap();
//! a.send_text("hello").unwrap();
//! let got = 'run: loop {
//!     while let Some(t) = a.poll_transmit() { b.handle_datagram(now, b_addr, a_addr, &t.contents); }
//!     while let Some(t) = b.poll_transmit() { a.handle_datagram(now, a_addr, b_addr, &t.contents); }
//!     while let Some(e) = b.poll_event() {
//!         if let SessionEvent::Message(m) = e { break 'run m; }
//!     }
//!     now += Duration::from_millis(5);
//!     a.handle_timeout(now);
//!     b.handle_timeout(now);
//! };
//! assert_eq!(got, b"hello");
//! assert!(a.is_framed() && b.is_framed());
//! ```

mod peer;
pub mod sdp;
mod session;
pub mod signal;

pub use peer::{
    CHANNEL_LABEL, CandidateOutcome, PeerConfig, PeerConnection, PeerError, SignalingStats,
};
pub use sdp::SdpError;
pub use session::{
    CandidateKind, DisconnectReason, DtlsChoice, FRAME_MAX, FramingError, IceCandidate,
    MAX_MESSAGE_SIZE, MAX_REMOTE_ADDRS, MAX_REMOTE_CANDIDATES, NewSessionError, SendError, Session,
    SessionConfig, SessionConfigError, SessionEvent, SessionParameters, SessionStats,
    SetRemoteError, ice_username_recipient,
};
pub(crate) use session::{MESSAGE_LEAD, Outgoing, message_buffer};
pub use signal::{CandidateInit, Signal, SignalError};
