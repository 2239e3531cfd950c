//! A small internet in network namespaces:
//!
//! ```text
//!                    public addresses 203.0.113.0/24, routed by namespace `inet`
//!   inet: 203.0.113.1-3 (STUN servers, DHT nodes), a router between the homes
//!      |-- veth -- r1 wan 203.0.113.11 [nft: kind 1] lan 192.168.1.1 -- veth -- h1 192.168.1.10
//!      |-- veth -- r2 wan 203.0.113.12 [nft: kind 2] lan 192.168.1.1 -- veth -- h2 192.168.1.10
//!      ...
//! ```
//!
//! Every home network uses the same private addresses, as real ones do. Routers know
//! only the public /24 and their home network (no default route), so nothing can
//! leave the lab, and a packet to another home's private address is dropped.
//!
//! `inet` is a router, not a bridge: each home router's `wan` link is its own, `inet`
//! routes each public address to its link and answers ARP for the others (proxy ARP),
//! so a datagram from one home to another crosses one router hop between the NATs, as
//! on the Internet. Port prediction relies on that hop: its opening datagrams leave
//! with a low TTL, pass their own NAT (making the mapping) and expire in `inet` before
//! they reach the peer's NAT (`docs/port-prediction.md`).

use std::net::Ipv4Addr;

use crate::lab::Lab;
use crate::router::{LAN_HOST, LAN_ROUTER, RouterKind};

/// The public addresses of the infrastructure (STUN servers and DHT nodes), all in
/// `inet`: as on the Internet, a member can ask several servers where they see it.
pub const SERVERS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(203, 0, 113, 2),
    Ipv4Addr::new(203, 0, 113, 3),
];

/// The public address of home router `i` (counted from 0).
pub fn router_public(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        203,
        0,
        113,
        11 + u8::try_from(i).expect("fewer than 200 homes"),
    )
}

/// One home network: a router namespace and the member's host namespace behind it.
#[derive(Debug)]
pub struct Home {
    /// The router's kind.
    pub kind: RouterKind,
    /// The member's namespace (address [`LAN_HOST`]).
    pub host: String,
    /// The router's public address.
    pub public: Ipv4Addr,
}

/// The whole network; dropping it removes everything (see [`Lab`]).
#[derive(Debug)]
pub struct Internet {
    /// The namespaces and processes.
    pub lab: Lab,
    /// The namespace of the public segment, where the servers run.
    pub public: String,
    /// The home networks, in the order of the kinds given to [`Internet::build`].
    pub homes: Vec<Home>,
}

impl Internet {
    /// Builds the public segment and one home network behind a router of each of `kinds`.
    pub fn build(test: &str, kinds: &[RouterKind]) -> Internet {
        let mut lab = Lab::new(test);
        let public = lab.add_namespace(
            "inet",
            &["net.ipv4.ip_forward=1", "net.ipv4.conf.all.proxy_arp=1"],
        );
        for server in SERVERS {
            lab.exec(
                &public,
                "ip",
                &["addr", "add", &format!("{server}/32"), "dev", "lo"],
            );
        }
        let mut homes = Vec::new();
        for (i, &kind) in kinds.iter().enumerate() {
            let router = lab.add_namespace(&format!("r{i}"), &["net.ipv4.ip_forward=1"]);
            let host = lab.add_namespace(&format!("h{i}"), &[]);
            let port = format!("p{i}");
            lab.veth(&public, &port, &router, "wan");
            let addr = router_public(i);
            lab.exec(
                &public,
                "ip",
                &["route", "add", &format!("{addr}/32"), "dev", &port],
            );
            lab.exec(
                &router,
                "ip",
                &["addr", "add", &format!("{addr}/24"), "dev", "wan"],
            );
            lab.veth(&router, "lan", &host, "eth0");
            lab.exec(
                &router,
                "ip",
                &["addr", "add", &format!("{LAN_ROUTER}/24"), "dev", "lan"],
            );
            lab.exec(
                &host,
                "ip",
                &["addr", "add", &format!("{LAN_HOST}/24"), "dev", "eth0"],
            );
            lab.exec(
                &host,
                "ip",
                &["route", "add", "default", "via", &LAN_ROUTER.to_string()],
            );
            lab.nft(&router, &kind.ruleset(addr));
            homes.push(Home {
                kind,
                host,
                public: addr,
            });
        }
        Internet { lab, public, homes }
    }
}
