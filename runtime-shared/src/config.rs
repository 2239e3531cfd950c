//! What an embedder configures, and turning it into a bound socket and a core
//! [`NodeConfig`]: name resolution, binding, the local address. Runtime work only; the
//! protocol settings pass through untouched.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;

use dhtmeet_core::MeetingConfig;
use dhtmeet_core::{DhtConfig, NodeId};
use dhtmeet_core::{NodeConfig, SavedState, Seed};

use crate::StateDir;

/// Public STUN servers: the default on the real Internet when none is configured.
/// Tests, examples and the demo always configure their own.
pub const PUBLIC_STUN_SERVERS: &[&str] = &["stun.l.google.com:19302", "stun.cloudflare.com:3478"];

/// The public Mainline DHT routers: the bootstrap default on the real Internet.
pub const MAINLINE_ROUTERS: &[&str] = &[
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// The default STUN port (RFC 8489).
pub const STUN_PORT: u16 = 3478;
/// The default DHT port.
pub const DHT_PORT: u16 = 6881;

/// How to start a node. [`Config::default`] is the real Internet: a dual-stack socket on
/// a random port, the public STUN servers and the public Mainline routers. Every field
/// can be overridden; an empty `bootstrap` starts a new DHT network of one.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to bind. `None`: `[::]:0` dual-stack where the OS allows, else
    /// `0.0.0.0:0`.
    pub listen: Option<SocketAddr>,
    /// STUN servers: `host:port`, `host` (port 3478), `ip:port` or `[ipv6]:port`.
    pub stun_servers: Vec<String>,
    /// DHT bootstrap nodes, in the same forms (default port 6881).
    pub bootstrap: Vec<String>,
    /// A fixed DHT node id; default: random, BEP 42-secure once the public address is
    /// known.
    pub node_id: Option<NodeId>,
    /// The root of the node's randomness; default: fresh from the OS.
    pub seed: Option<Seed>,
    /// Meeting settings (timeouts, reconnection, member bound).
    pub meeting: MeetingConfig,
    /// Events the runtime queues for the application at most. While the queue is full
    /// the node goes on answering the network and holds as many events again, then
    /// drops new ones (never who joined or left); see
    /// [`policy`](crate::policy#event-delivery). Read promptly.
    pub event_queue: usize,
    /// Where to remember the node's state across restarts (DHT id and nodes, members'
    /// addresses; `docs/STATE.md`): loaded at start, saved every minute, when a member
    /// connects and at shutdown. `None` (the default) keeps nothing;
    /// [`state_dir::default_dir`](crate::state_dir::default_dir) is the platform's
    /// per-user directory.
    pub state_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: None,
            stun_servers: PUBLIC_STUN_SERVERS.iter().map(|s| s.to_string()).collect(),
            bootstrap: MAINLINE_ROUTERS.iter().map(|s| s.to_string()).collect(),
            node_id: None,
            seed: None,
            meeting: MeetingConfig::default(),
            event_queue: 1024,
            state_dir: None,
        }
    }
}

impl Config {
    /// A configuration for a private network: these STUN servers and bootstrap nodes
    /// only (either may be empty), nothing on the public Internet.
    pub fn private(stun_servers: &[&str], bootstrap: &[&str]) -> Config {
        Config {
            stun_servers: stun_servers.iter().map(|s| s.to_string()).collect(),
            bootstrap: bootstrap.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }
}

/// Why a node could not start, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another program holds the port.
    #[error("port {port} is in use: choose another listen address or stop the program using it")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// The listen address is not one of this machine's.
    #[error("cannot listen on {addr}: {source} (is that an address of this machine?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A STUN server or bootstrap node name did not resolve.
    #[error(
        "cannot resolve {name}: {source} (no network, or a typo? addresses like 192.0.2.1:6881 need no DNS)"
    )]
    Resolve {
        /// The name.
        name: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Nothing tells which of this machine's addresses the others should use.
    #[error(
        "cannot tell this machine's address: no route to any STUN server or bootstrap node \
         (no network?); listen on a specific address instead of 0.0.0.0"
    )]
    NoLocalAddress,
    /// The core refused the settings.
    #[error(transparent)]
    Config(#[from] dhtmeet_core::ConfigError),
    /// No randomness from the OS.
    #[error("no randomness from the operating system: {0}")]
    Random(io::Error),
}

