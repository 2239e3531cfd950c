//! `dhtmeet join --state-dir` with the real binary on loopback: a member that restarts
//! while the only bootstrap node is down still finds its meeting, through what it
//! remembered; a member with no state, started at the same moment, does not.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, wait_event};

fn dht_node() -> (ChildGuard, SocketAddr) {
    dhtmeet_tests::spawn_dhtmeet_dht_node()
}

/// A `dhtmeet join --json` process with its own state directory (or `--no-state`),
/// whose stdout events and stderr lines arrive on channels.
fn member(
    code: &str,
    bootstrap: SocketAddr,
    state: Option<&Path>,
) -> (
    ChildGuard,
    mpsc::Receiver<serde_json::Value>,
    mpsc::Receiver<String>,
) {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["join", code, "--json", "--listen", "127.0.0.1:0"])
        .args(["--exit-after", "60", "--bootstrap", &bootstrap.to_string()])
        // The DHT node answers STUN too (while it runs).
        .args(["--stun", &bootstrap.to_string()]);
    match state {
        Some(dir) => cmd.arg("--state-dir").arg(dir),
        None => cmd.arg("--no-state"),
    };
    let mut child = cmd
        .env_remove("MEETING_CODE")
        .env_remove("STUN_SERVERS")
        .env_remove("NODE_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dhtmeet join");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let rx = dhtmeet_tests::json_events(stdout);
    let erx = dhtmeet_tests::lines_of(stderr);
    (ChildGuard(child), rx, erx)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("dhtmeet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ctrl-C: `dhtmeet join` leaves the meeting cleanly and saves its state on the way out.
fn interrupt(child: &mut ChildGuard) {
    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let end = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < end,
            "dhtmeet join did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_member_restarts_while_the_only_bootstrap_node_is_down_and_finds_its_meeting() {
    let code = "zihuk-nirur-zopup-hifat-kipul-bopaj";
    let (boot_guard, boot) = dht_node();
    let (dir_a, dir_b) = (TempDir::new("state-a"), TempDir::new("state-b"));
    let (_a, a_events, _a_err) = member(code, boot, Some(&dir_a.0));
    let (mut b, b_events, _b_err) = member(code, boot, Some(&dir_b.0));
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for (rx, seen, who) in [(&a_events, &mut seen_a, "a"), (&b_events, &mut seen_b, "b")] {
        assert!(
            wait_event(rx, "peer_connected", Duration::from_secs(30), seen).is_some(),
            "{who} never connected: {seen:?}"
        );
    }
    interrupt(&mut b);
    let state_file = dir_b.0.join("node-0.state");
    assert!(state_file.exists(), "b saved nothing on exit");

    // The only bootstrap node goes down; b comes back, and so does a newcomer with no
    // state and the same (dead) bootstrap node.
    drop(boot_guard);
    let started = Instant::now();
    let (_b2, b2_events, b2_err) = member(code, boot, Some(&dir_b.0));
    let (_cold, cold_events, _cold_err) = member(code, boot, None);
    let mut seen_b2 = Vec::new();
    let connected = wait_event(
        &b2_events,
        "peer_connected",
        Duration::from_secs(30),
        &mut seen_b2,
    );
    let took = started.elapsed();
    let notes: Vec<String> = b2_err.try_iter().collect();
    assert!(
        connected.is_some(),
        "the restarted member did not find its meeting: {seen_b2:?}; stderr: {notes:?}"
    );
    assert!(
        notes.iter().any(|l| l.contains("resuming from")),
        "it said where it resumed from: {notes:?}"
    );
    println!("restarted member connected {took:?} after its start, with the bootstrap node down");
    // Meanwhile the newcomer, who remembers nothing, found no one.
    let mut seen_cold = Vec::new();
    assert!(
        wait_event(
            &cold_events,
            "peer_connected",
            Duration::from_secs(3),
            &mut seen_cold
        )
        .is_none(),
        "a member with no state met someone with the bootstrap node down: {seen_cold:?}"
    );
    // A crash-safe layout: one state file per running node, no temporary file left.
    let names: Vec<String> = std::fs::read_dir(&dir_b.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}
