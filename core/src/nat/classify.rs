//! The decision: which [`NatClass`] a window of observations shows.
//!
//! The rules, in order (`docs/stun.md` says why):
//!
//! 1. **Enough.** Only observations of our socket's address family count. The IP most
//!    observations report (ties: the one reported first) is the public IP; observations
//!    that report another IP are outliers (a lying DHT node, or a NAT that pools IPs
//!    arbitrarily). Fewer than [`MIN_OBSERVATIONS`] left: [`NatClass::Unknown`].
//! 2. **One port for all** (hyperdht's "consistent" rule, made liar-proof): the port most
//!    observations report is seen at least [`MIN_OBSERVATIONS`] times and by a strict
//!    majority: [`NatClass::Open`] if that address is our socket's own, else
//!    [`NatClass::EndpointIndependent`] (`preserving` when the port is our socket's).
//!    One liar among three honest observers cannot outvote them, nor make a verdict out
//!    of two.
//!    2a. **One port for all, moved**: the port the newest mappings show, when it differs
//!    from the one the older mappings agree on and at least two destinations report it
//!    ([`moved_port`]'s rule; Linux masquerade after a diverted flow).
//! 3. **A new port per destination**, said only when at least [`MIN_OBSERVATIONS`]
//!    different ports were seen and no port by more than two destinations (two
//!    destinations on one IP share a mapping behind an address-dependent NAT); otherwise
//!    the window is ambiguous: [`NatClass::Unknown`]. Then, on the mappings ordered by
//!    when our socket created them (one point per port, its earliest creation):
//!    - [`NatClass::PortPreserving`] when the socket's very first mapping kept the local
//!      port (the only evidence one socket gives of "each socket's first mapping is its
//!      own port");
//!    - [`NatClass::Sequential`] when a step `s` in `1..=`[`MAX_STEP`] fits: a chain of
//!      mappings where each port is `s × (mappings we created in between)` above the
//!      previous one, plus `s ×` up to [`MAX_BACKGROUND`] mappings other hosts behind
//!      the NAT made meanwhile, covering at least three mappings and all but a quarter
//!      of them (a liar, a wrap at the top of the port range), with at least half of its
//!      steps exact (no background at all);
//!    - [`NatClass::Random`] otherwise.

use std::net::SocketAddr;

use super::NatClass;
use super::observe::NatObservation;

/// Observations (of distinct destinations) needed before any verdict: hyperdht's rule.
pub const MIN_OBSERVATIONS: usize = 3;
/// The largest step between consecutive mappings called sequential.
pub const MAX_STEP: u16 = 16;
/// Mappings of other hosts tolerated between two of ours in a sequential chain.
pub const MAX_BACKGROUND: u64 = 512;

