//! RFC 4787 §4.1 mapping behaviour, and §4.2.1 port assignment, observed from outside:
//! which external address an internal endpoint's datagrams leave with.

mod common;

use std::net::SocketAddr;

use common::*;
use dhtmeet_sim::{
    FilteringBehavior, HostSpec, MappingBehavior, NatConfig, PortAssignment, Realm, Sim,
};

const X1: &str = "192.0.2.1:3478";
const X1_OTHER_PORT: &str = "192.0.2.1:3479";
const Y: &str = "198.51.100.1:3478";

/// `a` (10.0.0.2:5000) behind a NAT sends to X1, X1's other port, and Y: the sources
/// they see, in that order.
fn sources_seen(config: NatConfig, seed: u64) -> [SocketAddr; 3] {
    let mut sim = probe_sim(seed);
    let x = sim
        .add_host(
            HostSpec::new("x", Realm::Internet, sa(X1)).with_addr(sa(X1_OTHER_PORT)),
            Probe::new(),
        )
        .expect("valid host");
    let y = host(&mut sim, "y", Realm::Internet, Y);
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    for dst in [X1, X1_OTHER_PORT, Y] {
        send(&mut sim, a, dst, b"hello");
    }
    let got = drain(&mut sim);
    let from = |h, local: &str| {
        got.iter()
            .find(|(host, r)| *host == h && r.local == sa(local))
            .map(|(_, r)| r.remote)
            .unwrap_or_else(|| panic!("seed {seed}: nothing reached {local}"))
    };
    [from(x, X1), from(x, X1_OTHER_PORT), from(y, Y)]
}

fn with_mapping(mapping: MappingBehavior) -> NatConfig {
    NatConfig {
        mapping,
        filtering: FilteringBehavior::EndpointIndependent,
        port_assignment: PortAssignment::SEQUENTIAL,
        ..NatConfig::default()
    }
}

#[test]
fn endpoint_independent_mapping_reuses_one_mapping_for_every_destination() {
    let [a, b, c] = sources_seen(with_mapping(MappingBehavior::EndpointIndependent), 1);
    assert_eq!(a.ip(), ip("203.0.113.1"));
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn address_dependent_mapping_reuses_the_mapping_only_for_the_same_destination_address() {
    let [a, b, c] = sources_seen(with_mapping(MappingBehavior::AddressDependent), 1);
    assert_eq!(a, b, "same destination IP, other port: same mapping");
    assert_ne!(a, c, "other destination IP: new mapping");
    assert_eq!(a.ip(), c.ip());
}

#[test]
fn address_and_port_dependent_mapping_makes_a_mapping_per_destination_endpoint() {
    let [a, b, c] = sources_seen(with_mapping(MappingBehavior::AddressAndPortDependent), 1);
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
}

#[test]
fn a_live_mapping_is_reused_for_later_datagrams_to_the_same_destination() {
    for mapping in [
        MappingBehavior::EndpointIndependent,
        MappingBehavior::AddressDependent,
        MappingBehavior::AddressAndPortDependent,
    ] {
        let mut sim = probe_sim(1);
        let x = host(&mut sim, "x", Realm::Internet, X1);
        let n = nat(
            &mut sim,
            Realm::Internet,
            "203.0.113.1",
            with_mapping(mapping),
        );
        let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
        for _ in 0..3 {
            send(&mut sim, a, X1, b"again");
        }
        let sources: Vec<_> = received_by(&mut sim, x).iter().map(|r| r.remote).collect();
        assert_eq!(sources.len(), 3, "{mapping:?}");
        assert!(
            sources.iter().all(|&s| s == sources[0]),
            "{mapping:?}: {sources:?}"
        );
        assert_eq!(sim.nat(n).expect("nat").stats().mappings_created, 1);
    }
}

#[test]
fn port_preservation_keeps_the_internal_port_when_it_is_free() {
    let config = NatConfig {
        port_assignment: PortAssignment::Preserving,
        ..with_mapping(MappingBehavior::EndpointIndependent)
    };
    let [a, _, _] = sources_seen(config, 1);
    assert_eq!(a.port(), 5000);
}

#[test]
fn several_hosts_behind_one_nat_get_distinct_mappings_and_their_own_replies() {
    let mut sim = probe_sim(1);
    let x = echo_host(&mut sim, "x", Realm::Internet, X1);
    let config = NatConfig {
        port_assignment: PortAssignment::Preserving,
        filtering: FilteringBehavior::AddressAndPortDependent,
        ..NatConfig::default()
    };
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    // Both use port 5000: only the first can keep it.
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    let b = host(&mut sim, "b", n.inside(), "10.0.0.3:5000");
    send(&mut sim, a, X1, b"from a");
    send(&mut sim, b, X1, b"from b");
    let got = drain(&mut sim);
    let seen_by_x: Vec<_> = got
        .iter()
        .filter(|(h, _)| *h == x)
        .map(|(_, r)| r.remote)
        .collect();
    assert_eq!(seen_by_x.len(), 2);
    assert_eq!(seen_by_x[0], sa("203.0.113.1:5000"));
    assert_ne!(seen_by_x[0], seen_by_x[1]);
    // Each echo came back to the host that sent it.
    let echo_to = |h| {
        got.iter()
            .filter(|(host, _)| *host == h)
            .map(|(_, r)| r.payload.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(echo_to(a), vec![b"from a".to_vec()]);
    assert_eq!(echo_to(b), vec![b"from b".to_vec()]);
}

#[test]
fn sequential_assignment_gives_consecutive_ports() {
    let config = NatConfig {
        mapping: MappingBehavior::AddressAndPortDependent,
        port_assignment: PortAssignment::SEQUENTIAL,
        port_range: 20000..=20010,
        ..NatConfig::default()
    };
    let ports = sources_seen(config, 1).map(|s| s.port());
    assert_eq!(ports, [20000, 20001, 20002]);
}

#[test]
fn random_assignment_draws_ports_from_the_seed() {
    let config = NatConfig {
        mapping: MappingBehavior::AddressAndPortDependent,
        port_assignment: PortAssignment::Random,
        ..NatConfig::default()
    };
    let seed = test_seed(11);
    let first = sources_seen(config.clone(), seed).map(|s| s.port());
    let again = sources_seen(config.clone(), seed).map(|s| s.port());
    let other = sources_seen(config, seed + 1).map(|s| s.port());
    assert_eq!(first, again, "seed {seed}: same seed, same ports");
    assert_ne!(first, other, "seed {seed}: another seed, other ports");
    assert!(
        first.windows(2).any(|w| w[1] != w[0] + 1),
        "seed {seed}: random ports should not be consecutive: {first:?}"
    );
}

#[test]
fn a_full_port_range_refuses_new_mappings() {
    let mut sim: Sim<Probe> = probe_sim(1);
    let x = host(&mut sim, "x", Realm::Internet, X1);
    let config = NatConfig {
        mapping: MappingBehavior::AddressAndPortDependent,
        port_assignment: PortAssignment::SEQUENTIAL,
        port_range: 30000..=30001,
        ..NatConfig::default()
    };
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    for port in 1..=3 {
        send(&mut sim, a, &format!("192.0.2.1:{port}"), b"x");
    }
    send(&mut sim, a, X1, b"x");
    assert!(received_by(&mut sim, x).is_empty());
    assert_eq!(sim.fate_count(dhtmeet_sim::Fate::PortsExhausted), 2);
}
