//! KRPC, the Mainline DHT's message format (BEP 5, BEP 32 for IPv6, BEP 42's `ip`, BEP 43's
//! `ro`): the message types, and their bencode codec (`decode.rs`, `encode.rs`).
//!
//! Liberal in what we accept (any transaction-id length up to [`MAX_TRANSACTION_ID`],
//! unknown keys ignored, unknown query methods decoded so the node can answer 204),
//! conservative in what we send (4-byte transaction ids, sorted keys, only known keys).
//!
//! Exactly which keys are checked, and which over-long data is truncated or rejected, is
//! written down in `decode.rs`; the messages that `encode` → `decode` gives back unchanged
//! (all within these bounds), in `encode.rs`.

use std::net::SocketAddr;

use super::id::{InfoHash, NodeId};

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::{KrpcDecodeError, KrpcDecodeErrorKind};

/// Longest transaction id accepted (real clients use 2–8 bytes).
pub const MAX_TRANSACTION_ID: usize = 32;
/// Longest `v` (client version) kept; longer ones are truncated.
pub const MAX_VERSION: usize = 16;
/// Longest token accepted (ours are 8 bytes; libtorrent's 4; BEP 5 says short).
pub const MAX_TOKEN: usize = 64;
/// Most compact nodes kept from one `nodes` or `nodes6` string.
pub const MAX_NODES: usize = 64;
/// Most peers kept from one `values` list.
pub const MAX_VALUES: usize = 256;
/// Longest error message kept, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 256;
/// Longest unknown method name kept, in bytes.
pub const MAX_METHOD: usize = 64;

/// KRPC error codes (BEP 5).
pub mod error_code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: malformed packet, invalid arguments, bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// A node's id and address: "compact node info" (26 bytes for IPv4, 38 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompactNode {
    /// The node's id.
    pub id: NodeId,
    /// Its UDP address.
    pub addr: SocketAddr,
}

/// BEP 32 `want`: which address families' nodes the querier wants. Both false means the
/// key was absent: answer with the family of the socket the query came in on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4` was in the list.
    pub v4: bool,
    /// `n6` was in the list.
    pub v6: bool,
}

/// A query (`y` = `q`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping,
    /// `find_node` for `target`.
    FindNode {
        /// The id looked for.
        target: NodeId,
        /// BEP 32 families wanted.
        want: Want,
    },
    /// `get_peers` for `info_hash`.
    GetPeers {
        /// The info-hash looked for.
        info_hash: InfoHash,
        /// BEP 32 families wanted.
        want: Want,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The info-hash announced.
        info_hash: InfoHash,
        /// The announced port (ignored when `implied_port`).
        port: u16,
        /// Use the UDP source port instead of `port`.
        implied_port: bool,
        /// The token a `get_peers` response gave.
        token: Vec<u8>,
    },
    /// A method we do not know (answered with error 204, or handled by an extension such
    /// as meeting signaling). `args` is the raw bencoded `a` dictionary, so an extension
    /// can decode its own arguments.
    Other {
        /// The method name (at most [`MAX_METHOD`] bytes).
        method: Vec<u8>,
        /// The raw bencoded `a` dictionary.
        args: Vec<u8>,
    },
}

/// A response (`y` = `r`). KRPC responses do not say which query they answer; every
/// known key is decoded and the transaction tells the meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// `nodes`: IPv4 compact node infos (at most [`MAX_NODES`]).
    pub nodes: Vec<CompactNode>,
    /// `nodes6`: IPv6 compact node infos (BEP 32, at most [`MAX_NODES`]).
    pub nodes6: Vec<CompactNode>,
    /// `values`: compact peer infos (6 or 18 bytes each, at most [`MAX_VALUES`]).
    pub values: Vec<SocketAddr>,
    /// `token` (at most [`MAX_TOKEN`] bytes).
    pub token: Option<Vec<u8>>,
}

/// The body of a KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A query, with the querying node's id (`a.id`).
    Query {
        /// The querier's id.
        id: NodeId,
        /// What it asks.
        query: Query,
    },
    /// A response, with the responding node's id (`r.id`).
    Response {
        /// The responder's id.
        id: NodeId,
        /// The payload.
        response: Response,
    },
    /// An error (`y` = `e`, `e` = [code, message]).
    Error {
        /// The error code (201–204, or anything a peer sends).
        code: i64,
        /// The message, lossily UTF-8, at most [`MAX_ERROR_MESSAGE`] bytes.
        message: String,
    },
}

/// A KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: the transaction id (at most [`MAX_TRANSACTION_ID`] bytes).
    pub transaction_id: Vec<u8>,
    /// `v`: the sender's client version, if given (at most [`MAX_VERSION`] bytes kept).
    pub version: Option<Vec<u8>>,
    /// `ro` = 1: the sender is read-only (BEP 43) and must not be queried.
    pub read_only: bool,
    /// `ip`: our address as the responder sees it (BEP 42), compact (6 or 18 bytes).
    pub ip: Option<SocketAddr>,
    /// The query, response or error.
    pub body: Body,
}
