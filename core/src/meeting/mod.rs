//! Meetings: invitation codes, the keys they derive, authenticated serverless signaling,
//! and WebRTC sessions between members.

pub mod code;
mod config;
mod contacts;
mod delivery;
pub mod keys;
mod machine;
mod peer;
mod seeded_dtls;
mod session;
mod session_framing;
mod session_route;
mod session_rtc;
pub(crate) mod session_sdp;
mod session_types;
pub mod signal;

pub use config::{MeetingConfig, MeetingStats};
pub use contacts::MAX_CONTACTS;
pub use delivery::MAX_UNACKED_BYTES;
pub use machine::Meeting;
pub use session::{
    CandidateKind, DisconnectReason, DtlsChoice, IceCandidate, MAX_MESSAGE_SIZE, MAX_REMOTE_ADDRS,
    MAX_REMOTE_CANDIDATES, NewSessionError, SendError, Session, SessionConfig, SessionConfigError,
    SessionEvent, SessionParameters, SessionStats, SetRemoteError,
};
pub use session_framing::{FRAME_MAX, FramingError};
pub use session_route::ice_username_recipient;
pub(crate) use session_sdp::MessageMode;
