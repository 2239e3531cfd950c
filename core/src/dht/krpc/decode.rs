//! Decoding KRPC messages from bencode, on `bendy`'s streaming decoder.
//!
//! One pass over the datagram with [`bendy::decoding::Decoder`]: no intermediate tree, and
//! the only allocations are the ones the [`Message`] itself owns (plus the decoder's own
//! nesting stack).
//!
//! # What is accepted
//!
//! - **Structure.** The whole datagram must be exactly one bencoded dictionary, as strict
//!   as `bendy` checks it: integers and string lengths without leading zeros or `-0`,
//!   dictionary keys unique and in sorted byte order (BEP 3 requires it and every client we
//!   know of sorts), nesting at most [`MAX_DEPTH`] deep. Trailing bytes, truncation, a
//!   top level that is not a dictionary: [`KrpcDecodeErrorKind::Bencode`] or
//!   [`KrpcDecodeErrorKind::NotADict`]. The structure is checked to the end even when a
//!   field is already known to be wrong, so a field error is only ever reported for
//!   well-formed bencode.
//! - **Unknown keys** are ignored at every level, whatever their type or size. Known keys
//!   that do not apply to the message at hand are treated as unknown and not checked
//!   (`target` in a `ping`, `a` in a response, `want` in an `announce_peer`, …): a
//!   peer's stray key never costs us its message.
//! - **Keys that apply are checked**: wrong bencode type is
//!   [`KrpcDecodeErrorKind::WrongType`], a byte string whose length is meaningful and wrong
//!   is [`KrpcDecodeErrorKind::BadLength`] (ids of 20 bytes, compact infos, `ip`), an
//!   integer beyond `i64` or outside its key's range is [`KrpcDecodeErrorKind::OutOfRange`]
//!   (never a panic).
//! - `t`: any length 1..=[`MAX_TRANSACTION_ID`]; longer or empty is rejected, since a
//!   truncated id could not be echoed back.
//! - `y`: `q`, `r` or `e`, else [`KrpcDecodeErrorKind::UnknownMessageType`].
//! - `v`: truncated to [`MAX_VERSION`] bytes (it is only informational).
//! - `ro` (BEP 43): read-only when the integer is 1; any other integer means not.
//! - `ip` (BEP 42): compact, 6 or 18 bytes.
//! - Queries: `q` and the `a` dictionary with a 20-byte `id` are required. `find_node`
//!   needs `target`, `get_peers` needs `info_hash`, both read BEP 32 `want` (a list:
//!   `n4` and `n6` are kept, other entries of any type ignored). `announce_peer` needs
//!   `info_hash`, `token` and `port` (0..=65535); with `implied_port` nonzero, `port` may
//!   be absent or invalid and then reads as 0. Any other method becomes
//!   [`Query::Other`] with the raw `a` dictionary; a method name longer than
//!   [`MAX_METHOD`] is rejected (truncated, it could name a different method).
//! - Responses: `r` with a 20-byte `id`; `nodes` must be a multiple of 26 bytes and
//!   `nodes6` of 38 (BEP 32), each truncated to [`MAX_NODES`] nodes (the first ones are
//!   as good as the rest); `values` is a list of 6-byte (IPv4) or 18-byte (IPv6) compact
//!   peers, truncated to [`MAX_VALUES`] (any other entry is an error).
//! - `token` (in `announce_peer` and responses): at most [`MAX_TOKEN`] bytes, rejected
//!   beyond: a truncated token is a wrong token.
//! - Errors: `e` is a list whose first element is the integer code and whose second, if
//!   present, the message (lossily UTF-8, truncated at a character boundary to
//!   [`MAX_ERROR_MESSAGE`] bytes); further elements are ignored.
//!
//! On failure, [`KrpcDecodeError`] carries the transaction id and whether `y` was `q` as far
//! as they were read, so the node can answer a malformed query with error 203.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bendy::decoding::{Decoder, DictDecoder, Object};

