//! The Binding responder every node runs (RFC 8489 §6.3): meeting peers and DHT
//! bootstrap nodes serve as STUN servers for each other.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use super::rate_limit::ResponseRateLimit;
use super::wire::{self, BINDING, Class, Message};
use crate::transmit::{SansIo, Transmit};

/// Replies waiting to be polled before new requests are dropped. The runtime drains
/// after every datagram, so this only fills if the owner stops polling.
pub const SERVER_BACKLOG: usize = 256;

/// What the responder did with the requests it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Binding success responses sent.
    pub requests_answered: u64,
    /// Error responses sent (420 unknown attribute, 400 unsupported method).
    pub error_responses_sent: u64,
    /// Datagrams that were not valid STUN (truncated, bad cookie or length, bad
    /// FINGERPRINT, malformed attribute).
    pub dropped_malformed: u64,
    /// Requests with USERNAME or MESSAGE-INTEGRITY: ICE connectivity checks, which belong
    /// to a WebRTC session, not to the public responder.
    pub dropped_ice_checks: u64,
    /// Indications and responses, which a responder does not answer.
    pub dropped_not_request: u64,
    /// Requests dropped because [`SERVER_BACKLOG`] replies were waiting.
    pub dropped_backlog: u64,
    /// Requests dropped because their source IP (IPv6: /64) had spent its answer
    /// budget ([`ANSWERS_PER_SECOND`](super::ANSWERS_PER_SECOND), burst
    /// [`ANSWER_BURST`](super::ANSWER_BURST)).
    pub dropped_rate_limited: u64,
    /// Requests dropped because [`MAX_SOURCES`](super::MAX_SOURCES) busy sources filled
    /// the table and the newcomers' shared budget
    /// ([`OVERFLOW_PER_SECOND`](super::OVERFLOW_PER_SECOND)) was spent.
    pub dropped_overflow: u64,
}

/// A STUN Binding responder: answers each request with the address it came from, within
/// a budget per source IP (a Binding response is bigger than its request, so an
/// unlimited responder would be a reflector).
#[derive(Debug, Default)]
pub struct BindingServer {
    replies: VecDeque<Transmit>,
    limit: ResponseRateLimit,
    stats: ServerStats,
}

impl BindingServer {
    /// A responder with nothing to send.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the responder has done so far.
    pub fn stats(&self) -> ServerStats {
        let limited = self.limit.stats();
        ServerStats {
            dropped_rate_limited: limited.over_budget,
            dropped_overflow: limited.overflow_spent,
            ..self.stats
        }
    }

    /// Answers one decoded message from `remote` at `now`, within its source's budget.
    pub fn handle_message(&mut self, now: Instant, remote: SocketAddr, msg: &Message<'_>) {
        if msg.class() != Class::Request {
            self.stats.dropped_not_request += 1;
            return;
        }
        if msg.has_username() || msg.has_integrity() {
            self.stats.dropped_ice_checks += 1;
            return;
        }
        if self.replies.len() >= SERVER_BACKLOG {
            self.stats.dropped_backlog += 1;
            return;
        }
        if !self.limit.allow(now, remote.ip()) {
            return;
        }
        let id = msg.transaction_id();
        let contents = if !msg.unknown_required().is_empty() {
            // §6.3.1.1: 420 listing the comprehension-required attributes we lack.
            self.stats.error_responses_sent += 1;
            wire::error_response(
                msg.method(),
                id,
                420,
                "Unknown Attribute",
                msg.unknown_required(),
            )
        } else if msg.method() != BINDING {
            self.stats.error_responses_sent += 1;
            wire::error_response(msg.method(), id, 400, "Unsupported Method", &[])
        } else {
            self.stats.requests_answered += 1;
            wire::binding_success(id, remote)
        };
        self.replies.push_back(Transmit::new(remote, contents));
    }
}

impl SansIo for BindingServer {
    type Event = Infallible;

    fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        match Message::decode(datagram) {
            Ok(msg) => self.handle_message(now, remote, &msg),
            Err(_) => self.stats.dropped_malformed += 1,
        }
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.replies.pop_front()
    }

    fn poll_event(&mut self) -> Option<Infallible> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::wire::{MessageWriter, TransactionId, attr};

    fn ask(server: &mut BindingServer, from: &str, request: &[u8]) -> Option<Vec<u8>> {
        let now = crate::test_clock::start();
        let local = "127.0.0.1:3478".parse().unwrap();
        server.handle_datagram(now, local, from.parse().unwrap(), request);
        server.poll_transmit().map(|t| {
            assert_eq!(t.destination, from.parse().unwrap());
            t.contents
        })
    }

    #[test]
    fn binding_request_is_answered_with_the_source_address() {
        let mut server = BindingServer::new();
        let id = TransactionId([9; 12]);
        for from in ["198.51.100.7:40000", "[2001:db8::5]:5555"] {
            let reply = ask(&mut server, from, &wire::binding_request(id)).expect("a reply");
            let msg = Message::decode(&reply).unwrap();
            assert_eq!(msg.class(), Class::Success);
            assert_eq!(msg.transaction_id(), id);
            assert_eq!(msg.xor_mapped_address(), Some(from.parse().unwrap()));
            assert!(msg.has_fingerprint());
        }
        assert_eq!(server.stats().requests_answered, 2);
    }

    #[test]
    fn unknown_comprehension_required_attribute_gets_420() {
        let mut server = BindingServer::new();
        let mut w = MessageWriter::new(Class::Request, BINDING, TransactionId([1; 12]));
        w.attribute(attr::CHANGE_REQUEST, &[0, 0, 0, 6]);
        let reply = ask(&mut server, "192.0.2.1:1", &w.finish_with_fingerprint()).unwrap();
        let msg = Message::decode(&reply).unwrap();
        assert_eq!(msg.class(), Class::Error);
        assert_eq!(msg.error_code(), Some(420));
        assert_eq!(server.stats().error_responses_sent, 1);
    }

    #[test]
    fn ice_checks_indications_and_garbage_are_dropped_and_counted() {
        let mut server = BindingServer::new();
        let ice = crate::stun::wire::tests::hex(crate::stun::wire::tests::RFC5769_REQUEST);
        assert!(ask(&mut server, "192.0.2.1:1", &ice).is_none());
        let ind = MessageWriter::new(Class::Indication, BINDING, TransactionId([2; 12])).finish();
        assert!(ask(&mut server, "192.0.2.1:1", &ind).is_none());
        assert!(ask(&mut server, "192.0.2.1:1", b"\x00\x01garbage").is_none());
        let s = server.stats();
        assert_eq!(
            (
                s.dropped_ice_checks,
                s.dropped_not_request,
                s.dropped_malformed
            ),
            (1, 1, 1)
        );
        assert_eq!(s.requests_answered, 0);
    }

    #[test]
    fn a_flood_from_many_ports_of_one_ip_gets_one_budget_and_others_are_answered() {
        use crate::stun::{ANSWER_BURST, ANSWERS_PER_SECOND};
        let mut server = BindingServer::new();
        let start = crate::test_clock::start();
        let local = "127.0.0.1:3478".parse().unwrap();
        let req = wire::binding_request(TransactionId([4; 12]));
        let flood = |server: &mut BindingServer, now: Instant| {
            (0..1000u16)
                .filter(|port| {
                    let from = SocketAddr::from(([192, 0, 2, 66], 1024 + port));
                    server.handle_datagram(now, local, from, &req);
                    server.poll_transmit().is_some()
                })
                .count()
        };
        assert_eq!(flood(&mut server, start), ANSWER_BURST as usize);
        for other in ["192.0.2.67:1", "[2001:db8::1]:1"] {
            assert!(ask(&mut server, other, &req).is_some(), "{other} is answered");
        }
        let second = start + std::time::Duration::from_secs(1);
        assert_eq!(flood(&mut server, second), ANSWERS_PER_SECOND as usize);
        let s = server.stats();
        assert_eq!(s.requests_answered, u64::from(ANSWER_BURST + ANSWERS_PER_SECOND) + 2);
        assert_eq!(s.dropped_rate_limited, 2000 - u64::from(ANSWER_BURST + ANSWERS_PER_SECOND));
        assert_eq!(s.dropped_overflow, 0);
    }

    #[test]
    fn error_responses_are_within_the_budget_too() {
        use crate::stun::ANSWER_BURST;
        let mut server = BindingServer::new();
        let mut w = MessageWriter::new(Class::Request, BINDING, TransactionId([5; 12]));
        w.attribute(attr::CHANGE_REQUEST, &[0, 0, 0, 6]);
        let req = w.finish_with_fingerprint();
        let answered = (0..200)
            .filter(|_| ask(&mut server, "198.51.100.9:7", &req).is_some())
            .count();
        assert_eq!(answered, ANSWER_BURST as usize);
        assert_eq!(server.stats().error_responses_sent, u64::from(ANSWER_BURST));
    }

    #[test]
    fn backlog_is_bounded_when_nobody_polls() {
        let mut server = BindingServer::new();
        let now = crate::test_clock::start();
        let local = "127.0.0.1:3478".parse().unwrap();
        let req = wire::binding_request(TransactionId([3; 12]));
        for i in 0..SERVER_BACKLOG + 10 {
            let from = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1));
            server.handle_datagram(now, local, from, &req);
        }
        assert_eq!(server.stats().dropped_backlog, 10);
        assert_eq!(
            std::iter::from_fn(|| server.poll_transmit()).count(),
            SERVER_BACKLOG
        );
    }
}
