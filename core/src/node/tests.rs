use super::*;
use crate::dht::NodeId;
use crate::nat::NatClass;
use crate::stun::{Mapping, StunConfigError};
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
    Node::new(now, config).unwrap()
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
fn a_stun_flood_from_one_ip_gets_one_budget_of_answers_and_others_are_answered() {
    use crate::stun::{ANSWER_BURST, wire};
    let now = test_clock::start();
    let mut n = node(1, &[], now);
    let local = addr("10.0.0.1:1");
    let request = wire::binding_request(wire::TransactionId([7; 12]));
    let mut answered = 0;
    for port in 0..2000u16 {
        let from = SocketAddr::from(([203, 0, 113, 5], 1024 + port));
        n.handle_datagram(now, local, from, &request);
        answered += std::iter::from_fn(|| n.poll_transmit()).count();
    }
    assert_eq!(answered, ANSWER_BURST as usize);
    n.handle_datagram(now, local, addr("203.0.113.6:9"), &request);
    let reply = n.poll_transmit().expect("another IP is answered");
    assert_eq!(reply.destination, addr("203.0.113.6:9"));
    let s = n.health().stats.stun_server;
    assert_eq!(s.requests_answered, u64::from(ANSWER_BURST) + 1);
    assert_eq!(s.dropped_rate_limited, 2000 - u64::from(ANSWER_BURST));
}

/// Issue 15, finding 4: a member must not answer invalid signaling any differently from
/// a node that is in no meeting, or anyone could probe addresses for "in a meeting".
#[test]
fn invalid_signaling_to_a_member_is_answered_as_a_node_outside_any_meeting_answers() {
    use crate::dht::krpc::{Body, Message as Krpc, Query};
    use crate::meeting::code;
    use crate::meeting::keys::MeetingKeys;
    use crate::meeting::signal::{self, DmSignal, DmSignalBody, MemberId};
    let now = test_clock::start();
    let standalone = |seed: u64, at: &str| {
        let mut config = NodeConfig::new(Seed::from_u64(seed));
        config.stun.servers.clear();
        config.local_addr = Some(addr(at));
        Node::new(now, config).unwrap()
    };
    let (member_at, outsider_at) = (addr("198.51.100.1:4000"), addr("198.51.100.2:4000"));
    let mut member = standalone(1, "198.51.100.1:4000");
    let mut outsider = standalone(2, "198.51.100.2:4000");
    let code = code::generate(&mut Seed::from_u64(7).rng());
    member.join(now, &code, false).unwrap();
    let prober = addr("203.0.113.66:6881");
    let ask = |node: &mut Node, local: SocketAddr, args: &[u8]| -> Vec<Vec<u8>> {
        let query = Krpc {
            transaction_id: b"pr".to_vec(),
            version: None,
            read_only: false,
            ip: None,
            body: Body::Query {
                id: NodeId([0x66; 20]),
                query: Query::Other {
                    method: signal::METHOD.to_vec(),
                    args: args.to_vec(),
                },
            },
        };
        node.handle_datagram(now, local, prober, &query.encode());
        std::iter::from_fn(|| node.poll_transmit())
            .filter(|t| t.destination == prober)
            .filter(|t| {
                Krpc::decode(&t.contents).is_ok_and(|m| !matches!(m.body, Body::Query { .. }))
            })
            .map(|t| t.contents)
            .collect()
    };
    let hello = |seq: u64, key: &[u8; 32]| {
        DmSignal {
            node_id: NodeId([0x66; 20]),
            from: MemberId([9; 8]),
            to: None,
            seq,
            echo: None,
            nat: NatClass::Unknown,
            body: DmSignalBody::Hello {
                challenge: crate::meeting::signal::Challenge([1; 8]),
            },
        }
        .encode_args(key)
    };
    let keys = MeetingKeys::derive(&code);
    let mut bad_mac = hello(1, &keys.signaling);
    let mac_at = bad_mac
        .windows(6)
        .position(|w| w == b"1:h16:")
        .expect("the MAC is in the arguments")
        + 6;
    bad_mac[mac_at] ^= 1;
    let other_meeting = hello(1, &MeetingKeys::derive("another meeting code").signaling);
    let valid = hello(2, &keys.signaling);
    let probes: [(&str, &[u8]); 4] = [
        ("a bad MAC", &bad_mac),
        ("another meeting", &other_meeting),
        ("undecodable arguments", b"d2:id20:ffffffffffffffffffffe"),
        ("a bencoded list", b"li1ee"),
    ];
    for (what, args) in probes {
        let from_member = ask(&mut member, member_at, args);
        let from_outsider = ask(&mut outsider, outsider_at, args);
        assert_eq!(from_outsider.len(), 1, "{what}: the outsider answers once");
        assert_eq!(
            from_member, from_outsider,
            "{what}: the member answers as an outsider"
        );
    }
    // A valid signal is acknowledged; the same signal again (a replay) is not.
    let ack = ask(&mut member, member_at, &valid);
    assert!(
        matches!(&ack[..], [r] if matches!(Krpc::decode(r).unwrap().body, Body::Response { .. })),
        "a member's signal is acknowledged"
    );
    assert_eq!(
        ask(&mut member, member_at, &valid),
        ask(&mut outsider, outsider_at, &valid),
        "a replayed signal is answered as an outsider answers"
    );
    let stats = member.health().stats.meeting;
    assert_eq!(stats.dropped_bad_mac, 2);
}

