//! What a NAT box does, per RFC 4787: its mapping, port assignment, filtering and
//! refresh behaviours, and the configuration that combines them.

use std::ops::RangeInclusive;
use std::time::Duration;

/// When a NAT reuses a mapping (RFC 4787 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingBehavior {
    /// The same mapping for every destination (REQ-1: MUST).
    EndpointIndependent,
    /// The same mapping for destinations with the same IP address.
    AddressDependent,
    /// A new mapping for every destination IP address and port ("symmetric").
    AddressAndPortDependent,
}

/// Which inbound datagrams a mapping lets through (RFC 4787 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilteringBehavior {
    /// Any remote endpoint ("full cone").
    EndpointIndependent,
    /// Remote IP addresses the internal endpoint has sent to ("restricted cone").
    AddressDependent,
    /// Remote IP address and port pairs the internal endpoint has sent to ("port
    /// restricted").
    AddressAndPortDependent,
}

/// How a NAT picks the external port of a new mapping (RFC 4787 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortAssignment {
    /// Keep the internal port if it is free, else the next free port of the range
    /// (Linux masquerade).
    Preserving,
    /// A counter walks the range in steps of `step`: a new mapping gets the port `step`
    /// after the last one given (wrapping around the range), or, if that one is still
    /// bound, the next free one `step` further on. `step: 1` is the classic sequential
    /// NAT; some allocate in steps of 2 or more. Other hosts' mappings
    /// ([`BackgroundTraffic`]) move the same counter.
    Sequential {
        /// The distance between two consecutive mappings' ports (at least 1).
        step: u16,
    },
    /// A uniformly random free port of the range (Linux `masquerade random` /
    /// `fully-random`): up to 16 uniform draws, then a scan from a random port.
    Random,
}

impl MappingBehavior {
    /// The RFC 4787 name.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingBehavior::EndpointIndependent => "endpoint-independent",
            MappingBehavior::AddressDependent => "address-dependent",
            MappingBehavior::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl FilteringBehavior {
    /// The RFC 4787 name.
    pub fn as_str(self) -> &'static str {
        match self {
            FilteringBehavior::EndpointIndependent => "endpoint-independent",
            FilteringBehavior::AddressDependent => "address-dependent",
            FilteringBehavior::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl PortAssignment {
    /// The classic sequential NAT: step 1.
    pub const SEQUENTIAL: PortAssignment = PortAssignment::Sequential { step: 1 };

    /// A short name (`sequential` whatever the step; see the `Display` impl).
    pub fn as_str(self) -> &'static str {
        match self {
            PortAssignment::Preserving => "preserving",
            PortAssignment::Sequential { .. } => "sequential",
            PortAssignment::Random => "random",
        }
    }
}

impl std::fmt::Display for PortAssignment {
    /// The short name, with the step of a sequential NAT whose step is not 1.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortAssignment::Sequential { step } if *step != 1 => {
                write!(f, "sequential (step {step})")
            }
            other => f.write_str(other.as_str()),
        }
    }
}

/// New mappings made by other hosts behind the same NAT, between and during ours: they
/// take ports, and move a sequential NAT's counter between two of our observations.
/// Their arrivals are a Poisson process on the simulator's virtual clock, drawn from the
/// NAT's own seeded RNG; each is a one-datagram flow to a remote endpoint of its own, so
/// it holds its port for [`NatConfig::mapping_timeout`] and admits nothing inbound.
///
/// The process starts when the NAT first translates or receives a datagram (nobody can
/// observe the NAT before), and is caught up lazily: before the NAT handles a datagram
/// at `now`, the mappings due before `now` are made, each at its own instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackgroundTraffic {
    /// The mean time between two new background mappings: the rate is its inverse (1 s:
    /// one new mapping per second on average). At least [`BackgroundTraffic::MIN_INTERVAL`].
    pub mean_interval: Duration,
}

impl BackgroundTraffic {
    /// The shortest mean interval allowed (10,000 new mappings per second): the bound on
    /// the work a lazy catch-up does per second of virtual time.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(100);

    /// `rate` new mappings per second on average (`None` unless `rate` is positive,
    /// at most 10,000, and its inverse fits a `Duration`).
    pub fn per_second(rate: f64) -> Option<BackgroundTraffic> {
        if !(rate.is_finite() && rate > 0.0 && rate <= 10_000.0) {
            return None;
        }
        let mean_interval = Duration::try_from_secs_f64(1.0 / rate).ok()?;
        Some(BackgroundTraffic { mean_interval })
    }

    /// New mappings per second on average.
    pub fn rate(self) -> f64 {
        1.0 / self.mean_interval.as_secs_f64()
    }
}

