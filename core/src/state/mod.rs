//! Remembered state: what a node keeps across a restart so that it comes back fast even
//! when the bootstrap routers are slow or gone.
//!
//! [`SavedState`] holds the DHT node id (and the public IP it was derived for), the good
//! nodes of the routing table, and the recent contacts of each meeting joined —
//! addresses only, never message content, never the invitation code. The core never
//! touches a file: [`Node::export_state`](crate::Node::export_state) produces the state,
//! [`SavedState::encode`] turns it into bytes, and a runtime writes them wherever it
//! keeps state; at start it reads them back with [`SavedState::decode`] and passes the
//! result in [`NodeConfig::saved_state`](crate::NodeConfig::saved_state).
//!
//! Imported nodes enter the routing table as *questionable*: they count as good only
//! after they answer a query of ours. Imported meeting contacts are greeted at once when
//! the same meeting is joined again, in parallel with the DHT lookup.
//!
//! The byte layout, its bounds and the decisions behind them are in `docs/STATE.md`.

mod wire;

use std::net::{IpAddr, SocketAddr};

use crate::dht::InfoHash;
use crate::dht::NodeId;
use crate::dht::krpc::CompactNode;

pub use wire::{MAGIC, MAX_STATE_BYTES, StateError, VERSION};

/// Routing-table nodes a state keeps at most.
pub const MAX_SAVED_NODES: usize = 256;
/// Meetings a state remembers at most (the most recent first).
pub const MAX_SAVED_MEETINGS: usize = 16;
/// Contacts remembered per meeting at most (the most recent first).
pub const MAX_SAVED_CONTACTS: usize = 32;

/// What a node remembers across a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedState {
    /// The DHT node id, if the node ran a DHT.
    pub node_id: Option<NodeId>,
    /// The public IP the id was derived for (BEP 42), if it was bound to one. A node that
    /// learns a different public IP whose BEP 42 check the id fails takes a new id.
    pub id_ip: Option<IpAddr>,
    /// Good routing-table nodes, most recently seen first (at most `MAX_SAVED_NODES`, 256).
    pub nodes: Vec<CompactNode>,
    /// Meetings joined, most recent first (at most `MAX_SAVED_MEETINGS`, 16).
    pub meetings: Vec<SavedMeeting>,
}

/// The members' addresses of one meeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMeeting {
    /// The meeting's DHT topic (a hash of the code; the code itself is never kept).
    pub topic: InfoHash,
    /// Addresses members answered from, most recent first (at most
    /// [`MAX_SAVED_CONTACTS`]).
    pub contacts: Vec<SocketAddr>,
}

impl SavedState {
    /// The remembered contacts of the meeting with `topic` (empty if none).
    pub fn contacts_of(&self, topic: &InfoHash) -> &[SocketAddr] {
        self.meetings
            .iter()
            .find(|m| m.topic == *topic)
            .map_or(&[], |m| m.contacts.as_slice())
    }

    /// Puts `contacts` of `topic` first (the most recent meeting), keeping older
    /// addresses of the same meeting behind the new ones, and enforces every bound.
    pub fn remember_meeting(&mut self, topic: InfoHash, contacts: &[SocketAddr]) {
        let mut merged: Vec<SocketAddr> = Vec::new();
        for a in contacts.iter().chain(self.contacts_of(&topic)) {
            if !merged.contains(a) {
                merged.push(*a);
            }
        }
        merged.truncate(MAX_SAVED_CONTACTS);
        self.meetings.retain(|m| m.topic != topic);
        if !merged.is_empty() {
            self.meetings.insert(
                0,
                SavedMeeting {
                    topic,
                    contacts: merged,
                },
            );
        }
        self.meetings.truncate(MAX_SAVED_MEETINGS);
    }

    /// Encodes the state (see `docs/STATE.md`). Lists beyond their bounds are cut to them,
    /// so the result is never longer than [`MAX_STATE_BYTES`].
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes a state; any byte string gives either a state within every bound or a
    /// [`StateError`], never a panic.
    pub fn decode(bytes: &[u8]) -> Result<SavedState, StateError> {
        wire::decode(bytes)
    }
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod resume_tests;
