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
//! names; [`AttemptLimiter`] caps attempts per address and in all.
//!
//! Each side starts when its own topic lookup finds the other, and lookups run every
//! 30 s, so the two sides' first attempts can start tens of seconds apart (measured on
//! real routers: 22–29 s), and a blind attempt only works while the other side's
//! runs. So attempts towards an address come in a quick series: [`QUICK_ATTEMPTS`], one
//! every [`QUICK_PERIOD`]. Two sides in their series overlap for at least 12 s of every
//! period whatever their phase (a 17 s probing and a 20 s opening in 25 s), and a late
//! side's first attempt meets one of the early side's. After a series, an address waits
//! [`RETRY_AFTER`].
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
use crate::transmit::{MAX_POOL_SOCKETS, SocketCommand, Transmit, canonical_remote};

/// Unanswered hellos before a contact gets a prediction attempt (the third goes out
/// 0.75 s after the contact was found).
pub const HELLOS_BEFORE_PREDICTION: u32 = 3;
/// Attempts towards one address in a series, [`QUICK_PERIOD`] apart.
pub const QUICK_ATTEMPTS: u32 = 4;
/// The period of a series: an attempt lasts up to 20 s (`PunchConfig::timeout`), the
/// next starts 25 s after it started.
pub const QUICK_PERIOD: Duration = Duration::from_secs(25);
/// After a series, an address is not tried again for this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);
/// Attempts running at once that probe (no sockets).
const MAX_PROBING: usize = 8;
/// Attempts running at once that open mappings. They share the pool's sockets: each
/// opens its mappings from the same (up to 256) sockets, towards its own contact.
const MAX_OPENING: usize = 8;
/// Addresses remembered with their series, and paths kept, at most.
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

/// The attempts towards one address: how many of its series started, and when the next
/// may start.
#[derive(Clone, Copy, Debug)]
struct Series {
    made: u32,
    next: Instant,
}

impl Series {
    /// The series after an attempt that starts at `now`.
    fn started(previous: Option<Series>, now: Instant) -> Series {
        let made = match previous {
            Some(s) if s.made < QUICK_ATTEMPTS => s.made + 1,
            _ => 1,
        };
        let pause = if made < QUICK_ATTEMPTS {
            QUICK_PERIOD
        } else {
            RETRY_AFTER
        };
        Series {
            made,
            next: now + pause,
        }
    }
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
    series: BTreeMap<IpAddr, Series>,
    /// Paths found: the peer's address → our pool socket (`None`: the main socket).
    paths: BTreeMap<SocketAddr, Option<u16>>,
    /// Open pool sockets, each with how many attempts and paths hold it.
    shared: BTreeMap<u16, u32>,
    /// Pool sockets asked of the node and not yet reported.
    asked: usize,
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
            series: BTreeMap::new(),
            paths: BTreeMap::new(),
            shared: BTreeMap::new(),
            asked: 0,
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

    /// Whether a path was found to any address of `ip`: a member there was reached by
    /// prediction, even if its signaling arrived over another of its NAT's mappings
    /// (both sides may settle on different flows of one burst).
    pub(super) fn reached_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.paths.keys().any(|r| r.ip() == ip)
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
        // A series whose address stayed away for a whole pause is forgotten.
        self.series.retain(|_, s| s.next + RETRY_AFTER > now);
        for &contact in contacts {
            let contact = canonical_remote(contact);
            let ip = contact.ip();
            // Our own IP: our own announcement seen through another mapping of a
            // hard NAT (or a member behind the same NAT, which only hairpinning reaches).
            if ip == our_ip.to_canonical()
                || self.running.contains_key(&contact)
                || self.series.get(&ip).is_some_and(|s| s.next > now)
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
            let previous = self.series.get(&ip).copied();
            if previous.is_some() || self.series.len() < MAX_REMEMBERED {
                self.series.insert(ip, Series::started(previous, now));
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

    /// A pool socket is open at local port `port`: every attempt owed one takes it.
    pub(super) fn handle_socket_opened(&mut self, now: Instant, port: u16) {
        self.asked = self.asked.saturating_sub(1);
        if self.shared.contains_key(&port) {
            return;
        }
        self.shared.insert(port, 0);
        self.grant(now, port);
        self.drain(now);
    }

    /// Gives open pool socket `port` to every attempt still owed one.
    fn grant(&mut self, now: Instant, port: u16) {
        let mut holders = 0;
        for r in self.running.values_mut().filter(|r| r.sockets_owed > 0) {
            r.sockets_owed -= 1;
            holders += 1;
            r.attempt.handle_socket_opened(now, port);
        }
        if holders == 0 {
            self.shared.remove(&port);
            self.commands.push_back(SocketCommand::Close { port });
        } else if let Some(n) = self.shared.get_mut(&port) {
            *n += holders;
        }
    }

    /// A pool socket asked for could not be opened: every attempt owed one hears it.
    pub(super) fn handle_socket_failed(&mut self, now: Instant) {
        self.asked = self.asked.saturating_sub(1);
        for r in self.running.values_mut().filter(|r| r.sockets_owed > 0) {
            r.sockets_owed -= 1;
            r.attempt.handle_socket_failed(now);
        }
        self.drain(now);
    }

    /// One holder lets go of `port`; the last one closes it.
    fn release(&mut self, port: u16) {
        if let Some(n) = self.shared.get_mut(&port) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.shared.remove(&port);
                self.commands.push_back(SocketCommand::Close { port });
            }
        }
    }

