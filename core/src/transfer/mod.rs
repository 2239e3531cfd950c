//! File transfer between members, over meeting messages (`Node::send` and
//! `Event::Message`): sans-IO, like the rest of the core. The wire format is in
//! `docs/PROTOCOL.md` ("File transfer") and [`wire`].
//!
//! The caller does the file IO and the hashing: [`Outgoing`] says which bytes of a file
//! to read next and makes the messages to send; [`Incoming`] takes every message a
//! member sent, hands text back to the application, checks each step of a file (names,
//! sizes, order, bounds) and says which bytes to write, when a file is complete (check
//! its SHA-256 then) and which files to drop. Nothing here reads a clock, a file or
//! randomness.
//!
//! ```
//! use std::time::Instant;
//! use dhtmeet_core::MemberId;
//! use dhtmeet_core::transfer::{FileName, Incoming, Outgoing, Received};
//!
//! let now = Instant::now(); // in a runtime; the core never reads a clock
//! let (alice, body) = (MemberId([1; 8]), b"minutes of the meeting".to_vec());
//! let mut out = Outgoing::new(7, FileName::sanitize("minutes.txt"), body.len() as u64, [0; 32])
//!     .unwrap();
//! let mut inbox = Incoming::new();
//! let mut written = Vec::new();
//!
//! // Alice: the offer, then the chunks (each one a Node::send to the receiver).
//! let mut messages = vec![out.offer()];
//! while let Some(mut chunk) = out.next_chunk() {
//!     let at = chunk.offset() as usize;
//!     let len = chunk.payload_mut().len();
//!     chunk.payload_mut().copy_from_slice(&body[at..at + len]);
//!     messages.push(chunk.into_message());
//! }
//! // The receiver, for each Event::Message { member, data }:
//! for data in &messages {
//!     match inbox.handle_message(now, alice, data) {
//!         Ok(Received::Text(line)) => println!("{}", String::from_utf8_lossy(line)),
//!         Ok(Received::Offer(file)) => assert_eq!(file.name.as_str(), "minutes.txt"),
//!         Ok(Received::Chunk { bytes, done, size, .. }) => {
//!             written.extend_from_slice(bytes); // append to the partial file
//!             if done == size { /* check the SHA-256, keep the file */ }
//!         }
//!         Err(refused) => eprintln!("{refused}"), // drop refused.dropped(), if any
//!     }
//! }
//! while let Some(event) = inbox.poll_event() { /* a file stalled or its sender left */ }
//! assert_eq!(written, body);
//! ```

mod name;
mod receive;
mod send;
pub mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::meeting::signal::MemberId;

pub use name::{FileName, NameError};
pub use receive::{
    Incoming, IncomingEvent, IncomingFile, IncomingStats, MAX_EVENTS, Received, Refused,
};
pub use send::{Chunk, Outgoing, OutgoingError};
pub use wire::FrameError;

/// File bytes per message (the receiver refuses larger pieces).
pub const CHUNK: usize = 256 * 1024;
/// The largest file accepted: a bound on what a member can make us write.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024 * 1024;
/// Files arriving at once, from all members.
pub const MAX_INCOMING: usize = 16;
/// Files arriving at once from one member (so one cannot take every place).
pub const MAX_INCOMING_PER_MEMBER: usize = 8;
/// The longest file name, in bytes of UTF-8.
pub const NAME_MAX: usize = 255;
/// A file nothing came for in this long is dropped. Messages are reliable and survive
/// reconnections, so only a sender that stopped (or a hostile one holding a place)
/// stays silent this long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// One file between two members: its sender and the sender's id for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferKey {
    /// The sender.
    pub member: MemberId,
    /// The sender's id for the file (unique per sender while it runs).
    pub id: u32,
}
