//! `dhtmeet-sim nat-matrix`: two members behind every preset meet over one simulated DHT;
//! the table says, for every pair of presets, whether their members connected directly,
//! how long it took, how (`via`), and whether that matches the expected outcome. With
//! `--seeds N`, every pair of presets is its own 2-member meeting, run N times
//! (`cells.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use dhtmeet_core::Via;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::meeting::{self, MeetingSimConfig, PairOutcome, Prediction};

use crate::common::{Common, preset_parser, scenario_error};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Public DHT nodes (the first is the bootstrap node).
    #[arg(long, default_value_t = 50, value_name = "M")]
    pub(crate) dht_nodes: usize,
    /// Virtual seconds after the join by which every pair should be connected.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub(crate) deadline: u64,
    /// Switch port prediction off (the behaviour before it) and expect the outcomes
    /// without it.
    #[arg(long)]
    pub(crate) no_prediction: bool,
    /// Run every pair of presets as its own 2-member meeting, once for each of N seeds
    /// (--seed, --seed + 1, …), and show per pair the fraction connected, the median and
    /// worst connect time and how many connected by port prediction.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) seeds: Option<u64>,
    /// With --seeds: only pairs with one side among these presets (default: all).
    #[arg(long, value_name = "PRESET,...", value_delimiter = ',', requires = "seeds",
          value_parser = preset_parser())]
    pub(crate) rows: Vec<NatPreset>,
    /// With --seeds: only pairs with the other side among these presets (default: all).
    #[arg(long, value_name = "PRESET,...", value_delimiter = ',', requires = "seeds",
          value_parser = preset_parser())]
    pub(crate) columns: Vec<NatPreset>,
    /// With --seeds: runs at once (default: the machine's cores).
    #[arg(long, value_name = "T", requires = "seeds")]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) common: Common,
}

impl Args {
    /// The settings every meeting of the command shares (members aside).
    pub(crate) fn template(&self, presets: Vec<NatPreset>) -> MeetingSimConfig {
        let mut config = MeetingSimConfig::new(presets, self.dht_nodes);
        config.deadline = Duration::from_secs(self.deadline);
        config.port_prediction = !self.no_prediction;
        config
    }
}

#[derive(Clone, Copy)]
struct Cell {
    pairs: usize,
    connected: usize,
    prediction: Prediction,
    slowest: Option<Duration>,
    /// Connected pairs by `via`.
    direct: usize,
    predicted: usize,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            pairs: 0,
            connected: 0,
            prediction: Prediction::Fails,
            slowest: None,
            direct: 0,
            predicted: 0,
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

/// The cell's `via`: `direct`, `predicted`, `mixed` (some of each), or none connected.
fn cell_via(c: &Cell) -> Option<&'static str> {
    match (c.direct, c.predicted) {
        (0, 0) => None,
        (_, 0) => Some(Via::Direct.as_str()),
        (0, _) => Some(Via::Predicted.as_str()),
        _ => Some("mixed"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pair_json(presets: &[NatPreset], p: &PairOutcome) -> serde_json::Value {
    serde_json::json!({
        "a": presets[p.a].name(),
        "b": presets[p.b].name(),
        "member_a": p.a,
        "member_b": p.b,
        "connected": p.connected,
        "via": p.via.map(Via::as_str),
        "via_a": p.via_sides.0.map(Via::as_str),
        "via_b": p.via_sides.1.map(Via::as_str),
        "connect_ms": p.connect_time.map(ms),
        "discover_ms": p.discover_time.map(ms),
        "prediction": p.prediction.as_str(),
    })
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    if args.seeds.is_some() {
        return crate::cells::run(args);
    }
    let seed = args.common.seed;
    // Two members per preset, so that every pair of presets, a preset with itself
    // included, has at least one pair of members.
    let presets: Vec<NatPreset> = NatPreset::ALL.iter().flat_map(|p| [*p, *p]).collect();
    let config = args.template(presets.clone());
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
        match pair.via {
            Some(Via::Predicted) => cell.predicted += 1,
            Some(Via::Direct) => cell.direct += 1,
            None => {}
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
                    "connect_ms": c.slowest.map(ms),
                    "via": cell_via(c),
                    "via_direct": c.direct,
                    "via_predicted": c.predicted,
                })
            })
            .collect();
        let member_pairs: Vec<_> = o.pairs.iter().map(|p| pair_json(&presets, p)).collect();
        let out = serde_json::json!({
            "seed": seed,
            "trace_hash": o.trace_hash.to_string(),
            "port_prediction": config.port_prediction,
            "pairs": rows,
            "member_pairs": member_pairs,
            "matches_prediction": matches,
            "matches_rfc4787": matches,
            "intact": o.intact,
        });
        println!("{out}");
    } else {
        println!("seed        {seed}");
        println!(
            "members     2 behind each of {} presets, {} DHT nodes, port prediction {}",
            NatPreset::ALL.len(),
            args.dht_nodes,
            if config.port_prediction { "on" } else { "off" }
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
                    (_, true, Some(d)) if c.predicted > 0 => {
                        format!("{:.1}s (p)", d.as_secs_f64())
                    }
                    (_, true, Some(d)) => format!("{:.1}s", d.as_secs_f64()),
                    (_, true, None) => "yes".into(),
                    (Prediction::Fails, false, _) if c.connected == 0 => "no (pred.)".into(),
                    (_, false, _) => format!("{}/{} NO!", c.connected, c.pairs),
                };
                print!("{text:>12}");
            }
            println!();
        }
        println!();
        println!(
            "cells: time until the slowest pair connected, \"(p)\" if a pair connected by port prediction;\n\
             \"no (pred.)\" = no direct path expected; \"n/m (ord.)\" = n of m pairs connected where it\n\
             depends on who sends first (masquerade)"
        );
        println!(
            "matches the prediction: {}",
            if matches { "yes" } else { "NO" }
        );
        println!("trace hash  {}", o.trace_hash);
    }
    if !matches {
        return Err(format!(
            "the outcome differs from the prediction (seed {seed})"
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
