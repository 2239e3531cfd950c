//! Meetings: invitation codes, the keys they derive, authenticated serverless signaling,
//! and WebRTC sessions between members.

pub mod code;
mod delivery;
pub mod keys;
mod seeded_dtls;
mod session;
mod session_framing;
mod session_route;
mod session_rtc;
pub(crate) mod session_sdp;
mod session_types;
pub mod signal;
mod meeting_machine;

pub use delivery::MAX_UNACKED_BYTES;
pub use session::{
    CandidateKind, DisconnectReason, DtlsChoice, IceCandidate, MAX_MESSAGE_SIZE, MAX_REMOTE_ADDRS,
    MAX_REMOTE_CANDIDATES, NewSessionError, SendError, Session, SessionConfig, SessionConfigError,
    SessionEvent, SessionParameters, SessionStats, SetRemoteError,
};
pub use session_framing::{FRAME_MAX, FramingError};
pub use session_route::ice_username_recipient;
pub(crate) use session_sdp::MessageMode;
pub use meeting_machine::{MAX_CONTACTS, Meeting, MeetingConfig, MeetingEvent, MeetingStats, PeerGone};
