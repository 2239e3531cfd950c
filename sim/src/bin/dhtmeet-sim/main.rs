//! `dhtmeet-sim`: deterministic network simulations of dhtmeet, from the command line.
//!
//! Every command takes `--seed` (default 1), prints the seed and the trace hash, can
//! capture every datagram as pcap (`--pcap FILE`), prints a readable summary, or one JSON
//! object with `--json`. `DEBUG=1` logs each simulated host's protocol work to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cells;
mod common;
mod dht;
mod meeting;
mod nat_matrix;
mod stun;

/// Deterministic network simulations of dhtmeet, with NATs modelled on RFC 4787.
///
/// Everything runs in memory on a virtual clock: no real packet is sent. The same
/// --seed gives the same run and the same trace hash.
#[derive(Debug, Parser)]
#[command(name = "dhtmeet-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A host behind a NAT preset asks two STUN servers for its public address and
    /// classifies the NAT's mapping, as `dhtmeet stun` does.
    Stun(stun::Args),
    /// A simulated Mainline DHT of N nodes (some behind NATs, with loss and churn if
    /// asked): bootstrap, announces, get_peers and find_node lookups checked against a
    /// brute-force oracle; prints success rates, lookup times, round trips and RPCs.
    Dht(dht::Args),
    /// Members behind NAT presets meet through a small public DHT: which pairs connect,
    /// how long each took (virtual time), and whether every broadcast message arrived
    /// exactly once and intact.
    Meeting(meeting::Args),
    /// Two members behind every NAT preset meet over one simulated DHT: which pairs of
    /// presets connect directly, how fast, how (directly or by port prediction), and
    /// whether that matches the expected outcome; with --seeds N, each pair of presets
    /// as its own meeting, N times.
    NatMatrix(nat_matrix::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::init_logging();
    let result = match cli.command {
        Command::Stun(args) => stun::run(args),
        Command::Dht(args) => dht::run(args),
        Command::Meeting(args) => meeting::run(args),
        Command::NatMatrix(args) => nat_matrix::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dhtmeet-sim: error: {message}");
            ExitCode::FAILURE
        }
    }
}
