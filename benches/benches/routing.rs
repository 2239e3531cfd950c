//! Routing-table operations (BEP 5): inserting nodes that answered, and finding the k
//! closest nodes to a target, on a table filled like a busy node's.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use dhtmeet_core::Seed;
use dhtmeet_core::dht::NodeId;
use dhtmeet_core::dht::krpc::CompactNode;
use dhtmeet_core::dht::routing::{K, RoutingTable};
use rand_core::Rng as _;

fn random_nodes(n: usize, seed: u64) -> Vec<CompactNode> {
    let mut rng = Seed::from_u64(seed).rng();
    (0..n)
        .map(|i| {
            let mut id = [0u8; 20];
            rng.fill_bytes(&mut id);
            let addr = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881));
            CompactNode {
                id: NodeId(id),
                addr,
            }
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let now = Instant::now();
    let own = NodeId([0x5a; 20]);
    let nodes = random_nodes(10_000, 1);
    c.bench_function("routing_insert_10000_random_nodes", |b| {
        b.iter(|| {
            let mut t = RoutingTable::new(own, false, now);
            for n in &nodes {
                black_box(t.on_response(*n, now));
            }
            t
        })
    });
    let mut full = RoutingTable::new(own, false, now);
    for n in &nodes {
        full.on_response(*n, now);
    }
    println!(
        "table after 10,000 inserts: {} nodes in {} buckets",
        full.len(),
        full.bucket_count()
    );
    let targets = random_nodes(64, 2);
    let mut i = 0;
    c.bench_function("routing_closest_k", |b| {
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(full.closest(&targets[i].id, K, now))
        })
    });
    let known = &nodes[..64];
    let mut j = 0;
    c.bench_function("routing_refresh_known_node", |b| {
        b.iter(|| {
            j = (j + 1) % known.len();
            black_box(full.on_response(known[j], now))
        })
    });
}

criterion_group!(benches, routing);
criterion_main!(benches);
