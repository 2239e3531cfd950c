//! TTL: each NAT box takes one, the Internet takes `internet_hops`; a datagram whose TTL
//! runs out is dropped where Linux drops it, so a low-TTL datagram opens the sender's
//! own mapping and expires before it reaches the peer's NAT.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_core::Transmit;
use dhtmeet_sim::{
    DEFAULT_INTERNET_HOPS, Fate, HostId, MappingBehavior, NatConfig, NatId, PortAssignment, Realm,
    RefusedInbound, Sim,
};

/// `a` behind a symmetric NAT, `b` behind a NAT whose refused datagrams claim ports
/// (so that anything reaching it leaves a trace in its counters).
fn two_sites(seed: u64) -> (Sim<Probe>, HostId, NatId, NatId) {
    let mut sim = probe_sim(seed);
    let na = nat(
        &mut sim,
        Realm::Internet,
        "203.0.113.1",
        NatConfig {
            mapping: MappingBehavior::AddressAndPortDependent,
            port_assignment: PortAssignment::Random,
            ..NatConfig::default()
        },
    );
    let nb = nat(
        &mut sim,
        Realm::Internet,
        "198.51.100.1",
        NatConfig {
            refused_inbound: RefusedInbound::ClaimsPort {
                timeout: Duration::from_secs(30),
            },
            ..NatConfig::default()
        },
    );
    let a = host(&mut sim, "a", na.inside(), "10.0.0.2:4000");
    host(&mut sim, "b", nb.inside(), "10.0.0.2:4000");
    (sim, a, na, nb)
}

/// `a` sends one datagram to `b`'s NAT with this TTL.
fn send_with_ttl(sim: &mut Sim<Probe>, a: HostId, ttl: Option<u8>) {
    let mut t = Transmit::new(sa("198.51.100.1:4000"), b"probe".to_vec());
    t.ttl = ttl;
    sim.with_machine(a, |p, _| p.send_transmit(t));
    sim.run_for(Duration::from_secs(1));
}

#[test]
fn a_low_ttl_datagram_opens_our_mapping_but_never_reaches_the_peers_nat() {
    let seed = test_seed(2);
    assert_eq!(DEFAULT_INTERNET_HOPS, 4);
    // TTL 2: our NAT (2 → 1) maps it, the Internet's first router drops it.
    let (mut sim, a, na, nb) = two_sites(seed);
    send_with_ttl(&mut sim, a, Some(2));
    let (ours, theirs) = (sim.nat(na).expect("nat"), sim.nat(nb).expect("nat"));
    assert_eq!(ours.stats().mappings_created, 1, "seed {seed}");
    assert_eq!(ours.stats().outbound, 1, "seed {seed}");
    assert_eq!(theirs.stats().claims, 0, "seed {seed}");
    assert_eq!(theirs.stats().dropped_no_mapping, 0, "seed {seed}");
    assert_eq!(sim.fate_count(Fate::TtlExpired), 1, "seed {seed}");
    // The same datagram with the default TTL reaches their NAT and claims a port there.
    send_with_ttl(&mut sim, a, None);
    let theirs = sim.nat(nb).expect("nat");
    assert_eq!(theirs.stats().claims, 1, "seed {seed}");
    assert_eq!(sim.fate_count(Fate::TtlExpired), 1, "seed {seed}");
}

#[test]
fn a_datagram_with_ttl_1_dies_at_our_nat_before_any_mapping() {
    let seed = test_seed(3);
    let (mut sim, a, na, _) = two_sites(seed);
    send_with_ttl(&mut sim, a, Some(1));
    let ours = sim.nat(na).expect("nat");
    assert_eq!(ours.stats().mappings_created, 0, "seed {seed}");
    assert_eq!(sim.fate_count(Fate::TtlExpired), 1, "seed {seed}");
    send_with_ttl(&mut sim, a, Some(0));
    assert_eq!(
        sim.fate_count(Fate::TtlExpired),
        2,
        "seed {seed}: TTL 0 never leaves"
    );
}

/// Our NAT (1) + the Internet (`hops`): TTL `1 + hops` expires in the Internet, `2 +
/// hops` reaches their NAT (a claim there) and expires in its forward; their NAT counts
/// it either way, never a third party.
#[test]
fn the_internet_takes_as_many_hops_as_configured() {
    let seed = test_seed(4);
    for hops in [0u8, 1, 4, 10] {
        let (mut sim, a, _, nb) = two_sites(seed);
        sim.set_internet_hops(hops);
        send_with_ttl(&mut sim, a, Some(1 + hops));
        assert_eq!(sim.nat(nb).expect("nat").stats().claims, 0, "hops {hops}");
        assert_eq!(sim.fate_count(Fate::TtlExpired), 1, "hops {hops}");
        send_with_ttl(&mut sim, a, Some(2 + hops));
        assert_eq!(sim.nat(nb).expect("nat").stats().claims, 1, "hops {hops}");
    }
}

/// A reply needs a TTL of 2 to pass the peer's NAT inwards: one to get through, one to
/// arrive with.
#[test]
fn an_inbound_datagram_needs_a_ttl_left_to_be_forwarded_inside() {
    let seed = test_seed(5);
    let mut sim = probe_sim(seed);
    let n = nat(
        &mut sim,
        Realm::Internet,
        "203.0.113.1",
        NatConfig::default(),
    );
    let inside = host(&mut sim, "inside", n.inside(), "10.0.0.2:4000");
    let server = host(&mut sim, "server", Realm::Internet, "192.0.2.1:3478");
    send(&mut sim, inside, "192.0.2.1:3478", b"hello");
    let from = received_by(&mut sim, server)[0].remote;
    for (ttl, arrives) in [
        (DEFAULT_INTERNET_HOPS + 1, false),
        (DEFAULT_INTERNET_HOPS + 2, true),
    ] {
        let mut t = Transmit::new(from, b"reply".to_vec());
        t.ttl = Some(ttl);
        sim.with_machine(server, |p, _| p.send_transmit(t));
        sim.run_for(Duration::from_secs(1));
        assert_eq!(
            !received_by(&mut sim, inside).is_empty(),
            arrives,
            "ttl {ttl}"
        );
    }
}
