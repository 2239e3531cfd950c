//! What `dhtmeet join` prints: node events, files on their way, the health snapshot;
//! text, or one JSON object per line with `--json`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use dhtmeet_core::Event;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_smol::NodeHandle;

use crate::files::FileUpdate;
use crate::status;

/// Which way a file goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Direction {
    Send,
    Receive,
}

/// File output: a redrawn line on a terminal, a `file_progress` event every 10 % with
/// `--json`, the final outcome always.
pub(super) struct Output {
    json: bool,
    terminal: bool,
    /// The last tenth reported per (direction, member, name).
    reported: HashMap<(Direction, MemberId, String), u64>,
}

impl Output {
    pub(super) fn new(json: bool) -> Self {
        Output {
            json,
            terminal: std::io::stderr().is_terminal(),
            reported: HashMap::new(),
        }
    }

    pub(super) fn json(&self) -> bool {
        self.json
    }

    pub(super) fn file(&mut self, direction: Direction, member: MemberId, update: FileUpdate) {
        let json = self.json;
        let peer = member.to_string();
        match update {
            FileUpdate::Step { name, done, size } => self.step(direction, member, name, done, size),
            FileUpdate::Done {
                name, size, path, ..
            } if direction == Direction::Send || path.is_none() => {
                self.end_line(direction, member, &name);
                crate::emit(
                    json,
                    "file_sent",
                    serde_json::json!({"peer": peer, "name": name, "bytes": size}),
                    format!("* sent {name} ({size} bytes) to {member}"),
                );
            }
            FileUpdate::Done {
                name,
                size,
                path,
                sha256,
            } => {
                self.end_line(direction, member, &name);
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                crate::emit(
                    json,
                    "file_received",
                    serde_json::json!({"peer": peer, "path": path, "bytes": size,
                        "sha256": sha256, "verified": true}),
                    format!(
                        "* received {path} ({size} bytes, SHA-256 {sha256} verified) from {member}"
                    ),
                );
            }
            FileUpdate::Failed { name, error } => {
                self.end_line(direction, member, &name);
                let text = match direction {
                    Direction::Send => format!("! could not send {name} to {member}: {error}"),
                    Direction::Receive => format!("! file {name} from {member} dropped: {error}"),
                };
                crate::emit(
                    json,
                    "error",
                    serde_json::json!({"peer": peer, "name": name, "error": error.to_string()}),
                    text,
                );
            }
        }
    }

    fn step(&mut self, direction: Direction, member: MemberId, name: String, done: u64, size: u64) {
        let tenth = (done * 10).checked_div(size).unwrap_or(10);
        let sending = direction == Direction::Send;
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
        let key = (direction, member, name);
        if self.reported.get(&key) != Some(&tenth) {
            if self.json {
                crate::emit(
                    true,
                    "file_progress",
                    serde_json::json!({"peer": member.to_string(), "name": key.2,
                        "direction": if sending { "send" } else { "receive" },
                        "bytes": done, "size": size}),
                    String::new(),
                );
            }
            self.reported.insert(key, tenth);
        }
    }

    fn end_line(&mut self, direction: Direction, member: MemberId, name: &str) {
        self.reported.remove(&(direction, member, name.to_owned()));
        if self.terminal && !self.json {
            eprintln!();
        }
    }

    /// The health snapshot.
    pub(super) async fn status(&self, node: &NodeHandle) {
        let Some(h) = node.health().await else {
            return;
        };
        if self.json {
            let mut v = status::health_json(&h);
            v["event"] = "status".into();
            println!("{v}");
            let _ = std::io::stdout().flush();
        } else {
            print!("{}", status::health_text(&h));
        }
    }

    /// A node event (a message is printed as text).
    pub(super) fn event(&self, event: &Event) {
        let json = self.json;
        let peer = |m: &MemberId| m.to_string();
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
            Event::PeerConnected { member, via } => crate::emit(
                json,
                "peer_connected",
                serde_json::json!({"peer": peer(member), "via": via.as_str()}),
                format!("* connected to member {member} ({})", via.as_str()),
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
            Event::Message { member, data } => self.text(*member, data),
            _ => {}
        }
    }

    /// A line a member typed.
    pub(super) fn text(&self, member: MemberId, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        crate::emit(
            self.json,
            "message",
            serde_json::json!({"peer": member.to_string(), "text": text, "bytes": data.len()}),
            format!("<{member}> {text}"),
        );
    }
}
