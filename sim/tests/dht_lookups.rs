//! The simulated Mainline DHT (issue 4's evidence): a DHT of 1,000 (and, in release,
//! 10,000) nodes bootstraps and its lookups return the true k closest nodes, checked
//! against a brute-force oracle; announced peers are still found under loss and churn;
//! NAT'd clients take part; the same seed gives the same trace hash.
//!
//! Each test prints its seed and the measured numbers (run with `--nocapture` to see
//! them); every assertion message carries the seed.

use dhtmeet_sim::scenario::dht::{self, DhtOutcome, DhtSimConfig, KindSummary, MeasuredKind};

fn run(config: &DhtSimConfig, seed: u64) -> DhtOutcome {
    let o = dht::run(config, seed, None, &mut |_| {})
        .unwrap_or_else(|e| panic!("the dht scenario failed: {e} (seed {seed})"));
    eprintln!(
        "seed {seed}: {} nodes + {} NAT'd, loss {}, churn {}: ready {}/{}, table median {}, \
         median RTT {:?}",
        config.nodes,
        config.nat_clients,
        config.loss,
        config.churn,
        o.ready,
        o.members.len(),
        o.table_median,
        o.median_rtt
    );
    for (name, k) in [
        ("announce", &o.announce),
        ("get_peers", &o.get_peers),
        ("find_node", &o.find_node),
    ] {
        eprintln!(
            "  {name:<9} {}/{} ok, median {:?} ({:.1} RTTs), p99 {:?}, RPCs median {} p99 {}",
            k.succeeded,
            k.started,
            k.time_median,
            k.round_trips_median,
            k.time_p99,
            k.rpcs_median,
            k.rpcs_p99
        );
    }
    eprintln!("  trace hash {}", o.trace_hash);
    o
}

fn assert_rate(k: &KindSummary, at_least: f64, what: &str, seed: u64) {
    assert!(
        k.success_rate() >= at_least,
        "{what}: {}/{} succeeded, below {:.1} % (seed {seed})",
        k.succeeded,
        k.started,
        at_least * 100.0
    );
}

