//! The trace: one record per thing that happens to a datagram, a hash of them all, and
//! optionally the records themselves and a pcap capture.
//!
//! ## What the trace hash covers
//!
//! SHA-256 over a description of every host and NAT as it is added (addresses, link and
//! NAT configuration), and over every record in order: virtual time (ns since the origin), datagram
//! number, where it happened ([`TracePoint`]), source and destination as seen there,
//! [`PacketKind`], length and [`Fate`]; and, once per datagram when it is sent, its
//! payload bytes. Two runs of one scenario with the same seed give the same hash; any
//! difference in timing, routing, NAT behaviour or bytes changes it.
//!
//! DTLS payloads and lengths (first byte 20–63) are left out: the crypto backend under
//! str0m draws key shares and randoms from the OS, which no seed reaches (see DESIGN.md's
//! field notes), so only when and where such datagrams travel is reproducible. For the same
//! reason the payload bytes (not the length) of the meeting's signaling queries (KRPC
//! `dm_signal`) are left out: they carry the DTLS certificate's fingerprint, sealed, so
//! their bytes differ from run to run. The `Instant` origin never enters the hash either:
//! only offsets from it.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use dhtmeet_core::PacketKind;
use sha2::{Digest, Sha256};

use crate::pcap::PcapWriter;
use crate::topology::{DeviceId, HostId, NatId};

/// Where a trace record was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TracePoint {
    /// Entering the link of a host or NAT, upwards (towards the realm) or downwards.
    Link {
        /// Whose link.
        node: DeviceId,
        /// `true` from the node into its realm, `false` from the realm to the node.
        up: bool,
    },
    /// At a NAT box.
    Nat(NatId),
    /// At a host (delivery, or a send that cannot leave it).
    Host(HostId),
    /// At the router of a realm (no route).
    Router,
}

impl std::fmt::Display for TracePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TracePoint::Link { node, up: true } => write!(f, "{node}↑"),
            TracePoint::Link { node, up: false } => write!(f, "{node}↓"),
            TracePoint::Nat(n) => write!(f, "{n}"),
            TracePoint::Host(h) => write!(f, "{h}"),
            TracePoint::Router => f.write_str("router"),
        }
    }
}

/// What happened to a datagram at a trace point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Fate {
    /// It entered a link and will come out the other end.
    Transmitted,
    /// A duplicate copy of it entered a link.
    Duplicated,
    /// The link lost it (random loss).
    Lost,
    /// The link lost it in a Gilbert–Elliott burst.
    BurstLost,
    /// The link's queue was full (tail drop).
    QueueOverflow,
    /// A partition separates the two nodes.
    Partitioned,
    /// A NAT rewrote it; the record shows the new addresses.
    Translated,
    /// A NAT hairpinned it back inside; the record shows the new addresses.
    Hairpinned,
    /// A NAT had no live binding for it.
    NoMapping,
    /// A NAT's filter refused it.
    Filtered,
    /// A NAT had no free port for a new mapping.
    PortsExhausted,
    /// A NAT that does not hairpin got it for its own external address.
    NoHairpinning,
    /// No host or NAT has its destination address.
    NoRoute,
    /// Its destination host is crashed.
    HostDown,
    /// Its destination host has no socket on that port.
    PortUnreachable,
    /// It was handed to the destination host's machine.
    Delivered,
    /// Its TTL ran out at this hop (a NAT, or the Internet's routers) before it was
    /// forwarded.
    TtlExpired,
    /// Its machine asked to send it from a pool socket the host does not have open.
    NoSocket,
}

impl Fate {
    /// Every fate, in declaration order.
    pub const ALL: [Fate; 18] = [
        Fate::Transmitted,
        Fate::Duplicated,
        Fate::Lost,
        Fate::BurstLost,
        Fate::QueueOverflow,
        Fate::Partitioned,
        Fate::Translated,
        Fate::Hairpinned,
        Fate::NoMapping,
        Fate::Filtered,
        Fate::PortsExhausted,
        Fate::NoHairpinning,
        Fate::NoRoute,
        Fate::HostDown,
        Fate::PortUnreachable,
        Fate::Delivered,
        Fate::TtlExpired,
        Fate::NoSocket,
    ];

    /// Whether the datagram ends here without being delivered.
    pub fn is_drop(self) -> bool {
        !matches!(
            self,
            Fate::Transmitted
                | Fate::Duplicated
                | Fate::Translated
                | Fate::Hairpinned
                | Fate::Delivered
        )
    }

    /// A short name (`delivered`, `filtered`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Transmitted => "transmitted",
            Fate::Duplicated => "duplicated",
            Fate::Lost => "lost",
            Fate::BurstLost => "burst-lost",
            Fate::QueueOverflow => "queue-overflow",
            Fate::Partitioned => "partitioned",
            Fate::Translated => "translated",
            Fate::Hairpinned => "hairpinned",
            Fate::NoMapping => "no-mapping",
            Fate::Filtered => "filtered",
            Fate::PortsExhausted => "ports-exhausted",
            Fate::NoHairpinning => "no-hairpinning",
            Fate::NoRoute => "no-route",
            Fate::HostDown => "host-down",
            Fate::PortUnreachable => "port-unreachable",
            Fate::Delivered => "delivered",
            Fate::TtlExpired => "ttl-expired",
            Fate::NoSocket => "no-socket",
        }
    }
}

