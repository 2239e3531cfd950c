//! What the node knows about its own NAT: how it maps our socket's traffic to public
//! ports, learnt from observations of our public address (STUN answers, and the `ip`
//! that DHT nodes report, BEP 42).

/// How the NAT in front of a socket maps it to public ports (RFC 4787 §4.1, §4.2.1),
/// the one fact port prediction needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NatClass {
    /// Not enough observations yet.
    #[default]
    Unknown,
    /// No NAT: the public address is the socket's own.
    Open,
    /// One public port for every destination (cone NATs, Linux masquerade); `preserving`
    /// when that port is the socket's own.
    EndpointIndependent {
        /// The public port equals the local port.
        preserving: bool,
    },
    /// A new public port per destination, but a socket's first mapping keeps its local
    /// port: a pool socket's public port is its local port.
    PortPreserving,
    /// A new public port per destination, each `step` after the previous one (background
    /// traffic of other hosts may skip some).
    Sequential {
        /// The usual distance between consecutive new mappings (1 for most NATs).
        step: u16,
    },
    /// A new, unpredictable public port per destination (Linux `masquerade random`).
    Random,
}

impl NatClass {
    /// Whether a peer can reach us at the one public address STUN showed.
    pub fn is_endpoint_independent(self) -> bool {
        matches!(self, NatClass::Open | NatClass::EndpointIndependent { .. })
    }
}
