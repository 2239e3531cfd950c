//! KRPC codec benchmarks: decode and encode of each message type, with `serde_bencode`
//! (into plain serde structs shaped like KRPC) on the same bytes in the same run. After
//! the run, the ratio of our medians to theirs is printed per case.
//!
//! The comparison favours serde_bencode: its structs keep `nodes` and `values` as raw
//! byte strings, while our decoder also parses them into ids and socket addresses and
//! checks every rule of `dhtmeet_core::dht::krpc`.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{Criterion, criterion_group};
use dhtmeet_benches::median_ns;
use dhtmeet_core::dht::krpc::{Body, CompactNode, Message, Query, Response, Want, error_code};
use dhtmeet_core::dht::{InfoHash, NodeId};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// KRPC as a serde user would write it: every key optional but `t` and `y`, fields in
/// sorted key order, byte strings as `ByteBuf`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SerdeMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<SerdeArgs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<(i64, ByteBuf)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<SerdeResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ro: Option<i64>,
    t: ByteBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<ByteBuf>,
    y: ByteBuf,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SerdeArgs {
    id: ByteBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    implied_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_hash: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    want: Option<Vec<ByteBuf>>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SerdeResponse {
    id: ByteBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes6: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<ByteBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<ByteBuf>>,
}

fn message(body: Body) -> Message {
    Message {
        transaction_id: b"aa01".to_vec(),
        version: Some(b"DM01".to_vec()),
        read_only: false,
        ip: None,
        body,
    }
}

fn query(query: Query) -> Message {
    message(Body::Query {
        id: NodeId(*b"abcdefghij0123456789"),
        query,
    })
}

fn response(response: Response) -> Message {
    message(Body::Response {
        id: NodeId(*b"mnopqrstuvwxyz123456"),
        response,
    })
}

fn v4(i: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, i), port))
}

/// The benchmarked messages, by name.
fn cases() -> Vec<(&'static str, Message)> {
    let info_hash = InfoHash(*b"mnopqrstuvwxyz123456");
    let token = Some(b"aoeusnth".to_vec());
    vec![
        ("ping_query", query(Query::Ping)),
        (
            "find_node_query",
            query(Query::FindNode {
                target: NodeId(*b"mnopqrstuvwxyz123456"),
                want: Want::default(),
            }),
        ),
        (
            "get_peers_query",
            query(Query::GetPeers {
                info_hash,
                want: Want::default(),
            }),
        ),
        (
            "get_peers_response_8_nodes",
            response(Response {
                nodes: (0..8)
                    .map(|i| CompactNode {
                        id: NodeId([i; 20]),
                        addr: v4(i, 6881 + u16::from(i)),
                    })
                    .collect(),
                token: token.clone(),
                ..Response::default()
            }),
        ),
        (
            "get_peers_response_values",
            response(Response {
                values: (0..8).map(|i| v4(i, 6881 + u16::from(i))).collect(),
                token,
                ..Response::default()
            }),
        ),
        (
            "announce_peer_query",
            query(Query::AnnouncePeer {
                info_hash,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            }),
        ),
        (
            "error",
            message(Body::Error {
                code: error_code::PROTOCOL,
                message: "A Protocol Error Occurred".into(),
            }),
        ),
    ]
}

fn codec(c: &mut Criterion) {
    for (name, msg) in cases() {
        let bytes = msg.encode();
        // Both sides must read the same thing: serde's re-encoding is byte-identical.
        let theirs: SerdeMessage = serde_bencode::from_bytes(&bytes).unwrap();
        assert_eq!(serde_bencode::to_bytes(&theirs).unwrap(), bytes, "{name}");
        assert_eq!(Message::decode(&bytes).unwrap(), msg, "{name}");
        println!("{name}: {} bytes", bytes.len());

        let mut g = c.benchmark_group(format!("krpc_decode_{name}"));
        g.bench_function("dhtmeet", |b| {
            b.iter(|| Message::decode(black_box(&bytes)).unwrap())
        });
        g.bench_function("serde_bencode", |b| {
            b.iter(|| serde_bencode::from_bytes::<SerdeMessage>(black_box(&bytes)).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group(format!("krpc_encode_{name}"));
        g.bench_function("dhtmeet", |b| b.iter(|| black_box(&msg).encode()));
        g.bench_function("serde_bencode", |b| {
            b.iter(|| serde_bencode::to_bytes(black_box(&theirs)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, codec);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    for op in ["decode", "encode"] {
        for (name, _) in cases() {
            let group = format!("krpc_{op}_{name}");
            if let (Some(ours), Some(theirs)) = (
                median_ns(&group, "dhtmeet"),
                median_ns(&group, "serde_bencode"),
            ) {
                println!(
                    "{group}: dhtmeet {ours:.1} ns, serde_bencode {theirs:.1} ns, ratio dhtmeet/serde_bencode = {:.2}",
                    ours / theirs
                );
            }
        }
    }
}
