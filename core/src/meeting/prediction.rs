//! The meeting's port prediction: attempts ([`PunchAttempt`]) towards contacts that do
//! not answer our hellos, and the paths they find.
//!
//! Between an easy side (one public port for every destination, a port-restricted
//! filter) and a hard side (a new port per destination), no signaling passes: each
//! side's hellos meet a filter that has not seen the other send to that very port. So
//! prediction runs *before* signaling, from each side's own NAT class alone
//! ([`decide_blind`]), with probes keyed by the meeting key and both public IPs. A contact
//! qualifies once it has had [`HELLOS_BEFORE_PREDICTION`] hellos unanswered; probes go
//! only to its IP, an address that announced itself under the meeting's topic (a DHT
//! node stores the announcer's own IP, checked with a token), never to one a message
//! names; [`AttemptLimiter`] caps attempts per address and in all, and a failed address
//! waits [`RETRY_AFTER`].
//!
//! A found path is (our socket, the peer's address). The node aliases a pool socket's path
//! ([`PathChange`]): everything for that address leaves from the pool socket, and what
//! arrives on it from that address is handled as if it came to the main socket, so the
//! DHT's signaling and the WebRTC session use the path unchanged. The contact is then
//! greeted at once over the path.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::nat::NatClass;
use crate::punch::{
    AttemptLimiter, ProbeKeys, PunchAttempt, PunchConfig, PunchEvent, decide_blind,
};
use crate::seed::Seed;
use crate::transmit::{SocketCommand, Transmit, canonical_remote};

/// Unanswered hellos before a contact gets a prediction attempt (the third goes out
/// 0.75 s after the contact was found).
pub const HELLOS_BEFORE_PREDICTION: u32 = 3;
/// A contact whose attempt failed is not tried again for this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);
/// Attempts running at once that probe (no sockets).
const MAX_PROBING: usize = 4;
/// Attempts running at once that hold pool sockets (a birthday hard side holds 256).
const MAX_OPENING: usize = 1;
/// Addresses remembered with their retry time, and paths kept, at most.
const MAX_REMEMBERED: usize = 256;

/// A path the node must alias, or stop aliasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChange {
    /// Datagrams for `remote` leave from pool socket `port`; what arrives there from
    /// `remote` is handled as if it came to the main socket.
    Opened {
        /// The peer's address on the path.
        remote: SocketAddr,
        /// Our pool socket's local port.
        port: u16,
    },
    /// The path to `remote` is gone (its pool socket is being closed).
    Closed {
        /// The peer's address on the path.
        remote: SocketAddr,
    },
}

/// What port prediction has done in this meeting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PredictionStats {
    /// Attempts started.
    pub attempts: u64,
    /// Attempts that found a path.
    pub connected: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Attempts the limiter refused.
    pub refused_by_limit: u64,
    /// Datagrams the attempts sent.
    pub datagrams_sent: u64,
    /// Probe datagrams no attempt took (not from a contact's IP, forged, late).
    pub dropped_unrouted: u64,
}

/// One attempt and what it is owed.
#[derive(Debug)]
struct Running {
    attempt: PunchAttempt,
    /// Pool sockets asked for and not yet granted or refused.
    sockets_owed: u16,
}

/// The meeting's attempts and paths.
#[derive(Debug)]
pub(super) struct Prediction {
    enabled: bool,
    config: PunchConfig,
    seed: Seed,
    made: u64,
    limiter: AttemptLimiter,
    running: BTreeMap<SocketAddr, Running>,
    retry_at: BTreeMap<IpAddr, Instant>,
    /// Paths found: the peer's address → our pool socket (`None`: the main socket).
    paths: BTreeMap<SocketAddr, Option<u16>>,
    transmits: VecDeque<Transmit>,
    commands: VecDeque<SocketCommand>,
    changes: VecDeque<PathChange>,
    /// Addresses of paths just found: greet them now.
    found: VecDeque<SocketAddr>,
    stats: PredictionStats,
}

impl Prediction {
    pub(super) fn new(enabled: bool, config: PunchConfig, seed: Seed) -> Prediction {
        Prediction {
            enabled,
            config,
            seed,
            made: 0,
            limiter: AttemptLimiter::new(),
            running: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            paths: BTreeMap::new(),
            transmits: VecDeque::new(),
            commands: VecDeque::new(),
            changes: VecDeque::new(),
            found: VecDeque::new(),
            stats: PredictionStats::default(),
        }
    }

    pub(super) fn stats(&self) -> PredictionStats {
        self.stats
    }

    /// Whether `remote` was reached by a predicted path.
    pub(super) fn is_predicted(&self, remote: SocketAddr) -> bool {
        self.paths.contains_key(&canonical_remote(remote))
    }

