//! The KRPC codec: BEP 5's examples byte for byte both ways, and scenario tests for
//! each decoding rule (see `decode.rs`'s module doc); the quickcheck properties are in
//! `tests/properties.rs`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::decode::MAX_DEPTH;
use super::*;

/// The quickcheck properties and their generators.
mod properties;

const ABC: [u8; 20] = *b"abcdefghij0123456789";
const MNO: [u8; 20] = *b"mnopqrstuvwxyz123456";
const DIGITS_FIRST: [u8; 20] = *b"0123456789abcdefghij";

fn message(body: Body) -> Message {
    Message {
        transaction_id: b"aa".to_vec(),
        version: None,
        read_only: false,
        ip: None,
        body,
    }
}

fn query(id: [u8; 20], query: Query) -> Message {
    message(Body::Query {
        id: NodeId(id),
        query,
    })
}

fn response(id: [u8; 20], response: Response) -> Message {
    message(Body::Response {
        id: NodeId(id),
        response,
    })
}

fn decode(bytes: &[u8]) -> Message {
    Message::decode(bytes).unwrap_or_else(|e| {
        panic!(
            "{e:?} decoding {:?}",
            String::from_utf8_lossy(bytes).into_owned()
        )
    })
}

fn kind(bytes: &[u8]) -> KrpcDecodeErrorKind {
    match Message::decode(bytes) {
        Ok(m) => panic!("decoded {m:?} from {:?}", String::from_utf8_lossy(bytes)),
        Err(e) => e.kind,
    }
}

/// Checks both directions: `bytes` decodes to `msg`, and `msg` encodes to `bytes`.
fn assert_vector(bytes: &[u8], msg: &Message) {
    assert_eq!(&decode(bytes), msg);
    assert_eq!(
        String::from_utf8_lossy(&msg.encode()),
        String::from_utf8_lossy(bytes)
    );
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(a, b, c, d), port))
}

/// `n` IPv4 nodes and their compact `nodes` string.
fn nodes(n: u8) -> (Vec<CompactNode>, Vec<u8>) {
    let mut list = Vec::new();
    let mut compact = Vec::new();
    for i in 0..n {
        let node = CompactNode {
            id: NodeId([i; 20]),
            addr: v4(192, 0, 2, i, 6881 + u16::from(i)),
        };
        compact.extend_from_slice(&[i; 20]);
        compact.extend_from_slice(&[192, 0, 2, i]);
        compact.extend_from_slice(&(6881 + u16::from(i)).to_be_bytes());
        list.push(node);
    }
    (list, compact)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- BEP 5's examples, both ways ----

#[test]
fn bep5_ping_query_and_response() {
    assert_vector(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        &query(ABC, Query::Ping),
    );
    assert_vector(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        &response(MNO, Response::default()),
    );
}

#[test]
fn bep5_generic_error() {
    assert_vector(
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        &message(Body::Error {
            code: error_code::GENERIC,
            message: "A Generic Error Ocurred".into(),
        }),
    );
}

#[test]
fn bep5_find_node_query_and_response() {
    assert_vector(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        &query(
            ABC,
            Query::FindNode {
                target: NodeId(MNO),
                want: Want::default(),
            },
        ),
    );
    // BEP 5's response shows "def456..." as a placeholder; here with 8 real nodes.
    let (list, compact) = nodes(8);
    assert_vector(
        &concat(&[
            b"d1:rd2:id20:0123456789abcdefghij5:nodes208:",
            &compact,
            b"e1:t2:aa1:y1:re",
        ]),
        &response(
            DIGITS_FIRST,
            Response {
                nodes: list,
                ..Response::default()
            },
        ),
    );
}

#[test]
fn bep5_get_peers_query_and_both_responses() {
    assert_vector(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        &query(
            ABC,
            Query::GetPeers {
                info_hash: InfoHash(MNO),
                want: Want::default(),
            },
        ),
    );
    // "axje.u" and "idhtnm" are 6-byte compact peer infos: a, x, j, e : '.' 'u'.
    assert_vector(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        &response(
            ABC,
            Response {
                values: vec![
                    v4(b'a', b'x', b'j', b'e', u16::from_be_bytes(*b".u")),
                    v4(b'i', b'd', b'h', b't', u16::from_be_bytes(*b"nm")),
                ],
                token: Some(b"aoeusnth".to_vec()),
                ..Response::default()
            },
        ),
    );
    let (list, compact) = nodes(2);
    assert_vector(
        &concat(&[
            b"d1:rd2:id20:abcdefghij01234567895:nodes52:",
            &compact,
            b"5:token8:aoeusnthe1:t2:aa1:y1:re",
        ]),
        &response(
            ABC,
            Response {
                nodes: list,
                token: Some(b"aoeusnth".to_vec()),
                ..Response::default()
            },
        ),
    );
}

#[test]
fn bep5_announce_peer_query_and_response() {
    assert_vector(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        &query(
            ABC,
            Query::AnnouncePeer {
                info_hash: InfoHash(MNO),
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            },
        ),
    );
    assert_vector(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        &response(MNO, Response::default()),
    );
}

#[test]
fn bep5_placeholder_nodes_are_rejected_but_keep_the_transaction_id() {
    let e = Message::decode(
        b"d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re",
    )
    .unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::BadLength("nodes"));
    assert_eq!(e.transaction_id.as_deref(), Some(&b"aa"[..]));
    assert!(!e.is_query);
}

