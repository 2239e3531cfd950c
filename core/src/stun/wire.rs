//! The STUN wire format (RFC 8489 §5, §14): a zero-copy decoder and a small encoder.
//!
//! The decoder validates everything it is handed in one pass — header, cookie, length,
//! every attribute's bounds, the attributes we interpret, and FINGERPRINT — so that the
//! accessors on [`Message`] are infallible and the state machines never see a malformed
//! message. It is property-tested against `stun-types` (the reference decoder of the
//! `stun-proto` project), see `docs/stun.md` for why we do not call it on the hot path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The fixed magic cookie of RFC 5389 and later (§5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the fixed STUN header.
pub const HEADER_LEN: usize = 20;
/// The Binding method (§18.2).
pub const BINDING: u16 = 0x001;
/// Value XORed into the CRC-32 of FINGERPRINT (§14.7).
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// At most this many unknown comprehension-required attribute types are remembered
/// (enough for a useful UNKNOWN-ATTRIBUTES in a 420 reply; the rest are still rejected).
pub const MAX_UNKNOWN_REPORTED: usize = 4;

/// Attribute types this crate knows by name (§18.3, RFC 5245/8445, RFC 5780).
pub mod attr {
    /// MAPPED-ADDRESS, kept for RFC 3489 servers.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// CHANGE-REQUEST (RFC 5780): comprehension-required, not supported here.
    pub const CHANGE_REQUEST: u16 = 0x0003;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM.
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH.
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER.
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;

    /// Comprehension-required attributes (0x0000–0x7FFF) that a binding agent understands.
    /// Anything else in that range makes a request fail with 420 and a response be
    /// discarded (§6.3.1, §6.3.4).
    pub fn is_understood(ty: u16) -> bool {
        matches!(
            ty,
            MAPPED_ADDRESS
                | USERNAME
                | MESSAGE_INTEGRITY
                | ERROR_CODE
                | UNKNOWN_ATTRIBUTES
                | REALM
                | NONCE
                | MESSAGE_INTEGRITY_SHA256
                | PASSWORD_ALGORITHM
                | USERHASH
                | XOR_MAPPED_ADDRESS
                | PRIORITY
                | USE_CANDIDATE
        )
    }
}

/// The 96-bit transaction id of a STUN message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub [u8; 12]);

impl std::fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The class of a STUN message (§5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
}

/// Packs a class and a 12-bit method into the 14-bit message type (§5, figure 3).
pub fn message_type(class: Class, method: u16) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 1) << 4)
        | ((c & 2) << 7)
}

fn split_message_type(ty: u16) -> (Class, u16) {
    let class = match ((ty >> 4) & 1) | ((ty >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    let method = (ty & 0x000F) | ((ty >> 1) & 0x0070) | ((ty >> 2) & 0x0F80);
    (class, method)
}

/// Why a datagram is not a valid STUN message. Every variant is a peer fault: the
/// caller counts it and drops the datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 20 bytes.
    #[error("shorter than a STUN header")]
    TooShort,
    /// The two most significant bits are not zero (not STUN at all).
    #[error("the first two bits are not zero")]
    NotStun,
    /// The magic cookie is wrong (an RFC 3489 message, or not STUN).
    #[error("wrong magic cookie")]
    BadMagicCookie,
    /// The message length field is not a multiple of four.
    #[error("message length is not a multiple of 4")]
    UnalignedLength,
    /// The message length field disagrees with the datagram's size.
    #[error("message length {declared} does not match the {actual} bytes received")]
    LengthMismatch {
        /// Header plus the declared message length.
        declared: usize,
        /// Bytes in the datagram.
        actual: usize,
    },
    /// An attribute header or value runs past the end of the message.
    #[error("attribute runs past the end of the message")]
    TruncatedAttribute,
    /// An attribute this decoder interprets has an invalid value.
    #[error("malformed attribute {0:#06x}")]
    MalformedAttribute(u16),
    /// FINGERPRINT does not match the message.
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    /// An attribute follows FINGERPRINT, which must be last (§14.7).
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
}

/// A validated STUN message borrowing the datagram it was decoded from.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    raw: &'a [u8],
    class: Class,
    method: u16,
    transaction_id: TransactionId,
    xor_mapped_address: Option<SocketAddr>,
    mapped_address: Option<SocketAddr>,
    alternate_server: Option<SocketAddr>,
    error_code: Option<u16>,
    username: Option<&'a [u8]>,
    has_integrity: bool,
    has_fingerprint: bool,
    unknown_required: [u16; MAX_UNKNOWN_REPORTED],
    unknown_required_len: u8,
}

