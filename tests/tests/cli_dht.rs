//! `dhtmeet dht node | announce | lookup` on loopback, as a user runs them.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use dhtmeet_tests::{ChildGuard, dhtmeet_bin, spawn_until_ready};

const INFO_HASH: &str = "0123456789abcdef0123456789abcdef01234567";

/// Starts `dhtmeet dht node` and returns it with its address and id from the ready line.
fn dht_node(bootstrap: Option<SocketAddr>) -> (ChildGuard, SocketAddr, String) {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["dht", "node", "--listen", "127.0.0.1:0"])
        .env_remove("NODE_ID");
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", &b.to_string()]);
    }
    cmd.stderr(Stdio::null());
    let (guard, line) = spawn_until_ready(&mut cmd, "dhtmeet dht node");
    // "dht node <id> listening on <addr>"
    let words: Vec<&str> = line.split_whitespace().collect();
    let (id, addr) = match words.as_slice() {
        ["dht", "node", id, "listening", "on", addr] => {
            (id.to_string(), addr.parse().expect("address"))
        }
        _ => panic!("unexpected ready line {line:?}"),
    };
    (guard, addr, id)
}

fn dhtmeet(args: &[&str]) -> Output {
    Command::new(dhtmeet_bin())
        .args(args)
        .env_remove("NODE_ID")
        .output()
        .expect("run dhtmeet")
}

#[test]
fn an_announce_through_one_node_is_found_by_a_lookup_through_another() {
    let (_first, first, id) = dht_node(None);
    assert_eq!(id.len(), 40);
    let others: Vec<_> = (0..4).map(|_| dht_node(Some(first))).collect();
    let out = dhtmeet(&[
        "dht",
        "announce",
        "--bootstrap",
        &first.to_string(),
        "--info-hash",
        INFO_HASH,
        "--port",
        "4321",
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        "20",
    ]);
    assert!(
        out.status.success(),
        "announce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via = others[2].1.to_string();
    let out = dhtmeet(&[
        "dht",
        "lookup",
        "--bootstrap",
        &via,
        "--info-hash",
        INFO_HASH,
        "--json",
        "--timeout",
        "20",
    ]);
    assert!(
        out.status.success(),
        "lookup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["info_hash"], INFO_HASH);
    assert_eq!(json["peers"], serde_json::json!(["127.0.0.1:4321"]));
    assert!(json["nodes"].as_u64().is_some_and(|n| n >= 2));
}

#[test]
fn a_lookup_with_no_reachable_node_fails_clearly() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = dhtmeet(&[
        "dht",
        "lookup",
        "--bootstrap",
        &addr,
        "--info-hash",
        INFO_HASH,
        "--timeout",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no DHT node reachable") && err.contains(&addr),
        "{err}"
    );
}

#[test]
fn bad_dht_arguments_are_refused_clearly() {
    let out = dhtmeet(&[
        "dht",
        "lookup",
        "--bootstrap",
        "127.0.0.1:1",
        "--info-hash",
        "xyz",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("40 hexadecimal"),
        "{out:?}"
    );
    let out = dhtmeet(&["dht", "lookup", "--info-hash", INFO_HASH]);
    assert_eq!(out.status.code(), Some(2), "--bootstrap is required");
    let out = Command::new(dhtmeet_bin())
        .args(["dht", "node", "--listen", "127.0.0.1:0"])
        .env("NODE_ID", "nothex")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NODE_ID"),
        "{out:?}"
    );
}

#[test]
fn a_meeting_code_looks_up_its_topic() {
    let (_first, first, _) = dht_node(None);
    let _second = dht_node(Some(first));
    let out = dhtmeet(&[
        "dht",
        "announce",
        "--bootstrap",
        &first.to_string(),
        "--code",
        "Apple River 7",
        "--port",
        "999",
        "--timeout",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dhtmeet(&[
        "dht",
        "lookup",
        "--bootstrap",
        &first.to_string(),
        "--code",
        "apple-river-7",
        "--timeout",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.0.0.1:999");
}

#[test]
fn a_node_with_bootstrap_none_starts_a_new_network() {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args([
        "dht",
        "node",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        "none",
    ])
    .env_remove("NODE_ID")
    .stderr(Stdio::null());
    let (_node, line) = spawn_until_ready(&mut cmd, "dhtmeet dht node --bootstrap none");
    assert!(line.starts_with("dht node "), "ready line {line:?}");
}

#[test]
fn a_lookup_with_bootstrap_none_says_it_needs_a_node() {
    let out = dhtmeet(&[
        "dht",
        "lookup",
        "--bootstrap",
        "none",
        "--info-hash",
        INFO_HASH,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("cannot resolve"), "{stderr}");
    assert!(stderr.contains("--bootstrap"), "{stderr}");
}
