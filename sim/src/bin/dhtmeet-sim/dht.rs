//! `dhtmeet-sim dht --nodes N --lookups L [--loss P] [--churn P] [--nat-clients C]`.

use std::io::Write as _;
use std::time::Duration;

use dhtmeet_sim::scenario::dht::{self, DhtOutcome, DhtSimConfig, KindSummary, Progress};

use crate::common::{Common, scenario_error};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// DHT nodes with public addresses (bootstrap nodes included).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    nodes: usize,
    /// Announces, get_peers and find_node lookups: this many of each.
    #[arg(long, default_value_t = 100, value_name = "L")]
    lookups: usize,
    /// Probability (0–1) that a datagram is lost between two hosts.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    loss: f64,
    /// Fraction (0–1) of the non-bootstrap nodes that crash and restart during the
    /// measurement (mean uptime and downtime --churn-period).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    churn: f64,
    /// Mean uptime and downtime of a churning node, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    churn_period: u64,
    /// Extra DHT nodes behind NATs (home, port-restricted-cone, symmetric, cgnat,
    /// full-cone, restricted-cone, in turn).
    #[arg(long, default_value_t = 0, value_name = "C")]
    nat_clients: usize,
    /// NAT'd clients run BEP 43 read-only: they query but are never queried.
    #[arg(long)]
    nat_read_only: bool,
    /// Bootstrap nodes.
    #[arg(long, default_value_t = 4, value_name = "B")]
    bootstrap: usize,
    /// Shortest and longest one-way delay of a path, in ms.
    #[arg(long, default_values_t = [10, 150], num_args = 2, value_names = ["MIN", "MAX"])]
    delay_ms: Vec<u64>,
    /// Members joining per second of virtual time.
    #[arg(long, default_value_t = 100, value_name = "R")]
    join_rate: u32,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    let seed = args.common.seed;
    let config = DhtSimConfig {
        nodes: args.nodes,
        lookups: args.lookups,
        loss: args.loss,
        churn: args.churn,
        churn_period: Duration::from_secs(args.churn_period),
        nat_clients: args.nat_clients,
        nat_read_only: args.nat_read_only,
        bootstrap_nodes: args.bootstrap,
        min_delay: Duration::from_millis(args.delay_ms.first().copied().unwrap_or(10)),
        max_delay: Duration::from_millis(args.delay_ms.get(1).copied().unwrap_or(150)),
        join_rate: args.join_rate,
        ..DhtSimConfig::default()
    };
    config
        .validate()
        .map_err(|e| format!("invalid settings: {e}"))?;
    let sink = args.common.pcap_sink()?;
    eprintln!("dhtmeet-sim dht: seed {seed}");
    let mut last = String::new();
    let mut progress = |p: Progress| {
        let line = format!(
            "  {} {}/{} (virtual {:.0} s)",
            p.phase,
            p.done,
            p.total,
            p.at.as_secs_f64()
        );
        if line != last {
            eprintln!("{line}");
            let _ = std::io::stderr().flush();
            last = line;
        }
    };
    let outcome =
        dht::run(&config, seed, sink, &mut progress).map_err(|e| scenario_error(seed, e))?;
    if args.common.json {
        println!("{}", json(&outcome));
    } else {
        print_summary(&outcome, &args.common);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_summary(o: &DhtOutcome, common: &Common) {
    let c = &o.config;
    println!("seed          {}", o.seed);
    println!(
        "network       {} public nodes ({} bootstrap), {} NAT'd clients{}",
        c.nodes,
        c.bootstrap_nodes,
        c.nat_clients,
        if c.nat_read_only { " (read-only)" } else { "" }
    );
    println!(
        "paths         one-way {}–{} ms (median RTT {:.0} ms), loss {:.1} %, churn {:.1} % (period {} s)",
        c.min_delay.as_millis(),
        c.max_delay.as_millis(),
        ms(o.median_rtt),
        c.loss * 100.0,
        c.churn * 100.0,
        c.churn_period.as_secs()
    );
    println!(
        "bootstrap     {}/{} ready, {} bootstrap failures, median table {} nodes",
        o.ready,
        o.members.len(),
        o.bootstrap_failed,
        o.table_median
    );
    println!();
    println!(
        "{:<10} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>18}",
        "lookup", "success", "median", "p99", "RTTs", "RPCs", "RPC p99", "first peer (p99)"
    );
    for (name, k) in [
        ("announce", &o.announce),
        ("get_peers", &o.get_peers),
        ("find_node", &o.find_node),
    ] {
        println!(
            "{:<10} {:>8.1}% {:>7.0} ms {:>7.0} ms {:>8.1} {:>8} {:>8} {:>18}",
            name,
            k.success_rate() * 100.0,
            ms(k.time_median),
            ms(k.time_p99),
            k.round_trips_median,
            k.rpcs_median,
            k.rpcs_p99,
            match (k.first_peer_median, k.first_peer_p99) {
                (Some(m), Some(p)) => format!("{:.0} ms ({:.0} ms)", ms(m), ms(p)),
                _ => "-".into(),
            }
        );
    }
    println!(
        "              ({} of {} announces, {} of {} get_peers, {} of {} find_node succeeded)",
        o.announce.succeeded,
        o.announce.started,
        o.get_peers.succeeded,
        o.get_peers.started,
        o.find_node.succeeded,
        o.find_node.started
    );
    if !o.nat.is_empty() {
        println!();
        println!(
            "{:<22} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10}",
            "NAT'd clients", "count", "ready", "announce", "get_peers", "find_node", "in tables"
        );
        for n in &o.nat {
            println!(
                "{:<22} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10}",
                n.preset.name(),
                n.clients,
                n.ready,
                format!("{}/{}", n.announces.1, n.announces.0),
                format!("{}/{}", n.get_peers.1, n.get_peers.0),
                format!("{}/{}", n.find_node.1, n.find_node.0),
                n.in_tables
            );
        }
        println!(
            "              {} public nodes hold a NAT'd client in their routing table",
            o.tables_with_nat_clients
        );
    }
    println!();
    let s = &o.stats;
    println!(
        "datagrams     {} sent, {} delivered, {} dropped; {} KRPC queries, {} timed out",
        s.sent, s.delivered, s.dropped, o.queries_sent, o.query_timeouts
    );
    if c.churn > 0.0 {
        println!("churn         {} restarts", o.restarts);
    }
    println!("virtual       {:.1} s", s.elapsed.as_secs_f64());
    if let (Some(p), Some(path)) = (&o.pcap, &common.pcap) {
        println!("pcap          {} packets in {}", p.packets, path.display());
    }
    println!("trace hash    {}", o.trace_hash);
}

fn kind_json(k: &KindSummary) -> serde_json::Value {
    serde_json::json!({
        "started": k.started,
        "finished": k.finished,
        "succeeded": k.succeeded,
        "success_rate": k.success_rate(),
        "time_median_ms": ms(k.time_median),
        "time_p99_ms": ms(k.time_p99),
        "round_trips_median": k.round_trips_median,
        "rpcs_median": k.rpcs_median,
        "rpcs_p99": k.rpcs_p99,
        "first_peer_median_ms": k.first_peer_median.map(ms),
        "first_peer_p99_ms": k.first_peer_p99.map(ms),
    })
}

fn json(o: &DhtOutcome) -> serde_json::Value {
    let c = &o.config;
    let nat: Vec<_> = o
        .nat
        .iter()
        .map(|n| {
            serde_json::json!({
                "preset": n.preset.name(),
                "clients": n.clients,
                "ready": n.ready,
                "announces": {"started": n.announces.0, "succeeded": n.announces.1},
                "get_peers": {"started": n.get_peers.0, "succeeded": n.get_peers.1},
                "find_node": {"started": n.find_node.0, "succeeded": n.find_node.1},
                "in_tables": n.in_tables,
            })
        })
        .collect();
    serde_json::json!({
        "seed": o.seed,
        "trace_hash": o.trace_hash.to_string(),
        "nodes": c.nodes,
        "bootstrap_nodes": c.bootstrap_nodes,
        "nat_clients": c.nat_clients,
        "nat_read_only": c.nat_read_only,
        "lookups": c.lookups,
        "loss": c.loss,
        "churn": c.churn,
        "churn_period_s": c.churn_period.as_secs(),
        "delay_ms": [c.min_delay.as_millis() as u64, c.max_delay.as_millis() as u64],
        "median_rtt_ms": ms(o.median_rtt),
        "ready": o.ready,
        "bootstrap_failed": o.bootstrap_failed,
        "table_median": o.table_median,
        "announce": kind_json(&o.announce),
        "get_peers": kind_json(&o.get_peers),
        "find_node": kind_json(&o.find_node),
        "nat": nat,
        "tables_with_nat_clients": o.tables_with_nat_clients,
        "restarts": o.restarts,
        "queries_sent": o.queries_sent,
        "query_timeouts": o.query_timeouts,
        "datagrams": {
            "sent": o.stats.sent,
            "delivered": o.stats.delivered,
            "dropped": o.stats.dropped,
        },
        "virtual_time_s": o.stats.elapsed.as_secs_f64(),
        "pcap_packets": o.pcap.map(|p| p.packets),
    })
}
