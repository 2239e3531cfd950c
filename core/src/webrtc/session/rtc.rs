//! str0m's `Rtc`, sealed behind the session's own `fastrand` stream, and how a
//! [`Session`] runs it: inputs in, outputs drained (datagrams to `poll_transmit`, events
//! to the parts that own what they change), queued messages written, and closing.
//!
//! str0m draws ICE tie-breakers, STUN transaction ids and SCTP's initial TSN from
//! `fastrand`'s thread-local generator. A [`SeededRtc`] owns its `Rtc` and a `fastrand`
//! state derived from the session's seed, and reaches the `Rtc` only through
//! [`Seeded::call`], the one function in the core allowed to touch `fastrand` (the
//! read-only [`SeededRtc::inspect`] goes through it too). It seeds the thread's
//! generator from the session's stream, runs the closure, keeps the stream's new state
//! and puts the thread's previous state back, so str0m's draws depend on nothing but
//! the seed and the inputs, and a caller's own `fastrand` use on the same thread is
//! left exactly as it was.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::Rng as _;
use str0m::config::Fingerprint;
use str0m::ice::IceCreds;
use str0m::{Event as RtcEvent, Input, Output, Rtc, RtcConfig};

use super::{DisconnectReason, MIN_TICK, Session, SessionEvent};
use crate::{Seed, Transmit};

/// Characters of ICE credentials (RFC 8839 §5.4, `ice-char`).
pub(crate) const ICE_CHARS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A value (str0m's `Rtc`, or nothing while one is being built) and the `fastrand`
/// stream every call into it runs on.
pub(crate) struct Seeded<T> {
    inner: T,
    /// The session's own stream (see [`Seeded::call`]).
    fastrand_state: u64,
}

/// A str0m `Rtc` on its session's `fastrand` stream.
pub(crate) type SeededRtc = Seeded<Rtc>;

impl<T> Seeded<T> {
    /// Runs `f` on the value with `fastrand`'s thread-local generator seeded from the
    /// stream, keeps the stream's next state, and restores the thread's previous
    /// generator.
    ///
    /// The next state is one draw from the stream after `f` (not `get_seed`), so that
    /// the stream advances on every call whether or not str0m drew anything: that is
    /// how the session's stream has always advanced, and it keeps two calls in a row
    /// from replaying the same numbers to str0m.
    // The core's only use of `fastrand` (banned everywhere else in `core/clippy.toml`):
    // str0m reads this thread-local generator, so it must be set around each call into
    // str0m, and the caller's own state must come back afterwards.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn call<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let callers = fastrand::get_seed();
        fastrand::seed(self.fastrand_state);
        let r = f(&mut self.inner);
        self.fastrand_state = fastrand::u64(..);
        fastrand::seed(callers);
        r
    }
}

/// A freshly built [`SeededRtc`] and the local credentials it was built with.
pub(crate) struct BuiltRtc {
    pub rtc: SeededRtc,
    pub ufrag: String,
    pub pwd: String,
    /// Our DTLS certificate's SHA-256 fingerprint (`None` if str0m gave another hash).
    pub fingerprint: Option<[u8; 32]>,
}

impl SeededRtc {
    /// Builds the `Rtc` from `seed`'s children `{label}/ice-credentials`,
    /// `{label}/fastrand` and `{label}/dtls` (dimpl's RNG, see `dtls.rs`); `configure`
    /// adds the path's own settings. The one recipe both paths use (meetings'
    /// `Session::new` and the SDP path).
    pub(crate) fn build(
        now: Instant,
        seed: &Seed,
        label: &str,
        configure: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> BuiltRtc {
        let mut rng = seed.child(&format!("{label}/ice-credentials")).rng();
        let mut ice_string = |n: usize| -> String {
            (0..n)
                .map(|_| ICE_CHARS[(rng.next_u32() % 64) as usize] as char)
                .collect()
        };
        let ufrag = ice_string(8);
        let pwd = ice_string(24);
        let fr = seed.child(&format!("{label}/fastrand")).0;
        let dtls = seed.child(&format!("{label}/dtls")).0;
        let rtc_config = RtcConfig::new()
            .set_crypto_provider(super::dtls::crypto_provider())
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.clone(),
                pass: pwd.clone(),
            })
            .set_stats_interval(Some(Duration::from_secs(1)));
        let fastrand_state =
            u64::from_be_bytes([fr[0], fr[1], fr[2], fr[3], fr[4], fr[5], fr[6], fr[7]]);
        let dtls_seed = u64::from_be_bytes([
            dtls[0], dtls[1], dtls[2], dtls[3], dtls[4], dtls[5], dtls[6], dtls[7],
        ]);
        let mut stream = Seeded {
            inner: (),
            fastrand_state,
        };
        let (rtc, fp) = stream.call(|()| {
            let mut rtc =
                super::dtls::build_with_seed(dtls_seed, || configure(rtc_config).build(now));
            let fp: Fingerprint = rtc.direct_api().local_dtls_fingerprint().clone();
            (rtc, fp)
        });
        let rtc = Seeded {
            inner: rtc,
            fastrand_state: stream.fastrand_state,
        };
        let fingerprint = fp
            .hash_func
            .eq_ignore_ascii_case("sha-256")
            .then(|| fp.bytes.try_into().ok())
            .flatten();
        BuiltRtc {
            rtc,
            ufrag,
            pwd,
            fingerprint,
        }
    }

    /// Reads from str0m on the session's stream without advancing it: whatever a read
    /// draws is drawn again by the next call.
    pub(crate) fn inspect<R>(&mut self, f: impl FnOnce(&Rtc) -> R) -> R {
        let state = self.fastrand_state;
        let r = self.call(|rtc| f(rtc));
        self.fastrand_state = state;
        r
    }
}

