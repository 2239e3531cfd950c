//! The remote endpoints a binding lets in (RFC 4787 §5 filtering): each one the inside
//! host sent to, with its own expiry, as a conntrack entry per flow.
//!
//! The list is bounded ([`MAX_PERMISSIONS`]) to bound the simulator's memory. When it
//! is full, a new remote endpoint pushes out, in this order: an expired one; the least
//! recently refreshed one that never let a datagram in (an unreplied flow); only then
//! the least recently refreshed one that did. That is how a NAT with a bounded table
//! sheds flows: Linux's conntrack, when full, drops only entries that never saw a
//! reply ("early drop" of unassured entries), never an established flow. Forgetting
//! an established flow first (oldest in, first out) would let a member that probes
//! many ports from one socket cut its own working paths, which no real NAT does.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV6};

use super::FilteringBehavior;

/// Remote endpoints a binding remembers for filtering, at most: far more than a
/// member's DHT, STUN and peer flows together, and than the probes of a port-prediction
/// attempt that are alive at once, so that only a flood of new flows sheds any.
pub const MAX_PERMISSIONS: usize = 4096;

/// One remote endpoint sent to.
#[derive(Clone, Copy, Debug)]
struct Permission {
    expires: u64,
    /// Whether it has let a datagram in (the flow saw a reply).
    replied: bool,
}

/// A binding's permissions, by remote endpoint.
#[derive(Clone, Debug, Default)]
pub(super) struct Permissions {
    by_remote: BTreeMap<SocketAddr, Permission>,
}

impl Permissions {
    /// Outbound traffic to `remote`: its permission lives until `expires`, made if
    /// new (pushing another out if the list is full).
    pub(super) fn sent(&mut self, now: u64, remote: SocketAddr, expires: u64) {
        if let Some(p) = self.by_remote.get_mut(&remote) {
            p.expires = expires;
            return;
        }
        if self.by_remote.len() >= MAX_PERMISSIONS {
            self.by_remote.retain(|_, p| p.expires > now);
        }
        if self.by_remote.len() >= MAX_PERMISSIONS {
            let victim = self
                .by_remote
                .iter()
                .min_by_key(|(_, p)| (p.replied, p.expires))
                .map(|(&r, _)| r);
            if let Some(r) = victim {
                self.by_remote.remove(&r);
            }
        }
        self.by_remote.insert(
            remote,
            Permission {
                expires,
                replied: false,
            },
        );
    }

    /// Whether a live permission for exactly `remote` exists (a live conntrack flow).
    pub(super) fn has(&self, now: u64, remote: SocketAddr) -> bool {
        self.by_remote.get(&remote).is_some_and(|p| p.expires > now)
    }

    /// Whether `filtering` lets a datagram from `src` in at `now`.
    pub(super) fn admit(&self, filtering: FilteringBehavior, now: u64, src: SocketAddr) -> bool {
        match filtering {
            FilteringBehavior::EndpointIndependent => true,
            FilteringBehavior::AddressDependent => self.same_ip(src).any(|(_, p)| p.expires > now),
            FilteringBehavior::AddressAndPortDependent => {
                self.by_remote.get(&src).is_some_and(|p| p.expires > now)
            }
        }
    }

    /// A datagram from `src` was let in at `now`: the permissions that admitted it saw
    /// a reply, and live until `refresh_to` if given (inbound refresh).
    pub(super) fn admitted(
        &mut self,
        filtering: FilteringBehavior,
        now: u64,
        src: SocketAddr,
        refresh_to: Option<u64>,
    ) {
        let mark = |p: &mut Permission| {
            if p.expires > now {
                p.replied = true;
                if let Some(expires) = refresh_to {
                    p.expires = expires;
                }
            }
        };
        match filtering {
            // No permission admitted it: anyone may send.
            FilteringBehavior::EndpointIndependent => {}
            FilteringBehavior::AddressDependent => {
                let (lo, hi) = ip_range(src);
                self.by_remote.range_mut(lo..=hi).for_each(|(_, p)| mark(p));
            }
            FilteringBehavior::AddressAndPortDependent => {
                if let Some(p) = self.by_remote.get_mut(&src) {
                    mark(p);
                }
            }
        }
    }

