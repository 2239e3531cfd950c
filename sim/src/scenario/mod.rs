//! Ready-made scenarios, shared by the `dhtmeet-sim` CLI, the tests and the benchmarks.
//!
//! Every scenario takes a seed and returns, with its result, the [`TraceHash`] of its
//! run, so that a run can be reproduced and compared.
//!
//! The address plan (all from ranges reserved for documentation, RFC 5737, and private
//! use, so nothing looks like a real host):
//!
//! | who | address |
//! |---|---|
//! | STUN servers | `192.0.2.1:3478`, `198.51.100.1:3478` |
//! | public DHT nodes (`dht`, `meeting`) | `198.18.0.N:6881` |
//! | a site's public address (outermost NAT, or the host itself when `open`) | `203.0.113.N` |
//! | a CGN's inside, the home router's address there | [`CGNAT_HOME_EXTERNAL`](crate::CGNAT_HOME_EXTERNAL) |
//! | a host on a NAT's LAN | `192.168.1.10:4000` (each LAN is its own realm) |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::link::LinkConfig;
use crate::topology::TopologyError;
use crate::trace::TraceHash;

pub mod dht;
pub mod meeting;
pub mod stun;

/// The scenarios' STUN servers.
pub const STUN_SERVERS: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3478),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 3478),
];

/// The socket of a host on a LAN behind a NAT preset.
pub const LAN_HOST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)), 4000);

/// The public address of site `n` (1 ..= 254).
pub fn site_public(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, n))
}

/// A server's link: 20 ms each way with 2 ms of jitter.
pub fn server_link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        ..LinkConfig::default()
    }
}

/// A site's access link: 10 ms each way with 2 ms of jitter.
pub fn access_link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        ..LinkConfig::default()
    }
}

/// Why a scenario did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The topology was refused (a bug in the scenario).
    #[error("topology: {0}")]
    Topology(#[from] TopologyError),
    /// A node refused its configuration.
    #[error("node configuration: {0}")]
    Node(#[from] dhtmeet_core::ConfigError),
    /// The `dht` scenario's settings are invalid.
    #[error("{0}")]
    DhtConfig(#[from] dht::DhtSimConfigError),
    /// The `meeting` scenario's settings are invalid.
    #[error("{0}")]
    MeetingConfig(#[from] meeting::MeetingSimConfigError),
    /// A member could not join the meeting.
    #[error("join: {0}")]
    Join(#[from] dhtmeet_core::JoinError),
    /// The pcap capture could not be written.
    #[error("writing the pcap capture: {0}")]
    Pcap(#[from] std::io::Error),
    /// The scenario's goal was not reached in time.
    #[error("{what} after {:.3} s of virtual time (trace hash {hash})", after.as_secs_f64())]
    Failed {
        /// What did not happen.
        what: &'static str,
        /// Virtual time when the scenario gave up.
        after: Duration,
        /// The trace hash of the failed run.
        hash: TraceHash,
    },
}
