//! Which port-prediction method a pair of members uses, from both NAT classes
//! (docs/port-prediction.md gives the reasoning and the cost of each).
//!
//! Both members run [`decide`] with the same facts seen from their own side, so their
//! plans are complementary: one [`Punch::OpenMappings`] meets one [`Punch::ProbeRandom`]
//! or [`Punch::ProbeSequential`]; two [`Punch::MeetSequential`] meet each other.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::meeting::signal::MemberId;
use crate::nat::NatClass;

/// Pool sockets the hard side opens against an easy side when its NAT allocates random
/// ports (the birthday method): 1 − e^(−256·m/64512) with m easy-side probes.
pub const BIRTHDAY_SOCKETS: u16 = 256;
/// Pool sockets the hard side opens when its NAT allocates sequentially: a run of 32
/// consecutive ports, found by probes [`SEQUENTIAL_STRIDE`] apart.
pub const SEQUENTIAL_SOCKETS: u16 = 32;
/// Distance, in steps, between two probes of a sequential sweep: half the run of
/// mappings the hard side opens, so every sweep hits it twice if no other host's
/// mapping falls inside it.
pub const SEQUENTIAL_STRIDE: u16 = 16;
/// Probes an easy side sends at most in one attempt (15 s at [`PROBE_INTERVAL`]).
pub const MAX_PROBES: u32 = 3_000;
/// Probes each side sends at most when both NATs are sequential (5 s): each one is a
/// new mapping in both NATs, so this is kept smaller.
pub const MAX_MEET_PROBES: u32 = 1_000;
/// The interval between two scheduled probes (200 probes/s).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// The largest step of a sequential allocator we predict; a larger (or zero) claimed
/// step is treated as random allocation.
pub const MAX_STEP: u16 = 32;

/// What each member knows when it plans: both NAT classes (ours from our observations,
/// the peer's from its verified signaling) and the peer's public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situation {
    /// How our NAT allocates public ports.
    pub ours: NatClass,
    /// How the peer's NAT allocates public ports, as the peer says.
    pub theirs: NatClass,
    /// The peer's public address: its endpoint-independent mapping, or for a
    /// sequential NAT the most recent mapping observed (its port is where prediction
    /// starts). Its IP is the only one the attempt ever sends to: it must be the address
    /// the member's verified signaling came from, never one a message merely names.
    pub peer_public: SocketAddr,
    /// Our member id.
    pub our_id: MemberId,
    /// The peer's member id.
    pub peer_id: MemberId,
}

/// The plan for one pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// One side keeps one public address for every destination and the other's is
    /// usable (or we know too little): ordinary ICE connects, no prediction.
    Direct,
    /// Port prediction: run a [`super::PunchAttempt`] with this.
    Punch(Punch),
    /// No direct path can be predicted (random against random, random against
    /// sequential): only a relay connects this pair.
    Relay,
}

