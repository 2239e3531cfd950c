//! The `dhtmeet-sim` binary, as a user meets it.

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dhtmeet-sim"))
        .args(args)
        .env_remove("DEBUG")
        .output()
        .expect("the binary runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = sim(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn stun_json_has_the_seed_the_trace_hash_and_the_mapping() {
    let v = json(&["stun", "--nat", "symmetric", "--seed", "42", "--json"]);
    assert_eq!(v["seed"], 42);
    let hash = v["trace_hash"].as_str().expect("a string");
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(v["mapping"], "endpoint-dependent");
    assert_eq!(v["observations"].as_array().expect("a list").len(), 2);
    assert!(
        v["mapped"]
            .as_str()
            .expect("a string")
            .starts_with("203.0.113.1:")
    );
    // Same seed, same hash.
    let again = json(&["stun", "--nat", "symmetric", "--seed", "42", "--json"]);
    assert_eq!(again["trace_hash"], v["trace_hash"]);
    let cone = json(&["stun", "--nat", "port-restricted-cone", "--json"]);
    assert_eq!(cone["mapping"], "endpoint-independent");
    assert_eq!(cone["seed"], 1, "the default seed");
}

#[test]
fn the_symmetric_presets_by_name_and_symmetric_random_is_symmetric() {
    let seq = json(&[
        "stun",
        "--nat",
        "symmetric-sequential",
        "--seed",
        "4",
        "--json",
    ]);
    assert_eq!(seq["mapping"], "endpoint-dependent");
    let random = json(&["stun", "--nat", "symmetric-random", "--seed", "4", "--json"]);
    let symmetric = json(&["stun", "--nat", "symmetric", "--seed", "4", "--json"]);
    assert_eq!(random["trace_hash"], symmetric["trace_hash"]);
    assert_ne!(seq["trace_hash"], symmetric["trace_hash"]);
    let help = sim(&["stun", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("symmetric-sequential") && help.contains("symmetric-random"),
        "{help}"
    );
}

#[test]
fn stun_summary_prints_the_seed_mapping_and_trace_hash() {
    let out = sim(&["stun", "--nat", "home", "--seed", "7"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.starts_with("seed        7\n"), "{text}");
    assert!(text.contains("mapping     endpoint-independent"), "{text}");
    assert!(text.contains("trace hash  "), "{text}");
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failure_exit() {
    for (args, needle) in [
        (&["stun", "--nat", "fullcone"][..], "possible values"),
        (&["stun"][..], "--nat"),
        (&["stun", "--nat", "home", "--seed", "many"][..], "--seed"),
        (
            &["stun", "--nat", "home", "--pcap", "/nonexistent-dir/x.pcap"][..],
            "cannot create pcap file",
        ),
        (&["teleport"][..], "unrecognized subcommand"),
    ] {
        let out = sim(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn meeting_json_has_pairs_connect_times_and_delivery() {
    let args = [
        "meeting",
        "--peers",
        "3",
        "--dht-nodes",
        "20",
        "--nat",
        "home,symmetric",
        "--seed",
        "9",
        "--json",
    ];
    let v = json(&args);
    assert_eq!(v["seed"], 9);
    assert_eq!(v["trace_hash"].as_str().expect("a string").len(), 64);
    let pairs = v["pairs"].as_array().expect("a list");
    assert_eq!(pairs.len(), 3);
    // Members: home, symmetric, home. The two home members connect; home × symmetric
    // cannot (RFC 4787: APDF against APDM).
    let connected: Vec<bool> = pairs
        .iter()
        .map(|p| p["connected"].as_bool().expect("a bool"))
        .collect();
    assert_eq!(connected, [false, true, false], "{v}");
    assert!(pairs[1]["connect_ms"].as_f64().expect("a time") > 0.0);
    assert!(pairs[0]["connect_ms"].is_null());
    assert_eq!(v["messages_delivered"], 2);
    assert_eq!(v["intact"], true);
    assert_eq!(json(&args)["trace_hash"], v["trace_hash"]);
}

#[test]
fn meeting_refuses_a_single_member() {
    let out = sim(&["meeting", "--peers", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 2 and 64 members"));
}

#[test]
fn nat_matrix_matches_rfc4787_for_every_pair_of_presets() {
    let v = json(&["nat-matrix", "--seed", "3", "--json"]);
    assert_eq!(v["seed"], 3);
    assert_eq!(v["matches_rfc4787"], true, "{v}");
    assert_eq!(v["intact"], true);
    let pairs = v["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 45, "9 presets: 36 pairs and 9 with themselves");
    let symmetric_home = pairs
        .iter()
        .find(|p| {
            let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
            (a, b) == ("home", "symmetric") || (a, b) == ("symmetric", "home")
        })
        .expect("home × symmetric");
    assert_eq!(symmetric_home["connected"], false);
    assert_eq!(symmetric_home["predicted"], false);
    assert_eq!(symmetric_home["prediction"], "fails");
    let masquerade_home = pairs
        .iter()
        .find(|p| {
            let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
            (a, b) == ("home", "masquerade") || (a, b) == ("masquerade", "home")
        })
        .expect("home × masquerade");
    assert_eq!(masquerade_home["prediction"], "depends-on-order");
}
