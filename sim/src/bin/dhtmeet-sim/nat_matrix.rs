//! `dhtmeet-sim nat-matrix`: two members behind every preset meet over one simulated DHT;
//! the table says, for every pair of presets, whether their members connected directly,
//! how long it took, and whether that matches what RFC 4787 predicts.

use std::collections::BTreeMap;
use std::time::Duration;

use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::meeting::{self, MeetingSimConfig, Prediction};

use crate::common::{Common, scenario_error};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Public DHT nodes (the first is the bootstrap node).
    #[arg(long, default_value_t = 50, value_name = "M")]
    dht_nodes: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy)]
struct Cell {
    pairs: usize,
    connected: usize,
    prediction: Prediction,
    slowest: Option<Duration>,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            pairs: 0,
            connected: 0,
            prediction: Prediction::Fails,
            slowest: None,
        }
    }
}

impl Cell {
    /// Whether the cell's pairs did what the prediction allows.
    fn matches(&self) -> bool {
        match self.prediction {
            Prediction::Connects => self.connected == self.pairs,
            Prediction::Fails => self.connected == 0,
            Prediction::DependsOnOrder => true,
        }
    }
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    let seed = args.common.seed;
    // Two members per preset, so that every pair of presets, a preset with itself
    // included, has at least one pair of members.
    let presets: Vec<NatPreset> = NatPreset::ALL.iter().flat_map(|p| [*p, *p]).collect();
    let config = MeetingSimConfig::new(presets.clone(), args.dht_nodes);
    config
        .validate()
        .map_err(|e| format!("invalid settings: {e}"))?;
    let sink = args.common.pcap_sink()?;
    let o = meeting::run(&config, seed, sink).map_err(|e| scenario_error(seed, e))?;
    let mut cells: BTreeMap<(usize, usize), Cell> = BTreeMap::new();
    let index = |p: NatPreset| NatPreset::ALL.iter().position(|q| *q == p).unwrap_or(0);
    for pair in &o.pairs {
        let (a, b) = (index(presets[pair.a]), index(presets[pair.b]));
        let key = (a.min(b), a.max(b));
        let cell = cells.entry(key).or_default();
        cell.pairs += 1;
        cell.prediction = pair.prediction;
        if pair.connected {
            cell.connected += 1;
            cell.slowest = cell.slowest.max(pair.connect_time);
        }
    }
    let matches = cells.values().all(Cell::matches);
    if args.common.json {
        let rows: Vec<serde_json::Value> = cells
            .iter()
            .map(|((a, b), c)| {
                serde_json::json!({
                    "a": NatPreset::ALL[*a].name(),
                    "b": NatPreset::ALL[*b].name(),
                    "connected": c.connected == c.pairs,
                    "pairs_connected": c.connected,
                    "pairs_tried": c.pairs,
                    "predicted": c.prediction != Prediction::Fails,
                    "prediction": c.prediction.as_str(),
                    "connect_ms": c.slowest.map(|d| d.as_secs_f64() * 1000.0),
                })
            })
            .collect();
        let out = serde_json::json!({
            "seed": seed,
            "trace_hash": o.trace_hash.to_string(),
            "pairs": rows,
            "matches_rfc4787": matches,
            "intact": o.intact,
        });
        println!("{out}");
    } else {
        println!("seed        {seed}");
        println!(
            "members     2 behind each of {} presets, {} DHT nodes",
            NatPreset::ALL.len(),
            args.dht_nodes
        );
        println!();
        print!("{:22}", "");
        for p in NatPreset::ALL {
            print!("{:>12}", short(p));
        }
        println!();
        for (i, p) in NatPreset::ALL.iter().enumerate() {
            print!("{:22}", p.name());
            for j in 0..NatPreset::ALL.len() {
                let c = cells
                    .get(&(i.min(j), i.max(j)))
                    .copied()
                    .unwrap_or_default();
                let all = c.connected == c.pairs && c.pairs > 0;
                let text = match (c.prediction, all, c.slowest) {
                    (Prediction::DependsOnOrder, _, _) => {
                        format!("{}/{} (ord.)", c.connected, c.pairs)
                    }
                    (_, true, Some(d)) => format!("{:.1}s", d.as_secs_f64()),
                    (_, true, None) => "yes".into(),
                    (Prediction::Fails, false, _) if c.connected == 0 => "no (pred.)".into(),
                    (_, false, _) => "NO!".into(),
                };
                print!("{text:>12}");
            }
            println!();
        }
        println!();
        println!(
            "cells: time until the slowest pair connected; \"no (pred.)\" = RFC 4787 predicts no direct path;\n\
             \"n/m (ord.)\" = n of m pairs connected where it depends on who sends first (masquerade)"
        );
        println!("matches RFC 4787: {}", if matches { "yes" } else { "NO" });
        println!("trace hash  {}", o.trace_hash);
    }
    if !matches {
        return Err(format!(
            "the outcome differs from RFC 4787's prediction (seed {seed})"
        ));
    }
    Ok(())
}

fn short(p: NatPreset) -> &'static str {
    match p {
        NatPreset::Open => "open",
        NatPreset::FullCone => "full",
        NatPreset::RestrictedCone => "restricted",
        NatPreset::PortRestrictedCone => "port-restr",
        NatPreset::Symmetric => "symmetric",
        NatPreset::SymmetricSequential => "sym-seq",
        NatPreset::Home => "home",
        NatPreset::Masquerade => "masquerade",
        NatPreset::Cgnat => "cgnat",
    }
}
