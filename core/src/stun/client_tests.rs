use super::*;
use crate::stun::wire::{MessageWriter, attr};
use crate::test_clock;

const A: &str = "192.0.2.1:3478";
const B: &str = "192.0.2.2:3478";
const C: &str = "192.0.2.3:3478";
const LOCAL: &str = "10.0.0.2:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config(servers: &[&str]) -> StunConfig {
    StunConfig {
        servers: servers.iter().map(|s| addr(s)).collect(),
        retry_interval: None,
        ..Default::default()
    }
}

/// Drives a client against scripted servers: `answer(server, request)` returns the
/// reply to deliver after `delay`, or `None` to stay silent.
struct Harness {
    client: BindingClient,
    start: Instant,
    now: Instant,
    sent: Vec<(Duration, SocketAddr, Vec<u8>)>,
    events: Vec<StunEvent>,
}

impl Harness {
    fn new(cfg: StunConfig) -> Self {
        let start = test_clock::start();
        let client = BindingClient::new(cfg, Seed::from_u64(1), start).expect("valid config");
        let mut h = Harness {
            client,
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            self.sent
                .push((self.now - self.start, t.destination, t.contents));
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// Jumps to the next timeout, if any, and handles it.
    fn step(&mut self) -> bool {
        match self.client.poll_timeout() {
            Some(t) => {
                self.now = self.now.max(t);
                self.client.handle_timeout(self.now);
                self.drain();
                true
            }
            None => false,
        }
    }

    fn deliver(&mut self, from: &str, reply: &[u8]) {
        self.client
            .handle_datagram(self.now, addr(LOCAL), addr(from), reply);
        self.drain();
    }

    fn request_to(&self, server: &str) -> TransactionId {
        let (_, _, bytes) = self
            .sent
            .iter()
            .rev()
            .find(|(_, to, _)| *to == addr(server))
            .expect("a request");
        Message::decode(bytes).unwrap().transaction_id()
    }

    fn finished(&self) -> Option<&Result<StunReport, AllServersFailed>> {
        self.events.iter().find_map(|e| match e {
            StunEvent::Finished(r) => Some(r),
            _ => None,
        })
    }
}

#[test]
fn silent_server_gets_the_rfc8489_retransmission_schedule_then_times_out() {
    let mut h = Harness::new(config(&[A]));
    while h.step() {}
    let times: Vec<u64> = h
        .sent
        .iter()
        .map(|(t, _, _)| t.as_millis() as u64)
        .collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500]);
    assert!(
        h.sent.windows(2).all(|w| w[0].2 == w[1].2),
        "retransmissions are identical"
    );
    assert_eq!(h.now - h.start, Duration::from_secs(10));
    assert!(h.events.contains(&StunEvent::ServerFailed {
        server: addr(A),
        reason: QueryFailure::Timeout
    }));
    assert_eq!(h.finished(), Some(&Err(AllServersFailed { servers: 1 })));
    assert_eq!(h.client.stats().retransmissions, 4);
}

#[test]
fn without_a_query_timeout_a_transaction_ends_after_seven_sends_and_rm_times_rto() {
    let mut cfg = config(&[A]);
    cfg.query_timeout = Duration::from_secs(3600);
    let mut h = Harness::new(cfg);
    while h.step() {}
    let times: Vec<u64> = h
        .sent
        .iter()
        .map(|(t, _, _)| t.as_millis() as u64)
        .collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(h.now - h.start, Duration::from_millis(39_500));
}

#[test]
fn two_servers_agreeing_means_endpoint_independent_mapping() {
    let mut h = Harness::new(config(&[A, B]));
    assert_eq!(h.sent.len(), 2, "both asked at once");
    let mapped = addr("203.0.113.9:40000");
    h.now += Duration::from_millis(30);
    h.deliver(A, &wire::binding_success(h.request_to(A), mapped));
    h.now += Duration::from_millis(20);
    h.deliver(B, &wire::binding_success(h.request_to(B), mapped));
    let report = h.finished().unwrap().as_ref().unwrap();
    assert_eq!(report.mapping, Mapping::EndpointIndependent);
    assert_eq!(
        report.first,
        Observation {
            server: addr(A),
            mapped,
            rtt: Duration::from_millis(30)
        }
    );
    assert_eq!(report.observations.len(), 2);
    assert_eq!(h.client.poll_timeout(), None, "nothing left to do");
}

