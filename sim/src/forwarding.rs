//! Forwarding: how a datagram travels from a machine's transmit to another machine.
//!
//! 1. The sender's host picks its socket of the destination's family (or the pool
//!    socket the transmit names) and puts the datagram on its link, up
//!    ([`Sim::send_from`]).
//! 2. At the router of the realm ([`Sim::route`]): a host or NAT there owns the
//!    destination IP → down that node's link; else, inside a NAT, up to the NAT for
//!    outbound translation (or hairpinning) and on up the NAT's link to the parent
//!    realm; else the datagram has no route.
//! 3. Down a link ([`Sim::reach`]): a host delivers it to its machine; a NAT
//!    translates it inbound (mapping and filtering) and routes it inside.
//!
//! Each link crossing is one queue event; NAT translation and routing take no time.
//!
//! **TTL.** A datagram leaves its host with the TTL its transmit names (64 if none).
//! Every device that forwards it takes one from it, as a Linux router does: a NAT box
//! (outbound, inbound, or hairpinning: one each time it is crossed) and the Internet,
//! which counts as [`Sim::internet_hops`] routers. A device that gets it with a TTL
//! too small to pass (1 at a NAT; at most the hop count at the Internet) drops it
//! (`ttl-expired`), and does so where Linux does: a NAT drops an outbound datagram
//! *before* translating it (Linux's `ip_forward` drops it before POSTROUTING's SNAT:
//! no mapping is made), and an inbound one *after* its binding was looked up and
//! refreshed (conntrack runs in PREROUTING, before the forward). So a datagram sent
//! with TTL 2 from behind one NAT opens (or refreshes) its mapping and expires at the
//! Internet's first router, never reaching the peer's NAT. Routers inside a realm (a
//! LAN, a carrier's network) are not modelled: they take nothing.

use std::net::SocketAddr;
use std::time::Duration;

use dhtmeet_core::{PacketKind, SansIo, Transmit};

use crate::engine::{Action, DEFAULT_TTL, Datagram, Sim};
use crate::link::{Crossing, LinkDrop};
use crate::nat::NatDrop;
use crate::topology::{DeviceId, HostId, NatId, Realm};
use crate::trace::{Fate, TracePoint, TraceRecord};

impl<M: SansIo> Sim<M> {
    fn note(&mut self, point: TracePoint, dgram: &Datagram, fate: Fate, first: bool) {
        let rec = TraceRecord {
            at: Duration::from_nanos(self.now),
            datagram: dgram.id,
            point,
            src: dgram.src,
            dst: dgram.dst,
            kind: PacketKind::classify(&dgram.payload),
            len: dgram.payload.len(),
            fate,
        };
        self.trace.record(rec, &dgram.payload, dgram.ttl, first);
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_datagram;
        self.next_datagram += 1;
        id
    }

