//! One member of the meeting as we see it: its WebRTC session (if one runs), the
//! delivery layer that carries messages exactly once across sessions, and its timers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::delivery::{Delivery, Received};
use super::signal::MemberId;
use crate::event::Event;
use crate::nat::NatClass;
use crate::transmit::{SansIo, Transmit};
use crate::webrtc::{DisconnectReason, Outgoing, Session, SessionEvent, SessionStats};

/// How long an acknowledgement may wait for more deliveries to share it.
const ACK_DELAY: Duration = Duration::from_millis(50);

/// What the meeting's members produced: datagrams to send and events for the application.
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<Event>,
}

/// How a member was reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Via {
    /// Over the addresses ICE had from signaling (or learnt from the member's checks).
    #[default]
    Direct,
    /// Over a path port prediction found (`docs/port-prediction.md`).
    Predicted,
}

impl Via {
    /// The name in `dhtmeet join`'s JSON events: `direct`, `predicted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Predicted => "predicted",
        }
    }
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    /// How its session reaches it.
    pub(super) via: Via,
    pub(super) session: Option<Session>,
    pub(super) remote_ufrag: Option<String>,
    pub(super) connected: bool,
    pub(super) attempts: u32,
    pub(super) retry_at: Option<Instant>,
    /// The session must be connected by then (covers waiting for the member's
    /// parameters, which the session's own connect timeout does not).
    pub(super) connect_by: Option<Instant>,
    /// Sequence numbers, acknowledgements and the messages awaiting them.
    pub(super) delivery: Delivery,
    /// When a pending acknowledgement must go out at the latest.
    ack_at: Option<Instant>,
    /// The member's NAT class, as its latest hello or parameters said (for port
    /// prediction; a claim, not verified).
    pub(super) nat: NatClass,
}

impl Peer {
    pub(super) fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            via: Via::Direct,
            session: None,
            remote_ufrag: None,
            connected: false,
            attempts: 0,
            retry_at: None,
            connect_by: None,
            delivery: Delivery::default(),
            ack_at: None,
            nat: NatClass::Unknown,
        }
    }

    /// The session's counters (and RTT) with the application's own message and byte
    /// counts: payload only, without the delivery frame or the acknowledgements.
    pub(super) fn application_stats(&self) -> Option<SessionStats> {
        let session = self.session.as_ref()?.stats();
        Some(self.delivery.application_stats(session))
    }

    /// When this member next needs `handle_timeout`.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        let session = self.session.as_ref().and_then(|s| s.poll_timeout());
        [session, self.retry_at, self.connect_by, self.ack_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the owed acknowledgement must go out by `now`.
    pub(super) fn ack_due(&self, now: Instant) -> bool {
        self.ack_at.is_some_and(|t| t <= now)
    }

    /// The ack went out, or there is no session to send it on: wait for the next event.
    pub(super) fn ack_handled(&mut self) {
        self.ack_at = None;
    }

    /// Closes the session (if any), flushing its last datagrams.
    pub(super) fn drop_session(&mut self, transmits: &mut VecDeque<Transmit>) {
        if let Some(mut s) = self.session.take() {
            s.close();
            s.take_transmits(transmits);
        }
        self.remote_ufrag = None;
        self.connected = false;
    }

    /// Hands a connected session what waits: an owed acknowledgement, then unsent
    /// messages in order, until its queue is full.
    pub(super) fn pump(&mut self, transmits: &mut VecDeque<Transmit>) {
        if !self.connected {
            return;
        }
        let Some(session) = &mut self.session else {
            return;
        };
        if self.delivery.ack_pending() {
            if let Some(ack) = self.delivery.take_ack(true) {
                if session.send_message(Outgoing::Shared(ack), true).is_ok() {
                    self.ack_at = None;
                }
            }
        }
        // Each frame is shared with the session's queue, not copied.
        self.delivery
            .send_unsent(|frame| session.send_message(Outgoing::Shared(frame), true).is_ok());
        session.take_transmits(transmits);
    }

    /// Drains the session's outputs: datagrams, and its events turned into the
    /// application's. Returns why the session failed, if it did.
    pub(super) fn settle(
        &mut self,
        now: Instant,
        member: MemberId,
        out: &mut Outputs,
    ) -> Option<DisconnectReason> {
        let session = self.session.as_mut()?;
        session.take_transmits(&mut out.transmits);
        let mut failed = None;
        let mut pump = false;
        while let Some((e, lead)) = session.poll_event_framed() {
            match e {
                SessionEvent::Connected => {
                    self.connected = true;
                    self.attempts = 0;
                    self.connect_by = None;
                    // A new session: whatever was not acknowledged goes again.
                    self.delivery.restart();
                    pump = true;
                    out.events.push_back(Event::PeerConnected {
                        member,
                        via: self.via,
                    });
                }
                SessionEvent::Message(frame) => match self.delivery.receive(frame, lead) {
                    Received::Message(data) => {
                        out.events.push_back(Event::Message { member, data });
                        if self.delivery.ack_due_now() {
                            pump = true;
                        } else if self.ack_at.is_none() {
                            self.ack_at = Some(now + ACK_DELAY);
                        }
                    }
                    Received::Duplicate => {
                        if self.ack_at.is_none() {
                            self.ack_at = Some(now + ACK_DELAY);
                        }
                    }
                    Received::Ack => pump = true,
                    Received::Malformed => {}
                },
                SessionEvent::Writable => {
                    pump = true;
                    out.events.push_back(Event::Writable { member });
                }
                SessionEvent::Disconnected { reason } => failed = Some(reason),
            }
        }
        if failed.is_none() && pump {
            self.pump(&mut out.transmits);
        }
        failed
    }
}
