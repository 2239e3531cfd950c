//! The kinds of home router, as nftables rulesets in a router namespace, and the
//! simulator preset each one is expected to behave like (see `docs/real-nat.md`).

use std::net::Ipv4Addr;

use dhtmeet_sim::NatPreset;

/// The address of the member in every home network (the same in each, as at home and
/// as in the simulator's `LAN_HOST`).
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
/// The router's own address in every home network.
pub const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

/// A kind of NAT router between a home network (interface `lan`) and the public segment
/// (interface `wan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouterKind {
    /// `masquerade` and nothing else: conntrack keeps the source port when it can, so
    /// mappings look endpoint-independent; no firewall.
    Masquerade,
    /// `masquerade random`: a new port for every new flow, from a keyed hash of the
    /// flow's addresses and ports plus a random offset (the kernel's
    /// `NF_NAT_RANGE_PROTO_RANDOM`): endpoint-dependent mapping with ports no observer
    /// can predict, a symmetric NAT; no firewall.
    MasqueradeRandom,
    /// `masquerade random,fully-random`: a new port for every new flow, drawn at random
    /// (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`): a symmetric NAT; no firewall.
    MasqueradeFullyRandom,
    /// 1:1 NAT: the router's public address is the member's, both ways (`snat` out,
    /// `dnat` of everything in): a full cone.
    OneToOne,
    /// `masquerade` behind a stateful firewall whose input and forward policies drop
    /// anything that is not a reply (`ct state established,related`): a home router.
    Firewalled,
}

impl RouterKind {
    /// Every kind, in the order of the docs' table.
    pub const ALL: [RouterKind; 5] = [
        RouterKind::Masquerade,
        RouterKind::MasqueradeRandom,
        RouterKind::MasqueradeFullyRandom,
        RouterKind::OneToOne,
        RouterKind::Firewalled,
    ];

    /// A short name for namespaces, logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Masquerade => "masq",
            RouterKind::MasqueradeRandom => "masq-random",
            RouterKind::MasqueradeFullyRandom => "masq-fully-random",
            RouterKind::OneToOne => "one-to-one",
            RouterKind::Firewalled => "firewalled",
        }
    }

    /// The simulator preset whose model this router is expected to match.
    pub fn preset(self) -> NatPreset {
        match self {
            RouterKind::Masquerade => NatPreset::Masquerade,
            RouterKind::MasqueradeRandom | RouterKind::MasqueradeFullyRandom => {
                NatPreset::Symmetric
            }
            RouterKind::OneToOne => NatPreset::FullCone,
            RouterKind::Firewalled => NatPreset::Home,
        }
    }

    /// The nftables ruleset of a router whose public address is `public`.
    pub fn ruleset(self, public: Ipv4Addr) -> String {
        let masquerade = |how: &str| {
            format!(
                "table ip nat {{\n\
                 \x20 chain postrouting {{\n\
                 \x20   type nat hook postrouting priority srcnat; policy accept;\n\
                 \x20   oifname \"wan\" masquerade{how}\n\
                 \x20 }}\n\
                 }}\n"
            )
        };
        match self {
            RouterKind::Masquerade => masquerade(""),
            RouterKind::MasqueradeRandom => masquerade(" random"),
            RouterKind::MasqueradeFullyRandom => masquerade(" random,fully-random"),
            RouterKind::OneToOne => format!(
                "table ip nat {{\n\
                 \x20 chain prerouting {{\n\
                 \x20   type nat hook prerouting priority dstnat; policy accept;\n\
                 \x20   iifname \"wan\" ip daddr {public} dnat to {LAN_HOST}\n\
                 \x20 }}\n\
                 \x20 chain postrouting {{\n\
                 \x20   type nat hook postrouting priority srcnat; policy accept;\n\
                 \x20   oifname \"wan\" ip saddr {LAN_HOST} snat to {public}\n\
                 \x20 }}\n\
                 }}\n"
            ),
            RouterKind::Firewalled => masquerade("") + FIREWALL,
        }
    }
}

/// A home router's stateful firewall: from the public side only replies get in, to the
/// router or through it. A dropped packet's conntrack entry is never confirmed, so it
/// leaves no trace that could claim a port (see `docs/real-nat.md`).
const FIREWALL: &str = "table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname { \"lo\", \"lan\" } accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname \"lan\" oifname \"wan\" accept
  }
}
";
