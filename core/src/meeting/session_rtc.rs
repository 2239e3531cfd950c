//! The inside of a [`Session`]: calls into str0m (with `fastrand` reseeded), draining its
//! outputs, the SCTP in-flight budget, frame writing, and closing. Split from
//! `session.rs` to keep each file readable in one sitting.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::Protocol;
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};

use super::session_framing::FramingError;
use crate::Transmit;

use super::session::{
    BUDGET_RATE, CandidateKind, DisconnectReason, IceCandidate, MAX_REMOTE_ADDRS, MIN_SCTP_BUDGET,
    MIN_TICK, Phase, Session, SessionEvent,
};

impl Session {
    /// Calls into str0m with `fastrand`'s thread-local generator seeded from this
    /// session's own stream, then advances the stream. This is the one place where
    /// str0m's draws (ICE tie-breaker, STUN transaction ids) happen, so they depend on
    /// nothing but the seed and the inputs, whatever else runs on the thread.
    pub(crate) fn rtc_call<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> R {
        fastrand::seed(self.fastrand_state);
        let r = f(&mut self.rtc);
        self.fastrand_state = fastrand::u64(..);
        r
    }

    pub(crate) fn rtc_input(&mut self, input: Input<'_>) {
        if self.rtc_call(|rtc| rtc.handle_input(input)).is_err() && !self.rtc.is_alive() {
            self.drain();
            self.close_with(DisconnectReason::HandshakeFailed);
        }
    }

    pub(crate) fn remember_remote(&mut self, addr: SocketAddr) {
        if !self.remote_addrs.contains(&addr) && self.remote_addrs.len() < MAX_REMOTE_ADDRS {
            self.remote_addrs.push(addr);
        }
    }

