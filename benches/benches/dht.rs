//! A whole get_peers lookup in a simulated 10,000-node Mainline DHT (issue 4): wall time
//! per lookup (criterion), and, printed once, the lookup's RPCs and virtual time against
//! the README targets (median within 4 median round trips and at most 40 RPCs, p99 under
//! a second). One-way path delays are drawn between 10 and 150 ms (see docs/sim.md).
//!
//! Building and settling the network takes ~30 s of wall time before the first sample
//! (only when that benchmark is selected). `DHT_BENCH_NODES` overrides the size (e.g.
//! 1000 for a quick run).
//!
//! Also (issue 15, finding 1): one announce for a new info-hash into a peer store that one
//! attacker has filled, from 157 IPv6 /64s of one /48 each at its quota (`-- store`).

use std::hint::black_box;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dhtmeet_core::dht::peer_store::{MAX_PEERS, MAX_PEERS_PER_SOURCE, PeerStore};
use dhtmeet_core::dht::{DhtEvent, InfoHash, LookupSummary};
use dhtmeet_sim::scenario::dht::{self, DhtNetwork, DhtSimConfig, percentile};

const SEED: u64 = 1;

/// Runs one get_peers from member `from` to its end; `None` if it could not start or end.
fn lookup(net: &mut DhtNetwork, from: usize, info_hash: InfoHash) -> Option<LookupSummary> {
    let host = net.hosts[from];
    let id = net
        .sim
        .with_machine(host, |dht, now| dht.get_peers(now, info_hash))?
        .ok()?;
    let deadline = net.sim.elapsed() + Duration::from_secs(60);
    while let Some(e) = net.sim.run_until_event(deadline) {
        if let DhtEvent::LookupDone(s) = e.event {
            if e.host == host && s.id == id {
                return Some(s);
            }
        }
    }
    None
}

/// The network, member 7's announce of `info_hash` stored, and the target numbers of 300
/// lookups printed.
fn settled_network(config: &DhtSimConfig, nodes: usize, info_hash: InfoHash) -> DhtNetwork {
    let mut net = dht::build(config, SEED).expect("the DHT builds");
    // One announced topic (by member 7), looked up from every other member in turn.
    let host = net.hosts[7];
    net.sim
        .with_machine(host, |dht, now| dht.announce(now, info_hash, Some(4242)))
        .expect("member 7 is up")
        .expect("the announce starts");
    net.sim.run_for(Duration::from_secs(10));
    while net.sim.poll_event().is_some() {}

    // The numbers the targets are about, over 300 lookups.
    let mut times = Vec::new();
    let mut rpcs = Vec::new();
    let mut found = 0;
    for i in 0..300 {
        let from = 11 + i * 31 % (net.hosts.len() - 11);
        let s = lookup(&mut net, from, info_hash).expect("the lookup ends");
        found += usize::from(!s.peers.is_empty());
        times.push(s.elapsed);
        rpcs.push(s.rpcs);
    }
    times.sort();
    rpcs.sort();
    let ms = |d: Option<Duration>| d.unwrap_or_default().as_secs_f64() * 1000.0;
    let median = percentile(&times, 0.5);
    println!(
        "dht/get_peers in {nodes} nodes (seed {SEED}): found {found}/300; virtual time median \
         {:.0} ms = {:.2} median RTTs ({:.0} ms), p99 {:.0} ms; RPCs median {}, p99 {}",
        ms(median),
        ms(median) / ms(Some(net.median_rtt)),
        ms(Some(net.median_rtt)),
        ms(percentile(&times, 0.99)),
        percentile(&rpcs, 0.5).unwrap_or(0),
        percentile(&rpcs, 0.99).unwrap_or(0),
    );
    net
}

fn lookups(c: &mut Criterion) {
    let nodes = std::env::var("DHT_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let config = DhtSimConfig {
        nodes,
        lookups: 0,
        ..DhtSimConfig::default()
    };
    let info_hash = InfoHash([0x5a; 20]);
    let mut group = c.benchmark_group("dht");
    group.sample_size(30);
    // Criterion calls the closure only when the benchmark is selected (and then many
    // times): the network is built on the first call.
    let mut built: Option<DhtNetwork> = None;
    let mut i = 0usize;
    group.bench_function(format!("get_peers lookup in {nodes} nodes"), |b| {
        let net = built.get_or_insert_with(|| settled_network(&config, nodes, info_hash));
        b.iter(|| {
            i += 1;
            let from = 11 + i * 37 % (net.hosts.len() - 11);
            black_box(lookup(net, from, info_hash))
        })
    });
    group.finish();
}

/// Address 1 of the attacker's /64 number `subnet`, in one /48.
fn attacker(subnet: u64, port: u16) -> SocketAddr {
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, subnet as u16, 0, 0, 0, 1);
    SocketAddr::new(ip.into(), port)
}

fn info_hash(n: u64) -> InfoHash {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&n.to_be_bytes());
    InfoHash(b)
}

fn store_full(c: &mut Criterion) {
    let start = Instant::now();
    let mut store = PeerStore::new();
    let subnets = MAX_PEERS.div_ceil(MAX_PEERS_PER_SOURCE) as u64;
    let mut n = 0u64;
    while store.size().1 < MAX_PEERS {
        store.announce(info_hash(n), attacker(n % subnets, n as u16), start);
        n += 1;
    }
    let mut group = c.benchmark_group("dht");
    group.bench_function(
        "announce for a new hash with the store full (of one attacker's entries)",
        |b| {
            b.iter(|| {
                n += 1;
                // A microsecond apart: nothing expires during the run, the store stays full.
                let now = start + Duration::from_micros(n);
                store.announce(info_hash(n), attacker(n % subnets, n as u16), now);
            })
        },
    );
    let mut member = 0u32;
    group.bench_function(
        "announce for a new meeting from a new source with the store full (of one attacker's entries)",
        |b| {
            b.iter(|| {
                n += 1;
                member = member.wrapping_add(1);
                let now = start + Duration::from_micros(n);
                let from = SocketAddr::from(([10, (member >> 16) as u8, (member >> 8) as u8, member as u8], 4000));
                store.announce(info_hash(n), from, now);
            })
        },
    );
    group.finish();
    assert_eq!(store.size().1, MAX_PEERS);
}

criterion_group!(benches, store_full, lookups);
criterion_main!(benches);
