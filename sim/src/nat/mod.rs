//! The NAT model: a pure translation table with the behaviours of RFC 4787.
//!
//! | RFC 4787 | here |
//! |---|---|
//! | §4.1 mapping: endpoint-independent, address-dependent, address-and-port-dependent | [`MappingBehavior`] |
//! | §4.2.1 port assignment: preservation (REQ-3 allows it), no port overloading (REQ-3: MUST NOT) | [`PortAssignment`]: preserving, sequential with a step, random; one binding per external port |
//! | (not in RFC 4787) other hosts behind the NAT making mappings between ours | [`BackgroundTraffic`] |
//! | §4.2.2 port range | [`NatConfig::port_range`] |
//! | §4.3 mapping refresh: outbound refreshes always (REQ-6), inbound optionally | [`NatConfig::inbound_refresh`] |
//! | §4.3 mapping timeout (REQ-5: ≥ 2 min, 5 min recommended) | [`NatConfig::mapping_timeout`] |
//! | §5 filtering: endpoint-independent, address-dependent, address-and-port-dependent | [`FilteringBehavior`] |
//! | §6 hairpinning (REQ-9), with the external source address (REQ-9a) | [`NatConfig::hairpinning`]; done by the engine with [`Nat::outbound`] then [`Nat::inbound`] |
//! | §4.1 IP address pooling, §7 ICMP, §8 fragments | not modelled: one external address, no ICMP, no fragments |
//! | (not in RFC 4787) a refused inbound datagram opens a flow to the NAT box itself that claims the port for its sender (Linux conntrack with no firewall) | [`RefusedInbound`] |
//!
//! Times are virtual offsets (nanoseconds since the simulation's origin). Expired
//! bindings are removed lazily, when a port or a key is looked at, and in a sweep when the
//! table is full; the table never holds more than [`NatConfig::max_mappings`] bindings.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::Rng;

mod config;
mod permissions;
mod ports;

pub use config::{
    BackgroundTraffic, FilteringBehavior, MappingBehavior, NatConfig, NatConfigError,
    PortAssignment, RefusedInbound,
};
pub use permissions::MAX_PERMISSIONS;
use permissions::Permissions;

/// Why the NAT dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatDrop {
    /// Inbound: no live binding on the destination port.
    NoMapping,
    /// Inbound: the binding exists but its filter refuses the source.
    Filtered,
    /// Outbound: no external port free (or `max_mappings` reached).
    PortsExhausted,
}

/// What the NAT has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    /// Outbound datagrams translated.
    pub outbound: u64,
    /// Inbound datagrams translated.
    pub inbound: u64,
    /// Mappings created.
    pub mappings_created: u64,
    /// Bindings removed after their timeout.
    pub mappings_expired: u64,
    /// Inbound datagrams with no binding.
    pub dropped_no_mapping: u64,
    /// Inbound datagrams refused by the filter.
    pub dropped_filtered: u64,
    /// Outbound datagrams for which no port was free.
    pub dropped_exhausted: u64,
    /// Port claims made by refused inbound datagrams ([`RefusedInbound::ClaimsPort`]).
    pub claims: u64,
    /// Bindings made for one remote endpoint because a claim held the usual port.
    pub claim_diversions: u64,
    /// Mappings made by other hosts behind the NAT ([`BackgroundTraffic`]; not counted
    /// in `mappings_created`).
    pub background_mappings: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MappingKey {
    internal: SocketAddr,
    remote_ip: Option<IpAddr>,
    remote_port: Option<u16>,
}

#[derive(Clone, Debug)]
struct Binding {
    key: MappingKey,
    expires: u64,
    /// Remote endpoints sent to, each with its own expiry.
    permissions: Permissions,
}

