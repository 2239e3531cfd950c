//! Where signals come from and go: stdin lines told apart from messages, signal files
//! (every signal in them, and lines added later), and our own signals printed or
//! written to `--out`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dhtmeet_core::webrtc::{Signal, SignalError};
use smol::channel::{Receiver, Sender};

use super::app::{Input, MAX_EARLY_SIGNALS};
use super::error::WebrtcError;

/// How often a followed signal file is read again.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// The largest signal file read: a description and its candidates take a few KiB.
const MAX_SIGNAL_FILE: u64 = 1024 * 1024;

/// A stdin line, told apart.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// Nothing at all: never sent (see `docs/webrtc-sdp.md`).
    Empty,
    /// A signal: handled, never sent as a message.
    Signal(Signal),
    /// A signal's shape with a bad field (a candidate that is not `candidate:…`, an
    /// offer without `sdp`, a renegotiation): neither handled nor sent.
    BadSignal(SignalError),
    /// A message to send.
    Text(String),
}

pub(super) fn classify(line: String) -> Line {
    if line.is_empty() {
        return Line::Empty;
    }
    match Signal::parse(line.trim().as_bytes()) {
        Ok(signal) => Line::Signal(signal),
        Err(SignalError::Json | SignalError::UnknownShape | SignalError::TooLong) => {
            Line::Text(line)
        }
        Err(e) => Line::BadSignal(e),
    }
}

/// The signals in `text` from line `skip` on, in order, with the number of lines
/// taken: every complete line, and the last one without its newline if `whole` (the
/// file is complete) or if it is a whole signal (a writer may be half-way through it).
/// Lines that are not signals are reported with `path` and skipped; the first such
/// error is returned too.
fn signals_in(
    text: &str,
    path: &Path,
    skip: usize,
    whole: bool,
) -> (Vec<Signal>, usize, Option<SignalError>) {
    let mut found = Vec::new();
    let mut first_error = None;
    let pieces: Vec<&str> = text.split('\n').collect();
    let mut taken = skip;
    for (i, line) in pieces.iter().enumerate().skip(skip) {
        let line = line.trim();
        let last = i + 1 == pieces.len();
        if last && line.is_empty() {
            break;
        }
        let parsed = (!line.is_empty()).then(|| Signal::parse(line.as_bytes()));
        if last && !whole {
            if let Some(Ok(signal)) = parsed {
                found.push(signal);
                taken = i + 1;
            }
            break;
        }
        taken = i + 1;
        match parsed {
            Some(Ok(signal)) => found.push(signal),
            Some(Err(e)) => {
                eprintln!(
                    "warning: {} line {}: not a signal ({e})",
                    path.display(),
                    i + 1
                );
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    (found, taken, first_error)
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_SIGNAL_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {MAX_SIGNAL_FILE} bytes"),
        ));
    }
    std::fs::read_to_string(path)
}

/// The offer in `path`, first, then the signals around it (candidates), and the number
/// of lines read.
pub(super) fn read_offer_file(path: &Path) -> Result<(Vec<Signal>, usize), WebrtcError> {
    let text = read_bounded(path).map_err(|source| WebrtcError::ReadSignalFile {
        path: path.to_owned(),
        source,
    })?;
    let (mut found, taken, error) = signals_in(&text, path, 0, true);
    let Some(at) = found.iter().position(|s| matches!(s, Signal::Offer { .. })) else {
        return Err(WebrtcError::NoOfferInFile {
            path: path.to_owned(),
            error,
        });
    };
    let offer = found.remove(at);
    found.insert(0, offer);
    Ok((found, taken))
}

/// Reads `path` again and again, from line `skip` on, and sends every new signal on
/// `tx`, until the end of candidates, the run ending, or the file becoming unreadable
/// (`wait`: until it first appears).
pub(super) fn follow(path: PathBuf, skip: usize, wait: bool, tx: Sender<Input>) {
    smol::spawn(async move {
        let mut taken = skip;
        let mut seen = !wait;
        loop {
            match read_bounded(&path) {
                Ok(text) => {
                    seen = true;
                    let (found, now_taken, _) = signals_in(&text, &path, taken, false);
                    taken = now_taken;
                    for signal in found {
                        let end = signal == Signal::EndOfCandidates;
                        if tx.send(Input::Signal(signal)).await.is_err() || end {
                            return;
                        }
                    }
                }
                Err(e) if seen => {
                    eprintln!("warning: {}: {e}; no longer read", path.display());
                    return;
                }
                Err(_) => {}
            }
            async_io::Timer::after(FOLLOW_INTERVAL).await;
        }
    })
    .detach();
}

