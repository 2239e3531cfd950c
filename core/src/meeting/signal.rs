//! Authenticated serverless signaling between meeting members: a KRPC extension query
//! (`q` = `dm_signal`) sent straight to the address the DHT gave, on the node's one
//! socket. It demultiplexes as KRPC, and gets transaction ids and acknowledgements (the
//! KRPC response) for free.
//!
//! The `a` dictionary, keys in bencode order:
//!
//! | key | value |
//! |---|---|
//! | `c` / `c6` | host candidates, compact IPv4 (6 bytes each) / IPv6 (18 bytes each) |
//! | `e` | the echo: the latest [`Challenge`] the recipient sent us (proves we hold the key now) |
//! | `f` | the sender's DTLS certificate fingerprint, SHA-256 (32 bytes) |
//! | `h` | the MAC: HMAC-SHA256(signaling key, label ‖ `a` without `h`)[..16] |
//! | `id` | the sender's DHT node id (KRPC convention) |
//! | `k` | kind: 1 = session parameters, 2 = bye, 3 = hello |
//! | `m` | the sender's member id (8 random bytes, new at every start) |
//! | `n` | the sender's sequence number (strictly increasing per member id) |
//! | `p` | ICE password |
//! | `r` / `r6` | server-reflexive candidates (STUN, or as DHT nodes saw us), compact |
//! | `s` | the SCTP INIT chunk for SCTP SNAP, if offered (at most [`MAX_SCTP_INIT`] bytes) |
//! | `t` | the sender's NAT class, [`NatClass::to_wire`] (absent: unknown) |
//! | `to` | the recipient's member id, once known (binds the message to one recipient) |
//! | `u` | ICE username fragment |
//! | `x` | the sender's [`Challenge`] (hellos only): the recipient answers by echoing it |
//!
//! `c`, `c6`, `f`, `p`, `r`, `r6`, `s`, `u` are present for kind 1 only; at most
//! [`MAX_CANDIDATES`] candidates in all. Only a member (who knows the
//! code, hence the signaling key) can produce a valid `h`; [`ReplayGuard`] drops a
//! replayed or reordered-old message; a hello proves nothing by itself (a copy of a
//! member's hello is as authentic as the original), so a member is trusted only once a
//! message of its echoes a challenge we sent (`challenges.rs`); and the fingerprint in an
//! authenticated message is what binds the WebRTC (DTLS) channel to a member.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bendy::decoding::{Decoder, Object};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::dht::NodeId;
use crate::nat::{self, NatClass};
use crate::webrtc::{CandidateKind, IceCandidate, SessionParameters};

/// The KRPC method name of signaling messages.
pub const METHOD: &[u8] = b"dm_signal";
/// Candidates per message at most.
pub const MAX_CANDIDATES: usize = 8;
/// Longest ICE credential accepted (RFC 8445: ufrag 4–256 characters, pwd 22–256; str0m
/// and browsers use 4–32 and 22–32).
pub const MAX_CREDENTIAL: usize = 64;
/// Longest SCTP INIT chunk accepted for SNAP.
pub const MAX_SCTP_INIT: usize = 512;
/// Bytes of HMAC kept.
pub const MAC_LEN: usize = 16;
const MAC_LABEL: &[u8] = b"dhtmeet/signal/v1\0";

/// Bytes of a [`Challenge`].
pub const CHALLENGE_LEN: usize = 8;

/// A random value from the meeting's seeded RNG that a hello carries (`x`). A member
/// that answers with a message echoing it (`e`), under the meeting's MAC, proves that it
/// holds the meeting's key *now*: a captured message cannot echo a challenge made after it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Challenge(pub [u8; CHALLENGE_LEN]);

/// A member's id: 8 random bytes, new each time a node starts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub [u8; 8]);

impl std::fmt::Debug for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A member id that is not 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a member id is 16 hex digits")]
pub struct ParseMemberIdError;