// ---- Scenarios ----

#[test]
fn all_optional_top_level_keys_are_written_sorted_and_read_back() {
    let mut msg = query(
        ABC,
        Query::FindNode {
            target: NodeId(MNO),
            want: Want { v4: true, v6: true },
        },
    );
    msg.version = Some(b"DM01".to_vec());
    msg.read_only = true;
    msg.ip = Some(v4(203, 0, 113, 7, 0x1ae1));
    assert_vector(
        &concat(&[
            b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee",
            b"2:ip6:\xcb\x00\x71\x07\x1a\xe11:q9:find_node2:roi1e1:t2:aa1:v4:DM011:y1:qe",
        ]),
        &msg,
    );
}

#[test]
fn ipv6_nodes6_values_and_ip_are_decoded() {
    let ip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut compact6 = ABC.to_vec();
    compact6.extend_from_slice(&ip6.octets());
    compact6.extend_from_slice(&[0x1a, 0xe1]);
    let mut peer6 = ip6.octets().to_vec();
    peer6.extend_from_slice(&[0, 80]);
    let bytes = concat(&[
        b"d2:ip18:",
        &peer6,
        b"1:rd2:id20:mnopqrstuvwxyz1234566:nodes638:",
        &compact6,
        b"6:valuesl18:",
        &peer6,
        b"6:\x7f\x00\x00\x01\x00\x50ee1:t2:aa1:y1:re",
    ]);
    let mut expected = response(
        MNO,
        Response {
            nodes6: vec![CompactNode {
                id: NodeId(ABC),
                addr: SocketAddr::from((ip6, 6881)),
            }],
            values: vec![SocketAddr::from((ip6, 80)), v4(127, 0, 0, 1, 80)],
            ..Response::default()
        },
    );
    expected.ip = Some(SocketAddr::from((ip6, 80)));
    assert_vector(&bytes, &expected);
}

#[test]
fn nodes_string_of_wrong_length_is_rejected() {
    let (_, compact) = nodes(2);
    let cut = compact.get(..51).unwrap();
    let bytes = concat(&[
        b"d1:rd2:id20:abcdefghij01234567895:nodes51:",
        cut,
        b"e1:t2:aa1:y1:re",
    ]);
    assert_eq!(kind(&bytes), KrpcDecodeErrorKind::BadLength("nodes"));
    let bytes = b"d1:rd2:id20:abcdefghij01234567896:nodes65:abcdee1:t2:aa1:y1:re";
    assert_eq!(kind(bytes), KrpcDecodeErrorKind::BadLength("nodes6"));
}

#[test]
fn nodes_beyond_the_bound_are_truncated() {
    let (list, compact) = nodes(MAX_NODES as u8 + 3);
    let bytes = concat(&[
        b"d1:rd2:id20:abcdefghij01234567895:nodes",
        format!("{}:", compact.len()).as_bytes(),
        &compact,
        b"e1:t2:aa1:y1:re",
    ]);
    let Body::Response { response, .. } = decode(&bytes).body else {
        panic!("not a response")
    };
    assert_eq!(response.nodes, list.get(..MAX_NODES).unwrap());
}

