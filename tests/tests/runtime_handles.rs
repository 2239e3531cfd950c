//! Meetings of 2 to 10 members on real loopback sockets through the embedder API of
//! both runtimes (`dhtmeet_std::NodeHandle` on a thread, `dhtmeet_smol::NodeHandle` as a
//! task), mixed in one meeting: every member connects to every other, every message and
//! a multi-megabyte file arrive intact (SHA-256), leaving is seen by the others, and a
//! shut-down node frees its socket.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dhtmeet_core::PeerGone;
use dhtmeet_core::meeting::code;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::webrtc::SendError;
use dhtmeet_core::{Event, Health, Seed};
use sha2::{Digest, Sha256};

/// One member, on either runtime, behind one blocking face for the test.
enum Member {
    Std(dhtmeet_std::NodeHandle),
    Smol(dhtmeet_smol::NodeHandle, smol::channel::Receiver<Event>),
}

impl Member {
    fn start(kind: usize, seed: u64, boot: SocketAddr) -> Member {
        Member::start_with_queue(kind, seed, boot, dhtmeet_std::Config::default().event_queue)
    }

    /// Like [`Member::start`], with room for `event_queue` events in the application's
    /// queue.
    fn start_with_queue(kind: usize, seed: u64, boot: SocketAddr, event_queue: usize) -> Member {
        let boot = boot.to_string();
        let mut config = dhtmeet_std::Config::private(&[&boot], &[&boot]);
        config.listen = Some("127.0.0.1:0".parse().unwrap());
        config.seed = Some(Seed::from_u64(seed));
        config.event_queue = event_queue;
        if kind % 2 == 0 {
            Member::Std(dhtmeet_std::NodeHandle::start(config).unwrap())
        } else {
            let h = smol::block_on(dhtmeet_smol::NodeHandle::start(config)).unwrap();
            let events = h.events();
            Member::Smol(h, events)
        }
    }

    fn join(&self, code: &str) -> MemberId {
        match self {
            Member::Std(h) => h.join(code).unwrap().0,
            Member::Smol(h, _) => smol::block_on(h.join(code)).unwrap().0,
        }
    }

    fn next_event(&self, until: Instant) -> Option<Event> {
        let left = until.saturating_duration_since(Instant::now());
        match self {
            Member::Std(h) => h.next_event(left),
            Member::Smol(_, events) => smol::block_on(async {
                futures_lite::future::or(async { events.recv().await.ok() }, async {
                    smol::Timer::after(left).await;
                    None
                })
                .await
            }),
        }
    }

    fn send(&self, to: &MemberId, data: &[u8]) -> Result<(), SendError> {
        match self {
            Member::Std(h) => h.send(to, data),
            Member::Smol(h, _) => smol::block_on(h.send(to, data)),
        }
    }

    fn broadcast(&self, data: &[u8]) -> Vec<MemberId> {
        match self {
            Member::Std(h) => h.broadcast(data),
            Member::Smol(h, _) => smol::block_on(h.broadcast(data)),
        }
    }

    fn health(&self) -> Health {
        match self {
            Member::Std(h) => h.health(),
            Member::Smol(h, _) => smol::block_on(h.health()),
        }
        .expect("node running")
    }

    fn local_addr(&self) -> SocketAddr {
        match self {
            Member::Std(h) => h.local_addr(),
            Member::Smol(h, _) => h.local_addr(),
        }
    }

    fn shutdown(self) {
        match self {
            Member::Std(h) => h.shutdown().unwrap(),
            Member::Smol(h, _) => smol::block_on(h.shutdown()).unwrap(),
        }
    }
}

/// A DHT node that is also the STUN server (every node answers Binding requests).
fn bootstrap_node() -> dhtmeet_std::NodeHandle {
    let mut config = dhtmeet_std::Config::private(&[], &[]);
    config.listen = Some("127.0.0.1:0".parse().unwrap());
    config.seed = Some(Seed::from_u64(1));
    dhtmeet_std::NodeHandle::start(config).unwrap()
}

/// What one member saw.
#[derive(Default)]
struct Seen {
    connected: BTreeSet<MemberId>,
    /// Messages per sender, in arrival order.
    messages: BTreeMap<MemberId, Vec<Vec<u8>>>,
    left: BTreeSet<MemberId>,
}

