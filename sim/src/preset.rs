//! NAT presets with the usual names, each an RFC 4787 configuration (see `docs/sim.md`
//! for the table and the devices they stand for).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use dhtmeet_core::SansIo;

use crate::engine::Sim;
use crate::link::LinkConfig;
use crate::nat::{
    BackgroundTraffic, FilteringBehavior, MappingBehavior, NatConfig, PortAssignment,
    RefusedInbound,
};
use crate::topology::{NatSpec, Realm, TopologyError};

/// The external address of the home router inside a [`NatPreset::Cgnat`]: the first
/// host of RFC 6598's shared address space `100.64.0.0/10`.
pub const CGNAT_HOME_EXTERNAL: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);

/// A named kind of NAT (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatPreset {
    /// No NAT: the host has a public address.
    Open,
    /// RFC 3489 full cone: EIM, EIF.
    FullCone,
    /// RFC 3489 restricted cone: EIM, ADF.
    RestrictedCone,
    /// RFC 3489 port-restricted cone: EIM, APDF.
    PortRestrictedCone,
    /// RFC 3489 symmetric: APDM, APDF, random ports (Linux `masquerade random` /
    /// `fully-random`). Also called `symmetric-random` ([`NatPreset::ALIASES`]).
    Symmetric,
    /// A symmetric NAT with a sequential allocator: APDM, APDF, each new mapping the
    /// next port (step 1), and light background traffic (other hosts behind it make one
    /// new mapping per second on average), so its counter moves between two of our
    /// observations.
    SymmetricSequential,
    /// A home router like Linux masquerade behind a stateful firewall: EIM with port
    /// preservation, APDF (only replies get in), no hairpinning, 120 s timeout.
    Home,
    /// A Linux router with `masquerade` and no firewall: as [`NatPreset::Home`], but a
    /// refused inbound datagram claims the port for its sender for 30 s (conntrack
    /// records a flow to the router itself), so a later flow to that sender leaves from
    /// another, random port.
    Masquerade,
    /// A home router (as [`NatPreset::Home`]) behind a carrier-grade NAT (RFC 6888):
    /// NAT behind NAT.
    Cgnat,
}

/// A preset name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown NAT preset {name:?}; the presets are: {} (and symmetric-random, another name for symmetric)",
    NatPreset::NAMES.join(", ")
)]
pub struct UnknownPreset {
    /// The name given.
    pub name: String,
}

impl NatPreset {
    /// Every preset, from most to least permissive (roughly).
    pub const ALL: [NatPreset; 9] = [
        NatPreset::Open,
        NatPreset::FullCone,
        NatPreset::RestrictedCone,
        NatPreset::PortRestrictedCone,
        NatPreset::Home,
        NatPreset::Masquerade,
        NatPreset::Cgnat,
        NatPreset::SymmetricSequential,
        NatPreset::Symmetric,
    ];

    /// The names, as the CLI takes them, in the order of [`NatPreset::ALL`].
    pub const NAMES: [&'static str; 9] = [
        "open",
        "full-cone",
        "restricted-cone",
        "port-restricted-cone",
        "home",
        "masquerade",
        "cgnat",
        "symmetric-sequential",
        "symmetric",
    ];

