use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quickcheck::QuickCheck;

use super::*;
use crate::stun::{Mapping, Observation, StunReport};
use crate::test_clock;

const LOCAL: &str = "10.0.0.2:4000";
const PUBLIC_IP: &str = "203.0.113.5";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn destination(i: usize) -> SocketAddr {
    SocketAddr::new(
        format!("192.0.2.{}", i % 250 + 1).parse().unwrap(),
        6881 + (i / 250) as u16,
    )
}

fn public(port: u16) -> SocketAddr {
    SocketAddr::new(PUBLIC_IP.parse().unwrap(), port)
}

/// Our socket behind a NAT whose n-th new mapping (counting from 0) gets port `port(n)`:
/// sends to `count` new destinations in turn, each answering with the port it saw.
fn observe_behind(count: usize, port: impl Fn(usize) -> u16) -> NatObserver {
    let mut observer = NatObserver::new();
    observer.set_local(addr(LOCAL));
    let start = test_clock::start();
    for i in 0..count {
        let now = start + Duration::from_millis(10 * i as u64);
        observer.note_sent(now, destination(i));
        observer.observe(destination(i), public(port(i)), ObservationSource::Dht);
    }
    observer
}

#[test]
fn fewer_than_three_observations_say_nothing() {
    assert_eq!(observe_behind(0, |_| 50000).class(), NatClass::Unknown);
    assert_eq!(observe_behind(2, |_| 50000).class(), NatClass::Unknown);
    assert_eq!(
        observe_behind(3, |_| 50000).class(),
        NatClass::EndpointIndependent { preserving: false }
    );
    // Different ports, but only two of them: not yet a verdict either.
    assert_eq!(observe_behind(2, |i| 50000 + i as u16).class(), NatClass::Unknown);
}

#[test]
fn one_port_for_every_destination_is_endpoint_independent() {
    assert_eq!(
        observe_behind(5, |_| 4000).class(),
        NatClass::EndpointIndependent { preserving: true }
    );
    assert_eq!(
        observe_behind(5, |_| 61000).class(),
        NatClass::EndpointIndependent { preserving: false }
    );
}

#[test]
fn our_own_address_seen_from_outside_is_open() {
    let mut observer = NatObserver::new();
    observer.set_local(addr("198.51.100.7:4000"));
    for i in 0..3 {
        observer.observe(destination(i), addr("198.51.100.7:4000"), ObservationSource::Stun);
    }
    assert_eq!(observer.class(), NatClass::Open);
}

#[test]
fn one_lying_dht_node_cannot_flip_endpoint_independent() {
    let honest = NatClass::EndpointIndependent { preserving: false };
    for liar_at in 0..4 {
        // The liar's port: anything, including "the next port" or our local one.
        for lie in [61001, 4000, 1, 65535] {
            let o = observe_behind(4, |i| if i == liar_at { lie } else { 61000 });
            assert_eq!(o.class(), honest, "liar at {liar_at} says {lie}");
        }
    }
    // Two honest and one liar: no verdict yet, never "random".
    let o = observe_behind(3, |i| if i == 1 { 1234 } else { 61000 });
    assert_eq!(o.class(), NatClass::Unknown);
    // A liar reporting another IP is left out of the vote.
    let mut o = observe_behind(3, |_| 61000);
    o.observe(destination(9), addr("192.0.2.200:61000"), ObservationSource::Dht);
    o.observe(destination(10), addr("192.0.2.200:1"), ObservationSource::Dht);
    assert_eq!(o.class(), honest);
    // Three liars agreeing against three honest observers: no strict majority.
    let o = observe_behind(6, |i| if i % 2 == 0 { 61000 } else { 7000 });
    assert_eq!(o.class(), NatClass::Unknown);
}

#[test]
fn ports_that_grow_with_our_new_mappings_are_sequential() {
    assert_eq!(
        observe_behind(6, |i| 30000 + i as u16).class(),
        NatClass::Sequential { step: 1 }
    );
    assert_eq!(
        observe_behind(6, |i| 30000 + 2 * i as u16).class(),
        NatClass::Sequential { step: 2 }
    );
    assert_eq!(
        observe_behind(3, |i| 30000 + 16 * i as u16).class(),
        NatClass::Sequential { step: 16 }
    );
    // A step above MAX_STEP is not called sequential.
    assert_eq!(
        observe_behind(6, |i| 10000 + 1000 * i as u16).class(),
        NatClass::Random
    );
}

