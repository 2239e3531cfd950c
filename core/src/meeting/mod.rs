//! Meetings: invitation codes, the keys they derive, authenticated serverless signaling,
//! and a WebRTC [`Session`](crate::webrtc::Session) between members.

pub mod code;
mod delivery;
pub mod keys;
pub mod signal;
mod state;

pub use delivery::MAX_UNACKED_BYTES;
pub use state::{MAX_CONTACTS, Meeting, MeetingConfig, MeetingEvent, MeetingStats, PeerGone};
