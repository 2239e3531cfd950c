//! `dhtmeet dht`: run a DHT node, or announce / look up an info-hash once.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::{DhtConfig, InfoHash, LookupId, LookupSummary, NodeId, meeting_topic};
use dhtmeet_core::{Event, Node, NodeConfig};
use dhtmeet_smol::{Driver, random_seed, resolve_all};

/// The Mainline DHT's customary port, used when a bootstrap entry has none.
const DHT_PORT: u16 = 6881;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run a DHT node (e.g. a private bootstrap node for a test network) until stopped.
    Node(NodeArgs),
    /// Announce this socket under an info-hash, then print the peers found.
    Announce(AnnounceArgs),
    /// Look up the peers of an info-hash and print them.
    Lookup(LookupArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NodeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// Nodes to bootstrap from (comma-separated host:port); none makes a new network.
    #[arg(long, value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// A fixed node id (40 hex characters); default: random. Also read from NODE_ID.
    #[arg(long, env = "NODE_ID")]
    node_id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Nodes to bootstrap from (comma-separated host:port).
    #[arg(long, value_delimiter = ',', required = true)]
    bootstrap: Vec<String>,
    /// The info-hash (40 hex characters).
    #[arg(long, conflicts_with = "code", required_unless_present = "code")]
    info_hash: Option<String>,
    /// A meeting code instead of an info-hash: its meeting topic is used.
    #[arg(long)]
    code: Option<String>,
    /// Local address to bind (default 0.0.0.0:0).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Print one JSON object instead of one peer per line.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnnounceArgs {
    #[command(flatten)]
    target: Target,
    /// The port to announce (default: --implied-port).
    #[arg(long, conflicts_with = "implied_port")]
    port: Option<u16>,
    /// Announce the UDP source port as seen by each node (what a NAT maps): the default.
    #[arg(long)]
    implied_port: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LookupArgs {
    #[command(flatten)]
    target: Target,
}

pub(crate) async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Node(args) => run_node(args).await,
        Command::Announce(args) => {
            let port = if args.implied_port { None } else { args.port };
            if port == Some(0) {
                return Err("--port must be between 1 and 65535".into());
            }
            one_shot(args.target, Some(port)).await
        }
        Command::Lookup(args) => one_shot(args.target, None).await,
    }
}

fn parse_node_id(hex: Option<&str>) -> Result<Option<NodeId>, String> {
    hex.map(|h| {
        h.parse::<NodeId>()
            .map_err(|e| format!("NODE_ID / --node-id {h:?}: {e}"))
    })
    .transpose()
}

/// A node with a DHT on `listen`. One-shot commands run read-only (BEP 43): they ask but
/// do not answer, so that other nodes do not keep a process that is about to exit.
async fn bind_node(
    listen: SocketAddr,
    bootstrap: &[String],
    node_id: Option<NodeId>,
    read_only: bool,
) -> Result<Driver<Node>, String> {
    let bootstrap = resolve_all(bootstrap, DHT_PORT)
        .await
        .map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut config = NodeConfig::new(random_seed().map_err(|e| format!("no OS randomness: {e}"))?);
    config.dht = Some(DhtConfig {
        bootstrap,
        node_id,
        read_only,
        ..DhtConfig::default()
    });
    let node = Node::new(config, Instant::now()).map_err(|e| e.to_string())?;
    Driver::new(socket, node).map_err(|e| e.to_string())
}

async fn run_node(args: NodeArgs) -> Result<(), String> {
    let node_id = parse_node_id(args.node_id.as_deref())?;
    let mut driver = bind_node(args.listen, &args.bootstrap, node_id, false).await?;
    let id = driver
        .machine()
        .dht()
        .map(|d| d.id())
        .ok_or("the node runs no DHT")?;
    // One ready line on stdout, flushed, for scripts and tests.
    println!("dht node {id} listening on {}", driver.local_addr());
    let _ = std::io::stdout().flush();
    let stopped = driver
        .run(None, |node, event| {
            match event {
                Event::DhtReady { nodes } => tracing::info!(nodes, "DHT ready"),
                Event::DhtBootstrapFailed => tracing::warn!("no bootstrap node answered; retrying"),
                other => tracing::debug!(?other, "event"),
            }
            let _ = node;
            ControlFlow::<()>::Continue(())
        })
        .await;
    match stopped {
        Ok(_) => Err("the DHT node stopped".into()),
        Err(e) => Err(format!("socket error: {e}")),
    }
}