use super::{
    Body, CompactNode, MAX_ERROR_MESSAGE, MAX_METHOD, MAX_NODES, MAX_TOKEN, MAX_TRANSACTION_ID,
    MAX_VALUES, MAX_VERSION, Message, Query, Response, Want,
};
use crate::dht::id::{InfoHash, NodeId};

/// Deepest nesting of lists and dictionaries accepted, the top-level dictionary counting
/// as 1. KRPC itself needs 3 (`a` → `want`); the slack is for extensions' arguments and
/// unknown keys, the bound for the decoder's stack.
pub(super) const MAX_DEPTH: usize = 16;

/// What was wrong with a datagram that claimed to be KRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KrpcDecodeErrorKind {
    /// Not valid bencode, trailing bytes, or nesting too deep.
    #[error("malformed bencode")]
    Bencode,
    /// The top level is not a dictionary.
    #[error("not a dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing key {0}")]
    MissingKey(&'static str),
    /// A key has the wrong bencode type.
    #[error("wrong type for key {0}")]
    WrongType(&'static str),
    /// A byte string has an invalid length (ids, compact infos, tokens, ports).
    #[error("invalid length for key {0}")]
    BadLength(&'static str),
    /// An integer is out of range (ports, error codes).
    #[error("integer out of range for key {0}")]
    OutOfRange(&'static str),
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown message type")]
    UnknownMessageType,
}

/// A KRPC decoding failure, with what could be learned before it (so that a malformed
/// query can still be answered with error 203 under its transaction id).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct KrpcDecodeError {
    /// What was wrong.
    pub kind: KrpcDecodeErrorKind,
    /// The transaction id, if it was found and valid.
    pub transaction_id: Option<Vec<u8>>,
    /// Whether the message was a query (`y` = `q`).
    pub is_query: bool,
}

/// The bencode structure itself is broken: nothing more can be read.
struct Malformed;

impl From<bendy::decoding::Error> for Malformed {
    fn from(_: bendy::decoding::Error) -> Malformed {
        Malformed
    }
}

/// A key as read: absent, valid, or present but invalid (and why). Whether an invalid
/// key matters is decided only once the message type is known.
type Field<T> = Result<Option<T>, KrpcDecodeErrorKind>;

/// Everything read from the top-level dictionary.
struct TopLevel<'a> {
    transaction_id: Field<&'a [u8]>,
    kind: Field<&'a [u8]>,
    method: Field<&'a [u8]>,
    /// Whether `a` was a dictionary; its contents are read into `a` in place (it is
    /// large, and moving it around showed in the benchmarks).
    args: Field<()>,
    a: Args<'a>,
    /// Whether `r` was a dictionary; its contents go to `r`.
    response: Field<()>,
    r: ResponseDict,
    error: Field<(i64, String)>,
    version: Field<&'a [u8]>,
    read_only: Field<bool>,
    ip: Field<SocketAddr>,
}

/// The `a` dictionary, every known argument read; which ones matter depends on `q`.
struct Args<'a> {
    id: Field<NodeId>,
    target: Field<NodeId>,
    info_hash: Field<InfoHash>,
    port: Field<u16>,
    implied_port: Field<bool>,
    token: Field<&'a [u8]>,
    want: Field<Want>,
    /// The whole bencoded dictionary, for [`Query::Other`].
    raw: &'a [u8],
}

/// The `r` dictionary.
struct ResponseDict {
    id: Field<NodeId>,
    nodes: Field<Vec<CompactNode>>,
    nodes6: Field<Vec<CompactNode>>,
    values: Field<Vec<SocketAddr>>,
    token: Field<Vec<u8>>,
}

