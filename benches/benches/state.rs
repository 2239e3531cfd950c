//! Remembered state (`docs/STATE.md`): encoding and decoding the largest state the format
//! holds (256 IPv6 nodes, 16 meetings of 32 IPv6 contacts: 20,102 bytes), and a typical
//! one (the nodes of a busy IPv4 table, one meeting of 4 members).

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use criterion::{Criterion, criterion_group, criterion_main};
use dhtmeet_core::dht::krpc::CompactNode;
use dhtmeet_core::dht::{InfoHash, NodeId};
use dhtmeet_core::state::{
    MAX_SAVED_CONTACTS, MAX_SAVED_MEETINGS, MAX_SAVED_NODES, MAX_STATE_BYTES, SavedMeeting,
};
use dhtmeet_core::{SavedState, Seed};
use rand_core::Rng as _;

fn largest() -> SavedState {
    let mut rng = Seed::from_u64(1).rng();
    let v6 = |i: usize| {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16)),
            6881,
        )
    };
    let nodes = (0..MAX_SAVED_NODES)
        .map(|i| {
            let mut id = [0u8; 20];
            rng.fill_bytes(&mut id);
            CompactNode {
                id: NodeId(id),
                addr: v6(i),
            }
        })
        .collect();
    let meetings = (0..MAX_SAVED_MEETINGS)
        .map(|m| SavedMeeting {
            topic: InfoHash([m as u8; 20]),
            contacts: (0..MAX_SAVED_CONTACTS).map(v6).collect(),
        })
        .collect();
    SavedState {
        node_id: Some(NodeId([7; 20])),
        id_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        nodes,
        meetings,
    }
}

fn typical() -> SavedState {
    let mut rng = Seed::from_u64(2).rng();
    let nodes = (0..160)
        .map(|i| {
            let mut id = [0u8; 20];
            rng.fill_bytes(&mut id);
            CompactNode {
                id: NodeId(id),
                addr: SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 6881)),
            }
        })
        .collect();
    SavedState {
        node_id: Some(NodeId([7; 20])),
        id_ip: Some("203.0.113.9".parse().expect("an IP")),
        nodes,
        meetings: vec![SavedMeeting {
            topic: InfoHash([1; 20]),
            contacts: (1..=4)
                .map(|i| SocketAddr::from(([192, 0, 2, i], 40000)))
                .collect(),
        }],
    }
}

fn state(c: &mut Criterion) {
    for (name, s) in [("largest", largest()), ("typical", typical())] {
        let bytes = s.encode();
        println!("{name} state: {} bytes", bytes.len());
        if name == "largest" {
            assert_eq!(bytes.len(), MAX_STATE_BYTES);
        }
        c.bench_function(&format!("state_encode_{name}"), |b| {
            b.iter(|| black_box(&s).encode())
        });
        c.bench_function(&format!("state_decode_{name}"), |b| {
            b.iter(|| SavedState::decode(black_box(&bytes)))
        });
    }
}

criterion_group!(benches, state);
criterion_main!(benches);
