//! Extension queries: other protocols (meeting signaling) ride on KRPC, so they share the
//! node's socket, its transaction ids, retransmission and acknowledgements. A registered
//! method's queries are acknowledged with an empty response and reported as
//! [`DhtEvent::ExtensionQuery`]; unregistered methods still get 204.

use std::net::SocketAddr;

use super::krpc::{MAX_METHOD, Query};
use super::node::{Dht, Purpose};

/// Extension methods registered at most.
pub const MAX_EXTENSIONS: usize = 8;

impl Dht {
    /// Answers queries of `method` with an acknowledgement and reports them as events.
    /// Returns false if the method name is too long or too many are registered.
    pub fn register_extension(&mut self, method: &[u8]) -> bool {
        if method.len() > MAX_METHOD || self.extensions.len() >= MAX_EXTENSIONS {
            return false;
        }
        if !self.extensions.iter().any(|m| m == method) {
            self.extensions.push(method.to_vec());
        }
        true
    }

    /// Sends an extension query with the raw bencoded `args` (which must hold `id`, as
    /// every KRPC query's arguments do) to `to`, retransmitted once if unanswered.
    /// Returns false if it could not be sent (too many queries pending).
    pub fn send_extension(&mut self, to: SocketAddr, method: &[u8], args: Vec<u8>) -> bool {
        let query = Query::Other {
            method: method.to_vec(),
            args,
        };
        self.send_query(to, None, query, Purpose::Extension)
    }
}
