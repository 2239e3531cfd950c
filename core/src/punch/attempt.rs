//! One port-prediction attempt towards one member.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::pacer::Pacer;
use super::replay::{PeerWindows, Refused};
use super::schedule::Schedule;
use super::wire::{AttemptId, ProbeError, ProbeKeys, ProbeKind, ProbeMessage};
use super::{FailReason, Punch, PunchConfig, PunchEvent, PunchStats};
use crate::seed::Seed;
use crate::transmit::{MAX_POOL_SOCKETS, SocketCommand, Transmit, canonical_remote};

/// Paths (socket, peer address) the attempt probes because the peer was heard on them.
const MAX_PATHS: usize = 8;
/// Probes per such path before it is given up.
const PATH_TRIES: u8 = 5;
/// Between two probes on such a path.
const PATH_RETRY: Duration = Duration::from_millis(200);
/// Tokens scheduled probes leave for answers and path probes.
const RESERVE: u32 = 16;
/// A probing side fails this long after its last scheduled probe.
const GRACE: Duration = Duration::from_secs(2);

/// One port-prediction attempt towards one member: a sans-IO state machine.
///
/// Inputs: [`handle_datagram`](Self::handle_datagram) (a datagram of
/// [`crate::PacketKind::Punch`] from the peer's IP, on the main socket or a pool socket),
/// [`handle_socket_opened`](Self::handle_socket_opened) /
/// [`handle_socket_failed`](Self::handle_socket_failed), [`handle_timeout`](Self::handle_timeout)
/// (may be spurious). After each, drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_socket_command`](Self::poll_socket_command), then
/// [`poll_event`](Self::poll_event), and wake at [`poll_timeout`](Self::poll_timeout).
/// Once [`is_finished`](Self::is_finished), drop it.
#[derive(Debug)]
pub struct PunchAttempt {
    id: AttemptId,
    keys: ProbeKeys,
    punch: Punch,
    peer_ip: IpAddr,
    config: PunchConfig,
    now: Instant,
    deadline: Instant,
    state: State,
    schedule: Schedule,
    scheduled: u32,
    next_probe_at: Instant,
    pacer: Pacer,
    /// Our probes by sequence number.
    sent: Vec<SentProbe>,
    peer_windows: PeerWindows,
    paths: Vec<Path>,
    sockets: Vec<u16>,
    sockets_pending: u16,
    /// Pool sockets whose opening probe is still to be sent, with its TTL.
    openings: VecDeque<(u16, Option<u8>)>,
    /// When the openings go again at the full TTL ([`PunchConfig::reopen_after`]).
    reopen_at: Option<Instant>,
    transmits: VecDeque<Transmit>,
    commands: VecDeque<SocketCommand>,
    events: VecDeque<PunchEvent>,
    stats: PunchStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    /// Answering the peer's probes until `until`.
    Connected { until: Instant },
    Finished,
}

#[derive(Clone, Copy, Debug)]
struct SentProbe {
    local: Option<u16>,
    port: u16,
    acked: bool,
}

#[derive(Clone, Copy, Debug)]
struct Path {
    local: Option<u16>,
    remote: SocketAddr,
    tries: u8,
    next_try: Instant,
}

impl PunchAttempt {
    /// Starts an attempt at `now`: its id and probe ports come from `seed`, its MACs
    /// from `keys` (the pair's, [`ProbeKeys::derive`]). Drain its outputs at once: a
    /// hard side asks for its pool sockets
    /// ([`poll_socket_command`](Self::poll_socket_command)), a probing side has its
    /// first probe ready.
    pub fn new(
        now: Instant,
        seed: Seed,
        keys: ProbeKeys,
        punch: Punch,
        config: PunchConfig,
    ) -> PunchAttempt {
        let mut rng = seed.child("punch/id").rng();
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        let schedule = Schedule::new(&punch, seed.child("punch/ports").rng());
        let wanted = punch.sockets().min(MAX_POOL_SOCKETS as u16);
        let mut commands = VecDeque::new();
        if wanted > 0 {
            commands.push_back(SocketCommand::Open { count: wanted });
        }
        let reopen_at = config
            .opening_ttl
            .and(config.reopen_after)
            .map(|after| now + after);
        let mut attempt = PunchAttempt {
            id: AttemptId(id),
            keys,
            peer_ip: punch.peer_ip(),
            punch,
            pacer: Pacer {
                tokens: config.burst,
                burst: config.burst,
                refill: config.refill,
                refilled: now,
                sent: 0,
                max: config.max_datagrams,
            },
            deadline: now + config.timeout,
            config,
            now,
            state: State::Running,
            schedule,
            scheduled: 0,
            next_probe_at: now,
            sent: Vec::new(),
            peer_windows: PeerWindows::default(),
            paths: Vec::new(),
            sockets: Vec::new(),
            sockets_pending: wanted,
            openings: VecDeque::new(),
            reopen_at,
            transmits: VecDeque::new(),
            commands,
            events: VecDeque::new(),
            stats: PunchStats::default(),
        };
        // The first scheduled probe is due at once: its outputs are ready to poll.
        attempt.drive();
        attempt
    }

