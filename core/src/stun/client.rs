//! The Binding client (RFC 8489 §6.2, §6.3.3–6.3.4, §7.2.1): discovers the node's public
//! (server-reflexive) address and classifies the NAT's mapping.
//!
//! A *round* asks the configured servers: [`StunConfig::parallel_queries`] at once, each a
//! transaction retransmitted on the RFC schedule (RTO, doubled each time, at most 7
//! sends, then `Rm × RTO`) and abandoned after [`StunConfig::query_timeout`]; a server
//! that fails (no answer, error response, unusable response) is replaced by the next one
//! (failover), and a 300 (Try Alternate) redirects to its ALTERNATE-SERVER. The round
//! ends once two servers have answered, or when no server is left; with
//! [`StunConfig::retry_interval`] a failed round is tried again after that interval.
//!
//! Mapping: if two servers of the same address family report the same mapped address,
//! the NAT's mapping is endpoint-independent (RFC 4787 §4.1); if they differ, it is
//! endpoint-dependent (address- or address-and-port-dependent). With only one answer it
//! is unknown.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::wire::{self, BINDING, Class, Message, TransactionId};
use crate::seed::{Rng, Seed};
use crate::transmit::{SansIo, Transmit};

/// Requests sent at most per transaction (`Rc`, §6.2.1).
pub const MAX_TRANSMISSIONS: u32 = 7;
/// After the last request, wait this many RTOs for a response (`Rm`, §6.2.1).
pub const LAST_WAIT_RTOS: u32 = 16;
/// Configured servers at most (a bound on the client's state).
pub const MAX_SERVERS: usize = 32;
/// ALTERNATE-SERVER redirects followed at most per round (stops redirect loops).
pub const MAX_REDIRECTS: usize = 4;

/// STUN client settings. `Default` gives the design's values and no servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StunConfig {
    /// Servers to ask, in order of preference (resolved by the runtime).
    pub servers: Vec<SocketAddr>,
    /// Initial retransmission timeout (RFC 8489 recommends 500 ms).
    pub rto: Duration,
    /// A server that has not answered after this long has failed (10 s).
    pub query_timeout: Duration,
    /// Servers asked at once (2: enough to classify the mapping).
    pub parallel_queries: usize,
    /// Try a failed round again after this long; `None` gives up after one round.
    pub retry_interval: Option<Duration>,
}

impl Default for StunConfig {
    fn default() -> Self {
        StunConfig {
            servers: Vec::new(),
            rto: Duration::from_millis(500),
            query_timeout: Duration::from_secs(10),
            parallel_queries: 2,
            retry_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// A [`StunConfig`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StunConfigError {
    /// The client was given no server to ask.
    #[error("no STUN server configured")]
    NoServers,
    /// More than [`MAX_SERVERS`] servers.
    #[error("{0} STUN servers configured, at most {MAX_SERVERS} are allowed")]
    TooManyServers(usize),
    /// The RTO is zero.
    #[error("the STUN retransmission timeout must be positive")]
    ZeroRto,
    /// The query timeout is shorter than one RTO, so no retransmission could happen.
    #[error("the STUN query timeout must be at least one retransmission timeout")]
    QueryTimeoutShorterThanRto,
    /// `parallel_queries` is zero.
    #[error("at least one STUN query must be allowed in flight")]
    ZeroParallelQueries,
    /// The retry interval is zero.
    #[error("the STUN retry interval must be positive")]
    ZeroRetryInterval,
}

impl StunConfig {
    /// Checks the settings; `servers` may be empty here (a node without STUN).
    pub fn validate(&self) -> Result<(), StunConfigError> {
        if self.servers.len() > MAX_SERVERS {
            return Err(StunConfigError::TooManyServers(self.servers.len()));
        }
        if self.rto.is_zero() {
            return Err(StunConfigError::ZeroRto);
        }
        if self.query_timeout < self.rto {
            return Err(StunConfigError::QueryTimeoutShorterThanRto);
        }
        if self.parallel_queries == 0 {
            return Err(StunConfigError::ZeroParallelQueries);
        }
        if self.retry_interval.is_some_and(|d| d.is_zero()) {
            return Err(StunConfigError::ZeroRetryInterval);
        }
        Ok(())
    }
}

/// How the NAT in front of us maps our socket (RFC 4787 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Two servers saw the same public address: endpoint-independent mapping.
    EndpointIndependent,
    /// Two servers saw different public addresses: address(-and-port)-dependent mapping.
    EndpointDependent,
    /// Fewer than two servers of one address family answered.
    Unknown,
}

impl Mapping {
    /// The name used in the CLI's output (`endpoint-independent`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Mapping::EndpointIndependent => "endpoint-independent",
            Mapping::EndpointDependent => "endpoint-dependent",
            Mapping::Unknown => "unknown",
        }
    }
}

/// One server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The server that answered.
    pub server: SocketAddr,
    /// Our address as that server saw it.
    pub mapped: SocketAddr,
    /// Time from the last request sent to the response.
    pub rtt: Duration,
}

