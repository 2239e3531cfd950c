//! `dhtmeet webrtc offer|answer` as a user runs them: two real processes on loopback,
//! the offer and answer passed by hand (through stdin/stdout and through files), lines
//! sent both ways; trickled candidates (simple-peer's default) taken on stdin and in
//! files, never sent as messages; empty lines refused; `STUN_SERVERS` used; and bad
//! offers refused with a clear error.

use std::io::Write;
use std::net::UdpSocket;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, spawn_dhtmeet_stun_server};
use serde_json::{Value, json};

/// A `dhtmeet webrtc … --json` process: its stdin, and its stdout lines on a channel.
fn webrtc(args: &[&str]) -> (ChildGuard, ChildStdin, mpsc::Receiver<Value>) {
    let (child, stdin, out, _err) = webrtc_env(args, &[]);
    (child, stdin, out)
}

/// [`webrtc`] with `env` set (and `STUN_SERVERS` unset unless given), and its stderr
/// lines on a channel too.
fn webrtc_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    ChildGuard,
    ChildStdin,
    mpsc::Receiver<Value>,
    mpsc::Receiver<String>,
) {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.arg("webrtc")
        .args(args)
        .args(["--json", "--listen", "127.0.0.1:0", "--exit-after", "30"])
        .env_remove("STUN_SERVERS")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dhtmeet webrtc");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = dhtmeet_tests::json_events(stdout);
    // Read to the end even when nobody listens, so the child never writes to a closed pipe.
    let (tx, err) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (ChildGuard(child), stdin, out, err)
}

fn wait_event(rx: &mpsc::Receiver<Value>, name: &str) -> Value {
    let mut seen = Vec::new();
    dhtmeet_tests::wait_event(rx, name, Duration::from_secs(20), &mut seen)
        .unwrap_or_else(|| panic!("no {name} event; saw {seen:?}"))
}

fn send_line(stdin: &mut ChildStdin, line: &str) {
    writeln!(stdin, "{line}").expect("write to child stdin");
    stdin.flush().expect("flush");
}

#[test]
fn an_offerer_and_an_answerer_pass_signals_by_hand_and_talk() {
    // The STUN server only adds a candidate where the mapped address differs (not on
    // loopback); it must not get in the way.
    let (_stun, stun) = spawn_dhtmeet_stun_server();
    let (_a, mut a_in, a_out) = webrtc(&["offer", "--stun", &stun.to_string()]);
    let offer = wait_event(&a_out, "signal")["signal"].to_string();
    let (_b, mut b_in, b_out) = webrtc(&["answer"]);
    send_line(&mut b_in, &offer);
    let answer = wait_event(&b_out, "signal")["signal"].to_string();
    send_line(&mut a_in, &answer);

    let a_connected = wait_event(&a_out, "connected");
    let b_connected = wait_event(&b_out, "connected");
    assert_eq!(a_connected["framed"], true, "two dhtmeet peers frame");
    assert_eq!(b_connected["framed"], true);

    send_line(&mut a_in, "hello from the offerer");
    send_line(&mut b_in, "hello from the answerer");
    assert_eq!(
        wait_event(&b_out, "message")["text"],
        "hello from the offerer"
    );
    assert_eq!(
        wait_event(&a_out, "message")["text"],
        "hello from the answerer"
    );
}