    /// An attempt asked for `count` sockets: it gets the open ones, and the node is
    /// asked for what the pool still lacks.
    fn open_for(&mut self, now: Instant, contact: SocketAddr, count: u16) {
        let open: Vec<u16> = self.shared.keys().copied().collect();
        let Some(r) = self.running.get_mut(&contact) else {
            return;
        };
        r.sockets_owed = r.sockets_owed.saturating_add(count);
        for port in open {
            if r.sockets_owed == 0 {
                break;
            }
            r.sockets_owed -= 1;
            r.attempt.handle_socket_opened(now, port);
            if let Some(n) = self.shared.get_mut(&port) {
                *n += 1;
            }
        }
        let owed = usize::from(r.sockets_owed);
        let room = MAX_POOL_SOCKETS.saturating_sub(self.shared.len() + self.asked);
        let ask = owed.saturating_sub(self.asked).min(room);
        if ask > 0 {
            self.asked += ask;
            self.commands.push_back(SocketCommand::Open {
                count: u16::try_from(ask).unwrap_or(u16::MAX),
            });
        }
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
                self.release(port);
            }
        }
    }

    /// Collects the attempts' outputs (until none has more: an attempt given sockets
    /// may have more to say); forgets finished attempts.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut opens = Vec::new();
            let mut closes = Vec::new();
            for (contact, r) in &mut self.running {
                while let Some(t) = r.attempt.poll_transmit() {
                    self.stats.datagrams_sent += 1;
                    self.transmits.push_back(t);
                }
                while let Some(c) = r.attempt.poll_socket_command() {
                    match c {
                        SocketCommand::Open { count } => opens.push((*contact, count)),
                        SocketCommand::Close { port } => closes.push(port),
                    }
                }
                while let Some(e) = r.attempt.poll_event() {
                    match e {
                        PunchEvent::Connected { local_port, remote } => {
                            let remote = canonical_remote(remote);
                            tracing::info!(%contact, %remote, ?local_port, "predicted path found");
                            self.stats.connected += 1;
                            // The attempt's hold on its socket becomes the path's.
                            if self.paths.len() < MAX_REMEMBERED {
                                self.paths.insert(remote, local_port);
                                if let Some(port) = local_port {
                                    self.changes.push_back(PathChange::Opened { remote, port });
                                }
                            } else if let Some(port) = local_port {
                                closes.push(port);
                            }
                            self.found.push_back(remote);
                        }
                        PunchEvent::Failed { reason } => {
                            tracing::debug!(%contact, ?reason, stats = ?r.attempt.stats(), "port prediction failed");
                            self.stats.failed += 1;
                        }
                    }
                }
            }
            for port in closes {
                self.release(port);
            }
            if opens.is_empty() {
                break;
            }
            for (contact, count) in opens {
                self.open_for(now, contact, count);
            }
        }
        self.running.retain(|_, r| !r.attempt.is_finished());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock;

    const KEY: [u8; 32] = [7; 32];

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn prediction() -> Prediction {
        Prediction::new(true, PunchConfig::default(), Seed::from_u64(1))
    }

    fn commands(p: &mut Prediction) -> Vec<SocketCommand> {
        std::iter::from_fn(|| p.poll_socket_command()).collect()
    }

    #[test]
    fn hard_attempts_share_one_pool_and_the_last_holder_closes_a_socket() {
        let t0 = test_clock::start();
        let mut p = prediction();
        let contacts = [addr("203.0.113.5:4000"), addr("203.0.113.6:4000")];
        p.consider(t0, NatClass::Random, ip("198.51.100.1"), &KEY, &contacts, |_| false);
        assert_eq!(p.stats().attempts, 2);
        // One request for the pool, however many attempts want it.
        assert_eq!(commands(&mut p), [SocketCommand::Open { count: 256 }]);
        for port in 40000..40256 {
            p.handle_socket_opened(t0, port);
        }
        // Each socket opened once, for both attempts: 256 openings to each contact.
        let mut to = BTreeMap::<SocketAddr, usize>::new();
        while let Some(t) = p.poll_transmit() {
            assert!(t.source_port.is_some_and(|s| (40000..40256).contains(&s)));
            *to.entry(t.destination).or_default() += 1;
        }
        assert_eq!(to.values().copied().collect::<Vec<_>>(), [256, 256]);
        assert!(commands(&mut p).is_empty(), "nothing closed while held");
        p.close_all(t0);
        let mut closed: Vec<u16> = commands(&mut p)
            .into_iter()
            .map(|c| match c {
                SocketCommand::Close { port } => port,
                other => panic!("{other:?}"),
            })
            .collect();
        closed.sort_unstable();
        assert_eq!(closed, (40000..40256).collect::<Vec<_>>(), "each closed once");
    }

    #[test]
    fn no_attempt_towards_our_own_ip_a_member_or_an_unknown_class() {
        let t0 = test_clock::start();
        let mut p = prediction();
        let ours = addr("198.51.100.1:5000");
        let member = addr("203.0.113.7:4000");
        p.consider(t0, NatClass::Random, ip("198.51.100.1"), &KEY, &[ours], |_| false);
        p.consider(t0, NatClass::Random, ip("198.51.100.1"), &KEY, &[member], |i| {
            i == member.ip()
        });
        p.consider(t0, NatClass::Unknown, ip("198.51.100.1"), &KEY, &[member], |_| false);
        p.consider(t0, NatClass::Random, None, &KEY, &[member], |_| false);
        assert_eq!(p.stats().attempts, 0);
        assert!(p.poll_transmit().is_none());
        let mut off = Prediction::new(false, PunchConfig::default(), Seed::from_u64(1));
        off.consider(t0, NatClass::Random, ip("198.51.100.1"), &KEY, &[member], |_| false);
        assert_eq!(off.stats().attempts, 0, "switched off");
    }

    #[test]
    fn an_easy_side_probes_only_its_contacts_ip_in_a_quick_series_then_pauses() {
        let t0 = test_clock::start();
        let mut p = prediction();
        let contact = addr("203.0.113.9:31000");
        let ei = NatClass::EndpointIndependent { preserving: true };
        let our_ip = ip("198.51.100.1");
        // One attempt: every probe to the contact's IP, from the main socket.
        let run = |p: &mut Prediction, start: Instant| {
            let mut sent = 0;
            let mut now = start;
            while let Some(t) = p.poll_timeout() {
                now = t;
                p.handle_timeout(now);
                while let Some(t) = p.poll_transmit() {
                    assert_eq!(t.destination.ip(), contact.ip());
                    assert_eq!(t.source_port, None);
                    sent += 1;
                }
            }
            assert_eq!(sent, crate::punch::plan::MAX_PROBES);
            now
        };
        let mut start = t0;
        for n in 1..=QUICK_ATTEMPTS {
            p.consider(start, ei, our_ip, &KEY, &[contact], |_| false);
            assert_eq!(p.stats().attempts, u64::from(n), "attempt {n} of the series");
            let end = run(&mut p, start);
            assert!(end < start + QUICK_PERIOD);
            // Asked again before the period is over: nothing.
            p.consider(end, ei, our_ip, &KEY, &[contact], |_| false);
            assert_eq!(p.stats().attempts, u64::from(n));
            start += QUICK_PERIOD;
        }
        assert_eq!(p.stats().failed, u64::from(QUICK_ATTEMPTS));
        // After the series: a pause of RETRY_AFTER, then a new series.
        let last = start - QUICK_PERIOD;
        p.consider(start, ei, our_ip, &KEY, &[contact], |_| false);
        p.consider(last + RETRY_AFTER - Duration::from_secs(1), ei, our_ip, &KEY, &[contact], |_| false);
        assert_eq!(p.stats().attempts, u64::from(QUICK_ATTEMPTS));
        p.consider(last + RETRY_AFTER, ei, our_ip, &KEY, &[contact], |_| false);
        assert_eq!(p.stats().attempts, u64::from(QUICK_ATTEMPTS) + 1);
    }

    #[test]
    fn probes_from_strangers_are_counted_and_dropped() {
        let t0 = test_clock::start();
        let mut p = prediction();
        let ei = NatClass::EndpointIndependent { preserving: true };
        p.consider(t0, ei, ip("198.51.100.1"), &KEY, &[addr("203.0.113.9:31000")], |_| false);
        p.handle_datagram(t0, None, addr("192.0.2.66:1234"), &[0x0f; 30]);
        p.handle_datagram(t0, None, addr("203.0.113.9:2000"), &[0x0f; 30]);
        assert_eq!(p.stats().dropped_unrouted, 2);
    }
}
