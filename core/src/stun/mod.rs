//! STUN (RFC 8489): the wire codec, the Binding client and the Binding responder.
//!
//! | RFC 8489 | here |
//! |---|---|
//! | §5 header, magic cookie, class/method packing | [`wire`] |
//! | §6.2.1 retransmission (RTO 500 ms doubling, Rc = 7, Rm = 16) | [`BindingClient`] |
//! | §6.3.1 request handling, 420 with UNKNOWN-ATTRIBUTES | [`BindingServer`] |
//! | §6.3.4 responses: unknown comprehension-required attributes fail the transaction | [`BindingClient`] |
//! | §14.1 MAPPED-ADDRESS (RFC 3489 servers), §14.2 XOR-MAPPED-ADDRESS, IPv4 and IPv6 | [`wire`] |
//! | §14.7 FINGERPRINT (sent always, checked when present) | [`wire`] |
//! | §14.8 ERROR-CODE, §14.15 ALTERNATE-SERVER (300 Try Alternate) | [`wire`], [`BindingClient`] |
//! | §16 security: a responder is no reflector, answers rate-limited per source IP (IPv6 per /64) | [`BindingServer`] |
//! | §9 authentication (MESSAGE-INTEGRITY) | not here: ICE checks carry it and belong to WebRTC |
//! | RFC 5780 NAT behaviour discovery (CHANGE-REQUEST) | not supported: answered with 420 |

mod client;
mod rate_limit;
mod server;
pub mod wire;

pub use client::{
    AllServersFailed, BindingClient, ClientStats, LAST_WAIT_RTOS, MAX_REDIRECTS, MAX_SERVERS,
    MAX_TRANSMISSIONS, Mapping, Observation, QueryFailure, StunConfig, StunConfigError, StunEvent,
    StunReport,
};
pub use rate_limit::{
    ANSWER_BURST, ANSWERS_PER_SECOND, MAX_SOURCES, OVERFLOW_BURST, OVERFLOW_PER_SECOND,
};
pub use server::{BindingServer, SERVER_BACKLOG, ServerStats};