/// The outcome of a successful round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StunReport {
    /// The first answer: our public address, who said so, and how fast.
    pub first: Observation,
    /// The mapping behaviour the answers show.
    pub mapping: Mapping,
    /// Every answer of the round, in order of arrival.
    pub observations: Vec<Observation>,
}

/// Why one server's query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryFailure {
    /// No response within the query timeout.
    #[error("no response")]
    Timeout,
    /// The server sent an error response with this code.
    #[error("error response {0}")]
    ErrorResponse(u16),
    /// A success response carried neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS.
    #[error("success response without a mapped address")]
    NoMappedAddress,
    /// A response carried a comprehension-required attribute we do not know (§6.3.4).
    #[error("response with unknown comprehension-required attribute {0:#06x}")]
    UnknownAttribute(u16),
    /// The server redirected us (300 Try Alternate) to this address.
    #[error("redirected to {0}")]
    Redirected(SocketAddr),
}

/// Every server of a round failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no STUN server answered ({servers} tried)")]
pub struct AllServersFailed {
    /// How many servers were asked.
    pub servers: usize,
}

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StunEvent {
    /// A server answered (emitted at once, before the round ends).
    Observed(Observation),
    /// A server failed; the client fails over to the next one if any is left.
    ServerFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: QueryFailure,
    },
    /// The round ended.
    Finished(Result<StunReport, AllServersFailed>),
}

/// Counters of the client's work and of what it dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests sent, first transmissions only.
    pub requests_sent: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// Success responses accepted.
    pub responses_accepted: u64,
    /// Queries that failed (timeouts, errors, unusable responses).
    pub queries_failed: u64,
    /// Datagrams that were not valid STUN.
    pub dropped_malformed: u64,
    /// Responses to transactions we do not have (late, duplicated or forged).
    pub dropped_unknown_transaction: u64,
    /// Responses to one of our transactions from an address we did not ask.
    pub dropped_unexpected_source: u64,
    /// Requests and indications, which a client does not take.
    pub dropped_not_response: u64,
}

#[derive(Debug)]
struct Query {
    server: SocketAddr,
    request: Vec<u8>,
    sent: u32,
    last_sent: Instant,
    next_send: Instant,
    rto: Duration,
    deadline: Instant,
}

/// The STUN Binding client state machine.
#[derive(Debug)]
pub struct BindingClient {
    config: StunConfig,
    rng: Rng,
    now: Instant,
    queries: BTreeMap<TransactionId, Query>,
    queue: VecDeque<SocketAddr>,
    tried: Vec<SocketAddr>,
    redirects: usize,
    observations: Vec<Observation>,
    round_active: bool,
    retry_at: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<StunEvent>,
    stats: ClientStats,
}

impl BindingClient {
    /// Validates `config` and starts the first round at `now`.
    pub fn new(config: StunConfig, seed: Seed, now: Instant) -> Result<Self, StunConfigError> {
        config.validate()?;
        if config.servers.is_empty() {
            return Err(StunConfigError::NoServers);
        }
        let mut client = BindingClient {
            config,
            rng: seed.rng(),
            now,
            queries: BTreeMap::new(),
            queue: VecDeque::new(),
            tried: Vec::new(),
            redirects: 0,
            observations: Vec::new(),
            round_active: false,
            retry_at: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        };
        client.start_round();
        Ok(client)
    }