    /// The permissions for `src`'s IP address, any port.
    fn same_ip(&self, src: SocketAddr) -> impl Iterator<Item = (&SocketAddr, &Permission)> {
        let (lo, hi) = ip_range(src);
        self.by_remote.range(lo..=hi)
    }
}

/// The first and last endpoint of `addr`'s IP address (a socket address orders by IP,
/// then port, then an IPv6 address's flow label and scope).
fn ip_range(addr: SocketAddr) -> (SocketAddr, SocketAddr) {
    match addr {
        SocketAddr::V4(a) => (
            SocketAddr::new((*a.ip()).into(), 0),
            SocketAddr::new((*a.ip()).into(), u16::MAX),
        ),
        SocketAddr::V6(a) => (
            SocketAddrV6::new(*a.ip(), 0, 0, 0).into(),
            SocketAddrV6::new(*a.ip(), u16::MAX, u32::MAX, u32::MAX).into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 7], port))
    }

    const APDF: FilteringBehavior = FilteringBehavior::AddressAndPortDependent;

    #[test]
    fn a_full_list_sheds_unreplied_flows_before_an_established_one() {
        let mut p = Permissions::default();
        p.sent(0, sa(1), 100);
        p.admitted(APDF, 1, sa(1), Some(100));
        // Many more flows, each newer than the established one, none replied.
        for port in 2..2 + 3 * MAX_PERMISSIONS as u16 {
            p.sent(2, sa(port), 100);
        }
        assert!(p.admit(APDF, 3, sa(1)), "the established flow is kept");
        assert!(p.admit(APDF, 3, sa(1 + 3 * MAX_PERMISSIONS as u16)));
        assert!(!p.admit(APDF, 3, sa(2)), "the oldest unreplied one went");
        assert_eq!(p.by_remote.len(), MAX_PERMISSIONS);
    }

    #[test]
    fn among_replied_flows_the_least_recently_refreshed_goes_and_expired_ones_first() {
        let mut p = Permissions::default();
        let port = |i: usize| 10_000 + i as u16;
        for i in 0..MAX_PERMISSIONS {
            p.sent(0, sa(port(i)), 100 + i as u64);
            p.admitted(APDF, 0, sa(port(i)), None);
        }
        p.sent(1, sa(port(0)), 1_000); // refreshed: now the most recent
        p.sent(2, sa(1), 1_000);
        assert!(p.admit(APDF, 3, sa(port(0))));
        assert!(
            !p.admit(APDF, 3, sa(port(1))),
            "the least recently refreshed went"
        );
        assert!(p.admit(APDF, 3, sa(port(2))));
        // Full again when all but the last 45 have expired: the expired are swept, no
        // live one is shed.
        p.sent(4_150, sa(2), 10_000);
        assert!(!p.admit(APDF, 4_150, sa(port(0))), "expired");
        assert!(p.admit(APDF, 4_150, sa(port(4_051))));
        assert_eq!(p.by_remote.len(), 45 + 1);
    }

    #[test]
    fn address_dependent_filtering_admits_any_port_of_an_ip_sent_to() {
        let adf = FilteringBehavior::AddressDependent;
        let mut p = Permissions::default();
        p.sent(0, sa(1), 100);
        assert!(p.admit(adf, 1, sa(u16::MAX)));
        assert!(!p.admit(adf, 1, SocketAddr::from(([198, 51, 100, 8], 1))));
        p.admitted(adf, 1, sa(2), Some(500));
        assert!(
            p.admit(adf, 200, sa(3)),
            "refreshed by a datagram from another port"
        );
        assert!(!p.admit(adf, 500, sa(3)));
    }
}