/// Resolves `host:port`, `host` (with `default_port`), `ip:port` or `[ipv6]:port`
/// entries, in order, without duplicates; blocking. Literal addresses need no DNS.
pub fn resolve_blocking(
    entries: &[impl AsRef<str>],
    default_port: u16,
) -> Result<Vec<SocketAddr>, StartError> {
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.as_ref().trim();
        if entry.is_empty() {
            continue;
        }
        let found: Vec<SocketAddr> = if let Ok(addr) = entry.parse::<SocketAddr>() {
            vec![addr]
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, default_port)]
        } else {
            let with_port = if entry
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                entry.to_owned()
            } else {
                format!("{entry}:{default_port}")
            };
            let resolved = with_port
                .to_socket_addrs()
                .map_err(|source| StartError::Resolve {
                    name: entry.to_owned(),
                    source,
                })?
                .collect::<Vec<_>>();
            if resolved.is_empty() {
                return Err(StartError::Resolve {
                    name: entry.to_owned(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address"),
                });
            }
            resolved
        };
        for addr in found {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

/// Binds `listen`, or `[::]:0` dual-stack (falling back to `0.0.0.0:0`) when `None`.
pub fn bind(listen: Option<SocketAddr>) -> Result<UdpSocket, StartError> {
    let map = |addr: SocketAddr, source: io::Error| {
        if source.kind() == io::ErrorKind::AddrInUse {
            StartError::PortInUse { port: addr.port() }
        } else {
            StartError::Bind { addr, source }
        }
    };
    if let Some(addr) = listen {
        return UdpSocket::bind(addr).map_err(|e| map(addr, e));
    }
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    match bind_dual_stack(v6) {
        Ok(s) => Ok(s),
        Err(_) => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], 0));
            UdpSocket::bind(v4).map_err(|e| map(v4, e))
        }
    }
}

