//! `dhtmeet join`: join a meeting; stdin lines go to every member, messages are printed,
//! files are sent (`--send`) and received (into `--files-dir`). Built on the embedder API
//! (`dhtmeet_smol::NodeHandle`), like any application would be.

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dhtmeet_core::Event;
use dhtmeet_core::meeting::code::{self, CodeStrength, RECOMMENDED_BITS};
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_smol::{NodeHandle, random_seed};

use crate::files::{self, Frame, Incoming, Received};
use crate::status;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The invitation code (default: $MEETING_CODE; with neither, a new code is made
    /// and printed: give it to the others).
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
    /// Where received files are written (verified by SHA-256, then renamed into place).
    #[arg(long, default_value = "dhtmeet-files")]
    files_dir: PathBuf,
    /// Print the health snapshot every this many seconds (also: type `/status`).
    #[arg(long)]
    status_every: Option<f64>,
    #[command(flatten)]
    state: crate::saved_state::StateArgs,
}

/// What the main loop waits for.
enum Input {
    Line(String),
    Leave,
    Event(Event),
    Sent(Outgoing),
    Tick,
    Deadline,
}

/// Progress of a file on its way to one member.
enum Outgoing {
    Progress {
        member: MemberId,
        name: String,
        done: u64,
        size: u64,
    },
    Done {
        member: MemberId,
        name: String,
        result: Result<u64, String>,
    },
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let (code, generated) = match &args.code {
        Some(c) => (c.clone(), false),
        None => {
            let seed = random_seed().map_err(|e| format!("no OS randomness: {e}"))?;
            (code::generate(&mut seed.rng()), true)
        }
    };
    let strength = code::check(&code, args.allow_weak_code)
        .map_err(|e| format!("{e} (run `dhtmeet join` with no code to make a new one)"))?;
    if let CodeStrength::Custom { estimated_bits } = strength {
        if estimated_bits < RECOMMENDED_BITS {
            eprintln!(
                "WARNING: this meeting code is weak (about {estimated_bits} bits): anyone who sees the meeting \
                 in the DHT can guess it offline and join. Use a generated code (run `dhtmeet join` with no code)."
            );
        }
    }
    let to = args
        .to
        .as_deref()
        .map(|t| {
            t.parse::<MemberId>()
                .map_err(|e| format!("--to {t:?}: {e}"))
        })
        .transpose()?;
    if let Some(path) = &args.send {
        std::fs::metadata(path).map_err(|e| format!("--send {}: {e}", path.display()))?;
    }
    let mut config = args.net.config();
    let new_network = config.bootstrap.is_empty();
    config.state_dir = args.state.dir();
    config.node_id = args
        .node_id
        .as_deref()
        .map(|h| {
            h.parse()
                .map_err(|e| format!("NODE_ID / --node-id {h:?}: {e}"))
        })
        .transpose()?;
    // Ctrl-C is caught from here on (before "joined" is printed), so an early one still
    // leaves cleanly.
    let (tx, rx) = smol::channel::bounded::<Input>(256);
    let ctrl_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = ctrl_tx.try_send(Input::Leave);
    });
    let node = Arc::new(NodeHandle::start(config).await.map_err(|e| e.to_string())?);
    let local = node.local_addr();
    if let Some(r) = node.resumed() {
        eprintln!(
            "note: resuming from {} ({} DHT nodes, {} meetings remembered)",
            r.file.display(),
            r.nodes,
            r.meetings
        );
    }
    let (me, strength) = node
        .join_with(&code, args.allow_weak_code)
        .await
        .map_err(|e| e.to_string())?;
    let topic = dhtmeet_core::dht::meeting_topic(&code).to_string();
    if generated {
        eprintln!("Your invitation code (give it to the others): {code}");
    }
    crate::emit(
        args.json,
        "joined",
        serde_json::json!({"member": me.to_string(), "topic": topic, "local": local.to_string(),
            "code": if generated { Some(code.clone()) } else { None }, "code_bits": strength.bits()}),
        format!(
            "* joined meeting {topic} as member {me} on {local} (code: {} bits)",
            strength.bits()
        ),
    );
    if new_network {
        eprintln!("note: a new DHT network: others must bootstrap from {local}");
    }

    // End of input does not leave the meeting.
    crate::forward_stdin(tx.clone(), Input::Line);
    let events = node.events();
    let event_tx = tx.clone();
    let forward = smol::spawn(async move {
        while let Ok(e) = events.recv().await {
            if event_tx.send(Input::Event(e)).await.is_err() {
                break;
            }
        }
    });
    let mut timers = Vec::new();
    if let Some(s) = args.exit_after {
        let t = tx.clone();
        timers.push(smol::spawn(async move {
            smol::Timer::after(Duration::from_secs_f64(s.max(0.0))).await;
            let _ = t.send(Input::Deadline).await;
        }));
    }
    if let Some(s) = args.status_every {
        let t = tx.clone();
        let every = Duration::from_secs_f64(s.max(0.1));
        timers.push(smol::spawn(async move {
            loop {
                smol::Timer::after(every).await;
                if t.send(Input::Tick).await.is_err() {
                    break;
                }
            }
        }));
    }

    let json = args.json;
    let mut connected = BTreeSet::new();
    let mut incoming = Incoming::new(args.files_dir.clone());
    let mut sending: Vec<smol::Task<()>> = Vec::new();
    let mut next_file_id = 1u32;
    let mut progress = Progress::new(json);
    while let Ok(input) = rx.recv().await {
        match input {
            Input::Leave | Input::Deadline => break,
            Input::Tick => print_status(json, &node).await,
            Input::Line(line) if line.trim() == "/status" => print_status(json, &node).await,
            Input::Line(line) if line.starts_with("/send ") => {
                let path = PathBuf::from(line["/send ".len()..].trim());
                if connected.is_empty() {
                    eprintln!("! no member is connected yet");
                }
                for member in &connected {
                    sending.push(spawn_send(&node, *member, &path, next_file_id, &tx));
                    next_file_id += 1;
                }
            }
            Input::Line(line) => {
                for m in node.broadcast(line.as_bytes()).await {
                    eprintln!("warning: {m} is not reading fast enough; line not sent to it");
                }
            }
            Input::Sent(out) => progress.outgoing(out),
            Input::Event(event) => {
                match &event {
                    Event::PeerConnected { member } => {
                        connected.insert(*member);
                        if let Some(path) = &args.send {
                            if to.is_none_or(|t| t == *member) {
                                sending.push(spawn_send(&node, *member, path, next_file_id, &tx));
                                next_file_id += 1;
                            }
                        }
                    }
                    Event::PeerDisconnected { member, .. } => {
                        connected.remove(member);
                        incoming.abandon(*member);
                    }
                    _ => {}
                }
                match event {
                    Event::Message { member, data } => match files::decode(&data) {
                        Ok(Frame::Text(_)) => print_event(json, &Event::Message { member, data }),
                        Ok(Frame::Offer {
                            id,
                            size,
                            sha256,
                            name,
                        }) => progress
                            .incoming(member, incoming.offer(member, id, size, sha256, &name)),
                        Ok(Frame::Data { id, offset, bytes }) => {
                            if let Some(r) = incoming.data(member, id, offset, bytes) {
                                progress.incoming(member, r);
                            }
                        }
                        Err(e) => {
                            tracing::debug!(%member, error = %e, "malformed control message dropped")
                        }
                    },
                    other => print_event(json, &other),
                }
            }
        }
    }
    // Leave cleanly: stop sending, byes out, sessions closed, socket closed.
    drop(sending);
    drop(timers);
    drop(forward);
    let node = Arc::into_inner(node).ok_or("a file transfer still holds the node")?;
    node.shutdown()
        .await
        .map_err(|e| format!("socket error: {e}"))?;
    crate::emit(
        json,
        "left",
        serde_json::json!({}),
        "* left the meeting".into(),
    );
    Ok(())
}