    // ---- getters ----

    /// This attempt's id (carried by its probes).
    pub fn id(&self) -> AttemptId {
        self.id
    }

    /// The one IP this attempt sends to and accepts datagrams from.
    pub fn peer_ip(&self) -> IpAddr {
        self.peer_ip
    }

    /// The plan it runs.
    pub fn punch(&self) -> Punch {
        self.punch
    }

    /// What it counted.
    pub fn stats(&self) -> &PunchStats {
        &self.stats
    }

    /// Whether it is over (connected and done answering, failed, or closed).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Whether `datagram` from `remote` is this attempt's: from the peer's IP and
    /// authenticated with this pair's key. A node with several attempts towards one IP
    /// (members behind one NAT) routes a datagram to the one that accepts it.
    pub fn accepts(&self, remote: SocketAddr, datagram: &[u8]) -> bool {
        canonical_remote(remote).ip() == self.peer_ip && self.keys.open(datagram).is_ok()
    }

    // ---- inputs ----

    /// A pool socket asked for is open at local port `port`.
    pub fn handle_socket_opened(&mut self, now: Instant, port: u16) {
        self.advance(now);
        let wanted = self.state == State::Running
            && self.sockets_pending > 0
            && !self.sockets.contains(&port);
        if !wanted {
            self.stats.sockets_unwanted += 1;
            self.commands.push_back(SocketCommand::Close { port });
            return;
        }
        self.sockets_pending -= 1;
        self.sockets.push(port);
        self.openings.push_back((port, self.config.opening_ttl));
        self.stats.sockets_opened += 1;
        self.drive();
    }

    /// A pool socket asked for could not be opened.
    pub fn handle_socket_failed(&mut self, now: Instant) {
        self.advance(now);
        self.sockets_pending = self.sockets_pending.saturating_sub(1);
        self.stats.sockets_failed += 1;
        if self.state == State::Running && self.sockets_pending == 0 && self.sockets.is_empty()
        {
            if let Punch::OpenMappings { .. } = self.punch {
                self.fail(FailReason::NoSockets);
            }
        }
        self.drive();
    }