impl std::str::FromStr for MemberId {
    type Err = ParseMemberIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().as_bytes();
        if s.len() != 16 {
            return Err(ParseMemberIdError);
        }
        let digit = |c: u8| (c as char).to_digit(16).ok_or(ParseMemberIdError);
        let mut id = [0u8; 8];
        for (i, pair) in s.chunks(2).enumerate() {
            id[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(MemberId(id))
    }
}

/// What a signaling message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DmSignalBody {
    /// "Here is how to reach me": starts (or restarts) a session.
    Params(SessionParameters),
    /// "I am leaving": close the session.
    Bye,
    /// "I am a member, here is my member id, prove you are one too": sent to addresses
    /// the DHT gave, before any session exists (the session's ICE role depends on both
    /// member ids), and in answer to a hello from a member not yet proven.
    Hello {
        /// Our challenge for the recipient (`x`), to be echoed.
        challenge: Challenge,
    },
}

/// One signaling message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmSignal {
    /// The sender's DHT node id.
    pub node_id: NodeId,
    /// The sender's member id.
    pub from: MemberId,
    /// The recipient's member id, once the sender knows it.
    pub to: Option<MemberId>,
    /// The sender's sequence number.
    pub seq: u64,
    /// The recipient's latest challenge, echoed (`e`): proves the sender holds the
    /// meeting's key now, to the one who made the challenge.
    pub echo: Option<Challenge>,
    /// How the NAT in front of the sender maps its socket, as the sender sees it
    /// (`t`; sent in hellos and parameters once known, [`NatClass::Unknown`] is left
    /// out). A claim, authenticated as a member's but not verified.
    pub nat: NatClass,
    /// The content.
    pub body: DmSignalBody,
}