async fn print_status(json: bool, node: &NodeHandle) {
    let Some(h) = node.health().await else {
        return;
    };
    if json {
        let mut v = status::health_json(&h);
        v["event"] = "status".into();
        println!("{v}");
        let _ = std::io::stdout().flush();
    } else {
        print!("{}", status::health_text(&h));
    }
}

/// Starts sending `path` to `member` in the background; progress goes to `tx`.
fn spawn_send(
    node: &Arc<NodeHandle>,
    member: MemberId,
    path: &Path,
    id: u32,
    tx: &smol::channel::Sender<Input>,
) -> smol::Task<()> {
    let (node, path, tx) = (node.clone(), path.to_owned(), tx.clone());
    smol::spawn(async move {
        let name = path
            .file_name()
            .map_or("file".into(), |n| n.to_string_lossy().into_owned());
        let result = send_file(&node, member, &path, id, &name, &tx).await;
        let _ = tx
            .send(Input::Sent(Outgoing::Done {
                member,
                name,
                result,
            }))
            .await;
    })
}

async fn send_file(
    node: &NodeHandle,
    member: MemberId,
    path: &Path,
    id: u32,
    name: &str,
    tx: &smol::channel::Sender<Input>,
) -> Result<u64, String> {
    let p = path.to_owned();
    let (sha256, size) = smol::unblock(move || files::digest_file(&p))
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    node.send(&member, &files::encode_offer(id, size, &sha256, name))
        .await
        .map_err(|e| e.to_string())?;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut offset = 0u64;
    let mut buf = vec![0u8; files::PIECE];
    while offset < size {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        let want = (size - offset).min(files::PIECE as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(|e| format!("{} changed while sending: {e}", path.display()))?;
        node.send(&member, &files::encode_data(id, offset, &buf[..want]))
            .await
            .map_err(|e| e.to_string())?;
        offset += want as u64;
        let _ = tx
            .send(Input::Sent(Outgoing::Progress {
                member,
                name: name.to_owned(),
                done: offset,
                size,
            }))
            .await;
    }
    Ok(size)
}

/// Progress output: a redrawn line on a terminal, a `file_progress` event every 10 %
/// with `--json`, the final outcome always.
struct Progress {
    json: bool,
    terminal: bool,
    /// The last tenth reported per (direction, member, name).
    reported: HashMap<(bool, MemberId, String), u64>,
}

impl Progress {
    fn new(json: bool) -> Self {
        Progress {
            json,
            terminal: std::io::stderr().is_terminal(),
            reported: HashMap::new(),
        }
    }

    fn step(&mut self, sending: bool, member: MemberId, name: &str, done: u64, size: u64) {
        let tenth = (done * 10).checked_div(size).unwrap_or(10);
        let key = (sending, member, name.to_owned());
        if self.terminal && !self.json {
            let verb = if sending { "sending" } else { "receiving" };
            let bar: String = (0..20)
                .map(|i| if i < tenth * 2 { '#' } else { '.' })
                .collect();
            eprint!(
                "\r{verb} {name} {} {member} [{bar}] {:.1}/{:.1} MB ",
                if sending { "to" } else { "from" },
                done as f64 / 1e6,
                size as f64 / 1e6
            );
        }
        if self.reported.get(&key) != Some(&tenth) {
            self.reported.insert(key, tenth);
            if self.json {
                crate::emit(
                    true,
                    "file_progress",
                    serde_json::json!({"peer": member.to_string(), "name": name,
                        "direction": if sending { "send" } else { "receive" },
                        "bytes": done, "size": size}),
                    String::new(),
                );
            }
        }
    }

    fn end_line(&self) {
        if self.terminal && !self.json {
            eprintln!();
        }
    }

    fn outgoing(&mut self, out: Outgoing) {
        match out {
            Outgoing::Progress {
                member,
                name,
                done,
                size,
            } => self.step(true, member, &name, done, size),
            Outgoing::Done {
                member,
                name,
                result,
            } => {
                self.end_line();
                self.reported.remove(&(true, member, name.clone()));
                match result {
                    Ok(size) => crate::emit(
                        self.json,
                        "file_sent",
                        serde_json::json!({"peer": member.to_string(), "name": name, "bytes": size}),
                        format!("* sent {name} ({size} bytes) to {member}"),
                    ),
                    Err(e) => crate::emit(
                        self.json,
                        "error",
                        serde_json::json!({"peer": member.to_string(), "name": name, "error": e}),
                        format!("! could not send {name} to {member}: {e}"),
                    ),
                }
            }
        }
    }

    fn incoming(&mut self, member: MemberId, r: Received) {
        match r {
            Received::Progress { name, done, size } => self.step(false, member, &name, done, size),
            Received::Done { path, size, sha256 } => {
                self.end_line();
                crate::emit(
                    self.json,
                    "file_received",
                    serde_json::json!({"peer": member.to_string(), "path": path.display().to_string(),
                        "bytes": size, "sha256": sha256, "verified": true}),
                    format!(
                        "* received {} ({size} bytes, SHA-256 {sha256} verified) from {member}",
                        path.display()
                    ),
                );
            }
            Received::Failed { name, reason } => {
                self.end_line();
                crate::emit(
                    self.json,
                    "error",
                    serde_json::json!({"peer": member.to_string(), "name": name, "error": reason}),
                    format!("! file {name} from {member} dropped: {reason}"),
                );
            }
        }
    }
}

fn print_event(json: bool, event: &Event) {
    let peer = |m: &dhtmeet_core::meeting::signal::MemberId| m.to_string();
    match event {
        Event::AddressDiscovered(r) => crate::emit(
            json,
            "address_discovered",
            serde_json::json!({"address": r.first.mapped.to_string(), "mapping": r.mapping.as_str()}),
            format!(
                "* public address {} ({})",
                r.first.mapped,
                r.mapping.as_str()
            ),
        ),
        Event::DhtReady { nodes } => crate::emit(
            json,
            "dht_ready",
            serde_json::json!({"nodes": nodes}),
            format!("* DHT ready ({nodes} nodes)"),
        ),
        Event::DhtBootstrapFailed => crate::emit(
            json,
            "error",
            serde_json::json!({"error": "no DHT bootstrap node answered"}),
            "! no DHT bootstrap node answered; retrying".into(),
        ),
        Event::StunUnreachable(e) => crate::emit(
            json,
            "error",
            serde_json::json!({"error": e.to_string()}),
            format!("! {e}"),
        ),
        Event::PeerDiscovered { addr } => crate::emit(
            json,
            "peer_discovered",
            serde_json::json!({"address": addr.to_string()}),
            format!("* found {addr} under the meeting's topic"),
        ),
        Event::PeerConnecting { member, addr } => crate::emit(
            json,
            "peer_connecting",
            serde_json::json!({"peer": peer(member), "address": addr.to_string()}),
            format!("* connecting to member {member} at {addr}"),
        ),
        Event::PeerConnected { member } => crate::emit(
            json,
            "peer_connected",
            serde_json::json!({"peer": peer(member)}),
            format!("* connected to member {member}"),
        ),
        Event::PeerReconnecting {
            member,
            reason,
            attempt,
        } => crate::emit(
            json,
            "peer_disconnected",
            serde_json::json!({"peer": peer(member), "reason": format!("{reason:?}"), "reconnect_attempt": attempt}),
            format!("* lost member {member} ({reason:?}); reconnecting (attempt {attempt})"),
        ),
        Event::PeerDisconnected { member, reason } => crate::emit(
            json,
            "peer_disconnected",
            serde_json::json!({"peer": peer(member), "reason": format!("{reason:?}")}),
            format!("* member {member} is gone ({reason:?})"),
        ),
        Event::Message { member, data } => {
            let text = String::from_utf8_lossy(data);
            crate::emit(
                json,
                "message",
                serde_json::json!({"peer": peer(member), "text": text, "bytes": data.len()}),
                format!("<{member}> {text}"),
            )
        }
        _ => {}
    }
}
