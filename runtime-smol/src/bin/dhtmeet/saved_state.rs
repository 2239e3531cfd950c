//! `--state-dir` / `--no-state`: what `dhtmeet join` remembers across restarts (its DHT
//! id and nodes, the members' addresses of its meetings), loaded at start, saved every
//! [`SAVE_EVERY`], when a member connects and on a clean exit. See `docs/STATE.md`.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhtmeet_core::{Event, Node, SavedState};
use dhtmeet_smol::StateDir;
use dhtmeet_smol::state_dir::default_dir;

/// How often a running node saves its state.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(60);

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

/// The node's slot in its state directory, and when it was last saved.
#[derive(Debug)]
pub(crate) struct Remembered {
    dir: Option<StateDir>,
    /// A `Cell` so that the run loop's input and event callbacks can both save.
    last_save: Cell<Instant>,
}

impl Remembered {
    /// Opens the state directory the arguments name (a warning and no state if it cannot
    /// be used) and loads the saved state, if there is a usable one.
    pub(crate) fn open(args: &StateArgs) -> (Remembered, Option<SavedState>) {
        let path = if args.no_state {
            None
        } else {
            let path = args.state_dir.clone().or_else(default_dir);
            if path.is_none() {
                eprintln!("warning: no home directory: keeping no state (give --state-dir)");
            }
            path
        };
        let dir = path.and_then(|p| match StateDir::open(&p) {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprintln!("warning: {e}; keeping no state");
                None
            }
        });
        let saved = dir.as_ref().and_then(StateDir::load_or_warn);
        if let (Some(dir), Some(s)) = (&dir, &saved) {
            eprintln!(
                "note: resuming from {} ({} DHT nodes, {} meetings remembered)",
                dir.path().display(),
                s.nodes.len(),
                s.meetings.len()
            );
        }
        let remembered = Remembered {
            dir,
            last_save: Cell::new(Instant::now()),
        };
        (remembered, saved)
    }

    /// Saves now; a failure is a warning, never the end of the meeting.
    pub(crate) fn save(&self, node: &Node) {
        self.last_save.set(Instant::now());
        let Some(dir) = &self.dir else { return };
        if let Err(e) = dir.save(&node.export_state()) {
            eprintln!(
                "warning: cannot save state to {}: {e}",
                dir.path().display()
            );
        }
    }

    /// Saves if [`SAVE_EVERY`] has passed, or at once when a member connected (the
    /// moment a restart would most like to remember).
    pub(crate) fn after_event(&self, node: &Node, event: &Event) {
        if matches!(event, Event::PeerConnected { .. })
            || self.last_save.get().elapsed() >= SAVE_EVERY
        {
            self.save(node);
        }
    }

    /// Starts a thread that sends `tick()` on `tx` every [`SAVE_EVERY`], so that an idle
    /// node saves too; it ends when the channel closes.
    pub(crate) fn spawn_ticker<T: Send + 'static>(
        &self,
        tx: smol::channel::Sender<T>,
        tick: fn() -> T,
    ) {
        if self.dir.is_none() {
            return;
        }
        std::thread::spawn(move || {
            loop {
                // A plain sleeping thread: the runtime's loop stays free of timers of
                // its own, and a tick only asks the loop to save.
                std::thread::sleep(SAVE_EVERY);
                if tx.send_blocking(tick()).is_err() {
                    break;
                }
            }
        });
    }
}