/// What one side of a port-prediction attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punch {
    /// We are the hard side: open `sockets` pool sockets and from each send one opening
    /// probe to `peer` (the easy side's one public address), which creates a mapping in
    /// our NAT that lets the peer's probes in; then answer the probes that arrive.
    OpenMappings {
        /// The easy side's public address.
        peer: SocketAddr,
        /// How many pool sockets (mappings).
        sockets: u16,
    },
    /// We are the easy side against random allocation (the birthday method): probe
    /// distinct random ports 1024–65535 of `peer_ip` from our main socket.
    ProbeRandom {
        /// The hard side's public IP.
        peer_ip: IpAddr,
    },
    /// We are the easy side against sequential allocation: sweep `last_port +
    /// step·(1 + phase + stride·i)` over a window that grows each sweep (background
    /// traffic moves the counter), from our main socket.
    ProbeSequential {
        /// The hard side's public IP.
        peer_ip: IpAddr,
        /// The port of the hard side's most recent mapping we know.
        last_port: u16,
        /// Its allocator's step.
        step: u16,
    },
    /// We are an easy side and do not know how the peer's NAT allocates (no signaling
    /// has passed yet, see [`decide_blind`]): alternate the two easy-side schedules,
    /// distinct random ports and sequential sweeps (step 1) past `last_port`.
    ProbeUnknown {
        /// The peer's public IP.
        peer_ip: IpAddr,
        /// The port the peer's NAT gave it towards a DHT node (its announced address).
        last_port: u16,
    },
    /// We are a sequential hard side and do not know the peer's NAT (before signaling,
    /// [`decide_blind`]): both [`Punch::OpenMappings`] towards `peer` (for an easy peer)
    /// and the [`Punch::MeetSequential`] schedule from our main socket, taking the
    /// peer's step as 1 (for a sequential peer).
    OpenAndMeet {
        /// The peer's address found under the topic (its one public address if it is
        /// easy; its latest mapping if it is sequential).
        peer: SocketAddr,
        /// How many pool sockets (mappings).
        sockets: u16,
        /// Whether we advance two steps per probe (the side with the lower public IP).
        doubled: bool,
    },
    /// Both NATs allocate sequentially: the k-th probe from our main socket goes to the
    /// peer's predicted port `last_port + step·(1 + k)`, or `·(1 + 2k)` when `doubled`
    /// (the member with the smaller id). A new mapping per probe on both sides: the
    /// doubled side's k-th mapping meets the other's (k + δa)-th when k = δa + δb, the
    /// mappings other traffic took on each NAT since its port was observed.
    MeetSequential {
        /// The peer's public IP.
        peer_ip: IpAddr,
        /// The port of the peer's most recent mapping we know.
        last_port: u16,
        /// The peer's allocator's step.
        step: u16,
        /// Whether we advance two steps per probe.
        doubled: bool,
    },
}

impl Punch {
    /// The one IP this attempt ever sends to.
    pub fn peer_ip(&self) -> IpAddr {
        match *self {
            Punch::OpenMappings { peer, .. } | Punch::OpenAndMeet { peer, .. } => peer.ip(),
            Punch::ProbeRandom { peer_ip }
            | Punch::ProbeSequential { peer_ip, .. }
            | Punch::ProbeUnknown { peer_ip, .. }
            | Punch::MeetSequential { peer_ip, .. } => peer_ip,
        }
        .to_canonical()
    }

    /// Pool sockets this side asks for.
    pub fn sockets(&self) -> u16 {
        match *self {
            Punch::OpenMappings { sockets, .. } | Punch::OpenAndMeet { sockets, .. } => sockets,
            _ => 0,
        }
    }

    /// Scheduled probes this side sends at most (openings and answers aside).
    pub fn max_probes(&self) -> u32 {
        match self {
            Punch::OpenMappings { .. } => 0,
            Punch::ProbeRandom { .. }
            | Punch::ProbeSequential { .. }
            | Punch::ProbeUnknown { .. } => MAX_PROBES,
            Punch::MeetSequential { .. } | Punch::OpenAndMeet { .. } => MAX_MEET_PROBES,
        }
    }
}

/// How a NAT class behaves for prediction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Unknown,
    /// One public address for every destination.
    Stable,
    /// A predictable new port per destination.
    Sequential(u16),
    /// An unpredictable new port per destination.
    Random,
}

fn shape(class: NatClass) -> Shape {
    match class {
        NatClass::Unknown => Shape::Unknown,
        NatClass::Open | NatClass::EndpointIndependent { .. } => Shape::Stable,
        NatClass::Sequential { step } if (1..=MAX_STEP).contains(&step) => {
            Shape::Sequential(step)
        }
        // A port-preserving NAT keeps a fresh pool socket's local port, which the easy
        // side does not know (it is not signaled): as good as random for the peer.
        NatClass::Sequential { .. } | NatClass::PortPreserving | NatClass::Random => {
            Shape::Random
        }
    }
}