#[test]
fn values_beyond_the_bound_are_truncated_but_still_checked() {
    let peers = "6:\x7f\x00\x00\x01\x00\x50".repeat(MAX_VALUES + 5);
    let bytes = format!("d1:rd2:id20:abcdefghij01234567896:valuesl{peers}ee1:t2:aa1:y1:re");
    let Body::Response { response, .. } = decode(bytes.as_bytes()).body else {
        panic!("not a response")
    };
    assert_eq!(response.values.len(), MAX_VALUES);
    let bad = format!("d1:rd2:id20:abcdefghij01234567896:valuesl{peers}5:shortee1:t2:aa1:y1:re");
    assert_eq!(kind(bad.as_bytes()), KrpcDecodeErrorKind::BadLength("values"));
    let wrong = b"d1:rd2:id20:abcdefghij01234567896:valuesli1eee1:t2:aa1:y1:re";
    assert_eq!(kind(wrong), KrpcDecodeErrorKind::WrongType("values"));
}

#[test]
fn trailing_bytes_are_rejected() {
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    for tail in [&b"x"[..], b"e", b"de", b"i0e", b"\0"] {
        let e = Message::decode(&concat(&[ping, tail])).unwrap_err();
        assert_eq!(e.kind, KrpcDecodeErrorKind::Bencode, "tail {tail:?}");
        // Everything was read: a node could still answer 203.
        assert_eq!(e.transaction_id.as_deref(), Some(&b"aa"[..]));
        assert!(e.is_query);
    }
}

#[test]
fn truncated_and_non_dict_datagrams_are_rejected() {
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    for end in 0..ping.len() {
        assert_eq!(kind(ping.get(..end).unwrap()), KrpcDecodeErrorKind::Bencode);
    }
    assert_eq!(kind(b"le"), KrpcDecodeErrorKind::NotADict);
    assert_eq!(kind(b"i1e"), KrpcDecodeErrorKind::NotADict);
    assert_eq!(kind(b"4:spam"), KrpcDecodeErrorKind::NotADict);
    assert_eq!(kind(b"x"), KrpcDecodeErrorKind::Bencode);
}