impl<'a> Message<'a> {
    /// Decodes and validates one STUN message that fills the whole datagram.
    pub fn decode(raw: &'a [u8]) -> Result<Self, DecodeError> {
        if raw.len() < HEADER_LEN {
            return Err(DecodeError::TooShort);
        }
        if raw[0] & 0xC0 != 0 {
            return Err(DecodeError::NotStun);
        }
        if be32(raw, 4) != MAGIC_COOKIE {
            return Err(DecodeError::BadMagicCookie);
        }
        let length = usize::from(be16(raw, 2));
        if length % 4 != 0 {
            return Err(DecodeError::UnalignedLength);
        }
        if HEADER_LEN + length != raw.len() {
            return Err(DecodeError::LengthMismatch {
                declared: HEADER_LEN + length,
                actual: raw.len(),
            });
        }
        let (class, method) = split_message_type(be16(raw, 0));
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&raw[8..20]);
        let transaction_id = TransactionId(transaction_id);

        let mut msg = Message {
            raw,
            class,
            method,
            transaction_id,
            xor_mapped_address: None,
            mapped_address: None,
            alternate_server: None,
            error_code: None,
            username: None,
            has_integrity: false,
            has_fingerprint: false,
            unknown_required: [0; MAX_UNKNOWN_REPORTED],
            unknown_required_len: 0,
        };