/// The plan for one pair, from our side.
pub fn decide(s: &Situation) -> Plan {
    let peer_ip = s.peer_public.ip().to_canonical();
    let last_port = s.peer_public.port();
    match (shape(s.ours), shape(s.theirs)) {
        (Shape::Unknown, _) | (_, Shape::Unknown) | (Shape::Stable, Shape::Stable) => {
            Plan::Direct
        }
        (Shape::Stable, Shape::Random) => Plan::Punch(Punch::ProbeRandom { peer_ip }),
        (Shape::Stable, Shape::Sequential(step)) => Plan::Punch(Punch::ProbeSequential {
            peer_ip,
            last_port,
            step,
        }),
        (Shape::Random, Shape::Stable) => Plan::Punch(Punch::OpenMappings {
            peer: s.peer_public,
            sockets: BIRTHDAY_SOCKETS,
        }),
        (Shape::Sequential(_), Shape::Stable) => Plan::Punch(Punch::OpenMappings {
            peer: s.peer_public,
            sockets: SEQUENTIAL_SOCKETS,
        }),
        (Shape::Sequential(_), Shape::Sequential(step)) => {
            Plan::Punch(Punch::MeetSequential {
                peer_ip,
                last_port,
                step,
                doubled: s.our_id < s.peer_id,
            })
        }
        (Shape::Random, Shape::Random | Shape::Sequential(_))
        | (Shape::Sequential(_), Shape::Random) => Plan::Relay,
    }
}

