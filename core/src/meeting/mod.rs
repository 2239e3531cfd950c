//! Meetings: invitation codes, the keys they derive, authenticated serverless signaling,
//! and a WebRTC [`Session`](crate::webrtc::Session) between members.

mod challenges;
pub mod code;
mod config;
mod contacts;
mod delivery;
pub mod keys;
mod machine;
mod peer;
mod prediction;
pub mod signal;

pub use challenges::{CHALLENGE_LIFETIME, MAX_CHALLENGES};
pub use config::{MeetingConfig, MeetingStats};
pub use contacts::MAX_CONTACTS;
pub use delivery::MAX_UNACKED_BYTES;
pub use machine::Meeting;
pub use peer::Via;
pub use prediction::{HELLOS_BEFORE_PREDICTION, PathChange, PredictionStats, RETRY_AFTER};
