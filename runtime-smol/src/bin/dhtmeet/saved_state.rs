//! `--state-dir` / `--no-state`: what `dhtmeet join` remembers across restarts (its DHT
//! id and nodes, the members' addresses of its meetings), loaded at start, saved every
//! [`SAVE_EVERY`], when a member connects and on a clean exit. See `docs/STATE.md`.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhtmeet_core::{Event, Node, SavedState};
use dhtmeet_smol::state_dir::default_dir;
use dhtmeet_smol::{StateDir, resolve_all};

/// How often a running node saves its state.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The DHT port a bootstrap name without one gets.
const BOOTSTRAP_PORT: u16 = 6881;

/// Resolves the bootstrap names. When that fails (the routers' names are gone, no DNS)
/// but the saved state remembers DHT nodes, the node starts from those and whatever
/// names did resolve, after a warning, instead of giving up.
pub(crate) async fn resolve_bootstrap(
    names: &[String],
    saved: Option<&SavedState>,
) -> Result<Vec<SocketAddr>, String> {
    let all = resolve_all(names, BOOTSTRAP_PORT).await;
    let mut each = Vec::new();
    if all.is_err() && remembers_nodes(saved) {
        for name in names {
            each.push(resolve_all(std::slice::from_ref(name), BOOTSTRAP_PORT).await);
        }
    }
    bootstrap_from(all, each, saved)
}

fn remembers_nodes(saved: Option<&SavedState>) -> bool {
    saved.is_some_and(|s| !s.nodes.is_empty())
}

/// [`resolve_bootstrap`]'s decision: `all` is the resolution of every name at once,
/// `each` of each name alone (only tried after `all` failed with nodes remembered).
fn bootstrap_from(
    all: io::Result<Vec<SocketAddr>>,
    each: Vec<io::Result<Vec<SocketAddr>>>,
    saved: Option<&SavedState>,
) -> Result<Vec<SocketAddr>, String> {
    match all {
        Ok(found) => Ok(found),
        Err(e) if remembers_nodes(saved) => {
            let mut found: Vec<SocketAddr> = Vec::new();
            for a in each.into_iter().flatten().flatten() {
                if !found.contains(&a) {
                    found.push(a);
                }
            }
            eprintln!(
                "warning: {e}; starting from the remembered DHT nodes and {} bootstrap addresses",
                found.len()
            );
            Ok(found)
        }
        Err(e) => Err(format!(
            "{e} (no network? give --bootstrap with addresses you can reach)"
        )),
    }
}

/// A remembered DHT node's address (to pick the interface to announce when the socket
/// is bound to the unspecified address and nothing else names a destination).
pub(crate) fn first_node(saved: Option<&SavedState>) -> Option<SocketAddr> {
    saved.and_then(|s| s.nodes.first()).map(|n| n.addr)
}

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

#[cfg(test)]
mod tests {
    use dhtmeet_core::dht::NodeId;
    use dhtmeet_core::dht::krpc::CompactNode;

    use super::*;

    fn with_nodes() -> SavedState {
        SavedState {
            nodes: vec![CompactNode {
                id: NodeId([1; 20]),
                addr: "127.0.0.1:7000".parse().unwrap(),
            }],
            ..SavedState::default()
        }
    }

    fn gone() -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, "cannot resolve router.example")
    }

    #[test]
    fn unresolvable_bootstrap_names_are_fatal_only_without_remembered_nodes() {
        let ok: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert!(bootstrap_from(Err(gone()), Vec::new(), None).is_err());
        assert!(bootstrap_from(Err(gone()), Vec::new(), Some(&SavedState::default())).is_err());
        assert_eq!(
            bootstrap_from(
                Err(gone()),
                vec![Err(gone()), Ok(vec![ok])],
                Some(&with_nodes())
            ),
            Ok(vec![ok]),
            "the names that resolve are kept"
        );
        assert_eq!(
            bootstrap_from(Ok(vec![ok]), Vec::new(), Some(&with_nodes())),
            Ok(vec![ok])
        );
        assert_eq!(
            first_node(Some(&with_nodes())),
            Some("127.0.0.1:7000".parse().unwrap())
        );
    }
}
