//! Node mode (BEP 5): answering other nodes' queries. The server owns what answering
//! needs beyond the routing tables: the announce tokens, the peers stored for others,
//! and the flood guards (one for DHT queries, one for registered extensions, so that a
//! DHT flood cannot starve meeting signaling).

use std::net::SocketAddr;
use std::time::Instant;

use super::events::{DhtEvent, DhtStats, Outbox};
use super::extension::{ExtensionReply, ExtensionVerdict, Extensions};
use super::flood::{DHT_QUERIES, EXTENSION_QUERIES, FloodGuard};
use super::id::NodeId;
use super::krpc::{Body, CompactNode, KrpcDecodeError, Message, Query, Response, Want, error_code};
use super::peer_store::PeerStore;
use super::queries::CLIENT_VERSION;
use super::tables::Tables;
use super::token::Tokens;
use crate::seed::Rng;

/// The query-answering part of the node.
#[derive(Debug)]
pub(super) struct Server {
    tokens: Tokens,
    peers: PeerStore,
    /// DHT queries (and malformed ones that would get 203).
    flood: FloodGuard,
    /// Registered extension queries (meeting signaling): their own budget.
    extension_flood: FloodGuard,
    counts: DhtStats,
}

/// What answering a query reads from the rest of the node.
pub(super) struct Context<'a> {
    pub(super) tables: &'a Tables,
    pub(super) extensions: &'a Extensions,
    /// Nodes per answer (BEP 5's k).
    pub(super) k: usize,
}

impl Server {
    /// Tokens drawn from `token_rng`, nothing stored.
    pub(super) fn new(now: Instant, token_rng: Rng) -> Self {
        Server {
            tokens: Tokens::new(token_rng, now),
            peers: PeerStore::new(),
            flood: FloodGuard::new(DHT_QUERIES, now),
            extension_flood: FloodGuard::new(EXTENSION_QUERIES, now),
            counts: DhtStats::default(),
        }
    }

    /// Forgets expired peers and idle flood-guard sources.
    pub(super) fn expire(&mut self, now: Instant) {
        self.peers.expire(now);
        self.flood.expire(now);
        self.extension_flood.expire(now);
    }

    /// Peers stored for others: (info-hashes, peers).
    pub(super) fn peer_store_size(&self) -> (usize, usize) {
        self.peers.size()
    }

    /// A datagram that is not KRPC. A query we could not decode but whose transaction id
    /// we know gets error 203 (unless `read_only`).
    pub(super) fn malformed(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        e: KrpcDecodeError,
        read_only: bool,
        out: &mut Outbox,
    ) {
        self.counts.dropped_malformed += 1;
        if !e.is_query || read_only {
            return;
        }
        let Some(t) = e.transaction_id else { return };
        if !self.flood.allow(remote.ip(), now) {
            self.counts.dropped_flood += 1;
            return;
        }
        self.send_error(remote, t, error_code::PROTOCOL, "Protocol Error", out);
    }

    /// Whether a query from `remote` is to be answered: not while `read_only` (BEP 43:
    /// "do not use me as a DHT node"), except registered extensions, which are not DHT
    /// service (or a read-only member could never be signaled); and within the source's
    /// flood budget (per source IP or IPv6 /64 and in total; extensions have their own).
    pub(super) fn admit(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        query: &Query,
        read_only: bool,
        extensions: &Extensions,
    ) -> bool {
        let extension = matches!(query, Query::Other { method, .. } if extensions.contains(method));
        if read_only && !extension {
            self.counts.dropped_read_only += 1;
            return false;
        }
        let guard = if extension {
            &mut self.extension_flood
        } else {
            &mut self.flood
        };
        if !guard.allow(remote.ip(), now) {
            self.counts.dropped_flood += 1;
            return false;
        }
        self.counts.queries_received += 1;
        true
    }