    /// Starts attempts towards `contacts` (unanswered ones) where our class allows and
    /// the limits let us: `ours` is our NAT class, `our_ip` our public IP, `key` the
    /// meeting's signaling key; `known` says whether an IP is a member's already.
    pub(super) fn consider(
        &mut self,
        now: Instant,
        ours: NatClass,
        our_ip: Option<IpAddr>,
        key: &[u8; 32],
        contacts: &[SocketAddr],
        known: impl Fn(IpAddr) -> bool,
    ) {
        let Some(our_ip) = our_ip.filter(|_| self.enabled) else {
            return;
        };
        self.retry_at.retain(|_, t| *t > now);
        for &contact in contacts {
            let contact = canonical_remote(contact);
            let ip = contact.ip();
            // Our own IP: our own announcement seen through another mapping of a
            // hard NAT (or a member behind the same NAT, which only hairpinning reaches).
            if ip == our_ip.to_canonical()
                || self.running.contains_key(&contact)
                || self.retry_at.contains_key(&ip)
                || self.paths.keys().any(|r| r.ip() == ip)
                || known(ip)
                || contact.is_ipv4() != our_ip.to_canonical().is_ipv4()
            {
                continue;
            }
            let Some(punch) = decide_blind(ours, our_ip, contact) else {
                return;
            };
            let (opening, probing) = self.running.values().fold((0, 0), |(o, p), r| {
                if r.attempt.punch().sockets() > 0 {
                    (o + 1, p)
                } else {
                    (o, p + 1)
                }
            });
            if (punch.sockets() > 0 && opening >= MAX_OPENING)
                || (punch.sockets() == 0 && probing >= MAX_PROBING)
            {
                continue;
            }
            if self.limiter.try_start(now, ip).is_err() {
                self.stats.refused_by_limit += 1;
                continue;
            }
            self.made += 1;
            self.stats.attempts += 1;
            let seed = self.seed.child(&format!("attempt/{}", self.made));
            let keys = ProbeKeys::derive_for_addresses(key, our_ip, ip);
            tracing::debug!(%contact, ?punch, "port prediction starts");
            let attempt = PunchAttempt::new(now, seed, keys, punch, self.config.clone());
            self.running.insert(
                contact,
                Running {
                    attempt,
                    sockets_owed: 0,
                },
            );
            if self.retry_at.len() < MAX_REMEMBERED {
                // Until it ends: a running contact is not started twice.
                self.retry_at.insert(ip, now + RETRY_AFTER);
            }
        }
        self.drain(now);
    }

    /// A probe datagram arrived on pool socket `local_port` (`None`: the main socket).
    pub(super) fn handle_datagram(
        &mut self,
        now: Instant,
        local_port: Option<u16>,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        let taker = self
            .running
            .values_mut()
            .find(|r| r.attempt.accepts(remote, datagram));
        match taker {
            Some(r) => r.attempt.handle_datagram(now, local_port, remote, datagram),
            None => self.stats.dropped_unrouted += 1,
        }
        self.drain(now);
    }

    /// A pool socket is open at local port `port`: the first attempt owed one takes it.
    pub(super) fn handle_socket_opened(&mut self, now: Instant, port: u16) {
        match self.running.values_mut().find(|r| r.sockets_owed > 0) {
            Some(r) => {
                r.sockets_owed -= 1;
                r.attempt.handle_socket_opened(now, port);
            }
            None => self.commands.push_back(SocketCommand::Close { port }),
        }
        self.drain(now);
    }

    /// A pool socket asked for could not be opened.
    pub(super) fn handle_socket_failed(&mut self, now: Instant) {
        if let Some(r) = self.running.values_mut().find(|r| r.sockets_owed > 0) {
            r.sockets_owed -= 1;
            r.attempt.handle_socket_failed(now);
        }
        self.drain(now);
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for r in self.running.values_mut() {
            if r.attempt.poll_timeout().is_some_and(|t| t <= now) {
                r.attempt.handle_timeout(now);
            }
        }
        self.drain(now);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.running
            .values()
            .filter_map(|r| r.attempt.poll_timeout())
            .min()
    }

    /// Ends every attempt and path (the meeting is left).
    pub(super) fn close_all(&mut self, now: Instant) {
        for r in self.running.values_mut() {
            r.attempt.close(now);
        }
        self.drain(now);
        for (remote, port) in std::mem::take(&mut self.paths) {
            if let Some(port) = port {
                self.changes.push_back(PathChange::Closed { remote });
                self.commands.push_back(SocketCommand::Close { port });
            }
        }
    }

    /// Collects the attempts' outputs; forgets finished attempts.
    fn drain(&mut self, now: Instant) {
        for (contact, r) in &mut self.running {
            while let Some(t) = r.attempt.poll_transmit() {
                self.stats.datagrams_sent += 1;
                self.transmits.push_back(t);
            }
            while let Some(c) = r.attempt.poll_socket_command() {
                if let SocketCommand::Open { count } = c {
                    r.sockets_owed = r.sockets_owed.saturating_add(count);
                }
                self.commands.push_back(c);
            }
            while let Some(e) = r.attempt.poll_event() {
                match e {
                    PunchEvent::Connected { local_port, remote } => {
                        let remote = canonical_remote(remote);
                        tracing::info!(%contact, %remote, ?local_port, "predicted path found");
                        self.stats.connected += 1;
                        if self.paths.len() < MAX_REMEMBERED {
                            self.paths.insert(remote, local_port);
                            if let Some(port) = local_port {
                                self.changes.push_back(PathChange::Opened { remote, port });
                            }
                        } else if let Some(port) = local_port {
                            self.commands.push_back(SocketCommand::Close { port });
                        }
                        self.found.push_back(remote);
                    }
                    PunchEvent::Failed { reason } => {
                        tracing::debug!(%contact, ?reason, "port prediction failed");
                        self.stats.failed += 1;
                    }
                }
            }
        }
        self.running.retain(|_, r| !r.attempt.is_finished());
        let _ = now;
    }

    pub(super) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(super) fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }

    pub(super) fn poll_path(&mut self) -> Option<PathChange> {
        self.changes.pop_front()
    }

    /// An address a path was just found to: greet it now.
    pub(super) fn poll_found(&mut self) -> Option<SocketAddr> {
        self.found.pop_front()
    }
}
