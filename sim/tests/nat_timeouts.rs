//! RFC 4787 §4.3: mapping timeout, outbound refresh (REQ-6) and optional inbound
//! refresh.

mod common;

use std::time::Duration;

use common::*;
use dhtmeet_sim::{Fate, FilteringBehavior, HostId, NatConfig, PortAssignment, Realm, Sim};

const X: &str = "192.0.2.1:3478";

fn setup(config: NatConfig) -> (Sim<Probe>, HostId, HostId) {
    let mut sim = probe_sim(1);
    let x = host(&mut sim, "x", Realm::Internet, X);
    let n = nat(&mut sim, Realm::Internet, "203.0.113.1", config);
    let a = host(&mut sim, "a", n.inside(), "10.0.0.2:5000");
    (sim, x, a)
}

fn timeout_60s() -> NatConfig {
    NatConfig {
        mapping_timeout: Duration::from_secs(60),
        filtering: FilteringBehavior::AddressAndPortDependent,
        port_assignment: PortAssignment::SEQUENTIAL,
        ..NatConfig::default()
    }
}

/// `x` answers `a`'s mapping at virtual time `at`: whether `a` gets it.
fn reply_at(
    sim: &mut Sim<Probe>,
    x: HostId,
    a: HostId,
    mapping: std::net::SocketAddr,
    at: u64,
) -> bool {
    sim.run_until(Duration::from_secs(at));
    assert!(sim.inject(x, sa(X), mapping, b"reply"));
    sim.run_for(Duration::from_millis(10));
    !received_by(sim, a).is_empty()
}

#[test]
fn a_mapping_expires_after_the_timeout_without_traffic() {
    let (mut sim, x, a) = setup(timeout_60s());
    send(&mut sim, a, X, b"out");
    let mapping = received_by(&mut sim, x)[0].remote;
    assert!(reply_at(&mut sim, x, a, mapping, 59));
    assert!(
        !reply_at(&mut sim, x, a, mapping, 62),
        "expired 60 s after the last outbound datagram"
    );
    assert_eq!(sim.fate_count(Fate::NoMapping), 1);
    // A new outbound datagram makes a new mapping (sequential: the next port).
    send(&mut sim, a, X, b"again");
    let second = received_by(&mut sim, x)[0].remote;
    assert_ne!(second, mapping);
}

#[test]
fn outbound_traffic_refreshes_the_mapping() {
    let (mut sim, x, a) = setup(timeout_60s());
    send(&mut sim, a, X, b"out");
    let mapping = received_by(&mut sim, x)[0].remote;
    for t in [40, 80, 120, 160] {
        sim.run_until(Duration::from_secs(t));
        send(&mut sim, a, X, b"keepalive");
    }
    let sources: Vec<_> = received_by(&mut sim, x).iter().map(|r| r.remote).collect();
    assert!(sources.iter().all(|&s| s == mapping), "{sources:?}");
    assert!(reply_at(&mut sim, x, a, mapping, 200));
}

#[test]
fn inbound_traffic_refreshes_only_when_configured() {
    for inbound_refresh in [false, true] {
        let (mut sim, x, a) = setup(NatConfig {
            inbound_refresh,
            ..timeout_60s()
        });
        send(&mut sim, a, X, b"out");
        let mapping = received_by(&mut sim, x)[0].remote;
        assert!(reply_at(&mut sim, x, a, mapping, 40));
        assert!(
            reply_at(&mut sim, x, a, mapping, 80) == inbound_refresh,
            "inbound_refresh {inbound_refresh}"
        );
    }
}
