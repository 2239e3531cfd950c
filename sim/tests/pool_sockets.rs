//! Pool sockets (`SocketCommand`): a machine opens extra sockets, sends from them
//! through a symmetric NAT, each gets its own mapping, and replies come back to the
//! socket they were sent to.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{sa, test_seed};
use dhtmeet_core::{MAX_POOL_SOCKETS, SansIo, Seed, SocketCommand, Transmit};
use dhtmeet_sim::{Fate, HostId, HostSpec, NatPreset, Realm, Sim};

/// What the pool machine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PoolEvent {
    Opened(SocketAddr),
    Failed,
    Received {
        local: SocketAddr,
        remote: SocketAddr,
        payload: Vec<u8>,
    },
}

/// A machine that opens and closes pool sockets and sends from them when told, and
/// with `echo` sends every datagram back from the socket it arrived on.
#[derive(Default)]
struct PoolProbe {
    echo: bool,
    main_port: u16,
    out: VecDeque<Transmit>,
    commands: VecDeque<SocketCommand>,
    events: VecDeque<PoolEvent>,
}

impl PoolProbe {
    fn new(main_port: u16, echo: bool) -> Self {
        PoolProbe {
            echo,
            main_port,
            ..PoolProbe::default()
        }
    }

    fn send(&mut self, source_port: Option<u16>, to: SocketAddr, payload: &[u8]) {
        let mut t = Transmit::new(to, payload.to_vec());
        t.source_port = source_port;
        self.out.push_back(t);
    }
}

impl SansIo for PoolProbe {
    type Event = PoolEvent;

    fn handle_datagram(&mut self, _: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        if self.echo {
            let port = (local.port() != self.main_port).then_some(local.port());
            self.send(port, remote, d);
        }
        self.events.push_back(PoolEvent::Received {
            local,
            remote,
            payload: d.to_vec(),
        });
    }

    fn handle_timeout(&mut self, _: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<PoolEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }

    fn handle_socket_opened(&mut self, _: Instant, local: SocketAddr) {
        self.events.push_back(PoolEvent::Opened(local));
    }

    fn handle_socket_failed(&mut self, _: Instant) {
        self.events.push_back(PoolEvent::Failed);
    }
}

const SERVER: &str = "192.0.2.1:3478";
const LAN: &str = "192.168.1.10:4000";

/// A member behind `preset` and a public echo server.
fn setup(seed: u64, preset: NatPreset) -> (Sim<PoolProbe>, HostId, HostId) {
    let mut sim = Sim::new(Seed::from_u64(seed));
    let server = sim
        .add_host(
            HostSpec::new("server", Realm::Internet, sa(SERVER)),
            PoolProbe::new(3478, true),
        )
        .expect("valid host");
    let lan = preset
        .install(
            &mut sim,
            "member",
            Realm::Internet,
            "203.0.113.1".parse().expect("literal"),
            Default::default(),
        )
        .expect("valid preset");
    let member = sim
        .add_host(
            HostSpec::new("member", lan, sa(LAN)),
            PoolProbe::new(4000, false),
        )
        .expect("valid host");
    (sim, member, server)
}

fn open(sim: &mut Sim<PoolProbe>, host: HostId, count: u16) {
    sim.with_machine(host, |m, _| {
        m.commands.push_back(SocketCommand::Open { count })
    });
}

fn events(sim: &mut Sim<PoolProbe>, host: HostId) -> Vec<(Duration, PoolEvent)> {
    std::iter::from_fn(|| sim.poll_event())
        .filter(|e| e.host == host)
        .map(|e| (e.at, e.event))
        .collect()
}

fn opened(events: &[(Duration, PoolEvent)]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            PoolEvent::Opened(a) => Some(*a),
            _ => None,
        })
        .collect()
}

