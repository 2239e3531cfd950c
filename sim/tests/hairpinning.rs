//! RFC 4787 §6: hairpinning. Two hosts behind one NAT reach each other through their
//! external mappings; the receiver sees the sender's external address (REQ-9a).

mod common;

use common::*;
use dhtmeet_sim::{Fate, FilteringBehavior, LinkConfig, NatConfig, NatPreset, Realm};

const S: &str = "192.0.2.1:3478";

#[test]
fn a_hairpinning_nat_delivers_with_the_external_source_address() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let config = NatConfig {
        filtering: FilteringBehavior::EndpointIndependent,
        hairpinning: true,
        ..NatConfig::default()
    };
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    let b = host(&mut sim, "b", n.inside(), "10.0.0.3:6000");
    send(&mut sim, a, S, b"learn");
    send(&mut sim, b, S, b"learn");
    let seen: Vec<_> = received_by(&mut sim, s).iter().map(|r| r.remote).collect();
    let (ma, mb) = (seen[0], seen[1]);
    send(&mut sim, b, &ma.to_string(), b"via the NAT");
    let got = received_by(&mut sim, a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].remote, mb,
        "REQ-9a: the external source, not 10.0.0.3"
    );
    assert_eq!(sim.fate_count(Fate::Hairpinned), 1);
}

#[test]
fn hairpinned_datagrams_pass_the_destinations_filter() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let config = NatConfig {
        filtering: FilteringBehavior::AddressAndPortDependent,
        hairpinning: true,
        ..NatConfig::default()
    };
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    let b = host(&mut sim, "b", n.inside(), "10.0.0.3:6000");
    send(&mut sim, a, S, b"learn");
    send(&mut sim, b, S, b"learn");
    let seen: Vec<_> = received_by(&mut sim, s).iter().map(|r| r.remote).collect();
    let (ma, mb) = (seen[0], seen[1]);
    // b → Ma first: a never sent to Mb, so a's filter refuses it...
    send(&mut sim, b, &ma.to_string(), b"1");
    assert!(received_by(&mut sim, a).is_empty());
    assert_eq!(sim.fate_count(Fate::Filtered), 1);
    // ...but it opened b's filter for Ma, so a → Mb passes, and opens a's for Mb.
    send(&mut sim, a, &mb.to_string(), b"2");
    assert_eq!(received_by(&mut sim, b).len(), 1);
    send(&mut sim, b, &ma.to_string(), b"3");
    assert_eq!(received_by(&mut sim, a).len(), 1);
}

#[test]
fn the_home_preset_does_not_hairpin() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let lan = NatPreset::Home
        .install(
            &mut sim,
            "home",
            Realm::Internet,
            ip("203.0.113.1"),
            LinkConfig::default(),
        )
        .expect("valid preset");
    let a = host(&mut sim, "a", lan, "192.168.1.10:4000");
    let b = host(&mut sim, "b", lan, "192.168.1.11:4000");
    send(&mut sim, a, S, b"learn");
    let ma = received_by(&mut sim, s)[0].remote;
    send(&mut sim, b, &ma.to_string(), b"via the NAT");
    assert!(received_by(&mut sim, a).is_empty());
    assert_eq!(sim.fate_count(Fate::NoHairpinning), 1);
}

#[test]
fn two_homes_behind_one_cgn_reach_each_other_through_its_hairpin() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, S);
    let [cgn_config, home_config] =
        <[NatConfig; 2]>::try_from(NatPreset::Cgnat.layers()).expect("cgnat has two layers");
    let cgn = nat(&mut sim, Realm::Internet, "203.0.113.1", cgn_config);
    let home1 = nat(&mut sim, cgn.inside(), "100.64.0.2", home_config.clone());
    let home2 = nat(&mut sim, cgn.inside(), "100.64.0.3", home_config);
    let a = host(&mut sim, "a", home1.inside(), "192.168.1.10:4000");
    let b = host(&mut sim, "b", home2.inside(), "192.168.1.10:4000");
    send(&mut sim, a, S, b"learn");
    send(&mut sim, b, S, b"learn");
    let seen: Vec<_> = received_by(&mut sim, s).iter().map(|r| r.remote).collect();
    let (ma, mb) = (seen[0], seen[1]);
    assert_eq!(ma.ip(), ip("203.0.113.1"));
    assert_eq!(mb.ip(), ip("203.0.113.1"));
    // Both punch at once (the first datagrams open the filters), then again.
    for _ in 0..2 {
        sim.with_machine(a, |p, _| p.send(mb, b"a"));
        sim.with_machine(b, |p, _| p.send(ma, b"b"));
        sim.run_for(std::time::Duration::from_secs(1));
    }
    let got = drain(&mut sim);
    assert!(
        got.iter().any(|(h, r)| *h == a && r.remote == mb),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(h, r)| *h == b && r.remote == ma),
        "{got:?}"
    );
    assert!(sim.fate_count(Fate::Hairpinned) >= 2);
}