#[test]
fn invalid_configuration_is_an_error_not_a_panic() {
    let mut config = NodeConfig::new(Seed::from_u64(1));
    config.stun.parallel_queries = 0;
    assert_eq!(
        Node::new(test_clock::start(), config).unwrap_err(),
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
    let first = Node::new(now, config).unwrap();
    // The second node runs a DHT with no bootstrap: the first node of a network.
    let second = Node::new(now, NodeConfig::new(Seed::from_u64(2))).unwrap();
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

/// Whole nodes: a DHT bootstrap node and members who only share a code find each other
/// through the DHT, signal, and open WebRTC data channels.
#[test]
fn members_of_one_code_meet_through_the_dht_and_talk() {
    use crate::meeting::code;
    use crate::test_net::Net;
    let now = test_clock::start();
    let seed = 31;
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(20), seed);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(seed))).unwrap(),
    );
    let members: Vec<SocketAddr> = (2..5)
        .map(|i| addr(&format!("198.51.100.{i}:4000")))
        .collect();
    for (i, &m) in members.iter().enumerate() {
        let mut config = NodeConfig::new(Seed::from_u64(seed + 1 + i as u64));
        config.dht.as_mut().unwrap().bootstrap = vec![boot];
        config.local_addr = Some(m);
        net.machines.insert(m, Node::new(now, config).unwrap());
    }
    // A stranger with another code.
    let stranger = addr("203.0.113.9:4000");
    let mut config = NodeConfig::new(Seed::from_u64(seed + 9));
    config.dht.as_mut().unwrap().bootstrap = vec![boot];
    config.local_addr = Some(stranger);
    net.machines
        .insert(stranger, Node::new(now, config).unwrap());
    net.run(Duration::from_secs(3));
    let code = code::generate(&mut Seed::from_u64(seed).rng());
    let now = net.now;
    for m in &members {
        net.machines
            .get_mut(m)
            .unwrap()
            .join(now, &code, false)
            .unwrap();
    }
    let other = code::generate(&mut Seed::from_u64(seed + 100).rng());
    net.machines
        .get_mut(&stranger)
        .unwrap()
        .join(now, &other, false)
        .unwrap();
    net.run(Duration::from_secs(40));
    for m in &members {
        let health = net.machines[m].health();
        assert_eq!(
            health.peers.len(),
            2,
            "{m} sees {:?}; seed {seed}",
            health.peers
        );
    }
    assert!(net.machines[&stranger].health().peers.is_empty());
    // A broadcast reaches both others, intact.
    let now = net.now;
    let full = net
        .machines
        .get_mut(&members[0])
        .unwrap()
        .broadcast(b"hello, meeting");
    assert!(full.is_empty());
    net.machines
        .get_mut(&members[0])
        .unwrap()
        .handle_timeout(now);
    net.run(Duration::from_secs(5));
    let received: Vec<SocketAddr> = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Message { data, .. } if data == b"hello, meeting"))
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(received, vec![members[1], members[2]], "seed {seed}");
    // Leaving is seen by the others.
    let now = net.now;
    net.machines.get_mut(&members[2]).unwrap().leave(now);
    net.run(Duration::from_secs(5));
    let left = net
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::PeerDisconnected {
                    reason: crate::PeerGone::Left,
                    ..
                }
            )
        })
        .count();
    assert_eq!(left, 2, "seed {seed}");
}

