//! What the node learns about its public address and its NAT: STUN rounds (the public
//! address, the BEP 42 id, the DHT's read-only switch, the meeting's reflexive
//! candidates), and the [`NatObserver`](crate::nat::NatObserver) fed from STUN answers
//! and the `ip` DHT nodes report, whose class the health snapshot shows and the meeting
//! shares with members.

use std::net::SocketAddr;

use super::Node;
use crate::dht::LookupKind;
use crate::event::Event;
use crate::nat::{NatClass, NatObservation, ObservationSource};
use crate::stun::{Mapping, StunEvent};
use crate::transmit::canonical_remote;

impl Node {
    /// How the NAT in front of our socket maps it (see `docs/stun.md`): what port
    /// prediction needs to know about us.
    pub fn nat_class(&self) -> NatClass {
        self.nat.class()
    }

    /// The observations of our public address the class rests on, oldest first (at
    /// most [`crate::nat::MAX_OBSERVATIONS`]).
    pub fn nat_observations(&self) -> impl ExactSizeIterator<Item = &NatObservation> {
        self.nat.observations()
    }

    /// Our socket's address, as the observer must know it (a new one starts afresh).
    pub(super) fn note_local(&mut self) {
        if let Some(local) = self.local {
            let changed = self.nat.set_local(local);
            self.nat_changed(changed);
        }
    }

    /// A DHT node we queried said where it saw us (BEP 42).
    pub(super) fn observe_dht_address(&mut self, by: SocketAddr, address: SocketAddr) {
        let changed = self.nat.observe(by, address, ObservationSource::Dht);
        self.nat_changed(changed);
    }

    fn nat_changed(&mut self, class: Option<NatClass>) {
        self.follow_public();
        let Some(class) = class else { return };
        tracing::info!(nat = %class, observations = self.nat.observations().len(), "NAT class");
        if let Some(m) = &mut self.meeting {
            m.set_nat_class(class);
        }
    }

    /// Follows our public address when the NAT moves it: a Linux masquerade router
    /// gives every new flow the port of the newest one, so once one flow was diverted
    /// (`docs/port-prediction.md`, "Bare masquerade"), new contacts see us at another
    /// port than the one announced. The meeting then announces that port explicitly (an
    /// `implied_port` announce to a storage node we already talk to would still show the
    /// old one) and counts it as its own address.
    fn follow_public(&mut self) {
        let public = self.nat.public();
        let moved = match (self.public, public) {
            (Some(old), Some(new)) => old != new,
            _ => false,
        };
        if public.is_some() {
            self.public = public;
        }
        let (true, Some(public)) = (moved, public) else {
            return;
        };
        tracing::info!(%public, "our public port moved: announcing it");
        self.stats.public_moves += 1;
        let Some(m) = &mut self.meeting else { return };
        m.add_reflexive(public);
        let topic = m.topic();
        if let Some(dht) = &mut self.dht {
            let kind = LookupKind::Announce {
                port: Some(public.port()),
            };
            if let Err(e) = dht.watch(self.now, topic, kind) {
                tracing::debug!(error = %e, "re-announcing the moved port failed");
            }
        }
    }

    /// A STUN event: a finished round's answers are observations of our address.
    pub(super) fn on_stun_event(&mut self, event: StunEvent) {
        let report = match event {
            StunEvent::Observed(o) => {
                tracing::debug!(server = %o.server, mapped = %o.mapped, rtt = ?o.rtt, "STUN answer");
                return;
            }
            StunEvent::ServerFailed { server, reason } => {
                tracing::debug!(%server, %reason, "STUN server failed");
                return;
            }
            StunEvent::Finished(Err(e)) => {
                self.stun_rounds_finished += 1;
                self.stun_reachable = false;
                self.events.push_back(Event::StunUnreachable(e));
                return;
            }
            StunEvent::Finished(Ok(report)) => report,
        };
        self.stun_rounds_finished += 1;
        self.stun_reachable = true;
        let now = self.now;
        if let Some(dht) = &mut self.dht {
            // BEP 42: a DHT id bound to our public IP, once we know it.
            if report.mapping == Mapping::EndpointIndependent {
                dht.set_public_ip(now, report.first.mapped.ip());
            }
            // After the BEP 42 id, so that a switch to answering looks the new id up.
            if self.auto_read_only {
                // Public: the address the world sees is our socket's own. A NAT may
                // appear or go away between rounds; follow the latest.
                let public = self
                    .local
                    .is_some_and(|l| canonical_remote(l) == canonical_remote(report.first.mapped));
                dht.set_read_only(now, !public);
            }
        }
        if let Some(m) = &mut self.meeting {
            for o in &report.observations {
                m.add_reflexive(o.mapped);
            }
        }
        self.note_local();
        let changed = self.nat.observe_stun_round(&report);
        self.nat_changed(changed);
        self.latest_report = Some(report.clone());
        self.events.push_back(Event::AddressDiscovered(report));
    }
}
