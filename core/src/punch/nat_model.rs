//! A tiny NAT for the attempt tests: endpoint-independent, random or sequential
//! allocation (with background traffic of other hosts moving a sequential counter), and
//! address-and-port-dependent filtering (RFC 4787), as home routers and carrier NATs do.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::schedule::{NAT_PORT_MIN, NAT_PORTS, advance};
use crate::seed::{Rng, Seed};

/// How the NAT picks the public port of a new mapping.
#[derive(Clone, Copy, Debug)]
pub enum Alloc {
    /// One mapping per local socket, whatever the destination.
    EndpointIndependent,
    /// A new random port per (socket, destination).
    Random,
    /// A new port `step` after the last one per (socket, destination); other hosts take
    /// one every `background` (if any).
    Sequential {
        step: u16,
        background: Option<Duration>,
    },
}

#[derive(Debug)]
struct Mapping {
    local: u16,
    /// Remote addresses it has sent to: the only ones let in.
    allowed: BTreeSet<SocketAddr>,
}

/// One NAT with one host behind it.
#[derive(Debug)]
pub struct Nat {
    pub ip: IpAddr,
    alloc: Alloc,
    rng: Rng,
    last: u16,
    background_at: Instant,
    flows: BTreeMap<(u16, Option<SocketAddr>), u16>,
    public: BTreeMap<u16, Option<Mapping>>,
}

impl Nat {
    pub fn new(ip: IpAddr, alloc: Alloc, seed: Seed, now: Instant) -> Nat {
        let mut rng = seed.child("nat").rng();
        let last = NAT_PORT_MIN + (rng.next_u32() % NAT_PORTS) as u16;
        Nat {
            ip,
            alloc,
            rng,
            last,
            background_at: now,
            flows: BTreeMap::new(),
            public: BTreeMap::new(),
        }
    }

    /// Other hosts' mappings until `now` (they take ports, and let nothing of ours in).
    pub fn run_background(&mut self, now: Instant) {
        let Alloc::Sequential {
            background: Some(every),
            ..
        } = self.alloc
        else {
            return;
        };
        while self.background_at + every <= now {
            self.background_at += every;
            let port = self.fresh_port();
            self.public.insert(port, None);
        }
    }

    /// The public port a datagram from `local` to `dest` leaves from.
    pub fn outbound(&mut self, now: Instant, local: u16, dest: SocketAddr) -> u16 {
        self.run_background(now);
        let key = match self.alloc {
            Alloc::EndpointIndependent => (local, None),
            _ => (local, Some(dest)),
        };
        let port = match self.flows.get(&key) {
            Some(&p) => p,
            None => {
                let p = match self.alloc {
                    Alloc::EndpointIndependent if !self.public.contains_key(&local) => local,
                    _ => self.fresh_port(),
                };
                self.flows.insert(key, p);
                self.public.insert(
                    p,
                    Some(Mapping {
                        local,
                        allowed: BTreeSet::new(),
                    }),
                );
                p
            }
        };
        if let Some(Some(m)) = self.public.get_mut(&port) {
            m.allowed.insert(dest);
        }
        port
    }

    /// The local port a datagram from `from` to public port `port` reaches, if any.
    pub fn inbound(&mut self, now: Instant, port: u16, from: SocketAddr) -> Option<u16> {
        self.run_background(now);
        match self.public.get(&port) {
            Some(Some(m)) if m.allowed.contains(&from) => Some(m.local),
            _ => None,
        }
    }

    fn fresh_port(&mut self) -> u16 {
        for _ in 0..NAT_PORTS {
            let p = match self.alloc {
                Alloc::Sequential { step, .. } => advance(self.last, step, 1),
                _ => NAT_PORT_MIN + (self.rng.next_u32() % NAT_PORTS) as u16,
            };
            self.last = p;
            if !self.public.contains_key(&p) {
                return p;
            }
        }
        panic!("the test NAT is out of ports");
    }
}
