//! Partitions and repair, crash and restart, churn.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_sim::{ChurnConfig, Fate, LinkConfig, NatPreset, Realm};

#[test]
fn a_partition_drops_traffic_until_repaired() {
    let mut sim = probe_sim(1);
    let a = host(&mut sim, "a", Realm::Internet, "192.0.2.1:1");
    let b = host(&mut sim, "b", Realm::Internet, "192.0.2.2:1");
    let c = host(&mut sim, "c", Realm::Internet, "192.0.2.3:1");
    assert_eq!(received_by(&mut sim, c).len(), 0);
    sim.partition(a, b);
    send(&mut sim, a, "192.0.2.2:1", b"blocked");
    send(&mut sim, b, "192.0.2.1:1", b"blocked too");
    send(&mut sim, a, "192.0.2.3:1", b"not blocked");
    let got = drain(&mut sim);
    assert_eq!(got.len(), 1, "only a → c gets through: {got:?}");
    assert_eq!(got[0].0, c);
    assert_eq!(sim.fate_count(Fate::Partitioned), 2);
    sim.repair(b, a);
    send(&mut sim, a, "192.0.2.2:1", b"healed");
    assert_eq!(received_by(&mut sim, b).len(), 1);
}

#[test]
fn partitioning_a_nat_cuts_off_everyone_behind_it() {
    let mut sim = probe_sim(1);
    let s = echo_host(&mut sim, "s", Realm::Internet, "192.0.2.1:7");
    let lan = NatPreset::FullCone
        .install(
            &mut sim,
            "site",
            Realm::Internet,
            ip("203.0.113.1"),
            LinkConfig::default(),
        )
        .expect("valid preset");
    let a = host(&mut sim, "a", lan, "192.168.1.10:4000");
    let nat = sim.nat_ids().next().expect("one NAT");
    sim.partition(s, nat);
    send(&mut sim, a, "192.0.2.1:7", b"x");
    assert!(drain(&mut sim).is_empty());
    sim.repair_all();
    send(&mut sim, a, "192.0.2.1:7", b"x");
    assert_eq!(received_by(&mut sim, a).len(), 1, "the echo came back");
}

#[test]
fn a_crashed_host_drops_datagrams_and_a_restarted_one_starts_fresh() {
    let mut sim = probe_sim(1);
    let a = host(&mut sim, "a", Realm::Internet, "192.0.2.1:1");
    let b = echo_host(&mut sim, "b", Realm::Internet, "192.0.2.2:1");
    sim.crash(b);
    assert!(sim.machine(b).is_none());
    send(&mut sim, a, "192.0.2.2:1", b"anyone?");
    assert_eq!(sim.fate_count(Fate::HostDown), 1);
    sim.restart(b, Probe::new()); // no longer an echo
    send(&mut sim, a, "192.0.2.2:1", b"hello again");
    assert_eq!(received_by(&mut sim, b).len(), 1);
    assert!(received_by(&mut sim, a).is_empty());
}

#[test]
fn churn_crashes_and_restarts_hosts_from_the_seed() {
    let seed = test_seed(9);
    let run = |seed| {
        let mut sim = probe_sim(seed);
        let hosts: Vec<_> = (1..=20)
            .map(|i| {
                echo_host(
                    &mut sim,
                    &format!("h{i}"),
                    Realm::Internet,
                    &format!("192.0.2.{i}:1"),
                )
            })
            .collect();
        let client = host(&mut sim, "client", Realm::Internet, "198.51.100.1:1");
        let incarnations = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let counter = incarnations.clone();
        sim.churn(
            &hosts,
            ChurnConfig {
                mean_uptime: Duration::from_secs(2),
                mean_downtime: Duration::from_secs(1),
            },
            Box::new(move |_, _, _| {
                counter.set(counter.get() + 1);
                Probe::echo()
            }),
        );
        for _ in 0..100 {
            for i in 1..=20 {
                sim.with_machine(client, |p, _| {
                    p.send(sa(&format!("192.0.2.{i}:1")), b"ping")
                });
            }
            sim.run_for(Duration::from_millis(100));
        }
        (
            incarnations.get(),
            sim.fate_count(Fate::HostDown),
            sim.trace_hash(),
        )
    };
    let (restarts, down, hash) = run(seed);
    assert!(restarts > 20, "seed {seed}: {restarts} restarts");
    assert!(down > 100, "seed {seed}: {down} datagrams to crashed hosts");
    assert_eq!(run(seed).2, hash, "seed {seed}");
}
