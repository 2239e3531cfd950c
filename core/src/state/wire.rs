//! The saved state's byte format, version 1 (layout in `docs/STATE.md`):
//!
//! ```text
//! magic "DMST" | version u8 | flags u8 | length u32 (whole file)
//! [node id 20]            if flags bit 0
//! [endpoint ip]           if flags bit 1: family (4 | 6), 4 or 16 bytes
//! node count u16, nodes:  id 20, family, ip, port u16
//! meeting count u8, meetings: topic 20, contact count u8, contacts: family, ip, port u16
//! CRC-32 (IEEE) u32 of everything before it
//! ```
//!
//! All integers are big-endian. The length field tells a truncated file from a corrupted
//! one; the checksum catches bit rot and torn writes the runtime's atomic rename missed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAX_SAVED_CONTACTS, MAX_SAVED_MEETINGS, MAX_SAVED_NODES, SavedMeeting, SavedState};
use crate::dht::krpc::CompactNode;
use crate::dht::{InfoHash, NodeId};

/// The first four bytes of every saved state.
pub const MAGIC: [u8; 4] = *b"DMST";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;

const FLAG_NODE_ID: u8 = 0x01;
const FLAG_ID_IP: u8 = 0x02;
const HEADER: usize = 4 + 1 + 1 + 4;
const CHECKSUM: usize = 4;
/// An endpoint at its largest: family, IPv6 address, port.
const MAX_ENDPOINT: usize = 1 + 16 + 2;

/// The largest state this format can hold (every list full of IPv6 addresses): about
/// 20 KB. Anything longer is refused before it is read.
pub const MAX_STATE_BYTES: usize = HEADER
    + 20
    + (1 + 16)
    + 2
    + MAX_SAVED_NODES * (20 + MAX_ENDPOINT)
    + 1
    + MAX_SAVED_MEETINGS * (20 + 1 + MAX_SAVED_CONTACTS * MAX_ENDPOINT)
    + CHECKSUM;

/// Why bytes are not a usable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Empty, or shorter than its header or its own length field says.
    #[error("the state is truncated ({0} bytes)")]
    Truncated(usize),
    /// Longer than [`MAX_STATE_BYTES`].
    #[error("the state is {0} bytes, more than the {MAX_STATE_BYTES} this format can hold")]
    TooLarge(usize),
    /// Does not start with `MAGIC` (`DMST`): not a dhtmeet state.
    #[error("not a dhtmeet state (wrong magic bytes)")]
    NotState,
    /// Written by a newer version of the format.
    #[error("state format version {0} is newer than the version {VERSION} this program reads")]
    FutureVersion(u8),
    /// The checksum does not match: the bytes were altered.
    #[error("the state is corrupted (checksum mismatch)")]
    Corrupted,
    /// The checksum matches but the contents break the format.
    #[error("malformed state: {0}")]
    Malformed(&'static str),
}

