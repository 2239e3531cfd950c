//! A simple UDP hole-punching agent, the yardstick of the NAT matrix.
//!
//! It does what every punching protocol does at heart, and nothing cleverer (no port
//! prediction, no birthday attack, no relay):
//!
//! 1. learn its server-reflexive address from one STUN server ([`PunchEvent::Reflexive`]);
//! 2. once told the peer's reflexive address (out of band: the rendezvous is not the
//!    point here), send a probe to it every `interval`, `attempts` times;
//! 3. answer every probe with an ack to the address it came from, and probe that address
//!    too (a peer-reflexive address, as ICE learns one);
//! 4. report [`PunchEvent::Connected`] once it has both received a probe and received
//!    an ack: datagrams then pass both ways.
//!
//! It also answers STUN Binding requests, so an agent with no server to ask is a STUN
//! server.
//!
//! Wire format: `b"PUNCH"` then one byte, 0 for a probe, 1 for an ack (first byte `P`,
//! which the demultiplexer counts as unknown: it never reaches a real node's protocols).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::wire::{Class, Message};
use dhtmeet_core::stun::{BindingClient, BindingServer, StunConfig, StunConfigError, StunEvent};
use dhtmeet_core::{SansIo, Seed, Transmit};

const MAGIC: &[u8; 5] = b"PUNCH";
/// Peer addresses probed at most (the given one and peer-reflexive ones).
pub const MAX_TARGETS: usize = 8;

/// What the agent reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PunchEvent {
    /// STUN gave our server-reflexive address.
    Reflexive(SocketAddr),
    /// STUN failed.
    StunFailed,
    /// A probe from the peer got through, from this address.
    Heard(SocketAddr),
    /// Both directions work; the peer is reachable at this address.
    Connected(SocketAddr),
    /// All attempts were sent without connecting.
    GaveUp,
}

/// The hole-punching agent.
#[derive(Debug)]
pub struct Puncher {
    client: Option<BindingClient>,
    server: BindingServer,
    interval: Duration,
    attempts_left: u32,
    next_probe: Option<Instant>,
    targets: Vec<SocketAddr>,
    heard: Option<SocketAddr>,
    acked: bool,
    connected: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PunchEvent>,
}

impl Puncher {
    /// An agent that asks `stun_server` (if any) for its reflexive address at once.
    pub fn new(
        seed: Seed,
        stun_server: Option<SocketAddr>,
        now: Instant,
    ) -> Result<Self, StunConfigError> {
        let client = match stun_server {
            Some(server) => {
                let config = StunConfig {
                    servers: vec![server],
                    retry_interval: None,
                    ..StunConfig::default()
                };
                Some(BindingClient::new(config, seed.child("stun"), now)?)
            }
            None => None,
        };
        let mut agent = Puncher {
            client,
            server: BindingServer::new(),
            interval: Duration::from_millis(50),
            attempts_left: 0,
            next_probe: None,
            targets: Vec::new(),
            heard: None,
            acked: false,
            connected: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        agent.collect_stun();
        Ok(agent)
    }

    /// Starts punching towards `peer`: `attempts` probes, `interval` apart.
    pub fn connect(&mut self, now: Instant, peer: SocketAddr, interval: Duration, attempts: u32) {
        self.add_target(peer);
        self.interval = interval;
        self.attempts_left = attempts;
        self.next_probe = Some(now);
        self.handle_timeout(now);
    }

    /// Whether both directions work.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    fn add_target(&mut self, addr: SocketAddr) {
        if !self.targets.contains(&addr) && self.targets.len() < MAX_TARGETS {
            self.targets.push(addr);
        }
    }

    fn send(&mut self, to: SocketAddr, ack: bool) {
        let mut contents = MAGIC.to_vec();
        contents.push(u8::from(ack));
        self.transmits.push_back(Transmit::new(to, contents));
    }

    fn collect_stun(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        while let Some(e) = client.poll_event() {
            match e {
                StunEvent::Finished(Ok(report)) => {
                    self.events
                        .push_back(PunchEvent::Reflexive(report.first.mapped));
                }
                StunEvent::Finished(Err(_)) => self.events.push_back(PunchEvent::StunFailed),
                StunEvent::Observed(_) | StunEvent::ServerFailed { .. } => {}
            }
        }
        while let Some(t) = client.poll_transmit() {
            self.transmits.push_back(t);
        }
    }

    fn handle_punch(&mut self, remote: SocketAddr, ack: bool) {
        if ack {
            self.acked = true;
        } else {
            self.add_target(remote);
            self.send(remote, true);
            if self.heard.is_none() {
                self.heard = Some(remote);
                self.events.push_back(PunchEvent::Heard(remote));
            }
        }
        if let (false, true, Some(via)) = (self.connected, self.acked, self.heard) {
            self.connected = true;
            self.events.push_back(PunchEvent::Connected(via));
        }
    }
}

impl SansIo for Puncher {
    type Event = PunchEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        if let Some(rest) = datagram.strip_prefix(MAGIC) {
            if let [flag @ (0 | 1)] = rest {
                self.handle_punch(remote, *flag == 1);
            }
            return;
        }
        let Ok(msg) = Message::decode(datagram) else {
            return;
        };
        match msg.class() {
            Class::Request | Class::Indication => self.server.handle_message(now, remote, &msg),
            Class::Success | Class::Error => {
                if let Some(client) = &mut self.client {
                    client.handle_message(now, remote, &msg);
                }
                self.collect_stun();
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(client) = &mut self.client {
            client.handle_timeout(now);
            self.collect_stun();
        }
        while let Some(at) = self.next_probe.filter(|&t| t <= now) {
            if self.attempts_left == 0 {
                self.next_probe = None;
                if !self.connected {
                    self.events.push_back(PunchEvent::GaveUp);
                }
                break;
            }
            self.attempts_left -= 1;
            for to in self.targets.clone() {
                self.send(to, false);
            }
            self.next_probe = Some(at + self.interval);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.server
            .poll_transmit()
            .or_else(|| self.transmits.pop_front())
    }

    fn poll_event(&mut self) -> Option<PunchEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let stun = self.client.as_ref().and_then(SansIo::poll_timeout);
        match (stun, self.next_probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