#[test]
fn two_servers_disagreeing_means_endpoint_dependent_mapping() {
    let mut h = Harness::new(config(&[A, B]));
    h.deliver(
        A,
        &wire::binding_success(h.request_to(A), addr("203.0.113.9:40000")),
    );
    h.deliver(
        B,
        &wire::binding_success(h.request_to(B), addr("203.0.113.9:40001")),
    );
    assert_eq!(
        h.finished().unwrap().as_ref().unwrap().mapping,
        Mapping::EndpointDependent
    );
}

#[test]
fn a_dead_server_fails_over_to_the_next() {
    let mut h = Harness::new(config(&[A, B, C]));
    let mapped = addr("203.0.113.9:40000");
    h.deliver(B, &wire::binding_success(h.request_to(B), mapped));
    assert!(
        h.sent.iter().all(|(_, to, _)| *to != addr(C)),
        "C waits while A may still answer"
    );
    while h.finished().is_none() && h.step() {
        if h.sent.iter().any(|(_, to, _)| *to == addr(C)) {
            h.deliver(C, &wire::binding_success(h.request_to(C), mapped));
        }
    }
    assert_eq!(
        h.now - h.start,
        Duration::from_secs(10),
        "C asked when A timed out"
    );
    let report = h.finished().unwrap().as_ref().unwrap();
    assert_eq!(report.mapping, Mapping::EndpointIndependent);
    assert_eq!(
        report
            .observations
            .iter()
            .map(|o| o.server)
            .collect::<Vec<_>>(),
        [addr(B), addr(C)]
    );
}

#[test]
fn one_answer_alone_gives_unknown_mapping() {
    let mut h = Harness::new(config(&[A]));
    h.deliver(
        A,
        &wire::binding_success(h.request_to(A), addr("203.0.113.9:1")),
    );
    assert_eq!(
        h.finished().unwrap().as_ref().unwrap().mapping,
        Mapping::Unknown
    );
}

#[test]
fn responses_from_strangers_or_to_unknown_transactions_are_dropped() {
    let mut h = Harness::new(config(&[A]));
    let id = h.request_to(A);
    h.deliver(B, &wire::binding_success(id, addr("6.6.6.6:6")));
    h.deliver(
        A,
        &wire::binding_success(TransactionId([0xEE; 12]), addr("6.6.6.6:6")),
    );
    h.deliver(A, b"\x01\x01\x00\x00 not a stun message");
    h.deliver(A, &wire::binding_request(id));
    let s = h.client.stats();
    assert_eq!(
        (
            s.dropped_unexpected_source,
            s.dropped_unknown_transaction,
            s.dropped_malformed,
            s.dropped_not_response
        ),
        (1, 1, 1, 1)
    );
    assert!(h.finished().is_none(), "still waiting for the real answer");
    h.deliver(A, &wire::binding_success(id, addr("203.0.113.9:7")));
    assert_eq!(
        h.finished().unwrap().as_ref().unwrap().first.mapped,
        addr("203.0.113.9:7")
    );
    // A replayed answer after the round is over is an unknown transaction.
    h.deliver(A, &wire::binding_success(id, addr("6.6.6.6:6")));
    assert_eq!(h.client.stats().dropped_unknown_transaction, 2);
}

#[test]
fn old_servers_mapped_address_is_accepted() {
    let mut h = Harness::new(config(&[A]));
    let mut w = MessageWriter::new(Class::Success, BINDING, h.request_to(A));
    w.address(attr::MAPPED_ADDRESS, addr("203.0.113.5:999"));
    h.deliver(A, &w.finish());
    assert_eq!(
        h.finished().unwrap().as_ref().unwrap().first.mapped,
        addr("203.0.113.5:999")
    );
}

