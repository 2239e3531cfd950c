//! Where the next scheduled probe goes, for each [`Punch`] that probes.

use std::net::{IpAddr, SocketAddr};

use rand_core::Rng as _;

use super::plan::{Punch, SEQUENTIAL_STRIDE};
use crate::seed::Rng;

/// The lowest port a NAT allocates (the top of the well-known and registered range
/// that NATs avoid); allocation wraps from 65535 back here.
pub const NAT_PORT_MIN: u16 = 1024;
/// How many ports a NAT allocates from.
pub const NAT_PORTS: u32 = 65536 - NAT_PORT_MIN as u32;

/// The first sweep of a sequential prediction covers this many steps past the last
/// observed port; each sweep covers one more such span, up to [`MAX_WINDOW`].
const WINDOW: u32 = 1024;
/// The widest sweep, in steps.
const MAX_WINDOW: u32 = 16 * 1024;

/// `port` moved `steps` allocations of `step` forward, wrapping within the NAT's range.
pub fn advance(port: u16, step: u16, steps: u32) -> u16 {
    let from = u64::from(port.max(NAT_PORT_MIN) - NAT_PORT_MIN);
    let moved = (from + u64::from(step) * u64::from(steps)) % u64::from(NAT_PORTS);
    // moved < NAT_PORTS, so the sum is at most 65535.
    NAT_PORT_MIN + moved as u16
}

/// The probe destinations of one attempt.
#[derive(Debug)]
pub enum Schedule {
    /// No scheduled probes (the hard side only answers).
    None,
    /// Distinct random ports of the NAT's range.
    Random {
        ip: IpAddr,
        rng: Box<Rng>,
        /// One bit per port of 0..65536 already probed.
        used: Box<[u64; 1024]>,
    },
    /// Growing sweeps past the last observed port.
    Sequential {
        ip: IpAddr,
        last_port: u16,
        step: u16,
        sweep: u32,
        /// The next offset (in steps) in this sweep.
        offset: u32,
    },
    /// Random and sequential probes in turn (the peer's allocation is unknown).
    Mixed {
        random: Box<Schedule>,
        sequential: Box<Schedule>,
        /// Whether the next probe is a sequential one.
        sequential_next: bool,
    },
    /// The k-th probe to the peer's (1 + k)-th or (1 + 2k)-th next port.
    Meet {
        ip: IpAddr,
        last_port: u16,
        step: u16,
        doubled: bool,
        k: u32,
    },
}

impl Schedule {
    /// The schedule of `punch`, its randomness from `rng`.
    pub fn new(punch: &Punch, rng: Rng) -> Schedule {
        match *punch {
            Punch::OpenMappings { .. } => Schedule::None,
            Punch::OpenAndMeet { peer, doubled, .. } => Schedule::Meet {
                ip: peer.ip().to_canonical(),
                last_port: peer.port(),
                step: 1,
                doubled,
                k: 0,
            },
            Punch::ProbeRandom { peer_ip } => Schedule::Random {
                ip: peer_ip,
                rng: Box::new(rng),
                used: Box::new([0; 1024]),
            },
            Punch::ProbeSequential {
                peer_ip,
                last_port,
                step,
            } => Schedule::Sequential {
                ip: peer_ip,
                last_port,
                step,
                sweep: 0,
                offset: 1,
            },
            Punch::ProbeUnknown { peer_ip, last_port } => Schedule::Mixed {
                random: Box::new(Schedule::new(&Punch::ProbeRandom { peer_ip }, rng)),
                sequential: Box::new(Schedule::Sequential {
                    ip: peer_ip,
                    last_port,
                    step: 1,
                    sweep: 0,
                    // Not the port right after the announced one first: behind a
                    // sequential NAT that is the likeliest to be the flow the peer's
                    // hellos to us left from, which a Linux router without a firewall
                    // in front of us has claimed (`docs/port-prediction.md`): a probe
                    // to it would leave from another port of ours, and so would every
                    // later one. The peer's openings come after it.
                    offset: 2,
                }),
                sequential_next: false,
            },
            Punch::MeetSequential {
                peer_ip,
                last_port,
                step,
                doubled,
            } => Schedule::Meet {
                ip: peer_ip,
                last_port,
                step,
                doubled,
                k: 0,
            },
        }
    }

