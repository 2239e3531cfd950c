//! Properties of the KRPC codec: round trips within the bounds, no panics on any input
//! or mutation, and agreement with bendy's generic object tree on what is well-formed.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bendy::decoding::{Decoder, Object};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use super::super::decode::MAX_DEPTH;
use super::super::*;

/// A bencode value for generating inputs; `unsorted` dictionaries are written in
/// reverse key order, which is not canonical bencode.
#[derive(Clone, Debug)]
enum Bencode {
    Integer(String),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>, bool),
}

/// Keys that steer generated dictionaries into KRPC's paths.
const KEYS: &[&[u8]] = &[
    b"a",
    b"e",
    b"id",
    b"implied_port",
    b"info_hash",
    b"ip",
    b"nodes",
    b"nodes6",
    b"port",
    b"q",
    b"r",
    b"ro",
    b"t",
    b"target",
    b"token",
    b"v",
    b"values",
    b"want",
    b"y",
    b"zz",
];

impl Bencode {
    fn arbitrary_at(g: &mut Gen, depth: usize) -> Bencode {
        let leaf = depth >= 4 || bool::arbitrary(g);
        match (leaf, u8::arbitrary(g) % 4) {
            (true, 0) => Bencode::Integer(match u8::arbitrary(g) % 4 {
                0 => "99999999999999999999999".into(),
                _ => i64::arbitrary(g).to_string(),
            }),
            (true, _) => Bencode::Bytes(match u8::arbitrary(g) % 4 {
                0 => (*g
                    .choose(&[&b"q"[..], b"r", b"e", b"ping", b"n4", b"n6"])
                    .unwrap())
                .to_vec(),
                1 => vec![u8::arbitrary(g); *g.choose(&[6usize, 18, 20, 26, 38]).unwrap()],
                _ => Vec::arbitrary(g),
            }),
            (false, 0) => Bencode::List(
                (0..usize::arbitrary(g) % 4)
                    .map(|_| Bencode::arbitrary_at(g, depth + 1))
                    .collect(),
            ),
            (false, _) => Bencode::dict_at(g, depth),
        }
    }

    fn dict_at(g: &mut Gen, depth: usize) -> Bencode {
        let entries = (0..usize::arbitrary(g) % 6)
            .map(|_| {
                let key = (*g.choose(KEYS).unwrap()).to_vec();
                (key, Bencode::arbitrary_at(g, depth + 1))
            })
            .collect();
        Bencode::Dict(entries, u8::arbitrary(g) % 16 == 0)
    }

