//! How a [`Session`] runs str0m: inputs in, outputs drained (datagrams to
//! `poll_transmit`, events to the parts that own what they change), queued messages
//! written, and closing.

use str0m::{Event as RtcEvent, Input, Output, Rtc};

use super::{DisconnectReason, MIN_TICK, Session, SessionEvent};
use crate::Transmit;

impl Session {
    /// Calls into str0m (through [`SeededRtc::call`](super::SeededRtc::call), so on the
    /// session's own `fastrand` stream). For the SDP path's negotiation.
    pub(crate) fn rtc_call<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> R {
        self.rtc.call(f)
    }

    pub(super) fn rtc_input(&mut self, input: Input<'_>) {
        if self.rtc.call(|rtc| rtc.handle_input(input)).is_err() && !self.rtc.inspect(Rtc::is_alive)
        {
            self.drain();
            self.close_with(DisconnectReason::HandshakeFailed);
        }
    }

    /// Drains str0m to its next timeout (str0m's one rule: every mutation is followed
    /// by a full drain).
    pub(super) fn drain(&mut self) {
        // A bounded number of errors in a row: str0m may report several, but a stuck
        // error must not hang the caller.
        let mut errors = 0;
        while errors < 16 {
            match self.rtc.call(|rtc| rtc.poll_output()) {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = Some(t);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let contents: Vec<u8> = t.contents.into();
                    self.datagrams.sent += 1;
                    self.datagrams.bytes_sent += contents.len() as u64;
                    self.transmits
                        .push_back(Transmit::new(t.destination, contents));
                }
                Ok(Output::Event(e)) => self.on_rtc_event(e),
                Err(_) => {
                    errors += 1;
                    if !self.rtc.inspect(Rtc::is_alive) {
                        self.close_with(DisconnectReason::HandshakeFailed);
                        return;
                    }
                }
            }
        }
    }

    fn on_rtc_event(&mut self, event: RtcEvent) {
        if self.liveness.is_closed() {
            return;
        }
        let now = self.now;
        match event {
            RtcEvent::Connected => {
                let connected = self.liveness.dtls_up(now);
                self.report_connected(connected);
            }
            RtcEvent::ChannelOpen(id, _) if self.channel.is_none() && self.adopt_channel => {
                // SDP path: the first channel the peer opens is the session's.
                self.channel = Some(id);
                self.on_rtc_event(RtcEvent::ChannelOpen(id, String::new()));
            }
            RtcEvent::ChannelOpen(id, _) if Some(id) == self.channel => {
                let low = self.config.sctp_buffer / 2;
                self.rtc.call(|rtc| {
                    if let Some(mut ch) = rtc.channel(id) {
                        ch.set_buffered_amount_low_threshold(low);
                    }
                });
                let connected = self.liveness.channel_up(now);
                self.report_connected(connected);
            }
            RtcEvent::ChannelData(data) if Some(data.id) == self.channel => {
                if let Some(message) = self.receive.on_data(data.data) {
                    self.events.push_back(SessionEvent::Message(message));
                }
            }
            RtcEvent::ChannelClose(id) if Some(id) == self.channel => {
                self.close_with(DisconnectReason::ClosedByPeer);
            }
            RtcEvent::Closed => self.close_with(DisconnectReason::ClosedByPeer),
            RtcEvent::PeerStats(s) => {
                if let Some(rtt) = s
                    .selected_candidate_pair
                    .and_then(|p| p.current_round_trip_time)
                {
                    self.liveness.observe_rtt(rtt);
                }
            }
            // ChannelBufferedAmountLow: `settle` writes more after every drain anyway.
            _ => {}
        }
    }

    /// Drains str0m, then moves queued messages into SCTP while it takes them and
    /// drains once more, then makes sure the next timeout is in the future.
    pub(crate) fn settle(&mut self) {
        self.unsettled = 0;
        self.drain();
        let wrote = self.liveness.is_connected() && self.write();
        if wrote {
            // One drain for all the frames written (a drain costs a walk over all of
            // SCTP's in-flight chunks, see `SendPath::budget`).
            self.drain();
            // str0m 0.25 may hold newly written SCTP data until its next input at a
            // later instant: without a wakeup it waits for an unrelated timer (up to
            // the ICE keepalive). Ask to be woken at once.
            let soon = self.now + MIN_TICK;
            self.rtc_timeout = Some(self.rtc_timeout.map_or(soon, |t| t.min(soon)));
        }
        if !self.liveness.is_closed() && self.send.take_writable() {
            self.events.push_back(SessionEvent::Writable);
        }
        // str0m asks for an immediate wakeup while it has internal work (opening the
        // channel, DTLS flights). Give it that now, a few times, rather than making the
        // driver spin at one instant.
        let now = self.now;
        for _ in 0..3 {
            if self.liveness.is_closed() || self.rtc_timeout.is_none_or(|t| t > now) {
                break;
            }
            self.rtc_input(Input::Timeout(now));
            self.drain();
        }
        if self.rtc_timeout.is_some_and(|t| t <= now) {
            self.rtc_timeout = Some(now + MIN_TICK);
        }
    }

    /// Hands queued messages to SCTP (see `SendPath::write`); `true` if it took any.
    fn write(&mut self) -> bool {
        let Some(id) = self.channel else {
            return false;
        };
        let path_rtt = self.liveness.path_rtt();
        let send = &mut self.send;
        self.rtc.call(|rtc| send.write(rtc, id, path_rtt))
    }

    /// The SCTP budget the send path writes within now (see `SendPath::budget`).
    #[cfg(test)]
    pub(super) fn sctp_budget(&self) -> usize {
        self.send.budget(self.liveness.path_rtt())
    }

    /// DTLS up or the channel open made the session connected: say so.
    fn report_connected(&mut self, connected: bool) {
        if connected {
            self.events.push_back(SessionEvent::Connected);
        }
    }

    pub(super) fn close_with(&mut self, reason: DisconnectReason) {
        if self.liveness.close() {
            self.events.push_back(SessionEvent::Disconnected { reason });
        }
    }
}
