//! RFC 4787 §5 filtering behaviour: which inbound datagrams reach the internal endpoint
//! once it has sent to X1 (and nothing else).

mod common;

use common::*;
use dhtmeet_sim::{Fate, FilteringBehavior, HostSpec, MappingBehavior, NatConfig, Realm};

const X1: &str = "192.0.2.1:3478";
const X1_OTHER_PORT: &str = "192.0.2.1:3479";
const Y: &str = "198.51.100.1:3478";

/// Whether datagrams from X1, X1's other port and Y reach `a` through its mapping.
fn inbound_passes(filtering: FilteringBehavior) -> [bool; 3] {
    let mut sim = probe_sim(1);
    let x = sim
        .add_host(
            HostSpec::new("x", Realm::Internet, sa(X1)).with_addr(sa(X1_OTHER_PORT)),
            Probe::new(),
        )
        .expect("valid host");
    let y = host(&mut sim, "y", Realm::Internet, Y);
    let config = NatConfig {
        mapping: MappingBehavior::EndpointIndependent,
        filtering,
        ..NatConfig::default()
    };
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    send(&mut sim, a, X1, b"open");
    let mapping = received_by(&mut sim, x)[0].remote;
    let mut passes = [false; 3];
    for (i, (h, src)) in [(x, X1), (x, X1_OTHER_PORT), (y, Y)]
        .into_iter()
        .enumerate()
    {
        assert!(sim.inject(h, sa(src), mapping, b"inbound"));
        sim.run_for(std::time::Duration::from_secs(1));
        let got = received_by(&mut sim, a);
        passes[i] = got.iter().any(|r| r.remote == sa(src));
    }
    passes
}

#[test]
fn endpoint_independent_filtering_lets_anyone_use_the_mapping() {
    assert_eq!(
        inbound_passes(FilteringBehavior::EndpointIndependent),
        [true, true, true]
    );
}

#[test]
fn address_dependent_filtering_admits_only_addresses_sent_to() {
    assert_eq!(
        inbound_passes(FilteringBehavior::AddressDependent),
        [true, true, false]
    );
}

#[test]
fn address_and_port_dependent_filtering_admits_only_endpoints_sent_to() {
    assert_eq!(
        inbound_passes(FilteringBehavior::AddressAndPortDependent),
        [true, false, false]
    );
}

#[test]
fn unsolicited_datagrams_find_no_mapping_under_every_filter() {
    for filtering in [
        FilteringBehavior::EndpointIndependent,
        FilteringBehavior::AddressDependent,
        FilteringBehavior::AddressAndPortDependent,
    ] {
        let mut sim = probe_sim(1);
        let y = host(&mut sim, "y", Realm::Internet, Y);
        let config = NatConfig {
            filtering,
            ..NatConfig::default()
        };
        let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
        let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
        // Even the port the NAT would preserve is closed before `a` sends.
        assert!(sim.inject(y, sa(Y), sa("203.0.113.1:5000"), b"knock"));
        sim.run_for(std::time::Duration::from_secs(1));
        assert!(received_by(&mut sim, a).is_empty(), "{filtering:?}");
        assert_eq!(sim.fate_count(Fate::NoMapping), 1, "{filtering:?}");
    }
}

#[test]
fn a_private_address_is_unreachable_from_the_internet() {
    let mut sim = probe_sim(1);
    let y = host(&mut sim, "y", Realm::Internet, Y);
    let n = nat(
        &mut sim,
        Realm::Internet,
        "203.0.113.1",
        NatConfig::default(),
    );
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    send(&mut sim, y, "10.0.0.2:5000", b"direct");
    assert!(received_by(&mut sim, a).is_empty());
    assert_eq!(sim.fate_count(Fate::NoRoute), 1);
}
