//! `dhtmeet`: meet peers who share an invitation code, directly, with no server of their
//! own: STUN, the Mainline DHT and WebRTC data channels.

mod demo;
mod dht;
mod files;
mod join;
mod net_args;
mod saved_state;
mod status;
mod stun;
mod stun_server;
mod webrtc;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dhtmeet: serverless peer-to-peer meetings over the Mainline DHT and WebRTC.
///
/// Environment: STUN_SERVERS (comma-separated host:port list used when no server is
/// given; set but empty is the same as unset, `none` means no STUN), MEETING_CODE (the
/// code `join` uses when none is given; set but empty is an error), NODE_ID (a fixed DHT
/// node id, 40 hex characters),
/// DEBUG (1/true/yes/on, any case: detailed logs on stderr; 0/false/no/off or empty: not).
#[derive(Debug, Parser)]
#[command(name = "dhtmeet", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask STUN servers for this machine's public address and the NAT's mapping type.
    Stun(stun::Args),
    /// Answer STUN Binding requests (a STUN server for your own test network).
    StunServer(stun_server::Args),
    /// Run the offline demo: a STUN server, a DHT and N members meet on loopback.
    Demo(demo::Args),
    /// Join a meeting: stdin lines go to every member, messages are printed.
    Join(join::Args),
    /// The Mainline DHT: run a node, announce, look up.
    #[command(subcommand)]
    Dht(dht::Command),
    /// Check this machine's network: STUN, the DHT, and the health snapshot.
    Status(status::Args),
    /// A data channel to a browser or any WebRTC stack, by SDP offer/answer passed by hand.
    #[command(subcommand)]
    Webrtc(webrtc::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = smol::block_on(async {
        match cli.command {
            Command::Stun(args) => stun::run(args).await.map_err(Failure::from),
            Command::StunServer(args) => stun_server::run(args).await.map_err(Failure::from),
            Command::Demo(args) => demo::run(args).await.map_err(Failure::from),
            Command::Dht(command) => dht::run(command).await.map_err(Failure::from),
            Command::Join(args) => join::run(args).await.map_err(Failure::from),
            Command::Status(args) => status::run(args).await.map_err(Failure::from),
            Command::Webrtc(command) => webrtc::run(command).await.map_err(Failure::from),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Why a subcommand failed: its own error type, each case saying what to do.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Join(#[from] join::JoinError),
    #[error(transparent)]
    Webrtc(#[from] webrtc::WebrtcError),
    #[error(transparent)]
    Dht(#[from] dht::DhtCliError),
    #[error(transparent)]
    Stun(#[from] stun::StunCliError),
    #[error(transparent)]
    StunServer(#[from] stun_server::StunServerError),
    #[error(transparent)]
    Status(#[from] status::StatusError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
}

/// Logs go to stderr (stdout carries the events): by default this program's `info` and
/// up, and other crates' warnings; `DEBUG` (a boolean, [`parse_bool`]) turns on `debug`
/// everywhere; `RUST_LOG` still wins for fine control.
fn init_logging() {
    let raw = std::env::var("DEBUG").ok();
    let debug = raw.as_deref().map(parse_bool);
    let default = match debug {
        Some(Some(true)) => "debug",
        _ => "warn,dhtmeet=info,dhtmeet_core=info,dhtmeet_std=info,dhtmeet_smol=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    if let (Some(value), Some(None)) = (&raw, debug) {
        tracing::warn!(
            "DEBUG={value:?} is not a boolean (1/0, true/false, yes/no, on/off): detailed logs stay off"
        );
    }
}

/// A boolean from the environment, case-insensitively: `1`, `true`, `yes`, `on` and
/// `0`, `false`, `no`, `off`; empty (or blank) is `false`, as if unset. `None`: not a
/// boolean.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "" | "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Prints one event: a JSON object with `event` added to `fields` under `--json`, else
/// `text`; flushed at once (scripts and tests read line by line).
pub(crate) fn emit(json: bool, event: &str, fields: serde_json::Value, text: String) {
    use std::io::Write as _;
    if json {
        let mut obj = fields;
        obj["event"] = event.into();
        println!("{obj}");
    } else {
        println!("{text}");
    }
    let _ = std::io::stdout().flush();
}

/// Starts a thread that sends every line of stdin, wrapped by `line`, on `tx`; it ends
/// with stdin or when the channel closes (end of input is not a reason to leave).
pub(crate) fn forward_stdin<T: Send + 'static>(
    tx: smol::channel::Sender<T>,
    line: fn(String) -> T,
) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::stdin().lock().lines() {
            let Ok(l) = l else { break };
            if tx.send_blocking(line(l)).is_err() {
                break;
            }
        }
    });
}