    /// Answers an admitted query from `remote` with transaction id `t`.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        t: Vec<u8>,
        query: Query,
        cx: &Context<'_>,
        out: &mut Outbox,
    ) {
        let response = match query {
            Query::Ping => Response::default(),
            Query::FindNode { target, want } => nodes_for(now, cx, &target, want, remote),
            Query::GetPeers { info_hash, want } => {
                let mut r = nodes_for(now, cx, &NodeId(info_hash.0), want, remote);
                let (v4, v6) = families(want, remote);
                r.values = self.peers.get(&info_hash, v4, v6, now);
                r.token = Some(self.tokens.issue(remote.ip(), now).to_vec());
                r
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.verify(remote.ip(), &token, now) {
                    self.counts.dropped_bad_token += 1;
                    self.send_error(remote, t, error_code::PROTOCOL, "Bad Token", out);
                    return;
                }
                let port = if implied_port { remote.port() } else { port };
                if port == 0 {
                    self.send_error(remote, t, error_code::PROTOCOL, "Invalid Port", out);
                    return;
                }
                // The peer is always the querier's own IP: announces for other IPs are
                // impossible by construction (BEP 5 stores the source address). The store
                // always stores (it makes room by fair eviction), so the empty response
                // below is true: an announce we answer is an announce we keep.
                self.peers
                    .announce(info_hash, SocketAddr::new(remote.ip(), port), now);
                self.counts.announces_stored += 1;
                Response::default()
            }
            Query::Other { method, args } => {
                if !cx.extensions.contains(&method) {
                    self.send_unknown_method(remote, t, out);
                    return;
                }
                // A registered extension: judged by its owner, who answers with
                // `answer_extension`.
                out.report(DhtEvent::ExtensionQuery {
                    from: remote,
                    method,
                    args,
                    reply: ExtensionReply {
                        to: remote,
                        transaction_id: t,
                    },
                });
                return;
            }
        };
        self.respond(remote, t, response, cx, out);
    }

    /// Answers an extension query as its owner judged it: an invalid one exactly as an
    /// unregistered method is answered (204, or nothing while `read_only`: see `admit`).
    pub(super) fn answer_extension(
        &mut self,
        reply: ExtensionReply,
        verdict: ExtensionVerdict,
        read_only: bool,
        cx: &Context<'_>,
        out: &mut Outbox,
    ) {
        let ExtensionReply { to, transaction_id } = reply;
        match verdict {
            ExtensionVerdict::Acknowledge => {
                self.respond(to, transaction_id, Response::default(), cx, out);
            }
            ExtensionVerdict::AsUnknownMethod if read_only => {}
            ExtensionVerdict::AsUnknownMethod => {
                self.send_unknown_method(to, transaction_id, out);
            }
        }
    }

    fn respond(
        &mut self,
        remote: SocketAddr,
        t: Vec<u8>,
        response: Response,
        cx: &Context<'_>,
        out: &mut Outbox,
    ) {
        let reply = Message {
            transaction_id: t,
            version: Some(CLIENT_VERSION.to_vec()),
            read_only: false,
            ip: Some(remote),
            body: Body::Response {
                id: cx.tables.id(),
                response,
            },
        };
        out.send(remote, reply.encode());
    }

    /// 204: the one answer for an unknown method, whether unregistered or refused by its
    /// owner (the same bytes either way).
    fn send_unknown_method(&mut self, remote: SocketAddr, t: Vec<u8>, out: &mut Outbox) {
        self.send_error(remote, t, error_code::METHOD_UNKNOWN, "Method Unknown", out);
    }

    fn send_error(
        &mut self,
        remote: SocketAddr,
        t: Vec<u8>,
        code: i64,
        message: &str,
        out: &mut Outbox,
    ) {
        self.counts.errors_sent += 1;
        let reply = Message {
            transaction_id: t,
            version: Some(CLIENT_VERSION.to_vec()),
            read_only: false,
            ip: None,
            body: Body::Error {
                code,
                message: message.to_owned(),
            },
        };
        out.send(remote, reply.encode());
    }

    /// Fills in our counters (queries answered, errors sent, announces stored, and the
    /// incoming datagrams we dropped) in `stats`.
    pub(super) fn count_into(&self, stats: &mut DhtStats) {
        let c = &self.counts;
        stats.queries_received = c.queries_received;
        stats.errors_sent = c.errors_sent;
        stats.announces_stored = c.announces_stored;
        stats.dropped_malformed = c.dropped_malformed;
        stats.dropped_flood = c.dropped_flood;
        stats.dropped_read_only = c.dropped_read_only;
        stats.dropped_bad_token = c.dropped_bad_token;
    }
}

/// The k closest nodes we know to `target`, in the families the querier wants
/// (BEP 32; by default the family it asked over), the querier left out.
fn nodes_for(
    now: Instant,
    cx: &Context<'_>,
    target: &NodeId,
    want: Want,
    remote: SocketAddr,
) -> Response {
    let (v4, v6) = families(want, remote);
    let pick = |ipv6: bool| -> Vec<CompactNode> {
        cx.tables
            .closest_in(now, ipv6, target, cx.k)
            .into_iter()
            .filter(|n| n.addr != remote)
            .collect()
    };
    Response {
        nodes: if v4 { pick(false) } else { Vec::new() },
        nodes6: if v6 { pick(true) } else { Vec::new() },
        ..Response::default()
    }
}

fn families(want: Want, remote: SocketAddr) -> (bool, bool) {
    if want.v4 || want.v6 {
        (want.v4, want.v6)
    } else {
        (remote.is_ipv4(), remote.is_ipv6())
    }
}
