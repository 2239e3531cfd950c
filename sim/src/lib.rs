//! # dhtmeet-sim: a deterministic network simulator with RFC 4787 NAT models
//!
//! One thread, virtual time, one seed. Hosts run any state machine with the core's face
//! ([`dhtmeet_core::SansIo`]), unchanged: STUN clients and servers, DHT nodes
//! ([`scenario::dht`]) and whole meeting nodes ([`scenario::meeting`]). Hosts sit on the
//! Internet or behind NAT boxes (NAT behind NAT too), attached by links with latency,
//! jitter, loss (random and bursty), duplication, reordering and rate limits. Every
//! datagram's journey is traced; the trace has a hash and can be written as pcap for
//! Wireshark.
//!
//! * **Virtual time.** The origin is read once ([`Sim::new`]); every instant handed to a
//!   machine is origin + a virtual offset. The simulator jumps from event to event and
//!   never sleeps.
//! * **One seed.** Links, NAT port choice and churn each draw from their own child of the
//!   simulation's [`Seed`](dhtmeet_core::Seed); machines get seeds from
//!   [`Sim::host_seed`]. The event queue breaks ties by scheduling order. Same seed, same
//!   run, same [`TraceHash`].
//! * **Drain until idle.** After every input the simulator drains the machine's
//!   `poll_transmit` and `poll_socket_command` (it keeps a pool of extra sockets per
//!   host), `poll_event` and `poll_timeout`, as a runtime would.
//! * **TTL.** Each NAT box a datagram crosses takes one from its TTL, the Internet
//!   [`Sim::internet_hops`]; a datagram whose TTL runs out is dropped where Linux drops
//!   it (`docs/sim.md`).
//!
//! ## A STUN client behind a symmetric NAT
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use std::time::Duration;
//! use dhtmeet_core::{Event, Node, NodeConfig, Seed, stun::Mapping};
//! use dhtmeet_sim::{HostSpec, LinkConfig, NatPreset, Realm, Sim};
//!
//! let mut sim: Sim<Node> = Sim::new(Seed::from_u64(7));
//! let servers: Vec<SocketAddr> = vec!["192.0.2.1:3478".parse()?, "198.51.100.1:3478".parse()?];
//! for (i, &addr) in servers.iter().enumerate() {
//!     let node = Node::new(sim.now(), NodeConfig::new(sim.host_seed(&format!("stun{i}"))))?;
//!     sim.add_host(HostSpec::new(format!("stun{i}"), Realm::Internet, addr), node)?;
//! }
//! let public: IpAddr = "203.0.113.1".parse()?;
//! let lan = NatPreset::Symmetric.install(&mut sim, "client", Realm::Internet, public, LinkConfig::default())?;
//! let mut config = NodeConfig::new(sim.host_seed("client"));
//! config.stun.servers = servers;
//! let client = Node::new(sim.now(), config)?;
//! sim.add_host(HostSpec::new("client", lan, "192.168.1.10:4000".parse()?), client)?;
//!
//! let report = loop {
//!     let e = sim.run_until_event(Duration::from_secs(30)).expect("STUN finished in time");
//!     if let Event::AddressDiscovered(report) = e.event {
//!         break report; // (the servers may report other things, e.g. about their DHT)
//!     }
//! };
//! assert_eq!(report.first.mapped.ip(), public);
//! assert_eq!(report.mapping, Mapping::EndpointDependent);
//! println!("trace hash {}", sim.trace_hash());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `dhtmeet-sim` binary runs ready-made scenarios (`dhtmeet-sim stun --nat symmetric`);
//! `docs/sim.md` documents the model, the presets against RFC 4787, and the trace.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod engine;
mod faults;
mod forwarding;
mod host;
pub mod link;
pub mod nat;
pub mod pcap;
mod preset;
pub mod punch;
mod queue;
pub mod scenario;
mod topology;
mod trace;

pub(crate) use dhtmeet_core::Rng;

pub use engine::{DEFAULT_INTERNET_HOPS, DEFAULT_TTL, PcapSummary, Sim, SimEvent, SimStats};
pub use faults::{ChurnConfig, MachineFactory};
pub use link::{GilbertElliott, LinkConfig, LinkConfigError};
pub use nat::{
    BackgroundTraffic, FilteringBehavior, MappingBehavior, Nat, NatConfig, NatDrop, PortAssignment,
    RefusedInbound,
};
pub use preset::{CGNAT_HOME_EXTERNAL, NatPreset, UnknownPreset};
pub use topology::{DeviceId, HostId, HostSpec, NatId, NatSpec, Realm, TopologyError};
pub use trace::{Fate, TraceHash, TracePoint, TraceRecord};
