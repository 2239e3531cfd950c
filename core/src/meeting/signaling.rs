//! The meeting's signaling: `dm_signal` messages out (hellos, parameters, byes) and in,
//! authenticated, checked against replays, and acted on.

use std::net::SocketAddr;
use std::time::Instant;

use super::Meeting;
use crate::event::{Event, PeerGone};
use crate::meeting::signal::{DmSignal, DmSignalBody, DmSignalError, MemberId};
use crate::nat::NatClass;
use crate::webrtc::{CandidateKind, IceCandidate};

impl Meeting {
    pub(super) fn queue_signal(&mut self, to_addr: SocketAddr, to: Option<MemberId>, body: DmSignalBody) {
        self.seq += 1;
        let nat = match body {
            DmSignalBody::Hello | DmSignalBody::Params(_) => self.nat,
            DmSignalBody::Bye => NatClass::Unknown,
        };
        let signal = DmSignal {
            node_id: self.node_id,
            from: self.me,
            to,
            seq: self.seq,
            nat,
            body,
        };
        self.signals
            .push_back((to_addr, signal.encode_args(&self.keys.signaling)));
        self.stats.signals_sent += 1;
    }

    pub(super) fn send_due_hellos(&mut self) {
        for addr in self.contacts.due_hellos(self.now, self.config.hello_every) {
            self.queue_signal(addr, None, DmSignalBody::Hello);
        }
    }

    /// The arguments of a `dm_signal` query that arrived from `from`. Returns whether it
    /// was valid: a member's, authenticated, for us and new. Only a valid one is
    /// acknowledged; anything else is answered as a node outside any meeting answers,
    /// so that nobody without the meeting keys can learn that we are a member.
    pub fn handle_signal(&mut self, now: Instant, from: SocketAddr, args: &[u8]) -> bool {
        self.advance(now);
        if self.left {
            return false;
        }
        let signal = match DmSignal::decode_args(args, &self.keys.signaling, self.me) {
            Ok(s) => s,
            Err(e) => {
                self.count(e);
                return false;
            }
        };
        if signal.from == self.me {
            // Our own hello, via our own address in the DHT.
            return false;
        }
        if let Err(e) = self.replay.check(signal.from, signal.seq, self.now) {
            // A replay is refused like a forgery: a copy of a member's message, sent to
            // other addresses, must not tell which of them are members.
            self.count(e);
            return false;
        }
        self.act_on(from, signal);
        true
    }

    /// Acts on a valid signal from `from`.
    fn act_on(&mut self, from: SocketAddr, signal: DmSignal) {
        self.stats.signals_accepted += 1;
        self.contacts.answered(from, signal.from);
        let member = signal.from;
        let nat = signal.nat;
        match signal.body {
            DmSignalBody::Hello => {
                if !self.peers.contains_key(&member) {
                    self.start_session(member, from);
                }
                if let Some(peer) = self.peers.get_mut(&member) {
                    peer.nat = nat;
                }
            }
            DmSignalBody::Params(params) => {
                let known = self.peers.get(&member).and_then(|p| p.remote_ufrag.clone());
                if known.as_deref() == Some(params.ufrag.as_str()) {
                    return; // The same parameters again.
                }
                if known.is_some() || self.peers.get(&member).is_some_and(|p| p.session.is_none()) {
                    // The member restarted its session: start ours afresh.
                    self.drop_session(&member);
                }
                if self.peers.get(&member).is_none_or(|p| p.session.is_none())
                    && !self.start_session(member, from)
                {
                    return;
                }
                if let Some(peer) = self.peers.get_mut(&member) {
                    peer.addr = from;
                    peer.nat = nat;
                    peer.remote_ufrag = Some(params.ufrag.clone());
                    if let Some(session) = &mut peer.session {
                        if session.set_remote(&params).is_err() {
                            tracing::debug!(%member, "unusable session parameters");
                        }
                        // Its signaling came over a predicted path: that address is
                        // one the member's NAT lets us reach, whatever it signaled.
                        let signaled = params.candidates.iter().any(|c| c.addr == from);
                        if self.prediction.is_predicted(from) && !signaled {
                            let path = IceCandidate {
                                kind: CandidateKind::ServerReflexive,
                                addr: from,
                            };
                            let _ = session.add_remote_candidate(path);
                        }
                    }
                }
                self.settle(&member);
            }
            DmSignalBody::Bye => {
                if self.peers.contains_key(&member) {
                    self.drop_session(&member);
                    self.peers.remove(&member);
                    self.out.events.push_back(Event::PeerDisconnected {
                        member,
                        reason: PeerGone::Left,
                    });
                }
            }
        }
    }

    fn count(&mut self, e: DmSignalError) {
        match e {
            DmSignalError::Malformed(_) => self.stats.dropped_malformed += 1,
            DmSignalError::BadMac => self.stats.dropped_bad_mac += 1,
            DmSignalError::NotForUs => self.stats.dropped_not_for_us += 1,
            DmSignalError::Replayed => self.stats.dropped_replayed += 1,
        }
    }

}