        let mut offset = HEADER_LEN;
        // After MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count
        // (§14.5, §14.6); others are ignored, as the RFC says receivers must.
        let mut after_integrity = false;
        while offset < raw.len() {
            if msg.has_fingerprint {
                return Err(DecodeError::FingerprintNotLast);
            }
            if raw.len() - offset < 4 {
                return Err(DecodeError::TruncatedAttribute);
            }
            let ty = be16(raw, offset);
            let len = usize::from(be16(raw, offset + 2));
            let value_start = offset + 4;
            let padded = (len + 3) & !3;
            if raw.len() - value_start < padded {
                return Err(DecodeError::TruncatedAttribute);
            }
            let value = &raw[value_start..value_start + len];
            match ty {
                attr::FINGERPRINT => {
                    if len != 4 {
                        return Err(DecodeError::MalformedAttribute(ty));
                    }
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(&raw[..offset]);
                    if crc.finalize() ^ FINGERPRINT_XOR != be32(value, 0) {
                        return Err(DecodeError::BadFingerprint);
                    }
                    msg.has_fingerprint = true;
                }
                attr::MESSAGE_INTEGRITY | attr::MESSAGE_INTEGRITY_SHA256 => {
                    msg.has_integrity = true;
                    after_integrity = true;
                }
                _ if after_integrity => {}
                // Every occurrence is validated; the first one counts (§14).
                attr::XOR_MAPPED_ADDRESS => {
                    let addr = xor_address(decode_address(value, ty)?, &transaction_id);
                    msg.xor_mapped_address.get_or_insert(addr);
                }
                attr::MAPPED_ADDRESS => {
                    msg.mapped_address.get_or_insert(decode_address(value, ty)?);
                }
                attr::ALTERNATE_SERVER => {
                    msg.alternate_server
                        .get_or_insert(decode_address(value, ty)?);
                }
                attr::ERROR_CODE => {
                    msg.error_code.get_or_insert(decode_error_code(value)?);
                }
                attr::USERNAME => {
                    msg.username.get_or_insert(value);
                }
                _ if ty < 0x8000 && !attr::is_understood(ty) => {
                    let n = usize::from(msg.unknown_required_len);
                    if n < MAX_UNKNOWN_REPORTED {
                        msg.unknown_required[n] = ty;
                        msg.unknown_required_len += 1;
                    }
                }
                _ => {}
            }
            offset = value_start + padded;
        }
        Ok(msg)
    }

    /// The whole message as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// The message class.
    pub fn class(&self) -> Class {
        self.class
    }
    /// The 12-bit method (`BINDING` is 1).
    pub fn method(&self) -> u16 {
        self.method
    }
    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }
    /// The first XOR-MAPPED-ADDRESS, un-XORed.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address
    }
    /// The first MAPPED-ADDRESS (RFC 3489 servers send only this).
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.mapped_address
    }
    /// The reflexive address a response reports: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS.
    pub fn reflexive_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address.or(self.mapped_address)
    }
    /// The first ALTERNATE-SERVER.
    pub fn alternate_server(&self) -> Option<SocketAddr> {
        self.alternate_server
    }
    /// The error code (300–699) of the first ERROR-CODE attribute.
    pub fn error_code(&self) -> Option<u16> {
        self.error_code
    }
    /// Whether the message carries USERNAME (an ICE connectivity check, for a request).
    pub fn has_username(&self) -> bool {
        self.username.is_some()
    }
    /// The first USERNAME's value (for an ICE check, `recipient:sender` ufrags).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }
    /// Whether the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity(&self) -> bool {
        self.has_integrity
    }
    /// Whether the message carries a (valid: it was checked) FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.has_fingerprint
    }
    /// Comprehension-required attribute types this agent does not understand (at most
    /// [`MAX_UNKNOWN_REPORTED`] of them are listed; any is enough to reject).
    pub fn unknown_required(&self) -> &[u16] {
        &self.unknown_required[..usize::from(self.unknown_required_len)]
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes the MAPPED-ADDRESS layout (§14.1): reserved, family, port, address.
fn decode_address(value: &[u8], ty: u16) -> Result<SocketAddr, DecodeError> {
    match (value.len(), value.get(1)) {
        (8, Some(1)) => {
            let ip = Ipv4Addr::new(value[4], value[5], value[6], value[7]);
            Ok(SocketAddr::new(IpAddr::V4(ip), be16(value, 2)))
        }
        (20, Some(2)) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&value[4..20]);
            Ok(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                be16(value, 2),
            ))
        }
        _ => Err(DecodeError::MalformedAttribute(ty)),
    }
}

/// XORs an address with the cookie (and, for IPv6, the transaction id): §14.2. The
/// operation is its own inverse, so it both encodes and decodes.
fn xor_address(addr: SocketAddr, transaction_id: &TransactionId) -> SocketAddr {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match addr.ip() {
        IpAddr::V4(ip) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u32::from(ip) ^ MAGIC_COOKIE)),
            port,
        ),
        IpAddr::V6(ip) => {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(&transaction_id.0);
            let mut octets = ip.octets();
            for (o, k) in octets.iter_mut().zip(key) {
                *o ^= k;
            }
            SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port)
        }
    }
}

