//! Who is where: hosts, NAT boxes and the address realms they sit in.
//!
//! The network is a tree of *realms*. The [`Realm::Internet`] is the root; every NAT box
//! has an external address in its parent realm and opens a realm of its own
//! ([`Realm::Inside`]) for the hosts (or further NATs) behind it. A datagram whose
//! destination is not in the sender's realm goes up through that realm's NAT.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::link::LinkConfig;
use crate::nat::NatConfig;

/// A host of the simulation (`h0`, `h1`, … in traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub(crate) u32);

/// A NAT box of the simulation (`n0`, `n1`, … in traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NatId(pub(crate) u32);

impl HostId {
    /// The host's index, in order of creation from 0.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl NatId {
    /// The NAT's index, in order of creation from 0.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The realm behind this NAT, where its internal hosts live.
    pub fn inside(self) -> Realm {
        Realm::Inside(self)
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl fmt::Display for NatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A device of the simulated network, attached to a realm by a link: a host, or a NAT
/// box (by its external side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceId {
    /// A host.
    Host(HostId),
    /// A NAT box.
    Nat(NatId),
}

impl From<HostId> for DeviceId {
    fn from(h: HostId) -> Self {
        DeviceId::Host(h)
    }
}

impl From<NatId> for DeviceId {
    fn from(n: NatId) -> Self {
        DeviceId::Nat(n)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceId::Host(h) => h.fmt(f),
            DeviceId::Nat(n) => n.fmt(f),
        }
    }
}

/// An address realm: the public Internet, or the private side of one NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Realm {
    /// The public Internet.
    Internet,
    /// Behind this NAT.
    Inside(NatId),
}

impl Realm {
    pub(crate) fn key(self) -> u32 {
        match self {
            Realm::Internet => 0,
            Realm::Inside(n) => n.0 + 1,
        }
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Realm::Internet => f.write_str("internet"),
            Realm::Inside(n) => write!(f, "inside {n}"),
        }
    }
}

/// Where a host sits and how it is attached.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// A name for summaries (`client`, `stun-1`, …).
    pub name: String,
    /// The realm the host sits in.
    pub realm: Realm,
    /// The host's sockets. The machine's transmits leave from the first socket of the
    /// destination's family (a node has one UDP socket per family, as the design
    /// prescribes); further sockets (say, a STUN server's second port) receive too, and
    /// [`Sim::inject`](crate::Sim::inject) can send from any port. The machine may open
    /// more sockets on the first address, its pool ([`dhtmeet_core::SocketCommand`];
    /// [`Sim::pool_sockets`](crate::Sim::pool_sockets)).
    pub addrs: Vec<SocketAddr>,
    /// The host's access link (both directions).
    pub link: LinkConfig,
}

impl HostSpec {
    /// A host called `name` in `realm` with one socket bound to `addr` and an ideal link.
    pub fn new(name: impl Into<String>, realm: Realm, addr: SocketAddr) -> Self {
        HostSpec {
            name: name.into(),
            realm,
            addrs: vec![addr],
            link: LinkConfig::default(),
        }
    }

    /// Adds a socket (of the other address family, or another port).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Sets the access link.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
}

/// Where a NAT box sits and how it behaves.
#[derive(Clone, Debug)]
pub struct NatSpec {
    /// A name for summaries (`home`, `cgn`, …).
    pub name: String,
    /// The realm its external side sits in.
    pub parent: Realm,
    /// Its external (public, or for NAT behind NAT, the outer NAT's private) IPv4
    /// address. NATs translate IPv4 only; IPv6 stops at a NAT (no NAT64, no routed
    /// IPv6 in this model).
    pub external: IpAddr,
    /// Its RFC 4787 behaviour.
    pub config: NatConfig,
    /// The link between its external side and the parent realm.
    pub link: LinkConfig,
}

impl NatSpec {
    /// A NAT called `name` in `parent` with external address `external`, behaving as
    /// `config`, with an ideal link.
    pub fn new(
        name: impl Into<String>,
        parent: Realm,
        external: IpAddr,
        config: NatConfig,
    ) -> Self {
        NatSpec {
            name: name.into(),
            parent,
            external,
            config,
            link: LinkConfig::default(),
        }
    }

    /// Sets the external link.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
}

/// A topology the simulator refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// Another host or NAT already has this IP address in this realm.
    #[error("address {addr} is already in use in realm {realm}")]
    AddressInUse {
        /// The realm.
        realm: Realm,
        /// The address.
        addr: IpAddr,
    },
    /// The realm names a NAT that does not exist.
    #[error("realm {0} does not exist")]
    UnknownRealm(Realm),
    /// The host was given no socket address.
    #[error("a host needs at least one socket address")]
    NoAddress,
    /// The host was given the same socket twice.
    #[error("socket address {0} given twice")]
    DuplicateSocket(SocketAddr),
    /// The host's socket has an unspecified IP or port 0.
    #[error("socket address {0} is unspecified (an IP and a port are required)")]
    Unspecified(SocketAddr),
    /// A NAT's external address must be IPv4 (and not unspecified).
    #[error("NAT external address {0} must be a specified IPv4 address")]
    NatExternalNotIpv4(IpAddr),
    /// The NAT configuration is invalid.
    #[error("invalid NAT configuration: {0}")]
    Nat(#[from] crate::nat::NatConfigError),
    /// The link configuration is invalid.
    #[error("invalid link configuration: {0}")]
    Link(#[from] crate::link::LinkConfigError),
    /// The host or NAT does not exist.
    #[error("{0} does not exist")]
    UnknownDevice(DeviceId),
}