    /// Drains str0m to its next timeout (str0m's one rule: every mutation is followed
    /// by a full drain).
    pub(crate) fn drain(&mut self) {
        // A bounded number of errors in a row: str0m may report several, but a stuck
        // error must not hang the caller.
        let mut errors = 0;
        while errors < 16 {
            match self.rtc_call(|rtc| rtc.poll_output()) {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = Some(t);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let contents: Vec<u8> = t.contents.into();
                    self.stats.datagrams_sent += 1;
                    self.stats.datagram_bytes_sent += contents.len() as u64;
                    self.transmits.push_back(Transmit {
                        destination: t.destination,
                        contents,
                    });
                }
                Ok(Output::Event(e)) => self.on_rtc_event(e),
                Err(_) => {
                    errors += 1;
                    if !self.rtc.is_alive() {
                        self.close_with(DisconnectReason::HandshakeFailed);
                        return;
                    }
                }
            }
        }
    }

    pub(super) fn on_rtc_event(&mut self, event: RtcEvent) {
        if self.phase == Phase::Closed {
            return;
        }
        match event {
            RtcEvent::Connected => {
                self.dtls_connected = true;
                self.maybe_connected();
            }
            RtcEvent::ChannelOpen(id, _) if self.channel.is_none() && self.adopt_channel => {
                // SDP path: the first channel the peer opens is the session's.
                self.channel = Some(id);
                self.on_rtc_event(RtcEvent::ChannelOpen(id, String::new()));
            }
            RtcEvent::ChannelData(data) if Some(data.id) == self.channel && self.is_plain() => {
                self.on_plain_message(data.data);
            }
            RtcEvent::ChannelOpen(id, _) if Some(id) == self.channel => {
                let low = self.config.sctp_buffer / 2;
                if let Some(mut ch) = self.rtc.channel(id) {
                    ch.set_buffered_amount_low_threshold(low);
                }
                self.channel_open = true;
                self.maybe_connected();
            }
            RtcEvent::ChannelData(data) if Some(data.id) == self.channel => {
                match self.reassembly.push(data.data) {
                    Ok(Some(message)) => {
                        self.stats.messages_received += 1;
                        self.stats.bytes_received += message.len() as u64;
                        self.events.push_back(SessionEvent::Message(message));
                    }
                    Ok(None) => {}
                    Err(
                        FramingError::BadTag
                        | FramingError::Truncated
                        | FramingError::TooLarge
                        | FramingError::OutOfSequence,
                    ) => {
                        self.stats.malformed_frames += 1;
                    }
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
                    self.stats.rtt = Some(rtt);
                    self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
                }
            }
            // ChannelBufferedAmountLow: `settle` writes more after every drain anyway.
            _ => {}
        }
    }

    /// Connected once DTLS is up and the channel open, whichever comes last.
    pub(super) fn maybe_connected(&mut self) {
        if !self.dtls_connected || !self.channel_open {
            return;
        }
        if let Phase::Connecting { deadline } = self.phase {
            self.handshake_rtt = deadline
                .checked_sub(self.config.connect_timeout)
                .map(|started| self.now.saturating_duration_since(started) / 2);
            self.phase = Phase::Connected;
            self.last_received = self.now;
            self.events.push_back(SessionEvent::Connected);
        }
    }

    /// Drains str0m, then moves queued frames into SCTP while it takes them and drains
    /// once more, then makes sure the next timeout is in the future.
    pub(crate) fn settle(&mut self) {
        self.unsettled = 0;
        self.drain();
        let wrote = self.phase == Phase::Connected && self.write_frames();
        if wrote {
            // One drain for all the frames written (a drain costs a walk over all of
            // SCTP's in-flight chunks, see `sctp_budget`).
            self.drain();
            // str0m 0.25 may hold newly written SCTP data until its next input at a
            // later instant: without a wakeup it waits for an unrelated timer (up to
            // the ICE keepalive). Ask to be woken at once.
            let soon = self.now + MIN_TICK;
            self.rtc_timeout = Some(self.rtc_timeout.map_or(soon, |t| t.min(soon)));
        }
        if self.want_writable
            && self.send_queue.queued_bytes() <= self.config.send_queue_limit / 2
            && self.phase != Phase::Closed
        {
            self.want_writable = false;
            self.events.push_back(SessionEvent::Writable);
        }
        // str0m asks for an immediate wakeup while it has internal work (opening the
        // channel, DTLS flights). Give it that now, a few times, rather than making the
        // driver spin at one instant.
        let now = self.now;
        for _ in 0..3 {
            if self.phase == Phase::Closed || self.rtc_timeout.is_none_or(|t| t > now) {
                break;
            }
            self.rtc_input(Input::Timeout(now));
            self.drain();
        }
        if self.rtc_timeout.is_some_and(|t| t <= now) {
            self.rtc_timeout = Some(now + MIN_TICK);
        }
    }

    /// How many bytes str0m's SCTP buffer may hold: enough for [`BUDGET_RATE`] over the
    /// path's RTT (the smallest ICE measurement, or the handshake's estimate until ICE
    /// has one), at least [`MIN_SCTP_BUDGET`], at most [`SessionConfig::sctp_buffer`].
    ///
    /// sctp-proto 0.10 walks every in-flight chunk (three times) on each poll, so the CPU
    /// cost per datagram grows with the bytes in flight: on a sub-millisecond path a full
    /// 1 MiB buffer buys no throughput and costs three times the CPU of 128 KiB.
    ///
    /// The *smallest* RTT, not the latest: an ICE check sent during a transfer waits
    /// behind our own data, so the latest sample measures our queue. Sizing the budget
    /// from it fed back on itself (a bigger budget, a slower poll, a longer queue, a
    /// bigger sample: 0.15 ms grew to 160 ms and throughput fell 4× over 25 transfers on
    /// loopback). The minimum is the path's delay, as in BBR's `min_rtt`; a session is
    /// short-lived enough (it ends with the path) that no window is needed.
    pub(super) fn sctp_budget(&self) -> usize {
        let max = self.config.sctp_buffer;
        match self.min_rtt.or(self.handshake_rtt) {
            Some(rtt) => {
                let bdp = (rtt.as_secs_f64() * BUDGET_RATE).min(max as f64) as usize;
                bdp.max(MIN_SCTP_BUDGET).min(max)
            }
            None => max,
        }
    }

    /// Hands queued frames to SCTP while it takes them and its buffer stays within
    /// [`Session::sctp_budget`]; `true` if it took any.
    ///
    /// A frame that does not fit is cut to the room left (down to `MIN_SPLIT_FRAME`)
    /// rather than held back: the receiver's SCTP delays the acknowledgement of an odd
    /// last packet by 200 ms, so a sender that waits for a whole frame's room while a
    /// few bytes are still unacknowledged waits 200 ms per frame (a 64 KiB budget moved
    /// 16 MiB in 12.8 s of virtual time at zero delay this way, instead of none).
    pub(super) fn write_frames(&mut self) -> bool {
        let Some(id) = self.channel else {
            return false;
        };
        if self.is_plain() {
            return self.write_plain(id);
        }
        let budget = self.sctp_budget();
        fastrand::seed(self.fastrand_state);
        let mut wrote = false;
        while let Some(mut ch) = self.rtc.channel(id) {
            let room = budget.saturating_sub(ch.buffered_amount());
            // Checked before the frame is built: a refused frame would be a 64 KiB copy
            // for nothing, on every input while SCTP is full.
            match self.send_queue.next_frame_len(room) {
                Some(len) if len <= room => {}
                _ => break,
            }
            let Some(body) = self.send_queue.next_frame(&mut self.frame, room) else {
                break;
            };
            if !ch.write(true, &self.frame).unwrap_or(false) {
                break;
            }
            wrote = true;
            if self.send_queue.advance(body) {
                self.stats.messages_sent += 1;
            }
            self.stats.bytes_sent += body as u64;
        }
        self.fastrand_state = fastrand::u64(..);
        wrote
    }

    pub(crate) fn close_with(&mut self, reason: DisconnectReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.events.push_back(SessionEvent::Disconnected { reason });
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Connected => Some(self.last_received + self.config.idle_timeout),
            Phase::New | Phase::Closed => None,
        }
    }
}

/// A str0m candidate for a signaled remote candidate.
pub(super) fn remote_candidate(c: &IceCandidate) -> Option<Candidate> {
    match c.kind {
        CandidateKind::Host => Candidate::host(c.addr, Protocol::Udp).ok(),
        // The peer's base address is not signaled; str0m only uses it for priorities.
        CandidateKind::ServerReflexive => {
            Candidate::server_reflexive(c.addr, c.addr, Protocol::Udp).ok()
        }
    }
}