/// The first signal on stdin that is an offer; the candidates before it go to `early`
/// (bounded), other lines are reported and skipped.
pub(super) async fn await_offer(
    rx: &Receiver<Input>,
    early: &mut Vec<Signal>,
) -> Result<Signal, WebrtcError> {
    loop {
        let signal = match rx.recv().await {
            Ok(Input::Signal(signal)) => signal,
            Ok(Input::Line(line)) => match classify(line) {
                Line::Empty => continue,
                Line::Signal(signal) => signal,
                Line::BadSignal(e) => {
                    eprintln!("not a signal ({e}); paste the offer as one line of JSON");
                    continue;
                }
                Line::Text(_) => {
                    eprintln!("not a signal; paste the offer as one line of JSON");
                    continue;
                }
            },
            Ok(Input::Close) | Err(_) => return Err(WebrtcError::NoOffer),
        };
        match signal {
            Signal::Offer { .. } => return Ok(signal),
            Signal::Candidate(_) | Signal::EndOfCandidates => {
                if early.len() < MAX_EARLY_SIGNALS {
                    early.push(signal);
                }
            }
            Signal::Answer { .. } => eprintln!("an answer, but this side answers: paste the offer"),
        }
    }
}

/// Prints our signals: to `out` (one JSON signal per line), else to stdout.
pub(super) fn publish(
    out: Option<&Path>,
    json: bool,
    signals: &[Signal],
) -> Result<(), WebrtcError> {
    if let Some(path) = out {
        let text: String = signals.iter().map(|s| s.to_json() + "\n").collect();
        return std::fs::write(path, text).map_err(|source| WebrtcError::WriteSignalFile {
            path: path.to_owned(),
            source,
        });
    }
    for signal in signals {
        let line = signal.to_json();
        if json {
            // `to_json` writes JSON, so this parse cannot fail; the line is printed as is if it did.
            let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
            crate::emit(true, "signal", serde_json::json!({ "signal": value }), line);
        } else {
            println!("{line}");
        }
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANDIDATE: &str = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;

    #[test]
    fn stdin_lines_are_signals_messages_or_refused() {
        assert_eq!(classify(String::new()), Line::Empty);
        assert!(matches!(
            classify(CANDIDATE.into()),
            Line::Signal(Signal::Candidate(_))
        ));
        assert_eq!(
            classify(r#"{"candidate":null}"#.into()),
            Line::Signal(Signal::EndOfCandidates)
        );
        assert_eq!(classify(" ".into()), Line::Text(" ".into()));
        assert_eq!(classify("hello".into()), Line::Text("hello".into()));
        assert_eq!(
            classify(r#"{"a":1}"#.into()),
            Line::Text(r#"{"a":1}"#.into())
        );
        assert_eq!(
            classify(r#"{"candidate":"typ host"}"#.into()),
            Line::BadSignal(SignalError::BadCandidate)
        );
        assert_eq!(
            classify(r#"{"type":"offer"}"#.into()),
            Line::BadSignal(SignalError::MissingSdp)
        );
    }

    #[test]
    fn a_half_written_last_line_waits_for_the_rest() {
        let path = Path::new("signals.json");
        let end = r#"{"candidate":""}"#;
        let whole = format!("{CANDIDATE}\n\n{end}");
        let (found, taken, error) = signals_in(&whole, path, 0, false);
        assert_eq!((found.len(), taken, error), (2, 3, None));
        let half = format!("{CANDIDATE}\n{}", &CANDIDATE[..40]);
        let (found, taken, _) = signals_in(&half, path, 0, false);
        assert_eq!((found.len(), taken), (1, 1));
        let rest = format!("{CANDIDATE}\n{CANDIDATE}\n{end}\n");
        let (found, taken, _) = signals_in(&rest, path, taken, false);
        assert_eq!((found.len(), taken), (2, 3));
        // A complete file: its last line counts even without a newline.
        let (found, taken, error) = signals_in("not json", path, 0, true);
        assert_eq!((found.len(), taken, error), (0, 1, Some(SignalError::Json)));
        let (_, taken, _) = signals_in(&format!("{CANDIDATE}\n"), path, 0, true);
        assert_eq!(
            taken, 1,
            "the empty piece after the last newline is no line"
        );
    }
}
