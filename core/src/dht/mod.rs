//! The Mainline DHT (BEP 5, BEP 32, BEP 42, BEP 43): ids, the KRPC codec, the routing
//! table, the node that answers queries, and iterative lookups.
//!
//! [`Dht`] (`node.rs`) is composed of owned parts:
//! - `tables.rs`: our id and the routing tables, and the unknown queriers to ping;
//! - `bootstrap.rs`: whether and when the node is ready;
//! - `queries.rs`: our queries awaiting an answer (transactions, retransmission);
//! - `server.rs`: answering other nodes' queries (tokens, stored peers, flood guard);
//! - `lookups.rs`: the iterative lookups (`lookup.rs`) and the announces after them;
//! - `topics.rs`: the topics kept looked up every [`DhtConfig::refresh_interval`];
//! - `extension.rs`: the registered extension methods (meeting signaling).

pub mod bep42;
mod bootstrap;
mod config;
mod events;
mod extension;
mod flood;
mod id;
pub mod krpc;
mod lookup;
mod lookups;
mod node;
pub mod peer_store;
mod queries;
pub mod routing;
mod server;
pub mod source;
mod tables;
pub mod token;
mod topic;
mod topics;

pub use config::{DhtConfig, DhtConfigError, MAX_BOOTSTRAP};
pub use events::{DhtError, DhtEvent, DhtStats, LookupSummary};
pub use extension::{ExtensionReply, ExtensionVerdict, MAX_EXTENSIONS};
pub use id::{Distance, InfoHash, NodeId, ParseIdError};
pub use lookup::{LookupId, LookupKind};
pub use lookups::MAX_LOOKUPS;
pub use node::Dht;
pub use queries::{CLIENT_VERSION, MAX_PENDING};
pub use tables::MAX_PING_QUEUE;
pub use topic::{meeting_topic, normalize_code};
pub use topics::MAX_TOPICS;