    /// A host's machine sends a transmit: from its socket of the destination's family,
    /// or from the pool socket `source_port` names.
    pub(crate) fn send_from(&mut self, host: HostId, t: Transmit) {
        let Transmit {
            destination: dst,
            contents: payload,
            ttl,
            source_port,
        } = t;
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        self.sent += 1;
        let id = self.new_id();
        let Some(h) = self.hosts.get(host.index()) else {
            return;
        };
        let unspecified = match dst {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        let (src, fate) = match source_port {
            None => {
                let src = if dst.is_ipv4() { h.v4 } else { h.v6 };
                // No socket of that family: the send fails at the host.
                (src, Fate::NoRoute)
            }
            Some(port) => match h.pool.as_deref().and_then(|p| p.socket(port)) {
                // A socket of the other family cannot reach it.
                Some(src) => (
                    Some(src).filter(|s| s.is_ipv4() == dst.is_ipv4()),
                    Fate::NoRoute,
                ),
                None => (None, Fate::NoSocket),
            },
        };
        let Some(src) = src else {
            let src = match source_port {
                Some(port) => SocketAddr::new(unspecified.ip(), port),
                None => unspecified,
            };
            let dgram = Datagram {
                id,
                src,
                dst,
                payload,
                ttl,
            };
            self.note(TracePoint::Host(host), &dgram, fate, true);
            return;
        };
        let dgram = Datagram {
            id,
            src,
            dst,
            payload,
            ttl,
        };
        if ttl == 0 {
            // No hop at all: the host's stack cannot send it (Linux refuses TTL 0).
            self.note(TracePoint::Host(host), &dgram, Fate::TtlExpired, true);
            return;
        }
        self.cross(DeviceId::Host(host), true, dgram, true);
    }

    /// Puts `dgram` on `node`'s link, up into its realm or down to it.
    pub(crate) fn cross(&mut self, node: DeviceId, up: bool, dgram: Datagram, first: bool) {
        let len = dgram.payload.len();
        let (link, realm) = match node {
            DeviceId::Host(h) => {
                let Some(s) = self.hosts.get_mut(h.index()) else {
                    return;
                };
                (&mut s.link, s.realm)
            }
            DeviceId::Nat(n) => {
                let Some(s) = self.nats.get_mut(n.index()) else {
                    return;
                };
                (&mut s.link, s.parent)
            }
        };
        let crossing = link.cross(up, self.now, len, &mut self.rng);
        let point = TracePoint::Link { node, up };
        let next = |dgram| {
            if up {
                Action::Arrive {
                    realm,
                    from: node,
                    dgram,
                }
            } else {
                Action::Reach { to: node, dgram }
            }
        };
        match crossing {
            Crossing::Dropped(drop) => {
                let fate = match drop {
                    LinkDrop::Lost => Fate::Lost,
                    LinkDrop::BurstLost => Fate::BurstLost,
                    LinkDrop::QueueOverflow => Fate::QueueOverflow,
                };
                self.note(point, &dgram, fate, first);
            }
            Crossing::Arrives { at, duplicate_at } => {
                self.note(point, &dgram, Fate::Transmitted, first);
                if let Some(dup_at) = duplicate_at {
                    let mut copy = dgram.clone();
                    copy.id = self.new_id();
                    self.note(point, &copy, Fate::Duplicated, false);
                    self.queue.push(dup_at, next(copy));
                }
                self.queue.push(at, next(dgram));
            }
        }
    }

    fn partitioned(&self, a: DeviceId, b: DeviceId) -> bool {
        !self.partitions.is_empty() && self.partitions.contains(&(a.min(b), a.max(b)))
    }

    /// The router of `realm` forwards a datagram that came from `from`.
    pub(crate) fn route(&mut self, realm: Realm, from: DeviceId, mut dgram: Datagram) {
        if realm == Realm::Internet && self.internet_hops > 0 {
            // Each of the Internet's routers needs a TTL of 2 to pass it on.
            if dgram.ttl <= self.internet_hops {
                self.note(TracePoint::Router, &dgram, Fate::TtlExpired, false);
                return;
            }
            dgram.ttl -= self.internet_hops;
        }
        let target = self.routes.get(&(realm.key(), dgram.dst.ip())).copied();
        let (next, up) = match (target, realm) {
            (Some(target), _) => (target, false),
            (None, Realm::Inside(n)) if from != DeviceId::Nat(n) => (DeviceId::Nat(n), true),
            _ => {
                self.note(TracePoint::Router, &dgram, Fate::NoRoute, false);
                return;
            }
        };
        if self.partitioned(from, next) {
            self.note(
                TracePoint::Link { node: next, up },
                &dgram,
                Fate::Partitioned,
                false,
            );
            return;
        }
        match (next, up) {
            (DeviceId::Nat(n), true) => self.nat_outbound(n, dgram),
            (node, _) => self.cross(node, false, dgram, false),
        }
    }

    /// A datagram came down `to`'s link.
    pub(crate) fn reach(&mut self, to: DeviceId, dgram: Datagram) {
        match to {
            DeviceId::Host(h) => self.deliver(h, dgram),
            DeviceId::Nat(n) => self.nat_inbound(n, dgram),
        }
    }

    fn nat_drop(&mut self, n: NatId, dgram: &Datagram, drop: NatDrop) {
        let fate = match drop {
            NatDrop::NoMapping => Fate::NoMapping,
            NatDrop::Filtered => Fate::Filtered,
            NatDrop::PortsExhausted => Fate::PortsExhausted,
        };
        self.note(TracePoint::Nat(n), dgram, fate, false);
    }

    fn nat_outbound(&mut self, n: NatId, mut dgram: Datagram) {
        let now = self.now;
        let Some(slot) = self.nats.get_mut(n.index()) else {
            return;
        };
        if !dgram.dst.is_ipv4() {
            // NATs translate IPv4 only.
            self.note(TracePoint::Nat(n), &dgram, Fate::NoRoute, false);
            return;
        }
        let hairpin = dgram.dst.ip() == slot.nat.external();
        if hairpin && !slot.nat.config().hairpinning {
            self.note(TracePoint::Nat(n), &dgram, Fate::NoHairpinning, false);
            return;
        }
        if dgram.ttl <= 1 {
            // Dropped by the forward, before any translation: no mapping.
            self.note(TracePoint::Nat(n), &dgram, Fate::TtlExpired, false);
            return;
        }
        dgram.ttl -= 1;
        let external = match slot.nat.outbound(now, dgram.src, dgram.dst) {
            Ok(a) => a,
            Err(e) => return self.nat_drop(n, &dgram, e),
        };
        dgram.src = external;
        if !hairpin {
            self.note(TracePoint::Nat(n), &dgram, Fate::Translated, false);
            self.cross(DeviceId::Nat(n), true, dgram, false);
            return;
        }
        // RFC 4787 §6: back inside, from the external mapping of the sender, through
        // the destination's binding and filter like any inbound datagram.
        let Some(slot) = self.nats.get_mut(n.index()) else {
            return;
        };
        match slot.nat.inbound(now, dgram.src, dgram.dst) {
            Ok(internal) => {
                dgram.dst = internal;
                self.note(TracePoint::Nat(n), &dgram, Fate::Hairpinned, false);
                self.route(Realm::Inside(n), DeviceId::Nat(n), dgram);
            }
            Err(e) => self.nat_drop(n, &dgram, e),
        }
    }

    fn nat_inbound(&mut self, n: NatId, mut dgram: Datagram) {
        let now = self.now;
        let Some(slot) = self.nats.get_mut(n.index()) else {
            return;
        };
        match slot.nat.inbound(now, dgram.src, dgram.dst) {
            Ok(_) if dgram.ttl <= 1 => {
                // The binding saw it (and was refreshed, if inbound traffic does
                // that); the forward inside drops it.
                self.note(TracePoint::Nat(n), &dgram, Fate::TtlExpired, false);
            }
            Ok(internal) => {
                dgram.dst = internal;
                dgram.ttl -= 1;
                self.note(TracePoint::Nat(n), &dgram, Fate::Translated, false);
                self.route(Realm::Inside(n), DeviceId::Nat(n), dgram);
            }
            Err(e) => self.nat_drop(n, &dgram, e),
        }
    }

    fn deliver(&mut self, host: HostId, dgram: Datagram) {
        let Some(h) = self.hosts.get(host.index()) else {
            return;
        };
        let fate = if h.machine.is_none() {
            Fate::HostDown
        } else if Some(dgram.dst) != h.v4
            && Some(dgram.dst) != h.v6
            && !h.extra.contains(&dgram.dst)
            && !h.pool.as_deref().is_some_and(|p| p.has(dgram.dst))
        {
            Fate::PortUnreachable
        } else {
            Fate::Delivered
        };
        self.note(TracePoint::Host(host), &dgram, fate, false);
        if fate != Fate::Delivered {
            return;
        }
        let now = self.now();
        if let Some(h) = self.hosts.get_mut(host.index()) {
            if let Some(m) = h.machine.as_mut() {
                let _span = crate::host::host_span(host, &h.name, self.now).entered();
                m.handle_datagram(now, dgram.dst, dgram.src, &dgram.payload);
            }
        }
        self.drain(host, false);
    }
}
