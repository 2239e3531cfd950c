//! The demo's meeting as a small app: [`App::on_event`] takes each member's events,
//! sends every member's two messages once all are connected, and counts what arrives;
//! [`App::leave`] ends it with a [`Report`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dhtmeet_core::Event;
use sha2::{Digest, Sha256};
use smol::channel::Sender;

use super::{Command, DemoError};

/// Bytes of the large message each member sends to all (above the SCTP message limit,
/// so it is chunked and reassembled).
const LARGE: usize = 256 * 1024;

pub(super) struct App {
    started: Instant,
    /// Each member's command channel, by member index.
    commands: Vec<Sender<Command>>,
    /// When each member first found another in the DHT, since `started`.
    discovered: BTreeMap<usize, Duration>,
    /// Open connections, per member.
    connections: Vec<usize>,
    /// When every data channel was open, since `started`.
    all_connected: Option<Duration>,
    /// When the messages were sent.
    sent_at: Option<Instant>,
    /// Messages received, per member.
    received: Vec<Vec<Vec<u8>>>,
}

/// What the demo measured.
pub(super) struct Report {
    members: usize,
    discover: Duration,
    connect: Duration,
    messages: usize,
    bytes: usize,
    delivery: Duration,
    /// Every message passed its SHA-256 check.
    pub(super) intact: bool,
}

impl App {
    pub(super) fn new(started: Instant, commands: Vec<Sender<Command>>) -> App {
        let n = commands.len();
        App {
            started,
            commands,
            discovered: BTreeMap::new(),
            connections: vec![0; n],
            all_connected: None,
            sent_at: None,
            received: vec![Vec::new(); n],
        }
    }

    fn members(&self) -> usize {
        self.commands.len()
    }

    /// Messages expected in all: a small and a large one from each member to each other.
    fn expected(&self) -> usize {
        let n = self.members();
        n * (n - 1) * 2
    }

    fn delivered(&self) -> usize {
        self.received.iter().map(Vec::len).sum()
    }

    /// Every message has arrived.
    pub(super) fn done(&self) -> bool {
        self.delivered() >= self.expected()
    }

    /// Member `i` reported `event`.
    pub(super) fn on_event(&mut self, i: usize, event: Event) {
        match event {
            Event::PeerDiscovered { .. } => {
                let at = self.started.elapsed();
                self.discovered.entry(i).or_insert(at);
            }
            Event::PeerConnected { .. } => self.connections[i] += 1,
            Event::Message { data, .. } => self.received[i].push(data),
            _ => {}
        }
        let everyone = self.members() - 1;
        if self.all_connected.is_none() && self.connections.iter().all(|c| *c == everyone) {
            self.all_connected = Some(self.started.elapsed());
            self.sent_at = Some(Instant::now());
            self.broadcast();
        }
    }

    /// Each member sends a small and a large sealed message to all.
    fn broadcast(&self) {
        for (j, tx) in self.commands.iter().enumerate() {
            let small = sealed(format!("hello from member {j}").into_bytes());
            let large = sealed((0..LARGE).map(|k| (k * 31 + j * 7) as u8).collect());
            let _ = tx.try_send(Command::Broadcast(small));
            let _ = tx.try_send(Command::Broadcast(large));
        }
    }

    /// Why the demo gave up, with how far it got.
    pub(super) fn timed_out(&self) -> DemoError {
        let n = self.members();
        DemoError::TimedOut {
            connected: self.connections.iter().sum(),
            connections: n * (n - 1),
            delivered: self.delivered(),
            expected: self.expected(),
        }
    }

    /// Tells every member to leave; what was measured.
    pub(super) fn leave(self) -> Report {
        let delivery = self.sent_at.map(|t| t.elapsed()).unwrap_or_default();
        let intact = self.received.iter().flatten().all(|m| intact(m));
        let bytes = self.received.iter().flatten().map(Vec::len).sum();
        for tx in &self.commands {
            let _ = tx.try_send(Command::Leave);
        }
        Report {
            members: self.members(),
            discover: self.discovered.values().max().copied().unwrap_or_default(),
            connect: self.all_connected.unwrap_or_default(),
            messages: self.expected(),
            bytes,
            delivery,
            intact,
        }
    }
}

impl Report {
    /// On stdout: one JSON object under `--json`, else lines of text.
    pub(super) fn print(&self, json: bool) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (n, messages, bytes) = (self.members, self.messages, self.bytes);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "members": n,
                    "time_to_discover_ms": ms(self.discover),
                    "time_to_connect_ms": ms(self.connect),
                    "messages_delivered": messages,
                    "bytes_delivered": bytes,
                    "delivery_ms": ms(self.delivery),
                    "intact": self.intact,
                })
            );
            return;
        }
        println!(
            "members:            {n}, each connected to the other {}",
            n - 1
        );
        println!(
            "time to discover:   {:.0} ms (every member found another in the DHT)",
            ms(self.discover)
        );
        println!(
            "time to connect:    {:.0} ms (every data channel open)",
            ms(self.connect)
        );
        println!(
            "messages delivered: {messages} ({bytes} bytes) in {:.0} ms, {}",
            ms(self.delivery),
            if self.intact {
                "all intact (SHA-256 checked)"
            } else {
                "SOME CORRUPTED"
            }
        );
    }
}

/// A message with its own SHA-256 at the end, so the receiver can check it is intact.
fn sealed(body: Vec<u8>) -> Vec<u8> {
    let mut m = body;
    let digest = Sha256::digest(&m);
    m.extend_from_slice(&digest);
    m
}

fn intact(m: &[u8]) -> bool {
    m.len() >= 32 && Sha256::digest(&m[..m.len() - 32])[..] == m[m.len() - 32..]
}
