//! WebRTC sessions in memory: setup round trips (virtual time, 50 ms one-way), data-
//! channel throughput of two whole `Node`s (meeting, delivery acks, DHT beside) and of
//! two bare `Session`s beside a bare str0m pair in the same run, and memory per session.

use std::alloc::System;
use std::collections::VecDeque;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dhtmeet_core::meeting::code;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::webrtc::{DtlsChoice, Session, SessionConfig, SessionEvent};
use dhtmeet_core::{Event as NodeEvent, Node, NodeConfig, SansIo, Seed};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use str0m::channel::{ChannelConfig, ChannelId, Reliability, SctpInitData};
use str0m::config::DtlsVersion;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// Counts heap bytes, to measure what a session holds.
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes currently live.
fn live() -> isize {
    let s = ALLOC.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

const A: ([u8; 4], u16) = ([10, 0, 0, 1], 5000);
const B: ([u8; 4], u16) = ([10, 0, 0, 2], 6000);

fn addrs() -> [SocketAddr; 2] {
    [SocketAddr::from(A), SocketAddr::from(B)]
}

/// Two sessions that have exchanged parameters at `now`.
fn session_pair(config: &SessionConfig, now: Instant, seed: u64) -> [Session; 2] {
    let [a, b] = addrs();
    let root = Seed::from_u64(seed);
    let mut sa = Session::new(now, config.clone(), true, a, root.child("a")).unwrap();
    let mut sb = Session::new(now, config.clone(), false, b, root.child("b")).unwrap();
    let (pa, pb) = (sa.local_parameters().clone(), sb.local_parameters().clone());
    sa.set_remote(&pb).unwrap();
    sb.set_remote(&pa).unwrap();
    [sa, sb]
}

/// The virtual network between the machines at `addrs`: its clock, its one-way delay and
/// the datagrams on the wire. It outlives each `drive` call, so nothing in flight is lost
/// between transfers (an earlier version dropped them, and each transfer then began with
/// a 1 s SCTP retransmission timeout) and the clock never runs backwards.
struct Link<const N: usize> {
    now: Instant,
    one_way: Duration,
    addrs: [SocketAddr; N],
    /// (due, from, to, bytes), in order of sending (so of arrival: one delay for all).
    in_flight: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
}

impl<const N: usize> Link<N> {
    fn new(now: Instant, one_way: Duration, addrs: [SocketAddr; N]) -> Self {
        Link {
            now,
            one_way,
            addrs,
            in_flight: VecDeque::new(),
        }
    }

    /// Drives machine `i` at `addrs[i]` until `on_event` says so or `limit` of virtual
    /// time passes; returns the virtual time taken.
    fn drive<M: SansIo>(
        &mut self,
        m: &mut [M; N],
        limit: Duration,
        mut on_event: impl FnMut(usize, M::Event, &mut [M; N]) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        loop {
            let now = self.now;
            for i in 0..N {
                while let Some(t) = m[i].poll_transmit() {
                    self.in_flight.push_back((
                        now + self.one_way,
                        self.addrs[i],
                        t.destination,
                        t.contents,
                    ));
                }
                while let Some(e) = m[i].poll_event() {
                    if on_event(i, e, m) {
                        return Some(now - start);
                    }
                }
            }
            if now - start > limit {
                return None;
            }
            // Deliver what is due; with zero delay, everything in flight.
            if self.in_flight.front().is_some_and(|d| d.0 <= now) {
                while self.in_flight.front().is_some_and(|d| d.0 <= now) {
                    if let Some((_, from, to, bytes)) = self.in_flight.pop_front() {
                        if let Some(j) = self.addrs.iter().position(|a| *a == to) {
                            m[j].handle_datagram(now, to, from, &bytes);
                        }
                    }
                }
                continue;
            }
            let next = self
                .in_flight
                .front()
                .map(|d| d.0)
                .into_iter()
                .chain(m.iter().filter_map(|x| x.poll_timeout()))
                .min()?;
            self.now = now.max(next);
            for x in m.iter_mut() {
                if x.poll_timeout().is_some_and(|t| t <= self.now) {
                    x.handle_timeout(self.now);
                }
            }
        }
    }
}

/// Virtual time from exchanging parameters to the first message delivered.
fn setup_time(config: &SessionConfig, one_way: Duration) -> Duration {
    let start = Instant::now();
    let mut s = session_pair(config, start, 1);
    let mut link = Link::new(start, one_way, addrs());
    let mut sent = false;
    link.drive(&mut s, Duration::from_secs(30), |i, e, s| {
        match e {
            SessionEvent::Connected if i == 0 && !sent => {
                sent = true;
                s[0].send(b"hello").unwrap();
            }
            SessionEvent::Message(_) => return true,
            _ => {}
        }
        false
    })
    .expect("setup never completed")
}

fn setup(c: &mut Criterion) {
    let one_way = Duration::from_millis(50);
    for (dtls, snap) in [
        (DtlsChoice::Dtls12, false),
        (DtlsChoice::Dtls12, true),
        (DtlsChoice::Dtls13, false),
        (DtlsChoice::Dtls13, true),
    ] {
        let config = SessionConfig {
            dtls,
            snap,
            ..SessionConfig::default()
        };
        let t = setup_time(&config, one_way);
        println!(
            "setup at 50 ms one-way, {dtls:?} snap={snap}: first message after {:?} = {:.1} RTT",
            t,
            t.as_secs_f64() / (2.0 * one_way.as_secs_f64())
        );
    }
    let config = SessionConfig::default();
    c.bench_function("session_setup_cpu_in_memory", |b| {
        b.iter(|| black_box(setup_time(&config, Duration::ZERO)))
    });
}

// ---- throughput ----

const TRANSFER: usize = 16 * 1024 * 1024;
const MESSAGE: usize = 256 * 1024;

/// Two connected sessions at zero delay, and their link.
fn connected_sessions() -> ([Session; 2], Link<2>) {
    let start = Instant::now();
    let mut s = session_pair(&SessionConfig::default(), start, 2);
    let mut link = Link::new(start, Duration::ZERO, addrs());
    let mut up = 0;
    link.drive(&mut s, Duration::from_secs(30), |_, e, _| {
        up += usize::from(e == SessionEvent::Connected);
        up == 2
    })
    .expect("no connection");
    (s, link)
}

/// Sends `TRANSFER` bytes from A to B in `MESSAGE`-byte messages; returns the
/// bytes received and the virtual time the transfer took.
fn session_transfer(s: &mut [Session; 2], link: &mut Link<2>, message: &[u8]) -> (usize, Duration) {
    let count = TRANSFER / MESSAGE;
    let mut sent = 0;
    while sent < count && s[0].send(message).is_ok() {
        sent += 1;
    }
    let mut received = 0;
    let mut bytes = 0;
    let took = link
        .drive(s, Duration::from_secs(600), |i, e, s| {
            match e {
                SessionEvent::Message(m) if i == 1 => {
                    received += 1;
                    bytes += m.len();
                }
                SessionEvent::Writable if i == 0 => {
                    while sent < count && s[0].send(message).is_ok() {
                        sent += 1;
                    }
                }
                _ => {}
            }
            received == count
        })
        .expect("transfer stalled");
    (bytes, took)
}

/// A bare str0m endpoint with the same settings (direct API, DTLS 1.3, SNAP, a
/// pre-negotiated channel, 1 MiB send buffer), driven by the same kind of loop.
struct Bare {
    rtc: Rtc,
    out: VecDeque<Vec<u8>>,
    timeout: Instant,
    channel: ChannelId,
    open: bool,
    received: usize,
}

impl Bare {
    fn pair(now: Instant) -> [Bare; 2] {
        let [a, b] = addrs();
        let make = |controlling: bool, addr: SocketAddr| {
            let mut rtc = RtcConfig::new()
                .set_dtls_version(if controlling {
                    DtlsVersion::Dtls13
                } else {
                    DtlsVersion::Auto
                })
                .set_sctp_max_buffered_amount(1024 * 1024)
                .build(now);
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            let mut snap = SctpInitData::new();
            let init = snap.local_init_chunk().unwrap();
            (rtc, snap, init)
        };
        let (mut ra, mut snap_a, init_a) = make(true, a);
        let (mut rb, mut snap_b, init_b) = make(false, b);
        snap_a.set_remote_init_chunk(init_b);
        snap_b.set_remote_init_chunk(init_a);
        let creds_a = ra.direct_api().local_ice_credentials();
        let creds_b = rb.direct_api().local_ice_credentials();
        let fp_a = ra.direct_api().local_dtls_fingerprint().clone();
        let fp_b = rb.direct_api().local_dtls_fingerprint().clone();
        let setup = |rtc: &mut Rtc, controlling, remote, creds, fp, snap| {
            rtc.add_remote_candidate(Candidate::host(remote, "udp").unwrap());
            let mut api = rtc.direct_api();
            api.set_ice_controlling(controlling);
            api.set_remote_ice_credentials(creds);
            api.set_remote_fingerprint(fp);
            api.start_dtls(controlling).unwrap();
            api.start_sctp_with_snap(controlling, snap).unwrap();
            let id = api.create_data_channel(ChannelConfig {
                label: "bare".into(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: Some(0),
                protocol: String::new(),
            });
            rtc.handle_input(Input::Timeout(now)).unwrap();
            id
        };
        let ca = setup(&mut ra, true, b, creds_b, fp_b, snap_a);
        let cb = setup(&mut rb, false, a, creds_a, fp_a, snap_b);
        let mut pair = [ra, rb].map(|rtc| Bare {
            rtc,
            out: VecDeque::new(),
            timeout: now,
            channel: ca,
            open: false,
            received: 0,
        });
        pair[1].channel = cb;
        for p in &mut pair {
            p.drain();
        }
        pair
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => self.out.push_back(t.contents.into()),
                Output::Event(Event::ChannelOpen(..)) => self.open = true,
                Output::Event(Event::ChannelData(d)) => self.received += d.data.len(),
                Output::Event(_) => {}
            }
        }
    }

    /// Writes 64 KiB chunks while str0m takes them; `false` if it took none.
    fn write(&mut self, chunk: &[u8], left: &mut usize) -> bool {
        let mut any = false;
        while *left > 0 && self.open {
            let n = chunk.len().min(*left);
            let Some(mut ch) = self.rtc.channel(self.channel) else {
                break;
            };
            if !ch.write(true, &chunk[..n]).unwrap_or(false) {
                break;
            }
            *left -= n;
            any = true;
            self.drain();
        }
        any
    }
}

