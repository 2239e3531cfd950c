//! The pool of extra sockets (`SocketCommand`) on both runtimes, over real loopback
//! sockets: a machine asked for N pool sockets gets N distinct ports beside its node
//! socket, a datagram naming a pool socket leaves from that port (with a TTL too), a
//! datagram arriving on a pool socket reaches the machine with that socket's address,
//! `Close` frees the port, dropping the driver frees them all, and asking beyond the
//! bound of 256 gets failures, never a panic. A small test machine (`Prober`) asks and
//! records; the node (through the policy both handles run) is checked to get its pool.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::wire::{Message, TransactionId, binding_request};
use dhtmeet_core::{MAX_POOL_SOCKETS, Node, NodeConfig, SansIo, Seed, SocketCommand, Transmit};
use dhtmeet_std::DriverStats;
use dhtmeet_std::policy::Policy;

/// How long any one step may take before the test fails.
const LIMIT: Duration = Duration::from_secs(5);

/// A machine that asks for pool sockets and sends what the test queues, and records
/// what the runtime reports.
#[derive(Debug, Default)]
struct Prober {
    commands: VecDeque<SocketCommand>,
    transmits: VecDeque<Transmit>,
    opened: Vec<SocketAddr>,
    failed: usize,
    /// (local, remote, bytes) of every datagram received.
    received: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// One per report, so that a run can stop when the test has what it waits for.
    notes: VecDeque<()>,
}

impl SansIo for Prober {
    type Event = ();

    fn handle_datagram(&mut self, _: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        self.received.push((local, remote, d.to_vec()));
        self.notes.push_back(());
    }

    fn handle_timeout(&mut self, _: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<()> {
        self.notes.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }

    fn handle_socket_opened(&mut self, _: Instant, local: SocketAddr) {
        self.opened.push(local);
        self.notes.push_back(());
    }

    fn handle_socket_failed(&mut self, _: Instant) {
        self.failed += 1;
        self.notes.push_back(());
    }
}

/// A driver of either runtime, behind one blocking face.
enum Driver<M: SansIo> {
    Std(dhtmeet_std::Driver<M>),
    Smol(dhtmeet_smol::Driver<M>),
}

impl<M: SansIo> Driver<M> {
    fn new(smol: bool, machine: M) -> Driver<M> {
        Driver::on(UdpSocket::bind("127.0.0.1:0").unwrap(), smol, machine)
    }

    fn on(socket: UdpSocket, smol: bool, machine: M) -> Driver<M> {
        if smol {
            Driver::Smol(dhtmeet_smol::Driver::new(socket, machine).unwrap())
        } else {
            Driver::Std(dhtmeet_std::Driver::new(socket, machine).unwrap())
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Driver::Std(_) => "std",
            Driver::Smol(_) => "smol",
        }
    }

    fn local_addr(&self) -> SocketAddr {
        match self {
            Driver::Std(d) => d.local_addr(),
            Driver::Smol(d) => d.local_addr(),
        }
    }

    fn machine(&self) -> &M {
        match self {
            Driver::Std(d) => d.machine(),
            Driver::Smol(d) => d.machine(),
        }
    }

    fn machine_mut(&mut self) -> &mut M {
        match self {
            Driver::Std(d) => d.machine_mut(),
            Driver::Smol(d) => d.machine_mut(),
        }
    }

    fn pool_sockets(&self) -> usize {
        match self {
            Driver::Std(d) => d.pool_sockets(),
            Driver::Smol(d) => d.pool_sockets(),
        }
    }

    fn stats(&self) -> DriverStats {
        match self {
            Driver::Std(d) => d.stats(),
            Driver::Smol(d) => d.stats(),
        }
    }

    /// Runs until `done` holds after an event (true) or for `limit` (false).
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&M) -> bool) -> bool {
        let deadline = Some(Instant::now() + limit);
        let on_event = |m: &mut M, _| {
            if done(m) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let ran = match self {
            Driver::Std(d) => d.run(deadline, on_event),
            Driver::Smol(d) => smol::block_on(d.run(deadline, on_event)),
        };
        ran.unwrap().is_some()
    }

    /// Runs for `time` (the queued transmits and commands are taken at once).
    fn run_for(&mut self, time: Duration) {
        self.run_until(time, |_| false);
    }
}

