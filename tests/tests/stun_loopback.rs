//! Both runtimes on real loopback sockets: a client of one runtime asks a responder of
//! the other, over IPv4 and IPv6, and a node answers while it discovers.

use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::{
    BindingClient, BindingServer, Mapping, StunConfig, StunEvent, StunReport,
};
use dhtmeet_core::{Event, Node, NodeConfig, Seed};

fn spawn_std_server(bind: &str) -> Option<SocketAddr> {
    let socket = UdpSocket::bind(bind).ok()?;
    let mut driver = dhtmeet_std::Driver::new(socket, BindingServer::new()).unwrap();
    let addr = driver.local_addr();
    // The thread ends with the test process; the responder has no state to clean up.
    std::thread::spawn(move || driver.run(None, |_, never| -> ControlFlow<()> { match never {} }));
    Some(addr)
}

fn config(servers: Vec<SocketAddr>) -> StunConfig {
    StunConfig {
        servers,
        retry_interval: None,
        query_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn finished(event: StunEvent) -> ControlFlow<Result<StunReport, String>> {
    match event {
        StunEvent::Finished(r) => ControlFlow::Break(r.map_err(|e| e.to_string())),
        _ => ControlFlow::Continue(()),
    }
}

#[test]
fn smol_client_discovers_its_address_from_two_std_responders() {
    let servers = vec![
        spawn_std_server("127.0.0.1:0").unwrap(),
        spawn_std_server("127.0.0.1:0").unwrap(),
    ];
    let report = smol::block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client =
            BindingClient::new(config(servers.clone()), Seed::from_u64(1), Instant::now()).unwrap();
        let mut driver = dhtmeet_smol::Driver::new(socket, client).unwrap();
        let local = driver.local_addr();
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = driver
            .run(Some(deadline), |_, e| finished(e))
            .await
            .unwrap();
        (local, report)
    });
    let (local, report) = report;
    let report = report
        .expect("finished before the deadline")
        .expect("servers answered");
    assert_eq!(report.first.mapped, local);
    assert_eq!(report.mapping, Mapping::EndpointIndependent);
    assert_eq!(report.observations.len(), 2);
    assert!(servers.contains(&report.first.server));
}

#[test]
fn std_client_discovers_its_address_over_ipv6_loopback() {
    let Some(server) = spawn_std_server("[::1]:0") else {
        dhtmeet_tests::skip_loudly("no IPv6 loopback on this machine; the IPv6 test did not run");
        return;
    };
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    let client =
        BindingClient::new(config(vec![server]), Seed::from_u64(2), Instant::now()).unwrap();
    let mut driver = dhtmeet_std::Driver::new(socket, client).unwrap();
    let local = driver.local_addr();
    let report = driver
        .run(Some(Instant::now() + Duration::from_secs(10)), |_, e| {
            finished(e)
        })
        .unwrap();
    let report = report.expect("finished").expect("answered");
    assert_eq!(report.first.mapped, local);
    assert_eq!(
        report.mapping,
        Mapping::Unknown,
        "one server cannot classify"
    );
}

#[test]
fn a_dead_server_fails_over_to_a_live_one_on_real_sockets() {
    // A bound socket that never answers: the client must fail over after its timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let live = spawn_std_server("127.0.0.1:0").unwrap();
    let mut cfg = config(vec![silent.local_addr().unwrap(), live]);
    cfg.parallel_queries = 1;
    cfg.query_timeout = Duration::from_millis(600);
    cfg.rto = Duration::from_millis(100);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = BindingClient::new(cfg, Seed::from_u64(3), Instant::now()).unwrap();
    let mut driver = dhtmeet_std::Driver::new(socket, client).unwrap();
    let mut failed = Vec::new();
    let report = driver
        .run(
            Some(Instant::now() + Duration::from_secs(10)),
            |_, e| match e {
                StunEvent::ServerFailed { server, .. } => {
                    failed.push(server);
                    ControlFlow::Continue(())
                }
                e => finished(e),
            },
        )
        .unwrap()
        .expect("finished")
        .expect("the live server answered");
    assert_eq!(failed, [silent.local_addr().unwrap()]);
    assert_eq!(report.first.server, live);
    // 1 request + retransmissions at 100, 300 ms before the 600 ms timeout, then 1 to live.
    let mut buf = [0u8; 64];
    silent.set_nonblocking(true).unwrap();
    let mut seen = 0;
    while silent.recv_from(&mut buf).is_ok() {
        seen += 1;
    }
    assert_eq!(
        seen, 3,
        "the silent server got the request and two retransmissions"
    );
}

#[test]
fn a_node_answers_binding_requests_while_discovering_its_own_address() {
    let server = spawn_std_server("127.0.0.1:0").unwrap();
    let node_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let node_addr = node_socket.local_addr().unwrap();
    let mut cfg = NodeConfig::new(Seed::from_u64(4));
    cfg.stun.servers = vec![server];
    let node = Node::new(Instant::now(), cfg).unwrap();
    let mut node_driver = dhtmeet_std::Driver::new(node_socket, node).unwrap();
    let node_thread = std::thread::spawn(move || {
        let found = node_driver.run(
            Some(Instant::now() + Duration::from_secs(3)),
            |_, e| match e {
                Event::AddressDiscovered(r) => ControlFlow::Break(r.first.mapped),
                _ => ControlFlow::Continue(()),
            },
        );
        // Keep answering others for a while after discovering.
        let _ = node_driver.run(Some(Instant::now() + Duration::from_secs(2)), |_, _| {
            ControlFlow::<()>::Continue(())
        });
        (found.unwrap(), node_driver.machine().health())
    });
    // Another client uses the node as its STUN server.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client =
        BindingClient::new(config(vec![node_addr]), Seed::from_u64(5), Instant::now()).unwrap();
    let mut driver = dhtmeet_std::Driver::new(socket, client).unwrap();
    let local = driver.local_addr();
    let report = driver
        .run(Some(Instant::now() + Duration::from_secs(5)), |_, e| {
            finished(e)
        })
        .unwrap();
    assert_eq!(
        report
            .expect("finished")
            .expect("node answered")
            .first
            .mapped,
        local
    );
    let (found, health) = node_thread.join().unwrap();
    assert_eq!(found, Some(node_addr));
    assert!(health.stun_reachable);
    assert_eq!(health.stats.stun_server.requests_answered, 1);
}
