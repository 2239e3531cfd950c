//! The Mainline DHT (BEP 5, BEP 32, BEP 42, BEP 43): ids, the KRPC codec, the routing
//! table, the node that answers queries, and iterative lookups.

pub mod bep42;
mod id;
pub mod krpc;
pub mod peer_store;
pub mod routing;
pub mod token;

pub use id::{Distance, InfoHash, NodeId, ParseIdError};
