//! Signal blobs in the JSON shapes web developers already use, so a page with the
//! browser's `RTCPeerConnection`, or simple-peer, needs no translation:
//!
//! | shape | read | written |
//! |---|---|---|
//! | `{"type":"offer","sdp":"v=0…"}` (`RTCSessionDescriptionInit`) | yes | yes |
//! | `{"type":"answer","sdp":"v=0…"}` | yes | yes |
//! | `{"type":"candidate","candidate":{"candidate":"candidate:…","sdpMid":"0","sdpMLineIndex":0}}` (simple-peer) | yes | yes |
//! | `{"candidate":{…}}` (the same without `type`) | yes | – |
//! | `{"candidate":"candidate:…","sdpMid":"0",…}` (`JSON.stringify(event.candidate)`) | yes | – |
//! | a candidate whose `candidate` is `""` or `null` (end of candidates) | yes | yes |
//!
//! simple-peer's `renegotiate` and `transceiverRequest` signals, `pranswer` and
//! `rollback` are refused with [`SignalError::Unsupported`]. Unknown extra fields are
//! ignored. Input is bounded by [`MAX_SIGNAL_LEN`]; nothing here panics, whatever the
//! bytes.

use serde_json::{Map, Value, json};

/// The longest signal accepted, in bytes (an SDP with a few dozen candidates is ~3 KiB).
pub const MAX_SIGNAL_LEN: usize = 64 * 1024;

/// One signaling message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// An SDP offer.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// One ICE candidate, trickled.
    Candidate(CandidateInit),
    /// The sender has no more candidates (an empty candidate).
    EndOfCandidates,
}

/// An ICE candidate as `RTCIceCandidateInit` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CandidateInit {
    /// The `candidate:…` attribute value (RFC 8839 §5.1), without `a=`.
    pub candidate: String,
    /// The media id of the m-line it belongs to.
    pub sdp_mid: Option<String>,
    /// The index of that m-line.
    pub sdp_m_line_index: Option<u16>,
    /// The ICE ufrag of the session it belongs to.
    pub username_fragment: Option<String>,
}

/// Why bytes are not a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Longer than [`MAX_SIGNAL_LEN`].
    #[error("signal longer than {MAX_SIGNAL_LEN} bytes")]
    TooLong,
    /// Not JSON (or not UTF-8).
    #[error("signal is not valid JSON")]
    Json,
    /// JSON, but not an object of a known shape.
    #[error("signal is neither an offer, an answer nor a candidate")]
    UnknownShape,
    /// An offer or answer without a string `sdp`.
    #[error("offer or answer without an sdp string")]
    MissingSdp,
    /// A candidate field of the wrong type, or a candidate string that is not
    /// `candidate:…`.
    #[error("malformed ICE candidate")]
    BadCandidate,
    /// A known signal this implementation does not do (renegotiation, pranswer,
    /// rollback, transceiver requests).
    #[error("unsupported signal (renegotiation, pranswer, rollback or transceivers)")]
    Unsupported,
}

impl Signal {
    /// Parses one JSON signal.
    pub fn parse(bytes: &[u8]) -> Result<Signal, SignalError> {
        if bytes.len() > MAX_SIGNAL_LEN {
            return Err(SignalError::TooLong);
        }
        // serde_json bounds its recursion (128 levels), so hostile nesting is an error.
        let value: Value = serde_json::from_slice(bytes).map_err(|_| SignalError::Json)?;
        let Value::Object(object) = value else {
            return Err(SignalError::UnknownShape);
        };
        Signal::from_object(&object)
    }

