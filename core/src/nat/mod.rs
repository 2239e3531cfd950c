//! What the node knows about its own NAT: how it maps our socket's traffic to public
//! ports, learnt from observations of our public address (STUN answers, and the `ip`
//! that DHT nodes report, BEP 42).
//!
//! [`NatObserver`] (`observe.rs`) collects the observations of the node's main socket,
//! with the order in which the socket created the mappings they show; `classify.rs`
//! decides the class (the rules are in its docs and in `docs/stun.md`).

mod classify;
mod observe;

pub use classify::{MAX_BACKGROUND, MAX_STEP, MIN_OBSERVATIONS};
pub use observe::{
    MAPPING_IDLE, MAX_DESTINATIONS, MAX_OBSERVATIONS, NatObservation, NatObserver,
    ObservationSource,
};

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

/// The longest signaling value of a class accepted (a later version may append).
pub const MAX_WIRE_LEN: usize = 16;

impl NatClass {
    /// Whether a peer can reach us at the one public address STUN showed.
    pub fn is_endpoint_independent(self) -> bool {
        matches!(self, NatClass::Open | NatClass::EndpointIndependent { .. })
    }

    /// The compact form members' signaling carries (`t` in `dm_signal`,
    /// `docs/PROTOCOL.md`): one kind byte — 1 open, 2 endpoint-independent, 3
    /// endpoint-independent and port-preserving, 4 port-preserving, 5 sequential, 6
    /// random — and for sequential the step, 2 bytes big-endian. `None` for
    /// [`NatClass::Unknown`], which is not sent.
    pub fn to_wire(self) -> Option<Vec<u8>> {
        Some(match self {
            NatClass::Unknown => return None,
            NatClass::Open => vec![1],
            NatClass::EndpointIndependent { preserving: false } => vec![2],
            NatClass::EndpointIndependent { preserving: true } => vec![3],
            NatClass::PortPreserving => vec![4],
            NatClass::Sequential { step } => {
                let [hi, lo] = step.to_be_bytes();
                vec![5, hi, lo]
            }
            NatClass::Random => vec![6],
        })
    }

    /// Reads [`NatClass::to_wire`]'s form. Lenient, so that a later version can add
    /// kinds: an unknown kind, a sequential one without its step or with step 0, or an
    /// empty value is [`NatClass::Unknown`]; bytes after what a kind needs are ignored.
    pub fn from_wire(bytes: &[u8]) -> NatClass {
        match bytes {
            [1, ..] => NatClass::Open,
            [2, ..] => NatClass::EndpointIndependent { preserving: false },
            [3, ..] => NatClass::EndpointIndependent { preserving: true },
            [4, ..] => NatClass::PortPreserving,
            [5, hi, lo, ..] if [*hi, *lo] != [0, 0] => NatClass::Sequential {
                step: u16::from_be_bytes([*hi, *lo]),
            },
            [6, ..] => NatClass::Random,
            _ => NatClass::Unknown,
        }
    }
}

/// The CLI's and the logs' name: `unknown`, `open`, `endpoint-independent`,
/// `endpoint-independent(preserving)`, `port-preserving`, `sequential(step N)`, `random`.
impl std::fmt::Display for NatClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatClass::Unknown => f.write_str("unknown"),
            NatClass::Open => f.write_str("open"),
            NatClass::EndpointIndependent { preserving: false } => {
                f.write_str("endpoint-independent")
            }
            NatClass::EndpointIndependent { preserving: true } => {
                f.write_str("endpoint-independent(preserving)")
            }
            NatClass::PortPreserving => f.write_str("port-preserving"),
            NatClass::Sequential { step } => write!(f, "sequential(step {step})"),
            NatClass::Random => f.write_str("random"),
        }
    }
}

#[cfg(test)]
mod tests;
