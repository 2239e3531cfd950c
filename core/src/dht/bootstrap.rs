//! Bootstrap (BEP 5): a lookup of our own id through the bootstrap nodes and the nodes
//! we remember, retried while nobody answers; the node is ready once it has finished
//! with a good node in the routing table (or at once, for the first node of a network).

use std::time::Instant;

use super::lookup::LookupId;

/// Where the bootstrap stands.
#[derive(Debug, Default)]
pub(super) struct Bootstrap {
    ready: bool,
    /// The lookup of our own id, while it runs.
    lookup: Option<LookupId>,
    /// When to try again after a bootstrap that found nobody.
    retry_at: Option<Instant>,
}

impl Bootstrap {
    /// Whether bootstrap has finished.
    pub(super) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Bootstrap finished (with nodes, or as the first node of a network).
    pub(super) fn set_ready(&mut self) {
        self.ready = true;
    }

    /// The bootstrap lookup started as `id`.
    pub(super) fn started(&mut self, id: LookupId) {
        self.lookup = Some(id);
    }

    /// Bootstrap found nobody (or could not start): try again at `at`.
    pub(super) fn retry_at(&mut self, at: Instant) {
        self.retry_at = Some(at);
    }

    /// Whether lookup `id` is the bootstrap lookup, which ends with it.
    pub(super) fn take_finished(&mut self, id: LookupId) -> bool {
        if self.lookup == Some(id) {
            self.lookup = None;
            return true;
        }
        false
    }

    /// Whether a retry is due at `now` (it is then no longer scheduled).
    pub(super) fn take_due_retry(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            return true;
        }
        false
    }

    /// When the next retry is due.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retry_at
    }
}
