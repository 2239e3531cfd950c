use super::*;
use crate::test_clock;
use std::collections::BTreeMap;
use std::time::Duration;

/// A tiny in-memory network: every datagram arrives after `latency`, no loss. Nodes are
/// keyed by address; the NAT in front of `natted` rewrites its source to `public`.
struct Net {
    nodes: BTreeMap<SocketAddr, Node>,
    now: Instant,
    latency: Duration,
    events: Vec<(SocketAddr, Event)>,
}

impl Net {
    fn run(&mut self, until: Duration) {
        let end = self.now + until;
        let mut in_flight: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
        loop {
            for (&addr, node) in &mut self.nodes {
                while let Some(t) = node.poll_transmit() {
                    in_flight.push((self.now + self.latency, addr, t.destination, t.contents));
                }
                while let Some(e) = node.poll_event() {
                    self.events.push((addr, e));
                }
            }
            let next_arrival = in_flight.iter().map(|d| d.0).min();
            let next_timer = self.nodes.values().filter_map(|n| n.poll_timeout()).min();
            let Some(next) = next_arrival.into_iter().chain(next_timer).min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = next;
            let (due, later): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|d| d.0 <= next);
            in_flight = later;
            for (_, from, to, bytes) in due {
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.handle_datagram(self.now, to, from, &bytes);
                }
            }
            for node in self.nodes.values_mut() {
                if node.poll_timeout().is_some_and(|t| t <= self.now) {
                    node.handle_timeout(self.now);
                }
            }
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A node with STUN only (no DHT), so that the STUN scenarios see only STUN traffic.
fn node(seed: u64, servers: &[&str], now: Instant) -> Node {
    let mut config = NodeConfig::new(Seed::from_u64(seed));
    config.dht = None;
    config.stun.servers = servers.iter().map(|s| addr(s)).collect();
    Node::new(config, now).unwrap()
}

#[test]
fn node_discovers_its_address_from_two_other_nodes() {
    let now = test_clock::start();
    let (a, s1, s2) = ("198.51.100.1:4000", "192.0.2.1:3478", "192.0.2.2:3478");
    let mut net = Net {
        nodes: [
            (addr(a), node(1, &[s1, s2], now)),
            (addr(s1), node(2, &[], now)),
            (addr(s2), node(3, &[], now)),
        ]
        .into_iter()
        .collect(),
        now,
        latency: Duration::from_millis(25),
        events: Vec::new(),
    };
    net.run(Duration::from_secs(60));
    let [(who, Event::AddressDiscovered(report))] = net.events.as_slice() else {
        panic!("expected one discovery, got {:?}", net.events);
    };
    assert_eq!(*who, addr(a));
    assert_eq!(report.first.mapped, addr(a));
    assert_eq!(report.first.rtt, Duration::from_millis(50));
    assert_eq!(report.mapping, Mapping::EndpointIndependent);
    let health = net.nodes[&addr(a)].health();
    assert!(health.stun_reachable);
    assert_eq!(health.public_address, Some(addr(a)));
    assert_eq!(
        net.nodes[&addr(s1)]
            .health()
            .stats
            .stun_server
            .requests_answered,
        1
    );
}

#[test]
fn node_reports_unreachable_stun_and_retries() {
    let now = test_clock::start();
    let mut net = Net {
        nodes: [(addr("198.51.100.1:4000"), node(1, &["192.0.2.9:3478"], now))]
            .into_iter()
            .collect(),
        now,
        latency: Duration::from_millis(10),
        events: Vec::new(),
    };
    net.run(Duration::from_secs(95));
    let failures = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::StunUnreachable(_)))
        .count();
    // Rounds fail at 10 s, 50 s and 90 s (10 s of asking, 30 s of waiting).
    assert_eq!(failures, 3);
    assert!(
        !net.nodes[&addr("198.51.100.1:4000")]
            .health()
            .stun_reachable
    );
}

#[test]
fn demultiplexer_counts_what_it_cannot_use() {
    let now = test_clock::start();
    let mut n = node(1, &[], now);
    let local = addr("10.0.0.1:1");
    let remote = addr("10.0.0.2:2");
    for d in [
        &b"d1:ad2:id20:"[..],
        &[22, 254, 253, 0],
        &[0x80, 0],
        &[],
        &[0, 1, 0, 0],
        &[
            1, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ] {
        n.handle_datagram(now, local, remote, d);
    }
    let s = n.health().stats;
    assert_eq!(s.datagrams_received, 6);
    assert_eq!(
        (s.dropped_krpc, s.dropped_dtls, s.dropped_unknown_kind),
        (1, 1, 2)
    );
    assert_eq!(
        (s.dropped_stun_malformed, s.dropped_stun_unsolicited),
        (1, 1)
    );
    assert!(n.poll_transmit().is_none());
}

#[test]
fn invalid_configuration_is_an_error_not_a_panic() {
    let mut config = NodeConfig::new(Seed::from_u64(1));
    config.stun.parallel_queries = 0;
    assert_eq!(
        Node::new(config, test_clock::start()).unwrap_err(),
        ConfigError::Stun(StunConfigError::ZeroParallelQueries)
    );
}

#[test]
fn krpc_goes_to_the_dht_and_stun_to_stun_on_one_socket() {
    let now = test_clock::start();
    let (a, b) = ("198.51.100.1:4000", "198.51.100.2:4000");
    let mut config = NodeConfig::new(Seed::from_u64(1));
    config.dht.as_mut().unwrap().bootstrap = vec![addr(b)];
    config.stun.servers = vec![addr(b)];
    let first = Node::new(config, now).unwrap();
    // The second node runs a DHT with no bootstrap: the first node of a network.
    let second = Node::new(NodeConfig::new(Seed::from_u64(2)), now).unwrap();
    let mut net = Net {
        nodes: [(addr(a), first), (addr(b), second)].into_iter().collect(),
        now,
        latency: Duration::from_millis(10),
        events: Vec::new(),
    };
    net.run(Duration::from_secs(5));
    let mine: Vec<&Event> = net
        .events
        .iter()
        .filter(|(w, _)| *w == addr(a))
        .map(|(_, e)| e)
        .collect();
    assert!(
        mine.iter()
            .any(|e| matches!(e, Event::AddressDiscovered(r) if r.first.mapped == addr(a)))
    );
    assert!(
        mine.iter()
            .any(|e| matches!(e, Event::DhtReady { nodes: 1 }))
    );
    let health = net.nodes[&addr(a)].health();
    assert!(health.dht_ready && health.stun_reachable);
    assert_eq!(health.routing_table_size, 1);
    let other = net.nodes[&addr(b)].health().stats;
    assert_eq!(other.stun_server.requests_answered, 1);
    assert!(other.dht.queries_received >= 1);
}
