//! `dhtmeet join --state-dir` with a state directory that is not what it should be: the
//! command goes on (without that slot's state) and says why, within bounded time.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::Duration;

use dhtmeet_tests::{
    ChildGuard, dhtmeet_bin, json_events, lines_of, spawn_dhtmeet_dht_node, wait_event,
};

#[test]
fn a_fifo_at_the_state_path_does_not_hang_join() {
    let dir = std::env::temp_dir().join(format!("dhtmeet-cli-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("node-0.state");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let (_dht, dht) = spawn_dhtmeet_dht_node();
    let mut child = Command::new(dhtmeet_bin())
        .args([
            "join",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--exit-after",
            "5",
        ])
        .args(["--bootstrap", &dht.to_string(), "--stun", &dht.to_string()])
        .arg("--state-dir")
        .arg(&dir)
        .env_remove("MEETING_CODE")
        .env_remove("STUN_SERVERS")
        .env_remove("DEBUG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dhtmeet join");
    let events = json_events(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    let _child = ChildGuard(child);
    let mut seen = Vec::new();
    let joined = wait_event(&events, "joined", Duration::from_secs(20), &mut seen);
    let said: Vec<String> = stderr.try_iter().collect();
    assert!(
        joined.is_some(),
        "join never joined (a blocked open?): {seen:?}\n{}",
        said.join("\n")
    );
    let warned = |said: &[String]| {
        said.iter()
            .any(|l| l.contains("node-0.state") && l.contains("not a regular file"))
    };
    let mut said = said;
    // The warning comes before the join; give the reader thread a moment.
    for _ in 0..20 {
        if warned(&said) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        said.extend(stderr.try_iter());
    }
    assert!(warned(&said), "{}", said.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
