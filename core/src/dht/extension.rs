//! Extension queries: other protocols (meeting signaling) ride on KRPC, so they share the
//! node's socket, its transaction ids, retransmission and acknowledgements. A registered
//! method's queries are reported as [`DhtEvent::ExtensionQuery`](super::DhtEvent::ExtensionQuery)
//! and answered as their owner judges them ([`Dht::answer_extension`](super::Dht::answer_extension)):
//! acknowledged with an empty response when valid, and otherwise exactly as an
//! unregistered method is (204 Method Unknown, or nothing while read-only), so a query
//! that fails its owner's checks cannot tell whether the method is registered here.

use std::net::SocketAddr;

use super::krpc::MAX_METHOD;

/// Extension methods registered at most.
pub const MAX_EXTENSIONS: usize = 8;

/// Where the answer to one extension query goes: its querier and transaction id. Handed
/// out with [`DhtEvent::ExtensionQuery`](super::DhtEvent::ExtensionQuery), spent by
/// [`Dht::answer_extension`](super::Dht::answer_extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionReply {
    pub(super) to: SocketAddr,
    pub(super) transaction_id: Vec<u8>,
}

/// How the owner of an extension method judged a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionVerdict {
    /// Valid: acknowledged with an empty response.
    Acknowledge,
    /// Invalid (not authenticated, not for us, undecodable, or nobody to take it):
    /// answered byte for byte as a node without the method answers.
    AsUnknownMethod,
}

/// The registered extension methods.
#[derive(Debug, Default)]
pub(super) struct Extensions {
    methods: Vec<Vec<u8>>,
}

impl Extensions {
    /// Registers `method`; false if the name is too long or too many are registered.
    pub(super) fn register(&mut self, method: &[u8]) -> bool {
        if method.len() > MAX_METHOD || self.methods.len() >= MAX_EXTENSIONS {
            return false;
        }
        if !self.methods.iter().any(|m| m == method) {
            self.methods.push(method.to_vec());
        }
        true
    }

    /// Whether `method` is registered.
    pub(super) fn contains(&self, method: &[u8]) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}
