//! What every command shares: `--seed`, `--json`, `--pcap`, logging and output helpers.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use dhtmeet_sim::NatPreset;
use dhtmeet_sim::scenario::ScenarioError;

/// The options every command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The seed of the run: the same seed gives the same run and trace hash.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub(crate) seed: u64,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write every datagram on every link to FILE as pcap (open it with Wireshark).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
}

impl Common {
    /// Opens the pcap file, if one was asked for.
    pub(crate) fn pcap_sink(&self) -> Result<Option<Box<dyn Write>>, String> {
        match &self.pcap {
            None => Ok(None),
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| format!("cannot create pcap file {}: {e}", path.display()))?;
                Ok(Some(Box::new(BufWriter::new(file))))
            }
        }
    }
}

/// The parser of `--nat PRESET`: lists the presets in `--help` and in errors.
pub(crate) fn preset_parser() -> impl clap::builder::TypedValueParser<Value = NatPreset> {
    let aliases = NatPreset::ALIASES.map(|(alias, _)| alias);
    clap::builder::PossibleValuesParser::new(NatPreset::NAMES.into_iter().chain(aliases))
        .try_map(|name| name.parse::<NatPreset>())
}

/// Turns a scenario error into the message printed to the user, with the seed.
pub(crate) fn scenario_error(seed: u64, e: ScenarioError) -> String {
    format!("{e} (seed {seed}; rerun with --seed {seed} to reproduce)")
}

/// Logs to stderr: `RUST_LOG` (a `tracing` filter, e.g. `dhtmeet_core=debug`) if set,
/// else everything at debug level when `DEBUG` is true (`1`, `true`, `yes`, `on`, in any
/// case, as `dhtmeet` reads it); nothing otherwise. Each line a host's machine logs
/// carries its span: `host{id=h51 name=member-0 t=12.345678}` (virtual seconds).
pub(crate) fn init_logging() {
    let debug = std::env::var("DEBUG").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if debug => tracing_subscriber::EnvFilter::new("debug"),
        Err(_) => return,
    };
    // Each host's span (who speaks, at what virtual time), whatever the filter selects;
    // nothing logs events under this target.
    let filter = match "dhtmeet_sim::host=debug".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .try_init();
}
