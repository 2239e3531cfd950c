//! Iterative lookups (BEP 5, Kademlia): ask the closest known nodes for closer ones, α
//! at a time, until the k closest nodes that answer have all answered.
//!
//! A lookup only decides *whom to ask next* and *when it is done*; the DHT node sends
//! the queries, matches responses and timeouts, and feeds them back here.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use super::id::{Distance, InfoHash, NodeId};
use super::krpc::CompactNode;

/// Candidates a lookup keeps (closest first); farther ones are forgotten.
pub const MAX_CANDIDATES: usize = 64;
/// Peers a get_peers lookup collects at most.
pub const MAX_PEERS: usize = 512;

/// A lookup's handle, unique within one DHT node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// find_node: the k closest nodes to a target (bootstrap, bucket refresh).
    FindNode,
    /// get_peers: peers of an info-hash, and tokens from the closest nodes.
    GetPeers,
    /// get_peers, then announce_peer to the k closest nodes that gave a token.
    Announce {
        /// `None` announces with `implied_port` (the UDP source port).
        port: Option<u16>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CandidateState {
    NotQueried,
    InFlight,
    /// Asked, its first attempt unanswered: no longer counted against α, so the lookup
    /// asks the next candidate meanwhile; still one of the k closest, waited for until
    /// its second attempt is answered or fails.
    Stalled,
    Responded { token: Option<Vec<u8>> },
    Failed,
}

impl CandidateState {
    /// Not failed: one of the nodes the lookup converges on.
    fn is_alive(&self) -> bool {
        *self != CandidateState::Failed
    }

    /// Asked and not yet answered or failed.
    fn is_pending(&self) -> bool {
        matches!(self, CandidateState::InFlight | CandidateState::Stalled)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// `None` for a bootstrap address whose id we do not know yet.
    pub id: Option<NodeId>,
    pub addr: SocketAddr,
    pub state: CandidateState,
}

/// One iterative lookup.
#[derive(Debug)]
pub struct Lookup {
    pub(crate) target: NodeId,
    pub(crate) kind: LookupKind,
    pub(crate) started: Instant,
    pub(crate) rpcs: u32,
    /// Closest first; bootstrap addresses (no id) sort first so they are asked first.
    candidates: Vec<Candidate>,
    seen: BTreeSet<SocketAddr>,
    pub(crate) peers: Vec<SocketAddr>,
    k: usize,
    alpha: usize,
    /// The closest candidate's distance when the latest response came in.
    closest_before_response: Option<Distance>,
    /// The latest response brought nobody closer than the closest already seen: ask all
    /// of the k closest not yet asked at once (Kademlia §2.3), not just α.
    stalled: bool,
}

impl Lookup {
    /// A lookup for `target`, seeded with known nodes and bootstrap addresses.
    pub(crate) fn new(
        now: Instant,
        target: NodeId,
        kind: LookupKind,
        seeds: &[CompactNode],
        bootstrap: &[SocketAddr],
        k: usize,
        alpha: usize,
    ) -> Self {
        let mut lookup = Lookup {
            target,
            kind,
            started: now,
            rpcs: 0,
            candidates: Vec::new(),
            seen: BTreeSet::new(),
            peers: Vec::new(),
            k,
            alpha,
            closest_before_response: None,
            stalled: false,
        };
        for addr in bootstrap {
            if lookup.seen.insert(*addr) {
                lookup.candidates.push(Candidate {
                    id: None,
                    addr: *addr,
                    state: CandidateState::NotQueried,
                });
            }
        }
        lookup.add_nodes(seeds);
        lookup
    }

    /// The info-hash a get_peers or announce lookup is about.
    pub fn info_hash(&self) -> InfoHash {
        InfoHash(self.target.0)
    }

    /// Adds nodes learned from a response (bounded to the closest [`MAX_CANDIDATES`]).
    pub(crate) fn add_nodes(&mut self, nodes: &[CompactNode]) {
        for node in nodes {
            if !self.seen.insert(node.addr) {
                continue;
            }
            let d = self.target.distance(&node.id);
            let at = self
                .candidates
                .iter()
                .position(|c| c.id.is_some_and(|id| self.target.distance(&id) > d))
                .unwrap_or(self.candidates.len());
            if at >= MAX_CANDIDATES {
                continue;
            }
            self.candidates.insert(
                at,
                Candidate {
                    id: Some(node.id),
                    addr: node.addr,
                    state: CandidateState::NotQueried,
                },
            );
            if self.candidates.len() > MAX_CANDIDATES {
                // Forget the farthest that is not in flight (its answer would be ignored).
                if let Some(pos) = self
                    .candidates
                    .iter()
                    .rposition(|c| c.state != CandidateState::InFlight)
                {
                    self.candidates.remove(pos);
                }
            }
        }
    }

    /// Adds peers from a get_peers response (bounded, deduplicated).
    pub(crate) fn add_peers(&mut self, peers: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut new = Vec::new();
        for p in peers {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if !self.peers.contains(p) {
                self.peers.push(*p);
                new.push(*p);
            }
        }
        new
    }

    fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.state == CandidateState::InFlight)
            .count()
    }

    /// Indices of the k closest candidates that have not failed (bootstrap addresses
    /// count while they are unanswered).
    fn closest_alive(&self) -> impl Iterator<Item = usize> + '_ {
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state.is_alive())
            .take(self.k)
            .map(|(i, _)| i)
    }

    /// The distance of the closest candidate with a known id that has not failed.
    fn closest_distance(&self) -> Option<Distance> {
        self.candidates
            .iter()
            .filter(|c| c.state.is_alive())
            .find_map(|c| c.id)
            .map(|id| self.target.distance(&id))
    }

    /// The next node to ask, if α (k once the lookup has stalled) are not already in
    /// flight; marks it in flight.
    pub(crate) fn next_query(&mut self) -> Option<(Option<NodeId>, SocketAddr)> {
        if let Some(before) = self.closest_before_response.take() {
            // The response's nodes have been added since: did they bring anyone closer?
            self.stalled = self.closest_distance() >= Some(before);
        }
        let limit = if self.stalled { self.k } else { self.alpha };
        if self.in_flight() >= limit {
            return None;
        }
        let next = self
            .closest_alive()
            .find(|&i| self.candidates[i].state == CandidateState::NotQueried)?;
        let c = &mut self.candidates[next];
        c.state = CandidateState::InFlight;
        self.rpcs += 1;
        Some((c.id, c.addr))
    }

    /// A queried node answered with its id (and, for get_peers, maybe a token).
    pub(crate) fn on_response(&mut self, addr: SocketAddr, id: NodeId, token: Option<Vec<u8>>) {
        let Some(pos) = self.candidates.iter().position(|c| c.addr == addr) else {
            return;
        };
        self.closest_before_response = self.closest_distance();
        let mut c = self.candidates.remove(pos);
        c.id = Some(id);
        c.state = CandidateState::Responded { token };
        // Re-insert at its place by distance now that its id is known.
        let d = self.target.distance(&id);
        let at = self
            .candidates
            .iter()
            .position(|o| o.id.is_some_and(|oid| self.target.distance(&oid) > d))
            .unwrap_or(self.candidates.len());
        self.candidates.insert(at, c);
    }

    /// A queried node has not answered the first attempt: while it is asked again, its
    /// place among the α in flight goes to the next candidate.
    pub(crate) fn on_stalled(&mut self, addr: SocketAddr) {
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.addr == addr && c.state == CandidateState::InFlight)
        {
            c.state = CandidateState::Stalled;
        }
    }

    /// A queried node did not answer.
    pub(crate) fn on_failure(&mut self, addr: SocketAddr) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.addr == addr) {
            c.state = CandidateState::Failed;
        }
    }

    /// Done when the k closest live candidates have all answered, or when nothing is left
    /// to ask and nothing is in flight (stalled queries included).
    pub(crate) fn is_done(&self) -> bool {
        let all_answered = self
            .closest_alive()
            .all(|i| matches!(self.candidates[i].state, CandidateState::Responded { .. }));
        let nothing_left = !self.candidates.iter().any(|c| c.state.is_pending())
            && !self
                .closest_alive()
                .any(|i| self.candidates[i].state == CandidateState::NotQueried);
        all_answered || nothing_left
    }

    /// The k closest nodes that answered, with their tokens.
    pub(crate) fn closest_responded(&self) -> Vec<(CompactNode, Option<Vec<u8>>)> {
        self.candidates
            .iter()
            .filter_map(|c| match (&c.state, c.id) {
                (CandidateState::Responded { token }, Some(id)) => {
                    Some((CompactNode { id, addr: c.addr }, token.clone()))
                }
                _ => None,
            })
            .take(self.k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(first: u8) -> CompactNode {
        let mut id = [0u8; 20];
        id[0] = first;
        CompactNode {
            id: NodeId(id),
            addr: SocketAddr::from(([10, 0, 0, first], 6881)),
        }
    }

    #[test]
    fn asks_alpha_at_a_time_closest_first_and_finishes_when_k_closest_answered() {
        let now = crate::test_clock::start();
        let seeds: Vec<_> = [0x80, 0x40, 0x20, 0x10, 0x08].map(node).to_vec();
        let mut l = Lookup::new(
            now,
            NodeId([0; 20]),
            LookupKind::FindNode,
            &seeds,
            &[],
            2,
            3,
        );
        let asked: Vec<_> = std::iter::from_fn(|| l.next_query()).collect();
        // α = 3 but only the k = 2 closest are asked while they are pending.
        assert_eq!(
            asked.iter().map(|a| a.1).collect::<Vec<_>>(),
            [node(0x08).addr, node(0x10).addr]
        );
        l.on_response(node(0x08).addr, node(0x08).id, None);
        assert!(!l.is_done());
        // A closer node shows up: it must be asked before the lookup can end.
        l.add_nodes(&[node(0x01)]);
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x01).addr));
        l.on_failure(node(0x10).addr);
        l.on_response(node(0x01).addr, node(0x01).id, Some(b"tok".to_vec()));
        assert!(l.is_done(), "the 2 closest alive (0x01, 0x08) answered");
        let closest: Vec<_> = l
            .closest_responded()
            .iter()
            .map(|(n, _)| n.id.0[0])
            .collect();
        assert_eq!(closest, [0x01, 0x08]);
        assert_eq!(l.rpcs, 3);
    }

    #[test]
    fn bootstrap_addresses_are_asked_first_and_placed_once_their_id_is_known() {
        let now = crate::test_clock::start();
        let boot: SocketAddr = "192.0.2.1:6881".parse().unwrap();
        let mut l = Lookup::new(
            now,
            NodeId([0; 20]),
            LookupKind::FindNode,
            &[],
            &[boot],
            8,
            3,
        );
        assert_eq!(l.next_query(), Some((None, boot)));
        assert!(!l.is_done());
        l.on_response(boot, node(0x33).id, None);
        l.add_nodes(&[node(0x44), node(0x22)]);
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x22).addr));
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x44).addr));
        l.on_failure(node(0x22).addr);
        l.on_failure(node(0x44).addr);
        assert!(l.is_done(), "nothing left to ask");
        assert_eq!(l.closest_responded().len(), 1);
    }

    #[test]
    fn a_response_with_nobody_closer_releases_all_k_closest_at_once() {
        let now = crate::test_clock::start();
        let seeds: Vec<_> = [0x80, 0x40, 0x20, 0x10, 0x08, 0x04].map(node).to_vec();
        let mut l = Lookup::new(
            now,
            NodeId([0; 20]),
            LookupKind::FindNode,
            &seeds,
            &[],
            8,
            3,
        );
        let first: Vec<_> = std::iter::from_fn(|| l.next_query()).collect();
        assert_eq!(first.len(), 3, "α at a time while making progress");
        // An answer that brings a closer node: still α.
        l.on_response(node(0x04).addr, node(0x04).id, None);
        l.add_nodes(&[node(0x02)]);
        let next: Vec<_> = std::iter::from_fn(|| l.next_query()).collect();
        assert_eq!(
            next.iter().map(|a| a.1).collect::<Vec<_>>(),
            [node(0x02).addr]
        );
        // An answer with nobody closer than 0x02: every remaining one of the k closest
        // goes out at once (Kademlia §2.3), not α.
        l.on_response(node(0x08).addr, node(0x08).id, None);
        l.add_nodes(&[node(0x03)]);
        let rest: Vec<_> = std::iter::from_fn(|| l.next_query()).collect();
        assert_eq!(
            rest.iter().map(|a| a.1).collect::<Vec<_>>(),
            [0x03, 0x20, 0x40, 0x80].map(|b| node(b).addr)
        );
        assert_eq!(l.rpcs, 8);
    }

    #[test]
    fn a_stalled_query_frees_its_place_among_alpha_and_is_still_waited_for() {
        let now = crate::test_clock::start();
        let seeds: Vec<_> = [0x40, 0x20, 0x10, 0x08].map(node).to_vec();
        let lookup = || Lookup::new(now, NodeId([0; 20]), LookupKind::GetPeers, &seeds, &[], 2, 1);
        let mut l = lookup();
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x08).addr));
        assert_eq!(l.next_query(), None, "α = 1 in flight");
        // 0x08 does not answer at once: the next closest is asked meanwhile.
        l.on_stalled(node(0x08).addr);
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x10).addr));
        l.on_response(node(0x10).addr, node(0x10).id, None);
        assert!(!l.is_done(), "0x08 is one of the 2 closest and still being asked");
        assert_eq!(l.next_query(), None);
        // It is dead: its place goes to the next one.
        l.on_failure(node(0x08).addr);
        assert_eq!(l.next_query().map(|a| a.1), Some(node(0x20).addr));
        l.on_response(node(0x20).addr, node(0x20).id, None);
        assert!(l.is_done());
        // Or it was only slow: its late answer counts.
        let mut l = lookup();
        l.next_query();
        l.on_stalled(node(0x08).addr);
        l.next_query();
        l.on_response(node(0x10).addr, node(0x10).id, None);
        l.on_response(node(0x08).addr, node(0x08).id, Some(b"t".to_vec()));
        assert!(l.is_done());
        let closest: Vec<_> = l.closest_responded().iter().map(|(n, _)| n.id.0[0]).collect();
        assert_eq!(closest, [0x08, 0x10]);
    }

    #[test]
    fn candidates_and_peers_are_bounded() {
        let now = crate::test_clock::start();
        let mut l = Lookup::new(now, NodeId([0; 20]), LookupKind::GetPeers, &[], &[], 8, 3);
        let many: Vec<_> = (0..200u16)
            .map(|i| {
                let mut id = [0u8; 20];
                id[..2].copy_from_slice(&i.to_be_bytes());
                CompactNode {
                    id: NodeId(id),
                    addr: SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1)),
                }
            })
            .collect();
        l.add_nodes(&many);
        assert_eq!(l.candidates.len(), MAX_CANDIDATES);
        assert_eq!(l.candidates[0].id, Some(many[0].id), "the closest are kept");
        let peers: Vec<_> = (0..1000u16)
            .map(|i| SocketAddr::from(([192, 0, (i >> 8) as u8, i as u8], 1)))
            .collect();
        l.add_peers(&peers);
        l.add_peers(&peers);
        assert_eq!(l.peers.len(), MAX_PEERS);
    }
}