    /// The same value with every dictionary in canonical (sorted) order.
    fn canonical(self) -> Bencode {
        match self {
            Bencode::List(items) => {
                Bencode::List(items.into_iter().map(Bencode::canonical).collect())
            }
            Bencode::Dict(entries, _) => Bencode::Dict(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.canonical()))
                    .collect(),
                false,
            ),
            leaf => leaf,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Integer(digits) => out.extend_from_slice(format!("i{digits}e").as_bytes()),
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::List(items) => {
                out.push(b'l');
                items.iter().for_each(|item| item.write(out));
                out.push(b'e');
            }
            Bencode::Dict(entries, unsorted) => {
                out.push(b'd');
                let mut entries: Vec<_> = entries.iter().collect();
                if *unsorted {
                    entries.reverse();
                }
                for (key, value) in entries {
                    Bencode::Bytes(key.clone()).write(out);
                    value.write(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Bencode-like bytes: a generated value (usually a dictionary), sometimes nested deeper
/// than the bound, sometimes with a byte changed, cut off or appended.
#[derive(Clone, Debug)]
struct BencodeInput(Vec<u8>);

impl Arbitrary for BencodeInput {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut value = match u8::arbitrary(g) % 8 {
            0 => Bencode::arbitrary_at(g, 0),
            _ => Bencode::dict_at(g, 0),
        };
        if u8::arbitrary(g) % 8 == 0 {
            for _ in 0..usize::arbitrary(g) % (MAX_DEPTH + 4) {
                value = Bencode::List(vec![value]);
            }
            value = Bencode::Dict(BTreeMap::from([(b"x".to_vec(), value)]), false);
        }
        let mut bytes = Vec::new();
        value.write(&mut bytes);
        match u8::arbitrary(g) % 4 {
            0 if !bytes.is_empty() => {
                let at = usize::arbitrary(g) % bytes.len();
                bytes[at] = u8::arbitrary(g);
            }
            1 => bytes.truncate(usize::arbitrary(g) % (bytes.len() + 1)),
            2 => bytes.push(*g.choose(b"deil0:x").unwrap()),
            _ => {}
        }
        BencodeInput(bytes)
    }
}

fn bytes_up_to(g: &mut Gen, min: usize, max: usize) -> Vec<u8> {
    let len = min + usize::arbitrary(g) % (max - min + 1);
    (0..len).map(|_| u8::arbitrary(g)).collect()
}

fn id20(g: &mut Gen) -> [u8; 20] {
    std::array::from_fn(|_| u8::arbitrary(g))
}

fn addr(g: &mut Gen, ipv4: bool) -> SocketAddr {
    if ipv4 {
        SocketAddr::from((Ipv4Addr::from(u32::arbitrary(g)), u16::arbitrary(g)))
    } else {
        SocketAddr::from((Ipv6Addr::from(u128::arbitrary(g)), u16::arbitrary(g)))
    }
}

/// A count, often small, sometimes exactly `max`.
fn count(g: &mut Gen, max: usize) -> usize {
    match u8::arbitrary(g) % 8 {
        0 => max,
        _ => usize::arbitrary(g) % 10,
    }
}

fn want(g: &mut Gen) -> Want {
    Want {
        v4: bool::arbitrary(g),
        v6: bool::arbitrary(g),
    }
}

impl Arbitrary for Message {
    fn arbitrary(g: &mut Gen) -> Self {
        let id = NodeId(id20(g));
        let query = |query| Body::Query { id, query };
        let body = match u8::arbitrary(g) % 7 {
            0 => query(Query::Ping),
            1 => query(Query::FindNode {
                target: NodeId(id20(g)),
                want: want(g),
            }),
            2 => query(Query::GetPeers {
                info_hash: InfoHash(id20(g)),
                want: want(g),
            }),
            3 => query(Query::AnnouncePeer {
                info_hash: InfoHash(id20(g)),
                port: u16::arbitrary(g),
                implied_port: bool::arbitrary(g),
                token: bytes_up_to(g, 0, MAX_TOKEN),
            }),
            4 => {
                let mut method = bytes_up_to(g, 0, MAX_METHOD);
                if [&b"ping"[..], b"find_node", b"get_peers", b"announce_peer"]
                    .contains(&&method[..])
                {
                    method.push(b'x');
                }
                let Bencode::Dict(mut args, _) = Bencode::dict_at(g, 1) else {
                    unreachable!("dict_at makes dictionaries")
                };
                args.insert(b"id".to_vec(), Bencode::Bytes(id.0.to_vec()));
                let mut raw = Vec::new();
                Bencode::Dict(args, false).canonical().write(&mut raw);
                query(Query::Other { method, args: raw })
            }
            5 => Body::Response {
                id,
                response: Response {
                    nodes: (0..count(g, MAX_NODES))
                        .map(|_| CompactNode {
                            id: NodeId(id20(g)),
                            addr: addr(g, true),
                        })
                        .collect(),
                    nodes6: (0..count(g, MAX_NODES))
                        .map(|_| CompactNode {
                            id: NodeId(id20(g)),
                            addr: addr(g, false),
                        })
                        .collect(),
                    values: (0..count(g, MAX_VALUES))
                        .map(|_| {
                            let ipv4 = bool::arbitrary(g);
                            addr(g, ipv4)
                        })
                        .collect(),
                    token: Option::<()>::arbitrary(g).map(|()| bytes_up_to(g, 0, MAX_TOKEN)),
                },
            },
            _ => {
                let mut message = String::arbitrary(g);
                let mut end = message.len().min(MAX_ERROR_MESSAGE);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                Body::Error {
                    code: i64::arbitrary(g),
                    message,
                }
            }
        };
        Message {
            transaction_id: bytes_up_to(g, 1, MAX_TRANSACTION_ID),
            version: Option::<()>::arbitrary(g).map(|()| bytes_up_to(g, 0, MAX_VERSION)),
            read_only: bool::arbitrary(g),
            ip: Option::<bool>::arbitrary(g).map(|ipv4| addr(g, ipv4)),
            body,
        }
    }
}

/// Whether bendy's generic object tree, walked to the end, sees exactly one well-formed
/// dictionary within [`MAX_DEPTH`].
fn bendy_sees_one_dict(bytes: &[u8]) -> bool {
    fn walk(object: Object<'_, '_>) -> Result<(), bendy::decoding::Error> {
        match object {
            Object::Dict(mut dict) => {
                while let Some((_, value)) = dict.next_pair()? {
                    walk(value)?;
                }
            }
            Object::List(mut list) => {
                while let Some(item) = list.next_object()? {
                    walk(item)?;
                }
            }
            Object::Integer(_) | Object::Bytes(_) => {}
        }
        Ok(())
    }
    let mut decoder = Decoder::new(bytes).with_max_depth(MAX_DEPTH);
    let dict_ok = match decoder.next_object() {
        Ok(Some(dict @ Object::Dict(_))) => walk(dict).is_ok(),
        _ => false,
    };
    dict_ok && matches!(decoder.next_object(), Ok(None))
}

/// quickcheck 1.1 prints a failing input only when shrinking reproduces the failure,
/// and our generators do not shrink: so each property prints its own failing input.
fn holds(ok: bool, input: &dyn std::fmt::Debug, bytes: &[u8]) -> bool {
    if !ok {
        eprintln!(
            "failing input: {input:?}\nbytes: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    ok
}

#[test]
fn encode_then_decode_is_identity_within_bounds() {
    fn prop(msg: Message) -> bool {
        let bytes = msg.encode();
        let mut appended = b"prefix".to_vec();
        msg.encode_into(&mut appended);
        let decoded = Message::decode(&bytes);
        let ok = decoded.as_ref() == Ok(&msg) && appended.get(6..) == Some(&bytes[..]);
        holds(ok, &(&msg, decoded), &bytes)
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Message) -> bool);
}

#[test]
fn arbitrary_bytes_never_panic() {
    fn prop(bytes: Vec<u8>, as_dict: bool) -> bool {
        let bytes = if as_dict {
            [b"d", &bytes[..]].concat()
        } else {
            bytes
        };
        let _ = Message::decode(&bytes);
        true
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(Vec<u8>, bool) -> bool);
}

#[test]
fn mutated_valid_messages_never_panic_and_whatever_decodes_round_trips() {
    fn prop(msg: Message, at: usize, byte: u8) -> TestResult {
        let mut bytes = msg.encode();
        let len = bytes.len();
        bytes[at % len] = byte;
        match Message::decode(&bytes) {
            Ok(decoded) => {
                let again = Message::decode(&decoded.encode());
                TestResult::from_bool(holds(again.as_ref() == Ok(&decoded), &decoded, &bytes))
            }
            Err(_) => TestResult::passed(),
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(Message, usize, u8) -> TestResult);
}

#[test]
fn decoder_agrees_with_bendy_on_which_inputs_are_well_formed_dicts() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static WELL_FORMED: AtomicUsize = AtomicUsize::new(0);
    static MALFORMED: AtomicUsize = AtomicUsize::new(0);
    fn prop(input: BencodeInput) -> bool {
        let structural = matches!(
            Message::decode(&input.0),
            Err(KrpcDecodeError {
                kind: KrpcDecodeErrorKind::Bencode | KrpcDecodeErrorKind::NotADict,
                ..
            })
        );
        let well_formed = bendy_sees_one_dict(&input.0);
        let counter = if well_formed {
            &WELL_FORMED
        } else {
            &MALFORMED
        };
        counter.fetch_add(1, Relaxed);
        holds(well_formed != structural, &structural, &input.0)
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(BencodeInput) -> bool);
    // The generator must exercise both sides, or the agreement says little.
    let (good, bad) = (WELL_FORMED.load(Relaxed), MALFORMED.load(Relaxed));
    assert!(
        good > 1000 && bad > 1000,
        "{good} well-formed, {bad} malformed"
    );
}

/// A valid message's dictionary with keys added, removed or given other values, at the
/// top level or inside `a` / `r`: KRPC-shaped input that often still decodes.
#[derive(Clone, Debug)]
struct KrpcShaped(Vec<u8>);

impl Bencode {
    /// Reads bendy's object tree (keeping integers as text: `Value` stops at `i64`).
    fn from_object(object: Object<'_, '_>) -> Bencode {
        match object {
            Object::Integer(text) => Bencode::Integer(text.to_string()),
            Object::Bytes(b) => Bencode::Bytes(b.to_vec()),
            Object::List(mut list) => {
                let mut items = Vec::new();
                while let Some(item) = list.next_object().unwrap() {
                    items.push(Bencode::from_object(item));
                }
                Bencode::List(items)
            }
            Object::Dict(mut dict) => {
                let mut entries = BTreeMap::new();
                while let Some((key, value)) = dict.next_pair().unwrap() {
                    entries.insert(key.to_vec(), Bencode::from_object(value));
                }
                Bencode::Dict(entries, false)
            }
        }
    }
}

impl Arbitrary for KrpcShaped {
    fn arbitrary(g: &mut Gen) -> Self {
        let bytes = Message::arbitrary(g).encode();
        let mut decoder = Decoder::new(&bytes).with_max_depth(MAX_DEPTH);
        let object = decoder.next_object().unwrap().unwrap();
        let Bencode::Dict(mut top, _) = Bencode::from_object(object) else {
            unreachable!("messages encode as dictionaries")
        };
        for _ in 0..1 + usize::arbitrary(g) % 3 {
            let inner = match top.get_mut(&b"a"[..]) {
                Some(Bencode::Dict(a, _)) if bool::arbitrary(g) => a,
                _ => match top.get_mut(&b"r"[..]) {
                    Some(Bencode::Dict(r, _)) if bool::arbitrary(g) => r,
                    _ => &mut top,
                },
            };
            let key = match inner.keys().nth(usize::arbitrary(g) % (inner.len() + 1)) {
                Some(existing) if bool::arbitrary(g) => existing.clone(),
                _ => (*g.choose(KEYS).unwrap()).to_vec(),
            };
            if u8::arbitrary(g) % 4 == 0 {
                inner.remove(&key);
            } else {
                inner.insert(key, Bencode::arbitrary_at(g, 2));
            }
        }
        let mut out = Vec::new();
        Bencode::Dict(top, false).canonical().write(&mut out);
        KrpcShaped(out)
    }
}

#[test]
fn krpc_shaped_inputs_that_decode_round_trip_and_errors_keep_what_was_read() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static DECODED: AtomicUsize = AtomicUsize::new(0);
    fn prop(input: KrpcShaped) -> bool {
        match Message::decode(&input.0) {
            Ok(msg) => {
                DECODED.fetch_add(1, Relaxed);
                let again = Message::decode(&msg.encode());
                holds(again.as_ref() == Ok(&msg), &msg, &input.0)
            }
            // Well-formed bencode is never reported as malformed.
            Err(e) => holds(!matches!(e.kind, KrpcDecodeErrorKind::Bencode), &e, &input.0),
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(KrpcShaped) -> bool);
    let decoded = DECODED.load(Relaxed);
    assert!(decoded > 1000, "only {decoded} of 5000 decoded");
}