/// ERROR-CODE (§14.8): 21 reserved bits, class (3–6), number (0–99), UTF-8 reason.
fn decode_error_code(value: &[u8]) -> Result<u16, DecodeError> {
    if value.len() < 4 {
        return Err(DecodeError::MalformedAttribute(attr::ERROR_CODE));
    }
    let class = u16::from(value[2] & 0x07);
    let number = u16::from(value[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(DecodeError::MalformedAttribute(attr::ERROR_CODE));
    }
    Ok(class * 100 + number)
}

/// Builds one STUN message into a `Vec`: header, attributes, then FINGERPRINT.
#[derive(Debug)]
pub struct MessageWriter {
    buf: Vec<u8>,
}

impl MessageWriter {
    /// Starts a message of `class` and `method` with `transaction_id`.
    pub fn new(class: Class, method: u16, transaction_id: TransactionId) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id.0);
        MessageWriter { buf }
    }

    /// Appends an attribute with its padding. Values longer than 65 535 bytes are a
    /// programming error in this crate, never input-driven; they are truncated.
    pub fn attribute(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.buf.extend_from_slice(&ty.to_be_bytes());
        // Cannot truncate: clamped to u16::MAX just above.
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let padding = (4 - value.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..padding]);
        self
    }

    /// Appends XOR-MAPPED-ADDRESS for `addr`.
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        let mut id = [0u8; 12];
        id.copy_from_slice(&self.buf[8..20]);
        let xored = xor_address(addr, &TransactionId(id));
        self.address(attr::XOR_MAPPED_ADDRESS, xored)
    }

    /// Appends an address attribute in the MAPPED-ADDRESS layout.
    pub fn address(&mut self, ty: u16, addr: SocketAddr) -> &mut Self {
        let port = addr.port().to_be_bytes();
        match addr.ip() {
            IpAddr::V4(ip) => {
                let o = ip.octets();
                self.attribute(ty, &[0, 1, port[0], port[1], o[0], o[1], o[2], o[3]])
            }
            IpAddr::V6(ip) => {
                let mut v = [0u8; 20];
                v[1] = 2;
                v[2..4].copy_from_slice(&port);
                v[4..].copy_from_slice(&ip.octets());
                self.attribute(ty, &v)
            }
        }
    }

    /// Appends ERROR-CODE with `code` (300–699) and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut v = Vec::with_capacity(4 + reason.len());
        // Classes are 3..=6 and numbers 0..=99, both fit in a byte.
        v.extend_from_slice(&[0, 0, (code / 100) as u8 & 0x07, (code % 100) as u8]);
        v.extend_from_slice(reason.as_bytes());
        self.attribute(attr::ERROR_CODE, &v)
    }

    /// Appends FINGERPRINT and returns the finished message.
    pub fn finish_with_fingerprint(mut self) -> Vec<u8> {
        let total = self.buf.len() + 8 - HEADER_LEN;
        self.set_length(total);
        let crc = crc32fast::hash(&self.buf) ^ FINGERPRINT_XOR;
        self.buf.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&crc.to_be_bytes());
        self.buf
    }

    /// Returns the finished message without FINGERPRINT.
    pub fn finish(mut self) -> Vec<u8> {
        let total = self.buf.len() - HEADER_LEN;
        self.set_length(total);
        self.buf
    }

    fn set_length(&mut self, length: usize) {
        // Bounded by the attribute clamp and the callers' small messages.
        let length = u16::try_from(length).unwrap_or(u16::MAX);
        self.buf[2..4].copy_from_slice(&length.to_be_bytes());
    }
}

/// Encodes a Binding request with FINGERPRINT.
pub fn binding_request(transaction_id: TransactionId) -> Vec<u8> {
    MessageWriter::new(Class::Request, BINDING, transaction_id).finish_with_fingerprint()
}

/// Encodes a Binding success response reporting `reflexive` with FINGERPRINT.
pub fn binding_success(transaction_id: TransactionId, reflexive: SocketAddr) -> Vec<u8> {
    let mut w = MessageWriter::new(Class::Success, BINDING, transaction_id);
    w.xor_mapped_address(reflexive);
    w.finish_with_fingerprint()
}

/// Encodes an error response with FINGERPRINT; `unknown` fills UNKNOWN-ATTRIBUTES (420).
pub fn error_response(
    method: u16,
    transaction_id: TransactionId,
    code: u16,
    reason: &str,
    unknown: &[u16],
) -> Vec<u8> {
    let mut w = MessageWriter::new(Class::Error, method, transaction_id);
    w.error_code(code, reason);
    if !unknown.is_empty() {
        let list: Vec<u8> = unknown.iter().flat_map(|t| t.to_be_bytes()).collect();
        w.attribute(attr::UNKNOWN_ATTRIBUTES, &list);
    }
    w.finish_with_fingerprint()
}

#[cfg(test)]
#[path = "wire_tests.rs"]
pub(crate) mod tests;