/// What a refused inbound datagram (no binding, or filtered) leaves behind in the NAT.
///
/// RFC 4787 does not say; it matters on Linux. conntrack records every new flow, also
/// one addressed to the router itself that no socket takes, unless a firewall rule
/// drops the datagram first (an unconfirmed entry is discarded). Such an entry,
/// `remote → external:port`, holds that pair: a later flow from inside to `remote`
/// cannot leave from `external:port` (its reply tuple is taken), so conntrack gives
/// that one flow another, random port. Hole punching then fails if the peer's first
/// datagram arrives before ours left (see `docs/real-nat.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusedInbound {
    /// Nothing: the datagram is dropped and forgotten (a firewall in front of the NAT,
    /// or a NAT that keeps no state for refused traffic).
    Forgotten,
    /// It claims the pair (external port, remote endpoint) for `timeout`, refreshed by
    /// every further refused datagram of the pair (conntrack's UDP timeout for a flow
    /// that never saw a reply: 30 s). Outbound traffic to that remote endpoint that
    /// would leave from that port gets its own binding with a random port instead.
    ClaimsPort {
        /// How long the claim lasts after the last such datagram.
        timeout: Duration,
    },
}

impl RefusedInbound {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedInbound::Forgotten => "forgotten",
            RefusedInbound::ClaimsPort { .. } => "claims the port",
        }
    }
}

/// A NAT's behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// Mapping behaviour (§4.1).
    pub mapping: MappingBehavior,
    /// Filtering behaviour (§5).
    pub filtering: FilteringBehavior,
    /// Port assignment (§4.2.1).
    pub port_assignment: PortAssignment,
    /// External ports given to new mappings (a preserved port may lie outside).
    pub port_range: RangeInclusive<u16>,
    /// A binding with no refreshing traffic for this long expires (§4.3).
    pub mapping_timeout: Duration,
    /// Whether inbound datagrams that pass the filter refresh the binding (§4.3).
    pub inbound_refresh: bool,
    /// Whether the NAT hairpins (§6): an internal host reaching another through the
    /// NAT's external address.
    pub hairpinning: bool,
    /// Bindings at most (the NAT's memory); new mappings fail beyond it. Port claims
    /// ([`RefusedInbound::ClaimsPort`]) are bounded by the same number.
    pub max_mappings: usize,
    /// What a refused inbound datagram leaves behind.
    pub refused_inbound: RefusedInbound,
    /// Other hosts behind the NAT making new mappings (`None`: nobody else).
    pub background: Option<BackgroundTraffic>,
}

impl Default for NatConfig {
    /// The behaviour RFC 4787 requires and recommends: endpoint-independent mapping,
    /// address-and-port-dependent filtering (the REQ-8 choice when security matters),
    /// port preservation, 5-minute timeout, outbound-only refresh, hairpinning.
    fn default() -> Self {
        NatConfig {
            mapping: MappingBehavior::EndpointIndependent,
            filtering: FilteringBehavior::AddressAndPortDependent,
            port_assignment: PortAssignment::Preserving,
            port_range: 1024..=65535,
            mapping_timeout: Duration::from_secs(300),
            inbound_refresh: false,
            hairpinning: true,
            max_mappings: 65536,
            refused_inbound: RefusedInbound::Forgotten,
            background: None,
        }
    }
}

/// A [`NatConfig`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NatConfigError {
    /// The port range is empty or contains port 0.
    #[error("the NAT port range must be non-empty and exclude port 0")]
    BadPortRange,
    /// The mapping timeout is zero.
    #[error("the NAT mapping timeout must be positive")]
    ZeroTimeout,
    /// `max_mappings` is zero.
    #[error("a NAT must allow at least one mapping")]
    ZeroMaxMappings,
    /// A port claim lasts no time.
    #[error("a NAT's port claim timeout must be positive")]
    ZeroClaimTimeout,
    /// A sequential NAT with step 0.
    #[error("a sequential NAT's step must be at least 1")]
    ZeroStep,
    /// Background mappings more often than [`BackgroundTraffic::MIN_INTERVAL`].
    #[error("background traffic may make at most 10,000 new mappings per second")]
    BackgroundTooFast,
}

impl NatConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), NatConfigError> {
        if self.port_range.is_empty() || *self.port_range.start() == 0 {
            return Err(NatConfigError::BadPortRange);
        }
        if self.mapping_timeout.is_zero() {
            return Err(NatConfigError::ZeroTimeout);
        }
        if self.max_mappings == 0 {
            return Err(NatConfigError::ZeroMaxMappings);
        }
        if self.refused_inbound
            == (RefusedInbound::ClaimsPort {
                timeout: Duration::ZERO,
            })
        {
            return Err(NatConfigError::ZeroClaimTimeout);
        }
        if self.port_assignment == (PortAssignment::Sequential { step: 0 }) {
            return Err(NatConfigError::ZeroStep);
        }
        if self
            .background
            .is_some_and(|b| b.mean_interval < BackgroundTraffic::MIN_INTERVAL)
        {
            return Err(NatConfigError::BackgroundTooFast);
        }
        Ok(())
    }
}
