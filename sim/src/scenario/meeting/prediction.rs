//! Which pairs of members the `meeting` scenario expects to connect directly, from their
//! NAT presets: RFC 4787 for a simple hole-punching agent, and Linux's conntrack where
//! RFC 4787 says nothing.

use crate::preset::NatPreset;

/// Whether two members behind a pair of presets meet directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prediction {
    /// Always.
    Connects,
    /// Never.
    Fails,
    /// It depends on whose first datagram reaches the other's NAT first: a `masquerade`
    /// NAT whose port was claimed by the other side's early datagram diverts its replies
    /// to a new port, which an address-and-port-dependent filter refuses.
    DependsOnOrder,
}

impl Prediction {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::Connects => "connects",
            Prediction::Fails => "fails",
            Prediction::DependsOnOrder => "depends-on-order",
        }
    }

    /// Whether `connected` is possible under this prediction.
    pub fn allows(self, connected: bool) -> bool {
        match self {
            Prediction::Connects => connected,
            Prediction::Fails => !connected,
            Prediction::DependsOnOrder => true,
        }
    }
}

/// The prediction for members behind `a` and `b` (see `docs/sim.md` and
/// `docs/real-nat.md`), with port prediction on (`docs/port-prediction.md`).
///
/// Without it ([`predict_without_prediction`]), RFC 4787 for a simple hole-punching
/// agent: both mappings endpoint-independent connect; a symmetric side (`symmetric`,
/// `symmetric-sequential`) connects only to a filter that admits endpoints it never sent
/// to (`open`, `full-cone`, `restricted-cone`). Then Linux's conntrack, which RFC 4787
/// does not cover: `masquerade` against an address-and-port-dependent filter
/// (`masquerade` included) connects only if the `masquerade` side's first datagram
/// leaves before the other side's arrives (the other side's early datagram claims the
/// port, and the replies are diverted to a port the other side's filter refuses). Two
/// `masquerade` NATs thus connect only if their first datagrams cross in flight.
///
/// With it, a symmetric side also meets every endpoint-independent one (the birthday
/// method against random allocation, Δ-scanning against sequential allocation; the
/// hard side's low-TTL openings never reach a `masquerade` peer's conntrack), and two
/// sequential NATs meet each other. Random allocation against random or sequential
/// allocation has no predictable path: a relay's job. Except `masquerade` against a
/// symmetric side, which depends on order: the hard side's own hellos to the
/// `masquerade` side claim the ports they left from, and a probe that hits one of them
/// moves the `masquerade` side's port for every later flow (Linux gives a new flow the
/// port of the newest one), away from the port the hard side's openings aim at (about
/// 1 run in 20; `docs/port-prediction.md`).
pub fn predict(a: NatPreset, b: NatPreset) -> Prediction {
    let sequential = |p| p == NatPreset::SymmetricSequential;
    match (a, b) {
        (a, b) if a.is_symmetric() && b.is_symmetric() => {
            if sequential(a) && sequential(b) {
                Prediction::Connects
            } else {
                Prediction::Fails
            }
        }
        (NatPreset::Masquerade, s) | (s, NatPreset::Masquerade) if s.is_symmetric() => {
            Prediction::DependsOnOrder
        }
        (s, _) | (_, s) if s.is_symmetric() => Prediction::Connects,
        _ => predict_without_prediction(a, b),
    }
}

/// The prediction with port prediction switched off (`--no-prediction`): see [`predict`].
pub fn predict_without_prediction(a: NatPreset, b: NatPreset) -> Prediction {
    let lenient = |p| {
        matches!(
            p,
            NatPreset::Open | NatPreset::FullCone | NatPreset::RestrictedCone
        )
    };
    let yes_if = |c: bool| {
        if c {
            Prediction::Connects
        } else {
            Prediction::Fails
        }
    };
    match (a, b) {
        (a, b) if a.is_symmetric() && b.is_symmetric() => Prediction::Fails,
        (s, other) | (other, s) if s.is_symmetric() => yes_if(lenient(other)),
        (NatPreset::Masquerade, other) | (other, NatPreset::Masquerade) if !lenient(other) => {
            Prediction::DependsOnOrder
        }
        _ => Prediction::Connects,
    }
}

/// Whether [`predict`] leaves room for a direct connection (it is not
/// [`Prediction::Fails`]).
pub fn punch_predicted(a: NatPreset, b: NatPreset) -> bool {
    predict(a, b) != Prediction::Fails
}
