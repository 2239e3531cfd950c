//! UDP hole punching between two hosts behind every pair of presets, with the simple
//! agent of `dhtmeet_sim::punch` (STUN, then simultaneous probes to the reflexive
//! address and to any peer-reflexive address that answers; no port prediction).
//!
//! The expected outcomes are written down from RFC 4787 alone, not from the simulator:
//!
//! * Both mappings endpoint-independent (every preset but the `symmetric` ones): each side's
//!   probes leave from the very mapping the other side learned by STUN, and each
//!   side's own probes open its filter for the other's mapping, so the later probes
//!   pass whatever the filtering. Connects.
//! * One side `symmetric` or `symmetric-sequential` (APDM; this agent does not predict
//!   ports): its probes leave from a *new* mapping the other side
//!   never learned, and its STUN mapping admits only the STUN server. They get through
//!   only if the other side's filter admits an endpoint it never sent to: yes with
//!   endpoint-independent filtering (`open`, `full-cone`); yes with address-dependent
//!   filtering (`restricted-cone`: same IP address, the NAT's); no with
//!   address-and-port-dependent filtering (`port-restricted-cone`, `home`, `cgnat`).
//!   When they get through, the answer goes back to the new mapping, which admits it.
//! * Both symmetric: neither side's probes reach a mapping that admits them. Fails.
//! * `masquerade` (which RFC 4787 does not cover: a refused datagram claims the port
//!   for its sender) behaves as `home` here, because both sides start probing at the
//!   same instant: each side's first probe leaves before the other's arrives, so no
//!   claim is ever made. (A meeting, where one side usually sends first, is another
//!   matter: see `meetings.rs` and `docs/real-nat.md`.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use dhtmeet_core::Seed;
use dhtmeet_sim::punch::{PunchEvent, Puncher};
use dhtmeet_sim::scenario::{LAN_HOST, access_link, server_link, site_public};
use dhtmeet_sim::{HostId, HostSpec, NatPreset, Realm, Sim};

const PRESETS: [&str; 9] = [
    "open",
    "full-cone",
    "restricted-cone",
    "port-restricted-cone",
    "home",
    "masquerade",
    "cgnat",
    "symmetric-sequential",
    "symmetric",
];

/// RFC 4787's prediction, row and column in the order of `PRESETS`. `Y`: connects.
const EXPECTED: [&str; 9] = [
    //    o f r p h m c q s
    "Y Y Y Y Y Y Y Y Y", // open
    "Y Y Y Y Y Y Y Y Y", // full-cone
    "Y Y Y Y Y Y Y Y Y", // restricted-cone
    "Y Y Y Y Y Y Y N N", // port-restricted-cone
    "Y Y Y Y Y Y Y N N", // home
    "Y Y Y Y Y Y Y N N", // masquerade
    "Y Y Y Y Y Y Y N N", // cgnat
    "Y Y Y N N N N N N", // symmetric-sequential
    "Y Y Y N N N N N N", // symmetric
];

fn expected(i: usize, j: usize) -> bool {
    EXPECTED[i].split(' ').nth(j) == Some("Y")
}

const STUN: &str = "192.0.2.1:3478";

fn site(sim: &mut Sim<Puncher>, preset: NatPreset, n: u8) -> HostId {
    let name = format!("peer{n}");
    let stun: SocketAddr = STUN.parse().expect("literal");
    let agent = Puncher::new(sim.host_seed(&name), Some(stun), sim.now()).expect("valid");
    let spec = match preset {
        NatPreset::Open => HostSpec::new(
            &name,
            Realm::Internet,
            SocketAddr::new(site_public(n), LAN_HOST.port()),
        )
        .with_link(access_link()),
        _ => {
            let lan = preset
                .install(sim, &name, Realm::Internet, site_public(n), access_link())
                .expect("valid preset");
            HostSpec::new(&name, lan, LAN_HOST)
        }
    };
    sim.add_host(spec, agent).expect("valid host")
}

/// Runs one pair; whether both sides report `Connected`.
fn punch(a: NatPreset, b: NatPreset, seed: u64) -> bool {
    let mut sim: Sim<Puncher> = Sim::new(Seed::from_u64(seed));
    let server = Puncher::new(sim.host_seed("stun"), None, sim.now()).expect("valid");
    sim.add_host(
        HostSpec::new("stun", Realm::Internet, STUN.parse().expect("literal"))
            .with_link(server_link()),
        server,
    )
    .expect("valid host");
    let ha = site(&mut sim, a, 1);
    let hb = site(&mut sim, b, 2);
    let (mut ra, mut rb) = (None, None);
    while ra.is_none() || rb.is_none() {
        let e = sim
            .run_until_event(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("seed {seed}: {a} × {b}: STUN did not finish"));
        match e.event {
            PunchEvent::Reflexive(addr) if e.host == ha => ra = Some(addr),
            PunchEvent::Reflexive(addr) if e.host == hb => rb = Some(addr),
            other => panic!("seed {seed}: {a} × {b}: unexpected {other:?}"),
        }
    }
    let (ra, rb) = (ra.expect("set"), rb.expect("set"));
    // The rendezvous: each learns the other's reflexive address at the same moment.
    let interval = Duration::from_millis(50);
    sim.with_machine(ha, |m, now| m.connect(now, rb, interval, 40));
    sim.with_machine(hb, |m, now| m.connect(now, ra, interval, 40));
    sim.run_for(Duration::from_secs(5));
    let connected = |h| sim.machine(h).is_some_and(Puncher::is_connected);
    connected(ha) && connected(hb)
}

#[test]
fn every_pair_of_presets_punches_as_rfc_4787_predicts() {
    let seed = common::test_seed(4787);
    let mut wrong = Vec::new();
    let mut table = String::new();
    for (i, a) in PRESETS.iter().enumerate() {
        for (j, b) in PRESETS.iter().enumerate() {
            let (pa, pb) = (a.parse().expect("preset"), b.parse().expect("preset"));
            let got = punch(pa, pb, seed);
            table.push_str(if got { "Y " } else { "N " });
            if got != expected(i, j) {
                wrong.push(format!("{a} × {b}: expected {}, got {got}", expected(i, j)));
            }
        }
        table.push_str(&format!(" {a}\n"));
    }
    eprintln!("{table}");
    assert!(wrong.is_empty(), "seed {seed}: {wrong:#?}\n{table}");
}

#[test]
fn the_prediction_table_is_symmetric() {
    for (i, a) in PRESETS.iter().enumerate() {
        for (j, b) in PRESETS.iter().enumerate() {
            assert_eq!(expected(i, j), expected(j, i), "{a} × {b}");
        }
    }
}
