//! Encoding KRPC messages to bencode, by hand: the format is a handful of known keys, so
//! writing them in their sorted order directly beats any generic encoder, and cannot fail.
//!
//! Only known keys are written, every dictionary's keys in sorted byte order (as BEP 3
//! requires and strict decoders such as ours check). Absent or empty optional data is
//! left out: no `v`, `ro`, `ip`, `want`, `nodes`, `nodes6`, `values` or `token` when
//! there is none, and `implied_port` only when set. `announce_peer` always carries
//! `port`, as BEP 5 shows even with `implied_port`.
//!
//! [`Message::decode`] is the exact inverse of [`Message::encode`] for every message
//! within the decoder's bounds, namely:
//! - `transaction_id` of 1..=[`MAX_TRANSACTION_ID`](super::MAX_TRANSACTION_ID) bytes,
//!   `version` of at most [`MAX_VERSION`](super::MAX_VERSION), tokens of at most
//!   [`MAX_TOKEN`](super::MAX_TOKEN) bytes;
//! - `nodes` all IPv4 and `nodes6` all IPv6 (a node of the other family cannot be
//!   written in that key and is left out), at most [`MAX_NODES`](super::MAX_NODES) each,
//!   at most [`MAX_VALUES`](super::MAX_VALUES) `values`;
//! - IPv6 addresses with zero flow info and scope id (compact infos carry neither);
//! - an error message of at most [`MAX_ERROR_MESSAGE`](super::MAX_ERROR_MESSAGE) bytes;
//! - [`Query::Other`] with a method name of at most [`MAX_METHOD`](super::MAX_METHOD)
//!   bytes that is not one of the four BEP 5 methods, and `args` a canonical bencoded
//!   dictionary whose `id` is the query's id. `args` is written verbatim: it is the
//!   extension's own encoding, and the body's `id` is not inserted into it.

use std::net::SocketAddr;

use super::{Body, CompactNode, Message, Query, Response, Want};

impl Message {
    /// Encodes the message (keys sorted, as bencode requires).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(b'd');
        match &self.body {
            Body::Query { id, query } => {
                out.extend_from_slice(b"1:a");
                encode_args(out, id, query);
            }
            Body::Error { code, message } => {
                out.extend_from_slice(b"1:el");
                integer(out, *code);
                bytes(out, message.as_bytes());
                out.push(b'e');
            }
            Body::Response { .. } => {}
        }
        if let Some(ip) = &self.ip {
            out.extend_from_slice(b"2:ip");
            compact_addr(out, ip);
        }
        match &self.body {
            Body::Query { query, .. } => {
                out.extend_from_slice(b"1:q");
                bytes(out, method(query));
            }
            Body::Response { id, response } => {
                out.extend_from_slice(b"1:r");
                encode_response(out, &id.0, response);
            }
            Body::Error { .. } => {}
        }
        if self.read_only {
            out.extend_from_slice(b"2:roi1e");
        }
        out.extend_from_slice(b"1:t");
        bytes(out, &self.transaction_id);
        if let Some(version) = &self.version {
            out.extend_from_slice(b"1:v");
            bytes(out, version);
        }
        out.extend_from_slice(match self.body {
            Body::Query { .. } => b"1:y1:qe",
            Body::Response { .. } => b"1:y1:re",
            Body::Error { .. } => b"1:y1:ee",
        });
    }

    /// A generous estimate of the encoded length, so that [`Message::encode`] allocates
    /// once.
    fn encoded_len_hint(&self) -> usize {
        let fixed = 64 + self.transaction_id.len() + self.version.as_ref().map_or(0, Vec::len);
        fixed
            + match &self.body {
                Body::Query { query, .. } => match query {
                    Query::Ping => 16,
                    Query::FindNode { .. } | Query::GetPeers { .. } => 64,
                    Query::AnnouncePeer { token, .. } => 96 + token.len(),
                    Query::Other { method, args } => 8 + method.len() + args.len(),
                },
                Body::Response { response, .. } => {
                    48 + response.nodes.len() * 26
                        + response.nodes6.len() * 38
                        + response.values.len() * 21
                        + response.token.as_ref().map_or(0, Vec::len)
                }
                Body::Error { message, .. } => 32 + message.len(),
            }
    }
}

