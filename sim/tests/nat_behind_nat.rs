//! NAT behind NAT (CGNAT, RFC 6888): a home router inside a carrier-grade NAT.

mod common;

use common::*;
use dhtmeet_sim::{CGNAT_HOME_EXTERNAL, Fate, LinkConfig, NatId, NatPreset, Realm};

const S: &str = "192.0.2.1:3478";
const Y: &str = "198.51.100.1:3478";

#[test]
fn the_world_sees_the_outer_nat_and_replies_come_back_through_both() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let lan = NatPreset::Cgnat
        .install(
            &mut sim,
            "site",
            Realm::Internet,
            ip("203.0.113.1"),
            LinkConfig::default(),
        )
        .expect("valid preset");
    assert_eq!(lan, NatId::inside(cgn_inner(&sim)));
    let a = host(&mut sim, "a", lan, "192.168.1.10:4000");
    send(&mut sim, a, S, b"hello");
    let seen = received_by(&mut sim, s);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].remote.ip(), ip("203.0.113.1"));
    assert_eq!(
        sim.fate_count(Fate::Translated),
        4,
        "two NATs, both directions"
    );
    assert_eq!(
        sim.fate_count(Fate::Delivered),
        2,
        "the datagram and its echo"
    );
    let inner = sim.nat(cgn_inner(&sim)).expect("inner NAT");
    assert_eq!(inner.external(), std::net::IpAddr::V4(CGNAT_HOME_EXTERNAL));
    assert_eq!(inner.stats().inbound, 1);
}

fn cgn_inner(sim: &dhtmeet_sim::Sim<Probe>) -> NatId {
    // The preset names the home router inside the carrier NAT `<site>-cgnat-inner1`.
    sim.nat_ids()
        .find(|&id| sim.nat_name(id) == Some("site-cgnat-inner1"))
        .expect("the inner NAT")
}

#[test]
fn unsolicited_traffic_stops_at_the_outer_nat() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let y = host(&mut sim, "y", Realm::Internet, Y);
    let lan = NatPreset::Cgnat
        .install(
            &mut sim,
            "site",
            Realm::Internet,
            ip("203.0.113.1"),
            LinkConfig::default(),
        )
        .expect("valid preset");
    let a = host(&mut sim, "a", lan, "192.168.1.10:4000");
    send(&mut sim, a, S, b"hello");
    let mapping = received_by(&mut sim, s)[0].remote;
    assert!(sim.inject(y, sa(Y), mapping, b"knock"));
    sim.run_for(std::time::Duration::from_secs(1));
    assert!(received_by(&mut sim, a).is_empty());
    assert_eq!(sim.fate_count(Fate::Filtered), 1);
}
