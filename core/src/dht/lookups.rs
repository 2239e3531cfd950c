//! The lookups part of the node: the iterative lookups running (see `lookup.rs` for one),
//! and the announces that follow an announce lookup, until each is done and summarised.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::events::{DhtError, DhtEvent, LookupSummary, Outbox};
use super::id::{InfoHash, NodeId};
use super::krpc::{CompactNode, Query, Response, Want};
use super::lookup::{Lookup, LookupId, LookupKind};
use super::queries::{Outgoing, Purpose};

/// Lookups running at once at most (API calls beyond get [`DhtError::TooManyLookups`]).
pub const MAX_LOOKUPS: usize = 64;

/// An announce lookup whose announce_peer queries are out.
#[derive(Debug)]
struct Announcing {
    summary: LookupSummary,
    outstanding: usize,
    started: Instant,
}

/// A lookup that finished: its summary (with `announced` still 0), and the k closest
/// nodes that answered with their tokens, for an announce to follow.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) summary: LookupSummary,
    pub(super) closest: Vec<(CompactNode, Option<Vec<u8>>)>,
    pub(super) started: Instant,
}

impl Finished {
    /// For an announce lookup, the announce_peer queries to the k closest nodes that
    /// gave a token (BEP 5); `None` for other lookups.
    pub(super) fn announces(&mut self) -> Option<Vec<Outgoing>> {
        let LookupKind::Announce { port } = self.summary.kind else {
            return None;
        };
        let info_hash = InfoHash(self.summary.target.0);
        let id = self.summary.id;
        let queries = std::mem::take(&mut self.closest)
            .into_iter()
            .filter_map(|(node, token)| {
                Some(Outgoing {
                    to: node.addr,
                    id: Some(node.id),
                    query: Query::AnnouncePeer {
                        info_hash,
                        port: port.unwrap_or(0),
                        implied_port: port.is_none(),
                        token: token?,
                    },
                    purpose: Purpose::Announce(id),
                })
            })
            .collect();
        Some(queries)
    }
}

/// What a lookup wants done next.
#[derive(Debug)]
pub(super) struct Step {
    /// Queries to send (a failure to send goes back through [`Lookups::not_sent`]).
    pub(super) queries: Vec<Outgoing>,
    /// Whether the lookup is done (to [`Lookups::finish`] once the queries are sent).
    pub(super) done: bool,
}

/// The running lookups and announces.
#[derive(Debug)]
pub(super) struct Lookups {
    running: BTreeMap<LookupId, Lookup>,
    announcing: BTreeMap<LookupId, Announcing>,
    next_id: u64,
    /// BEP 5's k and Kademlia's α.
    k: usize,
    alpha: usize,
}

impl Lookups {
    /// None running; lookups converge on the `k` closest nodes, `alpha` queries at a time.
    pub(super) fn new(k: usize, alpha: usize) -> Self {
        Lookups {
            running: BTreeMap::new(),
            announcing: BTreeMap::new(),
            next_id: 0,
            k,
            alpha,
        }
    }

    /// Starts a lookup for `target` from the known `seeds` and `bootstrap` addresses.
    pub(super) fn start(
        &mut self,
        now: Instant,
        target: NodeId,
        kind: LookupKind,
        seeds: &[CompactNode],
        bootstrap: &[SocketAddr],
    ) -> Result<LookupId, DhtError> {
        if self.running.len() + self.announcing.len() >= MAX_LOOKUPS {
            return Err(DhtError::TooManyLookups);
        }
        let id = LookupId(self.next_id);
        self.next_id += 1;
        let lookup = Lookup::new(now, target, kind, seeds, bootstrap, self.k, self.alpha);
        self.running.insert(id, lookup);
        Ok(id)
    }

    /// What lookup `id` wants sent now, and whether it is done; `None` if it is not
    /// running.
    pub(super) fn step(&mut self, id: LookupId) -> Option<Step> {
        let lookup = self.running.get_mut(&id)?;
        let mut queries = Vec::new();
        while let Some((node, addr)) = lookup.next_query() {
            let query = match lookup.kind {
                LookupKind::FindNode => Query::FindNode {
                    target: lookup.target,
                    want: Want::default(),
                },
                _ => Query::GetPeers {
                    info_hash: InfoHash(lookup.target.0),
                    want: Want::default(),
                },
            };
            queries.push(Outgoing {
                to: addr,
                id: node,
                query,
                purpose: Purpose::Lookup(id),
            });
        }
        Some(Step {
            queries,
            done: lookup.is_done(),
        })
    }

