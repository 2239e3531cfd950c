//! `dhtmeet join`: join a meeting; stdin lines go to every member, messages are printed,
//! files are sent (`--send`) and received (into `--files-dir`) with the core's transfer
//! protocol. Built on the embedder API (`dhtmeet_smol::NodeHandle`), like any
//! application would be: a setup, then one loop that hands each input to [`App`].

mod output;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhtmeet_core::Event;
use dhtmeet_core::dht::ParseIdError;
use dhtmeet_core::meeting::code::{self, CodeError, CodeStrength, RECOMMENDED_BITS};
use dhtmeet_core::meeting::signal::{MemberId, ParseMemberIdError};
use dhtmeet_core::transfer::MAX_INCOMING_PER_MEMBER;
use dhtmeet_smol::{Config, NodeHandle, StartError, random_seed};
use smol::channel::{Receiver, Sender};

use crate::files::{self, FileUpdate, Inbox, Message};
use output::{Direction, Output};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The invitation code (default: $MEETING_CODE; with neither, a new code is made
    /// and printed: give it to the others). An empty MEETING_CODE is an error.
    #[arg(env = "MEETING_CODE")]
    code: Option<String>,
    #[command(flatten)]
    net: crate::net_args::NetArgs,
    /// One JSON object per line per event instead of text.
    #[arg(long)]
    json: bool,
    /// Leave the meeting after this many seconds.
    #[arg(long)]
    exit_after: Option<f64>,
    /// Accept a typed code that is too weak to protect the meeting.
    #[arg(long)]
    allow_weak_code: bool,
    /// A fixed DHT node id (40 hex characters); default: random, BEP 42-secure once the
    /// public address is known.
    #[arg(long, env = "NODE_ID")]
    node_id: Option<String>,
    /// Send this file to every member as it connects (or only to `--to`). Also at any
    /// time: type `/send PATH` on stdin.
    #[arg(long)]
    send: Option<PathBuf>,
    /// With `--send`: only to this member (its 16-hex-digit id).
    #[arg(long, requires = "send")]
    to: Option<String>,
    /// Where received files are written: as NAME.<sender>-<id>.part, renamed to NAME once
    /// their SHA-256 is verified. A transfer cut off is not resumed: on start, partial
    /// files no running dhtmeet holds (left by one that was killed) are removed.
    #[arg(long, default_value = "dhtmeet-files")]
    files_dir: PathBuf,
    /// Print the health snapshot every this many seconds (also: type `/status`).
    #[arg(long)]
    status_every: Option<f64>,
    #[command(flatten)]
    state: crate::saved_state::StateArgs,
}

/// Why `join` could not start or leave cleanly, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JoinError {
    #[error(
        "MEETING_CODE is set but empty: set it to the invitation code, or unset it \
         (`unset MEETING_CODE`) to make a new meeting"
    )]
    EmptyCodeVariable,
    #[error("{0} (run `dhtmeet join` with no code to make a new one)")]
    Code(#[from] CodeError),
    #[error("no OS randomness to make a code: {0}")]
    NoRandomness(io::Error),
    #[error("--to {value:?}: {source} (as printed when the member connects)")]
    To {
        value: String,
        source: ParseMemberIdError,
    },
    #[error("--send {}: {source}", path.display())]
    SendPath { path: PathBuf, source: io::Error },
    #[error("NODE_ID / --node-id {value:?}: {source}")]
    NodeId { value: String, source: ParseIdError },
    #[error("--files-dir {}: {source}", path.display())]
    FilesDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Join(#[from] dhtmeet_core::JoinError),
    #[error("socket error while leaving: {0}")]
    Shutdown(io::Error),
    #[error("a file transfer still held the node: it was not shut down cleanly")]
    NodeHeld,
}

/// What the main loop waits for.
enum Input {
    Line(String),
    Leave,
    Event(Event),
    Sent {
        member: MemberId,
        update: FileUpdate,
    },
    Tick,
    Deadline,
    /// An incoming file may have stalled.
    Timer,
}

pub(crate) async fn run(args: Args) -> Result<(), JoinError> {
    let (code, generated) = meeting_code(&args)?;
    let to = args
        .to
        .as_deref()
        .map(|t| {
            t.parse().map_err(|source| JoinError::To {
                value: t.into(),
                source,
            })
        })
        .transpose()?;
    if let Some(path) = &args.send {
        std::fs::metadata(path).map_err(|source| JoinError::SendPath {
            path: path.clone(),
            source,
        })?;
    }
    let config = node_config(&args)?;
    let new_network = config.bootstrap.is_empty();
    let inbox = open_inbox(&args.files_dir)?;
    // Ctrl-C is caught from here on (before "joined" is printed), so an early one still
    // leaves cleanly.
    let (tx, rx) = smol::channel::bounded::<Input>(256);
    let ctrl_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = ctrl_tx.try_send(Input::Leave);
    });
    let node = Arc::new(NodeHandle::start(config).await?);
    announce(&node, &code, generated, new_network, &args).await?;
    let background = spawn_inputs(&node, &args, &tx);
    let mut app = App {
        node,
        tx,
        out: Output::new(args.json),
        inbox,
        connected: BTreeSet::new(),
        send: args.send.map(|path| (path, to)),
        sending: Vec::new(),
        on_their_way: BTreeMap::new(),
        next_file_id: 1,
    };
    while let Some(input) = next_input(&rx, app.inbox.poll_timeout()).await {
        if !app.handle(input).await {
            break;
        }
    }
    drop(background);
    app.leave().await
}