// `Result` has no `Default`: every key starts absent.
impl Default for TopLevel<'_> {
    fn default() -> Self {
        TopLevel {
            transaction_id: Ok(None),
            kind: Ok(None),
            method: Ok(None),
            args: Ok(None),
            a: Args::default(),
            response: Ok(None),
            r: ResponseDict::default(),
            error: Ok(None),
            version: Ok(None),
            read_only: Ok(None),
            ip: Ok(None),
        }
    }
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args {
            id: Ok(None),
            target: Ok(None),
            info_hash: Ok(None),
            port: Ok(None),
            implied_port: Ok(None),
            token: Ok(None),
            want: Ok(None),
            raw: &[],
        }
    }
}

impl Default for ResponseDict {
    fn default() -> Self {
        ResponseDict {
            id: Ok(None),
            nodes: Ok(None),
            nodes6: Ok(None),
            values: Ok(None),
            token: Ok(None),
        }
    }
}

impl Message {
    /// Decodes one KRPC message that fills the whole datagram. The rules, and where
    /// over-long data is truncated or rejected, are in this module's documentation.
    pub fn decode(bytes: &[u8]) -> Result<Message, KrpcDecodeError> {
        let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
        let mut top = TopLevel::default();
        let structure = read_top_level(&mut decoder, &mut top);
        // The datagram must hold exactly one object: `Ok(None)` means end of input.
        let structure = structure.and_then(|()| match decoder.next_object() {
            Ok(None) => Ok(()),
            _ => Err(KrpcDecodeErrorKind::Bencode),
        });

        let transaction_id = top.transaction_id.ok().flatten();
        let is_query = matches!(top.kind, Ok(Some(b"q")));
        let fail = |kind| KrpcDecodeError {
            kind,
            transaction_id: transaction_id.map(<[u8]>::to_vec),
            is_query,
        };
        structure.map_err(fail)?;
        assemble(top).map_err(fail)
    }
}

/// Reads the top-level dictionary into `top`. Errors here are structural (or the top
/// level is no dictionary); field errors are left in `top`.
fn read_top_level<'a>(
    decoder: &mut Decoder<'a>,
    top: &mut TopLevel<'a>,
) -> Result<(), KrpcDecodeErrorKind> {
    match decoder.next_object() {
        Ok(Some(Object::Dict(mut dict))) => {
            read_top_level_pairs(&mut dict, top).map_err(|Malformed| KrpcDecodeErrorKind::Bencode)
        }
        Ok(Some(_)) => Err(KrpcDecodeErrorKind::NotADict),
        Ok(None) | Err(_) => Err(KrpcDecodeErrorKind::Bencode),
    }
}

fn read_top_level_pairs<'a>(
    dict: &mut DictDecoder<'_, 'a>,
    top: &mut TopLevel<'a>,
) -> Result<(), Malformed> {
    while let Some((key, value)) = dict.next_pair()? {
        match key {
            b"t" => top.transaction_id = transaction_id(value),
            b"y" => top.kind = byte_string(value, "y"),
            b"q" => top.method = byte_string(value, "q"),
            b"a" => top.args = read_args(value, &mut top.a)?,
            b"r" => top.response = read_response(value, &mut top.r)?,
            b"e" => top.error = read_error(value)?,
            b"v" => top.version = byte_string(value, "v"),
            b"ro" => top.read_only = integer(value, "ro").map(|ro| ro.map(|ro| ro == 1)),
            b"ip" => {
                top.ip = byte_string(value, "ip").and_then(|ip| ip.map(compact_addr).transpose());
            }
            // Unknown: dropping the value makes bendy skip (and still check) it.
            _ => {}
        }
    }
    Ok(())
}

