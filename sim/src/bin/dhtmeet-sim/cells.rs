//! `dhtmeet-sim nat-matrix --seeds N`: every pair of presets as its own 2-member meeting,
//! N seeds each (`dhtmeet_sim::scenario::meeting::matrix`); one line per pair.

use std::time::Duration;

use dhtmeet_core::Via;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::meeting::matrix::{self, CellSummary, median};

use crate::common::scenario_error;
use crate::nat_matrix::Args;

pub(crate) fn run(args: Args) -> Result<(), String> {
    if args.common.pcap.is_some() {
        return Err("--pcap captures one run; it does not go with --seeds".into());
    }
    let n = args.seeds.unwrap_or(1);
    let first = args.common.seed;
    let last = first
        .checked_add(n - 1)
        .ok_or("--seed + --seeds overflows")?;
    let seeds: Vec<u64> = (first..=last).collect();
    let all = NatPreset::ALL.to_vec();
    let or_all = |v: &Vec<NatPreset>| if v.is_empty() { all.clone() } else { v.clone() };
    let cells = matrix::cells(&or_all(&args.rows), &or_all(&args.columns));
    let template = args.template(Vec::new());
    let mut check = template.clone();
    check.presets = vec![NatPreset::Open; 2];
    check
        .validate()
        .map_err(|e| format!("invalid settings: {e}"))?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let summaries = matrix::run_cells(&template, &cells, &seeds, threads)
        .map_err(|e| scenario_error(first, e))?;
    let matches = summaries.iter().all(CellSummary::matches);
    if args.common.json {
        let rows: Vec<_> = summaries.iter().map(cell_json).collect();
        let out = serde_json::json!({
            "seeds": { "first": first, "last": last, "count": n },
            "port_prediction": template.port_prediction,
            "dht_nodes": template.dht_nodes,
            "deadline_s": template.deadline.as_secs_f64(),
            "cells": rows,
            "matches_prediction": matches,
        });
        println!("{out}");
    } else {
        print_table(&summaries, &args, first, last);
        println!(
            "matches the prediction: {}",
            if matches { "yes" } else { "NO" }
        );
    }
    if !matches {
        return Err(format!(
            "the outcome differs from the prediction (seeds {first}..={last})"
        ));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn print_table(summaries: &[CellSummary], args: &Args, first: u64, last: u64) {
    println!("seeds       {first}..={last}, each pair of presets its own 2-member meeting");
    println!(
        "network     {} DHT nodes, deadline {} s, port prediction {}",
        args.dht_nodes,
        args.deadline,
        if args.no_prediction { "off" } else { "on" }
    );
    println!();
    println!(
        "{:<44} {:<16} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>5}",
        "pair", "expected", "connected", "median", "worst", "med/disc", "wst/disc", "predicted", ""
    );
    for c in summaries {
        let times = c.connect_times();
        let after = c.times_after_discovery();
        let mut predicted = c.via_count(Via::Predicted).to_string();
        if c.via_differs() > 0 {
            predicted.push_str(&format!(" ({}≠)", c.via_differs()));
        }
        println!(
            "{:<44} {:<16} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>5}",
            format!("{} × {}", c.a.name(), c.b.name()),
            c.prediction.as_str(),
            format!("{}/{}", c.connected(), c.runs.len()),
            secs(median(&times)),
            secs(times.last().copied()),
            secs(median(&after)),
            secs(after.last().copied()),
            predicted,
            if c.matches() { "" } else { "NO!" }
        );
    }
    println!();
    println!(
        "times: from the join to the later side's PeerConnected (median, worst), and the same\n\
         counted from the first PeerDiscovered (med/disc, wst/disc), over the runs that connected;\n\
         predicted: runs connected via a predicted path (n≠: runs whose two sides named different\n\
         vias); NO! = a run contradicts the expected outcome"
    );
}

fn cell_json(c: &CellSummary) -> serde_json::Value {
    let times = c.connect_times();
    let after = c.times_after_discovery();
    let runs: Vec<_> = c
        .runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "seed": r.seed,
                "connected": r.connected,
                "via": r.via.map(Via::as_str),
                "via_differs": r.via_differs,
                "connect_ms": r.connect_time.map(ms),
                "discover_ms": r.discover_time.map(ms),
            })
        })
        .collect();
    serde_json::json!({
        "a": c.a.name(),
        "b": c.b.name(),
        "prediction": c.prediction.as_str(),
        "runs": c.runs.len(),
        "connected": c.connected(),
        "via_predicted": c.via_count(Via::Predicted),
        "via_direct": c.via_count(Via::Direct),
        "via_differs": c.via_differs(),
        "median_connect_ms": median(&times).map(ms),
        "worst_connect_ms": times.last().copied().map(ms),
        "median_after_discovery_ms": median(&after).map(ms),
        "worst_after_discovery_ms": after.last().copied().map(ms),
        "matches": c.matches(),
        "per_seed": runs,
    })
}
