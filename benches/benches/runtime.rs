//! Complete runtimes over loopback UDP: data-channel throughput of a two-member meeting
//! on each runtime (`dhtmeet-std`'s thread, `dhtmeet-smol`'s task) beside a bare UDP
//! send/receive loop with datagrams of the size the data channel puts on the wire, in
//! the same run; and the heap of an idle node and per connected peer.
//!
//! Everything runs on 127.0.0.1: a bootstrap node (also the STUN server) and the
//! members, as `tests/tests/runtime_handles.rs` sets them up.

use std::alloc::System;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dhtmeet_benches::median_ns;
use dhtmeet_core::meeting::code;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::webrtc::{Session, SessionConfig, SessionEvent};
use dhtmeet_core::{Event, SansIo, Seed};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Counts heap bytes of every thread, to measure what nodes hold.
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes currently live (all threads).
fn live() -> isize {
    let s = ALLOC.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

/// The floor of a session's SCTP buffer (`MIN_SCTP_BUDGET` in the core's session).
const MIN_SCTP_BUDGET: usize = 64 * 1024;
/// Bytes moved per measured iteration.
const TRANSFER: usize = 4 * 1024 * 1024;
/// Application message size (one session frame).
const MESSAGE: usize = 64 * 1024;
/// How long forming a meeting may take before the bench gives up.
const SETUP_LIMIT: Duration = Duration::from_secs(60);

// ---- the datagram size on the wire ----

/// The size of the datagrams that carry a bulk transfer, measured on two in-memory
/// sessions with the default settings (the ones a node uses): the most frequent
/// length of A's datagrams while it sends 1 MiB.
fn wire_datagram_size() -> usize {
    let now = Instant::now();
    let a: SocketAddr = "10.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
    let b: SocketAddr = "10.0.0.2:6000".parse().unwrap_or_else(|_| unreachable!());
    let addrs = [a, b];
    let root = Seed::from_u64(7);
    let config = SessionConfig::default();
    let mut s = [
        Session::new(now, config.clone(), true, a, root.child("a")).expect("session a"),
        Session::new(now, config, false, b, root.child("b")).expect("session b"),
    ];
    let (pa, pb) = (
        s[0].local_parameters().clone(),
        s[1].local_parameters().clone(),
    );
    s[0].set_remote(&pb).expect("parameters of b");
    s[1].set_remote(&pa).expect("parameters of a");
    let message = vec![0x3cu8; MESSAGE];
    let total = 16; // messages of 64 KiB: 1 MiB
    let (mut up, mut sent, mut received) = (0, 0, 0);
    let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
    let mut t = now;
    for _ in 0..1_000_000 {
        if received == total {
            break;
        }
        let mut moved = false;
        for i in 0..2 {
            while let Some(tx) = s[i].poll_transmit() {
                moved = true;
                if i == 0 && up == 2 {
                    *lengths.entry(tx.contents.len()).or_default() += 1;
                }
                s[1 - i].handle_datagram(t, addrs[1 - i], addrs[i], &tx.contents);
            }
            while let Some(e) = s[i].poll_event() {
                match e {
                    SessionEvent::Connected => up += 1,
                    SessionEvent::Message(_) if i == 1 => received += 1,
                    _ => {}
                }
            }
        }
        if up == 2 {
            while sent < total && s[0].send(&message).is_ok() {
                sent += 1;
            }
        }
        if !moved {
            let next = s.iter().filter_map(|m| m.poll_timeout()).min();
            t = t.max(next.unwrap_or(t));
            for m in s.iter_mut() {
                if m.poll_timeout().is_some_and(|w| w <= t) {
                    m.handle_timeout(t);
                }
            }
        }
    }
    assert_eq!(received, total, "in-memory transfer did not finish");
    let (&size, _) = lengths
        .iter()
        .max_by_key(|&(_, count)| *count)
        .expect("datagrams were sent");
    size
}

// ---- members on both runtimes ----

/// A DHT node that is also the STUN server (every node answers Binding requests).
fn bootstrap_node() -> dhtmeet_std::NodeHandle {
    let mut config = dhtmeet_std::Config::private(&[], &[]);
    config.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.seed = Some(Seed::from_u64(1));
    dhtmeet_std::NodeHandle::start(config).expect("bootstrap node")
}

fn member_config(seed: u64, boot: SocketAddr) -> dhtmeet_std::Config {
    let boot = boot.to_string();
    let mut config = dhtmeet_std::Config::private(&[&boot], &[&boot]);
    config.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.seed = Some(Seed::from_u64(seed));
    config
}

/// Events already queued, without waiting (keeps a node's event queue from filling).
fn drain(node: &dhtmeet_std::NodeHandle) -> usize {
    let mut n = 0;
    while node.next_event(Duration::ZERO).is_some() {
        n += 1;
    }
    n
}

/// Waits until every node has seen `want` peers connect.
fn await_mesh(nodes: &[&dhtmeet_std::NodeHandle], want: usize) {
    let until = Instant::now() + SETUP_LIMIT;
    let mut connected = vec![0; nodes.len()];
    while connected.iter().any(|&c| c < want) {
        assert!(Instant::now() < until, "no full mesh: {connected:?}");
        for (i, node) in nodes.iter().enumerate() {
            while let Some(e) = node.next_event(Duration::from_millis(5)) {
                if matches!(e, Event::PeerConnected { .. }) {
                    connected[i] += 1;
                }
            }
        }
    }
}

/// Waits until both members measured the path's round trip (ICE checks every few
/// seconds): until then a session sizes its SCTP buffer from the handshake's estimate,
/// and the bench would measure that transient instead of a settled meeting.
fn await_rtt(rtts: impl Fn() -> [Option<Duration>; 2]) {
    let until = Instant::now() + SETUP_LIMIT;
    while rtts().iter().any(Option::is_none) {
        assert!(Instant::now() < until, "no RTT measured");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A two-member meeting on the std runtime.
struct StdPair {
    boot: dhtmeet_std::NodeHandle,
    a: dhtmeet_std::NodeHandle,
    b: dhtmeet_std::NodeHandle,
    to_b: MemberId,
}

impl StdPair {
    /// `sctp_buffer`: a cap on the session's SCTP buffer instead of the default.
    fn new(sctp_buffer: Option<usize>) -> StdPair {
        let boot = bootstrap_node();
        let config = |seed| {
            let mut config = member_config(seed, boot.local_addr());
            if let Some(bytes) = sctp_buffer {
                config.meeting.session.sctp_buffer = bytes;
            }
            config
        };
        let a = dhtmeet_std::NodeHandle::start(config(101)).expect("member a");
        let b = dhtmeet_std::NodeHandle::start(config(102)).expect("member b");
        let code = code::generate(&mut Seed::from_u64(61).rng());
        a.join(&code).expect("a joins");
        let (to_b, _) = b.join(&code).expect("b joins");
        await_mesh(&[&a, &b], 1);
        let pair = StdPair { boot, a, b, to_b };
        await_rtt(|| pair.rtts());
        pair
    }

    /// The ICE round-trip times A and B measured.
    fn rtts(&self) -> [Option<Duration>; 2] {
        [&self.a, &self.b].map(|n| n.health().and_then(|h| h.peers.first().and_then(|p| p.rtt)))
    }

    /// A sends `TRANSFER` bytes to B; returns when B has received them all.
    fn transfer(&self, message: &[u8]) -> usize {
        let mut received = 0;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..TRANSFER / MESSAGE {
                    self.a.send(&self.to_b, message).expect("send");
                }
            });
            let until = Instant::now() + Duration::from_secs(60);
            while received < TRANSFER {
                assert!(Instant::now() < until, "std transfer stalled at {received}");
                if let Some(Event::Message { data, .. }) =
                    self.b.next_event(Duration::from_millis(100))
                {
                    received += data.len();
                }
            }
        });
        drain(&self.a);
        drain(&self.boot);
        received
    }

    fn shutdown(self) {
        let _ = self.a.shutdown();
        let _ = self.b.shutdown();
        let _ = self.boot.shutdown();
    }
}

