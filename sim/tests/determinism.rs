//! Reproducibility: the same seed gives the same trace hash; another seed another one.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_core::Seed;
use dhtmeet_sim::scenario::stun;
use dhtmeet_sim::{
    ChurnConfig, GilbertElliott, HostSpec, LinkConfig, NatPreset, Realm, Sim, TraceHash,
};

#[test]
fn the_stun_scenario_reproduces_from_its_seed() {
    let seed = test_seed(42);
    for preset in NatPreset::ALL {
        let a = stun::run(preset, seed, None).expect("runs");
        let b = stun::run(preset, seed, None).expect("runs");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}: {preset}");
        assert_eq!(a.report, b.report, "seed {seed}: {preset}");
        let c = stun::run(preset, seed + 1, None).expect("runs");
        assert_ne!(
            a.trace_hash,
            c.trace_hash,
            "seeds {seed}, {}: {preset}",
            seed + 1
        );
    }
}

/// 40 echoing hosts in pairs across every preset, over lossy, jittery, duplicating,
/// reordering, rate-limited links, with churn: the run that exercises every random
/// choice the simulator makes.
fn stormy_run(seed: u64) -> (TraceHash, u64) {
    let mut sim: Sim<Probe> = Sim::new(Seed::from_u64(seed));
    let link = LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(10),
        loss: 0.05,
        duplicate: 0.02,
        reorder: 0.05,
        rate: Some(200_000),
        queue_limit: 4_000,
        ..LinkConfig::default()
    };
    let bursty = LinkConfig {
        burst: Some(GilbertElliott {
            p_enter_bad: 0.05,
            p_leave_bad: 0.3,
            loss_good: 0.0,
            loss_bad: 0.8,
        }),
        ..link.clone()
    };
    let mut servers = Vec::new();
    for i in 0..20u8 {
        let addr = format!("192.0.2.{}:7", i + 1);
        let spec =
            HostSpec::new(format!("echo{i}"), Realm::Internet, sa(&addr)).with_link(bursty.clone());
        servers.push((sim.add_host(spec, Probe::echo()).expect("valid"), sa(&addr)));
    }
    let mut clients = Vec::new();
    for i in 0..20u8 {
        let preset = NatPreset::ALL[usize::from(i) % NatPreset::ALL.len()];
        let public = ip(&format!("203.0.113.{}", i + 1));
        let lan = preset
            .install(
                &mut sim,
                &format!("site{i}"),
                Realm::Internet,
                public,
                link.clone(),
            )
            .expect("valid preset");
        let addr = if lan == Realm::Internet {
            std::net::SocketAddr::new(public, 4000)
        } else {
            sa("192.168.1.10:4000")
        };
        clients.push(
            sim.add_host(HostSpec::new(format!("c{i}"), lan, addr), Probe::new())
                .expect("valid"),
        );
    }
    let echo_ids: Vec<_> = servers.iter().map(|(h, _)| *h).collect();
    sim.churn(
        &echo_ids,
        ChurnConfig {
            mean_uptime: Duration::from_secs(3),
            mean_downtime: Duration::from_millis(500),
        },
        Box::new(|_, _, _| Probe::echo()),
    );
    for round in 0..50u32 {
        for (i, &c) in clients.iter().enumerate() {
            let dst = servers[i].1;
            sim.with_machine(c, |p, _| p.send(dst, &round.to_be_bytes()));
        }
        sim.run_for(Duration::from_millis(200));
        while sim.poll_event().is_some() {}
    }
    (sim.trace_hash(), sim.stats().delivered)
}

#[test]
fn a_stormy_network_with_churn_reproduces_from_its_seed() {
    let seed = test_seed(7);
    let (a, delivered) = stormy_run(seed);
    let (b, _) = stormy_run(seed);
    assert_eq!(a, b, "seed {seed}");
    assert!(delivered > 500, "seed {seed}: only {delivered} delivered");
    let (c, _) = stormy_run(seed + 1);
    assert_ne!(a, c, "seeds {seed} and {}", seed + 1);
}