/// Why a signaling message was refused. All are counted and dropped by the meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DmSignalError {
    /// Not a well-formed bencoded dictionary, or a field of the wrong type or length.
    #[error("malformed signaling message ({0})")]
    Malformed(&'static str),
    /// The MAC does not verify: not from a member of this meeting, or altered.
    #[error("signaling message not authenticated")]
    BadMac,
    /// Addressed to another member.
    #[error("signaling message for another member")]
    NotForUs,
    /// Seen before, or older than the replay window.
    #[error("replayed signaling message")]
    Replayed,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8; 32], unsigned_args: &[u8]) -> [u8; MAC_LEN] {
    let mut m =
        <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    m.update(MAC_LABEL);
    m.update(unsigned_args);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

fn put_bytes(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(format!("{}:{key}{}:", key.len(), value.len()).as_bytes());
    out.extend_from_slice(value);
}

fn put_int(out: &mut Vec<u8>, key: &str, value: u64) {
    out.extend_from_slice(format!("{}:{key}i{value}e", key.len()).as_bytes());
}

fn compact(addrs: impl Iterator<Item = SocketAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    for a in addrs {
        match a.ip() {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&a.port().to_be_bytes());
    }
    out
}

impl DmSignal {
    /// The canonical `a` dictionary, with `h` when `mac` is given and `t` when `nat`
    /// is (the raw value: a receiver authenticates the bytes it got, which a later
    /// version may have extended).
    fn args(&self, mac: Option<&[u8; MAC_LEN]>, nat: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(300);
        out.push(b'd');
        let params = match &self.body {
            DmSignalBody::Params(p) => Some(p),
            DmSignalBody::Bye | DmSignalBody::Hello { .. } => None,
        };
        let of = |p: &SessionParameters, kind: CandidateKind, v4: bool| {
            compact(
                p.candidates
                    .iter()
                    .take(MAX_CANDIDATES)
                    .filter(move |c| c.kind == kind && c.addr.is_ipv4() == v4)
                    .map(|c| c.addr),
            )
        };
        let put_nonempty = |out: &mut Vec<u8>, key: &str, v: Vec<u8>| {
            if !v.is_empty() {
                put_bytes(out, key, &v);
            }
        };
        if let Some(p) = params {
            put_nonempty(&mut out, "c", of(p, CandidateKind::Host, true));
            put_nonempty(&mut out, "c6", of(p, CandidateKind::Host, false));
        }
        if let Some(e) = self.echo {
            put_bytes(&mut out, "e", &e.0);
        }
        if let Some(p) = params {
            put_bytes(&mut out, "f", &p.fingerprint);
        }
        if let Some(h) = mac {
            put_bytes(&mut out, "h", h);
        }
        put_bytes(&mut out, "id", &self.node_id.0);
        let kind = match self.body {
            DmSignalBody::Params(_) => 1,
            DmSignalBody::Bye => 2,
            DmSignalBody::Hello { .. } => 3,
        };
        put_int(&mut out, "k", kind);
        put_bytes(&mut out, "m", &self.from.0);
        put_int(&mut out, "n", self.seq);
        if let Some(p) = params {
            put_bytes(
                &mut out,
                "p",
                &p.pwd.as_bytes()[..p.pwd.len().min(MAX_CREDENTIAL)],
            );
            put_nonempty(&mut out, "r", of(p, CandidateKind::ServerReflexive, true));
            put_nonempty(&mut out, "r6", of(p, CandidateKind::ServerReflexive, false));
            if let Some(init) = &p.sctp_init {
                put_bytes(&mut out, "s", &init[..init.len().min(MAX_SCTP_INIT)]);
            }
        }
        if let Some(t) = nat {
            put_bytes(&mut out, "t", t);
        }
        if let Some(to) = self.to {
            put_bytes(&mut out, "to", &to.0);
        }
        if let Some(p) = params {
            put_bytes(
                &mut out,
                "u",
                &p.ufrag.as_bytes()[..p.ufrag.len().min(MAX_CREDENTIAL)],
            );
        }
        if let DmSignalBody::Hello { challenge } = &self.body {
            put_bytes(&mut out, "x", &challenge.0);
        }
        out.push(b'e');
        out
    }

    /// The authenticated `a` dictionary of a `dm_signal` query. Sequence numbers are kept
    /// below 2^63 (bencode integers are signed 64-bit in practice).
    pub fn encode_args(&self, key: &[u8; 32]) -> Vec<u8> {
        let mut s = self.clone();
        s.seq &= i64::MAX as u64;
        let nat = s.nat.to_wire();
        let h = mac(key, &s.args(None, nat.as_deref()));
        s.args(Some(&h), nat.as_deref())
    }

    /// Decodes and authenticates the raw `a` dictionary of a `dm_signal` query. `me` is
    /// our member id: a message addressed to another member is refused.
    pub fn decode_args(args: &[u8], key: &[u8; 32], me: MemberId) -> Result<DmSignal, DmSignalError> {
        let fields = Fields::read(args)?;
        let h = fields.h.ok_or(DmSignalError::Malformed("h"))?;
        let node_id = NodeId(fixed(fields.id.ok_or(DmSignalError::Malformed("id"))?, "id")?);
        let from = MemberId(fixed(fields.m.ok_or(DmSignalError::Malformed("m"))?, "m")?);
        let to = fields
            .to
            .map(|t| fixed(t, "to").map(MemberId))
            .transpose()?;
        let echo = fields
            .e
            .map(|e| fixed(e, "e").map(Challenge))
            .transpose()?;
        if fields.x.is_some() && fields.k != Some(3) {
            return Err(DmSignalError::Malformed("x"));
        }
        let seq = u64::try_from(fields.n.ok_or(DmSignalError::Malformed("n"))?)
            .map_err(|_| DmSignalError::Malformed("n"))?;
        if fields.t.is_some_and(|t| t.len() > nat::MAX_WIRE_LEN) {
            return Err(DmSignalError::Malformed("t"));
        }
        let nat = fields.t.map_or(NatClass::Unknown, NatClass::from_wire);
        let body = match fields.k {
            Some(1) => {
                let mut candidates = Vec::new();
                for (bytes, size, kind) in [
                    (fields.c, 6, CandidateKind::Host),
                    (fields.c6, 18, CandidateKind::Host),
                    (fields.r, 6, CandidateKind::ServerReflexive),
                    (fields.r6, 18, CandidateKind::ServerReflexive),
                ] {
                    let addrs = split_compact(bytes.unwrap_or_default(), size)?;
                    candidates.extend(addrs.into_iter().map(|addr| IceCandidate { kind, addr }));
                }
                if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
                    return Err(DmSignalError::Malformed("candidates"));
                }
                let text = |b: Option<&[u8]>, key: &'static str| -> Result<String, DmSignalError> {
                    let b = b.ok_or(DmSignalError::Malformed(key))?;
                    if b.is_empty() || b.len() > MAX_CREDENTIAL {
                        return Err(DmSignalError::Malformed(key));
                    }
                    String::from_utf8(b.to_vec()).map_err(|_| DmSignalError::Malformed(key))
                };
                let sctp_init = match fields.s {
                    Some(s) if s.is_empty() || s.len() > MAX_SCTP_INIT => {
                        return Err(DmSignalError::Malformed("s"));
                    }
                    s => s.map(<[u8]>::to_vec),
                };
                DmSignalBody::Params(SessionParameters {
                    ufrag: text(fields.u, "u")?,
                    pwd: text(fields.p, "p")?,
                    fingerprint: fixed(fields.f.ok_or(DmSignalError::Malformed("f"))?, "f")?,
                    candidates,
                    sctp_init,
                })
            }
            Some(2) => DmSignalBody::Bye,
            Some(3) => DmSignalBody::Hello {
                challenge: Challenge(fixed(fields.x.ok_or(DmSignalError::Malformed("x"))?, "x")?),
            },
            _ => return Err(DmSignalError::Malformed("k")),
        };
        let signal = DmSignal {
            node_id,
            from,
            to,
            seq,
            echo,
            nat,
            body,
        };
        // Authenticate the canonical re-encoding of the fields read (unknown keys were
        // refused above), `t` as received: any altered field or non-canonical spelling
        // fails the MAC.
        let expected = mac(key, &signal.args(None, fields.t));
        if !constant_time_eq(&expected, h) {
            return Err(DmSignalError::BadMac);
        }
        if to.is_some_and(|t| t != me) {
            return Err(DmSignalError::NotForUs);
        }
        Ok(signal)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fixed<const N: usize>(bytes: &[u8], key: &'static str) -> Result<[u8; N], DmSignalError> {
    <[u8; N]>::try_from(bytes).map_err(|_| DmSignalError::Malformed(key))
}

fn split_compact(bytes: &[u8], size: usize) -> Result<Vec<SocketAddr>, DmSignalError> {
    if bytes.len() % size != 0 || bytes.len() / size > MAX_CANDIDATES {
        return Err(DmSignalError::Malformed("candidates"));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| {
            let (ip, port) = c.split_at(size - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(ip);
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            };
            SocketAddr::new(ip, port)
        })
        .collect())
}