    /// The destination of the next scheduled probe (`None`: this side never probes
    /// on a schedule). The caller caps how many it takes.
    pub fn next(&mut self) -> Option<SocketAddr> {
        match self {
            Schedule::None => None,
            Schedule::Random { ip, rng, used } => {
                let port = fresh_random_port(rng, used);
                Some(SocketAddr::new(*ip, port))
            }
            Schedule::Sequential {
                ip,
                last_port,
                step,
                sweep,
                offset,
            } => {
                let window = (WINDOW * (*sweep + 1)).min(MAX_WINDOW);
                if *offset > window {
                    *sweep += 1;
                    // A different phase each sweep: a port another host's mapping took
                    // in one sweep is not probed again in the next.
                    *offset = 1 + (*sweep * 7) % u32::from(SEQUENTIAL_STRIDE);
                }
                let port = advance(*last_port, *step, *offset);
                *offset += u32::from(SEQUENTIAL_STRIDE);
                Some(SocketAddr::new(*ip, port))
            }
            Schedule::Mixed {
                random,
                sequential,
                sequential_next,
            } => {
                let next = if *sequential_next {
                    sequential.next()
                } else {
                    random.next()
                };
                *sequential_next = !*sequential_next;
                next
            }
            Schedule::Meet {
                ip,
                last_port,
                step,
                doubled,
                k,
            } => {
                let steps = 1 + if *doubled { 2 * *k } else { *k };
                *k += 1;
                Some(SocketAddr::new(*ip, advance(*last_port, *step, steps)))
            }
        }
    }
}

/// A random port of the NAT's range not probed yet (at most [`super::plan::MAX_PROBES`]
/// of its 64,512 are ever taken, so a free one is found in a few draws; after 64 misses
/// the next free port upwards is taken).
fn fresh_random_port(rng: &mut Rng, used: &mut [u64; 1024]) -> u16 {
    let mut port = NAT_PORT_MIN;
    for _ in 0..64 {
        port = NAT_PORT_MIN + (rng.next_u32() % NAT_PORTS) as u16;
        if !is_used(used, port) {
            break;
        }
    }
    for _ in 0..NAT_PORTS {
        if !is_used(used, port) {
            break;
        }
        port = advance(port, 1, 1);
    }
    used[usize::from(port / 64)] |= 1 << (port % 64);
    port
}

fn is_used(used: &[u64; 1024], port: u16) -> bool {
    used[usize::from(port / 64)] & (1 << (port % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Seed;

    #[test]
    fn advance_wraps_within_the_nat_range() {
        assert_eq!(advance(40000, 1, 1), 40001);
        assert_eq!(advance(65535, 1, 1), 1024);
        assert_eq!(advance(65534, 2, 2), 1026);
        assert_eq!(advance(80, 1, 0), 1024);
    }

    #[test]
    fn random_ports_never_repeat_and_stay_in_range() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let punch = Punch::ProbeRandom { peer_ip: ip };
        let mut s = Schedule::new(&punch, Seed::from_u64(5).rng());
        let mut seen = std::collections::BTreeSet::new();
        // Every port of the range, then wrapping around without a repeat.
        for _ in 0..NAT_PORTS {
            let a = s.next().unwrap();
            assert_eq!(a.ip(), ip);
            assert!(a.port() >= NAT_PORT_MIN);
            assert!(seen.insert(a.port()), "port {} twice", a.port());
        }
    }

    #[test]
    fn sequential_sweeps_grow_and_change_phase() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let punch = Punch::ProbeSequential {
            peer_ip: ip,
            last_port: 50000,
            step: 2,
        };
        let mut s = Schedule::new(&punch, Seed::from_u64(5).rng());
        let first: Vec<u16> = (0..64).map(|_| s.next().unwrap().port()).collect();
        assert_eq!(first[0], 50002);
        assert_eq!(first[1], 50002 + 2 * 16);
        assert_eq!(*first.last().unwrap(), 50002 + 2 * 16 * 63);
        // The second sweep starts again near the last port, 7 steps on, and is wider.
        assert_eq!(s.next().unwrap().port(), 50000 + 2 * 8);
        for i in 1..128u16 {
            assert_eq!(s.next().unwrap().port(), 50016 + 32 * i);
        }
        assert_eq!(s.next().unwrap().port(), 50000 + 2 * 15, "third sweep, phase 15");
    }

    #[test]
    fn an_unknown_allocator_gets_random_and_sequential_probes_in_turn() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let punch = Punch::ProbeUnknown {
            peer_ip: ip,
            last_port: 50000,
        };
        let mut s = Schedule::new(&punch, Seed::from_u64(5).rng());
        let ports: Vec<u16> = (0..6).map(|_| s.next().unwrap().port()).collect();
        // Every second probe sweeps past the announced port with step 1, stride 16,
        // from the second port after it.
        assert_eq!([ports[1], ports[3], ports[5]], [50002, 50018, 50034]);
        let mut random = Schedule::new(&Punch::ProbeRandom { peer_ip: ip }, Seed::from_u64(5).rng());
        let expected: Vec<u16> = (0..3).map(|_| random.next().unwrap().port()).collect();
        assert_eq!([ports[0], ports[2], ports[4]].to_vec(), expected);
    }

    #[test]
    fn meeting_sequences_advance_one_or_two_steps() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for (doubled, expected) in [(false, [2001, 2002, 2003]), (true, [2001, 2003, 2005])] {
            let punch = Punch::MeetSequential {
                peer_ip: ip,
                last_port: 2000,
                step: 1,
                doubled,
            };
            let mut s = Schedule::new(&punch, Seed::from_u64(5).rng());
            let got: Vec<u16> = (0..3).map(|_| s.next().unwrap().port()).collect();
            assert_eq!(got, expected);
        }
    }
}
