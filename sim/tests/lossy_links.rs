//! Links: latency, loss (random and bursty), duplication, reordering, rate and queue
//! limits, measured over many datagrams.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_sim::{Fate, GilbertElliott, HostSpec, LinkConfig, Realm, Sim};

const N: u32 = 10_000;

/// Sends `n` numbered datagrams from a host with link `link` to an ideal host, `gap`
/// apart; the sequence numbers received, in order of arrival.
fn blast(
    link: LinkConfig,
    n: u32,
    gap: Duration,
    size: usize,
    seed: u64,
) -> (Sim<Probe>, Vec<u32>) {
    let mut sim = probe_sim(seed);
    let a = sim
        .add_host(
            HostSpec::new("a", Realm::Internet, sa("192.0.2.1:1")).with_link(link),
            Probe::new(),
        )
        .expect("valid");
    let b = host(&mut sim, "b", Realm::Internet, "192.0.2.2:1");
    for i in 0..n {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(size.max(4), 0);
        sim.with_machine(a, |p, _| p.send(sa("192.0.2.2:1"), &payload));
        sim.run_for(gap);
    }
    sim.run_for(Duration::from_secs(60));
    let got = received_by(&mut sim, b)
        .iter()
        .map(|r| u32::from_be_bytes(r.payload[..4].try_into().expect("4 bytes")))
        .collect();
    (sim, got)
}

#[test]
fn latency_of_two_links_adds_up() {
    let mut sim = probe_sim(1);
    let ten = LinkConfig::with_latency(Duration::from_millis(10));
    let a = sim
        .add_host(
            HostSpec::new("a", Realm::Internet, sa("192.0.2.1:1")).with_link(ten.clone()),
            Probe::new(),
        )
        .expect("valid");
    let b = sim
        .add_host(
            HostSpec::new("b", Realm::Internet, sa("192.0.2.2:1")).with_link(ten),
            Probe::new(),
        )
        .expect("valid");
    sim.with_machine(a, |p, _| p.send(sa("192.0.2.2:1"), b"x"));
    let e = sim
        .run_until_event(Duration::from_secs(1))
        .expect("delivered");
    assert_eq!(e.host, b);
    assert_eq!(e.at, Duration::from_millis(20));
}

#[test]
fn random_loss_drops_about_the_configured_share() {
    let seed = test_seed(1);
    let link = LinkConfig {
        loss: 0.1,
        ..LinkConfig::default()
    };
    let (sim, got) = blast(link, N, Duration::from_millis(1), 4, seed);
    let lost = f64::from(N - got.len() as u32) / f64::from(N);
    assert!((0.08..0.12).contains(&lost), "seed {seed}: lost {lost}");
    assert_eq!(sim.fate_count(Fate::Lost), u64::from(N) - got.len() as u64);
}

#[test]
fn gilbert_elliott_loss_comes_in_bursts() {
    let seed = test_seed(2);
    let link = LinkConfig {
        burst: Some(GilbertElliott {
            p_enter_bad: 0.02,
            p_leave_bad: 0.25,
            loss_good: 0.0,
            loss_bad: 1.0,
        }),
        ..LinkConfig::default()
    };
    let (_, got) = blast(link, N, Duration::from_millis(1), 4, seed);
    // Lengths of runs of consecutive losses.
    let mut bursts = Vec::new();
    let mut expected_next = 0;
    for &s in &got {
        if s > expected_next {
            bursts.push(s - expected_next);
        }
        expected_next = s + 1;
    }
    let mean = f64::from(bursts.iter().sum::<u32>()) / bursts.len() as f64;
    // Mean burst length 1 / p_leave_bad = 4 (independent 7% loss would give ~1.08).
    assert!(
        (3.0..5.0).contains(&mean),
        "seed {seed}: mean burst {mean} over {} bursts",
        bursts.len()
    );
    // Stationary loss p_enter / (p_enter + p_leave) ≈ 7.4%.
    let lost = f64::from(N - got.len() as u32) / f64::from(N);
    assert!((0.05..0.10).contains(&lost), "seed {seed}: lost {lost}");
}

#[test]
fn duplication_delivers_some_datagrams_twice() {
    let seed = test_seed(3);
    let link = LinkConfig {
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let (sim, got) = blast(link, N, Duration::from_millis(1), 4, seed);
    let extra = got.len() as f64 / f64::from(N) - 1.0;
    assert!(
        (0.04..0.06).contains(&extra),
        "seed {seed}: duplicated {extra}"
    );
    assert_eq!(
        sim.fate_count(Fate::Duplicated),
        got.len() as u64 - u64::from(N)
    );
}

#[test]
fn jitter_keeps_order_and_reordering_breaks_it() {
    let seed = test_seed(4);
    let jitter = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(15),
        ..LinkConfig::default()
    };
    let (_, got) = blast(jitter.clone(), 1000, Duration::from_millis(1), 4, seed);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: a FIFO link reordered"
    );
    let reorder = LinkConfig {
        reorder: 0.1,
        reorder_delay: Duration::from_millis(5),
        ..jitter
    };
    let (_, got) = blast(reorder, 1000, Duration::from_millis(1), 4, seed);
    assert_eq!(got.len(), 1000);
    let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 20, "seed {seed}: only {inversions} inversions");
}

#[test]
fn the_rate_limit_paces_and_the_queue_limit_tail_drops() {
    // 100 × 1000 bytes at once into 100 kB/s: the last arrives after ~1 s.
    let paced = LinkConfig {
        rate: Some(100_000),
        queue_limit: 1_000_000,
        ..LinkConfig::default()
    };
    let mut sim = probe_sim(1);
    let a = sim
        .add_host(
            HostSpec::new("a", Realm::Internet, sa("192.0.2.1:1")).with_link(paced.clone()),
            Probe::new(),
        )
        .expect("valid");
    let b = host(&mut sim, "b", Realm::Internet, "192.0.2.2:1");
    sim.with_machine(a, |p, _| {
        for _ in 0..100 {
            p.send(sa("192.0.2.2:1"), &[7u8; 1000]);
        }
    });
    let mut last = Duration::ZERO;
    while let Some(e) = sim.run_until_event(Duration::from_secs(5)) {
        assert_eq!(e.host, b);
        last = e.at;
    }
    assert_eq!(last, Duration::from_secs(1));
    // The same burst into a 10 kB queue: 10 fit, 90 are dropped.
    let small = LinkConfig {
        queue_limit: 10_000,
        ..paced
    };
    sim.set_link(a.into(), small).expect("valid");
    sim.with_machine(a, |p, _| {
        for _ in 0..100 {
            p.send(sa("192.0.2.2:1"), &[7u8; 1000]);
        }
    });
    sim.run_for(Duration::from_secs(5));
    assert_eq!(received_by(&mut sim, b).len(), 10);
    assert_eq!(sim.fate_count(Fate::QueueOverflow), 90);
}
