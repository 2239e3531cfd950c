//! The running connection as a small app: [`App::on_input`] takes what the user and the
//! signal files give (lines, signals, Ctrl-C), [`App::on_event`] what the connection
//! reports. The driver calls one or the other, with the [`PeerConnection`].

use std::ops::ControlFlow;
use std::time::Instant;

use dhtmeet_core::webrtc::SessionEvent;
use dhtmeet_core::webrtc::{CandidateOutcome, PeerConnection, Signal};

use super::error::WebrtcError;
use super::signals::{self, Line};

/// The most candidates kept while the peer's description has not arrived (as many as
/// a description may carry).
pub(super) const MAX_EARLY_SIGNALS: usize = dhtmeet_core::webrtc::sdp::MAX_SDP_CANDIDATES + 1;

/// What the driver hands to [`App::on_input`].
pub(super) enum Input {
    /// A line of stdin.
    Line(String),
    /// A signal read from a signal file.
    Signal(Signal),
    /// Ctrl-C.
    Close,
}

/// What ends the run: `Ok` when the user or the peer closed, else why it failed.
pub(super) type Outcome = ControlFlow<Result<(), WebrtcError>>;

pub(super) struct App {
    json: bool,
    /// The offerer before the answer: candidates wait in `early` until it arrives.
    awaiting_answer: bool,
    /// Candidates and ends of candidates that came before the peer's description.
    early: Vec<Signal>,
}

impl App {
    pub(super) fn offerer(json: bool) -> App {
        App {
            json,
            awaiting_answer: true,
            early: Vec::new(),
        }
    }

    /// The answerer, with the candidates that came before the offer.
    pub(super) fn answerer(json: bool, early: Vec<Signal>) -> App {
        App {
            json,
            awaiting_answer: false,
            early,
        }
    }

    /// Hands the candidates that came before the peer's description to `peer`, once it
    /// has the description.
    pub(super) fn take_early(&mut self, peer: &mut PeerConnection, now: Instant) {
        if !self.awaiting_answer {
            for signal in std::mem::take(&mut self.early) {
                add_candidate(peer, &signal, now);
            }
        }
    }

    pub(super) fn on_input(
        &mut self,
        peer: &mut PeerConnection,
        input: Input,
        now: Instant,
    ) -> Outcome {
        let text = match input {
            Input::Close => return ControlFlow::Break(Ok(())),
            Input::Signal(signal) => return self.on_signal(peer, signal, now),
            Input::Line(line) => match signals::classify(line) {
                Line::Signal(signal) => return self.on_signal(peer, signal, now),
                Line::Empty if self.awaiting_answer => return ControlFlow::Continue(()),
                Line::Empty => {
                    eprintln!(
                        "warning: empty line not sent (an empty message can stall a plain data channel)"
                    );
                    return ControlFlow::Continue(());
                }
                Line::BadSignal(e) => {
                    eprintln!("warning: line not sent: it looks like a signal, but {e}");
                    return ControlFlow::Continue(());
                }
                Line::Text(text) => text,
            },
        };
        if self.awaiting_answer {
            eprintln!("not a signal; paste the answer as one line of JSON");
        } else if let Err(e) = peer.send_text(&text) {
            eprintln!("warning: line not sent: {e}");
        }
        ControlFlow::Continue(())
    }

    fn on_signal(&mut self, peer: &mut PeerConnection, signal: Signal, now: Instant) -> Outcome {
        match signal {
            Signal::Answer { .. } if self.awaiting_answer => {
                if let Err(e) = peer.handle_signal(now, &signal) {
                    return ControlFlow::Break(Err(WebrtcError::BadAnswer(e)));
                }
                self.awaiting_answer = false;
                self.take_early(peer, now);
            }
            Signal::Candidate(_) | Signal::EndOfCandidates if self.awaiting_answer => {
                if self.early.len() < MAX_EARLY_SIGNALS {
                    self.early.push(signal);
                } else {
                    eprintln!("warning: too many candidates before the answer; candidate ignored");
                }
            }
            Signal::Candidate(_) | Signal::EndOfCandidates => add_candidate(peer, &signal, now),
            Signal::Offer { .. } | Signal::Answer { .. } => eprintln!(
                "warning: {} ignored: the peer's description is already in (renegotiation is not supported)",
                if matches!(signal, Signal::Offer { .. }) {
                    "an offer"
                } else {
                    "an answer"
                }
            ),
        }
        ControlFlow::Continue(())
    }

    pub(super) fn on_event(&mut self, peer: &mut PeerConnection, event: SessionEvent) -> Outcome {
        print_event(self.json, peer, &event);
        match event {
            SessionEvent::Disconnected { .. } => ControlFlow::Break(Ok(())),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Gives a trickled candidate (or the end of candidates) to `peer`; says what it skipped.
fn add_candidate(peer: &mut PeerConnection, signal: &Signal, now: Instant) {
    match peer.handle_signal(now, signal) {
        Ok(CandidateOutcome::Added) => eprintln!("* remote candidate added"),
        Ok(CandidateOutcome::SkippedMdns) => {
            eprintln!("warning: an mDNS (.local) candidate skipped: names are not resolved")
        }
        Ok(CandidateOutcome::SkippedUnusable) => {
            eprintln!("warning: an unusable candidate skipped (TCP, RTCP or unparsable)")
        }
        Ok(CandidateOutcome::None) => {}
        Err(e) => eprintln!("warning: candidate ignored: {e}"),
    }
}

fn print_event(json: bool, peer: &PeerConnection, event: &SessionEvent) {
    match event {
        SessionEvent::Connected => crate::emit(
            json,
            "connected",
            serde_json::json!({"framed": peer.is_framed(), "max_message_size": peer.max_message_size()}),
            format!(
                "* connected ({}; messages up to {} bytes)",
                if peer.is_framed() {
                    "dhtmeet framing"
                } else {
                    "plain data channel"
                },
                peer.max_message_size()
            ),
        ),
        SessionEvent::Message(data) => {
            let text = String::from_utf8_lossy(data);
            crate::emit(
                json,
                "message",
                serde_json::json!({"text": text, "bytes": data.len()}),
                format!("<peer> {text}"),
            )
        }
        SessionEvent::Disconnected { reason } => crate::emit(
            json,
            "disconnected",
            serde_json::json!({"reason": format!("{reason:?}")}),
            format!("* disconnected ({reason:?})"),
        ),
        _ => {}
    }
}