#[derive(Default)]
struct Fields<'a> {
    c: Option<&'a [u8]>,
    c6: Option<&'a [u8]>,
    e: Option<&'a [u8]>,
    f: Option<&'a [u8]>,
    h: Option<&'a [u8]>,
    id: Option<&'a [u8]>,
    k: Option<i64>,
    m: Option<&'a [u8]>,
    n: Option<i64>,
    p: Option<&'a [u8]>,
    r: Option<&'a [u8]>,
    r6: Option<&'a [u8]>,
    s: Option<&'a [u8]>,
    t: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    u: Option<&'a [u8]>,
    x: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn read(args: &'a [u8]) -> Result<Fields<'a>, DmSignalError> {
        const BENCODE: DmSignalError = DmSignalError::Malformed("bencode");
        let mut decoder = Decoder::new(args).with_max_depth(4);
        let mut fields = Fields::default();
        {
            let Ok(Some(Object::Dict(mut dict))) = decoder.next_object() else {
                return Err(BENCODE);
            };
            while let Some((key, value)) = dict.next_pair().map_err(|_| BENCODE)? {
                let bytes = |v: Object<'_, 'a>| match v {
                    Object::Bytes(b) => Ok(b),
                    _ => Err(DmSignalError::Malformed("type")),
                };
                let int = |v: Object<'_, 'a>| match v {
                    Object::Integer(text) => text
                        .parse::<i64>()
                        .map_err(|_| DmSignalError::Malformed("integer")),
                    _ => Err(DmSignalError::Malformed("type")),
                };
                match key {
                    b"c" => fields.c = Some(bytes(value)?),
                    b"c6" => fields.c6 = Some(bytes(value)?),
                    b"e" => fields.e = Some(bytes(value)?),
                    b"f" => fields.f = Some(bytes(value)?),
                    b"h" => fields.h = Some(bytes(value)?),
                    b"id" => fields.id = Some(bytes(value)?),
                    b"k" => fields.k = Some(int(value)?),
                    b"m" => fields.m = Some(bytes(value)?),
                    b"n" => fields.n = Some(int(value)?),
                    b"p" => fields.p = Some(bytes(value)?),
                    b"r" => fields.r = Some(bytes(value)?),
                    b"r6" => fields.r6 = Some(bytes(value)?),
                    b"s" => fields.s = Some(bytes(value)?),
                    b"t" => fields.t = Some(bytes(value)?),
                    b"to" => fields.to = Some(bytes(value)?),
                    b"u" => fields.u = Some(bytes(value)?),
                    b"x" => fields.x = Some(bytes(value)?),
                    // Strict on purpose: the MAC covers the fields we understand, so an
                    // unknown key would ride along unauthenticated. A new version of the
                    // format takes a new method name instead.
                    _ => return Err(DmSignalError::Malformed("unknown key")),
                }
            }
        }
        match decoder.next_object() {
            Ok(None) => Ok(fields),
            _ => Err(BENCODE),
        }
    }
}

