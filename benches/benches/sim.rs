//! The simulator's own speed: datagram deliveries per second of wall time with trivial
//! hosts (target: at least one million per second on one core), and the time and memory
//! of a 10,000-host scenario (10,000 STUN clients, each behind its own home router, and
//! two STUN servers).
//!
//! Memory is printed once before the timed runs: the simulator's own bytes per host
//! ([`Sim::footprint`]), the size of a host's machine, and the growth of the process's
//! resident set while the scenario is built and run (Linux only).

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dhtmeet_core::{Event, Node, NodeConfig, SansIo, Seed, Transmit};
use dhtmeet_sim::scenario::{LAN_HOST, STUN_SERVERS, access_link, server_link};
use dhtmeet_sim::{HostSpec, LinkConfig, NatPreset, Realm, Sim};

/// A trivial host: sends every datagram straight back.
#[derive(Debug, Default)]
struct Echo {
    out: VecDeque<Transmit>,
}

impl SansIo for Echo {
    type Event = ();

    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, remote: SocketAddr, d: &[u8]) {
        self.out.push_back(Transmit::new(remote, d.to_vec()));
    }

    fn handle_timeout(&mut self, _: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

const PAIRS: u32 = 500;

fn addr(i: u32) -> SocketAddr {
    // 198.18.0.0/15 (RFC 2544, benchmarking): room for 131,072 hosts.
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)), 9)
}

/// 500 pairs of echo hosts over 1 ms links, each pair with 4 datagrams in flight.
fn echo_network() -> Sim<Echo> {
    let mut sim = Sim::new(Seed::from_u64(1));
    let link = LinkConfig::with_latency(Duration::from_millis(1));
    for i in 0..2 * PAIRS {
        let spec = HostSpec::new(format!("e{i}"), Realm::Internet, addr(i)).with_link(link.clone());
        sim.add_host(spec, Echo::default()).expect("valid host");
    }
    let hosts: Vec<_> = sim.host_ids().collect();
    for pair in hosts.chunks(2) {
        let peer = addr(pair[1].index() as u32);
        sim.with_machine(pair[0], |m, _| {
            for k in 0..4u8 {
                m.out.push_back(Transmit::new(peer, vec![k; 64]));
            }
        });
    }
    sim
}

const ECHO_RUN: Duration = Duration::from_millis(200);

fn deliveries(c: &mut Criterion) {
    let mut probe = echo_network();
    probe.run_for(ECHO_RUN);
    let per_run = probe.stats().delivered;
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(per_run));
    g.bench_function(format!("deliveries_echo_{}_hosts", 2 * PAIRS), |b| {
        b.iter_batched(
            echo_network,
            |mut sim| {
                sim.run_for(ECHO_RUN);
                black_box(sim.stats().delivered)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

const SITES: u32 = 10_000;

/// 10,000 STUN clients, each behind its own home router, and two STUN servers: run until
/// every client has discovered its address.
fn ten_thousand_hosts() -> Sim<Node> {
    let mut sim: Sim<Node> = Sim::new(Seed::from_u64(1));
    for (i, &a) in STUN_SERVERS.iter().enumerate() {
        let node = Node::new(
            sim.now(),
            NodeConfig::new(sim.host_seed(&format!("stun{i}"))),
        )
        .expect("valid");
        sim.add_host(
            HostSpec::new(format!("stun{i}"), Realm::Internet, a).with_link(server_link()),
            node,
        )
        .expect("valid host");
    }
    for i in 0..SITES {
        let name = format!("c{i}");
        let lan = NatPreset::Home
            .install(
                &mut sim,
                &name,
                Realm::Internet,
                addr(i).ip(),
                access_link(),
            )
            .expect("valid preset");
        let mut config = NodeConfig::new(sim.host_seed(&name));
        config.stun.servers = STUN_SERVERS.to_vec();
        config.stun.retry_interval = None;
        let node = Node::new(sim.now(), config).expect("valid config");
        sim.add_host(HostSpec::new(name, lan, LAN_HOST), node)
            .expect("valid host");
    }
    sim
}

fn run_to_discovery(sim: &mut Sim<Node>) -> u32 {
    let mut discovered = 0;
    while discovered < SITES {
        match sim.run_until_event(Duration::from_secs(60)) {
            Some(e) if matches!(e.event, Event::AddressDiscovered(_)) => discovered += 1,
            Some(_) => {}
            None => break,
        }
    }
    discovered
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn scale(c: &mut Criterion) {
    let before = resident_bytes();
    let t = Instant::now();
    let mut sim = ten_thousand_hosts();
    let built = t.elapsed();
    let discovered = run_to_discovery(&mut sim);
    let total = t.elapsed();
    let after = resident_bytes();
    let hosts = sim.host_count() as u64;
    eprintln!(
        "10k scenario: {hosts} hosts, {} NATs, {discovered} discovered, built in {built:?}, total {total:?}, {} deliveries, virtual {:?}",
        sim.nat_ids().count(),
        sim.stats().delivered,
        sim.elapsed()
    );
    eprintln!(
        "memory: simulator {} B/host (footprint {} B), size_of::<Node>() = {} B",
        sim.footprint() as u64 / hosts,
        sim.footprint(),
        std::mem::size_of::<Node>()
    );
    if let (Some(b), Some(a)) = (before, after) {
        eprintln!(
            "memory: resident set grew {} B = {} B/host (machines, NATs and all)",
            a.saturating_sub(b),
            a.saturating_sub(b) / hosts
        );
    }
    assert_eq!(discovered, SITES, "every client discovers its address");
    drop(sim);

    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.bench_function("stun_10k_hosts_behind_home_nats", |b| {
        b.iter_batched(
            ten_thousand_hosts,
            |mut sim| black_box(run_to_discovery(&mut sim)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("build_10k_hosts_behind_home_nats", |b| {
        b.iter(|| black_box(ten_thousand_hosts().host_count()))
    });
    g.finish();
}

criterion_group!(benches, deliveries, scale);
criterion_main!(benches);
