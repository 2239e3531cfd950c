//! A meeting on real loopback sockets with both runtimes: a member driven by the blocking
//! `dhtmeet-std` runtime and one driven by the async `dhtmeet-smol` runtime find each
//! other through a DHT node, connect, and exchange messages (one larger than the SCTP
//! message limit) intact.

use std::net::UdpSocket;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code;
use dhtmeet_core::{Event, Node, NodeConfig, Seed};

fn member(seed: u64, bootstrap: std::net::SocketAddr) -> (UdpSocket, Node) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = NodeConfig::new(Seed::from_u64(seed));
    config.dht = Some(DhtConfig {
        bootstrap: vec![bootstrap],
        ..DhtConfig::default()
    });
    config.local_addr = Some(socket.local_addr().unwrap());
    (socket, Node::new(Instant::now(), config).unwrap())
}

#[test]
fn a_std_member_and_a_smol_member_meet_and_exchange_messages() {
    // The DHT node: std runtime, in a thread, for the length of the test.
    let boot_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let boot = boot_socket.local_addr().unwrap();
    let boot_node = Node::new(Instant::now(), NodeConfig::new(Seed::from_u64(1))).unwrap();
    let mut boot_driver = dhtmeet_std::Driver::new(boot_socket, boot_node).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    std::thread::spawn(move || {
        boot_driver.run(Some(deadline), |_, _| ControlFlow::<()>::Continue(()))
    });

    let code = code::generate(&mut Seed::from_u64(7).rng());
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    // Member A, blocking runtime, in a thread: waits for B, sends a line and a large
    // message, then waits for B's reply.
    let (a_socket, mut a_node) = member(2, boot);
    a_node.join(Instant::now(), &code, false).unwrap();
    let big_for_a = big.clone();
    let a = std::thread::spawn(move || {
        let mut driver = dhtmeet_std::Driver::new(a_socket, a_node).unwrap();
        let peer = driver
            .run(Some(deadline), |_, e| match e {
                Event::PeerConnected { member, .. } => ControlFlow::Break(member),
                _ => ControlFlow::Continue(()),
            })
            .unwrap()
            .expect("A connected to B");
        driver.machine_mut().send(&peer, b"hello from std").unwrap();
        driver.machine_mut().send(&peer, &big_for_a).unwrap();
        driver
            .run(Some(deadline), |_, e| match e {
                Event::Message { data, .. } => ControlFlow::Break(data),
                _ => ControlFlow::Continue(()),
            })
            .unwrap()
    });

    // Member B, async runtime, on this thread.
    let (b_socket, mut b_node) = member(3, boot);
    b_node.join(Instant::now(), &code, false).unwrap();
    let received = smol::block_on(async {
        let mut driver = dhtmeet_smol::Driver::new(b_socket, b_node).unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let sender = driver
            .run(Some(deadline), |_, e| match e {
                Event::Message { member, data } => {
                    got.push(data);
                    if got.len() == 2 {
                        ControlFlow::Break(member)
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                _ => ControlFlow::Continue(()),
            })
            .await
            .unwrap()
            .expect("B received both messages");
        driver
            .machine_mut()
            .send(&sender, b"hello from smol")
            .unwrap();
        // Keep running until A has had time to read the reply.
        let _ = driver
            .run(Some(Instant::now() + Duration::from_secs(2)), |_, _| {
                ControlFlow::<()>::Continue(())
            })
            .await;
        got
    });
    assert_eq!(received[0], b"hello from std");
    assert_eq!(received[1], big, "the large message arrives intact");
    let reply = a.join().unwrap();
    assert_eq!(reply.as_deref(), Some(&b"hello from smol"[..]));
}