#[test]
fn mappings_we_made_without_an_observation_count_in_the_step() {
    // Between two observed destinations our socket sent to two others (a DHT node that
    // did not report `ip`, a member): the NAT's counter moved by 3, not 1.
    let mut observer = NatObserver::new();
    observer.set_local(addr(LOCAL));
    let now = test_clock::start();
    for i in 0..12 {
        observer.note_sent(now, destination(i));
        if i % 3 == 0 {
            let port = 40000 + i as u16;
            observer.observe(destination(i), public(port), ObservationSource::Dht);
        }
    }
    assert_eq!(observer.observations().len(), 4);
    assert_eq!(observer.class(), NatClass::Sequential { step: 1 });
}

#[test]
fn background_traffic_gaps_in_a_sequential_series_are_tolerated() {
    // Other hosts behind the NAT took ports between some of ours: 3 after our 3rd
    // mapping, 10 after our 6th, 1 after our 7th.
    let gaps = |i: usize| -> u16 {
        [0, 0, 0, 3, 3, 3, 13, 14, 14, 14][i.min(9)]
    };
    assert_eq!(
        observe_behind(10, |i| 20000 + i as u16 + gaps(i)).class(),
        NatClass::Sequential { step: 1 }
    );
    assert_eq!(
        observe_behind(10, |i| 20000 + 4 * (i as u16 + gaps(i))).class(),
        NatClass::Sequential { step: 4 }
    );
    // But when background traffic moved the counter at nearly every step, there is no
    // step to predict by: random.
    assert_eq!(
        observe_behind(8, |i| 20000 + (i * i * 7) as u16).class(),
        NatClass::Random
    );
}

#[test]
fn a_liar_or_a_wrap_inside_a_sequential_series_is_tolerated() {
    let series = |i: usize| 30000 + i as u16;
    for liar_at in 0..8 {
        let o = observe_behind(8, |i| if i == liar_at { 11111 } else { series(i) });
        assert_eq!(o.class(), NatClass::Sequential { step: 1 }, "liar at {liar_at}");
    }
    // The allocator wraps from the top of its range to the bottom.
    let o = observe_behind(8, |i| if i < 6 { 65530 + i as u16 } else { 1024 + i as u16 });
    assert_eq!(o.class(), NatClass::Sequential { step: 1 });
}

/// xorshift64: deterministic "random" ports.
fn random_ports(seed: u64) -> impl Fn(usize) -> u16 {
    move |i| {
        let mut x = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        1024 + (x % 64512) as u16
    }
}

#[test]
fn unpredictable_ports_are_random() {
    for seed in 1..50 {
        let o = observe_behind(6, random_ports(seed));
        assert_eq!(o.class(), NatClass::Random, "seed {seed}");
    }
}

#[test]
fn a_first_mapping_that_kept_the_local_port_is_port_preserving() {
    let o = observe_behind(5, |i| if i == 0 { 4000 } else { random_ports(7)(i) });
    assert_eq!(o.class(), NatClass::PortPreserving);
    // The local port first seen later (not the socket's first mapping) proves nothing.
    let o = observe_behind(5, |i| if i == 2 { 4000 } else { random_ports(7)(i) });
    assert_eq!(o.class(), NatClass::Random);
}

#[test]
fn two_destinations_sharing_a_mapping_still_show_the_allocator() {
    // An address-dependent NAT: destinations 0 and 1 are one IP, so one mapping.
    let mut observer = NatObserver::new();
    observer.set_local(addr(LOCAL));
    let now = test_clock::start();
    let same_ip = [addr("192.0.2.1:6881"), addr("192.0.2.1:6882")];
    for d in same_ip {
        observer.note_sent(now, d);
        observer.observe(d, public(30000), ObservationSource::Dht);
    }
    for i in 2..6 {
        observer.note_sent(now, destination(i));
        observer.observe(destination(i), public(30000 + i as u16 - 1), ObservationSource::Dht);
    }
    assert_eq!(observer.class(), NatClass::Sequential { step: 1 });
}