#[test]
fn pool_sockets_through_a_symmetric_nat_get_their_own_mappings_and_their_replies() {
    let seed = test_seed(14);
    let (mut sim, member, server) = setup(seed, NatPreset::Symmetric);
    sim.run_for(Duration::from_secs(1));
    open(&mut sim, member, 4);
    let got = events(&mut sim, member);
    // Reported at once, at the current instant, on the member's address, fresh ports.
    assert!(
        got.iter().all(|(at, _)| *at == Duration::from_secs(1)),
        "{got:?}"
    );
    let pool = opened(&got);
    assert_eq!(pool.len(), 4, "seed {seed}: {got:?}");
    let ports: BTreeSet<u16> = pool.iter().map(|a| a.port()).collect();
    assert_eq!(ports.len(), 4, "seed {seed}: {pool:?}");
    assert!(
        pool.iter()
            .all(|a| a.ip() == sa(LAN).ip() && a.port() != 4000)
    );
    assert!(pool.iter().all(|a| (32768..=60999).contains(&a.port())));
    assert_eq!(sim.pool_sockets(member), {
        let mut p = pool.clone();
        p.sort();
        p
    });
    // Each socket sends to the same server, and the main socket too.
    sim.with_machine(member, |m, _| {
        for a in &pool {
            m.send(Some(a.port()), sa(SERVER), &a.port().to_be_bytes());
        }
        m.send(None, sa(SERVER), &4000u16.to_be_bytes());
    });
    sim.run_for(Duration::from_secs(1));
    let all: Vec<_> = std::iter::from_fn(|| sim.poll_event()).collect();
    let received = |host| {
        all.iter()
            .filter(|e| e.host == host)
            .filter_map(|e| match &e.event {
                PoolEvent::Received {
                    local,
                    remote,
                    payload,
                } => Some((*local, *remote, payload.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // The server saw five mappings of one address: one per socket.
    let seen: BTreeSet<SocketAddr> = received(server).iter().map(|r| r.1).collect();
    assert_eq!(seen.len(), 5, "seed {seed}: {seen:?}");
    assert!(seen.iter().all(|a| a.ip() == sa("203.0.113.1:1").ip()));
    // Each echo came back to the socket it was sent from.
    let replies: Vec<(SocketAddr, Vec<u8>)> = received(member)
        .into_iter()
        .map(|(local, _, payload)| (local, payload))
        .collect();
    assert_eq!(replies.len(), 5, "seed {seed}: {replies:?}");
    for (local, payload) in &replies {
        assert_eq!(
            payload,
            &local.port().to_be_bytes(),
            "seed {seed}: reply to {local}"
        );
    }
    let nat = sim.nat_ids().next().expect("a NAT");
    assert_eq!(
        sim.nat(nat).expect("nat").stats().mappings_created,
        5,
        "seed {seed}"
    );
}

#[test]
fn a_transmit_from_a_pool_port_that_is_not_open_is_dropped_and_counted() {
    let seed = test_seed(15);
    let (mut sim, member, server) = setup(seed, NatPreset::Home);
    sim.with_machine(member, |m, _| m.send(Some(40000), sa(SERVER), b"nobody"));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.fate_count(Fate::NoSocket), 1, "seed {seed}");
    open(&mut sim, member, 1);
    let socket = opened(&events(&mut sim, member))[0];
    sim.with_machine(member, |m, _| {
        m.send(Some(socket.port()), sa(SERVER), b"open");
        m.commands.push_back(SocketCommand::Close {
            port: socket.port(),
        });
    });
    sim.run_for(Duration::from_secs(1));
    // Sent before the close, so it left; the echo came back to a closed socket.
    assert_eq!(sim.fate_count(Fate::NoSocket), 1, "seed {seed}");
    assert_eq!(sim.fate_count(Fate::PortUnreachable), 1, "seed {seed}");
    assert!(sim.pool_sockets(member).is_empty());
    let delivered = events(&mut sim, server).len();
    assert_eq!(
        delivered, 1,
        "seed {seed}: the server got the one sent while open"
    );
    sim.with_machine(member, |m, _| {
        m.send(Some(socket.port()), sa(SERVER), b"closed")
    });
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.fate_count(Fate::NoSocket), 2, "seed {seed}");
}

#[test]
fn at_most_256_pool_sockets_are_open_at_once_and_a_restart_or_crash_closes_them() {
    let seed = test_seed(16);
    let (mut sim, member, _) = setup(seed, NatPreset::Symmetric);
    open(&mut sim, member, 300);
    let got = events(&mut sim, member);
    assert_eq!(opened(&got).len(), MAX_POOL_SOCKETS, "seed {seed}");
    let failed = got.iter().filter(|(_, e)| *e == PoolEvent::Failed).count();
    assert_eq!(failed, 300 - MAX_POOL_SOCKETS, "seed {seed}");
    let first = opened(&got)[0];
    sim.with_machine(member, |m, _| {
        m.commands
            .push_back(SocketCommand::Close { port: first.port() });
        m.commands.push_back(SocketCommand::Open { count: 1 });
    });
    assert_eq!(opened(&events(&mut sim, member)).len(), 1, "seed {seed}");
    assert_eq!(sim.pool_sockets(member).len(), MAX_POOL_SOCKETS);
    // A new machine does not inherit the old one's sockets, nor does a crashed host.
    sim.restart(member, PoolProbe::new(4000, false));
    assert!(sim.pool_sockets(member).is_empty());
    open(&mut sim, member, 2);
    assert_eq!(sim.pool_sockets(member).len(), 2);
    sim.crash(member);
    assert!(sim.pool_sockets(member).is_empty());
}

#[test]
fn pool_ports_reproduce_from_the_seed() {
    let seed = test_seed(17);
    let ports = |seed| {
        let (mut sim, member, _) = setup(seed, NatPreset::Home);
        open(&mut sim, member, 8);
        let got = opened(&events(&mut sim, member));
        (got, sim.trace_hash())
    };
    assert_eq!(ports(seed), ports(seed), "seed {seed}");
    assert_ne!(ports(seed).0, ports(seed + 1).0, "seed {seed}");
}