impl Seen {
    fn record(&mut self, event: Event) {
        match event {
            Event::PeerConnected { member, .. } => {
                self.connected.insert(member);
            }
            Event::Message { member, data } => self.messages.entry(member).or_default().push(data),
            Event::PeerDisconnected {
                member,
                reason: PeerGone::Left,
            } => {
                self.left.insert(member);
            }
            _ => {}
        }
    }
}

/// Runs until every member saw `done`, or panics at `until` with what was missing.
fn pump(
    members: &[Member],
    seen: &mut [Seen],
    until: Instant,
    done: impl Fn(usize, &Seen) -> bool,
) {
    loop {
        if (0..members.len()).all(|i| done(i, &seen[i])) {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out; per member: {:?}",
            seen.iter()
                .map(|s| (
                    s.connected.len(),
                    s.messages.values().map(Vec::len).sum::<usize>()
                ))
                .collect::<Vec<_>>()
        );
        for (i, m) in members.iter().enumerate() {
            // Take what is there, without blocking long on one member.
            while let Some(e) = m.next_event(Instant::now() + Duration::from_millis(5)) {
                seen[i].record(e);
            }
        }
    }
}

fn meeting(n: usize, file_len: usize) {
    let boot = bootstrap_node();
    let code = code::generate(&mut Seed::from_u64(n as u64 * 1000).rng());
    let members: Vec<Member> = (0..n)
        .map(|i| Member::start(i, 100 + i as u64, boot.local_addr()))
        .collect();
    let ids: Vec<MemberId> = members.iter().map(|m| m.join(&code)).collect();
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let started = Instant::now();
    pump(
        &members,
        &mut seen,
        started + Duration::from_secs(90),
        |_, s| s.connected.len() == n - 1,
    );
    eprintln!("{n} members: full mesh in {:?}", started.elapsed());

    // Every member greets everyone; member 0 sends a file to each of the others.
    for (i, m) in members.iter().enumerate() {
        assert!(m.broadcast(format!("hello from {i}").as_bytes()).is_empty());
    }
    // Not compressible, not periodic: an xorshift stream.
    let file: Vec<u8> = {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ file_len as u64;
        (0..file_len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    };
    let digest = Sha256::digest(&file);
    for to in &ids[1..] {
        // 256 KiB pieces: `send` waits for room when the queue is full.
        for piece in file.chunks(256 * 1024) {
            members[0].send(to, piece).unwrap();
        }
    }
    let pieces = file_len.div_ceil(256 * 1024);
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(90),
        |i, s| {
            ids.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .all(|(j, id)| {
                    let want = if i != 0 && j == 0 { 1 + pieces } else { 1 };
                    s.messages.get(id).map_or(0, Vec::len) >= want
                })
        },
    );
    for (i, s) in seen.iter().enumerate() {
        for (j, id) in ids.iter().enumerate().filter(|&(j, _)| j != i) {
            let got = &s.messages[id];
            assert_eq!(got[0], format!("hello from {j}").as_bytes(), "{j} → {i}");
            if j == 0 {
                let received: Vec<u8> = got[1..].concat();
                assert_eq!(received.len(), file_len, "file 0 → {i}");
                assert_eq!(Sha256::digest(&received), digest, "file 0 → {i}");
            } else {
                assert_eq!(got.len(), 1, "{j} → {i}: exactly once");
            }
        }
    }
    let health = members[0].health();
    assert_eq!(health.peers.len(), n - 1);
    assert!(health.stats.bytes_sent >= (file_len * (n - 1)) as u64);

    // Member 1 leaves; everyone else sees it go.
    let leaver = members.into_iter().collect::<Vec<_>>();
    let mut rest = leaver;
    let gone = rest.remove(1);
    let gone_id = ids[1];
    gone.shutdown();
    let mut rest_seen: Vec<Seen> = (0..rest.len()).map(|_| Seen::default()).collect();
    pump(
        &rest,
        &mut rest_seen,
        Instant::now() + Duration::from_secs(20),
        |_, s| s.left.contains(&gone_id),
    );
    for m in rest {
        m.shutdown();
    }
    boot.shutdown().unwrap();
}

#[test]
fn two_members_on_different_runtimes_exchange_messages_and_a_file() {
    meeting(2, 3 * 1024 * 1024 + 17);
}

#[test]
fn five_members_on_mixed_runtimes_form_a_full_mesh() {
    meeting(5, 1024 * 1024);
}