/// The bare pair moves `TRANSFER` bytes from A to B at zero delay.
fn bare_transfer(p: &mut [Bare; 2], chunk: &[u8]) -> usize {
    let addrs = addrs();
    let target = p[1].received + TRANSFER;
    let mut left = TRANSFER;
    let mut now = p[0].timeout.max(p[1].timeout);
    while p[1].received < target {
        p[0].write(chunk, &mut left);
        let mut moved = false;
        for i in 0..2 {
            while let Some(bytes) = p[i].out.pop_front() {
                moved = true;
                let input = Input::Receive(
                    now,
                    Receive::new(Protocol::Udp, addrs[i], addrs[1 - i], &bytes).unwrap(),
                );
                p[1 - i].rtc.handle_input(input).unwrap();
                p[1 - i].drain();
            }
        }
        if !moved {
            now = now.max(p[0].timeout.min(p[1].timeout));
            for e in p.iter_mut() {
                if e.timeout <= now {
                    e.rtc.handle_input(Input::Timeout(now)).unwrap();
                    e.drain();
                }
            }
        }
    }
    TRANSFER
}

fn connected_bare() -> [Bare; 2] {
    let mut p = Bare::pair(Instant::now());
    let addrs = addrs();
    let mut now = Instant::now();
    for _ in 0..100_000 {
        if p[0].open && p[1].open && p[0].rtc.is_connected() && p[1].rtc.is_connected() {
            return p;
        }
        let mut moved = false;
        for i in 0..2 {
            while let Some(bytes) = p[i].out.pop_front() {
                moved = true;
                let r = Receive::new(Protocol::Udp, addrs[i], addrs[1 - i], &bytes).unwrap();
                p[1 - i].rtc.handle_input(Input::Receive(now, r)).unwrap();
                p[1 - i].drain();
            }
        }
        if !moved {
            now = now.max(p[0].timeout.min(p[1].timeout));
            for e in p.iter_mut() {
                if e.timeout <= now {
                    e.rtc.handle_input(Input::Timeout(now)).unwrap();
                    e.drain();
                }
            }
        }
    }
    panic!("bare pair never connected");
}