    /// Starts a new round at once, abandoning the current one (e.g. after the local
    /// network changed).
    pub fn rediscover(&mut self, now: Instant) {
        self.advance(now);
        self.start_round();
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Whether a round is in progress.
    pub fn is_active(&self) -> bool {
        self.round_active
    }

    /// Takes a decoded STUN message from `remote`; returns `false` (and counts it) if it
    /// is not a response to one of our transactions.
    pub fn handle_message(&mut self, now: Instant, remote: SocketAddr, msg: &Message<'_>) -> bool {
        self.advance(now);
        if !matches!(msg.class(), Class::Success | Class::Error) {
            self.stats.dropped_not_response += 1;
            return false;
        }
        let id = msg.transaction_id();
        let Some(query) = self.queries.get(&id) else {
            self.stats.dropped_unknown_transaction += 1;
            return false;
        };
        if query.server != remote {
            self.stats.dropped_unexpected_source += 1;
            return false;
        }
        let Some(query) = self.queries.remove(&id) else {
            return false;
        };
        let server = query.server;
        let outcome = if msg.method() != BINDING {
            Err(QueryFailure::ErrorResponse(400))
        } else if let Some(&unknown) = msg.unknown_required().first() {
            Err(QueryFailure::UnknownAttribute(unknown))
        } else if msg.class() == Class::Error {
            let code = msg.error_code().unwrap_or(0);
            match (code, msg.alternate_server()) {
                (300, Some(alternate)) => Err(QueryFailure::Redirected(alternate)),
                _ => Err(QueryFailure::ErrorResponse(code)),
            }
        } else {
            msg.reflexive_address().ok_or(QueryFailure::NoMappedAddress)
        };
        match outcome {
            Ok(mapped) => {
                self.stats.responses_accepted += 1;
                let observation = Observation {
                    server,
                    mapped,
                    rtt: self.now.saturating_duration_since(query.last_sent),
                };
                self.observations.push(observation);
                self.events.push_back(StunEvent::Observed(observation));
            }
            Err(reason) => self.fail(server, reason),
        }
        self.refill();
        true
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn start_round(&mut self) {
        self.queries.clear();
        self.queue = self.config.servers.iter().copied().collect();
        self.tried.clear();
        self.redirects = 0;
        self.observations.clear();
        self.round_active = true;
        self.retry_at = None;
        self.refill();
    }

    fn answers_needed(&self) -> usize {
        2usize.saturating_sub(self.observations.len())
    }

    /// Starts queries until enough are in flight, or ends the round.
    fn refill(&mut self) {
        if !self.round_active {
            return;
        }
        while self.queries.len() < self.config.parallel_queries.min(self.answers_needed()) {
            let Some(server) = self.queue.pop_front() else {
                break;
            };
            if self.tried.contains(&server) {
                continue;
            }
            self.tried.push(server);
            self.send_request(server);
        }
        if self.answers_needed() == 0 || (self.queries.is_empty() && self.queue.is_empty()) {
            self.finish_round();
        }
    }

    fn send_request(&mut self, server: SocketAddr) {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        let id = TransactionId(id);
        let request = wire::binding_request(id);
        tracing::debug!(%server, transaction = ?id, "STUN binding request");
        self.transmits.push_back(Transmit::new(server, request.clone()));
        self.stats.requests_sent += 1;
        let rto = self.config.rto;
        self.queries.insert(
            id,
            Query {
                server,
                request,
                sent: 1,
                last_sent: self.now,
                next_send: self.now + rto,
                rto,
                deadline: self.now + self.config.query_timeout,
            },
        );
    }

    fn fail(&mut self, server: SocketAddr, reason: QueryFailure) {
        self.stats.queries_failed += 1;
        if let QueryFailure::Redirected(alternate) = reason {
            if self.redirects < MAX_REDIRECTS && !self.tried.contains(&alternate) {
                self.redirects += 1;
                self.queue.push_front(alternate);
            }
        }
        self.events
            .push_back(StunEvent::ServerFailed { server, reason });
    }

    fn finish_round(&mut self) {
        self.round_active = false;
        // Queries still in flight when two answers are in are abandoned.
        self.queries.clear();
        let result = match self.observations.first() {
            Some(&first) => {
                let same_family: Vec<_> = self
                    .observations
                    .iter()
                    .filter(|o| o.server.is_ipv4() == first.server.is_ipv4())
                    .collect();
                let mapping = match same_family.as_slice() {
                    [_] => Mapping::Unknown,
                    many if many.iter().all(|o| o.mapped == first.mapped) => {
                        Mapping::EndpointIndependent
                    }
                    _ => Mapping::EndpointDependent,
                };
                Ok(StunReport {
                    first,
                    mapping,
                    observations: self.observations.clone(),
                })
            }
            None => {
                self.retry_at = self.config.retry_interval.map(|d| self.now + d);
                Err(AllServersFailed {
                    servers: self.tried.len(),
                })
            }
        };
        self.events.push_back(StunEvent::Finished(result));
    }
}

impl SansIo for BindingClient {
    type Event = StunEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        match Message::decode(datagram) {
            Ok(msg) => {
                self.handle_message(now, remote, &msg);
            }
            Err(_) => self.stats.dropped_malformed += 1,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        if self.retry_at.is_some_and(|t| t <= now) {
            self.start_round();
        }
        let mut failed = Vec::new();
        for (id, q) in &mut self.queries {
            if q.deadline <= now {
                failed.push(*id);
                continue;
            }
            if q.next_send <= now && q.sent < MAX_TRANSMISSIONS {
                tracing::debug!(server = %q.server, transaction = ?id, attempt = q.sent + 1, "STUN retransmission");
                self.transmits.push_back(Transmit::new(q.server, q.request.clone()));
                self.stats.retransmissions += 1;
                q.sent += 1;
                q.last_sent = now;
                q.rto = q.rto.saturating_mul(2);
                q.next_send = now + q.rto;
                if q.sent == MAX_TRANSMISSIONS {
                    let last_wait = self.config.rto.saturating_mul(LAST_WAIT_RTOS);
                    q.deadline = q.deadline.min(now + last_wait);
                }
            }
        }
        for id in failed {
            if let Some(q) = self.queries.remove(&id) {
                self.fail(q.server, QueryFailure::Timeout);
            }
        }
        self.refill();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<StunEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let queries = self.queries.values().map(|q| {
            if q.sent < MAX_TRANSMISSIONS {
                q.next_send.min(q.deadline)
            } else {
                q.deadline
            }
        });
        queries.chain(self.retry_at).min()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