/// One NAT box's translation table. Pure: time comes in as nanoseconds since the
/// simulation's origin, randomness from the RNG it was built with.
#[derive(Debug)]
pub struct Nat {
    config: NatConfig,
    external: IpAddr,
    rng: Rng,
    mappings: BTreeMap<MappingKey, u16>,
    bindings: BTreeMap<u16, Binding>,
    /// (external port, remote endpoint) → expiry: pairs claimed by refused datagrams.
    claims: BTreeMap<(u16, SocketAddr), u64>,
    /// Internal endpoint → the key of the binding its newest flow got (NATs whose
    /// refused datagrams claim ports: see [`Nat::conntrack_key`]).
    newest: BTreeMap<SocketAddr, MappingKey>,
    /// Where a sequential scan starts next.
    next_port: u16,
    /// When the next background mapping is due (`None`: not started).
    background_next: Option<u64>,
    /// Background mappings made so far (each gets a key of its own from it).
    background_count: u64,
    stats: NatStats,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Nat {
    /// A NAT with external address `external`, drawing random ports from `rng`.
    pub fn new(config: NatConfig, external: IpAddr, rng: Rng) -> Result<Nat, NatConfigError> {
        config.validate()?;
        let next_port = *config.port_range.start();
        Ok(Nat {
            config,
            external,
            rng,
            mappings: BTreeMap::new(),
            bindings: BTreeMap::new(),
            claims: BTreeMap::new(),
            newest: BTreeMap::new(),
            next_port,
            background_next: None,
            background_count: 0,
            stats: NatStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NatConfig {
        &self.config
    }

    /// The external address.
    pub fn external(&self) -> IpAddr {
        self.external
    }

    /// What the NAT has done.
    pub fn stats(&self) -> NatStats {
        self.stats
    }

    /// Live bindings at `now`.
    pub fn live_bindings(&self, now: u64) -> usize {
        self.bindings.values().filter(|b| b.expires > now).count()
    }

    /// An internal endpoint `src` sends to `dst`: the external address the datagram
    /// leaves with, creating or refreshing the mapping.
    pub fn outbound(
        &mut self,
        now: u64,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<SocketAddr, NatDrop> {
        self.catch_up(now);
        let key = MappingKey {
            internal: src,
            remote_ip: match self.config.mapping {
                MappingBehavior::EndpointIndependent => None,
                _ => Some(dst.ip()),
            },
            remote_port: match self.config.mapping {
                MappingBehavior::AddressAndPortDependent => Some(dst.port()),
                _ => None,
            },
        };
        let flow = MappingKey {
            internal: src,
            remote_ip: Some(dst.ip()),
            remote_port: Some(dst.port()),
        };
        // Only a NAT whose refused datagrams claim ports ever diverts a flow.
        let claims_ports = self.config.refused_inbound != RefusedInbound::Forgotten;
        let (key, assignment, new_flow) = if claims_ports && key != flow {
            self.conntrack_key(now, key, flow, dst)
        } else {
            (key, self.config.port_assignment, false)
        };
        if new_flow {
            self.newest.insert(src, key);
        }
        let existing = self.mappings.get(&key).copied();
        let port = match existing {
            Some(port) if self.bindings.get(&port).is_some_and(|b| b.expires > now) => port,
            _ => {
                if let Some(port) = existing {
                    self.remove_binding(port);
                }
                let Some(port) = self.allocate(now, src.port(), dst, assignment) else {
                    self.stats.dropped_exhausted += 1;
                    return Err(NatDrop::PortsExhausted);
                };
                self.mappings.insert(key, port);
                self.bindings.insert(
                    port,
                    Binding {
                        key,
                        expires: 0,
                        permissions: Permissions::default(),
                    },
                );
                self.stats.mappings_created += 1;
                if key == flow && self.config.mapping != MappingBehavior::AddressAndPortDependent {
                    self.stats.claim_diversions += 1;
                }
                port
            }
        };
        let expires = now.saturating_add(nanos(self.config.mapping_timeout));
        if let Some(b) = self.bindings.get_mut(&port) {
            b.expires = expires;
            b.permissions.sent(now, dst, expires);
        }
        self.stats.outbound += 1;
        Ok(SocketAddr::new(self.external, port))
    }

    /// A datagram from `src` arrives for the external endpoint `dst`: the internal
    /// endpoint it is for, if a live binding exists and its filter lets `src` through.
    pub fn inbound(
        &mut self,
        now: u64,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<SocketAddr, NatDrop> {
        self.catch_up(now);
        let port = dst.port();
        let alive = self.bindings.get(&port).map(|b| b.expires > now);
        match alive {
            None => {
                self.stats.dropped_no_mapping += 1;
                self.claim(now, port, src);
                return Err(NatDrop::NoMapping);
            }
            Some(false) => {
                self.remove_binding(port);
                self.stats.dropped_no_mapping += 1;
                self.claim(now, port, src);
                return Err(NatDrop::NoMapping);
            }
            Some(true) => {}
        }
        let filtering = self.config.filtering;
        let refresh = self.config.inbound_refresh;
        let timeout = nanos(self.config.mapping_timeout);
        let Some(b) = self.bindings.get_mut(&port) else {
            return Err(NatDrop::NoMapping);
        };
        if !b.permissions.admit(filtering, now, src) {
            self.stats.dropped_filtered += 1;
            self.claim(now, port, src);
            return Err(NatDrop::Filtered);
        }
        // The permissions that admitted the datagram saw a reply; with inbound refresh,
        // they and the binding live on, as a conntrack entry does when either direction
        // sees traffic.
        let refresh_to = refresh.then(|| now.saturating_add(timeout));
        if let Some(expires) = refresh_to {
            b.expires = expires;
        }
        b.permissions.admitted(filtering, now, src, refresh_to);
        self.stats.inbound += 1;
        Ok(b.key.internal)
    }

    /// A refused datagram from `remote` to our `port` claims the pair, if the NAT
    /// remembers refused datagrams (a full table remembers no more, like conntrack's).
    fn claim(&mut self, now: u64, port: u16, remote: SocketAddr) {
        let RefusedInbound::ClaimsPort { timeout } = self.config.refused_inbound else {
            return;
        };
        if self.claims.len() >= self.config.max_mappings {
            self.claims.retain(|_, e| *e > now);
        }
        if self.claims.len() < self.config.max_mappings || self.claims.contains_key(&(port, remote))
        {
            self.claims
                .insert((port, remote), now.saturating_add(nanos(timeout)));
            self.stats.claims += 1;
        }
    }

    /// Whether `remote` holds a live claim on `port`.
    fn claimed(&self, now: u64, port: u16, remote: SocketAddr) -> bool {
        self.claims.get(&(port, remote)).is_some_and(|&e| e > now)
    }

    /// Which binding a flow from `key`'s internal endpoint to `dst` uses behind a NAT
    /// whose refused datagrams claim ports, as Linux conntrack picks the source of a
    /// masqueraded flow: a live flow keeps its binding; a new flow takes the port of the
    /// internal endpoint's newest flow, unless `dst` claims that port (its reply tuple is
    /// taken), and then a binding of its own with a random port. So once one flow was
    /// diverted, every later new flow of that endpoint leaves from the diverted port too
    /// (`docs/real-nat.md`, "Port prediction on real routers", 3). Returns the key, how a
    /// new binding gets its port, and whether the flow is new.
    fn conntrack_key(
        &self,
        now: u64,
        key: MappingKey,
        flow: MappingKey,
        dst: SocketAddr,
    ) -> (MappingKey, PortAssignment, bool) {
        let live = |k: &MappingKey| {
            self.mappings
                .get(k)
                .filter(|p| self.bindings.get(p).is_some_and(|b| b.expires > now))
                .copied()
        };
        if live(&flow).is_some() {
            return (flow, PortAssignment::Random, false);
        }
        let carrying = self.bindings.values().find(|b| {
            b.key.internal == key.internal && b.expires > now && b.permissions.has(now, dst)
        });
        if let Some(b) = carrying {
            return (b.key, self.config.port_assignment, false);
        }
        let newest = self.newest.get(&key.internal).copied().unwrap_or(key);
        match live(&newest) {
            Some(port) if self.claimed(now, port, dst) => (flow, PortAssignment::Random, true),
            Some(_) => (newest, self.config.port_assignment, true),
            None => match live(&key) {
                Some(port) if self.claimed(now, port, dst) => (flow, PortAssignment::Random, true),
                _ => (key, self.config.port_assignment, true),
            },
        }
    }

    fn remove_binding(&mut self, port: u16) {
        if let Some(b) = self.bindings.remove(&port) {
            self.mappings.remove(&b.key);
            if self.newest.get(&b.key.internal) == Some(&b.key) {
                self.newest.remove(&b.key.internal);
            }
            self.stats.mappings_expired += 1;
        }
    }

    /// Whether `port` is free at `now` (removing an expired binding that held it).
    fn free(&mut self, now: u64, port: u16) -> bool {
        match self.bindings.get(&port) {
            None => true,
            Some(b) if b.expires <= now => {
                self.remove_binding(port);
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhtmeet_core::Seed;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("a literal address")
    }

    fn nat(config: NatConfig) -> Nat {
        Nat::new(
            config,
            "203.0.113.1".parse().expect("literal"),
            Seed::from_u64(3).rng(),
        )
        .expect("valid config")
    }

    #[test]
    fn sequential_ports_count_up_and_skip_bound_ones() {
        let mut n = nat(NatConfig {
            port_assignment: PortAssignment::SEQUENTIAL,
            mapping: MappingBehavior::AddressAndPortDependent,
            port_range: 5000..=5002,
            ..NatConfig::default()
        });
        let src = sa("10.0.0.2:4000");
        let ports: Vec<u16> = ["192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3"]
            .iter()
            .map(|d| n.outbound(0, src, sa(d)).expect("port free").port())
            .collect();
        assert_eq!(ports, vec![5000, 5001, 5002]);
        assert_eq!(
            n.outbound(0, src, sa("192.0.2.1:4")),
            Err(NatDrop::PortsExhausted)
        );
    }

    #[test]
    fn max_mappings_bounds_the_table_and_expired_bindings_are_swept() {
        let mut n = nat(NatConfig {
            mapping: MappingBehavior::AddressAndPortDependent,
            max_mappings: 2,
            mapping_timeout: Duration::from_secs(1),
            ..NatConfig::default()
        });
        let src = sa("10.0.0.2:4000");
        assert!(n.outbound(0, src, sa("192.0.2.1:1")).is_ok());
        assert!(n.outbound(0, src, sa("192.0.2.1:2")).is_ok());
        assert_eq!(
            n.outbound(0, src, sa("192.0.2.1:3")),
            Err(NatDrop::PortsExhausted)
        );
        assert!(n.outbound(2_000_000_000, src, sa("192.0.2.1:3")).is_ok());
        assert_eq!(n.live_bindings(2_000_000_000), 1);
    }

    #[test]
    fn a_refused_datagram_claims_the_port_and_diverts_the_flow_to_its_sender() {
        let config = |refused_inbound| NatConfig {
            refused_inbound,
            ..NatConfig::default()
        };
        let claims = RefusedInbound::ClaimsPort {
            timeout: Duration::from_secs(30),
        };
        let (src, server, peer) = (
            sa("10.0.0.2:4000"),
            sa("192.0.2.1:3478"),
            sa("198.51.100.7:4000"),
        );
        let ext = |n: &mut Nat, t, dst| n.outbound(t, src, dst).expect("port free");
        for (refused, diverted) in [(RefusedInbound::Forgotten, false), (claims, true)] {
            let mut n = nat(config(refused));
            assert_eq!(ext(&mut n, 0, server).port(), 4000);
            // The peer's datagram arrives before we sent to it: refused (APDF).
            let to_us = sa("203.0.113.1:4000");
            assert_eq!(n.inbound(1, peer, to_us), Err(NatDrop::Filtered));
            let towards_peer = ext(&mut n, 2, peer);
            assert_eq!(towards_peer.port() != 4000, diverted, "{refused:?}");
            // The flow keeps its port, its replies get in, and the older flow keeps the
            // usual one; a new flow follows the newest (Linux: the diverted port).
            assert_eq!(ext(&mut n, 3, peer), towards_peer);
            assert_eq!(n.inbound(4, peer, towards_peer), Ok(src));
            assert_eq!(ext(&mut n, 5, server).port(), 4000);
            let later = ext(&mut n, 5, sa("192.0.2.9:1"));
            assert_eq!(later, towards_peer);
            assert_eq!(n.inbound(6, sa("192.0.2.9:1"), later), Ok(src));
            assert_eq!(n.stats().claim_diversions, u64::from(diverted));
        }
        // Once diverted, new flows stay on the newest port while it lives, and a claim
        // on that port diverts again.
        let mut n = nat(config(claims));
        ext(&mut n, 0, server);
        let _ = n.inbound(1, peer, sa("203.0.113.1:4000"));
        let moved = ext(&mut n, 2, peer).port();
        let other = sa("192.0.2.20:7");
        let _ = n.inbound(3, other, SocketAddr::new(sa("203.0.113.1:1").ip(), moved));
        let again = ext(&mut n, 4, other).port();
        assert!(again != moved && again != 4000, "{again}");
        assert_eq!(ext(&mut n, 5, sa("192.0.2.21:7")).port(), again);
        // A claim lapses: a new flow after its timeout keeps the port.
        let mut n = nat(config(claims));
        ext(&mut n, 0, server);
        let _ = n.inbound(1, peer, sa("203.0.113.1:4000"));
        assert_eq!(ext(&mut n, 31_000_000_000, peer).port(), 4000);
        assert_eq!(
            NatConfig {
                refused_inbound: RefusedInbound::ClaimsPort {
                    timeout: Duration::ZERO
                },
                ..NatConfig::default()
            }
            .validate(),
            Err(NatConfigError::ZeroClaimTimeout)
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let c = NatConfig {
            port_range: 0..=10,
            ..NatConfig::default()
        };
        assert_eq!(c.validate(), Err(NatConfigError::BadPortRange));
        #[allow(clippy::reversed_empty_ranges)]
        let c = NatConfig {
            port_range: 10..=5,
            ..NatConfig::default()
        };
        assert_eq!(c.validate(), Err(NatConfigError::BadPortRange));
    }
}