/// Builds the message from what was read, checking the keys that apply to it.
fn assemble(top: TopLevel<'_>) -> Result<Message, KrpcDecodeErrorKind> {
    let transaction_id = required(top.transaction_id, "t")?.to_vec();
    let kind = required(top.kind, "y")?;
    let version = top
        .version?
        .map(|v| v.get(..MAX_VERSION).unwrap_or(v).to_vec());
    let read_only = top.read_only?.unwrap_or(false);
    let ip = top.ip?;
    let body = match kind {
        b"q" => {
            let method = required(top.method, "q")?;
            required(top.args, "a")?;
            let args = top.a;
            let id = required(args.id, "id")?;
            Body::Query {
                id,
                query: query(method, args)?,
            }
        }
        b"r" => {
            required(top.response, "r")?;
            let r = top.r;
            Body::Response {
                id: required(r.id, "id")?,
                response: Response {
                    nodes: r.nodes?.unwrap_or_default(),
                    nodes6: r.nodes6?.unwrap_or_default(),
                    values: r.values?.unwrap_or_default(),
                    token: r.token?,
                },
            }
        }
        b"e" => {
            let (code, message) = required(top.error, "e")?;
            Body::Error { code, message }
        }
        _ => return Err(KrpcDecodeErrorKind::UnknownMessageType),
    };
    Ok(Message {
        transaction_id,
        version,
        read_only,
        ip,
        body,
    })
}

/// The query named `method`, from the arguments that apply to it.
fn query(method: &[u8], args: Args<'_>) -> Result<Query, KrpcDecodeErrorKind> {
    Ok(match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: required(args.target, "target")?,
            want: args.want?.unwrap_or_default(),
        },
        b"get_peers" => Query::GetPeers {
            info_hash: required(args.info_hash, "info_hash")?,
            want: args.want?.unwrap_or_default(),
        },
        b"announce_peer" => {
            let info_hash = required(args.info_hash, "info_hash")?;
            let implied_port = args.implied_port?.unwrap_or(false);
            // With `implied_port` the source port counts, so `port` is only informational:
            // BEP 5 lets clients that cannot know their port send anything there.
            let port = if implied_port {
                args.port.ok().flatten().unwrap_or(0)
            } else {
                required(args.port, "port")?
            };
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token: required(args.token, "token")?.to_vec(),
            }
        }
        _ if method.len() > MAX_METHOD => return Err(KrpcDecodeErrorKind::BadLength("q")),
        _ => Query::Other {
            method: method.to_vec(),
            args: args.raw.to_vec(),
        },
    })
}

/// The value of a required key, or why it is missing or invalid.
fn required<T>(field: Field<T>, key: &'static str) -> Result<T, KrpcDecodeErrorKind> {
    field?.ok_or(KrpcDecodeErrorKind::MissingKey(key))
}

fn byte_string<'a>(value: Object<'_, 'a>, key: &'static str) -> Field<&'a [u8]> {
    match value {
        Object::Bytes(bytes) => Ok(Some(bytes)),
        _ => Err(KrpcDecodeErrorKind::WrongType(key)),
    }
}

/// An integer; bendy hands over its canonical decimal text, which may exceed `i64`.
fn integer(value: Object<'_, '_>, key: &'static str) -> Field<i64> {
    match value {
        Object::Integer(text) => text
            .parse()
            .map(Some)
            .map_err(|_| KrpcDecodeErrorKind::OutOfRange(key)),
        _ => Err(KrpcDecodeErrorKind::WrongType(key)),
    }
}

fn transaction_id<'a>(value: Object<'_, 'a>) -> Field<&'a [u8]> {
    let t = byte_string(value, "t")?;
    match t {
        Some(t) if t.is_empty() || t.len() > MAX_TRANSACTION_ID => {
            Err(KrpcDecodeErrorKind::BadLength("t"))
        }
        t => Ok(t),
    }
}

fn id20(value: Object<'_, '_>, key: &'static str) -> Field<[u8; 20]> {
    let bytes = byte_string(value, key)?.unwrap_or_default();
    match <[u8; 20]>::try_from(bytes) {
        Ok(id) => Ok(Some(id)),
        Err(_) => Err(KrpcDecodeErrorKind::BadLength(key)),
    }
}

