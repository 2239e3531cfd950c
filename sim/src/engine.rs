//! The simulator: a virtual clock, an event queue and the hosts, NATs and links of one
//! network. Forwarding (routing, links, NAT translation) lives in [`crate::forwarding`];
//! partitions, crashes and churn in [`crate::faults`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dhtmeet_core::{SansIo, Seed};

use crate::Rng;
use crate::faults::Churn;
use crate::host::Pool;
use crate::link::{Link, LinkConfig};
use crate::nat::Nat;
use crate::pcap::PcapWriter;
use crate::queue::EventQueue;
use crate::topology::{DeviceId, HostId, HostSpec, NatId, NatSpec, Realm, TopologyError};
use crate::trace::{Fate, Trace, TraceHash, TraceRecord};

/// The TTL (hop limit) of a datagram whose transmit names none: Linux's default.
pub const DEFAULT_TTL: u8 = 64;

/// The routers of the public Internet a datagram crosses between two sites, unless
/// [`Sim::set_internet_hops`] says otherwise.
pub const DEFAULT_INTERNET_HOPS: u8 = 4;

/// A datagram in flight.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) id: u64,
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) payload: Vec<u8>,
    /// What is left of its TTL.
    pub(crate) ttl: u8,
}

/// What the queue holds.
#[derive(Debug)]
pub(crate) enum Action {
    /// A datagram came up `from`'s link into the router of `realm`.
    Arrive {
        realm: Realm,
        from: DeviceId,
        dgram: Datagram,
    },
    /// A datagram came down the link of `to`.
    Reach { to: DeviceId, dgram: Datagram },
    /// A host's machine asked to be woken now.
    Timer { host: HostId, incarnation: u32 },
    /// Churn: the host crashes now.
    Crash(HostId),
    /// Churn: the host restarts now.
    Restart(HostId),
}

pub(crate) struct HostSlot<M> {
    pub(crate) name: Box<str>,
    pub(crate) realm: Realm,
    pub(crate) v4: Option<SocketAddr>,
    pub(crate) v6: Option<SocketAddr>,
    pub(crate) extra: Vec<SocketAddr>,
    pub(crate) link: Link,
    pub(crate) machine: Option<M>,
    pub(crate) incarnation: u32,
    pub(crate) timer_at: Option<u64>,
    /// The machine's pool sockets (`None` until it opens one).
    pub(crate) pool: Option<Box<Pool>>,
}

pub(crate) struct NatSlot {
    pub(crate) name: Box<str>,
    pub(crate) parent: Realm,
    pub(crate) nat: Nat,
    pub(crate) link: Link,
}

/// Something a host's machine reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent<E> {
    /// The host.
    pub host: HostId,
    /// Virtual time since the origin.
    pub at: Duration,
    /// The machine's event.
    pub event: E,
}

/// What a finished pcap capture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapSummary {
    /// Packets written.
    pub packets: u64,
    /// Datagrams left out (too big for one IP packet).
    pub skipped: u64,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Virtual time since the origin.
    pub elapsed: Duration,
    /// Queue events processed.
    pub events: u64,
    /// Datagrams the machines sent.
    pub sent: u64,
    /// Datagrams handed to a machine.
    pub delivered: u64,
    /// Datagrams dropped anywhere (links, NATs, routing, crashed hosts).
    pub dropped: u64,
}

/// A deterministic network of hosts running `M`, behind NATs, over links.
///
/// Drive it with [`Sim::run_until`], [`Sim::run_until_event`] or [`Sim::step`]; talk to
/// a machine with [`Sim::with_machine`]; read what machines report with
/// [`Sim::poll_event`] (events accumulate until drained).
pub struct Sim<M: SansIo> {
    pub(crate) origin: Instant,
    pub(crate) now: u64,
    pub(crate) seed: Seed,
    pub(crate) rng: Rng,
    pub(crate) queue: EventQueue<Action>,
    pub(crate) hosts: Vec<HostSlot<M>>,
    pub(crate) nats: Vec<NatSlot>,
    pub(crate) routes: BTreeMap<(u32, IpAddr), DeviceId>,
    pub(crate) partitions: BTreeSet<(DeviceId, DeviceId)>,
    pub(crate) trace: Trace,
    pub(crate) events: VecDeque<SimEvent<M::Event>>,
    pub(crate) outbox: Vec<dhtmeet_core::Transmit>,
    pub(crate) next_datagram: u64,
    pub(crate) churn: Option<Churn<M>>,
    pub(crate) processed: u64,
    pub(crate) sent: u64,
    pub(crate) internet_hops: u8,
}

