//! Interop with STUN code nobody here wrote: coturn (Debian's `coturn` package) as the
//! server for our client and the `dhtmeet` CLI, coturn's `turnutils_stunclient` and the
//! `stun-types` codec as clients of `dhtmeet stun-server`.

use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dhtmeet_core::Seed;
use dhtmeet_core::stun::{BindingClient, StunConfig, StunEvent, StunReport};
use dhtmeet_tests::{
    ChildGuard, dhtmeet_bin, free_udp_port, require_tool, spawn_dhtmeet_stun_server, wait_for,
};

const COTURN_HINT: &str = "apt-get install -y coturn";

/// Starts coturn as a plain STUN server on 127.0.0.1 and waits until it answers.
fn start_coturn() -> (ChildGuard, SocketAddr) {
    let port = free_udp_port();
    let child = Command::new("turnserver")
        .args([
            "-n",
            "--stun-only",
            "--no-auth",
            "--listening-ip",
            "127.0.0.1",
            "--listening-port",
        ])
        .arg(port.to_string())
        .args([
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",
            "--log-file",
            "stdout",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn turnserver");
    let guard = ChildGuard(child);
    let server: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let up = wait_for(Duration::from_secs(10), || {
        ask(server, Duration::from_millis(300)).ok()
    });
    assert!(
        up.is_some(),
        "coturn did not answer on {server} within 10 s"
    );
    (guard, server)
}

/// One round of our client (blocking runtime) against `server`.
fn ask(server: SocketAddr, timeout: Duration) -> Result<(StunReport, SocketAddr), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let config = StunConfig {
        servers: vec![server],
        query_timeout: timeout,
        rto: Duration::from_millis(100).min(timeout),
        retry_interval: None,
        ..Default::default()
    };
    let client =
        BindingClient::new(config, Seed::from_u64(9), Instant::now()).map_err(|e| e.to_string())?;
    let mut driver = dhtmeet_std::Driver::new(socket, client).map_err(|e| e.to_string())?;
    let local = driver.local_addr();
    let result = driver
        .run(
            Some(Instant::now() + timeout + Duration::from_secs(1)),
            |_, e| match e {
                StunEvent::Finished(r) => ControlFlow::Break(r),
                _ => ControlFlow::Continue(()),
            },
        )
        .map_err(|e| e.to_string())?;
    match result {
        Some(Ok(report)) => Ok((report, local)),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no result".into()),
    }
}

#[test]
fn our_client_gets_its_address_from_coturn() {
    if !require_tool("turnserver", COTURN_HINT) {
        return;
    }
    let (_coturn, server) = start_coturn();
    let (report, local) = ask(server, Duration::from_secs(5)).expect("coturn answered");
    assert_eq!(report.first.mapped, local);
    assert_eq!(report.first.server, server);
}

#[test]
fn dhtmeet_cli_gets_its_address_from_coturn_as_json() {
    if !require_tool("turnserver", COTURN_HINT) {
        return;
    }
    let (_coturn, server) = start_coturn();
    let out = Command::new(dhtmeet_bin())
        .args([
            "stun",
            "--json",
            "--bind",
            "127.0.0.1:0",
            &server.to_string(),
        ])
        .output()
        .expect("run dhtmeet stun");
    assert!(
        out.status.success(),
        "dhtmeet stun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["server"], server.to_string());
    assert_eq!(
        json["mapped"], json["local"],
        "no NAT on loopback: mapped is our own socket"
    );
    assert_eq!(
        json["mapping"], "unknown",
        "one server cannot classify the mapping"
    );
    assert!(
        json["rtt_ms"]
            .as_f64()
            .is_some_and(|ms| (0.0..5000.0).contains(&ms))
    );
}

#[test]
fn coturns_stun_client_gets_its_address_from_dhtmeet_stun_server() {
    if !require_tool("turnutils_stunclient", COTURN_HINT) {
        return;
    }
    let (_server, addr) = spawn_dhtmeet_stun_server();
    let out = Command::new("timeout")
        .args([
            "10",
            "turnutils_stunclient",
            "-L",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "127.0.0.1",
        ])
        .output()
        .expect("run turnutils_stunclient");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "turnutils_stunclient failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It prints e.g. "0: : IPv4. UDP reflexive addr: 127.0.0.1:43808".
    let reflexive: Vec<SocketAddr> = stdout
        .lines()
        .filter_map(|l| l.split("reflexive addr: ").nth(1))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    assert!(!reflexive.is_empty(), "no reflexive address in {stdout:?}");
    assert!(
        reflexive
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() != 0),
        "{reflexive:?}"
    );
}

#[test]
fn stun_types_codec_as_an_independent_client_of_dhtmeet_stun_server() {
    use stun_types::attribute::{AttributeStaticType, Fingerprint, XorMappedAddress};
    use stun_types::message::{
        BINDING, Message, MessageClass, MessageWrite, MessageWriteExt, MessageWriteVec,
        TransactionId,
    };

    let (_server, addr) = spawn_dhtmeet_stun_server();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let id = TransactionId::from(0x1234_5678_9abc_def0_1122_3344u128);
    let mut request = Message::builder(
        stun_types::message::MessageType::from_class_method(MessageClass::Request, BINDING),
        id,
        MessageWriteVec::new(),
    );
    request.add_fingerprint().unwrap();
    let request = request.finish();
    let mut buf = [0u8; 1500];
    let reply = wait_for(Duration::from_secs(5), || {
        socket.send_to(&request, addr).ok()?;
        socket.recv_from(&mut buf).ok()
    });
    let (len, from) = reply.expect("dhtmeet stun-server answered");
    assert_eq!(from, addr);
    let msg = Message::from_bytes(&buf[..len]).expect("stun-types accepts our response");
    assert!(msg.has_class(MessageClass::Success));
    assert_eq!(msg.transaction_id(), id);
    assert!(msg.has_attribute(Fingerprint::TYPE));
    let xor = msg
        .attribute::<XorMappedAddress>()
        .expect("XOR-MAPPED-ADDRESS");
    assert_eq!(xor.addr(id), socket.local_addr().unwrap());
}
