//! `dhtmeet dht`: run a DHT node, or announce / look up an info-hash once.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::{
    DhtConfig, InfoHash, LookupId, LookupSummary, NodeId, ParseIdError, meeting_topic,
};
use dhtmeet_core::{ConfigError, Event, LookupError, Node, NodeConfig};
use dhtmeet_smol::{Driver, random_seed, resolve_all};

use crate::net_args::{Bootstrap, bootstrap_nodes};

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
    /// Nodes to bootstrap from (comma-separated host:port); at least one (not `none`).
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

/// Why a `dhtmeet dht` command failed, each case saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DhtCliError {
    #[error("{0} (check --bootstrap)")]
    Resolve(std::io::Error),
    #[error("cannot listen on {addr}: {source} (give another --listen address)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no OS randomness: {0}")]
    Randomness(std::io::Error),
    #[error("invalid node settings: {0}")]
    Config(ConfigError),
    #[error("socket error: {0}")]
    Socket(std::io::Error),
    #[error("the DHT node stopped")]
    Stopped,
    #[error("NODE_ID / --node-id {given:?}: {error}")]
    BadNodeId { given: String, error: ParseIdError },
    #[error("--info-hash {given:?}: {error}")]
    BadInfoHash { given: String, error: ParseIdError },
    #[error("give --info-hash or --code")]
    NoTarget,
    #[error("--port must be between 1 and 65535")]
    BadPort,
    #[error("--timeout must be a positive number of seconds, not {0}")]
    BadTimeout(f64),
    #[error("--bootstrap none: a lookup needs a DHT node to ask; give --bootstrap HOST:PORT")]
    NoBootstrap,
    #[error("no DHT node reachable: none of {0} answered")]
    Unreachable(String),
    #[error("timed out while bootstrapping (a longer --timeout, or other --bootstrap nodes)")]
    BootstrapTimeout,
    #[error("the DHT refused the lookup: {0}")]
    Lookup(LookupError),
    #[error("timed out during the lookup (a longer --timeout may help)")]
    LookupTimeout,
    #[error("no DHT node answered the lookup")]
    NoAnswer,
    #[error("no node accepted the announce ({asked} nodes asked)")]
    NotAccepted { asked: usize },
}

pub(crate) async fn run(command: Command) -> Result<(), DhtCliError> {
    match command {
        Command::Node(args) => run_node(args).await,
        Command::Announce(args) => {
            let port = if args.implied_port { None } else { args.port };
            if port == Some(0) {
                return Err(DhtCliError::BadPort);
            }
            one_shot(args.target, Some(port)).await
        }
        Command::Lookup(args) => one_shot(args.target, None).await,
    }
}

fn parse_node_id(hex: Option<&str>) -> Result<Option<NodeId>, DhtCliError> {
    hex.map(|h| {
        h.parse::<NodeId>().map_err(|error| DhtCliError::BadNodeId {
            given: h.to_owned(),
            error,
        })
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
) -> Result<Driver<Node>, DhtCliError> {
    let bootstrap = resolve_all(bootstrap, DHT_PORT)
        .await
        .map_err(DhtCliError::Resolve)?;
    let socket = UdpSocket::bind(listen).map_err(|source| DhtCliError::Listen {
        addr: listen,
        source,
    })?;
    let mut config = NodeConfig::new(random_seed().map_err(DhtCliError::Randomness)?);
    config.dht = Some(DhtConfig {
        bootstrap,
        node_id,
        read_only,
        ..DhtConfig::default()
    });
    let node = Node::new(Instant::now(), config).map_err(DhtCliError::Config)?;
    Driver::new(socket, node).map_err(DhtCliError::Socket)
}

async fn run_node(args: NodeArgs) -> Result<(), DhtCliError> {
    let node_id = parse_node_id(args.node_id.as_deref())?;
    let bootstrap = match bootstrap_nodes(&args.bootstrap) {
        Bootstrap::Given(nodes) => nodes,
        Bootstrap::Default | Bootstrap::None => Vec::new(),
    };
    let mut driver = bind_node(args.listen, &bootstrap, node_id, false).await?;
    let id = driver
        .machine()
        .dht()
        .map(|d| d.id())
        .ok_or(DhtCliError::Stopped)?;
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
        Ok(_) => Err(DhtCliError::Stopped),
        Err(e) => Err(DhtCliError::Socket(e)),
    }
}

/// Bootstraps, then announces (`announce = Some(port)`) or looks up, and prints the peers.
async fn one_shot(target: Target, announce: Option<Option<u16>>) -> Result<(), DhtCliError> {
    let info_hash = match (&target.info_hash, &target.code) {
        (Some(hex), _) => hex
            .parse::<InfoHash>()
            .map_err(|error| DhtCliError::BadInfoHash {
                given: hex.clone(),
                error,
            })?,
        (None, Some(code)) => meeting_topic(code),
        (None, None) => return Err(DhtCliError::NoTarget),
    };
    if !(target.timeout.is_finite() && target.timeout > 0.0) {
        return Err(DhtCliError::BadTimeout(target.timeout));
    }
    let Bootstrap::Given(bootstrap) = bootstrap_nodes(&target.bootstrap) else {
        return Err(DhtCliError::NoBootstrap);
    };
    let listen = target
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut driver = bind_node(listen, &bootstrap, None, true).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(target.timeout);
    let ready = driver
        .run(Some(deadline), |_, event| match event {
            Event::DhtReady { nodes } => ControlFlow::Break(Ok(nodes)),
            Event::DhtBootstrapFailed => ControlFlow::Break(Err(())),
            _ => ControlFlow::Continue(()),
        })
        .await
        .map_err(DhtCliError::Socket)?;
    match ready {
        Some(Ok(nodes)) => tracing::info!(nodes, "bootstrapped"),
        Some(Err(())) => {
            return Err(DhtCliError::Unreachable(bootstrap.join(", ")));
        }
        None => return Err(DhtCliError::BootstrapTimeout),
    }
    let now = Instant::now();
    let node = driver.machine_mut();
    let id: LookupId = match announce {
        Some(port) => node.announce(now, info_hash, port),
        None => node.get_peers(now, info_hash),
    }
    .map_err(DhtCliError::Lookup)?;
    let summary = driver
        .run(Some(deadline), |_, event| match event {
            Event::LookupDone(s) if s.id == id => ControlFlow::Break(s),
            _ => ControlFlow::Continue(()),
        })
        .await
        .map_err(DhtCliError::Socket)?
        .ok_or(DhtCliError::LookupTimeout)?;
    if summary.closest.is_empty() {
        return Err(DhtCliError::NoAnswer);
    }
    if announce.is_some() && summary.announced == 0 {
        return Err(DhtCliError::NotAccepted {
            asked: summary.closest.len(),
        });
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