/// A prober on each runtime that asked for and got `count` pool sockets.
fn with_pool(count: u16) -> Vec<Driver<Prober>> {
    [false, true]
        .into_iter()
        .map(|smol| {
            let mut driver = Driver::new(smol, Prober::default());
            driver
                .machine_mut()
                .commands
                .push_back(SocketCommand::Open { count });
            let opened =
                driver.run_until(LIMIT, |m| m.opened.len() + m.failed == usize::from(count));
            assert!(opened, "{}: every socket reported", driver.name());
            assert_eq!(driver.machine().failed, 0, "{}", driver.name());
            driver
        })
        .collect()
}

fn port_in_use(port: u16) -> bool {
    matches!(
        UdpSocket::bind(("127.0.0.1", port)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse
    )
}

fn test_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    socket
}

#[test]
fn pool_sockets_open_on_distinct_ports_beside_the_node_socket() {
    for driver in with_pool(8) {
        let name = driver.name();
        let node = driver.local_addr();
        let opened = &driver.machine().opened;
        let ports: BTreeSet<u16> = opened.iter().map(|a| a.port()).collect();
        assert_eq!(ports.len(), 8, "{name}: distinct ports {opened:?}");
        assert!(!ports.contains(&node.port()), "{name}");
        assert!(opened.iter().all(|a| a.ip() == node.ip()), "{name}");
        assert!(ports.iter().all(|&p| port_in_use(p)), "{name}: bound");
        assert_eq!(driver.pool_sockets(), 8, "{name}");
    }
}

#[test]
fn a_datagram_naming_a_pool_socket_leaves_from_its_port() {
    for mut driver in with_pool(3) {
        let name = driver.name();
        let peer = test_socket();
        let to = peer.local_addr().unwrap();
        let ports: Vec<u16> = driver.machine().opened.iter().map(|a| a.port()).collect();
        let unknown = (1..u16::MAX)
            .map(|p| p.wrapping_add(ports[0]))
            .find(|p| !ports.contains(p) && *p != driver.local_addr().port() && *p != 0)
            .unwrap();
        let transmits = &mut driver.machine_mut().transmits;
        for (source_port, ttl, contents) in [
            (Some(unknown), None, b"nowhere".to_vec()),
            (Some(ports[1]), None, b"one".to_vec()),
            (Some(ports[2]), Some(1), b"two, ttl 1".to_vec()),
            (None, Some(2), b"node, ttl 2".to_vec()),
        ] {
            transmits.push_back(Transmit {
                destination: to,
                contents,
                source_port,
                ttl,
            });
        }
        driver.run_for(Duration::from_millis(50));
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        for _ in 0..3 {
            let (len, from) = peer.recv_from(&mut buf).expect(name);
            got.push((from.port(), buf[..len].to_vec()));
        }
        let node_port = driver.local_addr().port();
        assert_eq!(
            got,
            vec![
                (ports[1], b"one".to_vec()),
                (ports[2], b"two, ttl 1".to_vec()),
                (node_port, b"node, ttl 2".to_vec()),
            ],
            "{name}"
        );
        let stats = driver.stats();
        assert_eq!(stats.no_pool_socket, 1, "{name}: the unknown port");
        assert_eq!(stats.sent, 3, "{name}");
        assert_eq!(stats.send_errors, 0, "{name}");
    }
}

