//! A tiny deterministic in-memory network for the core's own tests: machines keyed by
//! address, a fixed one-way latency, optional seeded loss. (The real simulator with
//! NATs, jitter and traces is the `dhtmeet-sim` crate; this one keeps core tests
//! independent of it.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use crate::{SansIo, Seed};

pub(crate) struct Net<M: SansIo> {
    pub machines: BTreeMap<SocketAddr, M>,
    pub now: Instant,
    pub latency: Duration,
    /// Probability (0–1) that a datagram is lost.
    pub loss: f64,
    pub events: Vec<(SocketAddr, M::Event)>,
    pub delivered: u64,
    rng: crate::seed::Rng,
    in_flight: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
}

impl<M: SansIo> Net<M> {
    pub fn new(now: Instant, latency: Duration, seed: u64) -> Self {
        Net {
            machines: BTreeMap::new(),
            now,
            latency,
            loss: 0.0,
            events: Vec::new(),
            delivered: 0,
            rng: Seed::from_u64(seed).rng(),
            in_flight: Vec::new(),
        }
    }

    fn drain(&mut self) {
        for (&addr, m) in &mut self.machines {
            while let Some(t) = m.poll_transmit() {
                let lost =
                    self.loss > 0.0 && (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss;
                if !lost {
                    self.in_flight
                        .push((self.now + self.latency, addr, t.destination, t.contents));
                }
            }
            while let Some(e) = m.poll_event() {
                self.events.push((addr, e));
            }
        }
    }

    /// Runs until `until` has passed, or until `stop` says so after an event.
    pub fn run_until(
        &mut self,
        until: Duration,
        mut stop: impl FnMut(&[(SocketAddr, M::Event)]) -> bool,
    ) {
        let end = self.now + until;
        // A machine whose timeout stays due after `handle_timeout` would make a runtime
        // spin; here it fails the test instead of hanging it.
        let mut same_instant = 0u32;
        loop {
            self.drain();
            if stop(&self.events) {
                return;
            }
            let next_arrival = self.in_flight.iter().map(|d| d.0).min();
            let next_timer = self
                .machines
                .values()
                .filter_map(|m| m.poll_timeout())
                .min();
            let Some(next) = next_arrival.into_iter().chain(next_timer).min() else {
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            same_instant = if next <= self.now {
                same_instant + 1
            } else {
                0
            };
            assert!(
                same_instant < 100_000,
                "a machine keeps asking to be woken at {:?}: it spins",
                self.now
            );
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|d| d.0 <= now);
            self.in_flight = later;
            for (_, from, to, bytes) in due {
                if let Some(m) = self.machines.get_mut(&to) {
                    self.delivered += 1;
                    m.handle_datagram(now, to, from, &bytes);
                }
            }
            for m in self.machines.values_mut() {
                if m.poll_timeout().is_some_and(|t| t <= now) {
                    m.handle_timeout(now);
                }
            }
        }
    }

    pub fn run(&mut self, until: Duration) {
        self.run_until(until, |_| false);
    }
}