// ---- whole nodes ----

/// Three whole `Node`s in memory at zero delay, on one `Link`: a DHT bootstrap node and
/// two members of one meeting.
struct Nodes {
    link: Link<3>,
    nodes: [Node; 3],
}

const BOOT: usize = 0;
const NA: usize = 1;
const NB: usize = 2;

impl Nodes {
    /// A bootstrap node and two members that have joined one code and connected; also
    /// returns B's member id as A knows it.
    fn meeting() -> (Nodes, MemberId) {
        let now = Instant::now();
        let addrs = [
            SocketAddr::from(([192, 0, 2, 1], 6881)),
            SocketAddr::from(A),
            SocketAddr::from(B),
        ];
        let node = |i: usize| {
            let mut config = NodeConfig::new(Seed::from_u64(40 + i as u64));
            if i != BOOT {
                if let Some(dht) = config.dht.as_mut() {
                    dht.bootstrap = vec![addrs[BOOT]];
                }
                config.local_addr = Some(addrs[i]);
            }
            Node::new(now, config).expect("valid node config")
        };
        let mut net = Nodes {
            link: Link::new(now, Duration::ZERO, addrs),
            nodes: [node(0), node(1), node(2)],
        };
        let mut ready = 0;
        net.link
            .drive(&mut net.nodes, Duration::from_secs(60), |i, e, _| {
                ready += usize::from(i != BOOT && matches!(e, NodeEvent::DhtReady { .. }));
                ready == 2
            })
            .expect("DHT never ready");
        let invitation = code::generate(&mut Seed::from_u64(7).rng());
        let now = net.link.now;
        for i in [NA, NB] {
            net.nodes[i].join(now, &invitation, false).expect("join");
        }
        let mut b_id = None;
        let mut connected = 0;
        net.link
            .drive(&mut net.nodes, Duration::from_secs(120), |i, e, _| {
                if let NodeEvent::PeerConnected { member, .. } = e {
                    connected += 1;
                    if i == NA {
                        b_id = Some(member);
                    }
                }
                connected == 2
            })
            .expect("members never connected");
        (net, b_id.expect("A saw B connect"))
    }
}