/// BEP 43 behind a NAT: a member whose STUN answer differs from its socket address
/// runs its DHT read-only (it asks, answers no DHT query, and tells others not to store
/// it), so others' lookups never wait on a node they cannot reach; a member whose STUN
/// answer is its own address serves the DHT as usual. A node without STUN servers (a
/// public DHT node) is never read-only.
#[test]
fn a_member_behind_a_nat_keeps_out_of_routing_tables() {
    use crate::test_net::Net;
    let now = test_clock::start();
    let seed = 44;
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(20), seed);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(seed))).unwrap(),
    );
    // `public` sees its own address; `natted` sits at 198.51.100.3 on the network, but its
    // socket is bound to 10.0.0.3 behind a NAT, so STUN answers another address.
    let public = addr("198.51.100.2:4000");
    let natted = addr("198.51.100.3:4000");
    for (i, (at, socket)) in [(public, public), (natted, addr("10.0.0.3:4000"))]
        .into_iter()
        .enumerate()
    {
        let mut config = NodeConfig::new(Seed::from_u64(seed + 1 + i as u64));
        config.stun.servers = vec![boot];
        config.dht.as_mut().unwrap().bootstrap = vec![boot];
        config.local_addr = Some(socket);
        let node = Node::new(now, config).unwrap();
        // Read-only from the start: nothing is answered before STUN has spoken.
        assert!(node.health().dht_read_only, "seed {seed}");
        net.machines.insert(at, node);
    }
    net.run(Duration::from_secs(10));
    let health = |a: SocketAddr| net.machines[&a].health();
    assert!(!health(boot).dht_read_only, "seed {seed}");
    assert!(!health(public).dht_read_only, "seed {seed}");
    assert!(health(natted).dht_read_only, "seed {seed}");
    assert_eq!(health(natted).public_address, Some(natted), "seed {seed}");
    let stored: Vec<SocketAddr> = net.machines[&boot]
        .dht()
        .unwrap()
        .routing_table()
        .entries()
        .map(|e| e.node.addr)
        .collect();
    assert!(stored.contains(&public), "seed {seed}: {stored:?}");
    assert!(!stored.contains(&natted), "seed {seed}: {stored:?}");
    // The NAT'd member still uses the DHT: it bootstrapped through the others.
    assert!(health(natted).dht_ready, "seed {seed}");
}

#[test]
fn join_refuses_weak_codes_and_nodes_without_a_dht() {
    let now = test_clock::start();
    let mut config = NodeConfig::new(Seed::from_u64(1));
    config.local_addr = Some(addr("10.0.0.1:4000"));
    let mut n = Node::new(now, config.clone()).unwrap();
    assert!(matches!(
        n.join(now, "1234", false),
        Err(JoinError::Code(_))
    ));
    assert!(n.join(now, "1234", true).is_ok());
    assert_eq!(
        n.join(now, "1234", true).unwrap_err(),
        JoinError::AlreadyJoined
    );
    config.dht = None;
    let mut n = Node::new(now, config).unwrap();
    assert_eq!(n.join(now, "1234", true).unwrap_err(), JoinError::NoDht);
    let mut n = Node::new(now, NodeConfig::new(Seed::from_u64(2))).unwrap();
    assert_eq!(
        n.join(now, "1234", true).unwrap_err(),
        JoinError::NoLocalAddress
    );
}

#[test]
fn joining_before_the_dht_is_ready_waits_for_it_without_spinning() {
    use crate::test_net::Net;
    let now = test_clock::start();
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(5), 1);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(1))).unwrap(),
    );
    let members = [addr("198.51.100.1:4000"), addr("198.51.100.2:4000")];
    let code = crate::meeting::code::generate(&mut Seed::from_u64(3).rng());
    for (i, m) in members.iter().enumerate() {
        let mut config = NodeConfig::new(Seed::from_u64(10 + i as u64));
        config.dht.as_mut().unwrap().bootstrap = vec![boot];
        config.local_addr = Some(*m);
        let mut n = Node::new(now, config).unwrap();
        // Joined at once, before the bootstrap lookup has even been answered.
        n.join(now, &code, false).unwrap();
        assert!(
            n.poll_timeout().is_some_and(|t| t > now),
            "nothing is due yet"
        );
        net.machines.insert(*m, n);
    }
    net.run(Duration::from_secs(20));
    for m in members {
        assert_eq!(net.machines[&m].health().peers.len(), 1, "{m}");
    }
}