/// The class `observations` show for a socket bound to `local`, whose very first
/// mapping (if known) was the `first_order`th; with it, for the classes of one public
/// port for all ([`NatClass::Open`], [`NatClass::EndpointIndependent`]), that address:
/// where new flows of the socket appear now.
pub(crate) fn classify(
    observations: &[NatObservation],
    local: Option<SocketAddr>,
    first_order: Option<u64>,
) -> (NatClass, Option<SocketAddr>) {
    let family_v4 = match local {
        Some(l) => l.is_ipv4(),
        None => match observations.first() {
            Some(o) => o.public.is_ipv4(),
            None => return (NatClass::Unknown, None),
        },
    };
    let same_family: Vec<&NatObservation> = observations
        .iter()
        .filter(|o| o.public.is_ipv4() == family_v4)
        .collect();
    let Some(ip) = most_common(same_family.iter().map(|o| o.public.ip())) else {
        return (NatClass::Unknown, None);
    };
    let agreeing: Vec<&NatObservation> = same_family
        .into_iter()
        .filter(|o| o.public.ip() == ip)
        .collect();
    let n = agreeing.len();
    if n < MIN_OBSERVATIONS {
        return (NatClass::Unknown, None);
    }
    let Some(port) = most_common(agreeing.iter().map(|o| o.public.port())) else {
        return (NatClass::Unknown, None);
    };
    let top = agreeing.iter().filter(|o| o.public.port() == port).count();
    let local_port = local.map(|l| l.port());
    let one_port = |port: u16| {
        let public = SocketAddr::new(ip, port);
        let class = if local == Some(public) {
            NatClass::Open
        } else {
            NatClass::EndpointIndependent {
                preserving: local_port == Some(port),
            }
        };
        (class, Some(public))
    };
    if let Some(moved) = moved_port(&agreeing) {
        return one_port(moved);
    }
    if top >= MIN_OBSERVATIONS && 2 * top > n {
        return one_port(port);
    }
    // One point per mapping (port), at its earliest creation; points whose creation
    // we do not know are left out of the order.
    let mut mappings: Vec<(u64, u16)> = Vec::new();
    let mut ports: Vec<u16> = agreeing.iter().map(|o| o.public.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.len() < MIN_OBSERVATIONS || top > 2 {
        return (NatClass::Unknown, None);
    }
    for o in &agreeing {
        let Some(order) = o.order else { continue };
        match mappings.iter_mut().find(|m| m.1 == o.public.port()) {
            Some(m) => m.0 = m.0.min(order),
            None => mappings.push((order, o.public.port())),
        }
    }
    mappings.sort_unstable();
    if let (Some(&(order, port)), Some(local_port)) = (mappings.first(), local_port) {
        if Some(order) == first_order && port == local_port {
            return (NatClass::PortPreserving, None);
        }
    }
    match best_step(&mappings) {
        Some(step) => (NatClass::Sequential { step }, None),
        None => (NatClass::Random, None),
    }
}

/// The port of a one-port-for-all NAT that moved (rule 2a in the module docs): the
/// newest mapping's port `b`, when at least two destinations report `b`, every mapping
/// they show was made after every mapping that shows the port `a` the older
/// destinations agree on (at least two of them), and `a` and `b` together are a strict
/// majority. Linux masquerade moves a socket's port this way: once one flow had to
/// leave from another port, every later new flow leaves from that port too.
fn moved_port(agreeing: &[&NatObservation]) -> Option<u16> {
    let ordered = || agreeing.iter().filter_map(|o| Some((o.order?, o.public.port())));
    let (_, b) = ordered().max()?;
    let newest_a = |a: u16| ordered().filter(|&(_, p)| p == a).map(|(o, _)| o).max();
    let with_b: Vec<u64> = ordered().filter(|&(_, p)| p == b).map(|(o, _)| o).collect();
    let a = most_common(ordered().map(|(_, p)| p).filter(|&p| p != b))?;
    let count = |port: u16| agreeing.iter().filter(|o| o.public.port() == port).count();
    let moved = with_b.len() >= 2
        && count(a) >= 2
        && newest_a(a).is_some_and(|last_a| with_b.iter().all(|&o| o > last_a))
        && 2 * (count(a) + count(b)) > agreeing.len();
    moved.then_some(b)
}

/// The value seen most often; ties go to the one seen first.
fn most_common<T: PartialEq + Copy>(values: impl Iterator<Item = T> + Clone) -> Option<T> {
    let mut best: Option<(T, usize)> = None;
    for v in values.clone() {
        let count = values.clone().filter(|w| *w == v).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((v, count));
        }
    }
    best.map(|(v, _)| v)
}

/// The step that best explains `mappings` (ordered by creation) as a sequential
/// allocator's, if one explains them well enough (the rule in the module docs).
fn best_step(mappings: &[(u64, u16)]) -> Option<u16> {
    let n = mappings.len();
    if n < MIN_OBSERVATIONS {
        return None;
    }
    let mut best: Option<(usize, usize, u16)> = None;
    for step in 1..=MAX_STEP {
        let (len, exact) = longest_chain(mappings, step);
        let fits = len >= MIN_OBSERVATIONS && n - len <= n / 4 && 2 * exact >= len - 1;
        if fits && best.is_none_or(|(l, e, _)| (len, exact) > (l, e)) {
            best = Some((len, exact, step));
        }
    }
    best.map(|(_, _, step)| step)
}

/// The longest chain of `mappings` a sequential allocator of `step` could have made,
/// and how many of its links are exact: (length, exact links). With `residual` =
/// port − step × creation order, each link keeps the residual (exact) or raises it by a
/// multiple of `step` of at most [`MAX_BACKGROUND`] (other hosts' mappings).
fn longest_chain(mappings: &[(u64, u16)], step: u16) -> (usize, usize) {
    let Some(&(first, _)) = mappings.first() else {
        return (0, 0);
    };
    let step = i128::from(step);
    let residual: Vec<i128> = mappings
        .iter()
        .map(|&(order, port)| i128::from(port) - step * i128::from(order - first))
        .collect();
    // best[i]: the longest chain ending at i, as (length, exact links).
    let mut best: Vec<(usize, usize)> = vec![(1, 0); mappings.len()];
    for i in 1..mappings.len() {
        for j in 0..i {
            if mappings[j].0 == mappings[i].0 {
                continue;
            }
            let rise = residual[i] - residual[j];
            if rise < 0 || rise % step != 0 || rise / step > i128::from(MAX_BACKGROUND) {
                continue;
            }
            let candidate = (best[j].0 + 1, best[j].1 + usize::from(rise == 0));
            if candidate > best[i] {
                best[i] = candidate;
            }
        }
    }
    best.into_iter().max().unwrap_or((0, 0))
}