#[test]
fn unsorted_or_duplicate_keys_are_malformed() {
    // bendy enforces BEP 3's sorted keys; every DHT client we know of sorts them.
    assert_eq!(
        kind(b"d1:t2:aa1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe"),
        KrpcDecodeErrorKind::Bencode
    );
    assert_eq!(
        kind(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:t2:aa1:y1:qe"),
        KrpcDecodeErrorKind::Bencode
    );
}

#[test]
fn nesting_deeper_than_the_bound_is_malformed() {
    let nested = |depth: usize| {
        let inner = format!("{}{}", "l".repeat(depth), "e".repeat(depth));
        format!("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:x{inner}1:y1:qe")
    };
    // The top-level dictionary is one level.
    assert!(Message::decode(nested(MAX_DEPTH - 1).as_bytes()).is_ok());
    assert_eq!(kind(nested(MAX_DEPTH).as_bytes()), KrpcDecodeErrorKind::Bencode);
    assert_eq!(kind(nested(100_000).as_bytes()), KrpcDecodeErrorKind::Bencode);
}

#[test]
fn transaction_ids_of_any_length_up_to_the_bound_are_accepted() {
    for len in 1..=MAX_TRANSACTION_ID {
        let t = "x".repeat(len);
        let bytes = format!("d1:rd2:id20:abcdefghij0123456789e1:t{len}:{t}1:y1:re");
        assert_eq!(decode(bytes.as_bytes()).transaction_id, t.as_bytes());
    }
    let long = "x".repeat(MAX_TRANSACTION_ID + 1);
    let bytes = format!("d1:rd2:id20:abcdefghij0123456789e1:t33:{long}1:y1:re");
    assert_eq!(kind(bytes.as_bytes()), KrpcDecodeErrorKind::BadLength("t"));
    assert_eq!(
        kind(b"d1:rd2:id20:abcdefghij0123456789e1:t0:1:y1:re"),
        KrpcDecodeErrorKind::BadLength("t")
    );
    assert_eq!(
        kind(b"d1:rd2:id20:abcdefghij0123456789e1:y1:re"),
        KrpcDecodeErrorKind::MissingKey("t")
    );
}

#[test]
fn malformed_query_keeps_transaction_id_for_error_203() {
    let e = Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::BadLength("id"));
    assert_eq!(e.transaction_id.as_deref(), Some(&b"xy"[..]));
    assert!(e.is_query);
    let e = Message::decode(b"d1:q4:ping1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::MissingKey("a"));
    assert!(e.is_query);
    let e = Message::decode(b"d1:ai1e1:q4:ping1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::WrongType("a"));
    let e = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::MissingKey("q"));
}

#[test]
fn unknown_message_type_is_rejected() {
    let e = Message::decode(b"d1:t2:aa1:y1:xe").unwrap_err();
    assert_eq!(e.kind, KrpcDecodeErrorKind::UnknownMessageType);
    assert!(!e.is_query);
    assert_eq!(kind(b"d1:t2:aa1:yi1ee"), KrpcDecodeErrorKind::WrongType("y"));
}

#[test]
fn unknown_keys_are_ignored_at_every_level() {
    let bytes = b"d1:ad2:id20:abcdefghij01234567895:zzzzzld1:xi-5eeee1:q4:ping1:t2:aa\
        1:v2:LT3:xyzli1e4:spame";
    let bytes = concat(&[bytes, b"1:y1:q1:zde1:\xffi99999999999999999999999ee"]);
    let mut expected = query(ABC, Query::Ping);
    expected.version = Some(b"LT".to_vec());
    assert_eq!(decode(&bytes), expected);
}

#[test]
fn keys_that_do_not_apply_to_the_message_are_not_checked() {
    // A ping's `target`, a response's `a`, an announce's `want`: all stray, all ignored.
    let ping = b"d1:ad2:id20:abcdefghij01234567896:targeti1ee1:q4:ping1:t2:aa1:y1:qe";
    assert_eq!(decode(ping), query(ABC, Query::Ping));
    let r = b"d1:ai1e1:rd2:id20:mnopqrstuvwxyz1234564:portli1eee1:t2:aa1:y1:re";
    assert_eq!(decode(r), response(MNO, Response::default()));
}

#[test]
fn huge_integers_are_out_of_range_not_a_panic() {
    let announce = |port: &str| {
        format!(
            "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:port{port}5:token1:ke1:q13:announce_peer1:t2:aa1:y1:qe"
        )
    };
    for port in [
        "i99999999999999999999999e",
        "i-99999999999999999999e",
        "i65536e",
        "i-1e",
    ] {
        assert_eq!(
            kind(announce(port).as_bytes()),
            KrpcDecodeErrorKind::OutOfRange("port")
        );
    }
    assert_eq!(
        kind(announce("2:ab").as_bytes()),
        KrpcDecodeErrorKind::WrongType("port")
    );
    let huge_code = b"d1:eli9223372036854775808e1:xe1:t2:aa1:y1:ee";
    assert_eq!(kind(huge_code), KrpcDecodeErrorKind::OutOfRange("e"));
    let min_code = b"d1:eli-9223372036854775808e0:e1:t2:aa1:y1:ee";
    assert_eq!(
        decode(min_code).body,
        Body::Error {
            code: i64::MIN,
            message: String::new()
        }
    );
    let huge_string_length = b"d1:t99999999999999999999999999:aa1:y1:re";
    assert_eq!(kind(huge_string_length), KrpcDecodeErrorKind::Bencode);
}

#[test]
fn announce_port_is_required_unless_implied() {
    let announce = |extra: &str| {
        format!(
            "d1:ad2:id20:abcdefghij0123456789{extra}9:info_hash20:mnopqrstuvwxyz1234565:token1:ke1:q13:announce_peer1:t2:aa1:y1:qe"
        )
    };
    assert_eq!(
        kind(announce("").as_bytes()),
        KrpcDecodeErrorKind::MissingKey("port")
    );
    assert_eq!(
        kind(announce("12:implied_porti0e").as_bytes()),
        KrpcDecodeErrorKind::MissingKey("port")
    );
    let Body::Query { query, .. } = decode(announce("12:implied_porti7e").as_bytes()).body else {
        panic!("not a query")
    };
    assert_eq!(
        query,
        Query::AnnouncePeer {
            info_hash: InfoHash(MNO),
            port: 0,
            implied_port: true,
            token: b"k".to_vec()
        }
    );
    // With `implied_port`, a bogus `port` is ignored rather than fatal.
    let bogus = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:ke1:q13:announce_peer1:t2:aa1:y1:qe";
    assert!(Message::decode(bogus).is_ok());
}

#[test]
fn tokens_beyond_the_bound_are_rejected_not_truncated() {
    let token = "k".repeat(MAX_TOKEN);
    let ok = format!("d1:rd2:id20:mnopqrstuvwxyz1234565:token{MAX_TOKEN}:{token}e1:t2:aa1:y1:re");
    assert!(Message::decode(ok.as_bytes()).is_ok());
    let long = format!("d1:rd2:id20:mnopqrstuvwxyz1234565:token65:{token}ke1:t2:aa1:y1:re");
    assert_eq!(kind(long.as_bytes()), KrpcDecodeErrorKind::BadLength("token"));
}

#[test]
fn version_is_truncated_and_error_message_cut_at_a_character_boundary() {
    let bytes = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:v20:ABCDEFGHIJKLMNOPQRST1:y1:re";
    assert_eq!(decode(bytes).version.unwrap(), b"ABCDEFGHIJKLMNOP");
    // 255 ASCII bytes then a 2-byte character: it does not fit in 256 bytes.
    let text = format!("{}é and more", "x".repeat(255));
    let bytes = format!("d1:eli202e{}:{text}e1:t2:aa1:y1:ee", text.len());
    let Body::Error { code, message } = decode(bytes.as_bytes()).body else {
        panic!("not an error")
    };
    assert_eq!((code, message), (202, "x".repeat(255)));
    let lossy = b"d1:eli203e3:a\xffbe1:t2:aa1:y1:ee";
    let Body::Error { message, .. } = decode(lossy).body else {
        panic!("not an error")
    };
    assert_eq!(message, "a\u{fffd}b");
}

#[test]
fn error_list_shapes() {
    assert_eq!(
        kind(b"d1:ele1:t2:aa1:y1:ee"),
        KrpcDecodeErrorKind::BadLength("e")
    );
    assert_eq!(
        kind(b"d1:el3:abce1:t2:aa1:y1:ee"),
        KrpcDecodeErrorKind::WrongType("e")
    );
    assert_eq!(
        kind(b"d1:eli201ei5ee1:t2:aa1:y1:ee"),
        KrpcDecodeErrorKind::WrongType("e")
    );
    assert_eq!(kind(b"d1:t2:aa1:y1:ee"), KrpcDecodeErrorKind::MissingKey("e"));
    // Extra elements are ignored.
    let extra = b"d1:eli204e3:huh5:extrae1:t2:aa1:y1:ee";
    assert_eq!(
        decode(extra).body,
        Body::Error {
            code: 204,
            message: "huh".into()
        }
    );
}

#[test]
fn unknown_method_keeps_the_raw_arguments() {
    let bytes = b"d1:ad2:id20:abcdefghij01234567893:sigli1ei2eee1:q4:vote1:t2:aa1:y1:qe";
    let msg = decode(bytes);
    assert_eq!(
        msg,
        query(
            ABC,
            Query::Other {
                method: b"vote".to_vec(),
                args: b"d2:id20:abcdefghij01234567893:sigli1ei2eee".to_vec(),
            }
        )
    );
    assert_eq!(msg.encode(), bytes);
    let long = format!(
        "d1:ad2:id20:abcdefghij0123456789e1:q65:{}1:t2:aa1:y1:qe",
        "m".repeat(65)
    );
    let e = Message::decode(long.as_bytes()).unwrap_err();
    assert_eq!(
        (e.kind, e.is_query),
        (KrpcDecodeErrorKind::BadLength("q"), true)
    );
}

#[test]
fn want_keeps_n4_and_n6_and_ignores_the_rest() {
    let bytes = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n6i4e3:n10ee1:q9:get_peers1:t2:aa1:y1:qe";
    assert_eq!(
        decode(bytes).body,
        Body::Query {
            id: NodeId(ABC),
            query: Query::GetPeers {
                info_hash: InfoHash(MNO),
                want: Want {
                    v4: false,
                    v6: true
                }
            }
        }
    );
    let not_a_list = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:want2:n4e1:q9:find_node1:t2:aa1:y1:qe";
    assert_eq!(kind(not_a_list), KrpcDecodeErrorKind::WrongType("want"));
}

#[test]
fn read_only_flag_is_the_integer_one() {
    let with = |ro: &str| format!("d1:rd2:id20:mnopqrstuvwxyz123456e2:ro{ro}1:t2:aa1:y1:re");
    assert!(decode(with("i1e").as_bytes()).read_only);
    assert!(!decode(with("i0e").as_bytes()).read_only);
    assert_eq!(
        kind(with("1:1").as_bytes()),
        KrpcDecodeErrorKind::WrongType("ro")
    );
    let bad_ip = b"d2:ip3:abc1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
    assert_eq!(kind(bad_ip), KrpcDecodeErrorKind::BadLength("ip"));
}