#[test]
fn error_responses_and_unusable_answers_fail_the_server() {
    let mut h = Harness::new(config(&[A, B]));
    h.deliver(
        A,
        &wire::error_response(BINDING, h.request_to(A), 500, "Server Error", &[]),
    );
    let mut w = MessageWriter::new(Class::Success, BINDING, h.request_to(B));
    w.xor_mapped_address(addr("203.0.113.5:1"));
    w.attribute(0x7ABC, b"??");
    h.deliver(B, &w.finish_with_fingerprint());
    assert!(h.events.contains(&StunEvent::ServerFailed {
        server: addr(A),
        reason: QueryFailure::ErrorResponse(500)
    }));
    assert!(h.events.contains(&StunEvent::ServerFailed {
        server: addr(B),
        reason: QueryFailure::UnknownAttribute(0x7ABC)
    }));
    assert_eq!(h.finished(), Some(&Err(AllServersFailed { servers: 2 })));
}

#[test]
fn try_alternate_redirects_to_the_alternate_server() {
    let mut h = Harness::new(config(&[A]));
    let mut w = MessageWriter::new(Class::Error, BINDING, h.request_to(A));
    w.error_code(300, "Try Alternate");
    w.address(attr::ALTERNATE_SERVER, addr(C));
    h.deliver(A, &w.finish_with_fingerprint());
    h.deliver(
        C,
        &wire::binding_success(h.request_to(C), addr("203.0.113.1:2")),
    );
    let report = h.finished().unwrap().as_ref().unwrap();
    assert_eq!(report.first.server, addr(C));
}

#[test]
fn a_failed_round_is_retried_after_the_retry_interval() {
    let mut cfg = config(&[A]);
    cfg.retry_interval = Some(Duration::from_secs(30));
    let mut h = Harness::new(cfg);
    while h.finished().is_none() {
        assert!(h.step());
    }
    assert!(h.step(), "a retry is scheduled");
    assert_eq!(h.sent.last().unwrap().0, Duration::from_secs(40));
    assert!(h.client.is_active());
}

#[test]
fn ipv6_servers_work_and_do_not_mix_with_ipv4_for_classification() {
    let v6 = "[2001:db8::1]:3478";
    let mut h = Harness::new(config(&[A, v6]));
    h.deliver(
        A,
        &wire::binding_success(h.request_to(A), addr("203.0.113.9:1")),
    );
    h.deliver(
        v6,
        &wire::binding_success(h.request_to(v6), addr("[2001:db8::99]:1")),
    );
    let report = h.finished().unwrap().as_ref().unwrap();
    assert_eq!(report.observations[1].mapped, addr("[2001:db8::99]:1"));
    assert_eq!(report.mapping, Mapping::Unknown);
}

#[test]
fn bad_configurations_are_refused_with_clear_errors() {
    let now = test_clock::start();
    let seed = Seed::from_u64(0);
    let err = |cfg: StunConfig| BindingClient::new(cfg, seed, now).unwrap_err();
    assert_eq!(err(config(&[])), StunConfigError::NoServers);
    assert_eq!(
        err(StunConfig {
            rto: Duration::ZERO,
            ..config(&[A])
        }),
        StunConfigError::ZeroRto
    );
    assert_eq!(
        err(StunConfig {
            query_timeout: Duration::from_millis(1),
            ..config(&[A])
        }),
        StunConfigError::QueryTimeoutShorterThanRto
    );
    assert_eq!(
        err(StunConfig {
            parallel_queries: 0,
            ..config(&[A])
        }),
        StunConfigError::ZeroParallelQueries
    );
    let many: Vec<String> = (0..40).map(|i| format!("192.0.2.{i}:1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(err(config(&many)), StunConfigError::TooManyServers(40));
}

#[test]
fn same_seed_gives_the_same_transaction_ids() {
    let ids = |seed| {
        let c =
            BindingClient::new(config(&[A]), Seed::from_u64(seed), test_clock::start()).unwrap();
        let mut c = c;
        c.poll_transmit().unwrap().contents
    };
    assert_eq!(ids(5), ids(5));
    assert_ne!(ids(5), ids(6));
}

#[test]
fn prop_arbitrary_datagrams_never_panic_or_finish_a_round() {
    fn prop(datagrams: Vec<(bool, Vec<u8>)>) -> bool {
        let mut h = Harness::new(config(&[A]));
        for (from_server, bytes) in datagrams {
            h.deliver(if from_server { A } else { B }, &bytes);
        }
        // Random bytes cannot carry our random transaction id.
        h.finished().is_none() && h.client.stats().responses_accepted == 0
    }
    quickcheck::QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(Vec<(bool, Vec<u8>)>) -> bool);
}