/// One thing that happened to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Virtual time since the simulation's origin.
    pub at: Duration,
    /// The datagram's number (each send and each duplicate gets a new one).
    pub datagram: u64,
    /// Where.
    pub point: TracePoint,
    /// Source address as seen there.
    pub src: SocketAddr,
    /// Destination address as seen there.
    pub dst: SocketAddr,
    /// What it is, by first byte.
    pub kind: PacketKind,
    /// UDP payload length.
    pub len: usize,
    /// What happened.
    pub fate: Fate,
}

/// The SHA-256 of a trace.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceHash(pub [u8; 32]);

impl std::fmt::Display for TraceHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TraceHash({self})")
    }
}

fn kind_code(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Stun => 1,
        PacketKind::Dtls => 2,
        PacketKind::Krpc => 3,
        PacketKind::Unknown => 4,
        PacketKind::Punch => 5,
    }
}

fn put_addr(buf: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            buf.push(4);
            buf.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            buf.push(6);
            buf.extend_from_slice(&v6.ip().octets());
        }
    }
    buf.extend_from_slice(&a.port().to_be_bytes());
}

/// Records, hashes and captures.
pub(crate) struct Trace {
    hasher: Sha256,
    buf: Vec<u8>,
    records: Option<Vec<TraceRecord>>,
    pcap: Option<PcapWriter<Box<dyn Write>>>,
    pcap_error: Option<std::io::Error>,
    counts: [u64; Fate::ALL.len()],
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("records", &self.records.as_ref().map(Vec::len))
            .field("pcap", &self.pcap.is_some())
            .field("counts", &self.counts)
            .finish()
    }
}

impl Trace {
    pub(crate) fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"dhtmeet-sim/trace/v1\0");
        Trace {
            hasher,
            buf: Vec::with_capacity(128),
            records: None,
            pcap: None,
            pcap_error: None,
            counts: [0; Fate::ALL.len()],
        }
    }

    pub(crate) fn keep_records(&mut self) {
        self.records.get_or_insert_with(Vec::new);
    }

    pub(crate) fn records(&self) -> &[TraceRecord] {
        self.records.as_deref().unwrap_or(&[])
    }

    pub(crate) fn set_pcap(&mut self, pcap: PcapWriter<Box<dyn Write>>) {
        self.pcap = Some(pcap);
    }

    pub(crate) fn take_pcap(
        &mut self,
    ) -> Result<Option<PcapWriter<Box<dyn Write>>>, std::io::Error> {
        if let Some(e) = self.pcap_error.take() {
            return Err(e);
        }
        Ok(self.pcap.take())
    }

    pub(crate) fn count(&self, fate: Fate) -> u64 {
        self.counts[fate as usize]
    }

    pub(crate) fn hash(&self) -> TraceHash {
        TraceHash(self.hasher.clone().finalize().into())
    }

    /// Hashes a description of the network being built, so that two runs of different
    /// topologies never share a hash even when their datagrams happen to match.
    pub(crate) fn setup(&mut self, description: &str) {
        self.hasher.update([0xff]);
        self.hasher.update((description.len() as u64).to_be_bytes());
        self.hasher.update(description.as_bytes());
    }

    /// Adds `rec`; `payload` is hashed when `first` (the datagram's first record). `ttl`
    /// (what is left of the datagram's TTL there) goes to the pcap capture only.
    pub(crate) fn record(&mut self, rec: TraceRecord, payload: &[u8], ttl: u8, first: bool) {
        self.counts[rec.fate as usize] += 1;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(
            &u64::try_from(rec.at.as_nanos())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        b.extend_from_slice(&rec.datagram.to_be_bytes());
        let (tag, index) = match rec.point {
            TracePoint::Link {
                node: DeviceId::Host(h),
                up,
            } => (if up { 1 } else { 2 }, h.0),
            TracePoint::Link {
                node: DeviceId::Nat(n),
                up,
            } => (if up { 3 } else { 4 }, n.0),
            TracePoint::Nat(n) => (5, n.0),
            TracePoint::Host(h) => (6, h.0),
            TracePoint::Router => (7, 0),
        };
        b.push(tag);
        b.extend_from_slice(&index.to_be_bytes());
        put_addr(b, rec.src);
        put_addr(b, rec.dst);
        b.push(kind_code(rec.kind));
        b.push(rec.fate as u8);
        let dtls = rec.kind == PacketKind::Dtls;
        if !dtls {
            b.extend_from_slice(&(rec.len as u32).to_be_bytes());
        }
        self.hasher.update(&self.buf);
        if first && !dtls && !is_meeting_signal(rec.kind, payload) {
            self.hasher.update(payload);
        }
        if let Some(records) = &mut self.records {
            records.push(rec);
        }
        if matches!(rec.fate, Fate::Transmitted | Fate::Duplicated) && self.pcap_error.is_none() {
            if let Some(pcap) = &mut self.pcap {
                if let Err(e) = pcap.write(rec.at, rec.src, rec.dst, ttl, payload) {
                    self.pcap_error = Some(e);
                }
            }
        }
    }
}

/// Whether `payload` is a meeting signaling query (`"q": "dm_signal"`), whose sealed
/// contents include the DTLS fingerprint that no seed reaches.
fn is_meeting_signal(kind: PacketKind, payload: &[u8]) -> bool {
    const KEY: &[u8] = b"1:q9:dm_signal";
    debug_assert_eq!(&KEY[5..], dhtmeet_core::meeting::signal::METHOD);
    kind == PacketKind::Krpc && payload.windows(KEY.len()).any(|w| w == KEY)
}
