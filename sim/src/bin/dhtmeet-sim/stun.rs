//! `dhtmeet-sim stun --nat PRESET`.

use dhtmeet_core::stun::Observation;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::stun::{self, StunOutcome};

use crate::common::{Common, preset_parser, scenario_error};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The NAT in front of the host (open means no NAT).
    #[arg(long, value_name = "PRESET", value_parser = preset_parser())]
    nat: NatPreset,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    let seed = args.common.seed;
    let sink = args.common.pcap_sink()?;
    let outcome = stun::run(args.nat, seed, sink).map_err(|e| scenario_error(seed, e))?;
    if args.common.json {
        println!("{}", json(&outcome));
    } else {
        print_summary(&outcome, &args.common);
    }
    Ok(())
}

fn rtt_ms(o: &Observation) -> f64 {
    o.rtt.as_secs_f64() * 1000.0
}

fn print_summary(o: &StunOutcome, common: &Common) {
    let r = &o.report;
    println!("seed        {}", o.seed);
    println!("nat         {} ({})", o.preset, o.preset.describe());
    println!("local       {}", o.local);
    println!("mapped      {}", r.first.mapped);
    println!("mapping     {}", r.mapping.as_str());
    println!();
    println!("{:<22} {:<22} {:>9}", "server", "mapped", "rtt");
    for obs in &r.observations {
        println!(
            "{:<22} {:<22} {:>6.1} ms",
            obs.server.to_string(),
            obs.mapped.to_string(),
            rtt_ms(obs)
        );
    }
    println!();
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

fn json(o: &StunOutcome) -> serde_json::Value {
    let r = &o.report;
    let observations: Vec<_> = r
        .observations
        .iter()
        .map(|obs| {
            serde_json::json!({
                "server": obs.server.to_string(),
                "mapped": obs.mapped.to_string(),
                "rtt_ms": rtt_ms(obs),
            })
        })
        .collect();
    serde_json::json!({
        "seed": o.seed,
        "trace_hash": o.trace_hash.to_string(),
        "nat": o.preset.name(),
        "local": o.local.to_string(),
        "mapped": r.first.mapped.to_string(),
        "server": r.first.server.to_string(),
        "rtt_ms": rtt_ms(&r.first),
        "mapping": r.mapping.as_str(),
        "observations": observations,
        "datagrams": {
            "sent": o.stats.sent,
            "delivered": o.stats.delivered,
            "dropped": o.stats.dropped,
        },
        "virtual_time_s": o.stats.elapsed.as_secs_f64(),
        "pcap_packets": o.pcap.map(|p| p.packets),
    })
}