/// Encodes `state`, cutting each list to its bound.
pub(super) fn encode(state: &SavedState) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let mut flags = 0;
    if state.node_id.is_some() {
        flags |= FLAG_NODE_ID;
    }
    if state.id_ip.is_some() {
        flags |= FLAG_ID_IP;
    }
    out.push(flags);
    out.extend_from_slice(&[0; 4]); // length, filled in below
    if let Some(id) = &state.node_id {
        out.extend_from_slice(&id.0);
    }
    if let Some(ip) = state.id_ip {
        put_ip(&mut out, ip);
    }
    let nodes = &state.nodes[..state.nodes.len().min(MAX_SAVED_NODES)];
    // Fits: MAX_SAVED_NODES < u16::MAX.
    out.extend_from_slice(&(nodes.len() as u16).to_be_bytes());
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        put_endpoint(&mut out, n.addr);
    }
    let meetings = &state.meetings[..state.meetings.len().min(MAX_SAVED_MEETINGS)];
    out.push(meetings.len() as u8); // MAX_SAVED_MEETINGS < 256
    for m in meetings {
        out.extend_from_slice(&m.topic.0);
        let contacts = &m.contacts[..m.contacts.len().min(MAX_SAVED_CONTACTS)];
        out.push(contacts.len() as u8); // MAX_SAVED_CONTACTS < 256
        for c in contacts {
            put_endpoint(&mut out, *c);
        }
    }
    let len = (out.len() + CHECKSUM) as u32; // at most MAX_STATE_BYTES
    out[6..10].copy_from_slice(&len.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

fn put_endpoint(out: &mut Vec<u8>, addr: SocketAddr) {
    put_ip(out, addr.ip());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Decodes a whole state: header checks first (so that a future version or a foreign
/// file is named as such), then the checksum, then the contents.
pub(super) fn decode(bytes: &[u8]) -> Result<SavedState, StateError> {
    if bytes.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge(bytes.len()));
    }
    if bytes.len() < MAGIC.len() {
        return if MAGIC.starts_with(bytes) {
            Err(StateError::Truncated(bytes.len()))
        } else {
            Err(StateError::NotState)
        };
    }
    if bytes[..4] != MAGIC {
        return Err(StateError::NotState);
    }
    if bytes.len() < HEADER + CHECKSUM {
        return Err(StateError::Truncated(bytes.len()));
    }
    let version = bytes[4];
    if version > VERSION {
        return Err(StateError::FutureVersion(version));
    }
    if version != VERSION {
        return Err(StateError::Malformed("unknown format version"));
    }
    let declared = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    if declared > bytes.len() {
        return Err(StateError::Truncated(bytes.len()));
    }
    if declared < bytes.len() {
        return Err(StateError::Malformed("bytes after the end"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CHECKSUM);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err(StateError::Corrupted);
    }
    let flags = bytes[5];
    if flags & !(FLAG_NODE_ID | FLAG_ID_IP) != 0 {
        return Err(StateError::Malformed("unknown flags"));
    }
    let mut r = Reader {
        rest: &body[HEADER..],
    };
    let node_id = if flags & FLAG_NODE_ID != 0 {
        Some(NodeId(r.array()?))
    } else {
        None
    };
    let id_ip = if flags & FLAG_ID_IP != 0 {
        Some(r.ip()?)
    } else {
        None
    };
    let count = u16::from_be_bytes(r.array()?) as usize;
    if count > MAX_SAVED_NODES {
        return Err(StateError::Malformed("too many nodes"));
    }
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        let id = NodeId(r.array()?);
        nodes.push(CompactNode {
            id,
            addr: r.endpoint()?,
        });
    }
    let count = r.byte()? as usize;
    if count > MAX_SAVED_MEETINGS {
        return Err(StateError::Malformed("too many meetings"));
    }
    let mut meetings = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = InfoHash(r.array()?);
        let n = r.byte()? as usize;
        if n > MAX_SAVED_CONTACTS {
            return Err(StateError::Malformed("too many contacts in a meeting"));
        }
        let mut contacts = Vec::with_capacity(n);
        for _ in 0..n {
            contacts.push(r.endpoint()?);
        }
        meetings.push(SavedMeeting { topic, contacts });
    }
    if !r.rest.is_empty() {
        return Err(StateError::Malformed("bytes after the last meeting"));
    }
    Ok(SavedState {
        node_id,
        id_ip,
        nodes,
        meetings,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StateError> {
        if self.rest.len() < n {
            return Err(StateError::Malformed("a field runs past the end"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }

    fn ip(&mut self) -> Result<IpAddr, StateError> {
        match self.byte()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            _ => Err(StateError::Malformed("unknown address family")),
        }
    }

    fn endpoint(&mut self) -> Result<SocketAddr, StateError> {
        let ip = self.ip()?;
        let port = u16::from_be_bytes(self.array()?);
        Ok(SocketAddr::new(ip, port))
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
