//! Meetings: invitation codes, the keys they derive, authenticated serverless signaling,
//! and WebRTC sessions between members.

pub mod code;
pub mod keys;
pub mod signal;
