//! What a host does for its machine, as a runtime would: fires its timer, drains its
//! outputs after every input, and keeps its pool of extra sockets
//! ([`SocketCommand`]).
//!
//! ## Pool sockets
//!
//! `SocketCommand::Open { count }` binds `count` more UDP sockets on the host's main
//! address (its first IPv4 socket, else its first IPv6 one), each on a port drawn from
//! [`POOL_PORTS`] (Linux's ephemeral range) that is none of the host's own sockets' and
//! not already in the pool, from the host's own seeded stream
//! (`sim/pool/hN/incarnation`). Each is reported at once, at the current virtual
//! instant, with `handle_socket_opened`; beyond [`MAX_POOL_SOCKETS`] open at once, each
//! further one with `handle_socket_failed`. `Close { port }` unbinds one (a port not in
//! the pool is ignored). A transmit whose `source_port` names a pool socket leaves from
//! it; one naming a port the pool does not have is dropped at the host (`no-socket`).
//! Datagrams for a pool socket are delivered with it as `local`. A crash closes them
//! all.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use dhtmeet_core::{MAX_POOL_SOCKETS, SansIo, SocketCommand};
use rand_core::Rng as _;

use crate::Rng;
use crate::engine::{Action, Sim, SimEvent, nanos};
use crate::topology::HostId;

/// The ports pool sockets get: Linux's default ephemeral range (`ip_local_port_range`).
pub const POOL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// Socket commands carried out per drain at most; the rest wait in the machine for its
/// next input (a machine that opens and closes sockets for ever cannot stall the run).
const MAX_COMMANDS_PER_DRAIN: usize = 1024;

/// The span everything a host's machine logs is in: its id, its name and the virtual
/// time (seconds since the origin), so a log of many members says who speaks, and when.
/// Its target, `dhtmeet_sim::host`, is switched on by `dhtmeet-sim` whenever logging is
/// (`RUST_LOG=dhtmeet_core=debug` alone then shows it).
pub(crate) fn host_span(host: HostId, name: &str, now: u64) -> tracing::Span {
    tracing::debug_span!(
        target: "dhtmeet_sim::host",
        "host",
        id = %host,
        name = %name,
        t = %format_args!("{}.{:06}", now / 1_000_000_000, now % 1_000_000_000 / 1_000),
    )
}

/// A host's pool sockets.
pub(crate) struct Pool {
    ip: IpAddr,
    ports: BTreeSet<u16>,
    rng: Rng,
}

impl Pool {
    /// Every open pool socket, by port.
    pub(crate) fn sockets(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|&p| SocketAddr::new(self.ip, p))
            .collect()
    }

    /// The pool socket bound to `port`, if open.
    pub(crate) fn socket(&self, port: u16) -> Option<SocketAddr> {
        self.ports
            .contains(&port)
            .then(|| SocketAddr::new(self.ip, port))
    }

    /// Bytes it holds (the B-tree's nodes estimated at 8 bytes per port).
    pub(crate) fn footprint(&self) -> usize {
        std::mem::size_of::<Pool>() + 8 * self.ports.len()
    }

    /// Whether `addr` is an open pool socket.
    pub(crate) fn has(&self, addr: SocketAddr) -> bool {
        addr.ip() == self.ip && self.ports.contains(&addr.port())
    }

    /// Binds one more socket on a port that is neither in `taken` nor in the pool.
    fn bind(&mut self, taken: &[u16]) -> Option<SocketAddr> {
        if self.ports.len() >= MAX_POOL_SOCKETS {
            return None;
        }
        let (lo, hi) = (*POOL_PORTS.start(), *POOL_PORTS.end());
        let span = u64::from(hi - lo) + 1;
        let free = |ports: &BTreeSet<u16>, p: u16| !taken.contains(&p) && !ports.contains(&p);
        let mut pick = None;
        for _ in 0..16 {
            let p = lo + (self.rng.next_u64() % span) as u16;
            if free(&self.ports, p) {
                pick = Some(p);
                break;
            }
        }
        if pick.is_none() {
            let start = self.rng.next_u64() % span;
            pick = (0..span)
                .map(|i| lo + ((start + i) % span) as u16)
                .find(|&p| free(&self.ports, p));
        }
        let port = pick?;
        self.ports.insert(port);
        Some(SocketAddr::new(self.ip, port))
    }
}

