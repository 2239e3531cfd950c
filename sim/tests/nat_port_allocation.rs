//! RFC 4787 §4.2.1 port assignment, on the NAT table alone: preserving, sequential with
//! a step, random, and other hosts' background mappings moving a sequential counter.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use common::test_seed;
use dhtmeet_core::Seed;
use dhtmeet_sim::{BackgroundTraffic, MappingBehavior, Nat, NatConfig, NatDrop, PortAssignment};
use quickcheck::{QuickCheck, TestResult};

const SECOND: u64 = 1_000_000_000;
const INTERNAL: &str = "10.0.0.2:4000";

fn symmetric(assignment: PortAssignment, range: RangeInclusive<u16>) -> NatConfig {
    NatConfig {
        mapping: MappingBehavior::AddressAndPortDependent,
        port_assignment: assignment,
        port_range: range,
        ..NatConfig::default()
    }
}

fn nat(config: NatConfig, seed: u64) -> Nat {
    Nat::new(
        config,
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        Seed::from_u64(seed).rng(),
    )
    .expect("a valid config")
}

/// The `i`-th distinct destination: behind an APDM NAT, each gets a new mapping.
fn destination(i: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (i >> 16))),
        i as u16,
    )
}

/// The external port of a new mapping to destination `i` at `at` ns.
fn port(n: &mut Nat, at: u64, i: u32) -> Result<u16, NatDrop> {
    let src: SocketAddr = INTERNAL.parse().expect("literal");
    n.outbound(at, src, destination(i)).map(|a| a.port())
}

#[test]
fn a_sequential_nat_gives_ports_its_step_apart_and_skips_bound_ones() {
    let mut n = nat(
        symmetric(PortAssignment::Sequential { step: 3 }, 5000..=5020),
        1,
    );
    let ports: Vec<u16> = (0..7).map(|i| port(&mut n, 0, i).expect("free")).collect();
    assert_eq!(ports, vec![5000, 5003, 5006, 5009, 5012, 5015, 5018]);
    // The walk wraps to 5000 and finds every port of its lattice bound: the next free
    // port one by one, never one given before.
    assert_eq!(port(&mut n, 0, 7), Ok(5001));
    // Step 1 is the classic counter.
    let mut one = nat(symmetric(PortAssignment::SEQUENTIAL, 6000..=6010), 1);
    let ports: Vec<u16> = (0..3)
        .map(|i| port(&mut one, 0, i).expect("free"))
        .collect();
    assert_eq!(ports, vec![6000, 6001, 6002]);
}

#[test]
fn a_zero_step_and_too_fast_background_traffic_are_refused() {
    assert!(
        symmetric(PortAssignment::Sequential { step: 0 }, 1024..=65535)
            .validate()
            .is_err()
    );
    let fast = NatConfig {
        background: Some(BackgroundTraffic {
            mean_interval: Duration::from_micros(99),
        }),
        ..NatConfig::default()
    };
    assert!(fast.validate().is_err());
    assert_eq!(BackgroundTraffic::per_second(0.0), None);
    assert_eq!(BackgroundTraffic::per_second(f64::NAN), None);
    let two = BackgroundTraffic::per_second(2.0).expect("a valid rate");
    assert_eq!(two.mean_interval, Duration::from_millis(500));
    assert!((two.rate() - 2.0).abs() < 1e-9);
}

/// Our ports `dt` seconds apart through a sequential NAT of step `step` whose other
/// hosts make `rate` mappings per second: how far the counter moved in between, in
/// steps (1 = nobody else made a mapping).
fn counter_moves(step: u16, rate: Option<f64>, dt: u64, seed: u64) -> u64 {
    let mut config = symmetric(PortAssignment::Sequential { step }, 1024..=65535);
    config.background = rate.map(|r| BackgroundTraffic::per_second(r).expect("a valid rate"));
    let mut n = nat(config, seed);
    let a = port(&mut n, 0, 0).expect("free");
    let b = port(&mut n, dt * SECOND, 1).expect("free");
    let moved = u64::from(b - a);
    assert_eq!(moved % u64::from(step), 0, "seed {seed}: {a} → {b}");
    moved / u64::from(step)
}

#[test]
fn background_traffic_moves_a_sequential_counter_at_about_its_rate() {
    let seed = test_seed(14);
    // Nobody else: exactly one step.
    assert_eq!(counter_moves(2, None, 100, seed), 1);
    // 2 mappings per second for 100 s: Poisson with mean 200 (sd 14), plus our own step.
    let mut total = 0;
    for s in seed..seed + 10 {
        let moved = counter_moves(2, Some(2.0), 100, s);
        assert!((140..=260).contains(&moved), "seed {s}: moved {moved}");
        total += moved - 1;
    }
    // Over 10 runs: mean 200, sd 4.5.
    let mean = total as f64 / 10.0;
    assert!((185.0..=215.0).contains(&mean), "seed {seed}: mean {mean}");
}