fn bind_dual_stack(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_only_v6(false)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The address of this machine's interface towards `dest`: a UDP `connect` picks the
/// route and sends nothing. A multi-homed host gets the interface of that route.
pub fn local_ip_towards(dest: SocketAddr) -> Option<IpAddr> {
    let bind = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let probe = UdpSocket::bind(bind).ok()?;
    probe.connect(dest).ok()?;
    probe
        .local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

/// The node's own address (its ICE host candidate): the bound address, or for a
/// wildcard bind the interface towards the first server or bootstrap node.
pub fn host_address(
    bound: SocketAddr,
    towards: impl IntoIterator<Item = SocketAddr>,
) -> Result<SocketAddr, StartError> {
    if !bound.ip().is_unspecified() {
        return Ok(bound);
    }
    // Prefer IPv4 destinations: most peers and NATs are IPv4.
    let mut towards: Vec<SocketAddr> = towards.into_iter().collect();
    towards.sort_by_key(|a| a.is_ipv6());
    towards
        .into_iter()
        .find_map(local_ip_towards)
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .ok_or(StartError::NoLocalAddress)
}

/// A bound socket and the core configuration for it.
#[derive(Debug)]
pub struct Prepared {
    /// The bound socket.
    pub socket: UdpSocket,
    /// The node's configuration (addresses resolved, local address set, saved state
    /// loaded).
    pub node: NodeConfig,
    /// The node's slot in the state directory, if it keeps state.
    pub state: Option<StateDir>,
    /// What the saved state held, if the node resumes from one.
    pub resumed: Option<Resumed>,
}

/// What a node resumed from (see [`Config::state_dir`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The state file.
    pub file: PathBuf,
    /// DHT nodes remembered.
    pub nodes: usize,
    /// Meetings remembered (with their members' addresses).
    pub meetings: usize,
}

/// Opens the state directory and loads what it remembers; a directory that cannot be
/// used or a bad file is one warning and a fresh start, never an error.
fn open_state(config: &Config) -> (Option<StateDir>, Option<SavedState>) {
    let Some(path) = &config.state_dir else {
        return (None, None);
    };
    let dir = match StateDir::open(path) {
        Ok(dir) => dir,
        Err(e) => {
            tracing::warn!("{e}; keeping no state");
            return (None, None);
        }
    };
    let saved = dir.load_or_warn();
    if let Some(s) = &saved {
        tracing::info!(
            file = %dir.path().display(),
            nodes = s.nodes.len(),
            meetings = s.meetings.len(),
            "resuming from saved state"
        );
    }
    (Some(dir), saved)
}

/// Resolves the bootstrap names. When that fails but the saved state remembers DHT
/// nodes, the node starts from those and whatever names did resolve, after a warning.
fn resolve_bootstrap(
    names: &[String],
    saved: Option<&SavedState>,
) -> Result<Vec<SocketAddr>, StartError> {
    resolve_bootstrap_with(names, saved, |n| resolve_blocking(n, DHT_PORT))
}

fn resolve_bootstrap_with(
    names: &[String],
    saved: Option<&SavedState>,
    resolve: impl Fn(&[String]) -> Result<Vec<SocketAddr>, StartError>,
) -> Result<Vec<SocketAddr>, StartError> {
    match resolve(names) {
        Ok(found) => Ok(found),
        Err(e) if saved.is_some_and(|s| !s.nodes.is_empty()) => {
            let mut found = Vec::new();
            for name in names {
                for addr in resolve(std::slice::from_ref(name)).unwrap_or_default() {
                    if !found.contains(&addr) {
                        found.push(addr);
                    }
                }
            }
            tracing::warn!(
                "{e}; starting from the remembered DHT nodes and {} bootstrap addresses",
                found.len()
            );
            Ok(found)
        }
        Err(e) => Err(e),
    }
}

/// Resolves names, binds the socket, loads the saved state and builds the core
/// configuration (blocking: name resolution may wait for DNS).
pub fn prepare(config: &Config) -> Result<Prepared, StartError> {
    let (state, saved) = open_state(config);
    let stun = resolve_blocking(&config.stun_servers, STUN_PORT)?;
    let bootstrap = resolve_bootstrap(&config.bootstrap, saved.as_ref())?;
    let socket = bind(config.listen)?;
    let bound = socket.local_addr().map_err(|source| StartError::Bind {
        addr: config
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        source,
    })?;
    let remembered = saved.iter().flat_map(|s| s.nodes.iter().map(|n| n.addr));
    let local = host_address(
        bound,
        bootstrap.iter().chain(&stun).copied().chain(remembered),
    )?;
    let seed = match config.seed {
        Some(seed) => seed,
        None => crate::random_seed().map_err(StartError::Random)?,
    };
    let mut node = NodeConfig::new(seed);
    node.stun.servers = stun;
    node.dht = Some(DhtConfig {
        bootstrap,
        node_id: config.node_id,
        ..DhtConfig::default()
    });
    node.meeting = config.meeting.clone();
    node.local_addr = Some(local);
    let resumed = match (&state, &saved) {
        (Some(dir), Some(s)) => Some(Resumed {
            file: dir.path().to_path_buf(),
            nodes: s.nodes.len(),
            meetings: s.meetings.len(),
        }),
        _ => None,
    };
    node.saved_state = saved;
    Ok(Prepared {
        socket,
        node,
        state,
        resumed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_resolve_with_default_ports() {
        let got = resolve_blocking(
            &["127.0.0.1:1", "127.0.0.1", "[::1]:9", " ", "127.0.0.1:1"],
            3478,
        )
        .unwrap();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:3478".parse().unwrap(),
            "[::1]:9".parse().unwrap(),
        ];
        assert_eq!(got, want);
        let local = resolve_blocking(&["localhost:5"], 3478).unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 5));
    }

    #[test]
    fn a_port_in_use_is_reported_as_such() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(Some(addr)).unwrap_err();
        assert!(matches!(err, StartError::PortInUse { port } if port == addr.port()));
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn a_foreign_listen_address_is_a_bind_error() {
        // TEST-NET-1 is never assigned to a local interface.
        let err = bind(Some("192.0.2.1:0".parse().unwrap())).unwrap_err();
        assert!(matches!(err, StartError::Bind { .. }), "{err}");
    }

    #[test]
    fn the_default_socket_is_dual_stack_or_ipv4() {
        let s = bind(None).unwrap();
        assert!(s.local_addr().unwrap().ip().is_unspecified());
    }

    #[test]
    fn a_wildcard_bind_takes_the_interface_towards_the_servers() {
        let bound: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let got = host_address(bound, ["127.0.0.1:3478".parse().unwrap()]).unwrap();
        assert_eq!(got, "127.0.0.1:4000".parse().unwrap());
        assert!(matches!(
            host_address(bound, []),
            Err(StartError::NoLocalAddress)
        ));
    }

    #[test]
    fn unresolvable_bootstrap_names_are_fatal_only_without_remembered_nodes() {
        // A resolver that knows literals only: no DNS in tests.
        let literal = |names: &[String]| -> Result<Vec<SocketAddr>, StartError> {
            names
                .iter()
                .map(|n| {
                    n.parse().map_err(|_| StartError::Resolve {
                        name: n.clone(),
                        source: io::Error::new(io::ErrorKind::NotFound, "unknown"),
                    })
                })
                .collect()
        };
        let names = vec!["router.example".to_string(), "127.0.0.1:6881".to_string()];
        assert!(resolve_bootstrap_with(&names, None, literal).is_err());
        assert!(resolve_bootstrap_with(&names, Some(&SavedState::default()), literal).is_err());
        let saved = SavedState {
            nodes: vec![dhtmeet_core::CompactNode {
                id: NodeId([1; 20]),
                addr: "127.0.0.1:7000".parse().unwrap(),
            }],
            ..SavedState::default()
        };
        assert_eq!(
            resolve_bootstrap_with(&names, Some(&saved), literal).unwrap(),
            vec!["127.0.0.1:6881".parse::<SocketAddr>().unwrap()],
            "the names that resolve are kept"
        );
    }

    #[test]
    fn prepare_builds_a_node_config_for_a_private_network() {
        let mut config = Config::private(&["127.0.0.1:3478"], &["127.0.0.1:6881"]);
        config.listen = Some("127.0.0.1:0".parse().unwrap());
        config.seed = Some(Seed::from_u64(1));
        let p = prepare(&config).unwrap();
        assert_eq!(
            p.node.stun.servers,
            vec!["127.0.0.1:3478".parse::<SocketAddr>().unwrap()]
        );
        let dht = p.node.dht.unwrap();
        assert_eq!(dht.bootstrap, vec!["127.0.0.1:6881".parse().unwrap()]);
        assert_eq!(p.node.local_addr, Some(p.socket.local_addr().unwrap()));
    }
}