fn token<'a>(value: Object<'_, 'a>) -> Field<&'a [u8]> {
    match byte_string(value, "token")? {
        Some(token) if token.len() > MAX_TOKEN => Err(KrpcDecodeErrorKind::BadLength("token")),
        token => Ok(token),
    }
}

fn read_args<'a>(value: Object<'_, 'a>, args: &mut Args<'a>) -> Result<Field<()>, Malformed> {
    let Object::Dict(mut dict) = value else {
        return Ok(Err(KrpcDecodeErrorKind::WrongType("a")));
    };
    while let Some((key, value)) = dict.next_pair()? {
        match key {
            b"id" => args.id = id20(value, "id").map(|id| id.map(NodeId)),
            b"target" => args.target = id20(value, "target").map(|id| id.map(NodeId)),
            b"info_hash" => {
                args.info_hash = id20(value, "info_hash").map(|id| id.map(InfoHash));
            }
            b"port" => args.port = port(value),
            b"implied_port" => {
                args.implied_port =
                    integer(value, "implied_port").map(|implied| implied.map(|i| i != 0));
            }
            b"token" => args.token = token(value),
            b"want" => args.want = read_want(value)?,
            _ => {}
        }
    }
    // Every pair has been read, so this only slices the source.
    args.raw = dict.into_raw()?;
    Ok(Ok(Some(())))
}

fn port(value: Object<'_, '_>) -> Field<u16> {
    match integer(value, "port")? {
        Some(port) => u16::try_from(port)
            .map(Some)
            .map_err(|_| KrpcDecodeErrorKind::OutOfRange("port")),
        None => Ok(None),
    }
}

/// BEP 32 `want`: entries other than `n4` and `n6`, of any type, are ignored.
fn read_want(value: Object<'_, '_>) -> Result<Field<Want>, Malformed> {
    let Object::List(mut list) = value else {
        return Ok(Err(KrpcDecodeErrorKind::WrongType("want")));
    };
    let mut want = Want::default();
    while let Some(item) = list.next_object()? {
        match item {
            Object::Bytes(b"n4") => want.v4 = true,
            Object::Bytes(b"n6") => want.v6 = true,
            _ => {}
        }
    }
    Ok(Ok(Some(want)))
}

fn read_response(value: Object<'_, '_>, r: &mut ResponseDict) -> Result<Field<()>, Malformed> {
    let Object::Dict(mut dict) = value else {
        return Ok(Err(KrpcDecodeErrorKind::WrongType("r")));
    };
    while let Some((key, value)) = dict.next_pair()? {
        match key {
            b"id" => r.id = id20(value, "id").map(|id| id.map(NodeId)),
            b"nodes" => r.nodes = compact_nodes(value, "nodes", 26, compact_v4),
            b"nodes6" => r.nodes6 = compact_nodes(value, "nodes6", 38, compact_v6),
            b"values" => r.values = read_values(value)?,
            b"token" => r.token = token(value).map(|t| t.map(<[u8]>::to_vec)),
            _ => {}
        }
    }
    Ok(Ok(Some(())))
}

/// A `nodes` or `nodes6` string: `size`-byte compact node infos, the first
/// [`MAX_NODES`] kept.
fn compact_nodes(
    value: Object<'_, '_>,
    key: &'static str,
    size: usize,
    addr: fn(&[u8]) -> Option<SocketAddr>,
) -> Field<Vec<CompactNode>> {
    let bytes = byte_string(value, key)?.unwrap_or_default();
    if bytes.len() % size != 0 {
        return Err(KrpcDecodeErrorKind::BadLength(key));
    }
    let mut nodes = Vec::with_capacity((bytes.len() / size).min(MAX_NODES));
    for chunk in bytes.chunks_exact(size).take(MAX_NODES) {
        // `chunks_exact` gives `size` = 20 + the address's length: both always succeed.
        let Some((id, rest)) = chunk.split_first_chunk::<20>() else {
            return Err(KrpcDecodeErrorKind::BadLength(key));
        };
        let Some(addr) = addr(rest) else {
            return Err(KrpcDecodeErrorKind::BadLength(key));
        };
        nodes.push(CompactNode {
            id: NodeId(*id),
            addr,
        });
    }
    Ok(Some(nodes))
}

