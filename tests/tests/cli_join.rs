//! `dhtmeet join` and `dhtmeet demo` as a user runs them: real processes, real sockets on
//! loopback, a private DHT node as the only infrastructure.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, spawn_dhtmeet_stun_server, wait_event};
use sha2::{Digest, Sha256};

fn dht_node() -> (ChildGuard, SocketAddr) {
    dhtmeet_tests::spawn_dhtmeet_dht_node()
}

/// A `dhtmeet join --json` process whose stdout lines arrive on a channel.
fn member(code: &str, bootstrap: SocketAddr) -> (ChildGuard, mpsc::Receiver<serde_json::Value>) {
    member_with(code, bootstrap, &[])
}

/// Like [`member`], with more arguments.
fn member_with(
    code: &str,
    bootstrap: SocketAddr,
    extra: &[&str],
) -> (ChildGuard, mpsc::Receiver<serde_json::Value>) {
    let mut child = Command::new(dhtmeet_bin())
        .args([
            "join",
            code,
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--exit-after",
            "40",
            "--no-state",
        ])
        .args(["--bootstrap", &bootstrap.to_string()])
        // The DHT node answers STUN too.
        .args(["--stun", &bootstrap.to_string()])
        .args(extra)
        .env_remove("MEETING_CODE")
        .env_remove("STUN_SERVERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dhtmeet join");
    let stdout = child.stdout.take().expect("stdout");
    let rx = dhtmeet_tests::json_events(stdout);
    (ChildGuard(child), rx)
}

#[test]
fn two_members_join_with_a_code_and_chat() {
    let (_dht, boot) = dht_node();
    let code = "zihuk-nirur-zopup-hifat-kipul-bopaj";
    let (mut a, a_events) = member(code, boot);
    let (_b, b_events) = member(code, boot);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let joined =
        wait_event(&a_events, "joined", Duration::from_secs(10), &mut seen_a).expect("a joined");
    assert_eq!(joined["code_bits"], 80);
    assert!(
        wait_event(
            &a_events,
            "peer_connected",
            Duration::from_secs(30),
            &mut seen_a
        )
        .is_some(),
        "{seen_a:?}"
    );
    assert!(
        wait_event(
            &b_events,
            "peer_connected",
            Duration::from_secs(30),
            &mut seen_b
        )
        .is_some(),
        "{seen_b:?}"
    );
    let stdin = a.0.stdin.as_mut().expect("stdin");
    writeln!(stdin, "hello from a").unwrap();
    stdin.flush().unwrap();
    let msg =
        wait_event(&b_events, "message", Duration::from_secs(10), &mut seen_b).expect("message");
    assert_eq!(msg["text"], "hello from a");
    let a_member = seen_a
        .iter()
        .find(|v| v["event"] == "joined")
        .map(|v| v["member"].clone());
    assert_eq!(Some(msg["peer"].clone()), a_member, "b sees who sent it");
    // End of stdin does not leave the meeting; killing a does, and b notices.
    drop(a.0.stdin.take());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "end of stdin does not end the meeting"
    );
}

