//! `dhtmeet-sim meeting --peers N --dht-nodes M --nat PRESET,...`.

use dhtmeet_core::Via;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::meeting::{self, MeetingOutcome, MeetingSimConfig, PairOutcome};

use crate::common::{Common, preset_parser, scenario_error};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Members of the meeting.
    #[arg(long, default_value_t = 2, value_name = "N")]
    peers: usize,
    /// Public DHT nodes (the first is the bootstrap node).
    #[arg(long, default_value_t = 50, value_name = "M")]
    dht_nodes: usize,
    /// The NAT in front of each member, comma-separated, taken in turn (so one preset
    /// puts every member behind it); open means no NAT.
    #[arg(long, value_name = "PRESET,...", value_delimiter = ',', default_value = "open",
          value_parser = preset_parser())]
    nat: Vec<NatPreset>,
    /// Virtual seconds after the join by which every pair should be connected.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    deadline: u64,
    /// Random loss on each member's access link (0–1).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    loss: f64,
    /// Switch port prediction off (the behaviour before it) and expect the outcomes
    /// without it.
    #[arg(long)]
    no_prediction: bool,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    let seed = args.common.seed;
    if args.nat.is_empty() {
        return Err("--nat needs at least one preset".into());
    }
    let presets: Vec<NatPreset> = (0..args.peers)
        .map(|i| args.nat[i % args.nat.len()])
        .collect();
    let mut config = MeetingSimConfig::new(presets, args.dht_nodes);
    config.deadline = std::time::Duration::from_secs(args.deadline);
    config.member_loss = args.loss;
    config.port_prediction = !args.no_prediction;
    config
        .validate()
        .map_err(|e| format!("invalid settings: {e}"))?;
    let sink = args.common.pcap_sink()?;
    let outcome = meeting::run(&config, seed, sink).map_err(|e| scenario_error(seed, e))?;
    if args.common.json {
        println!("{}", json(&outcome));
    } else {
        print_summary(&outcome, &args.common);
    }
    Ok(())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_summary(o: &MeetingOutcome, common: &Common) {
    println!("seed        {}", o.seed);
    println!(
        "network     {} public DHT nodes, 1 STUN node, {} members (joined at {:.3} s), port prediction {}",
        o.config.dht_nodes,
        o.members.len(),
        o.joined_at.as_secs_f64(),
        if o.config.port_prediction {
            "on"
        } else {
            "off"
        }
    );
    println!();
    println!(
        "{:>3} {:<22} {:<20} {:<22} member id",
        "#", "nat", "local", "public (STUN)"
    );
    for (i, m) in o.members.iter().enumerate() {
        println!(
            "{:>3} {:<22} {:<20} {:<22} {:?}",
            i,
            m.preset.name(),
            m.local.to_string(),
            m.public.map_or("-".into(), |a| a.to_string()),
            m.id
        );
    }
    println!();
    println!(
        "{:<8} {:<44} {:<10} {:>10} {:>10}  {:<10} expected",
        "pair", "nats", "connected", "discover", "connect", "via"
    );
    for p in &o.pairs {
        let nats = format!(
            "{} × {}",
            o.members[p.a].preset.name(),
            o.members[p.b].preset.name()
        );
        println!(
            "{:<8} {:<44} {:<10} {:>10} {:>10}  {:<10} {}",
            format!("{}–{}", p.a, p.b),
            nats,
            if p.connected { "yes" } else { "NO" },
            p.discover_time
                .map_or("-".into(), |t| format!("{:.0} ms", ms(t))),
            p.connect_time
                .map_or("-".into(), |t| format!("{:.0} ms", ms(t))),
            via_text(p),
            p.prediction.as_str()
        );
    }
    println!();
    println!(
        "messages    {} expected, {} delivered, {} exactly once, {} corrupted, {} duplicates, {} refused: {}",
        o.messages_expected,
        o.messages_delivered,
        o.messages_once,
        o.corrupted,
        o.duplicates,
        o.refused,
        if o.intact { "intact" } else { "NOT INTACT" }
    );
    let s = &o.stats;
    println!(
        "datagrams   {} sent, {} delivered, {} dropped",
        s.sent, s.delivered, s.dropped
    );
    println!("virtual     {:.3} s", s.elapsed.as_secs_f64());
    if let (Some(p), Some(path)) = (&o.pcap, &common.pcap) {
        println!("pcap        {} packets in {}", p.packets, path.display());
    }
    println!("trace hash  {}", o.trace_hash);
}

/// `direct`, `predicted`, `-`; both sides' words (`predicted/direct (a/b)`) if they
/// differ.
fn via_text(p: &PairOutcome) -> String {
    match p.via_sides {
        (Some(x), Some(y)) if x != y => format!("{}/{} (a/b)", x.as_str(), y.as_str()),
        _ => p.via.map_or("-", Via::as_str).into(),
    }
}

fn json(o: &MeetingOutcome) -> serde_json::Value {
    let members: Vec<_> = o
        .members
        .iter()
        .map(|m| {
            serde_json::json!({
                "nat": m.preset.name(),
                "local": m.local.to_string(),
                "public": m.public.map(|a| a.to_string()),
                "member_id": format!("{:?}", m.id),
            })
        })
        .collect();
    let pairs: Vec<_> = o
        .pairs
        .iter()
        .map(|p| {
            serde_json::json!({
                "a": p.a,
                "b": p.b,
                "connected": p.connected,
                "connect_ms": p.connect_time.map(ms),
                "discover_ms": p.discover_time.map(ms),
                "via": p.via.map(Via::as_str),
                "via_a": p.via_sides.0.map(Via::as_str),
                "via_b": p.via_sides.1.map(Via::as_str),
                "predicted": p.predicted,
                "prediction": p.prediction.as_str(),
            })
        })
        .collect();
    serde_json::json!({
        "seed": o.seed,
        "trace_hash": o.trace_hash.to_string(),
        "dht_nodes": o.config.dht_nodes,
        "port_prediction": o.config.port_prediction,
        "members": members,
        "pairs": pairs,
        "messages_expected": o.messages_expected,
        "messages_delivered": o.messages_delivered,
        "messages_once": o.messages_once,
        "corrupted": o.corrupted,
        "duplicates": o.duplicates,
        "refused": o.refused,
        "intact": o.intact,
        "datagrams": {
            "sent": o.stats.sent,
            "delivered": o.stats.delivered,
            "dropped": o.stats.dropped,
        },
        "virtual_time_s": o.stats.elapsed.as_secs_f64(),
        "pcap_packets": o.pcap.map(|p| p.packets),
    })
}