#[test]
fn a_thousand_node_dht_returns_the_true_k_closest() {
    let seed = 1;
    let config = DhtSimConfig {
        nodes: 1000,
        lookups: 150,
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    assert_eq!(o.ready, 1000, "every node bootstrapped (seed {seed})");
    assert_rate(
        &o.find_node,
        0.99,
        "find_node returned the true 8 closest",
        seed,
    );
    assert_rate(
        &o.get_peers,
        0.99,
        "get_peers found the announced peer",
        seed,
    );
    assert_rate(&o.announce, 0.99, "announces stored", seed);
    assert!(
        o.get_peers.rpcs_p99 <= 40,
        "p99 RPCs per get_peers {} (seed {seed})",
        o.get_peers.rpcs_p99
    );
    assert!(
        o.get_peers.round_trips_median <= 4.5,
        "median get_peers took {:.1} round trips (seed {seed})",
        o.get_peers.round_trips_median
    );
}

#[test]
fn an_idle_dht_goes_quiet_after_joining() {
    // Regression: two nodes that could not take each other into full buckets used to
    // ping each other for ever (each ping is a query from an unknown node).
    let seed = 3;
    let config = DhtSimConfig {
        nodes: 400,
        lookups: 0,
        settle: std::time::Duration::from_secs(120),
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    let per_node = o.stats.sent as f64 / 400.0;
    assert!(
        per_node < 600.0,
        "{per_node:.0} datagrams per node while joining and idling (seed {seed})"
    );
}

#[test]
fn announced_peers_are_found_under_ten_percent_loss() {
    let seed = 4;
    let config = DhtSimConfig {
        nodes: 500,
        lookups: 100,
        loss: 0.10,
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    assert_eq!(o.ready, 500, "every node bootstrapped (seed {seed})");
    assert_rate(&o.announce, 0.99, "announces stored", seed);
    assert_rate(
        &o.get_peers,
        0.97,
        "get_peers found the announced peer",
        seed,
    );
    // An RPC fails when both attempts are lost (~4 % of them at 10 % path loss), so one
    // of the 8 closest is often missing: exactness is not expected here, only progress.
    assert_rate(
        &o.find_node,
        0.5,
        "find_node returned the true 8 closest",
        seed,
    );
}

#[test]
fn announced_peers_are_found_under_twenty_percent_churn() {
    let seed = 5;
    let config = DhtSimConfig {
        nodes: 500,
        lookups: 100,
        churn: 0.20,
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    assert!(o.restarts > 0, "churn happened (seed {seed})");
    assert_rate(&o.announce, 0.99, "announces stored", seed);
    assert_rate(
        &o.get_peers,
        0.97,
        "get_peers found the announced peer",
        seed,
    );
    // Freshly restarted nodes are live but not yet known to anyone: the oracle counts
    // them, so find_node exactness drops; this is reported, not required.
    assert_rate(
        &o.find_node,
        0.5,
        "find_node returned the true 8 closest",
        seed,
    );
}

#[test]
fn nat_clients_announce_and_look_up_and_enter_tables_they_cannot_serve() {
    let seed = 6;
    let config = DhtSimConfig {
        nodes: 400,
        lookups: 120,
        nat_clients: 60,
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    assert_eq!(
        o.ready, 460,
        "every node and client bootstrapped (seed {seed})"
    );
    let by_clients: Vec<_> = o.by_nat_clients().collect();
    assert!(!by_clients.is_empty(), "clients ran lookups (seed {seed})");
    for r in &by_clients {
        assert!(
            r.success || r.kind == MeasuredKind::FindNode,
            "a {:?} by NAT'd member {} failed (seed {seed})",
            r.kind,
            r.member
        );
    }
    assert_rate(
        &o.get_peers,
        0.99,
        "get_peers found the announced peer",
        seed,
    );
    for n in &o.nat {
        eprintln!(
            "  {:<21} ready {}/{}, in {} public tables",
            n.preset.name(),
            n.ready,
            n.clients,
            n.in_tables
        );
        assert_eq!(
            n.ready, n.clients,
            "{} clients ready (seed {seed})",
            n.preset
        );
        // Every client answered the pings of the nodes it had queried (its NAT lets
        // their replies in), so it entered their tables, whatever the preset.
        assert!(
            n.in_tables > 0,
            "{} clients in tables (seed {seed})",
            n.preset
        );
    }

    // Read-only (BEP 43), they stay out of every table and still work.
    let read_only = DhtSimConfig {
        nat_read_only: true,
        ..config
    };
    let o = run(&read_only, seed);
    assert_eq!(o.tables_with_nat_clients, 0, "seed {seed}");
    assert!(
        o.by_nat_clients()
            .all(|r| r.success || r.kind == MeasuredKind::FindNode)
    );
    assert_rate(
        &o.find_node,
        0.99,
        "find_node returned the true 8 closest",
        seed,
    );
}

#[test]
fn the_same_seed_gives_the_same_trace_hash() {
    let config = DhtSimConfig {
        nodes: 150,
        lookups: 20,
        loss: 0.05,
        churn: 0.1,
        nat_clients: 12,
        ..DhtSimConfig::default()
    };
    let a = run(&config, 7);
    let b = run(&config, 7);
    let c = run(&config, 8);
    assert_eq!(a.trace_hash, b.trace_hash, "seed 7 twice");
    assert_eq!(a.records, b.records, "seed 7 twice");
    assert_ne!(a.trace_hash, c.trace_hash, "seeds 7 and 8");
}

/// 10,000 nodes: ~40 s in release, several minutes in a debug build, so it is ignored by
/// default. Run it with
/// `cargo test --release -p dhtmeet-sim --test dht_lookups -- --ignored --nocapture`.
#[test]
#[ignore = "minutes in a debug build; run in release (see the doc comment)"]
fn a_ten_thousand_node_dht_meets_the_lookup_targets() {
    let seed = 1;
    let config = DhtSimConfig {
        nodes: 10_000,
        lookups: 300,
        ..DhtSimConfig::default()
    };
    let o = run(&config, seed);
    assert_eq!(o.ready, 10_000, "seed {seed}");
    assert_rate(
        &o.find_node,
        0.99,
        "find_node returned the true 8 closest",
        seed,
    );
    assert_rate(
        &o.get_peers,
        0.99,
        "get_peers found the announced peer",
        seed,
    );
    assert!(o.get_peers.round_trips_median <= 4.0, "seed {seed}");
    assert!(o.get_peers.rpcs_median <= 40, "seed {seed}");
    // p99 is about 1.1 s (see docs/sim.md): not asserted below a second.
    assert!(o.get_peers.time_p99.as_secs_f64() < 1.5, "seed {seed}");
}
