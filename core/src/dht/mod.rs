//! The Mainline DHT (BEP 5, BEP 32, BEP 42, BEP 43): ids, the KRPC codec, the routing
//! table, the node that answers queries, and iterative lookups.

pub mod bep42;
mod config;
mod events;
mod extension;
mod flood;
mod id;
pub mod krpc;
mod lookup;
mod node;
pub mod peer_store;
pub mod routing;
mod server;
pub mod token;
mod topic;
mod topics;

pub use extension::MAX_EXTENSIONS;
pub use id::{Distance, InfoHash, NodeId, ParseIdError};
pub use lookup::{LookupId, LookupKind};
pub use node::{
    CLIENT_VERSION, Dht, DhtConfig, DhtConfigError, DhtError, DhtEvent, DhtStats, LookupSummary,
    MAX_BOOTSTRAP, MAX_LOOKUPS, MAX_PENDING, MAX_PING_QUEUE, MAX_TOPICS,
};
pub use topic::{meeting_topic, normalize_code};
