//! IPv6 between hosts on the simulated Internet: a node discovers its IPv6 address from
//! two IPv6 STUN servers, and a dual-stack host keeps one socket per family.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_core::stun::Mapping;
use dhtmeet_core::{Event, Node, NodeConfig, Seed};
use dhtmeet_sim::{HostSpec, Realm, Sim, SimEvent};

fn stun_node(seed: u64, servers: &[&str], now: std::time::Instant) -> Node {
    let mut config = NodeConfig::new(Seed::from_u64(seed));
    config.dht = None;
    config.stun.servers = servers.iter().map(|s| s.parse().unwrap()).collect();
    config.stun.retry_interval = None;
    Node::new(now, config).unwrap()
}

#[test]
fn a_node_discovers_its_ipv6_address_from_two_ipv6_servers() {
    let seed = test_seed(21);
    let mut sim: Sim<Node> = Sim::new(Seed::from_u64(seed));
    let now = sim.now();
    let server = |n| {
        let mut c = NodeConfig::new(Seed::from_u64(n));
        c.dht = None;
        Node::new(now, c).unwrap()
    };
    for (name, addr) in [
        ("s1", "[2001:db8:1::1]:3478"),
        ("s2", "[2001:db8:2::1]:3478"),
    ] {
        let spec = HostSpec::new(name, Realm::Internet, addr.parse().unwrap());
        sim.add_host(spec, server(seed + 1)).unwrap();
    }
    let me: std::net::SocketAddr = "[2001:db8:9::7]:4000".parse().unwrap();
    let client = stun_node(seed, &["[2001:db8:1::1]:3478", "[2001:db8:2::1]:3478"], now);
    let id = sim
        .add_host(HostSpec::new("client", Realm::Internet, me), client)
        .unwrap();
    let mut report = None;
    while let Some(ev) = sim.run_until_event(Duration::from_secs(30)) {
        if let SimEvent {
            host,
            event: Event::AddressDiscovered(r),
            ..
        } = ev
        {
            if host == id {
                report = Some(r);
                break;
            }
        }
    }
    let report = report.unwrap_or_else(|| panic!("no discovery, seed {seed}"));
    assert_eq!(report.first.mapped, me, "seed {seed}");
    assert_eq!(report.mapping, Mapping::EndpointIndependent, "seed {seed}");
}

#[test]
fn a_dual_stack_host_sends_each_family_from_its_own_socket() {
    let mut sim = probe_sim(2);
    let v4 = host(&mut sim, "v4", Realm::Internet, "192.0.2.1:9");
    let v6 = host(&mut sim, "v6", Realm::Internet, "[2001:db8::1]:9");
    let spec = HostSpec::new("dual", Realm::Internet, "192.0.2.2:5000".parse().unwrap())
        .with_addr("[2001:db8::2]:5000".parse().unwrap());
    let dual = sim.add_host(spec, Probe::new()).unwrap();
    send(&mut sim, dual, "192.0.2.1:9", b"four");
    send(&mut sim, dual, "[2001:db8::1]:9", b"six");
    let got = drain(&mut sim);
    let from = |h| got.iter().find(|(to, _)| *to == h).map(|(_, r)| r.remote);
    assert_eq!(from(v4), Some("192.0.2.2:5000".parse().unwrap()));
    assert_eq!(from(v6), Some("[2001:db8::2]:5000".parse().unwrap()));
}
