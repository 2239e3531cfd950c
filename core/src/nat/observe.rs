//! The collection: observations of our main socket's public address, each with the
//! order in which our socket created the mapping it shows.
//!
//! A NAT creates a mapping when our socket first sends to a destination (and again once
//! the mapping has expired), so [`NatObserver::note_sent`] numbers the new destinations
//! of every datagram the socket sends, in the order the runtime sends them; an
//! observation of destination `d` then carries `d`'s number. Behind a sequential
//! allocator, the ports grow with these numbers.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::NatClass;
use super::classify::classify;
use crate::stun::{Mapping, StunReport};
use crate::transmit::canonical_remote;

/// Observations kept: the newest, one per destination.
pub const MAX_OBSERVATIONS: usize = 32;
/// Destinations whose first send is remembered; the one sent to least recently is
/// forgotten first.
pub const MAX_DESTINATIONS: usize = 256;
/// A destination not sent to for this long has lost its mapping: the next send creates a
/// new one (RFC 4787 REQ-5: a NAT keeps an idle UDP mapping at least 2 minutes).
pub const MAPPING_IDLE: Duration = Duration::from_secs(120);

/// Who told us our public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservationSource {
    /// A STUN server's XOR-MAPPED-ADDRESS.
    Stun,
    /// A DHT node's `ip` in its reply (BEP 42).
    Dht,
}

/// One destination's view of our public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatObservation {
    /// The remote endpoint we sent to (the STUN server, the DHT node).
    pub destination: SocketAddr,
    /// The address it saw us at.
    pub public: SocketAddr,
    /// Who it is.
    pub source: ObservationSource,
    /// The mapping's place in the order our socket created mappings (0 for the first
    /// destination it ever sent to); `None` when we do not know when we first sent to it.
    pub order: Option<u64>,
    /// When our socket first sent to it (created the mapping), if known.
    pub sent: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct FirstSend {
    order: u64,
    at: Instant,
    last: Instant,
}

/// Collects observations of the main socket's public address and keeps its
/// [`NatClass`] up to date. Bounded: [`MAX_OBSERVATIONS`] observations,
/// [`MAX_DESTINATIONS`] destinations.
#[derive(Debug)]
pub struct NatObserver {
    local: Option<SocketAddr>,
    sends: BTreeMap<SocketAddr, FirstSend>,
    next_order: u64,
    /// The number of the socket's very first mapping in the current NAT: 0 from the
    /// start, unknown after a change of network (mappings were made before we noticed).
    first_order: Option<u64>,
    observations: VecDeque<NatObservation>,
    class: NatClass,
    public: Option<SocketAddr>,
}

impl Default for NatObserver {
    fn default() -> Self {
        NatObserver {
            local: None,
            sends: BTreeMap::new(),
            next_order: 0,
            first_order: Some(0),
            observations: VecDeque::new(),
            class: NatClass::Unknown,
            public: None,
        }
    }
}

impl NatObserver {
    /// Nothing observed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The class the observations show now.
    pub fn class(&self) -> NatClass {
        self.class
    }

    /// Where new flows of our socket appear, when the class is one public port for all
    /// ([`NatClass::Open`], [`NatClass::EndpointIndependent`]): the port the newest
    /// mappings show, which a Linux masquerade router moves (`docs/port-prediction.md`).
    pub fn public(&self) -> Option<SocketAddr> {
        self.public
    }

    /// The observations kept, oldest first.
    pub fn observations(&self) -> impl ExactSizeIterator<Item = &NatObservation> {
        self.observations.iter()
    }

    /// Our socket's own address. A new one (another network) starts afresh; returns the
    /// new class if it changed.
    pub fn set_local(&mut self, local: SocketAddr) -> Option<NatClass> {
        let local = canonical_remote(local);
        if self.local == Some(local) {
            return None;
        }
        let had = self.local.is_some();
        self.local = Some(local);
        if had {
            self.reset();
        }
        self.reclassify()
    }