#[test]
fn signals_in_files_and_plain_messages() {
    let dir = std::env::temp_dir().join(format!("dhtmeet-cli-webrtc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (offer, answer) = (dir.join("offer.json"), dir.join("answer.json"));
    let _ = std::fs::remove_file(&answer);
    let (offer_s, answer_s) = (offer.to_str().unwrap(), answer.to_str().unwrap());
    let (_a, mut a_in, a_out) =
        webrtc(&["offer", "--plain", "--out", offer_s, "--answer", answer_s]);
    wait_event(&a_out, "listening");
    let (_b, mut b_in, b_out) = webrtc(&["answer", "--offer", offer_s, "--out", answer_s]);
    let a_connected = wait_event(&a_out, "connected");
    wait_event(&b_out, "connected");
    assert_eq!(a_connected["framed"], false, "--plain never frames");
    assert_eq!(a_connected["max_message_size"], 262_144);
    send_line(&mut a_in, "plain line");
    assert_eq!(wait_event(&b_out, "message")["text"], "plain line");
    send_line(&mut b_in, "and back");
    assert_eq!(wait_event(&a_out, "message")["text"], "and back");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_offers_are_refused_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("dhtmeet-cli-webrtc-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("not json", "not valid JSON"),
        (
            r#"{"type":"offer","sdp":"v=0\r\ns=-\r\n"}"#,
            "no data channel",
        ),
        (
            r#"{"type":"offer","sdp":"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n"}"#,
            "malformed a=fingerprint",
        ),
        (
            r#"{"type":"offer","sdp":"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99\r\na=setup:holdconn\r\n"}"#,
            "unsupported DTLS role",
        ),
    ];
    for (i, (offer, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("offer{i}.json"));
        std::fs::write(&path, offer).unwrap();
        let out = Command::new(dhtmeet_bin())
            .args(["webrtc", "answer", "--listen", "127.0.0.1:0", "--offer"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("run dhtmeet webrtc answer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{offer}: accepted");
        assert!(stderr.contains(want), "{offer}: stderr {stderr:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The signal's SDP without its `a=candidate` lines, and those candidates as
/// simple-peer trickles them, then the end of candidates: an offer or answer as a
/// trickling peer sends it.
fn trickled(signal: &Value) -> (Value, Vec<String>) {
    let sdp = signal["sdp"].as_str().expect("an sdp");
    let mid = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .unwrap_or("0");
    let mut kept = String::new();
    let mut candidates = Vec::new();
    for line in sdp.lines() {
        match line.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => candidates.push(
                json!({"type": "candidate", "candidate":
                    {"candidate": c, "sdpMid": mid, "sdpMLineIndex": 0}})
                .to_string(),
            ),
            _ => kept.push_str(&format!("{line}\r\n")),
        }
    }
    assert!(!candidates.is_empty(), "no candidate in {sdp:?}");
    candidates.push(
        json!({"type": "candidate", "candidate":
            {"candidate": "", "sdpMid": mid, "sdpMLineIndex": 0}})
        .to_string(),
    );
    (json!({"type": signal["type"], "sdp": kept}), candidates)
}

/// The signal with every candidate's port changed to `hole`'s: a host candidate the
/// other side cannot reach (nothing there answers).
fn unreachable(signal: &Value, hole: &UdpSocket) -> Value {
    let port = hole.local_addr().expect("hole address").port().to_string();
    let sdp = signal["sdp"].as_str().expect("an sdp");
    let mut out = String::new();
    for line in sdp.lines() {
        if line.starts_with("a=candidate:") {
            let mut fields: Vec<&str> = line.split(' ').collect();
            fields[5] = &port;
            out.push_str(&fields.join(" "));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    json!({"type": signal["type"], "sdp": out})
}

/// Waits for a stderr line containing `what`.
fn wait_stderr(err: &mpsc::Receiver<String>, what: &str) -> String {
    let mut seen = Vec::new();
    while let Ok(line) = err.recv_timeout(Duration::from_secs(10)) {
        if line.contains(what) {
            return line;
        }
        seen.push(line);
    }
    panic!("no stderr line with {what:?}; saw {seen:?}")
}

#[test]
fn an_answerer_takes_candidates_trickled_after_the_offer_on_stdin() {
    // The answerer's own candidate cannot be reached, so the connection stands only if
    // the answerer uses the offerer's trickled candidate.
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (_a, mut a_in, a_out) = webrtc(&["offer"]);
    let (offer, candidates) = trickled(&wait_event(&a_out, "signal")["signal"]);
    let (_b, mut b_in, b_out) = webrtc(&["answer"]);
    send_line(&mut b_in, &offer.to_string());
    for c in &candidates {
        send_line(&mut b_in, c);
    }
    let answer = unreachable(&wait_event(&b_out, "signal")["signal"], &hole);
    send_line(&mut a_in, &answer.to_string());
    wait_event(&a_out, "connected");
    wait_event(&b_out, "connected");
    send_line(&mut b_in, "the first message");
    assert_eq!(
        wait_event(&a_out, "message")["text"],
        "the first message",
        "a signal went out as a message"
    );
}

#[test]
fn an_offerer_takes_candidates_trickled_after_the_answer_on_stdin() {
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (_a, mut a_in, a_out) = webrtc(&["offer"]);
    let offer = unreachable(&wait_event(&a_out, "signal")["signal"], &hole);
    let (_b, mut b_in, b_out) = webrtc(&["answer"]);
    send_line(&mut b_in, &offer.to_string());
    let (answer, candidates) = trickled(&wait_event(&b_out, "signal")["signal"]);
    send_line(&mut a_in, &answer.to_string());
    for c in &candidates {
        send_line(&mut a_in, c);
    }
    wait_event(&a_out, "connected");
    wait_event(&b_out, "connected");
    send_line(&mut a_in, "the first message");
    assert_eq!(
        wait_event(&b_out, "message")["text"],
        "the first message",
        "a signal went out as a message"
    );
}

/// Writes `lines` to `path` at once (a reader never sees half of it).
fn write_lines(path: &std::path::Path, lines: &[String]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n").expect("write signal file");
    std::fs::rename(&tmp, path).expect("rename signal file");
}

fn first_signal_in(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read signal file");
    serde_json::from_str(text.lines().next().expect("a line")).expect("a JSON signal")
}

/// Offer and answer through files, one side trickling its candidates into its file
/// (the answer's arrive a moment after the answer), the other's candidate unreachable.
fn trickle_through_files(offerer_trickles: bool, name: &str) {
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dir = std::env::temp_dir().join(format!("dhtmeet-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |f: &str| dir.join(f);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (offer_out, offer_in) = (path("offer.json"), path("offer-sent.json"));
    let (answer_out, answer_in) = (path("answer.json"), path("answer-sent.json"));
    for p in [&offer_out, &offer_in, &answer_out, &answer_in] {
        let _ = std::fs::remove_file(p);
    }
    let (_a, _a_in, a_out) =
        webrtc(&["offer", "--out", &s(&offer_out), "--answer", &s(&answer_in)]);
    wait_event(&a_out, "listening");
    let offer = first_signal_in(&offer_out);
    if offerer_trickles {
        let (offer, candidates) = trickled(&offer);
        write_lines(&offer_in, &[&[offer.to_string()], &candidates[..]].concat());
    } else {
        write_lines(&offer_in, &[unreachable(&offer, &hole).to_string()]);
    }
    let (_b, _b_in, b_out) =
        webrtc(&["answer", "--offer", &s(&offer_in), "--out", &s(&answer_out)]);
    wait_event(&b_out, "listening");
    let answer = first_signal_in(&answer_out);
    if offerer_trickles {
        write_lines(&answer_in, &[unreachable(&answer, &hole).to_string()]);
    } else {
        let (answer, candidates) = trickled(&answer);
        let mut lines = vec![answer.to_string()];
        write_lines(&answer_in, &lines);
        std::thread::sleep(Duration::from_millis(500));
        lines.extend(candidates);
        write_lines(&answer_in, &lines);
    }
    wait_event(&a_out, "connected");
    wait_event(&b_out, "connected");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_signal_in_the_offer_file_is_used() {
    trickle_through_files(true, "offer-file");
}

#[test]
fn candidates_added_to_the_answer_file_later_are_used() {
    trickle_through_files(false, "answer-file");
}

#[test]
fn an_empty_line_is_not_sent_and_a_warning_says_so() {
    let (_a, mut a_in, a_out, a_err) = webrtc_env(&["offer", "--plain"], &[]);
    let offer = wait_event(&a_out, "signal")["signal"].to_string();
    let (_b, mut b_in, b_out) = webrtc(&["answer"]);
    send_line(&mut b_in, &offer);
    send_line(
        &mut a_in,
        &wait_event(&b_out, "signal")["signal"].to_string(),
    );
    wait_event(&a_out, "connected");
    wait_event(&b_out, "connected");
    send_line(&mut a_in, "");
    send_line(&mut a_in, "after the empty line");
    wait_stderr(&a_err, "empty line");
    assert_eq!(
        wait_event(&b_out, "message")["text"],
        "after the empty line"
    );
}

#[test]
fn webrtc_asks_the_stun_servers_named_in_stun_servers() {
    // A silent STUN server: what matters is that the request reaches it.
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let (_a, _a_in, _a_out, _a_err) = webrtc_env(&["offer"], &[("STUN_SERVERS", &addr)]);
    let mut buf = [0u8; 1500];
    let (len, _) = server
        .recv_from(&mut buf)
        .expect("no STUN request from dhtmeet webrtc");
    assert!(len >= 20 && buf[..2] == [0, 1], "not a Binding request");
}

#[test]
fn an_empty_stun_servers_is_unset_and_a_note_says_so() {
    let (_a, _a_in, a_out, a_err) = webrtc_env(&["offer"], &[("STUN_SERVERS", "")]);
    wait_stderr(&a_err, "STUN_SERVERS is empty");
    wait_event(&a_out, "signal");
}