/// The code given, from `MEETING_CODE`, or a new one (`true`: made here).
fn meeting_code(args: &Args) -> Result<(String, bool), JoinError> {
    let empty_variable =
        std::env::var_os("MEETING_CODE").is_some_and(|v| v.to_string_lossy().trim().is_empty());
    let (code, generated) = match args.code.as_deref() {
        None if empty_variable => return Err(JoinError::EmptyCodeVariable),
        Some(c) if empty_variable && c.trim().is_empty() => {
            return Err(JoinError::EmptyCodeVariable);
        }
        Some(c) => (c.to_owned(), false),
        None => {
            let seed = random_seed().map_err(JoinError::NoRandomness)?;
            (code::generate(&mut seed.rng()), true)
        }
    };
    if let CodeStrength::Custom { estimated_bits } = code::check(&code, args.allow_weak_code)? {
        if estimated_bits < RECOMMENDED_BITS {
            eprintln!(
                "WARNING: this meeting code is weak (about {estimated_bits} bits): anyone who sees the meeting \
                 in the DHT can guess it offline and join. Use a generated code (run `dhtmeet join` with no code)."
            );
        }
    }
    Ok((code, generated))
}

fn node_config(args: &Args) -> Result<Config, JoinError> {
    let mut config = args.net.config();
    config.state_dir = args.state.dir();
    config.node_id = args
        .node_id
        .as_deref()
        .map(|h| {
            h.parse().map_err(|source| JoinError::NodeId {
                value: h.into(),
                source,
            })
        })
        .transpose()?;
    Ok(config)
}

fn open_inbox(dir: &std::path::Path) -> Result<Inbox, JoinError> {
    let (inbox, removed) = Inbox::open(dir.to_owned()).map_err(|source| JoinError::FilesDir {
        path: dir.to_owned(),
        source,
    })?;
    if removed > 0 {
        eprintln!(
            "note: removed {removed} partial file(s) from {} (a receiver stopped mid-transfer)",
            dir.display()
        );
    }
    Ok(inbox)
}

/// Joins the meeting and says so.
async fn announce(
    node: &NodeHandle,
    code: &str,
    generated: bool,
    new_network: bool,
    args: &Args,
) -> Result<(), JoinError> {
    let local = node.local_addr();
    if let Some(r) = node.resumed() {
        eprintln!(
            "note: resuming from {} ({} DHT nodes, {} meetings remembered)",
            r.file.display(),
            r.nodes,
            r.meetings
        );
    }
    let (me, strength) = node.join_with(code, args.allow_weak_code).await?;
    let topic = dhtmeet_core::dht::meeting_topic(code).to_string();
    if generated {
        eprintln!("Your invitation code (give it to the others): {code}");
    }
    crate::emit(
        args.json,
        "joined",
        serde_json::json!({"member": me.to_string(), "topic": topic, "local": local.to_string(),
            "code": if generated { Some(code) } else { None }, "code_bits": strength.bits()}),
        format!(
            "* joined meeting {topic} as member {me} on {local} (code: {} bits)",
            strength.bits()
        ),
    );
    if new_network {
        eprintln!("note: a new DHT network: others must bootstrap from {local}");
    }
    Ok(())
}

/// Stdin lines, node events and timers, all into `tx`; the tasks end when dropped.
fn spawn_inputs(node: &NodeHandle, args: &Args, tx: &Sender<Input>) -> Vec<smol::Task<()>> {
    // End of input does not leave the meeting.
    crate::forward_stdin(tx.clone(), Input::Line);
    let events = node.events();
    let t = tx.clone();
    let mut tasks = vec![smol::spawn(async move {
        while let Ok(e) = events.recv().await {
            if t.send(Input::Event(e)).await.is_err() {
                break;
            }
        }
    })];
    if let Some(s) = args.exit_after {
        let t = tx.clone();
        tasks.push(smol::spawn(async move {
            smol::Timer::after(Duration::from_secs_f64(s.max(0.0))).await;
            let _ = t.send(Input::Deadline).await;
        }));
    }
    if let Some(s) = args.status_every {
        let (t, every) = (tx.clone(), Duration::from_secs_f64(s.max(0.1)));
        tasks.push(smol::spawn(async move {
            loop {
                smol::Timer::after(every).await;
                if t.send(Input::Tick).await.is_err() {
                    break;
                }
            }
        }));
    }
    tasks
}