/// A two-member meeting on the smol runtime (the bootstrap node runs on std).
struct SmolPair {
    boot: dhtmeet_std::NodeHandle,
    a: dhtmeet_smol::NodeHandle,
    b: dhtmeet_smol::NodeHandle,
    a_events: smol::channel::Receiver<Event>,
    b_events: smol::channel::Receiver<Event>,
    to_b: MemberId,
}

impl SmolPair {
    fn new() -> SmolPair {
        let boot = bootstrap_node();
        let pair = smol::block_on(async {
            let a = dhtmeet_smol::NodeHandle::start(member_config(201, boot.local_addr()))
                .await
                .expect("member a");
            let b = dhtmeet_smol::NodeHandle::start(member_config(202, boot.local_addr()))
                .await
                .expect("member b");
            let (a_events, b_events) = (a.events(), b.events());
            let code = code::generate(&mut Seed::from_u64(62).rng());
            a.join(&code).await.expect("a joins");
            let (to_b, _) = b.join(&code).await.expect("b joins");
            let until = Instant::now() + SETUP_LIMIT;
            let mut connected = [false; 2];
            while connected != [true; 2] {
                assert!(Instant::now() < until, "no smol meeting: {connected:?}");
                for (i, events) in [&a_events, &b_events].into_iter().enumerate() {
                    while let Ok(e) = events.try_recv() {
                        connected[i] |= matches!(e, Event::PeerConnected { .. });
                    }
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
            SmolPair {
                boot,
                a,
                b,
                a_events,
                b_events,
                to_b,
            }
        });
        await_rtt(|| pair.rtts());
        pair
    }

    /// The ICE round-trip times A and B measured.
    fn rtts(&self) -> [Option<Duration>; 2] {
        while self.a_events.try_recv().is_ok() {}
        while self.b_events.try_recv().is_ok() {}
        [&self.a, &self.b]
            .map(|n| smol::block_on(n.health()).and_then(|h| h.peers.first().and_then(|p| p.rtt)))
    }

    /// A sends `TRANSFER` bytes to B; returns when B has received them all.
    fn transfer(&self, message: &[u8]) -> usize {
        let received = smol::block_on(async {
            let send = async {
                for _ in 0..TRANSFER / MESSAGE {
                    self.a.send(&self.to_b, message).await.expect("send");
                }
            };
            let receive = async {
                let mut received = 0;
                while received < TRANSFER {
                    match self.b_events.recv().await {
                        Ok(Event::Message { data, .. }) => received += data.len(),
                        Ok(_) => {}
                        Err(_) => panic!("smol node b stopped at {received}"),
                    }
                }
                received
            };
            smol::future::zip(send, receive).await.1
        });
        while self.a_events.try_recv().is_ok() {}
        drain(&self.boot);
        received
    }

    fn shutdown(self) {
        smol::block_on(async {
            let _ = self.a.shutdown().await;
            let _ = self.b.shutdown().await;
        });
        let _ = self.boot.shutdown();
    }
}

#[path = "runtime/bare_udp.rs"]
mod bare_udp;
use bare_udp::BareUdp;

fn throughput(c: &mut Criterion) {
    let datagram_size = wire_datagram_size();
    eprintln!(
        "runtime_throughput: {} MiB per iteration in {} KiB messages; the data channel's \
         datagrams carrying them are {datagram_size} B on the wire",
        TRANSFER >> 20,
        MESSAGE >> 10
    );
    let message = vec![0x5au8; MESSAGE];
    let datagram = vec![0xa5u8; datagram_size];

    let started = Instant::now();
    let std_pair = StdPair::new(None);
    eprintln!(
        "std meeting formed and settled in {:?}; ICE RTT {:?}",
        started.elapsed(),
        std_pair.rtts()
    );
    let started = Instant::now();
    let smol_pair = SmolPair::new();
    eprintln!(
        "smol meeting formed and settled in {:?}; ICE RTT {:?}",
        started.elapsed(),
        smol_pair.rtts()
    );
    let capped = StdPair::new(Some(MIN_SCTP_BUDGET));
    let mut bare = BareUdp::new();

    let mut group = c.benchmark_group("runtime_throughput");
    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_udp", |b| {
        b.iter(|| black_box(bare.transfer(&datagram)))
    });
    group.bench_function("std", |b| b.iter(|| black_box(std_pair.transfer(&message))));
    group.bench_function("smol", |b| {
        b.iter(|| black_box(smol_pair.transfer(&message)))
    });
    // Diagnostic: the std runtime with the SCTP buffer held at its 64 KiB floor, i.e.
    // what the default would do if the RTT it sizes the buffer from stayed at the path's
    // (see docs/benchmarks.md: under load ICE measures its own queueing delay).
    group.bench_function("std_sctp_floor", |b| {
        b.iter(|| black_box(capped.transfer(&message)))
    });
    group.finish();