#[test]
fn a_weak_or_mistyped_code_is_refused_before_anything_is_sent() {
    let out = Command::new(dhtmeet_bin())
        .args(["join", "1234", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too weak"),
        "{out:?}"
    );
    let out = Command::new(dhtmeet_bin())
        .args([
            "join",
            "zihuk-nirur-zopup-hifat-kipul-bopab",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mistyped"),
        "{out:?}"
    );
    let out = Command::new(dhtmeet_bin())
        .args([
            "join",
            "zihuk-nirur-zopup-hifat-kipul-bopaj",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            "none",
            "--stun",
            "none",
            "--no-state",
        ])
        .env("NODE_ID", "not-hex")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NODE_ID"),
        "{out:?}"
    );
}

#[test]
fn the_demo_forms_a_meeting_and_delivers_every_message_intact() {
    let out = Command::new(dhtmeet_bin())
        .args(["demo", "--peers", "3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["members"], 3);
    assert_eq!(report["messages_delivered"], 12);
    assert_eq!(report["intact"], true);
    assert!(
        report["bytes_delivered"]
            .as_u64()
            .is_some_and(|b| b > 6 * 256 * 1024)
    );
}

#[test]
fn ctrl_c_leaves_the_meeting_cleanly() {
    let (_dht, boot) = dht_node();
    let (mut a, events) = member("zihuk-nirur-zopup-hifat-kipul-bopaj", boot);
    let mut seen = Vec::new();
    assert!(wait_event(&events, "joined", Duration::from_secs(10), &mut seen).is_some());
    let pid = a.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    assert!(
        wait_event(&events, "left", Duration::from_secs(5), &mut seen).is_some(),
        "{seen:?}"
    );
    let end = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = a.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "still running after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    dhtmeet_tests::fresh_temp_dir(&format!("dhtmeet-cli-{tag}"))
}

#[test]
fn a_file_sent_with_send_arrives_verified_in_the_chosen_directory() {
    let (_dht, boot) = dht_node();
    let dir = temp_dir("send");
    let file = dir.join("payload.bin");
    // 2.5 MB that no compressor or period would fake: an xorshift stream.
    let body = dhtmeet_tests::xorshift_bytes(0x2545_F491_4F6C_DD1D, 2_500_000);
    std::fs::write(&file, &body).unwrap();
    let inbox = dir.join("inbox");
    let code = "zihuk-nirur-zopup-hifat-kipul-bopaj";
    let (_a, a_events) = member_with(code, boot, &["--send", file.to_str().unwrap()]);
    let (_b, b_events) = member_with(code, boot, &["--files-dir", inbox.to_str().unwrap()]);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let got = wait_event(
        &b_events,
        "file_received",
        Duration::from_secs(40),
        &mut seen_b,
    )
    .unwrap_or_else(|| panic!("no file_received: {seen_b:?}"));
    let want = format!("{:x}", Sha256::digest(&body));
    assert_eq!(got["sha256"], want.as_str());
    assert_eq!(got["bytes"], body.len());
    let path = inbox.join("payload.bin");
    assert_eq!(got["path"], path.to_str().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), body, "bytes on disk");
    assert!(
        seen_b.iter().any(|v| v["event"] == "file_progress"),
        "progress is reported"
    );
    assert!(
        wait_event(&a_events, "file_sent", Duration::from_secs(10), &mut seen_a).is_some(),
        "{seen_a:?}"
    );
    // No partial file is left behind.
    let names: Vec<_> = std::fs::read_dir(&inbox).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_reports_a_healthy_private_network() {
    let (_dht, boot) = dht_node();
    let (_stun, stun) = spawn_dhtmeet_stun_server();
    let out = Command::new(dhtmeet_bin())
        .args([
            "status",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--wait",
            "20",
        ])
        .args([
            "--stun",
            &stun.to_string(),
            "--bootstrap",
            &boot.to_string(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{v}");
    assert_eq!(v["stun_reachable"], true, "{v}");
    assert_eq!(v["public_address"], v["local"], "{v}");
    assert_eq!(v["dht_ready"], true, "{v}");
    assert!(v["routing_table_size"].as_u64() >= Some(1), "{v}");
    // One STUN server and one DHT node saw us: too few observations for a NAT class.
    assert_eq!(v["nat"], "unknown", "{v}");
    assert_eq!(v["nat_observations"], 2, "{v}");
    assert_eq!(v["problems"], serde_json::json!([]));
}

#[test]
fn status_names_an_unreachable_stun_server_and_dht_as_problems() {
    // Two ports nobody listens on.
    let (s1, s2) = (
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (stun, boot) = (s1.local_addr().unwrap(), s2.local_addr().unwrap());
    drop((s1, s2));
    let out = Command::new(dhtmeet_bin())
        .args(["status", "--listen", "127.0.0.1:0", "--wait", "3"])
        .args([
            "--stun",
            &stun.to_string(),
            "--bootstrap",
            &boot.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no STUN server answered"), "{text}");
    assert!(text.contains("no DHT node answered"), "{text}");
}

#[test]
fn a_port_in_use_is_an_error_a_person_can_act_on() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(dhtmeet_bin())
        .args([
            "join",
            "zihuk-nirur-zopup-hifat-kipul-bopaj",
            "--listen",
            &addr,
        ])
        .args(["--bootstrap", "none", "--stun", "none", "--no-state"])
        .env_remove("MEETING_CODE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use"), "{err}");
}