/// Issue 15, finding 5: one dead node among 10 on a private bootstrap network must not
/// slow two new members down (it took 6.1 s: lookups waited 2 × 1.5 s on it, twice).
#[test]
fn one_dead_node_among_ten_does_not_slow_two_new_members() {
    for seed in [5, 6, 7] {
        let took = two_members_meet_with_a_dead_node(seed);
        assert!(
            took < Duration::from_millis(500),
            "two members met after {took:?} (seed {seed})"
        );
    }
}

/// How long two new members take to meet on a private network of 10 DHT nodes, one of
/// which died after the network formed.
fn two_members_meet_with_a_dead_node(seed: u64) -> Duration {
    use crate::test_net::Net;
    let now = test_clock::start();
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(10), seed);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(seed))).unwrap(),
    );
    let public = |i: u64, at: SocketAddr, now: Instant| {
        let mut config = NodeConfig::new(Seed::from_u64(seed + i));
        config.dht.as_mut().unwrap().bootstrap = vec![boot];
        config.local_addr = Some(at);
        Node::new(now, config).unwrap()
    };
    for i in 2..11 {
        let at = addr(&format!("192.0.2.{i}:6881"));
        net.machines.insert(at, public(i, at, now));
    }
    net.run(Duration::from_secs(10));
    // One dies; the others, the bootstrap node included, still have it in their tables.
    net.machines.remove(&addr("192.0.2.7:6881"));
    let members = [addr("198.51.100.1:4000"), addr("198.51.100.2:4000")];
    let code = crate::meeting::code::generate(&mut Seed::from_u64(seed).rng());
    let start = net.now;
    for (i, &m) in members.iter().enumerate() {
        let mut n = public(20 + i as u64, m, start);
        n.join(start, &code, false).unwrap();
        net.machines.insert(m, n);
    }
    net.run_until(Duration::from_secs(10), |events| {
        members.iter().all(|m| {
            events
                .iter()
                .any(|(a, e)| a == m && matches!(e, Event::PeerConnected { .. }))
        })
    });
    let took = net.now - start;
    for m in members {
        assert_eq!(net.machines[&m].health().peers.len(), 1, "{m}, seed {seed}");
    }
    took
}

#[test]
fn a_node_refuses_session_settings_that_could_never_send() {
    let mut config = NodeConfig::new(Seed::from_u64(1));
    config.meeting.session.sctp_buffer = 1024;
    assert!(matches!(
        Node::new(crate::test_clock::start(), config),
        Err(ConfigError::Session(_))
    ));
}