impl<M: SansIo> std::fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &Duration::from_nanos(self.now))
            .field("hosts", &self.hosts.len())
            .field("nats", &self.nats.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<M: SansIo> Sim<M> {
    /// A new, empty network whose randomness all derives from `seed`. Reads the clock
    /// once, for the origin of virtual time.
    #[allow(clippy::disallowed_methods)] // the one clock read: the origin
    pub fn new(seed: Seed) -> Self {
        Sim::with_origin(seed, Instant::now())
    }

    /// A new, empty network whose virtual time starts at `origin`.
    pub fn with_origin(seed: Seed, origin: Instant) -> Self {
        Sim {
            origin,
            now: 0,
            seed,
            rng: seed.child("sim/links").rng(),
            queue: EventQueue::new(),
            hosts: Vec::new(),
            nats: Vec::new(),
            routes: BTreeMap::new(),
            partitions: BTreeSet::new(),
            trace: Trace::new(),
            events: VecDeque::new(),
            outbox: Vec::new(),
            next_datagram: 0,
            churn: None,
            processed: 0,
            sent: 0,
            internet_hops: DEFAULT_INTERNET_HOPS,
        }
    }

    // ---- getters ----

    /// The simulation's seed.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// The seed for a machine called `name` (distinct names get independent seeds).
    pub fn host_seed(&self, name: &str) -> Seed {
        self.seed.child(&format!("host/{name}"))
    }

    /// The current virtual time, as an `Instant` to hand to machines.
    pub fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.now)
    }

    /// Virtual time since the origin.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The origin of virtual time.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The host's machine, unless the host is crashed.
    pub fn machine(&self, host: HostId) -> Option<&M> {
        self.hosts.get(host.index())?.machine.as_ref()
    }

    /// The host's name.
    pub fn host_name(&self, host: HostId) -> Option<&str> {
        self.hosts.get(host.index()).map(|h| &*h.name)
    }

    /// The host's sockets, as configured ([`HostSpec::addrs`]; its machine's pool
    /// sockets are [`Sim::pool_sockets`]).
    pub fn host_addrs(&self, host: HostId) -> Vec<SocketAddr> {
        self.hosts
            .get(host.index())
            .map(|h| {
                h.v4.into_iter()
                    .chain(h.v6)
                    .chain(h.extra.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pool sockets the host's machine has open ([`dhtmeet_core::SocketCommand`]), by
    /// port.
    pub fn pool_sockets(&self, host: HostId) -> Vec<SocketAddr> {
        self.hosts
            .get(host.index())
            .and_then(|h| h.pool.as_deref())
            .map(Pool::sockets)
            .unwrap_or_default()
    }

    /// The NAT box (its table, config and counters).
    pub fn nat(&self, nat: NatId) -> Option<&Nat> {
        self.nats.get(nat.index()).map(|n| &n.nat)
    }

    /// The NAT's name.
    pub fn nat_name(&self, nat: NatId) -> Option<&str> {
        self.nats.get(nat.index()).map(|n| &*n.name)
    }

    /// Every host, in order of creation.
    pub fn host_ids(&self) -> impl Iterator<Item = HostId> + use<M> {
        (0..self.hosts.len() as u32).map(HostId)
    }

    /// Every NAT, in order of creation.
    pub fn nat_ids(&self) -> impl Iterator<Item = NatId> + use<M> {
        (0..self.nats.len() as u32).map(NatId)
    }

    /// Hosts added so far.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The hash of the trace so far.
    pub fn trace_hash(&self) -> TraceHash {
        self.trace.hash()
    }

    /// How many trace records had this fate.
    pub fn fate_count(&self, fate: Fate) -> u64 {
        self.trace.count(fate)
    }

    /// The records kept since [`Sim::keep_trace`] (empty otherwise).
    pub fn trace_records(&self) -> &[TraceRecord] {
        self.trace.records()
    }

    /// Counters of the run so far.
    pub fn stats(&self) -> SimStats {
        SimStats {
            elapsed: self.elapsed(),
            events: self.processed,
            sent: self.sent,
            delivered: self.trace.count(Fate::Delivered),
            dropped: Fate::ALL
                .iter()
                .filter(|f| f.is_drop())
                .map(|&f| self.trace.count(f))
                .sum(),
        }
    }

    /// Bytes the simulator itself holds for its hosts, NATs, routes and queue (the
    /// machines' own heap memory is not included; `size_of::<M>()` is).
    pub fn footprint(&self) -> usize {
        let route = std::mem::size_of::<((u32, IpAddr), DeviceId)>() + 16; // B-tree overhead
        self.hosts.capacity() * std::mem::size_of::<HostSlot<M>>()
            + self.hosts.iter().map(|h| h.name.len()).sum::<usize>()
            + self
                .hosts
                .iter()
                .filter_map(|h| h.pool.as_deref())
                .map(Pool::footprint)
                .sum::<usize>()
            + self.nats.capacity() * std::mem::size_of::<NatSlot>()
            + self.routes.len() * route
            + self.queue.footprint()
    }

    // ---- setup ----

    /// Keeps every trace record in memory (see [`Sim::trace_records`]).
    pub fn keep_trace(&mut self) {
        self.trace.keep_records();
    }

    /// Captures every datagram on every link from now on, as pcap, into `out`.
    pub fn capture_pcap(&mut self, out: Box<dyn Write>) -> std::io::Result<()> {
        self.trace.set_pcap(PcapWriter::new(out)?);
        Ok(())
    }

    /// Stops capturing; flushes the capture and says how many packets it holds (or
    /// returns the first write error).
    pub fn finish_pcap(&mut self) -> std::io::Result<Option<PcapSummary>> {
        match self.trace.take_pcap()? {
            Some(pcap) => {
                let summary = PcapSummary {
                    packets: pcap.packets(),
                    skipped: pcap.skipped(),
                };
                pcap.finish()?;
                Ok(Some(summary))
            }
            None => Ok(None),
        }
    }

    fn claim(&mut self, realm: Realm, ip: IpAddr, node: DeviceId) -> Result<(), TopologyError> {
        let key = (realm.key(), ip);
        if self.routes.contains_key(&key) {
            return Err(TopologyError::AddressInUse { realm, addr: ip });
        }
        self.routes.insert(key, node);
        Ok(())
    }

    fn check_realm(&self, realm: Realm) -> Result<(), TopologyError> {
        match realm {
            Realm::Inside(n) if n.index() >= self.nats.len() => {
                Err(TopologyError::UnknownRealm(realm))
            }
            _ => Ok(()),
        }
    }

    /// Adds a NAT box.
    pub fn add_nat(&mut self, spec: NatSpec) -> Result<NatId, TopologyError> {
        self.check_realm(spec.parent)?;
        if !spec.external.is_ipv4() || spec.external.is_unspecified() {
            return Err(TopologyError::NatExternalNotIpv4(spec.external));
        }
        spec.link.validate()?;
        let id = NatId(self.nats.len() as u32);
        let rng = self.seed.child(&format!("sim/nat/{}", id.0)).rng();
        let nat = Nat::new(spec.config, spec.external, rng)?;
        self.claim(spec.parent, spec.external, DeviceId::Nat(id))?;
        self.trace.setup(&format!(
            "nat {id} {} in {} at {} {:?} {:?}",
            spec.name,
            spec.parent,
            spec.external,
            nat.config(),
            spec.link
        ));
        self.nats.push(NatSlot {
            name: spec.name.into(),
            parent: spec.parent,
            nat,
            link: Link::new(spec.link),
        });
        Ok(id)
    }

    /// Adds a host running `machine`, and drains what the machine already wants to send.
    pub fn add_host(&mut self, spec: HostSpec, machine: M) -> Result<HostId, TopologyError> {
        self.check_realm(spec.realm)?;
        spec.link.validate()?;
        if spec.addrs.is_empty() {
            return Err(TopologyError::NoAddress);
        }
        let (mut v4, mut v6, mut extra) = (None, None, Vec::new());
        for &a in &spec.addrs {
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(TopologyError::Unspecified(a));
            }
            if v4
                .iter()
                .chain(v6.iter())
                .chain(extra.iter())
                .any(|&b| b == a)
            {
                return Err(TopologyError::DuplicateSocket(a));
            }
            let primary = if a.is_ipv4() { &mut v4 } else { &mut v6 };
            if primary.is_none() {
                *primary = Some(a);
            } else {
                extra.push(a);
            }
        }
        let id = HostId(self.hosts.len() as u32);
        let mut ips: Vec<IpAddr> = spec.addrs.iter().map(SocketAddr::ip).collect();
        ips.sort();
        ips.dedup();
        if let Some(&addr) = ips
            .iter()
            .find(|ip| self.routes.contains_key(&(spec.realm.key(), **ip)))
        {
            return Err(TopologyError::AddressInUse {
                realm: spec.realm,
                addr,
            });
        }
        for ip in ips {
            self.claim(spec.realm, ip, DeviceId::Host(id))?;
        }
        self.trace.setup(&format!(
            "host {id} {} in {} at {:?} {:?}",
            spec.name, spec.realm, spec.addrs, spec.link
        ));
        self.hosts.push(HostSlot {
            name: spec.name.into(),
            realm: spec.realm,
            v4,
            v6,
            extra,
            link: Link::new(spec.link),
            machine: Some(machine),
            incarnation: 0,
            timer_at: None,
            pool: None,
        });
        self.drain(id, false);
        Ok(id)
    }

    /// Sets how many routers of the public Internet a datagram crosses (each takes one
    /// from its TTL) between two devices of [`Realm::Internet`]; 0: none.
    pub fn set_internet_hops(&mut self, hops: u8) {
        self.internet_hops = hops;
    }

    /// The routers of the public Internet between two sites ([`Sim::set_internet_hops`]).
    pub fn internet_hops(&self) -> u8 {
        self.internet_hops
    }

    /// Replaces the link of a host or NAT (its queues start empty).
    pub fn set_link(&mut self, node: DeviceId, config: LinkConfig) -> Result<(), TopologyError> {
        config.validate()?;
        let link = match node {
            DeviceId::Host(h) => self.hosts.get_mut(h.index()).map(|s| &mut s.link),
            DeviceId::Nat(n) => self.nats.get_mut(n.index()).map(|s| &mut s.link),
        };
        *link.ok_or(TopologyError::UnknownDevice(node))? = Link::new(config);
        Ok(())
    }

    // ---- driving ----

    /// Calls `f` with the host's machine and the current time (for API calls such as
    /// `join` or `send`), then drains its output. `None` if the host is crashed.
    pub fn with_machine<R>(
        &mut self,
        host: HostId,
        f: impl FnOnce(&mut M, Instant) -> R,
    ) -> Option<R> {
        let now = self.now();
        let machine = self.hosts.get_mut(host.index())?.machine.as_mut()?;
        let r = f(machine, now);
        self.drain(host, false);
        Some(r)
    }

    /// Sends a datagram from `host` as if from socket `src` (any port on one of the
    /// host's IP addresses), whatever its machine does: a raw socket, for tests and
    /// attackers. `false` if `src` is not the host's or the host does not exist.
    pub fn inject(
        &mut self,
        host: HostId,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> bool {
        let Some(h) = self.hosts.get(host.index()) else {
            return false;
        };
        let ours =
            h.v4.iter()
                .chain(h.v6.iter())
                .chain(h.extra.iter())
                .any(|a| a.ip() == src.ip());
        if !ours || src.is_ipv4() != dst.is_ipv4() {
            return false;
        }
        self.sent += 1;
        let id = self.next_datagram;
        self.next_datagram += 1;
        let dgram = Datagram {
            id,
            src,
            dst,
            payload: payload.to_vec(),
            ttl: DEFAULT_TTL,
        };
        self.cross(DeviceId::Host(host), true, dgram, true);
        true
    }

    /// The next event a machine reported, oldest first.
    pub fn poll_event(&mut self) -> Option<SimEvent<M::Event>> {
        self.events.pop_front()
    }

    /// Processes the next queued event; `false` if the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some((at, action)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        self.processed += 1;
        match action {
            Action::Arrive { realm, from, dgram } => self.route(realm, from, dgram),
            Action::Reach { to, dgram } => self.reach(to, dgram),
            Action::Timer { host, incarnation } => self.fire_timer(host, incarnation, at),
            Action::Crash(h) => self.churn_crash(h),
            Action::Restart(h) => self.churn_restart(h),
        }
        true
    }

    /// Processes every event up to `deadline` (since the origin), then sets the clock
    /// to it.
    pub fn run_until(&mut self, deadline: Duration) {
        let deadline = nanos(deadline);
        while self.queue.peek_time().is_some_and(|t| t <= deadline) {
            self.step();
        }
        self.now = self.now.max(deadline);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.elapsed() + d);
    }

    /// Runs until a machine reports an event (returned) or `deadline` passes (`None`).
    pub fn run_until_event(&mut self, deadline: Duration) -> Option<SimEvent<M::Event>> {
        let limit = nanos(deadline);
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.queue.peek_time().is_none_or(|t| t > limit) {
                self.now = self.now.max(limit);
                return None;
            }
            self.step();
        }
    }
}
