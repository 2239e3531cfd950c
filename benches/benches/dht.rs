//! A whole get_peers lookup in a simulated 10,000-node Mainline DHT (issue 4): wall time
//! per lookup (criterion), and, printed once, the lookup's RPCs and virtual time against
//! the README targets (median within 4 median round trips and at most 40 RPCs, p99 under
//! a second). One-way path delays are drawn between 10 and 150 ms (see docs/sim.md).
//!
//! Building and settling the network takes ~30 s of wall time before the first sample.
//! `DHT_BENCH_NODES` overrides the size (e.g. 1000 for a quick run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
    let nodes = std::env::var("DHT_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let config = DhtSimConfig {
        nodes,
        lookups: 0,
        ..DhtSimConfig::default()
    };
    let mut net = dht::build(&config, SEED).expect("the DHT builds");
    // One announced topic (by member 7), looked up from every other member in turn.
    let info_hash = InfoHash([0x5a; 20]);
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

    let mut group = c.benchmark_group("dht");
    group.sample_size(30);
    let mut i = 0usize;
    group.bench_function(format!("get_peers lookup in {nodes} nodes"), |b| {
        b.iter(|| {
            i += 1;
            let from = 11 + i * 37 % (net.hosts.len() - 11);
            black_box(lookup(&mut net, from, info_hash))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