#[test]
fn a_datagram_arriving_on_a_pool_socket_reaches_the_machine_with_its_address() {
    for mut driver in with_pool(2) {
        let name = driver.name();
        let peer = test_socket();
        let from = peer.local_addr().unwrap();
        let pool = driver.machine().opened.clone();
        peer.send_to(b"to pool 0", pool[0]).unwrap();
        peer.send_to(b"to pool 1", pool[1]).unwrap();
        peer.send_to(b"to node", driver.local_addr()).unwrap();
        assert!(
            driver.run_until(LIMIT, |m| m.received.len() == 3),
            "{name}: all three arrived"
        );
        let mut got = driver.machine().received.clone();
        got.sort();
        let mut want = vec![
            (pool[0], from, b"to pool 0".to_vec()),
            (pool[1], from, b"to pool 1".to_vec()),
            (driver.local_addr(), from, b"to node".to_vec()),
        ];
        want.sort();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_busy_pool_socket_does_not_starve_the_others() {
    for mut driver in with_pool(2) {
        let name = driver.name();
        let pool = driver.machine().opened.clone();
        // The first socket never runs dry while the test waits for the second.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = {
            let (stop, busy) = (stop.clone(), pool[0]);
            std::thread::spawn(move || {
                let peer = test_socket();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for _ in 0..dhtmeet_std::MAX_READ_BATCH {
                        let _ = peer.send_to(b"busy", busy);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let wait = driver.run_until(LIMIT, |m| m.received.len() > dhtmeet_std::MAX_READ_BATCH);
        assert!(wait, "{name}: the busy socket is read");
        test_socket().send_to(b"quiet", pool[1]).unwrap();
        let quiet = driver.run_until(LIMIT, |m| m.received.iter().any(|r| r.0 == pool[1]));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flood.join().unwrap();
        assert!(quiet, "{name}: the quiet socket was read");
    }
}

#[test]
fn closing_a_pool_socket_frees_its_port() {
    for mut driver in with_pool(2) {
        let name = driver.name();
        let ports: Vec<u16> = driver.machine().opened.iter().map(|a| a.port()).collect();
        driver
            .machine_mut()
            .commands
            .push_back(SocketCommand::Close { port: ports[0] });
        driver.run_for(Duration::from_millis(20));
        assert_eq!(driver.pool_sockets(), 1, "{name}");
        assert!(!port_in_use(ports[0]), "{name}: closed");
        assert!(port_in_use(ports[1]), "{name}: the other stays open");
    }
}

#[test]
fn dropping_the_driver_closes_every_pool_socket() {
    for driver in with_pool(4) {
        let name = driver.name();
        let ports: Vec<u16> = driver.machine().opened.iter().map(|a| a.port()).collect();
        assert!(ports.iter().all(|&p| port_in_use(p)), "{name}");
        drop(driver);
        assert!(ports.iter().all(|&p| !port_in_use(p)), "{name}: all closed");
    }
}

#[test]
fn asking_beyond_the_bound_gets_failures_not_a_panic() {
    for smol in [false, true] {
        let mut driver = Driver::new(smol, Prober::default());
        let name = driver.name();
        let asked = MAX_POOL_SOCKETS + 44;
        let commands = &mut driver.machine_mut().commands;
        commands.push_back(SocketCommand::Open {
            count: u16::try_from(asked).unwrap(),
        });
        commands.push_back(SocketCommand::Open { count: 1 });
        assert!(
            driver.run_until(LIMIT, |m| m.opened.len() + m.failed == asked + 1),
            "{name}: every socket reported"
        );
        assert_eq!(driver.machine().opened.len(), MAX_POOL_SOCKETS, "{name}");
        assert_eq!(driver.machine().failed, 45, "{name}");
        assert_eq!(driver.pool_sockets(), MAX_POOL_SOCKETS, "{name}");
    }
}

/// The default node socket is dual-stack (`[::]:0`, `IPV6_V6ONLY` off): its pool
/// sockets are too, so they send to and hear from IPv4 peers, with an IPv4 TTL.
#[test]
fn a_dual_stack_node_socket_gets_dual_stack_pool_sockets() {
    for smol in [false, true] {
        let socket = dhtmeet_std::bind(None).unwrap();
        if socket.local_addr().unwrap().is_ipv4() {
            eprintln!("no IPv6 on this machine: skipped");
            return;
        }
        let mut driver = Driver::on(socket, smol, Prober::default());
        let name = driver.name();
        driver
            .machine_mut()
            .commands
            .push_back(SocketCommand::Open { count: 1 });
        assert!(driver.run_until(LIMIT, |m| m.opened.len() == 1), "{name}");
        let pool = driver.machine().opened[0];
        assert!(
            pool.is_ipv6() && pool.ip().is_unspecified(),
            "{name}: {pool}"
        );
        let peer = test_socket();
        let to = peer.local_addr().unwrap();
        driver.machine_mut().transmits.push_back(Transmit {
            destination: to,
            contents: b"v4 from the pool".to_vec(),
            source_port: Some(pool.port()),
            ttl: Some(3),
        });
        driver.run_for(Duration::from_millis(20));
        let mut buf = [0u8; 64];
        let (len, from) = peer.recv_from(&mut buf).expect(name);
        assert_eq!(&buf[..len], b"v4 from the pool", "{name}");
        assert_eq!(from.port(), pool.port(), "{name}");
        peer.send_to(b"v4 to the pool", ("127.0.0.1", pool.port()))
            .unwrap();
        assert!(
            driver.run_until(LIMIT, |m| !m.received.is_empty()),
            "{name}"
        );
        let (local, remote, _) = driver.machine().received[0].clone();
        assert_eq!((local, remote), (pool, to), "{name}: canonical IPv4 remote");
    }
}

fn node_of(driver: &mut Driver<Recorder<Policy>>) -> &mut Node {
    driver.machine_mut().inner.node_mut()
}

/// A machine around another that also records the pool sockets reported to it.
struct Recorder<M> {
    inner: M,
    opened: Vec<SocketAddr>,
}

impl<M: SansIo> SansIo for Recorder<M> {
    type Event = M::Event;

    fn handle_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        self.inner.handle_datagram(now, local, remote, d);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.inner.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<M::Event> {
        self.inner.poll_event()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.inner.poll_socket_command()
    }

    fn handle_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        self.opened.push(local);
        self.inner.handle_socket_opened(now, local);
    }

    fn handle_socket_failed(&mut self, now: Instant) {
        self.inner.handle_socket_failed(now);
    }
}

/// The node, run by the policy both handles use: its pool requests reach the runtime
/// and come back, a STUN request arriving on a pool socket is answered, and a closed
/// one is closed.
#[test]
fn a_node_gets_its_pool_sockets_and_hears_on_them() {
    for smol in [false, true] {
        let now = Instant::now();
        let node = Node::new(now, NodeConfig::new(Seed::from_u64(14))).unwrap();
        let policy = Recorder {
            inner: Policy::new(node, 16, false, now),
            opened: Vec::new(),
        };
        let mut driver = Driver::new(smol, policy);
        let name = driver.name();
        assert_eq!(node_of(&mut driver).open_pool_sockets(now, 5), 5, "{name}");
        driver.run_for(Duration::from_millis(50));
        assert_eq!(node_of(&mut driver).pool_sockets(), 5, "{name}");
        assert_eq!(driver.pool_sockets(), 5, "{name}");
        let opened = driver.machine().opened.clone();
        assert_eq!(opened.len(), 5, "{name}");

        // A Binding request to a pool port is answered by the node's STUN responder.
        // Which socket the answer leaves from is the responder's choice: today its
        // replies name no pool socket, so the node's own socket answers.
        let peer = test_socket();
        let id = TransactionId([7; 12]);
        peer.send_to(&binding_request(id), opened[3]).unwrap();
        driver.run_for(Duration::from_millis(100));
        let mut buf = [0u8; 512];
        let (len, _) = peer.recv_from(&mut buf).expect(name);
        let answer = Message::decode(&buf[..len]).unwrap();
        assert_eq!(answer.transaction_id(), id, "{name}");
        assert_eq!(
            answer.xor_mapped_address(),
            Some(peer.local_addr().unwrap()),
            "{name}"
        );

        node_of(&mut driver).close_pool_socket(Instant::now(), opened[3].port());
        driver.run_for(Duration::from_millis(20));
        assert_eq!(driver.pool_sockets(), 4, "{name}");
        assert!(!port_in_use(opened[3].port()), "{name}: closed");
    }
}