#[test]
fn background_mappings_are_counted_and_hold_their_ports() {
    let seed = test_seed(15);
    let mut config = symmetric(PortAssignment::SEQUENTIAL, 1024..=65535);
    config.background = BackgroundTraffic::per_second(1.0);
    config.mapping_timeout = Duration::from_secs(30);
    let mut n = nat(config, seed);
    port(&mut n, 0, 0).expect("free");
    port(&mut n, 60 * SECOND, 1).expect("free");
    let made = n.stats().background_mappings;
    assert!((30..=95).contains(&made), "seed {seed}: {made}");
    assert_eq!(n.stats().mappings_created, 2, "seed {seed}");
    // Those of the last 30 s are still bound, with ours.
    let live = n.live_bindings(60 * SECOND) as u64;
    assert!(live > 2 && live < made + 2, "seed {seed}: {live} of {made}");
}

#[test]
fn the_same_seed_gives_the_same_ports_and_another_seed_others() {
    let seed = test_seed(16);
    let run = |seed: u64, assignment| {
        let mut config = symmetric(assignment, 1024..=65535);
        config.background = BackgroundTraffic::per_second(5.0);
        let mut n = nat(config, seed);
        (0..50u32)
            .map(|i| port(&mut n, u64::from(i) * SECOND / 3, i).expect("free"))
            .collect::<Vec<u16>>()
    };
    for assignment in [PortAssignment::Random, PortAssignment::SEQUENTIAL] {
        assert_eq!(run(seed, assignment), run(seed, assignment), "seed {seed}");
        assert_ne!(
            run(seed, assignment),
            run(seed + 1, assignment),
            "seed {seed}"
        );
    }
}

#[test]
fn random_ports_spread_uniformly_over_the_range() {
    let seed = test_seed(17);
    let mut config = symmetric(PortAssignment::Random, 1000..=1099);
    config.mapping_timeout = Duration::from_nanos(1);
    let mut n = nat(config, seed);
    let mut buckets = [0u32; 10];
    for i in 0..10_000u32 {
        // Each mapping has expired when the next is made: every port is free.
        let p = port(&mut n, u64::from(i) * 2, i).expect("free");
        assert!((1000..=1099).contains(&p), "seed {seed}: {p}");
        buckets[usize::from((p - 1000) / 10)] += 1;
    }
    // 1,000 expected per bucket (sd 30).
    assert!(
        buckets.iter().all(|&b| (850..=1150).contains(&b)),
        "seed {seed}: {buckets:?}"
    );
}

#[test]
fn a_random_nat_fills_its_whole_range_then_refuses() {
    let seed = test_seed(18);
    let mut n = nat(symmetric(PortAssignment::Random, 7000..=7007), seed);
    let mut ports: Vec<u16> = (0..8).map(|i| port(&mut n, 0, i).expect("free")).collect();
    ports.sort();
    assert_eq!(ports, (7000..=7007).collect::<Vec<_>>(), "seed {seed}");
    assert_eq!(port(&mut n, 0, 8), Err(NatDrop::PortsExhausted));
}

/// Any assignment, range, timeout and schedule of new mappings, with or without
/// background traffic: every port lies in the range, no port is given while it is still
/// bound to one of our earlier mappings, and (without background traffic) the NAT
/// refuses only when all of the range is bound.
#[test]
fn ports_stay_in_range_and_are_never_given_twice_while_bound() {
    fn prop(
        kind: u8,
        step: u8,
        lo: u16,
        len: u8,
        timeout_ms: u16,
        gaps: Vec<u16>,
        bg: bool,
    ) -> TestResult {
        let lo = lo.max(1024);
        let hi = lo.saturating_add(u16::from(len % 64));
        let assignment = match kind % 3 {
            0 => PortAssignment::Preserving,
            1 => PortAssignment::Sequential {
                step: u16::from(step % 8) + 1,
            },
            _ => PortAssignment::Random,
        };
        let mut config = symmetric(assignment, lo..=hi);
        config.mapping_timeout = Duration::from_millis(u64::from(timeout_ms) + 1);
        if bg {
            config.background = BackgroundTraffic::per_second(20.0);
        }
        let timeout = 1_000_000 * (u64::from(timeout_ms) + 1);
        let mut n = nat(config, u64::from(lo) ^ u64::from(timeout_ms));
        let mut bound: Vec<(u16, u64)> = Vec::new();
        let mut now = 0;
        for (i, gap) in gaps.iter().enumerate() {
            now += u64::from(*gap) * 100_000; // up to 6.5 s
            bound.retain(|&(_, expires)| expires > now);
            match port(&mut n, now, i as u32) {
                Ok(p) => {
                    let preserved = assignment == PortAssignment::Preserving && p == 4000;
                    if !(preserved || (lo..=hi).contains(&p)) {
                        return TestResult::error(format!("{p} outside {lo}..={hi}"));
                    }
                    if bound.iter().any(|&(q, _)| q == p) {
                        return TestResult::error(format!("{p} given twice at {now}"));
                    }
                    bound.push((p, now + timeout));
                }
                Err(NatDrop::PortsExhausted) => {
                    let span = usize::from(hi - lo) + 1;
                    let in_range = bound.iter().filter(|(q, _)| (lo..=hi).contains(q)).count();
                    if !bg && in_range < span {
                        return TestResult::error(format!(
                            "refused with {in_range} of {span} bound"
                        ));
                    }
                }
                Err(e) => return TestResult::error(format!("{e:?}")),
            }
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(u8, u8, u16, u8, u16, Vec<u16>, bool) -> TestResult);
}
