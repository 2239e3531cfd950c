//! Port assignment (RFC 4787 §4.2.1): which free external port a new mapping gets, and
//! the background mappings of the other hosts behind the NAT that take ports too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_core::Rng as _;

use super::{Binding, MappingKey, Nat, Permissions, PortAssignment, nanos};

/// The ephemeral ports other hosts send from (Linux's `ip_local_port_range`): what a
/// preserving NAT tries to keep for a background mapping.
const BACKGROUND_INTERNAL_PORTS: (u16, u16) = (32768, 60999);

impl Nat {
    /// Makes the background mappings due at or before `now`, each at its own instant
    /// (the first call only starts the process).
    pub(super) fn catch_up(&mut self, now: u64) {
        let Some(background) = self.config.background else {
            return;
        };
        let mean = nanos(background.mean_interval);
        let mut due = match self.background_next {
            Some(due) => due,
            None => now.saturating_add(self.draw_interval(mean)),
        };
        while due <= now {
            self.background_mapping(due);
            due = due.saturating_add(self.draw_interval(mean));
        }
        self.background_next = Some(due);
    }

    /// An exponentially distributed interval of mean `mean` ns (at least 1 ns, so that
    /// the catch-up always moves on).
    fn draw_interval(&mut self, mean: u64) -> u64 {
        let u = crate::link::uniform(&mut self.rng);
        ((-(1.0 - u).ln() * mean as f64) as u64).max(1)
    }

    /// Another host's new flow at `at`: a binding of its own (a key no real host can
    /// have: internal address 0.0.0.0), no permissions. Dropped silently if no port is
    /// free: the other host's problem.
    fn background_mapping(&mut self, at: u64) {
        let n = self.background_count;
        self.background_count += 1;
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(n as u32)), (n >> 32) as u16);
        let key = MappingKey {
            internal: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            remote_ip: Some(remote.ip()),
            remote_port: Some(remote.port()),
        };
        let (lo, hi) = BACKGROUND_INTERNAL_PORTS;
        let internal_port = lo + (self.rng.next_u64() % u64::from(hi - lo + 1)) as u16;
        let Some(port) = self.allocate(at, internal_port, remote, self.config.port_assignment)
        else {
            return;
        };
        self.mappings.insert(key, port);
        self.bindings.insert(
            port,
            Binding {
                key,
                expires: at.saturating_add(nanos(self.config.mapping_timeout)),
                permissions: Permissions::default(),
            },
        );
        self.stats.background_mappings += 1;
    }

    /// A free external port for a new binding whose first datagram goes to `dst` (a
    /// port `dst` has claimed is not free for it).
    pub(super) fn allocate(
        &mut self,
        now: u64,
        internal_port: u16,
        dst: SocketAddr,
        assignment: PortAssignment,
    ) -> Option<u16> {
        if self.bindings.len() >= self.config.max_mappings {
            let expired: Vec<u16> = self
                .bindings
                .iter()
                .filter(|(_, b)| b.expires <= now)
                .map(|(&p, _)| p)
                .collect();
            for p in expired {
                self.remove_binding(p);
            }
            if self.bindings.len() >= self.config.max_mappings {
                return None;
            }
        }
        let (lo, hi) = (
            *self.config.port_range.start(),
            *self.config.port_range.end(),
        );
        match assignment {
            PortAssignment::Preserving => {
                if internal_port != 0 && self.usable(now, internal_port, dst) {
                    return Some(internal_port);
                }
                self.scan(now, dst, self.next_port, 1, true)
            }
            PortAssignment::Random => {
                let span = u64::from(hi - lo) + 1;
                for _ in 0..16 {
                    let p = lo + (self.rng.next_u64() % span) as u16;
                    if self.usable(now, p, dst) {
                        return Some(p);
                    }
                }
                // A nearly full range: the first free port from a random one, as Linux
                // does (`nf_nat_l4proto_unique_tuple`).
                let start = lo + (self.rng.next_u64() % span) as u16;
                self.scan(now, dst, start, 1, false)
            }
            PortAssignment::Sequential { step } => self.scan(now, dst, self.next_port, step, true),
        }
    }

    /// Whether a new binding towards `dst` may take `port` at `now`.
    fn usable(&mut self, now: u64, port: u16, dst: SocketAddr) -> bool {
        !self.claimed(now, port, dst) && self.free(now, port)
    }

    /// The first usable port from `start` on, walking the range (wrapping) in steps of
    /// `step`; if that walk finds none (its ports are all bound), in steps of 1. With
    /// `advance`, the counter moves to `step` past the port given. At most two passes
    /// over the range.
    fn scan(
        &mut self,
        now: u64,
        dst: SocketAddr,
        start: u16,
        step: u16,
        advance: bool,
    ) -> Option<u16> {
        let (lo, hi) = (
            *self.config.port_range.start(),
            *self.config.port_range.end(),
        );
        let span = u64::from(hi - lo) + 1;
        let start = u64::from(start.clamp(lo, hi) - lo);
        let step = u64::from(step.max(1));
        let strides: &[u64] = if step == 1 { &[1] } else { &[step, 1] };
        for &stride in strides {
            for i in 0..span {
                let p = lo + ((start + i * stride) % span) as u16;
                if self.usable(now, p, dst) {
                    if advance {
                        self.next_port = lo + ((u64::from(p - lo) + step) % span) as u16;
                    }
                    return Some(p);
                }
            }
        }
        None
    }
}