    /// Other names the CLI takes for a preset: `symmetric-random` is `symmetric`, whose
    /// ports are already random (it is not a preset of its own, so tables list it once).
    pub const ALIASES: [(&'static str, NatPreset); 1] =
        [("symmetric-random", NatPreset::Symmetric)];

    /// The background traffic of [`NatPreset::SymmetricSequential`]: one new mapping
    /// per second on average.
    pub const SEQUENTIAL_BACKGROUND: BackgroundTraffic = BackgroundTraffic {
        mean_interval: Duration::from_secs(1),
    };

    /// Whether the preset's mapping is address-and-port-dependent (a new external port
    /// for every destination): the `symmetric` presets.
    pub fn is_symmetric(self) -> bool {
        matches!(self, NatPreset::Symmetric | NatPreset::SymmetricSequential)
    }

    /// The CLI name (`port-restricted-cone`, …).
    pub fn name(self) -> &'static str {
        match self {
            NatPreset::Open => "open",
            NatPreset::FullCone => "full-cone",
            NatPreset::RestrictedCone => "restricted-cone",
            NatPreset::PortRestrictedCone => "port-restricted-cone",
            NatPreset::Symmetric => "symmetric",
            NatPreset::SymmetricSequential => "symmetric-sequential",
            NatPreset::Home => "home",
            NatPreset::Masquerade => "masquerade",
            NatPreset::Cgnat => "cgnat",
        }
    }

    /// The NAT layers a host behind this preset sits behind, outermost first (empty for
    /// [`NatPreset::Open`]).
    pub fn layers(self) -> Vec<NatConfig> {
        let cone = |filtering| NatConfig {
            mapping: MappingBehavior::EndpointIndependent,
            filtering,
            port_assignment: PortAssignment::Preserving,
            mapping_timeout: Duration::from_secs(300),
            hairpinning: true,
            ..NatConfig::default()
        };
        let home = NatConfig {
            mapping: MappingBehavior::EndpointIndependent,
            filtering: FilteringBehavior::AddressAndPortDependent,
            port_assignment: PortAssignment::Preserving,
            mapping_timeout: Duration::from_secs(120),
            hairpinning: false,
            ..NatConfig::default()
        };
        let symmetric = NatConfig {
            mapping: MappingBehavior::AddressAndPortDependent,
            filtering: FilteringBehavior::AddressAndPortDependent,
            port_assignment: PortAssignment::Random,
            mapping_timeout: Duration::from_secs(300),
            hairpinning: false,
            ..NatConfig::default()
        };
        match self {
            NatPreset::Open => vec![],
            NatPreset::FullCone => vec![cone(FilteringBehavior::EndpointIndependent)],
            NatPreset::RestrictedCone => vec![cone(FilteringBehavior::AddressDependent)],
            NatPreset::PortRestrictedCone => vec![cone(FilteringBehavior::AddressAndPortDependent)],
            NatPreset::Symmetric => vec![symmetric.clone()],
            NatPreset::SymmetricSequential => vec![NatConfig {
                port_assignment: PortAssignment::SEQUENTIAL,
                background: Some(NatPreset::SEQUENTIAL_BACKGROUND),
                ..symmetric
            }],
            NatPreset::Home => vec![home],
            NatPreset::Masquerade => vec![NatConfig {
                refused_inbound: RefusedInbound::ClaimsPort {
                    timeout: Duration::from_secs(30),
                },
                ..home.clone()
            }],
            NatPreset::Cgnat => vec![
                NatConfig {
                    mapping: MappingBehavior::EndpointIndependent,
                    filtering: FilteringBehavior::AddressAndPortDependent,
                    port_assignment: PortAssignment::Random,
                    mapping_timeout: Duration::from_secs(300),
                    hairpinning: true,
                    ..NatConfig::default()
                },
                home,
            ],
        }
    }

    /// One line saying what the preset is, in RFC 4787 terms.
    pub fn describe(self) -> String {
        let layers = self.layers();
        if layers.is_empty() {
            return "no NAT (public address)".into();
        }
        let one = |c: &NatConfig| {
            let refused = match c.refused_inbound {
                RefusedInbound::Forgotten => String::new(),
                RefusedInbound::ClaimsPort { timeout } => format!(
                    ", a refused datagram claims the port for {} s",
                    timeout.as_secs()
                ),
            };
            let background = match c.background {
                None => String::new(),
                Some(b) => format!(", other hosts make {} new mappings per second", b.rate()),
            };
            format!(
                "mapping {}, filtering {}, ports {}, timeout {} s, hairpinning {}{refused}{background}",
                c.mapping.as_str(),
                c.filtering.as_str(),
                c.port_assignment,
                c.mapping_timeout.as_secs(),
                if c.hairpinning { "yes" } else { "no" }
            )
        };
        match layers.as_slice() {
            [only] => one(only),
            [outer, inner] => format!(
                "carrier NAT: {}; home router behind it: {}",
                one(outer),
                one(inner)
            ),
            _ => layers
                .iter()
                .map(one)
                .collect::<Vec<_>>()
                .join("; behind it: "),
        }
    }

    /// Builds the preset's NATs in `parent`, the outermost with external address
    /// `external` and link `link` (inner ones get ideal links). Returns the realm a host
    /// behind the preset goes in (`parent` itself for [`NatPreset::Open`]).
    pub fn install<M: SansIo>(
        self,
        sim: &mut Sim<M>,
        name: &str,
        parent: Realm,
        external: IpAddr,
        link: LinkConfig,
    ) -> Result<Realm, TopologyError> {
        let mut realm = parent;
        let mut next_external = external;
        let mut next_link = link;
        for (i, config) in self.layers().into_iter().enumerate() {
            let nat_name = match i {
                0 => format!("{name}-{}", self.name()),
                _ => format!("{name}-{}-inner{i}", self.name()),
            };
            let spec = NatSpec::new(nat_name, realm, next_external, config).with_link(next_link);
            realm = sim.add_nat(spec)?.inside();
            next_external = IpAddr::V4(CGNAT_HOME_EXTERNAL);
            next_link = LinkConfig::default();
        }
        Ok(realm)
    }
}

impl fmt::Display for NatPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NatPreset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NatPreset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .or_else(|| {
                NatPreset::ALIASES
                    .into_iter()
                    .find(|(alias, _)| *alias == s)
                    .map(|(_, p)| p)
            })
            .ok_or_else(|| UnknownPreset { name: s.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_presets() {
        for (p, name) in NatPreset::ALL.iter().zip(NatPreset::NAMES) {
            assert_eq!(p.name(), name);
            assert_eq!(name.parse::<NatPreset>(), Ok(*p));
        }
        assert_eq!("symmetric-random".parse(), Ok(NatPreset::Symmetric));
        let e = "fullcone".parse::<NatPreset>().expect_err("not a preset");
        assert!(e.to_string().contains("full-cone, restricted-cone"), "{e}");
    }

    #[test]
    fn every_preset_config_is_valid() {
        for p in NatPreset::ALL {
            for c in p.layers() {
                assert_eq!(c.validate(), Ok(()), "{p}");
            }
        }
    }
}