/// Bootstraps, then announces (`announce = Some(port)`) or looks up, and prints the peers.
async fn one_shot(target: Target, announce: Option<Option<u16>>) -> Result<(), String> {
    let info_hash = match (&target.info_hash, &target.code) {
        (Some(hex), _) => hex
            .parse::<InfoHash>()
            .map_err(|e| format!("--info-hash {hex:?}: {e}"))?,
        (None, Some(code)) => meeting_topic(code),
        (None, None) => return Err("give --info-hash or --code".into()),
    };
    if !(target.timeout.is_finite() && target.timeout > 0.0) {
        return Err(format!(
            "--timeout must be a positive number of seconds, not {}",
            target.timeout
        ));
    }
    let listen = target
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut driver = bind_node(listen, &target.bootstrap, None, true).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(target.timeout);
    let ready = driver
        .run(Some(deadline), |_, event| match event {
            Event::DhtReady { nodes } => ControlFlow::Break(Ok(nodes)),
            Event::DhtBootstrapFailed => ControlFlow::Break(Err(())),
            _ => ControlFlow::Continue(()),
        })
        .await
        .map_err(|e| format!("socket error: {e}"))?;
    match ready {
        Some(Ok(nodes)) => tracing::info!(nodes, "bootstrapped"),
        Some(Err(())) => {
            return Err(format!(
                "no DHT node reachable: none of {} answered",
                target.bootstrap.join(", ")
            ));
        }
        None => return Err("timed out while bootstrapping".into()),
    }
    let now = Instant::now();
    let dht = driver
        .machine_mut()
        .dht_mut()
        .ok_or("the node runs no DHT")?;
    let id: LookupId = match announce {
        Some(port) => dht.announce(now, info_hash, port),
        None => dht.get_peers(now, info_hash),
    }
    .map_err(|e| e.to_string())?;
    let summary = driver
        .run(Some(deadline), |_, event| match event {
            Event::LookupDone(s) if s.id == id => ControlFlow::Break(s),
            _ => ControlFlow::Continue(()),
        })
        .await
        .map_err(|e| format!("socket error: {e}"))?
        .ok_or("timed out during the lookup")?;
    if summary.closest.is_empty() {
        return Err("no DHT node answered the lookup".into());
    }
    if announce.is_some() && summary.announced == 0 {
        return Err(format!(
            "no node accepted the announce ({} nodes asked)",
            summary.closest.len()
        ));
    }
    print_summary(
        &summary,
        info_hash,
        driver.local_addr(),
        target.json,
        announce.is_some(),
    );
    Ok(())
}

fn print_summary(
    s: &LookupSummary,
    info_hash: InfoHash,
    local: SocketAddr,
    json: bool,
    announced: bool,
) {
    if json {
        let peers: Vec<String> = s.peers.iter().map(ToString::to_string).collect();
        let mut out = serde_json::json!({
            "info_hash": info_hash.to_string(),
            "local": local.to_string(),
            "peers": peers,
            "nodes": s.closest.len(),
            "rpcs": s.rpcs,
            "elapsed_ms": s.elapsed.as_secs_f64() * 1000.0,
        });
        if announced {
            out["announced_to"] = s.announced.into();
        }
        println!("{out}");
    } else {
        for p in &s.peers {
            println!("{p}");
        }
        if announced {
            eprintln!(
                "announced {info_hash} to {} nodes from {local}",
                s.announced
            );
        }
        eprintln!(
            "{} peers; {} closest nodes answered; {} queries in {:.0} ms",
            s.peers.len(),
            s.closest.len(),
            s.rpcs,
            s.elapsed.as_secs_f64() * 1000.0
        );
    }
}