fn method(query: &Query) -> &[u8] {
    match query {
        Query::Ping => b"ping",
        Query::FindNode { .. } => b"find_node",
        Query::GetPeers { .. } => b"get_peers",
        Query::AnnouncePeer { .. } => b"announce_peer",
        Query::Other { method, .. } => method,
    }
}

/// The `a` dictionary; keys in sorted order: id, implied_port, info_hash, port, target,
/// token, want.
fn encode_args(out: &mut Vec<u8>, id: &super::NodeId, query: &Query) {
    if let Query::Other { args, .. } = query {
        out.extend_from_slice(args);
        return;
    }
    out.extend_from_slice(b"d2:id20:");
    out.extend_from_slice(&id.0);
    match query {
        Query::Ping | Query::Other { .. } => {}
        Query::FindNode { target, want } => {
            out.extend_from_slice(b"6:target20:");
            out.extend_from_slice(&target.0);
            encode_want(out, want);
        }
        Query::GetPeers { info_hash, want } => {
            out.extend_from_slice(b"9:info_hash20:");
            out.extend_from_slice(&info_hash.0);
            encode_want(out, want);
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            if *implied_port {
                out.extend_from_slice(b"12:implied_porti1e");
            }
            out.extend_from_slice(b"9:info_hash20:");
            out.extend_from_slice(&info_hash.0);
            out.extend_from_slice(b"4:port");
            integer(out, i64::from(*port));
            out.extend_from_slice(b"5:token");
            bytes(out, token);
        }
    }
    out.push(b'e');
}

fn encode_want(out: &mut Vec<u8>, want: &Want) {
    if !want.v4 && !want.v6 {
        return;
    }
    out.extend_from_slice(b"4:wantl");
    if want.v4 {
        out.extend_from_slice(b"2:n4");
    }
    if want.v6 {
        out.extend_from_slice(b"2:n6");
    }
    out.push(b'e');
}

/// The `r` dictionary; keys in sorted order: id, nodes, nodes6, token, values.
fn encode_response(out: &mut Vec<u8>, id: &[u8; 20], response: &Response) {
    out.extend_from_slice(b"d2:id20:");
    out.extend_from_slice(id);
    compact_nodes(out, b"5:nodes", &response.nodes, true);
    compact_nodes(out, b"6:nodes6", &response.nodes6, false);
    if let Some(token) = &response.token {
        out.extend_from_slice(b"5:token");
        bytes(out, token);
    }
    if !response.values.is_empty() {
        out.extend_from_slice(b"6:valuesl");
        for peer in &response.values {
            compact_addr(out, peer);
        }
        out.push(b'e');
    }
    out.push(b'e');
}

/// One `nodes` (IPv4, 26 bytes each) or `nodes6` (IPv6, 38 bytes each) string; nodes
/// of the other family do not fit and are left out.
fn compact_nodes(out: &mut Vec<u8>, key: &[u8], nodes: &[CompactNode], v4: bool) {
    let fits = |node: &&CompactNode| node.addr.is_ipv4() == v4;
    let count = nodes.iter().filter(fits).count();
    if count == 0 {
        return;
    }
    out.extend_from_slice(key);
    decimal(out, (count * if v4 { 26 } else { 38 }) as u64);
    out.push(b':');
    for node in nodes.iter().filter(fits) {
        out.extend_from_slice(&node.id.0);
        compact_addr_body(out, &node.addr);
    }
}

/// A compact address as a byte string: `6:` + IPv4 + port, or `18:` + IPv6 + port.
fn compact_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    out.extend_from_slice(if addr.is_ipv4() { b"6:" } else { b"18:" });
    compact_addr_body(out, addr);
}

fn compact_addr_body(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// A bencoded byte string: length, colon, bytes.
fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    decimal(out, value.len() as u64);
    out.push(b':');
    out.extend_from_slice(value);
}

/// A bencoded integer: `i`, decimal, `e`.
fn integer(out: &mut Vec<u8>, value: i64) {
    out.push(b'i');
    if value < 0 {
        out.push(b'-');
    }
    decimal(out, value.unsigned_abs());
    out.push(b'e');
}

/// Canonical decimal digits (no leading zeros), without going through `fmt`.
fn decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        start -= 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}