    let mbps = |ns: f64| TRANSFER as f64 / (ns * 1e-9) / 1e6;
    let median = |f: &str| median_ns("runtime_throughput", f);
    match median("bare_udp") {
        Some(bare_ns) => {
            eprintln!(
                "runtime_throughput (medians): bare UDP {:.0} MB/s ({datagram_size} B datagrams)",
                mbps(bare_ns)
            );
            for f in ["std", "smol", "std_sctp_floor"] {
                if let Some(ns) = median(f) {
                    eprintln!(
                        "runtime_throughput (medians): {f} {:.1} MB/s = {:.3} of bare UDP",
                        mbps(ns),
                        bare_ns / ns
                    );
                }
            }
        }
        None => eprintln!("runtime_throughput: criterion medians not found (run with cargo bench)"),
    }
    if bare.timeouts > 0 {
        eprintln!(
            "bare UDP: {} windows lost on loopback and sent again",
            bare.timeouts
        );
    }
    eprintln!(
        "ICE RTT after the runs: std {:?}, smol {:?}, std_sctp_floor {:?}",
        std_pair.rtts(),
        smol_pair.rtts(),
        capped.rtts()
    );
    drop(bare);
    std_pair.shutdown();
    capped.shutdown();
    smol_pair.shutdown();
}

