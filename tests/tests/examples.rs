//! The embedding examples run as a user runs them: `std_chat` and `smol_chat` chat with
//! each other through a private DHT node on loopback, and `own_event_loop` learns its
//! address from a STUN server.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dhtmeet_tests::{ChildGuard, spawn_dhtmeet_stun_server};

fn example(package: &str, name: &str) -> PathBuf {
    dhtmeet_tests::cargo_built(package, "example", name)
}

/// A running chat example whose stdout lines arrive on a channel.
fn chat(bin: &PathBuf, code: &str, server: &str) -> (ChildGuard, mpsc::Receiver<String>) {
    let mut child = Command::new(bin)
        .args([code, server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example");
    let stdout = child.stdout.take().expect("stdout");
    (ChildGuard(child), dhtmeet_tests::lines_of(stdout))
}

fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(40);
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn the_std_and_smol_chat_examples_talk_to_each_other() {
    let (_dht, server) = dhtmeet_tests::spawn_dhtmeet_dht_node();
    let server = server.to_string();
    let code = "zihuk-nirur-zopup-hifat-kipul-bopaj";
    let (mut a, a_out) = chat(&example("dhtmeet-std", "std_chat"), code, &server);
    let (mut b, b_out) = chat(&example("dhtmeet-smol", "smol_chat"), code, &server);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    assert!(wait_line(&a_out, "is here", &mut seen_a), "{seen_a:?}");
    assert!(wait_line(&b_out, "is here", &mut seen_b), "{seen_b:?}");
    let a_in = a.0.stdin.as_mut().unwrap();
    writeln!(a_in, "from the std example").unwrap();
    a_in.flush().unwrap();
    assert!(
        wait_line(&b_out, "> from the std example", &mut seen_b),
        "{seen_b:?}"
    );
    let b_in = b.0.stdin.as_mut().unwrap();
    writeln!(b_in, "from the smol example").unwrap();
    b_in.flush().unwrap();
    assert!(
        wait_line(&a_out, "> from the smol example", &mut seen_a),
        "{seen_a:?}"
    );
    // End of input: the std example closes its node and exits cleanly.
    drop(a.0.stdin.take());
    let status = a.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_own_event_loop_example_learns_its_address() {
    let (_stun, stun) = spawn_dhtmeet_stun_server();
    let out = Command::new(example("dhtmeet-std", "own_event_loop"))
        .arg(stun.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("public address: 127.0.0.1:"), "{text}");
}