/// The plan towards a `contact` (an address found under the meeting's topic) that has
/// not answered our hellos, from our own NAT class alone: before any signaling has passed,
/// the peer's class is unknown. Against a port-restricted filter, no signaling passes
/// between an easy and a hard side until a predicted path exists, so this is the plan
/// that opens one (docs/port-prediction.md, "Before signaling"). The hard side opens its
/// mappings towards the contact's address (an easy side's one public address); the easy
/// side probes both ways a hard NAT may allocate. `None`: we cannot help (our own class
/// is unknown).
pub fn decide_blind(ours: NatClass, our_ip: IpAddr, contact: SocketAddr) -> Option<Punch> {
    match shape(ours) {
        Shape::Unknown => None,
        Shape::Stable => Some(Punch::ProbeUnknown {
            peer_ip: contact.ip().to_canonical(),
            last_port: contact.port(),
        }),
        Shape::Random => Some(Punch::OpenMappings {
            peer: contact,
            sockets: BIRTHDAY_SOCKETS,
        }),
        Shape::Sequential(_) => Some(Punch::OpenAndMeet {
            peer: contact,
            sockets: SEQUENTIAL_SOCKETS,
            doubled: our_ip.to_canonical() < contact.ip().to_canonical(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSES: [NatClass; 9] = [
        NatClass::Unknown,
        NatClass::Open,
        NatClass::EndpointIndependent { preserving: true },
        NatClass::EndpointIndependent { preserving: false },
        NatClass::PortPreserving,
        NatClass::Sequential { step: 1 },
        NatClass::Sequential { step: 0 },
        NatClass::Sequential { step: 1000 },
        NatClass::Random,
    ];

    fn situation(ours: NatClass, theirs: NatClass, swap: bool) -> Situation {
        let (a, b) = (MemberId([1; 8]), MemberId([2; 8]));
        Situation {
            ours,
            theirs,
            peer_public: "203.0.113.9:40000".parse().unwrap(),
            our_id: if swap { b } else { a },
            peer_id: if swap { a } else { b },
        }
    }

    fn role(p: Plan) -> &'static str {
        match p {
            Plan::Direct => "direct",
            Plan::Relay => "relay",
            Plan::Punch(Punch::OpenMappings { .. } | Punch::OpenAndMeet { .. }) => "hard",
            Plan::Punch(
                Punch::ProbeRandom { .. }
                | Punch::ProbeSequential { .. }
                | Punch::ProbeUnknown { .. },
            ) => "easy",
            Plan::Punch(Punch::MeetSequential { doubled: true, .. }) => "meet2",
            Plan::Punch(Punch::MeetSequential { doubled: false, .. }) => "meet1",
        }
    }

    /// Before signaling, each side plans from its own class: a hard side (random or
    /// sequential) opens mappings towards the contact, an easy one probes, and a side
    /// that does not know its class does nothing.
    #[test]
    fn blind_plans_follow_our_own_class() {
        let contact: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let our_ip: IpAddr = "198.51.100.1".parse().unwrap();
        for ours in CLASSES {
            let plan = decide_blind(ours, our_ip, contact).map(Plan::Punch);
            let expected = match ours {
                NatClass::Unknown => "none",
                NatClass::Open | NatClass::EndpointIndependent { .. } => "easy",
                _ => "hard",
            };
            assert_eq!(plan.map_or("none", role), expected, "{ours:?}");
            // Only ever towards the contact's IP.
            if let Some(Plan::Punch(p)) = plan {
                assert_eq!(p.peer_ip(), contact.ip());
            }
        }
        assert_eq!(
            decide_blind(NatClass::Random, our_ip, contact).map(|p| p.sockets()),
            Some(BIRTHDAY_SOCKETS)
        );
        assert_eq!(
            decide_blind(NatClass::Sequential { step: 1 }, our_ip, contact).map(|p| p.sockets()),
            Some(SEQUENTIAL_SOCKETS)
        );
    }

    /// Both members plan with the same facts from their own side: every pair of
    /// classes gives complementary plans.
    #[test]
    fn plans_are_complementary_for_every_pair_of_classes() {
        for ours in CLASSES {
            for theirs in CLASSES {
                let a = role(decide(&situation(ours, theirs, false)));
                let b = role(decide(&situation(theirs, ours, true)));
                let ok = matches!(
                    (a, b),
                    ("direct", "direct")
                        | ("relay", "relay")
                        | ("hard", "easy")
                        | ("easy", "hard")
                        | ("meet1", "meet2")
                        | ("meet2", "meet1")
                );
                assert!(ok, "{ours:?} vs {theirs:?}: {a} / {b}");
            }
        }
    }

    #[test]
    fn the_table_of_docs_port_prediction() {
        let ei = NatClass::EndpointIndependent { preserving: false };
        let plan = |o, t| decide(&situation(o, t, false));
        assert_eq!(plan(ei, ei), Plan::Direct);
        assert_eq!(plan(NatClass::Unknown, NatClass::Random), Plan::Direct);
        assert_eq!(plan(NatClass::Random, NatClass::Random), Plan::Relay);
        assert_eq!(
            plan(NatClass::Random, NatClass::Sequential { step: 2 }),
            Plan::Relay
        );
        assert_eq!(
            plan(NatClass::Random, ei),
            Plan::Punch(Punch::OpenMappings {
                peer: "203.0.113.9:40000".parse().unwrap(),
                sockets: 256
            })
        );
        assert_eq!(
            plan(NatClass::Sequential { step: 2 }, NatClass::Open),
            Plan::Punch(Punch::OpenMappings {
                peer: "203.0.113.9:40000".parse().unwrap(),
                sockets: 32
            })
        );
        assert_eq!(
            plan(ei, NatClass::Sequential { step: 3 }),
            Plan::Punch(Punch::ProbeSequential {
                peer_ip: "203.0.113.9".parse().unwrap(),
                last_port: 40000,
                step: 3
            })
        );
        // A claimed step of 0 or beyond MAX_STEP is random allocation.
        assert_eq!(
            plan(ei, NatClass::Sequential { step: 0 }),
            Plan::Punch(Punch::ProbeRandom {
                peer_ip: "203.0.113.9".parse().unwrap()
            })
        );
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let mut s = situation(NatClass::Open, NatClass::Random, false);
        s.peer_public = "[::ffff:203.0.113.9]:1".parse().unwrap();
        let Plan::Punch(p) = decide(&s) else {
            panic!("a punch")
        };
        assert_eq!(p.peer_ip(), "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