/// The next input, or [`Input::Timer`] at `wake`; `None` once every sender is gone.
async fn next_input(rx: &Receiver<Input>, wake: Option<Instant>) -> Option<Input> {
    let input = async { rx.recv().await.ok() };
    match wake {
        None => input.await,
        Some(at) => {
            let timer = async {
                smol::Timer::at(at).await;
                Some(Input::Timer)
            };
            futures_lite::future::or(input, timer).await
        }
    }
}

/// The meeting as the person at the terminal sees it.
struct App {
    node: Arc<NodeHandle>,
    tx: Sender<Input>,
    out: Output,
    inbox: Inbox,
    connected: BTreeSet<MemberId>,
    /// `--send` (and `--to`).
    send: Option<(PathBuf, Option<MemberId>)>,
    sending: Vec<smol::Task<()>>,
    /// Files on their way, per member (at most what a receiver takes at once).
    on_their_way: BTreeMap<MemberId, usize>,
    next_file_id: u32,
}

impl App {
    /// Handles one input; `false` to leave.
    async fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Leave | Input::Deadline => return false,
            Input::Tick => self.out.status(&self.node).await,
            Input::Line(line) => self.on_line(line).await,
            Input::Event(event) => self.on_event(event),
            Input::Sent { member, update } => {
                if !matches!(update, FileUpdate::Step { .. }) {
                    self.on_their_way
                        .entry(member)
                        .and_modify(|n| *n = n.saturating_sub(1));
                }
                self.out.file(Direction::Send, member, update);
            }
            Input::Timer => {
                for (member, update) in self.inbox.handle_timeout(Instant::now()) {
                    self.out.file(Direction::Receive, member, update);
                }
            }
        }
        true
    }

    async fn on_line(&mut self, line: String) {
        if line.trim() == "/status" {
            return self.out.status(&self.node).await;
        }
        if let Some(path) = line.strip_prefix("/send ") {
            let path = PathBuf::from(path.trim());
            if self.connected.is_empty() {
                eprintln!("! no member is connected yet");
            }
            for member in self.connected.clone() {
                self.send_file(member, path.clone());
            }
            return;
        }
        for m in self.node.broadcast(line.as_bytes()).await {
            eprintln!("warning: {m} is not reading fast enough; line not sent to it");
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Message { member, data } => {
                match self.inbox.handle_message(Instant::now(), member, &data) {
                    Message::Text(text) => self.out.text(member, text),
                    Message::File(update) => self.out.file(Direction::Receive, member, update),
                    Message::Nothing => {}
                }
            }
            Event::PeerConnected { member, via } => {
                self.connected.insert(member);
                self.out.event(&Event::PeerConnected { member, via });
                match &self.send {
                    Some((path, to)) if to.is_none_or(|t| t == member) => {
                        self.send_file(member, path.clone());
                    }
                    _ => {}
                }
            }
            Event::PeerDisconnected { member, reason } => {
                self.connected.remove(&member);
                self.out.event(&Event::PeerDisconnected { member, reason });
                for (member, update) in self.inbox.member_left(member) {
                    self.out.file(Direction::Receive, member, update);
                }
            }
            other => self.out.event(&other),
        }
    }

    /// Starts sending `path` to `member` in the background; progress comes back as
    /// [`Input::Sent`].
    fn send_file(&mut self, member: MemberId, path: PathBuf) {
        let busy = self.on_their_way.entry(member).or_default();
        if *busy >= MAX_INCOMING_PER_MEMBER {
            eprintln!(
                "! {busy} files are already on their way to {member}: send {} when one is done",
                path.display()
            );
            return;
        }
        *busy += 1;
        let (id, node, tx) = (self.next_file_id, self.node.clone(), self.tx.clone());
        self.next_file_id = self.next_file_id.wrapping_add(1);
        self.sending.retain(|task| !task.is_finished());
        self.sending.push(smol::spawn(async move {
            let name = path
                .file_name()
                .map_or("file".into(), |n| n.to_string_lossy().into_owned());
            let step = |done, size| {
                let name = name.clone();
                let update = FileUpdate::Step { name, done, size };
                let _ = tx.try_send(Input::Sent { member, update });
            };
            let update = match files::send_file(&node, member, &path, id, step).await {
                Ok(size) => FileUpdate::Done {
                    name,
                    size,
                    path: None,
                    sha256: String::new(),
                },
                Err(error) => FileUpdate::Failed { name, error },
            };
            let _ = tx.send(Input::Sent { member, update }).await;
        }));
    }

    /// Leaves cleanly: stops sending, byes out, sessions closed, socket closed.
    async fn leave(self) -> Result<(), JoinError> {
        drop(self.sending);
        let node = Arc::into_inner(self.node).ok_or(JoinError::NodeHeld)?;
        node.shutdown().await.map_err(JoinError::Shutdown)?;
        crate::emit(
            self.out.json(),
            "left",
            serde_json::json!({}),
            "* left the meeting".into(),
        );
        Ok(())
    }
}