    /// A datagram of [`crate::PacketKind::Punch`] arrived from `remote` on pool socket
    /// `local_port` (`None`: the main socket). Never panics, whatever the bytes; a
    /// datagram that is not the peer's valid probe or ack is counted and dropped.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local_port: Option<u16>,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.advance(now);
        let remote = canonical_remote(remote);
        if remote.ip() != self.peer_ip {
            self.stats.dropped_not_peer += 1;
            return;
        }
        if local_port.is_some_and(|p| !self.sockets.contains(&p)) {
            self.stats.dropped_unknown_socket += 1;
            return;
        }
        let message = match self.keys.open(datagram) {
            Ok(m) => m,
            Err(ProbeError::Malformed) => {
                self.stats.dropped_malformed += 1;
                return;
            }
            Err(ProbeError::BadMac) => {
                self.stats.dropped_bad_mac += 1;
                return;
            }
        };
        if self.state == State::Finished {
            self.stats.dropped_finished += 1;
            return;
        }
        match message.kind {
            ProbeKind::Probe => self.on_probe(local_port, remote, message),
            ProbeKind::Ack => self.on_ack(local_port, remote, message),
        }
        self.drive();
    }

    /// Time has passed (may be called early or late).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.drive();
    }

    /// Ends the attempt now, whatever its state (another path won, the member left):
    /// releases every pool socket it holds (after success, all but the winning one).
    /// No event follows.
    pub fn close(&mut self, now: Instant) {
        self.advance(now);
        if self.state == State::Running {
            self.release_sockets(None);
        }
        self.state = State::Finished;
        self.transmits.clear();
    }

    // ---- outputs ----

    /// The next datagram to send, from the main socket or the pool socket it names.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next request about pool sockets (open some, close one).
    #[must_use]
    pub fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }

    /// The outcome, once.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PunchEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Finished => None,
            State::Connected { until } => Some(until),
            State::Running => {
                let mut wake = self.deadline;
                if let Some(t) = self.probe_due() {
                    wake = wake.min(t.max(self.pacer.ready_at(RESERVE).unwrap_or(wake)));
                }
                if !self.openings.is_empty() {
                    wake = wake.min(self.pacer.ready_at(0).unwrap_or(wake));
                }
                if let Some(t) = self.reopen_at.filter(|_| !self.sockets.is_empty()) {
                    wake = wake.min(t);
                }
                for p in self.paths.iter().filter(|p| p.tries < PATH_TRIES) {
                    wake = wake.min(p.next_try.max(self.pacer.ready_at(0).unwrap_or(wake)));
                }
                Some(wake.max(self.now))
            }
        }
    }

    // ---- the machine ----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.pacer.update(self.now);
    }

    /// When the next scheduled probe is due, if one is left.
    fn probe_due(&self) -> Option<Instant> {
        let left = self.scheduled < self.punch.max_probes();
        (left && !matches!(self.schedule, Schedule::None)).then_some(self.next_probe_at)
    }

    /// Does what is due at `self.now`.
    fn drive(&mut self) {
        let now = self.now;
        match self.state {
            State::Finished => return,
            State::Connected { until } => {
                if now >= until {
                    self.state = State::Finished;
                }
                return;
            }
            State::Running => {}
        }
        if self.reopen_at.is_some_and(|t| t <= now) {
            // The low-TTL openings made no path: perhaps our NAT is further away
            // than they reach. Open again, whole.
            self.reopen_at = None;
            let sockets: Vec<u16> = self.sockets.clone();
            self.openings.extend(sockets.into_iter().map(|p| (p, None)));
        }
        while let Some(&(port, ttl)) = self.openings.front() {
            let peer = match self.punch {
                Punch::OpenMappings { peer, .. } | Punch::OpenAndMeet { peer, .. } => {
                    canonical_remote(peer)
                }
                _ => break,
            };
            if !self.send_probe(Some(port), peer, ttl, 0) {
                break;
            }
            self.openings.pop_front();
        }
        for i in 0..self.paths.len() {
            let p = self.paths[i];
            if p.tries < PATH_TRIES && p.next_try <= now && self.send_probe(p.local, p.remote, None, 0)
            {
                self.paths[i].tries += 1;
                self.paths[i].next_try = now + PATH_RETRY;
            }
        }
        if self.probe_due().is_some_and(|t| t <= now) && self.pacer.can(RESERVE) {
            if let Some(dest) = self.schedule.next() {
                self.send_probe(None, dest, None, RESERVE);
            }
            self.scheduled += 1;
            let next = self.next_probe_at + self.config.probe_interval;
            self.next_probe_at = if next > now {
                next
            } else {
                now + self.config.probe_interval
            };
            if self.probe_due().is_none() {
                self.deadline = self.deadline.min(now + GRACE);
            }
        }
        if now >= self.deadline {
            let reason = if self.pacer.sent >= self.pacer.max {
                FailReason::Budget
            } else if self.punch.max_probes() > 0 && self.probe_due().is_none() {
                FailReason::ProbesExhausted
            } else {
                FailReason::TimedOut
            };
            self.fail(reason);
        }
    }

    fn on_probe(&mut self, local: Option<u16>, remote: SocketAddr, m: ProbeMessage) {
        match self.peer_windows.accept(m.attempt, m.seq) {
            Ok(()) => {}
            Err(Refused::Replay) => {
                self.stats.dropped_replay += 1;
                return;
            }
            Err(Refused::TooManyPeerAttempts) => {
                self.stats.dropped_peer_restarts += 1;
                return;
            }
        }
        self.stats.probes_received += 1;
        let ack = ProbeMessage {
            kind: ProbeKind::Ack,
            ..m
        };
        if self.send(local, remote, ack, None, 0) {
            self.stats.acks_sent += 1;
        } else {
            self.stats.dropped_rate += 1;
        }
        if self.state == State::Running {
            self.add_path(local, remote);
        }
    }

    fn on_ack(&mut self, local: Option<u16>, remote: SocketAddr, m: ProbeMessage) {
        let sent = usize::try_from(m.seq).ok().and_then(|i| self.sent.get_mut(i));
        let Some(sent) = sent.filter(|_| m.attempt == self.id) else {
            self.stats.dropped_unknown_ack += 1;
            return;
        };
        if sent.acked {
            self.stats.dropped_duplicate_ack += 1;
            return;
        }
        sent.acked = true;
        self.stats.acks_received += 1;
        let same_path = sent.local == local && sent.port == remote.port();
        if self.state != State::Running {
            return;
        }
        if same_path {
            self.connect(local, remote);
        } else {
            self.stats.path_mismatches += 1;
            self.add_path(local, remote);
        }
    }

    /// Probes (`local`, `remote`) soon, since the peer was heard there.
    fn add_path(&mut self, local: Option<u16>, remote: SocketAddr) {
        let known = self
            .paths
            .iter()
            .any(|p| p.local == local && p.remote == remote);
        if !known && self.paths.len() < MAX_PATHS {
            self.paths.push(Path {
                local,
                remote,
                tries: 0,
                next_try: self.now,
            });
        }
    }

    fn connect(&mut self, local_port: Option<u16>, remote: SocketAddr) {
        self.state = State::Connected {
            until: self.now + self.config.linger,
        };
        self.release_sockets(local_port);
        self.events.push_back(PunchEvent::Connected { local_port, remote });
    }

    fn fail(&mut self, reason: FailReason) {
        self.state = State::Finished;
        self.release_sockets(None);
        self.events.push_back(PunchEvent::Failed { reason });
    }

    /// Closes every pool socket but `keep`, and stops everything scheduled.
    fn release_sockets(&mut self, keep: Option<u16>) {
        for port in std::mem::take(&mut self.sockets) {
            if Some(port) == keep {
                self.sockets.push(port);
            } else {
                self.commands.push_back(SocketCommand::Close { port });
            }
        }
        self.sockets_pending = 0;
        self.openings.clear();
        self.paths.clear();
    }

    /// Sends our next probe from `local` to `remote`, if the cap allows.
    fn send_probe(
        &mut self,
        local: Option<u16>,
        remote: SocketAddr,
        ttl: Option<u8>,
        reserve: u32,
    ) -> bool {
        let Ok(seq) = u32::try_from(self.sent.len()) else {
            return false;
        };
        let probe = ProbeMessage {
            kind: ProbeKind::Probe,
            attempt: self.id,
            seq,
        };
        if !self.send(local, remote, probe, ttl, reserve) {
            return false;
        }
        self.sent.push(SentProbe {
            local,
            port: remote.port(),
            acked: false,
        });
        self.stats.probes_sent += 1;
        true
    }

    /// Queues one datagram if it goes to the peer's IP and the cap allows.
    fn send(
        &mut self,
        local: Option<u16>,
        remote: SocketAddr,
        message: ProbeMessage,
        ttl: Option<u8>,
        reserve: u32,
    ) -> bool {
        // Every destination is built from the peer's IP or is an address a valid
        // datagram came from (checked to be the peer's IP): this never refuses, it is
        // the one place that guarantees it.
        // The queue is bounded too, should the caller not drain it.
        if remote.ip() != self.peer_ip
            || self.transmits.len() >= self.config.burst as usize
            || !self.pacer.take(reserve)
        {
            return false;
        }
        let contents = self.keys.seal(&message).to_vec();
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += contents.len() as u64;
        self.transmits.push_back(Transmit {
            destination: remote,
            contents,
            source_port: local,
            ttl,
        });
        true
    }
}