impl<M: SansIo> Sim<M> {
    pub(crate) fn fire_timer(&mut self, host: HostId, incarnation: u32, at: u64) {
        let now = self.now();
        let Some(h) = self.hosts.get_mut(host.index()) else {
            return;
        };
        if h.incarnation != incarnation || h.timer_at != Some(at) {
            return; // superseded
        }
        h.timer_at = None;
        if let Some(m) = h.machine.as_mut() {
            let _span = host_span(host, &h.name, self.now).entered();
            m.handle_timeout(now);
        }
        self.drain(host, true);
    }

    /// Drains transmits, socket commands, events and the next timeout of a host's
    /// machine. Transmits asked for before a socket command leave before it is carried
    /// out (as a runtime that sends, then acts on commands, would). After a timer fired,
    /// a timeout that is not in the future is pushed 1 ns on, so a machine that keeps
    /// asking for "now" cannot stall virtual time.
    pub(crate) fn drain(&mut self, host: HostId, after_timer: bool) {
        let mut outbox = std::mem::take(&mut self.outbox);
        let at = Duration::from_nanos(self.now);
        let mut commands = 0;
        let span = match self.hosts.get(host.index()) {
            Some(h) => host_span(host, &h.name, self.now),
            None => return,
        };
        let _span = span.enter();
        loop {
            let Some(m) = self
                .hosts
                .get_mut(host.index())
                .and_then(|h| h.machine.as_mut())
            else {
                return;
            };
            while let Some(t) = m.poll_transmit() {
                outbox.push(t);
            }
            if commands >= MAX_COMMANDS_PER_DRAIN {
                break;
            }
            let Some(command) = m.poll_socket_command() else {
                break;
            };
            commands += 1;
            for t in outbox.drain(..) {
                self.send_from(host, t);
            }
            self.socket_command(host, command);
        }
        let Some(h) = self.hosts.get_mut(host.index()) else {
            return;
        };
        let Some(m) = h.machine.as_mut() else {
            return;
        };
        while let Some(event) = m.poll_event() {
            self.events.push_back(SimEvent { host, at, event });
        }
        let next = m.poll_timeout().map(|t| {
            let off = nanos(t.saturating_duration_since(self.origin));
            match off.max(self.now) {
                t if after_timer && t <= self.now => self.now + 1,
                t => t,
            }
        });
        if next != h.timer_at {
            h.timer_at = next;
            if let Some(t) = next {
                let incarnation = h.incarnation;
                self.queue.push(t, Action::Timer { host, incarnation });
            }
        }
        for t in outbox.drain(..) {
            self.send_from(host, t);
        }
        self.outbox = outbox;
    }

    /// Carries out a machine's socket command, reporting to it at once.
    fn socket_command(&mut self, host: HostId, command: SocketCommand) {
        let now = self.now();
        let seed = self.seed;
        let Some(h) = self.hosts.get_mut(host.index()) else {
            return;
        };
        match command {
            SocketCommand::Open { count } => {
                let Some(ip) = h.v4.or(h.v6).map(|a| a.ip()) else {
                    return;
                };
                let incarnation = h.incarnation;
                let pool = h.pool.get_or_insert_with(|| {
                    Box::new(Pool {
                        ip,
                        ports: BTreeSet::new(),
                        rng: seed.child(&format!("sim/pool/{host}/{incarnation}")).rng(),
                    })
                });
                let taken: Vec<u16> =
                    h.v4.iter()
                        .chain(h.v6.iter())
                        .chain(h.extra.iter())
                        .map(SocketAddr::port)
                        .collect();
                let _span = host_span(host, &h.name, self.now).entered();
                for _ in 0..count {
                    let bound = pool.bind(&taken);
                    let Some(m) = h.machine.as_mut() else {
                        return;
                    };
                    match bound {
                        Some(local) => m.handle_socket_opened(now, local),
                        None => m.handle_socket_failed(now),
                    }
                }
            }
            SocketCommand::Close { port } => {
                if let Some(pool) = h.pool.as_mut() {
                    pool.ports.remove(&port);
                }
            }
        }
    }
}
