//! The `dhtmeet` command's logs as a user sees them: `DEBUG` is a boolean in any case,
//! `info` is shown by default, and logs go to stderr only (stdout carries the events).

use std::process::{Command, Output};

use dhtmeet_tests::{dhtmeet_bin, spawn_dhtmeet_stun_server};

fn demo(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.arg("demo")
        .env_remove("STUN_SERVERS")
        .env_remove("DEBUG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dhtmeet");
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lines of the tracing subscriber at `level` (it writes the level after the time).
fn log_lines<'a>(text: &'a str, level: &'a str) -> impl Iterator<Item = &'a str> {
    text.lines()
        .filter(move |l| l.split_whitespace().nth(1) == Some(level))
}

#[test]
fn debug_false_off_no_or_zero_in_any_case_keeps_debug_logs_off() {
    for value in ["false", "False", "FALSE", "off", "Off", "no", "NO", "0", ""] {
        let out = demo(&[("DEBUG", value)]);
        let text = stderr(&out);
        assert_eq!(
            log_lines(&text, "DEBUG").count(),
            0,
            "DEBUG={value:?}:\n{text}"
        );
        assert!(!text.contains("not a boolean"), "DEBUG={value:?}:\n{text}");
    }
}

#[test]
fn debug_true_on_yes_or_one_in_any_case_turns_debug_logs_on() {
    for value in ["1", "true", "True", "ON", "yes", " Yes "] {
        let text = stderr(&demo(&[("DEBUG", value)]));
        assert!(
            log_lines(&text, "DEBUG").any(|l| l.contains("STUN binding request")),
            "DEBUG={value:?}:\n{text}"
        );
    }
}

#[test]
fn a_debug_value_that_is_not_a_boolean_is_named_in_a_warning_and_ignored() {
    let text = stderr(&demo(&[("DEBUG", "maybe")]));
    assert!(
        log_lines(&text, "WARN").any(|l| l.contains("DEBUG=\"maybe\" is not a boolean")),
        "{text}"
    );
    assert_eq!(log_lines(&text, "DEBUG").count(), 0, "{text}");
}

#[test]
fn the_default_run_logs_info_on_stderr_and_keeps_stdout_for_events() {
    let (_server, server) = spawn_dhtmeet_stun_server();
    let out = Command::new(dhtmeet_bin())
        .args([
            "stun",
            "--json",
            "--bind",
            "127.0.0.1:0",
            &server.to_string(),
        ])
        .env_remove("DEBUG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run dhtmeet");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        log_lines(&text, "INFO").any(|l| l.contains("answer")),
        "{text}"
    );
    assert_eq!(log_lines(&text, "DEBUG").count(), 0, "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.trim().is_empty(), "the result is on stdout");
    for line in stdout.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "stdout holds only JSON events: {line:?}"
        );
    }
}
