//! `dhtmeet demo`: the offline main job. In one process, on loopback, with real UDP
//! sockets: a STUN server, a small DHT, and N members who share only a fresh invitation
//! code. They find each other through the DHT, signal, open WebRTC data channels, send
//! messages both ways (a small one and a large one each, checked by SHA-256), and leave.
//! Nothing leaves the machine.
//!
//! [`run`] sets the scene ([`Infrastructure`], then the members), then hands every
//! member's event to the small [`App`] until each message has arrived, and prints its
//! [`app::Report`].

mod app;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code;
use dhtmeet_core::stun::BindingServer;
use dhtmeet_core::{ConfigError, Event, Node, NodeConfig};
use dhtmeet_smol::{Driver, random_seed};
use smol::Task;
use smol::channel::{Receiver, Sender};

use self::app::App;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Members in the meeting (2–16).
    #[arg(long, default_value_t = 3)]
    peers: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The demo gives up after this long.
const LIMIT: Duration = Duration::from_secs(60);
/// DHT nodes standing in for the public DHT.
const DHT_NODES: usize = 3;

/// Why `dhtmeet demo` failed, each case saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// `--peers` out of range.
    #[error("--peers must be between 2 and 16, not {0}")]
    Peers(usize),
    /// No loopback UDP socket.
    #[error("cannot bind a UDP socket on 127.0.0.1: {0} (is the loopback interface up?)")]
    Bind(io::Error),
    /// A bound socket could not be set up for its driver.
    #[error("cannot set up a loopback socket: {0}")]
    Socket(io::Error),
    /// No seed for the nodes and the code.
    #[error("no OS randomness: {0}")]
    Randomness(io::Error),
    /// The demo's own node settings were refused (a bug in the demo: please report it).
    #[error("{0} (a bug in the demo: please report it)")]
    Config(#[from] ConfigError),
    /// A member could not join (a bug in the demo: please report it).
    #[error("a member cannot join: {0} (a bug in the demo: please report it)")]
    Join(#[from] dhtmeet_core::JoinError),
    /// Not everything arrived in time.
    #[error(
        "the demo did not finish within {} s: {connected} of {connections} connections open, \
         {delivered} of {expected} messages delivered (run again with DEBUG=1 to see where it stopped)",
        LIMIT.as_secs()
    )]
    TimedOut {
        connected: usize,
        connections: usize,
        delivered: usize,
        expected: usize,
    },
    /// A message failed its SHA-256 check.
    #[error("a message arrived corrupted (a bug: please report it, with the output of DEBUG=1)")]
    Corrupted,
}

/// What the demo tells a member's driver.
pub(super) enum Command {
    Broadcast(Vec<u8>),
    Leave,
}

pub(crate) async fn run(args: Args) -> Result<(), DemoError> {
    if !(2..=16).contains(&args.peers) {
        return Err(DemoError::Peers(args.peers));
    }
    let started = Instant::now();
    let infra = Infrastructure::start()?;
    let code = code::generate(&mut random_seed().map_err(DemoError::Randomness)?.rng());
    let (events_tx, events_rx) = smol::channel::unbounded::<(usize, Event)>();
    let mut background = infra.tasks;
    let (mut commands, mut members) = (Vec::new(), Vec::new());
    for i in 0..args.peers {
        let bootstrap = infra.dht[i % infra.dht.len()];
        let (local, tx, task) = spawn_member(i, bootstrap, infra.stun, &code, events_tx.clone())?;
        members.push(local);
        commands.push(tx);
        background.push(task);
    }
    if !args.json {
        eprintln!(
            "demo: STUN {}, DHT {}, {} members on {}, code {code}",
            infra.stun,
            joined(&infra.dht),
            args.peers,
            joined(&members),
        );
    }
    let mut app = App::new(started, commands);
    while !app.done() {
        let Some((i, event)) = next_event(&events_rx, started + LIMIT).await else {
            return Err(app.timed_out());
        };
        app.on_event(i, event);
    }
    let report = app.leave();
    smol::Timer::after(Duration::from_millis(300)).await;
    drop(background);
    report.print(args.json);
    if !report.intact {
        return Err(DemoError::Corrupted);
    }
    Ok(())
}

/// The next member event, or `None` at `deadline`.
async fn next_event(
    events: &Receiver<(usize, Event)>,
    deadline: Instant,
) -> Option<(usize, Event)> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { events.recv().await.ok() }, async {
        async_io::Timer::after(left).await;
        None
    })
    .await
}

fn joined(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The public infrastructure, on loopback: one STUN server and a small DHT.
struct Infrastructure {
    stun: SocketAddr,
    dht: Vec<SocketAddr>,
    tasks: Vec<Task<()>>,
}

impl Infrastructure {
    fn start() -> Result<Infrastructure, DemoError> {
        let mut stun = Driver::new(bind()?, BindingServer::new()).map_err(DemoError::Socket)?;
        let stun_addr = stun.local_addr();
        let mut tasks = vec![smol::spawn(async move {
            let _ = stun
                .run(None, |_, never| -> ControlFlow<()> { match never {} })
                .await;
        })];
        let mut dht: Vec<SocketAddr> = Vec::new();
        for _ in 0..DHT_NODES {
            let socket = bind()?;
            let local = socket.local_addr().map_err(DemoError::Socket)?;
            // The first node is the others' bootstrap.
            let bootstrap = dht.first().copied().into_iter().collect();
            let mut driver = Driver::new(socket, node(bootstrap, Vec::new(), local)?)
                .map_err(DemoError::Socket)?;
            dht.push(local);
            tasks.push(smol::spawn(async move {
                let _ = driver
                    .run(None, |_, _| ControlFlow::<()>::Continue(()))
                    .await;
            }));
        }
        Ok(Infrastructure {
            stun: stun_addr,
            dht,
            tasks,
        })
    }
}

/// Starts member `i` in the meeting `code`: its address, its command channel, and the
/// task that drives it (its events go to `events`, tagged with `i`).
fn spawn_member(
    i: usize,
    bootstrap: SocketAddr,
    stun: SocketAddr,
    code: &str,
    events: Sender<(usize, Event)>,
) -> Result<(SocketAddr, Sender<Command>, Task<()>), DemoError> {
    let socket = bind()?;
    let local = socket.local_addr().map_err(DemoError::Socket)?;
    let mut n = node(vec![bootstrap], vec![stun], local)?;
    n.join(Instant::now(), code, false)?;
    let mut driver = Driver::new(socket, n).map_err(DemoError::Socket)?;
    let (tx, rx) = smol::channel::unbounded::<Command>();
    let task = smol::spawn(async move {
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
    });
    Ok((local, tx, task))
}

fn bind() -> Result<UdpSocket, DemoError> {
    UdpSocket::bind("127.0.0.1:0").map_err(DemoError::Bind)
}

fn node(
    bootstrap: Vec<SocketAddr>,
    stun: Vec<SocketAddr>,
    local: SocketAddr,
) -> Result<Node, DemoError> {
    let mut config = NodeConfig::new(random_seed().map_err(DemoError::Randomness)?);
    config.stun.servers = stun;
    config.dht = Some(DhtConfig {
        bootstrap,
        ..DhtConfig::default()
    });
    config.local_addr = Some(local);
    Ok(Node::new(Instant::now(), config)?)
}
