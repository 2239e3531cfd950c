//! The `dhtmeet` command as a user runs it: `stun`, `stun-server`, `demo`, the
//! environment (`STUN_SERVERS`, `DEBUG`) and its error messages.

use std::net::UdpSocket;
use std::process::{Command, Output};

use dhtmeet_tests::{dhtmeet_bin, spawn_dhtmeet_stun_server};

fn dhtmeet(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(args)
        .env_remove("STUN_SERVERS")
        .env_remove("DEBUG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run dhtmeet")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn stun_against_two_servers_prints_the_address_first_and_the_mapping() {
    let (_a, a) = spawn_dhtmeet_stun_server();
    let (_b, b) = spawn_dhtmeet_stun_server();
    let out = dhtmeet(
        &[
            "stun",
            "--bind",
            "127.0.0.1:0",
            &a.to_string(),
            &b.to_string(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let first = text.lines().next().unwrap_or_default();
    let mapped: std::net::SocketAddr = first
        .parse()
        .unwrap_or_else(|_| panic!("first line {first:?}"));
    assert!(mapped.ip().is_loopback());
    assert!(text.contains("mapping: endpoint-independent"), "{text}");
}

#[test]
fn stun_servers_come_from_the_environment_when_none_are_given() {
    let (_a, a) = spawn_dhtmeet_stun_server();
    let out = dhtmeet(
        &["stun", "--json", "--bind", "127.0.0.1:0"],
        &[("STUN_SERVERS", &format!(" {a} ,"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["server"], a.to_string());
    for key in ["mapped", "server", "rtt_ms", "mapping"] {
        assert!(!json[key].is_null(), "missing {key}");
    }
}

#[test]
fn stun_without_servers_says_how_to_give_some() {
    let out = dhtmeet(&["stun"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("STUN_SERVERS"), "{}", stderr(&out));
}

#[test]
fn an_empty_stun_servers_is_unset_and_the_error_says_it_is_empty() {
    for empty in ["", " , "] {
        let out = dhtmeet(&["stun"], &[("STUN_SERVERS", empty)]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("STUN_SERVERS is empty"),
            "{empty:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn stun_with_no_answer_fails_with_a_clear_message_after_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = dhtmeet(
        &["stun", "--timeout", "0.6", "--bind", "127.0.0.1:0", &addr],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no STUN server answered"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&addr));
    assert!(started.elapsed().as_secs_f64() < 10.0);
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let out = dhtmeet(&["stun", "--timeout", "0", "127.0.0.1:1"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
    let out = dhtmeet(&["stun-server", "--listen", "not-an-address"], &[]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = dhtmeet(
        &[
            "stun-server",
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn debug_turns_on_detailed_logs() {
    let quiet = dhtmeet(&["demo"], &[]);
    let loud = dhtmeet(&["demo"], &[("DEBUG", "1")]);
    assert!(quiet.status.success() && loud.status.success());
    assert!(!stderr(&quiet).contains("DEBUG"), "{}", stderr(&quiet));
    assert!(
        stderr(&loud).contains("STUN binding request"),
        "{}",
        stderr(&loud)
    );
}