// ---- memory ----

/// Live heap once things settled: the smallest of a few samples 100 ms apart (timers
/// and in-flight datagrams come and go; what stays is what the nodes hold).
fn settled_heap(nodes: &[&dhtmeet_std::NodeHandle]) -> isize {
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = Vec::new();
    for _ in 0..10 {
        for n in nodes {
            drain(n);
        }
        samples.push(live());
        std::thread::sleep(Duration::from_millis(100));
    }
    samples.into_iter().min().unwrap_or(0)
}

/// Waits until the node finished bootstrapping its DHT.
fn await_dht(node: &dhtmeet_std::NodeHandle) {
    let until = Instant::now() + SETUP_LIMIT;
    while !node.health().is_some_and(|h| h.dht_ready) {
        assert!(Instant::now() < until, "the DHT never bootstrapped");
        drain(node);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `n` std nodes and waits for their DHTs.
fn idle_nodes(n: usize, seed: u64, boot: SocketAddr) -> Vec<dhtmeet_std::NodeHandle> {
    let nodes: Vec<_> = (0..n)
        .map(|i| {
            dhtmeet_std::NodeHandle::start(member_config(seed + i as u64, boot))
                .expect("member starts")
        })
        .collect();
    for node in &nodes {
        await_dht(node);
    }
    nodes
}

/// The heap a meeting of `n` members adds to `n` idle nodes, once the full mesh formed.
fn meeting_heap(n: usize, seed: u64, boot: &dhtmeet_std::NodeHandle) -> isize {
    let nodes = idle_nodes(n, seed, boot.local_addr());
    let refs: Vec<&dhtmeet_std::NodeHandle> = std::iter::once(boot).chain(&nodes).collect();
    let idle = settled_heap(&refs);
    let code = code::generate(&mut Seed::from_u64(seed).rng());
    for node in &nodes {
        node.join(&code).expect("joins");
    }
    await_mesh(&nodes.iter().collect::<Vec<_>>(), n - 1);
    let met = settled_heap(&refs);
    for node in nodes {
        let _ = node.shutdown();
    }
    met - idle
}

fn memory(_c: &mut Criterion) {
    let boot = bootstrap_node();
    let base = settled_heap(&[&boot]);
    let nodes = idle_nodes(1, 300, boot.local_addr());
    let idle = settled_heap(&[&boot, &nodes[0]]) - base;
    for node in nodes {
        let _ = node.shutdown();
    }
    let smol_idle = {
        let base = settled_heap(&[&boot]);
        let node = smol::block_on(dhtmeet_smol::NodeHandle::start(member_config(
            310,
            boot.local_addr(),
        )))
        .expect("smol member starts");
        let until = Instant::now() + SETUP_LIMIT;
        while !smol::block_on(node.health()).is_some_and(|h| h.dht_ready) {
            assert!(
                Instant::now() < until,
                "the smol node's DHT never bootstrapped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let events = node.events();
        while events.try_recv().is_ok() {}
        let heap = settled_heap(&[&boot]) - base;
        let _ = smol::block_on(node.shutdown());
        heap
    };
    // A meeting of n members holds n meeting states and n(n - 1) peer sessions.
    let alone = meeting_heap(1, 400, &boot);
    let (n, sessions) = (4, 12);
    let mesh = meeting_heap(n, 500, &boot);
    let per_peer = (mesh - n as isize * alone) / sessions;
    eprintln!(
        "memory: an idle node (DHT bootstrapped, no meeting) holds {} KiB of heap on std, {} \
         KiB on smol; joining a meeting alone adds {} KiB; each connected peer adds {} KiB \
         (a full mesh of {n}: {} KiB over {sessions} sessions)",
        idle / 1024,
        smol_idle / 1024,
        alone / 1024,
        per_peer / 1024,
        mesh / 1024,
    );
    let _ = boot.shutdown();
}

criterion_group!(benches, memory, throughput);
criterion_main!(benches);
