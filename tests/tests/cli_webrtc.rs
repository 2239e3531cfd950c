//! `dhtmeet webrtc offer|answer` as a user runs them: two real processes on loopback,
//! the offer and answer passed by hand (through stdin/stdout and through files), lines
//! sent both ways; and bad offers refused with a clear error.

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, spawn_dhtmeet_stun_server};
use serde_json::Value;

/// A `dhtmeet webrtc … --json` process: its stdin, and its stdout lines on a channel.
fn webrtc(args: &[&str]) -> (ChildGuard, ChildStdin, mpsc::Receiver<Value>) {
    let mut child = Command::new(dhtmeet_bin())
        .arg("webrtc")
        .args(args)
        .args(["--json", "--listen", "127.0.0.1:0", "--exit-after", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dhtmeet webrtc");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let rx = dhtmeet_tests::json_events(stdout);
    (ChildGuard(child), stdin, rx)
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