    /// A query of lookup `id` to `addr` could not be sent.
    pub(super) fn not_sent(&mut self, id: LookupId, addr: SocketAddr) {
        if let Some(l) = self.running.get_mut(&id) {
            l.on_failure(addr);
        }
    }

    /// Node `node` at `remote` answered lookup `id`: its nodes (never `own`) become
    /// candidates, new peers are reported. False if the lookup is not running.
    pub(super) fn on_response(
        &mut self,
        id: LookupId,
        own: NodeId,
        remote: SocketAddr,
        node: NodeId,
        response: Response,
        out: &mut Outbox,
    ) -> bool {
        let Some(lookup) = self.running.get_mut(&id) else {
            return false;
        };
        lookup.on_response(remote, node, response.token);
        // Never ourselves: implementations that do not leave the querier out of
        // `nodes` (bittorrent-dht) hand us our own id, and querying and announcing
        // to ourselves would take one of the k places from a real node.
        let others = |nodes: &[CompactNode]| -> Vec<CompactNode> {
            nodes.iter().filter(|n| n.id != own).copied().collect()
        };
        lookup.add_nodes(&others(&response.nodes));
        lookup.add_nodes(&others(&response.nodes6));
        let new = lookup.add_peers(&response.values);
        if !new.is_empty() {
            out.report(DhtEvent::PeersFound {
                lookup: id,
                info_hash: lookup.info_hash(),
                peers: new,
            });
        }
        true
    }

    /// A query of lookup `id` to `remote` passed its soft timeout: the lookup goes on
    /// without it. False if the lookup is not running.
    pub(super) fn on_stalled(&mut self, id: LookupId, remote: SocketAddr) -> bool {
        let Some(lookup) = self.running.get_mut(&id) else {
            return false;
        };
        lookup.on_stalled(remote);
        true
    }

    /// A query of lookup `id` to `remote` failed. False if the lookup is not running.
    pub(super) fn on_failure(&mut self, id: LookupId, remote: SocketAddr) -> bool {
        let Some(lookup) = self.running.get_mut(&id) else {
            return false;
        };
        lookup.on_failure(remote);
        true
    }

    /// Ends lookup `id` and summarises it.
    pub(super) fn finish(&mut self, now: Instant, id: LookupId) -> Option<Finished> {
        let lookup = self.running.remove(&id)?;
        let closest = lookup.closest_responded();
        let summary = LookupSummary {
            id,
            kind: lookup.kind,
            target: lookup.target,
            peers: lookup.peers.clone(),
            closest: closest.iter().map(|(n, _)| *n).collect(),
            rpcs: lookup.rpcs,
            elapsed: now.saturating_duration_since(lookup.started),
            announced: 0,
        };
        Some(Finished {
            summary,
            closest,
            started: lookup.started,
        })
    }

    /// The announce lookup `done` sent `outstanding` announce_peer queries: it is
    /// summarised when they are all answered or failed.
    pub(super) fn await_announces(&mut self, done: Finished, outstanding: usize) {
        self.announcing.insert(
            done.summary.id,
            Announcing {
                summary: done.summary,
                outstanding,
                started: done.started,
            },
        );
    }

    /// An announce_peer of lookup `id` was acknowledged (or failed): the summary once
    /// it was the last.
    pub(super) fn announce_answered(
        &mut self,
        now: Instant,
        id: LookupId,
        acknowledged: bool,
    ) -> Option<LookupSummary> {
        let a = self.announcing.get_mut(&id)?;
        a.outstanding = a.outstanding.saturating_sub(1);
        if acknowledged {
            a.summary.announced += 1;
        }
        if a.outstanding > 0 {
            return None;
        }
        let mut a = self.announcing.remove(&id)?;
        a.summary.elapsed = now.saturating_duration_since(a.started);
        Some(a.summary)
    }
}
