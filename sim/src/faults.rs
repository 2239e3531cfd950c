//! Faults: partitions between devices, crashes and restarts of hosts, and churn (hosts
//! that crash and come back at random).

use std::time::{Duration, Instant};

use dhtmeet_core::{SansIo, Seed};

use crate::Rng;
use crate::engine::{Action, Sim};
use crate::topology::{DeviceId, HostId};

/// Hosts that crash and restart at random (exponentially distributed up and down times).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChurnConfig {
    /// Mean time a host stays up.
    pub mean_uptime: Duration,
    /// Mean time a crashed host stays down.
    pub mean_downtime: Duration,
}

/// Builds the machine of a host restarting after churn: host, its seed for this
/// incarnation, and the time.
pub type MachineFactory<M> = Box<dyn FnMut(HostId, Seed, Instant) -> M>;

pub(crate) struct Churn<M> {
    pub(crate) config: ChurnConfig,
    pub(crate) factory: MachineFactory<M>,
    pub(crate) rng: Rng,
}

impl<M: SansIo> Sim<M> {
    /// Cuts `a` off from `b`: datagrams between the two (hosts, or a host and a NAT's
    /// external side, meeting in one realm) are dropped until [`Sim::repair`].
    pub fn partition(&mut self, a: impl Into<DeviceId>, b: impl Into<DeviceId>) {
        let (a, b) = (a.into(), b.into());
        self.partitions.insert((a.min(b), a.max(b)));
    }

    /// Heals the partition between `a` and `b`.
    pub fn repair(&mut self, a: impl Into<DeviceId>, b: impl Into<DeviceId>) {
        let (a, b) = (a.into(), b.into());
        self.partitions.remove(&(a.min(b), a.max(b)));
    }

    /// Heals every partition.
    pub fn repair_all(&mut self) {
        self.partitions.clear();
    }

    /// Crashes the host now: its machine, all its state and its pool sockets are gone,
    /// datagrams for it are dropped (`host-down`) until [`Sim::restart`].
    pub fn crash(&mut self, host: HostId) {
        if let Some(h) = self.hosts.get_mut(host.index()) {
            h.machine = None;
            h.incarnation = h.incarnation.wrapping_add(1);
            h.timer_at = None;
            h.pool = None; // its sockets die with it
        }
    }

    /// Restarts a host now with a fresh machine (same addresses, no pool sockets).
    pub fn restart(&mut self, host: HostId, machine: M) {
        if let Some(h) = self.hosts.get_mut(host.index()) {
            h.machine = Some(machine);
            h.incarnation = h.incarnation.wrapping_add(1);
            h.timer_at = None;
            h.pool = None; // the old machine's sockets are not the new one's
            self.drain(host, false);
        }
    }

    /// Makes `hosts` churn: each crashes after an exponentially distributed uptime and
    /// comes back after an exponentially distributed downtime with a machine from
    /// `factory` (given a fresh seed per incarnation).
    pub fn churn(&mut self, hosts: &[HostId], config: ChurnConfig, factory: MachineFactory<M>) {
        let mut churn = Churn {
            config,
            factory,
            rng: self.seed.child("sim/churn").rng(),
        };
        for &h in hosts {
            let at = self.now.saturating_add(churn.draw(config.mean_uptime));
            self.queue.push(at, Action::Crash(h));
        }
        self.churn = Some(churn);
    }

    pub(crate) fn churn_crash(&mut self, host: HostId) {
        self.crash(host);
        if let Some(churn) = &mut self.churn {
            let at = self
                .now
                .saturating_add(churn.draw(churn.config.mean_downtime));
            self.queue.push(at, Action::Restart(host));
        }
    }

    pub(crate) fn churn_restart(&mut self, host: HostId) {
        let Some(incarnation) = self.hosts.get(host.index()).map(|h| h.incarnation) else {
            return;
        };
        let seed = self
            .seed
            .child(&format!("host/{host}/incarnation/{incarnation}"));
        let now = self.now();
        let Some(churn) = &mut self.churn else {
            return;
        };
        let machine = (churn.factory)(host, seed, now);
        let at = self
            .now
            .saturating_add(churn.draw(churn.config.mean_uptime));
        self.restart(host, machine);
        self.queue.push(at, Action::Crash(host));
    }
}

impl<M> Churn<M> {
    /// An exponentially distributed duration with mean `mean`, in ns.
    fn draw(&mut self, mean: Duration) -> u64 {
        let u = crate::link::uniform(&mut self.rng);
        (-(1.0 - u).ln() * mean.as_nanos() as f64) as u64
    }
}
