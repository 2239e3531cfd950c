//! A pcap writer for Wireshark: classic libpcap format, `LINKTYPE_RAW` (101), each
//! datagram wrapped in an IPv4 or IPv6 header and a UDP header with correct checksums,
//! so Wireshark decodes STUN (port 3478, or by heuristics), DTLS and the rest.
//!
//! Timestamps are the virtual time since the simulation's origin, written as if the
//! origin were the Unix epoch (Wireshark shows 1970-01-01; relative times are exact to
//! the microsecond).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `LINKTYPE_RAW`: each packet begins with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65535;
const UDP: u8 = 17;

/// Writes datagrams as a pcap capture.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    packets: u64,
    skipped: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap file header to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, µs timestamps
        h.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            packets: 0,
            skipped: 0,
        })
    }

    /// Packets written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Datagrams not written (mixed address families, or too big for one IP packet).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Writes one UDP datagram from `src` to `dst` seen at `at` with TTL (hop limit)
    /// `ttl`.
    pub fn write(
        &mut self,
        at: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        ttl: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let Some(packet) = ip_udp_packet(src, dst, ttl, payload) else {
            self.skipped += 1;
            return Ok(());
        };
        let len = packet.len() as u32;
        let mut rec = Vec::with_capacity(16 + packet.len());
        let secs = u32::try_from(at.as_secs()).unwrap_or(u32::MAX);
        rec.extend_from_slice(&secs.to_le_bytes());
        rec.extend_from_slice(&at.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes()); // captured
        rec.extend_from_slice(&len.to_le_bytes()); // on the wire
        rec.extend_from_slice(&packet);
        self.out.write_all(&rec)?;
        self.packets += 1;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The 16-bit ones'-complement sum of RFC 1071, folded, not yet complemented.
fn ones_complement_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

fn checksum(sum: u32) -> u16 {
    !(sum as u16)
}

/// An IP packet with TTL (hop limit) `ttl` carrying `payload` in UDP; `None` if the
/// families differ or it is too big.
pub fn ip_udp_packet(src: SocketAddr, dst: SocketAddr, ttl: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + udp.len()).ok()?;
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, UDP]);
            pseudo.extend_from_slice(&udp_len.to_be_bytes());
            set_udp_checksum(&mut udp, &pseudo);
            let mut ip = Vec::with_capacity(usize::from(total));
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, ttl, UDP, 0, 0]); // id, DF, TTL
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = checksum(ones_complement_sum(0, &ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ip.extend_from_slice(&udp);
            Some(ip)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&u32::from(udp_len).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, UDP]);
            set_udp_checksum(&mut udp, &pseudo);
            let mut ip = Vec::with_capacity(40 + udp.len());
            ip.extend_from_slice(&[0x60, 0, 0, 0]);
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[UDP, ttl]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend_from_slice(&udp);
            Some(ip)
        }
        _ => None,
    }
}

fn set_udp_checksum(udp: &mut [u8], pseudo: &[u8]) {
    let sum = ones_complement_sum(ones_complement_sum(0, pseudo), udp);
    let c = match checksum(sum) {
        0 => 0xffff, // RFC 768: a computed zero is sent as all ones
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_and_udp_checksums_verify() {
        let p = ip_udp_packet(
            "192.0.2.1:3478".parse().expect("literal"),
            "203.0.113.9:4000".parse().expect("literal"),
            5,
            b"hello",
        )
        .expect("same family");
        assert_eq!(p.len(), 20 + 8 + 5);
        assert_eq!(p[8], 5, "the TTL");
        // A correct header sums to 0xffff.
        assert_eq!(ones_complement_sum(0, &p[..20]), 0xffff);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, UDP, 0, 13]);
        assert_eq!(
            ones_complement_sum(ones_complement_sum(0, &pseudo), &p[20..]),
            0xffff
        );
    }

    #[test]
    fn ipv6_udp_checksum_verifies_and_mixed_families_are_skipped() {
        let src: SocketAddr = "[2001:db8::1]:3478".parse().expect("literal");
        let dst: SocketAddr = "[2001:db8::2]:4000".parse().expect("literal");
        let p = ip_udp_packet(src, dst, 64, b"abc").expect("same family");
        assert_eq!(p[0] >> 4, 6);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[8..40]);
        pseudo.extend_from_slice(&[0, 0, 0, 11, 0, 0, 0, UDP]);
        assert_eq!(
            ones_complement_sum(ones_complement_sum(0, &pseudo), &p[40..]),
            0xffff
        );
        let v4: SocketAddr = "192.0.2.1:1".parse().expect("literal");
        assert!(ip_udp_packet(v4, dst, 64, b"x").is_none());
    }

    #[test]
    fn file_header_says_linktype_raw() {
        let w = PcapWriter::new(Vec::new()).expect("in memory");
        let bytes = w.finish().expect("in memory");
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[20..24], &LINKTYPE_RAW.to_le_bytes());
    }
}