/// Sends `TRANSFER` bytes from node A to node B in `MESSAGE`-byte messages; returns
/// the bytes received and the virtual time taken.
fn node_transfer(net: &mut Nodes, to: &MemberId, message: &[u8]) -> (usize, Duration) {
    let count = TRANSFER / MESSAGE;
    let mut sent = 0;
    while sent < count && net.nodes[NA].send(to, message).is_ok() {
        sent += 1;
    }
    let mut received = 0;
    let mut bytes = 0;
    let took = net
        .link
        .drive(&mut net.nodes, Duration::from_secs(600), |i, e, nodes| {
            match e {
                NodeEvent::Message { data, .. } if i == NB => {
                    received += 1;
                    bytes += data.len();
                }
                NodeEvent::Writable { .. } if i == NA => {
                    while sent < count && nodes[NA].send(to, message).is_ok() {
                        sent += 1;
                    }
                }
                _ => {}
            }
            received == count
        })
        .expect("node transfer stalled");
    (bytes, took)
}

fn throughput(c: &mut Criterion) {
    let message = vec![0x5au8; MESSAGE];
    let chunk = vec![0xa5u8; 64 * 1024];

    let (mut ours, mut link) = connected_sessions();
    let mut bare = connected_bare();
    let (mut nodes, b_id) = Nodes::meeting();
    bare_transfer(&mut bare, &chunk);
    // At zero delay a transfer that never waits for a timer (a delayed SACK, a
    // retransmission) takes no virtual time but the session's 1 ms wakeups.
    let virtual_times = [
        session_transfer(&mut ours, &mut link, &message).1,
        session_transfer(&mut ours, &mut link, &message).1,
        node_transfer(&mut nodes, &b_id, &message).1,
        node_transfer(&mut nodes, &b_id, &message).1,
    ];
    println!(
        "virtual time of 16 MiB transfers at zero delay: Session {:?}, {:?}; Node {:?}, {:?}",
        virtual_times[0], virtual_times[1], virtual_times[2], virtual_times[3]
    );

    let mut group = c.benchmark_group("data_channel_16MiB");
    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(10);
    group.bench_function("node", |b| {
        b.iter(|| black_box(node_transfer(&mut nodes, &b_id, &message)))
    });
    group.bench_function("session", |b| {
        b.iter(|| black_box(session_transfer(&mut ours, &mut link, &message)))
    });
    group.bench_function("bare_str0m", |b| {
        b.iter(|| black_box(bare_transfer(&mut bare, &chunk)))
    });
    group.finish();

    // The ratios, from criterion's medians of this run.
    let median = |f: &str| dhtmeet_benches::median_ns("data_channel_16MiB", f);
    let mbps = |ns: f64| TRANSFER as f64 / (ns * 1e-9) / 1e6;
    if let (Some(node), Some(session), Some(bare)) =
        (median("node"), median("session"), median("bare_str0m"))
    {
        println!(
            "throughput in memory (medians): Node {:.0} MB/s, Session {:.0} MB/s, bare str0m \
             {:.0} MB/s; Node/bare {:.2}, Session/bare {:.2}",
            mbps(node),
            mbps(session),
            mbps(bare),
            bare / node,
            bare / session
        );
    }
}

fn memory(_c: &mut Criterion) {
    let before = live();
    let (s, _) = connected_sessions();
    let after = live();
    println!(
        "memory: size_of::<Session>() = {} B (of which str0m's Rtc {} B); two connected, idle \
         sessions hold {} KiB of heap, {} KiB each",
        std::mem::size_of::<Session>(),
        std::mem::size_of::<Rtc>(),
        (after - before) / 1024,
        (after - before) / 2048,
    );
    black_box(s);
}

criterion_group!(benches, memory, setup, throughput);
criterion_main!(benches);