#[test]
fn ten_members_on_mixed_runtimes_form_a_full_mesh() {
    meeting(10, 300 * 1024);
}

#[test]
fn dropping_a_smol_handle_leaves_cleanly_and_frees_the_socket() {
    let boot = bootstrap_node();
    let code = code::generate(&mut Seed::from_u64(5).rng());
    let a = Member::start(0, 11, boot.local_addr());
    let b = Member::start(1, 12, boot.local_addr());
    let _ = a.join(&code);
    let b_id = b.join(&code);
    let mut seen = vec![Seen::default(), Seen::default()];
    let members = vec![a, b];
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(60),
        |_, s| s.connected.len() == 1,
    );
    let mut members = members;
    let Member::Smol(b, events) = members.pop().unwrap() else {
        unreachable!("member 1 runs on smol")
    };
    let b_addr = b.local_addr();
    drop(events);
    drop(b); // No await: the task leaves in the background.
    let mut a_seen = vec![Seen::default()];
    pump(
        &members,
        &mut a_seen,
        Instant::now() + Duration::from_secs(20),
        |_, s| s.left.contains(&b_id),
    );
    // The socket is closed once the task ends: the port can be bound again.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match std::net::UdpSocket::bind(b_addr) {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < until, "port still held: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    members.pop().unwrap().shutdown();
    boot.shutdown().unwrap();
}

#[test]
fn handles_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<dhtmeet_std::NodeHandle>();
    shareable::<dhtmeet_smol::NodeHandle>();
}

#[test]
fn two_members_meet_over_ipv6_loopback() {
    let mut boot_config = dhtmeet_std::Config::private(&[], &[]);
    boot_config.listen = Some("[::1]:0".parse().unwrap());
    let Ok(boot) = dhtmeet_std::NodeHandle::start(boot_config) else {
        dhtmeet_tests::skip_loudly("no IPv6 loopback on this machine; the IPv6 test did not run");
        assert!(std::env::var("CI").is_err(), "CI machines have ::1");
        return;
    };
    let b = boot.local_addr().to_string();
    let start = |seed: u64, smol_runtime: bool| {
        let mut config = dhtmeet_std::Config::private(&[&b], &[&b]);
        config.listen = Some("[::1]:0".parse().unwrap());
        config.seed = Some(Seed::from_u64(seed));
        if smol_runtime {
            let h = smol::block_on(dhtmeet_smol::NodeHandle::start(config)).unwrap();
            let events = h.events();
            Member::Smol(h, events)
        } else {
            Member::Std(dhtmeet_std::NodeHandle::start(config).unwrap())
        }
    };
    let members = vec![start(41, false), start(42, true)];
    let code = code::generate(&mut Seed::from_u64(8).rng());
    let ids: Vec<MemberId> = members.iter().map(|m| m.join(&code)).collect();
    let mut seen = vec![Seen::default(), Seen::default()];
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(60),
        |_, s| s.connected.len() == 1,
    );
    members[0].send(&ids[1], b"over IPv6").unwrap();
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(20),
        |i, s| {
            i == 0
                || s.messages
                    .get(&ids[0])
                    .is_some_and(|m| m[0] == b"over IPv6")
        },
    );
    assert!(members[1].health().peers.len() == 1);
    for m in members {
        m.shutdown();
    }
    boot.shutdown().unwrap();
}

#[test]
fn a_std_shutdown_joins_the_thread_and_frees_the_socket() {
    let boot = bootstrap_node();
    let a = Member::start(0, 21, boot.local_addr());
    let addr = a.local_addr();
    a.shutdown();
    std::net::UdpSocket::bind(addr).expect("the port is free after shutdown");
    boot.shutdown().unwrap();
}

/// After `close` (through a shared reference) every call says the node stopped: join
/// answers `Stopped` (not "already joined"), send `Closed`, health `None`, and the event
/// stream ends once drained.
#[test]
fn a_closed_std_handle_says_stopped_to_every_call() {
    let boot = bootstrap_node();
    let Member::Std(a) = Member::start(0, 41, boot.local_addr()) else {
        unreachable!("kind 0 is std")
    };
    a.close().unwrap();
    let code = code::generate(&mut Seed::from_u64(41).rng());
    assert_eq!(a.join(&code).unwrap_err(), dhtmeet_core::JoinError::Stopped);
    assert_eq!(a.send(&MemberId([1; 8]), b"x"), Err(SendError::Closed));
    assert!(a.health().is_none());
    // Events from before the close can still be read; then the stream ends (a live
    // node would keep it open for as long as the timeout).
    let queued = std::iter::from_fn(|| a.next_event(Duration::from_secs(5))).take(2000);
    assert!(queued.count() < 2000, "the event stream never ended");
    a.close().unwrap();
    boot.shutdown().unwrap();
}

