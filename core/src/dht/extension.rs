//! Extension queries: other protocols (meeting signaling) ride on KRPC, so they share the
//! node's socket, its transaction ids, retransmission and acknowledgements. A registered
//! method's queries are acknowledged with an empty response and reported as
//! [`DhtEvent::ExtensionQuery`](super::DhtEvent::ExtensionQuery); unregistered methods
//! still get 204.

use super::krpc::MAX_METHOD;

/// Extension methods registered at most.
pub const MAX_EXTENSIONS: usize = 8;

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
