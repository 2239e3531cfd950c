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

/// `dhtmeet stun-server` is no reflector: a flood from many ports of one IP gets one
/// source's budget of answers, and another IP is still answered.
#[test]
fn stun_server_answers_a_flood_from_one_ip_within_one_budget() {
    use dhtmeet_core::stun::wire::{TransactionId, binding_request};
    use dhtmeet_core::stun::{ANSWER_BURST, ANSWERS_PER_SECOND};
    use std::time::{Duration, Instant};

    let (_server, addr) = spawn_dhtmeet_stun_server();
    let request = binding_request(TransactionId([8; 12]));
    let sockets: Vec<UdpSocket> = (0..50)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let started = Instant::now();
    for _ in 0..20 {
        for s in &sockets {
            s.send_to(&request, addr).unwrap();
        }
        // Paced a little so that loopback buffers do not drop the flood before the
        // server sees it: the point is the server's budget, not the kernel's.
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut answered = 0u64;
    let mut buf = [0u8; 1500];
    for s in &sockets {
        s.set_nonblocking(true).unwrap();
        while s.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let budget = f64::from(ANSWER_BURST) + f64::from(ANSWERS_PER_SECOND) * elapsed;
    assert!(
        answered as f64 <= budget.ceil(),
        "{answered} answers to 1,000 requests from one IP in {elapsed:.2} s (budget {budget:.0})"
    );
    assert!(
        answered >= u64::from(ANSWER_BURST) / 2,
        "{answered} answers"
    );

    // Another loopback address is another source (Linux routes all of 127/8 to lo).
    let Ok(other) = UdpSocket::bind("127.0.0.2:0") else {
        dhtmeet_tests::skip_loudly("cannot bind 127.0.0.2; the second-source check did not run");
        return;
    };
    other
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    other.send_to(&request, addr).unwrap();
    let (len, from) = other.recv_from(&mut buf).expect("another IP is answered");
    assert_eq!(from, addr);
    assert!(len > 20);
}