/// Two members meet; one leaves and joins the same meeting again in the same process.
/// It comes back as a new member (new member id, new ICE credentials, signaling
/// sequence numbers of its own), so the other side neither drops its signaling as
/// replayed nor mistakes it for the member that left, and they meet again at once.
#[test]
fn a_member_that_leaves_and_rejoins_in_one_process_meets_again_as_a_new_member() {
    use crate::meeting::code;
    use crate::test_net::Net;
    let now = test_clock::start();
    let seed = 57;
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(20), seed);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(seed))).unwrap(),
    );
    let (a, b) = (addr("198.51.100.2:4000"), addr("198.51.100.3:4000"));
    for (i, m) in [a, b].into_iter().enumerate() {
        let mut config = NodeConfig::new(Seed::from_u64(seed + 1 + i as u64));
        config.dht.as_mut().unwrap().bootstrap = vec![boot];
        config.local_addr = Some(m);
        net.machines.insert(m, Node::new(now, config).unwrap());
    }
    net.run(Duration::from_secs(3));
    let code = code::generate(&mut Seed::from_u64(seed).rng());
    let now = net.now;
    net.machines
        .get_mut(&a)
        .unwrap()
        .join(now, &code, false)
        .unwrap();
    let (first, _) = net
        .machines
        .get_mut(&b)
        .unwrap()
        .join(now, &code, false)
        .unwrap();
    net.run(Duration::from_secs(10));
    assert_eq!(net.machines[&a].health().peers.len(), 1, "seed {seed}");
    let first_ufrag = net.machines[&b].meeting().unwrap().local_ufrags();

    let now = net.now;
    net.machines.get_mut(&b).unwrap().leave(now);
    net.run(Duration::from_secs(1));
    assert!(net.machines[&a].health().peers.is_empty(), "seed {seed}");
    net.events.clear();
    let now = net.now;
    let (second, _) = net
        .machines
        .get_mut(&b)
        .unwrap()
        .join(now, &code, false)
        .unwrap();
    assert_ne!(first, second, "a re-join is a new member; seed {seed}");
    net.run(Duration::from_secs(2));
    let met_again = net.events.iter().any(|(at, e)| {
        *at == a
            && *e
                == Event::PeerConnected {
                    member: second,
                    via: crate::Via::Direct,
                }
    });
    assert!(met_again, "{:?}; seed {seed}", net.events);
    let second_ufrag = net.machines[&b].meeting().unwrap().local_ufrags();
    assert!(
        first_ufrag.iter().all(|u| !second_ufrag.contains(u)),
        "new ICE credentials: {first_ufrag:?} then {second_ufrag:?}; seed {seed}"
    );
    assert_eq!(
        net.machines[&a].health().stats.meeting.dropped_replayed,
        0,
        "seed {seed}"
    );
}

/// `Health::initialised` says whether start-up is over: false until the first STUN
/// round ends and the DHT has bootstrapped (or given up), then true.
#[test]
fn health_says_initialised_once_stun_and_the_dht_have_started() {
    use crate::test_net::Net;
    let now = test_clock::start();
    let seed = 58;
    let mut net: Net<Node> = Net::new(now, Duration::from_millis(20), seed);
    let boot = addr("192.0.2.1:6881");
    net.machines.insert(
        boot,
        Node::new(now, NodeConfig::new(Seed::from_u64(seed))).unwrap(),
    );
    let me = addr("198.51.100.2:4000");
    let mut config = NodeConfig::new(Seed::from_u64(seed + 1));
    config.dht.as_mut().unwrap().bootstrap = vec![boot];
    config.stun.servers = vec![boot];
    config.local_addr = Some(me);
    net.machines.insert(me, Node::new(now, config).unwrap());
    assert!(!net.machines[&me].health().initialised);
    net.run(Duration::from_secs(3));
    let health = net.machines[&me].health();
    assert!(health.stun_reachable && health.dht_ready, "{health:?}");
    assert!(health.initialised);
}

/// A node with two STUN servers and four DHT bootstrap nodes behind a NAT that gives
/// its n-th new mapping (in the order the node sends) port `port(n)`; every server and
/// node answers with the address it saw (the DHT ones in `ip`, BEP 42), but `liar`
/// reports port 1. Returns the node after every answer.
fn behind_nat(port: impl Fn(usize) -> u16, liar: Option<usize>) -> Node {
    use crate::dht::krpc::{Body, Message as Krpc, Response};
    let now = test_clock::start();
    let local = addr("10.0.0.2:4000");
    let mut config = NodeConfig::new(Seed::from_u64(5));
    config.local_addr = Some(local);
    config.stun.servers = vec![addr("192.0.2.1:3478"), addr("192.0.2.2:3478")];
    config.dht.as_mut().unwrap().bootstrap = (0..4)
        .map(|i| addr(&format!("198.51.100.{}:6881", i + 1)))
        .collect();
    let mut node = Node::new(now, config).unwrap();
    let mut mappings: Vec<SocketAddr> = Vec::new();
    let mut stun = BindingServer::new();
    for _ in 0..4 {
        let sent: Vec<Transmit> = std::iter::from_fn(|| node.poll_transmit()).collect();
        for t in sent {
            let n = match mappings.iter().position(|d| *d == t.destination) {
                Some(n) => n,
                None => {
                    mappings.push(t.destination);
                    mappings.len() - 1
                }
            };
            let seen = SocketAddr::new("203.0.113.5".parse().unwrap(), port(n));
            let seen = if liar == Some(n) {
                SocketAddr::new(seen.ip(), 1)
            } else {
                seen
            };
            let answer = if t.contents[0] == b'd' {
                let Ok(q) = Krpc::decode(&t.contents) else {
                    continue;
                };
                Krpc {
                    transaction_id: q.transaction_id,
                    version: None,
                    read_only: false,
                    ip: Some(seen),
                    body: Body::Response {
                        id: NodeId([n as u8 + 1; 20]),
                        response: Response::default(),
                    },
                }
                .encode()
            } else {
                stun.handle_message(now, seen, &Message::decode(&t.contents).unwrap());
                stun.poll_transmit().unwrap().contents
            };
            node.handle_datagram(now, local, t.destination, &answer);
        }
    }
    node
}