/// Sequence numbers accepted below the highest seen, per member (a sliding window).
pub const REPLAY_WINDOW: u64 = 64;
/// Members tracked at most; the least recently heard is forgotten first.
pub const MAX_TRACKED_MEMBERS: usize = 256;

/// Anti-replay state: per sender member id, the highest sequence number seen and a
/// bitmap of the [`REPLAY_WINDOW`] below it (as IPsec does).
#[derive(Debug, Default)]
pub struct ReplayGuard {
    members: BTreeMap<MemberId, (u64, u64, Instant)>,
}

impl ReplayGuard {
    /// No member heard yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `seq` from `member` once; refuses repeats and anything older than the
    /// window. Call only for authenticated messages (or a forger could fill the table).
    pub fn check(&mut self, member: MemberId, seq: u64, now: Instant) -> Result<(), DmSignalError> {
        if !self.members.contains_key(&member) && self.members.len() >= MAX_TRACKED_MEMBERS {
            if let Some(oldest) = self
                .members
                .iter()
                .min_by_key(|(_, v)| v.2)
                .map(|(k, _)| *k)
            {
                self.members.remove(&oldest);
            }
        }
        let entry = self.members.entry(member).or_insert((0, 0, now));
        let (highest, window, heard) = entry;
        *heard = now;
        if *window == 0 && *highest == 0 {
            // First message from this member.
            *highest = seq;
            *window = 1;
            return Ok(());
        }
        if seq > *highest {
            let shift = seq - *highest;
            *window = if shift >= REPLAY_WINDOW {
                1
            } else {
                (*window << shift) | 1
            };
            *highest = seq;
            return Ok(());
        }
        let age = *highest - seq;
        if age >= REPLAY_WINDOW || *window & (1 << age) != 0 {
            return Err(DmSignalError::Replayed);
        }
        *window |= 1 << age;
        Ok(())
    }
}

#[cfg(test)]
#[path = "signal_tests.rs"]
mod tests;