#[test]
fn sending_to_a_stranger_is_refused_not_queued() {
    let boot = bootstrap_node();
    let a = Member::start(0, 31, boot.local_addr());
    let b = Member::start(1, 32, boot.local_addr());
    let stranger = MemberId([9; 8]);
    assert_eq!(a.send(&stranger, b"x"), Err(SendError::Closed));
    assert_eq!(b.send(&stranger, b"x"), Err(SendError::Closed));
    let _ = a.join(&code::generate(&mut Seed::from_u64(6).rng()));
    assert!(a.send(&stranger, b"x").is_err());
    a.shutdown();
    b.shutdown();
    boot.shutdown().unwrap();
}

/// Sends a KRPC `ping` (BEP 5) to `node` and waits up to `patience` for the answer.
fn dht_ping_answered(node: SocketAddr, patience: Duration) -> bool {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + patience;
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        socket
            .send_to(
                b"d1:ad2:id20:slow-reader-test-001e1:q4:ping1:t2:pg1:y1:qe",
                node,
            )
            .unwrap();
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let answer = &buf[..len];
            if from == node && answer.windows(6).any(|w| w == b"1:y1:r") {
                return true;
            }
        }
    }
    false
}

/// A member whose application stops reading events (a queue of 16, and 20 messages
/// arrive) keeps answering the network: DHT pings during the stall, the session to the
/// other member; afterwards every message is there, in order.
fn a_slow_reader_never_stalls_the_node(slow_kind: usize) {
    let boot = bootstrap_node();
    let code = code::generate(&mut Seed::from_u64(60 + slow_kind as u64).rng());
    let slow = Member::start_with_queue(slow_kind, 61, boot.local_addr(), 16);
    let other = Member::start(slow_kind + 1, 62, boot.local_addr());
    let slow_id = slow.join(&code);
    let _ = other.join(&code);
    let members = vec![slow, other];
    let mut seen = vec![Seen::default(), Seen::default()];
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(60),
        |_, s| s.connected.len() == 1,
    );
    // From here on the slow member's application reads nothing for five seconds.
    let stall = Instant::now();
    let sent: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("during the stall {i}").into_bytes())
        .collect();
    for m in &sent {
        members[1].send(&slow_id, m).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        dht_ping_answered(members[0].local_addr(), Duration::from_secs(2)),
        "a node whose application does not read its events must still answer DHT pings"
    );
    assert_eq!(
        members[0].health().peers.len(),
        1,
        "commands are still served"
    );
    // Keep the other member's events read; the session must live through the stall.
    while stall.elapsed() < Duration::from_secs(5) {
        while let Some(e) = members[1].next_event(Instant::now() + Duration::from_millis(50)) {
            seen[1].record(e);
        }
    }
    assert!(dht_ping_answered(
        members[0].local_addr(),
        Duration::from_secs(2)
    ));
    assert!(seen[1].left.is_empty(), "the session survived the stall");
    let other_id = *seen[0].connected.iter().next().expect("connected");
    let got = |s: &Seen| s.messages.get(&other_id).map_or(0, Vec::len);
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(20),
        |i, s| i == 1 || got(s) == sent.len(),
    );
    members[1].send(&slow_id, b"after the stall").unwrap();
    pump(
        &members,
        &mut seen,
        Instant::now() + Duration::from_secs(20),
        |i, s| i == 1 || got(s) == sent.len() + 1,
    );
    let mut want = sent;
    want.push(b"after the stall".to_vec());
    assert_eq!(seen[0].messages[&other_id], want, "every message, in order");
    for m in members {
        m.shutdown();
    }
    boot.shutdown().unwrap();
}

#[test]
fn a_slow_std_reader_never_stalls_the_node() {
    a_slow_reader_never_stalls_the_node(0);
}

#[test]
fn a_slow_smol_reader_never_stalls_the_node() {
    a_slow_reader_never_stalls_the_node(1);
}
