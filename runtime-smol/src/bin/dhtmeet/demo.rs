//! `dhtmeet demo`: the offline main job. In one process, on loopback, with real UDP
//! sockets: a STUN server, a small DHT, and N members who share only a fresh invitation
//! code. They find each other through the DHT, signal, open WebRTC data channels, send
//! messages both ways (a small one and a large one each, checked by SHA-256), and leave.
//! Nothing leaves the machine.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code;
use dhtmeet_core::stun::BindingServer;
use dhtmeet_core::{Event, Node, NodeConfig};
use dhtmeet_smol::{Driver, random_seed};
use sha2::{Digest, Sha256};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Members in the meeting (2–16).
    #[arg(long, default_value_t = 3)]
    peers: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Bytes of the large message each member sends to all (above the SCTP message limit,
/// so it is chunked and reassembled).
const LARGE: usize = 256 * 1024;
/// The demo gives up after this long.
const LIMIT: Duration = Duration::from_secs(60);

enum Command {
    Broadcast(Vec<u8>),
    Leave,
}

fn bind() -> Result<UdpSocket, String> {
    UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind loopback: {e}"))
}

fn node(
    bootstrap: Vec<SocketAddr>,
    stun: Vec<SocketAddr>,
    local: SocketAddr,
) -> Result<Node, String> {
    let mut config = NodeConfig::new(random_seed().map_err(|e| e.to_string())?);
    config.stun.servers = stun;
    config.dht = Some(DhtConfig {
        bootstrap,
        ..DhtConfig::default()
    });
    config.local_addr = Some(local);
    Node::new(Instant::now(), config).map_err(|e| e.to_string())
}

/// A message with its own SHA-256 at the end, so the receiver can check it is intact.
fn sealed(body: Vec<u8>) -> Vec<u8> {
    let mut m = body;
    let digest = Sha256::digest(&m);
    m.extend_from_slice(&digest);
    m
}

fn intact(m: &[u8]) -> bool {
    m.len() >= 32 && Sha256::digest(&m[..m.len() - 32])[..] == m[m.len() - 32..]
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    if !(2..=16).contains(&args.peers) {
        return Err("--peers must be between 2 and 16".into());
    }
    let started = Instant::now();
    let mut background = Vec::new();

    // The public infrastructure: one STUN server and a three-node DHT.
    let mut stun = Driver::new(bind()?, BindingServer::new()).map_err(|e| e.to_string())?;
    let stun_addr = stun.local_addr();
    background.push(smol::spawn(async move {
        let _ = stun
            .run(None, |_, never| -> ControlFlow<()> { match never {} })
            .await;
    }));
    let mut dht_addrs = Vec::new();
    for i in 0..3 {
        let socket = bind()?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let bootstrap = if i == 0 {
            Vec::new()
        } else {
            vec![dht_addrs[0]]
        };
        let mut driver =
            Driver::new(socket, node(bootstrap, Vec::new(), local)?).map_err(|e| e.to_string())?;
        dht_addrs.push(local);
        background.push(smol::spawn(async move {
            let _ = driver
                .run(None, |_, _| ControlFlow::<()>::Continue(()))
                .await;
        }));
    }

    // The members, who share only the code.
    let code = code::generate(&mut random_seed().map_err(|e| e.to_string())?.rng());
    let (events_tx, events_rx) = smol::channel::unbounded::<(usize, Event)>();
    let mut commands = Vec::new();
    let mut members = Vec::new();
    for i in 0..args.peers {
        let socket = bind()?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let mut n = node(vec![dht_addrs[i % dht_addrs.len()]], vec![stun_addr], local)?;
        n.join(Instant::now(), &code, false)
            .map_err(|e| e.to_string())?;
        let mut driver = Driver::new(socket, n).map_err(|e| e.to_string())?;
        let (tx, rx) = smol::channel::unbounded::<Command>();
        commands.push(tx);
        members.push(local);
        let events = events_tx.clone();
        background.push(smol::spawn(async move {
            let _ = driver
                .run_with_input(
                    Some(Instant::now() + LIMIT + Duration::from_secs(5)),
                    Some(&rx),
                    |node, command, now| match command {
                        Command::Broadcast(data) => {
                            node.broadcast(&data);
                            ControlFlow::Continue(())
                        }
                        Command::Leave => {
                            node.leave(now);
                            ControlFlow::Break(())
                        }
                    },
                    |_, event| {
                        let _ = events.try_send((i, event));
                        ControlFlow::Continue(())
                    },
                )
                .await;
            // Let the byes leave.
            let _ = driver
                .run(Some(Instant::now() + Duration::from_millis(200)), |_, _| {
                    ControlFlow::<()>::Continue(())
                })
                .await;
        }));
    }
    if !args.json {
        eprintln!(
            "demo: STUN {stun_addr}, DHT {}, {} members on {}, code {code}",
            dht_addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            args.peers,
            members
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }

    let n = args.peers;
    let deadline = started + LIMIT;
    let mut discovered: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut connections = vec![0usize; n];
    let mut all_connected = None;
    let mut received: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
    let mut sent_at = None;
    let expected_messages = n * (n - 1) * 2;
    while received.iter().map(Vec::len).sum::<usize>() < expected_messages {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = futures_lite::future::or(async { events_rx.recv().await.ok() }, async {
            async_io::Timer::after(left).await;
            None
        })
        .await;
        let Some((i, event)) = next else {
            let connected: usize = connections.iter().sum();
            return Err(format!(
                "the demo did not finish within {} s: {connected} of {} connections open, {} of {expected_messages} messages delivered",
                LIMIT.as_secs(),
                n * (n - 1),
                received.iter().map(Vec::len).sum::<usize>()
            ));
        };
        match event {
            Event::PeerDiscovered { .. } => {
                discovered.entry(i).or_insert_with(|| started.elapsed());
            }
            Event::PeerConnected { .. } => connections[i] += 1,
            Event::Message { data, .. } => received[i].push(data),
            _ => {}
        }
        if all_connected.is_none() && connections.iter().all(|c| *c == n - 1) {
            all_connected = Some(started.elapsed());
            sent_at = Some(Instant::now());
            for (j, tx) in commands.iter().enumerate() {
                let small = sealed(format!("hello from member {j}").into_bytes());
                let large = sealed((0..LARGE).map(|k| (k * 31 + j * 7) as u8).collect());
                let _ = tx.try_send(Command::Broadcast(small));
                let _ = tx.try_send(Command::Broadcast(large));
            }
        }
    }
    let delivered_after = sent_at.map(|t| t.elapsed()).unwrap_or_default();
    let all_intact = received.iter().flatten().all(|m| intact(m));
    let bytes: usize = received.iter().flatten().map(Vec::len).sum();
    for tx in &commands {
        let _ = tx.try_send(Command::Leave);
    }
    smol::Timer::after(Duration::from_millis(300)).await;
    drop(background);

    let discover = discovered.values().max().copied().unwrap_or_default();
    let connect = all_connected.unwrap_or_default();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "members": n,
                "time_to_discover_ms": discover.as_secs_f64() * 1000.0,
                "time_to_connect_ms": connect.as_secs_f64() * 1000.0,
                "messages_delivered": expected_messages,
                "bytes_delivered": bytes,
                "delivery_ms": delivered_after.as_secs_f64() * 1000.0,
                "intact": all_intact,
            })
        );
    } else {
        println!(
            "members:            {n}, each connected to the other {}",
            n - 1
        );
        println!(
            "time to discover:   {:.0} ms (every member found another in the DHT)",
            discover.as_secs_f64() * 1000.0
        );
        println!(
            "time to connect:    {:.0} ms (every data channel open)",
            connect.as_secs_f64() * 1000.0
        );
        println!(
            "messages delivered: {expected_messages} ({bytes} bytes) in {:.0} ms, {}",
            delivered_after.as_secs_f64() * 1000.0,
            if all_intact {
                "all intact (SHA-256 checked)"
            } else {
                "SOME CORRUPTED"
            }
        );
    }
    if !all_intact {
        return Err("a message arrived corrupted".into());
    }
    Ok(())
}
