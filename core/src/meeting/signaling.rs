//! The meeting's signaling: `dm_signal` messages out (hellos, parameters, byes) and in,
//! authenticated, checked against replays, proven fresh by a challenge, and acted on.

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
        let (nat, echo) = match body {
            DmSignalBody::Hello { .. } | DmSignalBody::Params(_) => {
                // Echo the latest challenge of the member there (not another's).
                let echo = self.challenges.to_echo(self.now, to_addr);
                let echo = echo.filter(|(m, _)| to.is_none_or(|to| to == *m));
                (self.nat, echo.map(|(_, c)| c))
            }
            DmSignalBody::Bye => (NatClass::Unknown, None),
        };
        let signal = DmSignal {
            node_id: self.node_id,
            from: self.me,
            to,
            seq: self.seq,
            echo,
            nat,
            body,
        };
        self.signals
            .push_back((to_addr, signal.encode_args(&self.keys.signaling)));
        self.stats.signals_sent += 1;
    }

    pub(super) fn send_due_hellos(&mut self) {
        for addr in self.contacts.due_hellos(self.now, self.config.hello_every) {
            self.send_hello(addr);
        }
    }

    /// A hello to `addr`: our challenge for it, and the echo of the member's there (to
    /// that member), if it sent one.
    fn send_hello(&mut self, addr: SocketAddr) {
        let challenge = self.challenges.issue(self.now, addr);
        let to = self.challenges.to_echo(self.now, addr).map(|(m, _)| m);
        self.queue_signal(addr, to, DmSignalBody::Hello { challenge });
    }

    /// Unproven signaling from `addr`: answer with a hello (our challenge, and the echo of
    /// theirs), at most once per `ANSWER_GAP` per address.
    fn challenge(&mut self, addr: SocketAddr) {
        if self.challenges.may_answer(self.now, addr) {
            self.send_hello(addr);
        }
    }

    /// The arguments of a `dm_signal` query that arrived from `from`. Returns whether it
    /// was valid: a member's, authenticated, for us and new, and, unless it is a hello,
    /// from a member proven by a challenge. Only a valid one is acknowledged; anything
    /// else is answered as a node outside any meeting answers, so that nobody without
    /// the meeting keys can learn that we are a member. (An unproven hello is
    /// acknowledged and answered with a challenge: it may be a member's first.)
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
        let member = signal.from;
        if let DmSignalBody::Hello { challenge } = signal.body {
            self.challenges.received(self.now, from, member, challenge);
        }
        // Proven: it echoes a challenge we sent to this address, so its sender holds the
        // key now; or it comes from where a proven member is.
        let echoed = signal
            .echo
            .is_some_and(|e| self.challenges.proves(self.now, from, e));
        let known = self.peers.get(&member).is_some_and(|p| p.addr == from);
        if !echoed && !known {
            // A member we have not challenged yet, or a copy of an old message sent from
            // anywhere: it gets a challenge, never a session, parameters or a slot.
            self.challenge(from);
            if matches!(signal.body, DmSignalBody::Hello { .. }) {
                self.stats.unproven_hellos += 1;
                return true;
            }
            self.stats.dropped_unproven += 1;
            return false;
        }
        if !echoed && matches!(signal.body, DmSignalBody::Hello { .. }) {
            // A proven member that has not proven us (it lost its session, or our
            // answer): echo its challenge.
            self.challenge(from);
        }
        self.act_on(from, signal);
        true
    }

    /// Acts on a valid signal from `from`, whose sender is proven.
    fn act_on(&mut self, from: SocketAddr, signal: DmSignal) {
        self.stats.signals_accepted += 1;
        self.contacts.answered(from, signal.from);
        let member = signal.from;
        let nat = signal.nat;
        match signal.body {
            DmSignalBody::Hello { .. } => {
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