fn report(mapped: &[(&str, &str)]) -> StunReport {
    let observations: Vec<Observation> = mapped
        .iter()
        .map(|(server, m)| Observation {
            server: addr(server),
            mapped: addr(m),
            rtt: Duration::from_millis(20),
        })
        .collect();
    let mapping = if observations.iter().all(|o| o.mapped == observations[0].mapped) {
        Mapping::EndpointIndependent
    } else {
        Mapping::EndpointDependent
    };
    StunReport {
        first: observations[0],
        mapping,
        observations,
    }
}

#[test]
fn a_stun_round_showing_another_nat_starts_afresh() {
    let mut o = observe_behind(4, |_| 61000);
    assert_eq!(o.class(), NatClass::EndpointIndependent { preserving: false });
    // Same NAT, same mapping: one more agreeing observation.
    let same = report(&[("192.0.2.50:3478", "203.0.113.5:61000")]);
    assert_eq!(o.observe_stun_round(&same), None);
    assert_eq!(o.observations().len(), 5);
    // Another public IP: the old observations are dropped, two are not enough.
    let moved = report(&[
        ("192.0.2.50:3478", "198.51.100.9:7000"),
        ("192.0.2.51:3478", "198.51.100.9:7000"),
    ]);
    assert_eq!(o.observe_stun_round(&moved), Some(NatClass::Unknown));
    assert_eq!(o.observations().len(), 2);
    // The same IP, but the endpoint-independent mapping moved: afresh too.
    let mut o = observe_behind(4, |_| 61000);
    let remapped = report(&[
        ("192.0.2.50:3478", "203.0.113.5:62000"),
        ("192.0.2.51:3478", "203.0.113.5:62000"),
    ]);
    assert_eq!(o.observe_stun_round(&remapped), Some(NatClass::Unknown));
    // A new local address (another network): afresh.
    let mut o = observe_behind(4, |_| 61000);
    assert_eq!(o.set_local(addr("10.9.9.9:4000")), Some(NatClass::Unknown));
    assert_eq!(o.observations().len(), 0);
}

#[test]
fn memory_is_bounded() {
    let mut observer = NatObserver::new();
    observer.set_local(addr(LOCAL));
    let start = test_clock::start();
    for i in 0..10_000usize {
        let d = SocketAddr::new(
            std::net::Ipv4Addr::from(0x0A00_0000 + i as u32).into(),
            (i % 60000) as u16,
        );
        observer.note_sent(start + Duration::from_millis(i as u64), d);
        observer.observe(d, public((i % 65536) as u16), ObservationSource::Dht);
    }
    assert_eq!(observer.observations().len(), MAX_OBSERVATIONS);
    assert!(observer.sends_len() <= MAX_DESTINATIONS);
}

#[test]
fn a_destination_idle_past_the_mapping_timeout_makes_a_new_mapping() {
    let mut observer = NatObserver::new();
    observer.set_local(addr(LOCAL));
    let start = test_clock::start();
    observer.note_sent(start, destination(0));
    observer.note_sent(start, destination(1));
    observer.note_sent(start + Duration::from_secs(60), destination(0));
    observer.observe(destination(0), public(1), ObservationSource::Dht);
    let order = |o: &NatObserver| o.observations().last().and_then(|o| o.order);
    assert_eq!(order(&observer), Some(0));
    observer.note_sent(start + Duration::from_secs(60) + MAPPING_IDLE, destination(0));
    observer.observe(destination(0), public(1), ObservationSource::Dht);
    assert_eq!(order(&observer), Some(2));
}