    /// Our main socket sends a datagram to `destination` at `now`: a new destination (or
    /// one idle for [`MAPPING_IDLE`]) gets the next number.
    pub fn note_sent(&mut self, now: Instant, destination: SocketAddr) {
        let destination = canonical_remote(destination);
        if let Some(s) = self.sends.get_mut(&destination) {
            if now.saturating_duration_since(s.last) < MAPPING_IDLE {
                s.last = s.last.max(now);
                return;
            }
        }
        if self.sends.len() >= MAX_DESTINATIONS && !self.sends.contains_key(&destination) {
            let stalest = self.sends.iter().min_by_key(|(_, s)| (s.last, s.order));
            if let Some(stalest) = stalest.map(|(d, _)| *d) {
                self.sends.remove(&stalest);
            }
        }
        let order = self.next_order;
        self.next_order += 1;
        self.sends.insert(
            destination,
            FirstSend {
                order,
                at: now,
                last: now,
            },
        );
    }

    /// `destination` saw us at `public`; returns the new class if it changed.
    pub fn observe(
        &mut self,
        destination: SocketAddr,
        public: SocketAddr,
        source: ObservationSource,
    ) -> Option<NatClass> {
        self.insert(destination, public, source);
        self.reclassify()
    }

    /// A finished STUN round: its answers are observations. When they show another NAT
    /// (none reports the public IP the window agrees on, or an endpoint-independent
    /// mapping moved to another address), what was observed before is dropped first.
    /// Returns the new class if it changed.
    pub fn observe_stun_round(&mut self, report: &StunReport) -> Option<NatClass> {
        if self.nat_changed(report) {
            tracing::debug!(public = %report.first.mapped, "the NAT changed: observing afresh");
            self.reset();
        }
        for o in &report.observations {
            self.insert(o.server, o.mapped, ObservationSource::Stun);
        }
        self.reclassify()
    }

    fn nat_changed(&self, report: &StunReport) -> bool {
        let Some(current) = self.consensus() else {
            return false;
        };
        let round: Vec<SocketAddr> = report
            .observations
            .iter()
            .map(|o| canonical_remote(o.mapped))
            .filter(|m| m.is_ipv4() == current.is_ipv4())
            .collect();
        if round.is_empty() {
            return false;
        }
        let ip_moved = !round.iter().any(|m| m.ip() == current.ip());
        let mapping_moved = self.class.is_endpoint_independent()
            && report.mapping == Mapping::EndpointIndependent
            && round.iter().all(|m| *m != current);
        ip_moved || mapping_moved
    }

    /// The address most observations report.
    fn consensus(&self) -> Option<SocketAddr> {
        let mut best: Option<(SocketAddr, usize)> = None;
        for o in &self.observations {
            let count = self
                .observations
                .iter()
                .filter(|p| p.public == o.public)
                .count();
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((o.public, count));
            }
        }
        best.map(|(a, _)| a)
    }

    fn insert(&mut self, destination: SocketAddr, public: SocketAddr, source: ObservationSource) {
        let destination = canonical_remote(destination);
        let public = canonical_remote(public);
        self.observations.retain(|o| o.destination != destination);
        if self.observations.len() >= MAX_OBSERVATIONS {
            self.observations.pop_front();
        }
        let first = self.sends.get(&destination);
        self.observations.push_back(NatObservation {
            destination,
            public,
            source,
            order: first.map(|s| s.order),
            sent: first.map(|s| s.at),
        });
    }

    /// Forgets the observations and the mappings (another NAT, another network): the
    /// next send to any destination makes a new mapping.
    fn reset(&mut self) {
        self.observations.clear();
        self.sends.clear();
        self.first_order = None;
    }

    #[cfg(test)]
    pub(crate) fn sends_len(&self) -> usize {
        self.sends.len()
    }

    fn reclassify(&mut self) -> Option<NatClass> {
        let observations: Vec<NatObservation> = self.observations.iter().copied().collect();
        let (class, public) = classify(&observations, self.local, self.first_order);
        self.public = public;
        if class == self.class {
            return None;
        }
        self.class = class;
        Some(class)
    }
}
