//! A member that restarts with its saved state rejoins its meeting with no bootstrap node
//! reachable, and faster than a cold start that has one.
//!
//! The world: 100 public DHT nodes (the first is everyone's bootstrap node) and two
//! members A and B on open Internet addresses, 10 ms ± 2 ms access links. A and B meet;
//! B leaves cleanly, keeps `export_state()`, and its host goes down. Then, from the same
//! seed, three endings:
//!
//! * **warm**: the bootstrap node is down too; B restarts from its state;
//! * **cold**: the bootstrap node is up; B restarts with no state (the usual first start);
//! * **stranded**: the bootstrap node is down; B restarts with no state.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code;
use dhtmeet_core::{Event, Node, NodeConfig, SavedState};
use dhtmeet_sim::scenario::access_link;
use dhtmeet_sim::scenario::meeting::dht_addr;
use dhtmeet_sim::{HostId, HostSpec, Realm, Sim, SimEvent};

const DHT_NODES: usize = 100;
const DEADLINE: Duration = Duration::from_secs(60);

fn member_addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, n)), 4000)
}

fn member(sim: &Sim<Node>, name: &str, at: SocketAddr, saved: Option<SavedState>) -> Node {
    let mut config = NodeConfig::new(sim.host_seed(name));
    config.local_addr = Some(at);
    config.dht = Some(DhtConfig {
        bootstrap: vec![dht_addr(0)],
        ..DhtConfig::default()
    });
    config.saved_state = saved;
    Node::new(sim.now(), config).expect("valid config")
}

/// Runs until `host` reports an event `pick` accepts, at most `limit` from now; the
/// virtual time it took.
fn wait_for(
    sim: &mut Sim<Node>,
    host: HostId,
    limit: Duration,
    pick: impl Fn(&Event) -> bool,
) -> Option<Duration> {
    let start = sim.elapsed();
    while let Some(SimEvent { host: h, at, event }) = sim.run_until_event(start + limit) {
        if h == host && pick(&event) {
            return Some(at - start);
        }
    }
    None
}

fn connected(e: &Event) -> bool {
    matches!(e, Event::PeerConnected { .. })
}

struct World {
    sim: Sim<Node>,
    boot: HostId,
    b: HostId,
    code: String,
    saved: SavedState,
}

/// The common part: the DHT settles, A and B meet, B leaves and goes down.
fn world(seed: u64) -> World {
    let mut sim: Sim<Node> = Sim::new(dhtmeet_core::Seed::from_u64(seed));
    let mut boot = None;
    for i in 0..DHT_NODES {
        let name = format!("dht-{i}");
        let mut config = NodeConfig::new(sim.host_seed(&name));
        config.local_addr = Some(dht_addr(i));
        config.dht = Some(DhtConfig {
            bootstrap: if i == 0 {
                Vec::new()
            } else {
                vec![dht_addr(0)]
            },
            ..DhtConfig::default()
        });
        let node = Node::new(sim.now(), config).expect("valid config");
        let spec = HostSpec::new(name, Realm::Internet, dht_addr(i)).with_link(access_link());
        let id = sim.add_host(spec, node).expect("host");
        boot.get_or_insert(id);
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(Duration::from_secs(5));
    let (a_addr, b_addr) = (member_addr(1), member_addr(2));
    let a_node = member(&sim, "a", a_addr, None);
    let a = sim
        .add_host(
            HostSpec::new("a", Realm::Internet, a_addr).with_link(access_link()),
            a_node,
        )
        .expect("host");
    let b_node = member(&sim, "b", b_addr, None);
    let b = sim
        .add_host(
            HostSpec::new("b", Realm::Internet, b_addr).with_link(access_link()),
            b_node,
        )
        .expect("host");
    sim.run_for(Duration::from_secs(3));
    let code = code::generate(&mut sim.host_seed("code").rng());
    for m in [a, b] {
        sim.with_machine(m, |n, now| n.join(now, &code, false))
            .expect("up")
            .expect("joined");
    }
    assert!(
        wait_for(&mut sim, b, DEADLINE, connected).is_some(),
        "A and B never met; seed {seed}"
    );
    sim.run_for(Duration::from_secs(2));
    let saved = sim
        .with_machine(b, |n, now| {
            n.leave(now);
            n.export_state()
        })
        .expect("up");
    sim.run_for(Duration::from_millis(500));
    sim.crash(b);
    sim.run_for(Duration::from_secs(5));
    World {
        sim,
        boot: boot.expect("at least one DHT node"),
        b,
        code,
        saved,
    }
}

/// B comes back (with `saved`, or none) and joins again; how long until it meets A, and
/// whether its DHT was ready 10 s later.
fn restart(w: &mut World, saved: Option<SavedState>, boot_down: bool) -> (Option<Duration>, bool) {
    if boot_down {
        w.sim.crash(w.boot);
    }
    let node = member(&w.sim, "b-again", member_addr(2), saved);
    w.sim.restart(w.b, node);
    let code = w.code.clone();
    w.sim
        .with_machine(w.b, |n, now| n.join(now, &code, false))
        .expect("up")
        .expect("joined");
    let took = wait_for(&mut w.sim, w.b, DEADLINE, connected);
    // The DHT's own bootstrap (a lookup of our id) waits out the dead bootstrap node's
    // query timeouts; the meeting did not wait for it.
    w.sim.run_for(Duration::from_secs(10));
    let dht_ready = w
        .sim
        .machine(w.b)
        .is_some_and(|n| n.health().dht_ready && n.health().stats.dht.responses_received > 0);
    (took, dht_ready)
}

#[test]
fn a_member_restarting_with_saved_state_rejoins_without_any_bootstrap_node() {
    let seed = common::test_seed(7);
    let w = world(seed);
    let saved = w.saved.clone();
    assert_eq!(saved.meetings.len(), 1, "seed {seed}");
    assert_eq!(saved.meetings[0].contacts, vec![member_addr(1)]);
    assert!(
        saved.nodes.len() >= 8,
        "{} nodes; seed {seed}",
        saved.nodes.len()
    );
    // The state survives its byte form.
    let saved = SavedState::decode(&saved.encode()).expect("round trip");

    let mut warm = w;
    let (warm_took, warm_dht) = restart(&mut warm, Some(saved), true);
    let warm_took = warm_took.unwrap_or_else(|| {
        panic!("the warm restart never met A with the bootstrap node down; seed {seed}")
    });
    assert!(
        warm_dht,
        "the remembered DHT nodes answered, so the DHT is ready without the bootstrap node; seed {seed}"
    );

    let mut cold = world(seed);
    let (cold_took, _) = restart(&mut cold, None, false);
    let cold_took = cold_took.unwrap_or_else(|| panic!("the cold start never met A; seed {seed}"));

    let mut stranded = world(seed);
    let (stranded_took, _) = restart(&mut stranded, None, true);
    assert_eq!(
        stranded_took, None,
        "with no state and no bootstrap node there is no one to ask; seed {seed}"
    );

    println!(
        "restart to meeting A again (virtual time): warm with the bootstrap node down {warm_took:?}, \
         cold with it up {cold_took:?} ({:.1}x faster warm); with neither: never; seed {seed}",
        cold_took.as_secs_f64() / warm_took.as_secs_f64()
    );
    // Seeds 1–12 give 2.3x–3.0x; the bar leaves room for timing noise.
    assert!(
        warm_took * 3 <= cold_took * 2,
        "warm {warm_took:?} is not clearly faster than cold {cold_took:?}; seed {seed}"
    );
}