#[test]
fn prop_hostile_observations_never_panic_and_stay_bounded() {
    fn prop(seen: Vec<(u8, u16, bool, u8)>) -> bool {
        let mut observer = NatObserver::new();
        observer.set_local(addr(LOCAL));
        let start: Instant = test_clock::start();
        for (i, (who, port, v6, ip)) in seen.iter().enumerate() {
            let d = destination(usize::from(*who));
            if i % 3 != 0 {
                observer.note_sent(start + Duration::from_secs(i as u64), d);
            }
            let public = if *v6 {
                SocketAddr::new(format!("2001:db8::{ip}").parse().unwrap(), *port)
            } else {
                SocketAddr::new(format!("203.0.113.{ip}").parse().unwrap(), *port)
            };
            observer.observe(d, public, ObservationSource::Dht);
        }
        // Deterministic: the same input gives the same class.
        let class = observer.class();
        let again = {
            let mut o = NatObserver::new();
            o.set_local(addr(LOCAL));
            for (i, (who, port, v6, ip)) in seen.iter().enumerate() {
                let d = destination(usize::from(*who));
                if i % 3 != 0 {
                    o.note_sent(start + Duration::from_secs(i as u64), d);
                }
                let public = if *v6 {
                    SocketAddr::new(format!("2001:db8::{ip}").parse().unwrap(), *port)
                } else {
                    SocketAddr::new(format!("203.0.113.{ip}").parse().unwrap(), *port)
                };
                o.observe(d, public, ObservationSource::Dht);
            }
            o.class()
        };
        observer.observations().len() <= MAX_OBSERVATIONS && class == again
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Vec<(u8, u16, bool, u8)>) -> bool);
}

#[test]
fn the_signaling_form_round_trips_and_unknown_values_are_unknown() {
    let classes = [
        NatClass::Open,
        NatClass::EndpointIndependent { preserving: false },
        NatClass::EndpointIndependent { preserving: true },
        NatClass::PortPreserving,
        NatClass::Sequential { step: 1 },
        NatClass::Sequential { step: 65535 },
        NatClass::Random,
    ];
    for class in classes {
        let wire = class.to_wire().unwrap();
        assert_eq!(NatClass::from_wire(&wire), class);
        let mut longer = wire.clone();
        longer.push(0xff);
        assert_eq!(NatClass::from_wire(&longer), class, "later versions may append");
    }
    assert_eq!(NatClass::Unknown.to_wire(), None);
    assert_eq!(NatClass::Sequential { step: 1 }.to_wire(), Some(vec![5, 0, 1]));
    for unknown in [&[][..], &[0], &[7], &[255, 1, 2], &[5], &[5, 1], &[5, 0, 0]] {
        assert_eq!(NatClass::from_wire(unknown), NatClass::Unknown, "{unknown:?}");
    }
}

#[test]
fn classes_print_as_the_cli_shows_them() {
    assert_eq!(NatClass::Sequential { step: 1 }.to_string(), "sequential(step 1)");
    assert_eq!(
        NatClass::EndpointIndependent { preserving: true }.to_string(),
        "endpoint-independent(preserving)"
    );
    assert_eq!(NatClass::Unknown.to_string(), "unknown");
}

#[test]
fn a_masquerade_port_that_moved_for_new_flows_is_followed() {
    // Linux masquerade: the first six flows kept port 4000; one was diverted and every
    // later new flow leaves from 17419, while the old flows keep 4000.
    let o = observe_behind(9, |i| if i < 6 { 4000 } else { 17419 });
    assert_eq!(o.class(), NatClass::EndpointIndependent { preserving: false });
    assert_eq!(o.public(), Some(public(17419)));
    // One new flow at the new port is not yet a move (it could be a liar).
    let o = observe_behind(7, |i| if i < 6 { 4000 } else { 17419 });
    assert_eq!(o.class(), NatClass::EndpointIndependent { preserving: true });
    assert_eq!(o.public(), Some(public(4000)));
    // Two observers of the newest mappings move it (two colluding liars could, as two
    // honest ones must be able to); the next new flow's honest answer moves it back.
    let o = observe_behind(8, |i| if i == 6 || i == 7 { 17419 } else { 4000 });
    assert_eq!(o.public(), Some(public(17419)));
    let mut o = o;
    o.note_sent(test_clock::start() + Duration::from_secs(1), destination(8));
    o.observe(destination(8), public(4000), ObservationSource::Dht);
    assert_eq!(o.public(), Some(public(4000)));
    // Old and new ports interleaved by creation order: no move, and no verdict flip.
    let o = observe_behind(8, |i| if i % 2 == 0 { 4000 } else { 17419 });
    assert_eq!(o.class(), NatClass::Unknown);
    assert_eq!(o.public(), None);
    // Random and sequential allocators never look moved.
    assert_eq!(observe_behind(8, random_ports(7)).public(), None);
    assert_eq!(observe_behind(8, |i| 30000 + i as u16).public(), None);
}
