//! The small harness the scenario tests share: a probe machine and address helpers.
#![allow(dead_code)] // each test file uses a different part

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dhtmeet_core::{SansIo, Seed, Transmit};
use dhtmeet_sim::{HostId, HostSpec, NatConfig, NatId, NatSpec, Realm, Sim};

/// A datagram a probe received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload: Vec<u8>,
}

/// A machine that sends what it is told to and reports what it receives. With `echo`,
/// it also sends every datagram back to where it came from.
#[derive(Debug, Default)]
pub struct Probe {
    pub echo: bool,
    out: VecDeque<Transmit>,
    received: VecDeque<Received>,
}

impl Probe {
    pub fn new() -> Self {
        Probe::default()
    }

    pub fn echo() -> Self {
        Probe {
            echo: true,
            ..Probe::default()
        }
    }

    pub fn send(&mut self, destination: SocketAddr, payload: &[u8]) {
        self.out
            .push_back(Transmit::new(destination, payload.to_vec()));
    }

    /// Sends a transmit as given (its TTL, its source port).
    pub fn send_transmit(&mut self, t: Transmit) {
        self.out.push_back(t);
    }
}

impl SansIo for Probe {
    type Event = Received;

    fn handle_datagram(&mut self, _now: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        if self.echo {
            self.send(remote, d);
        }
        self.received.push_back(Received {
            local,
            remote,
            payload: d.to_vec(),
        });
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<Received> {
        self.received.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("a literal socket address")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal IP address")
}

/// A simulation of probes with this seed.
pub fn probe_sim(seed: u64) -> Sim<Probe> {
    Sim::new(Seed::from_u64(seed))
}

pub fn host(sim: &mut Sim<Probe>, name: &str, realm: Realm, addr: &str) -> HostId {
    sim.add_host(HostSpec::new(name, realm, sa(addr)), Probe::new())
        .expect("a valid host")
}

pub fn echo_host(sim: &mut Sim<Probe>, name: &str, realm: Realm, addr: &str) -> HostId {
    sim.add_host(HostSpec::new(name, realm, sa(addr)), Probe::echo())
        .expect("a valid host")
}

pub fn nat(sim: &mut Sim<Probe>, parent: Realm, external: &str, config: NatConfig) -> NatId {
    sim.add_nat(NatSpec::new("nat", parent, ip(external), config))
        .expect("a valid NAT")
}

/// Sends from `from` and runs the network until it is quiet (1 s of virtual time).
pub fn send(sim: &mut Sim<Probe>, from: HostId, to: &str, payload: &[u8]) {
    sim.with_machine(from, |p, _| p.send(sa(to), payload));
    sim.run_for(Duration::from_secs(1));
}

/// Every datagram received so far, by host.
pub fn drain(sim: &mut Sim<Probe>) -> Vec<(HostId, Received)> {
    std::iter::from_fn(|| sim.poll_event())
        .map(|e| (e.host, e.event))
        .collect()
}

/// What `host` received so far (other hosts' receipts are discarded).
pub fn received_by(sim: &mut Sim<Probe>, host: HostId) -> Vec<Received> {
    drain(sim)
        .into_iter()
        .filter(|(h, _)| *h == host)
        .map(|(_, r)| r)
        .collect()
}

/// The seed of a randomized test: `DHTMEET_SIM_SEED` if set, else `default`; printed,
/// so a failure can be reproduced.
pub fn test_seed(default: u64) -> u64 {
    let seed = std::env::var("DHTMEET_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (set DHTMEET_SIM_SEED={seed} to reproduce)");
    seed
}