#[test]
fn stun_answers_and_dht_ip_values_classify_the_nat_in_health() {
    let node = behind_nat(|n| 30000 + n as u16, None);
    let health = node.health();
    assert_eq!(health.nat, NatClass::Sequential { step: 1 });
    assert_eq!(
        health.nat_observations, 6,
        "two STUN servers and four DHT nodes"
    );
    assert_eq!(node.nat_class(), health.nat);
    let sources: Vec<_> = node.nat_observations().map(|o| o.source).collect();
    assert!(sources.contains(&crate::nat::ObservationSource::Stun));
    assert!(sources.contains(&crate::nat::ObservationSource::Dht));

    let node = behind_nat(|_| 61000, Some(4));
    assert_eq!(
        node.health().nat,
        NatClass::EndpointIndependent { preserving: false },
        "one lying DHT node is outvoted"
    );
}

/// A Linux masquerade router moved our port for new flows (after a diverted flow):
/// two DHT nodes we first sent to afterwards report the new port, and the meeting
/// announces that port explicitly instead of `implied_port` (which storage nodes we
/// already talk to would see as the old one).
#[test]
fn a_port_the_nat_moved_for_new_flows_is_announced_explicitly() {
    use crate::dht::krpc::{Body, Message as Krpc, Query, Response};
    let mut node = behind_nat(|_| 4000, None);
    assert_eq!(
        node.health().nat,
        NatClass::EndpointIndependent { preserving: true }
    );
    let now = test_clock::start();
    let local = addr("10.0.0.2:4000");
    node.join(now, "test-moved-port-code", true).unwrap();
    let moved = addr("203.0.113.5:17419");
    // The meeting's first lookups go out; answer them at the old port with a token.
    let mut announces: Vec<(u16, bool)> = Vec::new();
    let respond = |node: &mut Node, seen: SocketAddr, announces: &mut Vec<(u16, bool)>| {
        let sent: Vec<Transmit> = std::iter::from_fn(|| node.poll_transmit()).collect();
        for t in sent {
            let Ok(q) = Krpc::decode(&t.contents) else {
                continue;
            };
            if let Body::Query {
                query:
                    Query::AnnouncePeer {
                        port, implied_port, ..
                    },
                ..
            } = &q.body
            {
                announces.push((*port, *implied_port));
            }
            let answer = Krpc {
                transaction_id: q.transaction_id,
                version: None,
                read_only: false,
                ip: Some(seen),
                body: Body::Response {
                    id: NodeId([9; 20]),
                    response: Response {
                        token: Some(b"tok".to_vec()),
                        ..Response::default()
                    },
                },
            }
            .encode();
            node.handle_datagram(now, local, t.destination, &answer);
        }
    };
    for _ in 0..3 {
        respond(&mut node, addr("203.0.113.5:4000"), &mut announces);
    }
    assert!(
        !announces.is_empty() && announces.iter().all(|&(_, implied)| implied),
        "before the move: implied_port ({announces:?})"
    );
    assert_eq!(node.health().stats.public_moves, 0);
    // Two new destinations see us at the moved port.
    for d in ["198.51.100.77:6881", "198.51.100.78:6881"] {
        node.nat.note_sent(now, addr(d));
        node.observe_dht_address(addr(d), moved);
    }
    assert_eq!(node.health().stats.public_moves, 1);
    announces.clear();
    for _ in 0..3 {
        respond(&mut node, addr("203.0.113.5:4000"), &mut announces);
    }
    assert!(
        !announces.is_empty() && announces.iter().all(|&a| a == (17419, false)),
        "after the move: port 17419 explicitly ({announces:?})"
    );
}