    fn from_object(object: &Map<String, Value>) -> Result<Signal, SignalError> {
        if object.contains_key("renegotiate") || object.contains_key("transceiverRequest") {
            return Err(SignalError::Unsupported);
        }
        let kind = match object.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(SignalError::UnknownShape),
        };
        let sdp = || match object.get("sdp") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(SignalError::MissingSdp),
        };
        match kind {
            Some("offer") => return Ok(Signal::Offer { sdp: sdp()? }),
            Some("answer") => return Ok(Signal::Answer { sdp: sdp()? }),
            Some("pranswer" | "rollback" | "renegotiate" | "transceiverRequest") => {
                return Err(SignalError::Unsupported);
            }
            Some("candidate") | None => {}
            Some(_) => return Err(SignalError::UnknownShape),
        }
        match object.get("candidate") {
            // `{"candidate":{…}}` and simple-peer's `{"type":"candidate","candidate":{…}}`.
            Some(Value::Object(inner)) => candidate_from(inner),
            // `JSON.stringify(event.candidate)`: the object is the candidate.
            Some(Value::String(_) | Value::Null) => candidate_from(object),
            Some(_) => Err(SignalError::BadCandidate),
            None => Err(SignalError::UnknownShape),
        }
    }

    /// The signal as JSON in the shapes of the table above (for candidates:
    /// simple-peer's, which a page can pass to `addIceCandidate` as `msg.candidate`).
    pub fn to_json(&self) -> String {
        let value = match self {
            Signal::Offer { sdp } => json!({"type": "offer", "sdp": sdp}),
            Signal::Answer { sdp } => json!({"type": "answer", "sdp": sdp}),
            Signal::Candidate(c) => json!({"type": "candidate", "candidate": {
                "candidate": c.candidate,
                "sdpMid": c.sdp_mid,
                "sdpMLineIndex": c.sdp_m_line_index,
                "usernameFragment": c.username_fragment,
            }}),
            // No sdpMid: the peer's mid is unknown here, and the m-line index (the only
            // m-line, the data channel's) is enough for `addIceCandidate`.
            Signal::EndOfCandidates => json!({"type": "candidate", "candidate": {
                "candidate": "", "sdpMLineIndex": 0,
            }}),
        };
        value.to_string()
    }
}

