//! Node mode (BEP 5): answering other nodes' queries, and the entry point for every KRPC
//! datagram.

use std::net::SocketAddr;

use super::bep42;
use super::id::NodeId;
use super::krpc::{Body, CompactNode, DecodeError, Message, Query, Response, Want, error_code};
use super::node::{Dht, DhtEvent, MAX_PING_QUEUE};
use crate::transmit::Transmit;

impl Dht {
    /// Handles one KRPC datagram from `remote`.
    pub(super) fn handle_krpc(&mut self, remote: SocketAddr, datagram: &[u8]) {
        let msg = match Message::decode(datagram) {
            Ok(msg) => msg,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                self.reply_malformed(remote, e);
                return;
            }
        };
        match msg.body {
            Body::Query { .. } => self.handle_query(remote, msg),
            Body::Response { .. } | Body::Error { .. } => self.handle_reply(remote, msg),
        }
    }

    /// A query we could not decode but whose transaction id we know gets error 203.
    fn reply_malformed(&mut self, remote: SocketAddr, e: DecodeError) {
        if !e.is_query || self.config.read_only {
            return;
        }
        let Some(t) = e.transaction_id else { return };
        if !self.flood.allow(remote, self.now) {
            self.stats.dropped_flood += 1;
            return;
        }
        self.send_error(remote, t, error_code::PROTOCOL, "Protocol Error");
    }

    fn handle_query(&mut self, remote: SocketAddr, msg: Message) {
        let Body::Query { id, query } = msg.body else {
            return;
        };
        // Read-only (BEP 43) means "do not use me as a DHT node": DHT queries are not
        // answered. Registered extensions (meeting signaling) are not DHT service and
        // still get through, or a read-only member could never be signaled.
        let extension =
            matches!(&query, Query::Other { method, .. } if self.extensions.contains(method));
        if self.config.read_only && !extension {
            self.stats.dropped_read_only += 1;
            return;
        }
        if !self.flood.allow(remote, self.now) {
            self.stats.dropped_flood += 1;
            return;
        }
        self.stats.queries_received += 1;
        self.note_querier(id, remote, msg.read_only);
        self.pump_pings();
        let t = msg.transaction_id;
        let response = match query {
            Query::Ping => Response::default(),
            Query::FindNode { target, want } => self.nodes_for(&target, want, remote),
            Query::GetPeers { info_hash, want } => {
                let mut r = self.nodes_for(&NodeId(info_hash.0), want, remote);
                let (v4, v6) = families(want, remote);
                r.values = self.peers.get(&info_hash, v4, v6, self.now);
                r.token = Some(self.tokens.issue(remote.ip(), self.now).to_vec());
                r
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.verify(remote.ip(), &token, self.now) {
                    self.stats.dropped_bad_token += 1;
                    self.send_error(remote, t, error_code::PROTOCOL, "Bad Token");
                    return;
                }
                let port = if implied_port { remote.port() } else { port };
                if port == 0 {
                    self.send_error(remote, t, error_code::PROTOCOL, "Invalid Port");
                    return;
                }
                // The peer is always the querier's own IP: announces for other IPs are
                // impossible by construction (BEP 5 stores the source address).
                if self
                    .peers
                    .announce(info_hash, SocketAddr::new(remote.ip(), port), self.now)
                {
                    self.stats.announces_stored += 1;
                }
                Response::default()
            }
            Query::Other { method, args } => {
                if !self.extensions.contains(&method) {
                    self.send_error(remote, t, error_code::METHOD_UNKNOWN, "Method Unknown");
                    return;
                }
                // A registered extension: acknowledged here, judged by its owner.
                self.events.push_back(DhtEvent::ExtensionQuery {
                    from: remote,
                    method,
                    args,
                });
                Response::default()
            }
        };
        let reply = Message {
            transaction_id: t,
            version: Some(super::node::CLIENT_VERSION.to_vec()),
            read_only: false,
            ip: Some(remote),
            body: Body::Response {
                id: self.id,
                response,
            },
        };
        self.transmits.push_back(Transmit {
            destination: remote,
            contents: reply.encode(),
        });
    }

    /// A querier we know stays good; one we do not know is pinged before it may enter the
    /// table (a query's source could be spoofed; an answer to our ping cannot).
    fn note_querier(&mut self, id: NodeId, remote: SocketAddr, read_only: bool) {
        if read_only || id == self.id || !super::routing::is_routable(remote) {
            return;
        }
        if self.config.enforce_bep42 && !bep42::is_valid(&id, remote.ip()) {
            return;
        }
        let now = self.now;
        // Only ping a querier that could enter a bucket: one bound for a full bucket would
        // only be cached, and two such nodes would ping each other for ever (each ping is
        // a query from an unknown node).
        let table = self.table_for(remote);
        if !table.on_query(&id, remote, now)
            && table.has_room_for(&id, now)
            && self.ping_queue.len() < MAX_PING_QUEUE
            && !self.ping_queue.contains(&remote)
        {
            self.ping_queue.push_back(remote);
        }
    }

    /// The k closest nodes we know to `target`, in the families the querier wants
    /// (BEP 32; by default the family it asked over).
    fn nodes_for(&self, target: &NodeId, want: Want, remote: SocketAddr) -> Response {
        let (v4, v6) = families(want, remote);
        let k = self.config.k;
        let pick = |nodes: Vec<CompactNode>| -> Vec<CompactNode> {
            nodes.into_iter().filter(|n| n.addr != remote).collect()
        };
        Response {
            nodes: if v4 {
                pick(self.table4.closest(target, k, self.now))
            } else {
                Vec::new()
            },
            nodes6: if v6 {
                pick(self.table6.closest(target, k, self.now))
            } else {
                Vec::new()
            },
            ..Response::default()
        }
    }

    fn send_error(&mut self, remote: SocketAddr, t: Vec<u8>, code: i64, message: &str) {
        self.stats.errors_sent += 1;
        let reply = Message {
            transaction_id: t,
            version: Some(super::node::CLIENT_VERSION.to_vec()),
            read_only: false,
            ip: None,
            body: Body::Error {
                code,
                message: message.to_owned(),
            },
        };
        self.transmits.push_back(Transmit {
            destination: remote,
            contents: reply.encode(),
        });
    }
}

fn families(want: Want, remote: SocketAddr) -> (bool, bool) {
    if want.v4 || want.v6 {
        (want.v4, want.v6)
    } else {
        (remote.is_ipv4(), remote.is_ipv6())
    }
}
