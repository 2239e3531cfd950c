//! BEP 42 (DHT security extension): node ids bound to the node's public IP.
//!
//! The first 21 bits of the id are the top bits of `crc32c((ip & mask) | (r << 29))`, where
//! `r` is the low 3 bits of the id's last byte. Loopback, private and link-local addresses
//! are exempt (any id is valid for them), as in libtorrent.

use std::net::IpAddr;

use super::id::NodeId;

const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Called once per id check, on
/// a handful of bytes: a bitwise loop is fast enough and needs no table or crate.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn prefix(ip: IpAddr, r: u8) -> u32 {
    let r = r & 0x07;
    match ip {
        IpAddr::V4(ip) => {
            let mut b = ip.octets();
            for (x, m) in b.iter_mut().zip(V4_MASK) {
                *x &= m;
            }
            b[0] |= r << 5;
            crc32c(&b)
        }
        IpAddr::V6(ip) => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&ip.octets()[..8]);
            for (x, m) in b.iter_mut().zip(V6_MASK) {
                *x &= m;
            }
            b[0] |= r << 5;
            crc32c(&b)
        }
    }
}

/// Whether BEP 42 exempts `ip` (loopback, private, link-local, unique-local).
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        IpAddr::V6(ip) => {
            ip.is_loopback()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A BEP 42 id for `ip` with the other 139 bits taken from `random` (whose last byte is
/// the id's `r`).
pub fn secure_id(ip: IpAddr, random: [u8; 20]) -> NodeId {
    let mut id = random;
    let crc = prefix(ip, id[19]).to_be_bytes();
    id[0] = crc[0];
    id[1] = crc[1];
    id[2] = (crc[2] & 0xf8) | (id[2] & 0x07);
    NodeId(id)
}

/// Whether `id` is a valid BEP 42 id for `ip` (always true for exempt addresses).
pub fn is_valid(id: &NodeId, ip: IpAddr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = prefix(ip, id.0[19]).to_be_bytes();
    id.0[0] == crc[0] && id.0[1] == crc[1] && (id.0[2] & 0xf8) == (crc[2] & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BEP 42's table of examples: IP, rand, and the first 21 bits of the id.
    #[test]
    fn bep42_examples() {
        for (ip, r, want) in [
            ("124.31.75.21", 1u8, [0x5f, 0xbf, 0xb8]),
            ("21.75.31.124", 86, [0x5a, 0x3c, 0xe8]),
            ("65.23.51.170", 22, [0xa5, 0xd4, 0x30]),
            ("84.124.73.14", 65, [0x1b, 0x03, 0x20]),
            ("43.213.53.83", 90, [0xe5, 0x6f, 0x68]),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut random = [0x55u8; 20];
            random[19] = r;
            let id = secure_id(ip, random);
            assert_eq!([id.0[0], id.0[1], id.0[2] & 0xf8], want, "{ip}");
            assert_eq!(id.0[19], r);
            assert!(is_valid(&id, ip));
            let mut forged = id;
            forged.0[1] ^= 1;
            assert!(!is_valid(&forged, ip), "{ip}");
        }
    }

    #[test]
    fn local_addresses_are_exempt() {
        let id = NodeId([7; 20]);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_valid(&id, ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_valid(&id, "8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
