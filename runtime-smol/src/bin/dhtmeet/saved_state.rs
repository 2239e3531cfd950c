//! `--state-dir` / `--no-state`: where `dhtmeet join` remembers its DHT id and nodes and
//! the members' addresses of its meetings across restarts. The runtime does the loading
//! and saving (`dhtmeet_smol::Config::state_dir`); see `docs/STATE.md`.

use std::path::PathBuf;

use dhtmeet_smol::state_dir::default_dir;

#[derive(Debug, clap::Args)]
pub(crate) struct StateArgs {
    /// Where to keep the node's state between runs (DHT id and nodes, members'
    /// addresses; never messages). Default: $XDG_STATE_HOME/dhtmeet or
    /// ~/.local/state/dhtmeet (the platform's per-user state directory).
    #[arg(long, value_name = "DIR", conflicts_with = "no_state")]
    state_dir: Option<PathBuf>,
    /// Keep no state: start afresh and write nothing.
    #[arg(long)]
    no_state: bool,
}

impl StateArgs {
    /// The directory to use, if any (a warning when there is no home directory).
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        if self.no_state {
            return None;
        }
        let dir = self.state_dir.clone().or_else(default_dir);
        if dir.is_none() {
            eprintln!("warning: no home directory: keeping no state (give --state-dir)");
        }
        dir
    }
}
