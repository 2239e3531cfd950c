//! `dhtmeet join` at its edges: a receiver killed in the middle of a file, and a
//! `MEETING_CODE` that is set but empty. Real processes on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, wait_event};

const CODE: &str = "zihuk-nirur-zopup-hifat-kipul-bopaj";

/// A `dhtmeet join --json` process on loopback whose stdout lines arrive on a channel.
fn member(
    bootstrap: Option<SocketAddr>,
    extra: &[&str],
) -> (ChildGuard, mpsc::Receiver<serde_json::Value>) {
    let (boot, stun) = match bootstrap {
        Some(a) => (a.to_string(), a.to_string()),
        None => ("none".into(), "none".into()),
    };
    let mut child = Command::new(dhtmeet_bin())
        .args(["join", CODE, "--json", "--listen", "127.0.0.1:0"])
        .args(["--exit-after", "40", "--no-state"])
        .args(["--bootstrap", &boot, "--stun", &stun])
        .args(extra)
        .env_remove("MEETING_CODE")
        .env_remove("STUN_SERVERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dhtmeet join");
    let stdout = child.stdout.take().expect("stdout");
    (ChildGuard(child), dhtmeet_tests::json_events(stdout))
}

fn temp_dir(tag: &str) -> PathBuf {
    dhtmeet_tests::fresh_temp_dir(&format!("dhtmeet-files-{tag}"))
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "part"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_receiver_killed_mid_transfer_leaves_no_part_file_after_it_restarts() {
    let (_dht, boot) = dhtmeet_tests::spawn_dhtmeet_dht_node();
    let dir = temp_dir("killed");
    let file = dir.join("big.bin");
    // 32 MB: far more than arrives between the first progress line and the kill.
    let body = dhtmeet_tests::xorshift_bytes(0x9E37_79B9_7F4A_7C15, 32_000_000);
    std::fs::write(&file, &body).unwrap();
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("keep.txt"), b"not ours to remove").unwrap();

    let (mut sender, _a_events) = member(Some(boot), &["--send", file.to_str().unwrap()]);
    let (mut receiver, b_events) = member(Some(boot), &["--files-dir", inbox.to_str().unwrap()]);
    let mut seen = Vec::new();
    wait_event(
        &b_events,
        "file_progress",
        Duration::from_secs(40),
        &mut seen,
    )
    .unwrap_or_else(|| panic!("no file_progress: {seen:?}"));
    // Killed as a power cut or `kill -9` would: no chance to clean up.
    receiver.0.kill().unwrap();
    receiver.0.wait().unwrap();
    sender.0.kill().unwrap();
    sender.0.wait().unwrap();
    assert_eq!(
        part_files(&inbox).len(),
        1,
        "the killed receiver left its partial file (the scenario)"
    );

    // The next receiver on that directory starts clean.
    let (_again, events) = member(None, &["--files-dir", inbox.to_str().unwrap()]);
    let mut seen = Vec::new();
    wait_event(&events, "joined", Duration::from_secs(10), &mut seen)
        .unwrap_or_else(|| panic!("not joined: {seen:?}"));
    assert_eq!(
        part_files(&inbox),
        Vec::<PathBuf>::new(),
        "stale .part left"
    );
    assert!(inbox.join("keep.txt").exists(), "other files are kept");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_meeting_code_variable_is_an_error_not_a_new_meeting() {
    let out = Command::new(dhtmeet_bin())
        .args(["join", "--listen", "127.0.0.1:0", "--no-state"])
        .args(["--bootstrap", "none", "--stun", "none", "--exit-after", "3"])
        .env("MEETING_CODE", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("MEETING_CODE is set but empty"), "{err}");
    assert!(
        !err.contains("invitation code (give it"),
        "no code is made: {err}"
    );
}