impl Session {
    /// Calls into str0m (through [`Seeded::call`], so on the session's own `fastrand`
    /// stream). For the SDP path's negotiation.
    pub(crate) fn rtc_call<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> R {
        self.rtc.call(f)
    }

    pub(super) fn rtc_input(&mut self, input: Input<'_>) {
        if self.rtc.call(|rtc| rtc.handle_input(input)).is_err() {
            self.input_failed();
        }
    }

    /// str0m refused an input: if that ended it, the handshake failed.
    pub(super) fn input_failed(&mut self) {
        if !self.rtc.inspect(Rtc::is_alive) {
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
                if let Some((message, lead)) = self.receive.on_data(data.data) {
                    self.events
                        .push_back((SessionEvent::Message(message), lead));
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
        // Queued messages into SCTP, within the budget (see `SendPath::budget`).
        let wrote = match self.channel {
            Some(id) if self.liveness.is_connected() => {
                let budget = self.send.budget(self.liveness.path_rtt());
                let send = &mut self.send;
                if send.is_plain() {
                    self.rtc.call(|rtc| send.write_plain(rtc, id, budget))
                } else {
                    self.rtc.call(|rtc| send.write_framed(rtc, id, budget))
                }
            }
            _ => false,
        };
        if wrote {
            // One drain for all the frames written (a drain costs a walk over all of
            // SCTP's in-flight chunks, see `SendPath::budget`).
            self.drain();
            // A write on an idle session leaves in this drain (tested by
            // `a_small_message_on_an_idle_session_leaves_from_send_itself`). Written
            // data was once seen to wait for an unrelated timer instead (up to the ICE
            // keepalive, `docs/webrtc.md`): as a guard, ask to be woken at once.
            let soon = self.now + MIN_TICK;
            self.rtc_timeout = Some(self.rtc_timeout.map_or(soon, |t| t.min(soon)));
        }
        if !self.liveness.is_closed() && self.send.take_writable() {
            self.events.push_back((SessionEvent::Writable, 0));
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

    /// The SCTP budget the send path writes within now (see `SendPath::budget`).
    #[cfg(test)]
    pub(super) fn sctp_budget(&self) -> usize {
        self.send.budget(self.liveness.path_rtt())
    }

    /// Moves the session's datagrams to `out` (settling first if datagrams wait: see
    /// `Session::unsettled`): `poll_transmit` for a caller with a queue of its own.
    pub(crate) fn take_transmits(&mut self, out: &mut VecDeque<Transmit>) {
        if self.unsettled > 0 {
            self.settle();
        }
        out.append(&mut self.transmits);
    }

    /// `poll_event`, with a message as the session holds it: behind the `lead` bytes of
    /// its frame (see `MESSAGE_LEAD`), which the caller strips together with its own
    /// header (one copy, not two).
    pub(crate) fn poll_event_framed(&mut self) -> Option<(SessionEvent, usize)> {
        if self.unsettled > 0 {
            self.settle();
        }
        self.events.pop_front()
    }

    /// DTLS up or the channel open made the session connected: say so.
    fn report_connected(&mut self, connected: bool) {
        if connected {
            self.events.push_back((SessionEvent::Connected, 0));
        }
    }

    pub(super) fn close_with(&mut self, reason: DisconnectReason) {
        if self.liveness.close() {
            self.events
                .push_back((SessionEvent::Disconnected { reason }, 0));
        }
    }
}