/// `values`: compact peer infos, the first [`MAX_VALUES`] kept; the rest is still
/// checked, so that a list's validity does not depend on where the bound falls.
fn read_values(value: Object<'_, '_>) -> Result<Field<Vec<SocketAddr>>, Malformed> {
    let Object::List(mut list) = value else {
        return Ok(Err(KrpcDecodeErrorKind::WrongType("values")));
    };
    let mut values = Vec::new();
    let mut verdict = Ok(());
    while let Some(item) = list.next_object()? {
        let peer = match item {
            Object::Bytes(bytes) => {
                compact_addr(bytes).map_err(|_| KrpcDecodeErrorKind::BadLength("values"))
            }
            _ => Err(KrpcDecodeErrorKind::WrongType("values")),
        };
        match peer {
            Ok(peer) if values.len() < MAX_VALUES => values.push(peer),
            Ok(_) => {}
            Err(kind) => {
                verdict = Err(kind);
                break;
            }
        }
    }
    // Dropping `list` after a `break` skips (and checks) its remaining items.
    Ok(verdict.map(|()| Some(values)))
}

fn read_error(value: Object<'_, '_>) -> Result<Field<(i64, String)>, Malformed> {
    let Object::List(mut list) = value else {
        return Ok(Err(KrpcDecodeErrorKind::WrongType("e")));
    };
    let code = match list.next_object()? {
        Some(code) => match integer(code, "e") {
            Ok(Some(code)) => code,
            Ok(None) => return Ok(Err(KrpcDecodeErrorKind::WrongType("e"))),
            Err(kind) => return Ok(Err(kind)),
        },
        None => return Ok(Err(KrpcDecodeErrorKind::BadLength("e"))),
    };
    let message = match list.next_object()? {
        Some(Object::Bytes(message)) => error_message(message),
        Some(_) => return Ok(Err(KrpcDecodeErrorKind::WrongType("e"))),
        None => String::new(),
    };
    Ok(Ok(Some((code, message))))
}

/// Lossy UTF-8, at most [`MAX_ERROR_MESSAGE`] bytes, cut at a character boundary (a
/// replacement character can make the lossy text longer than its bytes).
fn error_message(bytes: &[u8]) -> String {
    let prefix = bytes.get(..MAX_ERROR_MESSAGE).unwrap_or(bytes);
    let mut message = String::from_utf8_lossy(prefix).into_owned();
    let mut end = message.len().min(MAX_ERROR_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message
}

/// Compact peer info: 6 bytes (IPv4) or 18 bytes (IPv6), port big-endian.
fn compact_addr(bytes: &[u8]) -> Result<SocketAddr, KrpcDecodeErrorKind> {
    match bytes.len() {
        6 => compact_v4(bytes),
        18 => compact_v6(bytes),
        _ => None,
    }
    .ok_or(KrpcDecodeErrorKind::BadLength("ip"))
}

fn compact_v4(bytes: &[u8]) -> Option<SocketAddr> {
    let bytes: &[u8; 6] = bytes.try_into().ok()?;
    let [a, b, c, d, p0, p1] = *bytes;
    Some(SocketAddr::from((
        Ipv4Addr::new(a, b, c, d),
        u16::from_be_bytes([p0, p1]),
    )))
}

fn compact_v6(bytes: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = bytes.split_first_chunk::<16>()?;
    let port: &[u8; 2] = port.try_into().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from(*ip),
        u16::from_be_bytes(*port),
        0,
        0,
    )))
}