fn candidate_from(object: &Map<String, Value>) -> Result<Signal, SignalError> {
    let candidate = match object.get("candidate") {
        None | Some(Value::Null) => return Ok(Signal::EndOfCandidates),
        Some(Value::String(s)) if s.is_empty() => return Ok(Signal::EndOfCandidates),
        Some(Value::String(s)) => s.strip_prefix("a=").unwrap_or(s).trim_end(),
        Some(_) => return Err(SignalError::BadCandidate),
    };
    if !candidate.starts_with("candidate:") {
        return Err(SignalError::BadCandidate);
    }
    let optional_string = |key: &str| match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SignalError::BadCandidate),
    };
    let sdp_m_line_index = match object.get("sdpMLineIndex") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(SignalError::BadCandidate)?,
        ),
        Some(_) => return Err(SignalError::BadCandidate),
    };
    Ok(Signal::Candidate(CandidateInit {
        candidate: candidate.to_owned(),
        sdp_mid: optional_string("sdpMid")?,
        sdp_m_line_index,
        username_fragment: optional_string("usernameFragment")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATE: &str = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host";

    #[test]
    fn reads_the_shapes_browsers_and_simple_peer_send() {
        let offer = Signal::parse(br#"{"type":"offer","sdp":"v=0\r\n"}"#).unwrap();
        assert_eq!(
            offer,
            Signal::Offer {
                sdp: "v=0\r\n".into()
            }
        );
        let answer = Signal::parse(br#"{"sdp":"v=0","type":"answer","x":1}"#).unwrap();
        assert_eq!(answer, Signal::Answer { sdp: "v=0".into() });

        let want = Signal::Candidate(CandidateInit {
            candidate: CANDIDATE.into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        });
        let nested = format!(
            r#"{{"candidate":{{"candidate":"{CANDIDATE}","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}}"#
        );
        assert_eq!(Signal::parse(nested.as_bytes()).unwrap(), want);
        let simple_peer = format!(
            r#"{{"type":"candidate","candidate":{{"candidate":"a={CANDIDATE}","sdpMLineIndex":0,"sdpMid":"0","usernameFragment":"abcd"}}}}"#
        );
        assert_eq!(Signal::parse(simple_peer.as_bytes()).unwrap(), want);
        let flat = format!(
            r#"{{"candidate":"{CANDIDATE}","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}"#
        );
        assert_eq!(Signal::parse(flat.as_bytes()).unwrap(), want);

        for end in [
            r#"{"candidate":""}"#,
            r#"{"candidate":null,"sdpMid":"0"}"#,
            r#"{"type":"candidate","candidate":{"candidate":"","sdpMid":"0","sdpMLineIndex":0}}"#,
        ] {
            assert_eq!(Signal::parse(end.as_bytes()), Ok(Signal::EndOfCandidates));
        }
    }

    #[test]
    fn refuses_what_is_not_a_signal() {
        let cases: &[(&str, SignalError)] = &[
            ("", SignalError::Json),
            ("{", SignalError::Json),
            ("[1]", SignalError::UnknownShape),
            (r#"{"type":"offer"}"#, SignalError::MissingSdp),
            (r#"{"type":"offer","sdp":5}"#, SignalError::MissingSdp),
            (r#"{"type":"bogus","sdp":""}"#, SignalError::UnknownShape),
            (r#"{"type":7}"#, SignalError::UnknownShape),
            (r#"{"renegotiate":true}"#, SignalError::Unsupported),
            (
                r#"{"transceiverRequest":{"kind":"audio"}}"#,
                SignalError::Unsupported,
            ),
            (r#"{"type":"rollback","sdp":""}"#, SignalError::Unsupported),
            (r#"{"candidate":"typ host"}"#, SignalError::BadCandidate),
            (r#"{"candidate":5}"#, SignalError::BadCandidate),
            (
                r#"{"candidate":"candidate:1 1 udp 1 ::1 9 typ host","sdpMLineIndex":70000}"#,
                SignalError::BadCandidate,
            ),
            (
                r#"{"candidate":"candidate:1 1 udp 1 ::1 9 typ host","sdpMid":3}"#,
                SignalError::BadCandidate,
            ),
            (r#"{"sdpMid":"0"}"#, SignalError::UnknownShape),
        ];
        for (input, want) in cases {
            assert_eq!(Signal::parse(input.as_bytes()), Err(*want), "{input}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(Signal::parse(deep.as_bytes()), Err(SignalError::Json));
        let long = format!(
            r#"{{"type":"offer","sdp":"{}"}}"#,
            "a".repeat(MAX_SIGNAL_LEN)
        );
        assert_eq!(Signal::parse(long.as_bytes()), Err(SignalError::TooLong));
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let signals = [
            Signal::Offer {
                sdp: "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n".into(),
            },
            Signal::Answer {
                sdp: "v=0\r\n\"quoted\"\r\n".into(),
            },
            Signal::Candidate(CandidateInit {
                candidate: CANDIDATE.into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }),
            Signal::EndOfCandidates,
        ];
        for s in signals {
            assert_eq!(Signal::parse(s.to_json().as_bytes()), Ok(s.clone()));
        }
    }

    #[test]
    fn arbitrary_bytes_give_a_signal_or_an_error() {
        fn prop(bytes: Vec<u8>, prefix: u8) -> bool {
            // Half the cases start like a signal, so the parser gets past the first byte.
            let mut input = match prefix % 4 {
                0 => br#"{"type":"offer","sdp":""#.to_vec(),
                1 => br#"{"candidate":{"candidate":"candidate:"#.to_vec(),
                _ => Vec::new(),
            };
            input.extend_from_slice(&bytes);
            match Signal::parse(&input) {
                Ok(s) => Signal::parse(s.to_json().as_bytes()) == Ok(s),
                Err(_) => true,
            }
        }
        quickcheck::quickcheck(prop as fn(Vec<u8>, u8) -> bool);
    }
}
