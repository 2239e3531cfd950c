//! Who a rate limit or a storage quota is charged to: the source's IP address, or for
//! IPv6 its /64 prefix, never the port (an attacker picks ports, and an IPv6 host usually
//! gets a whole /64). An IPv4 address seen through a dual-stack socket
//! (`::ffff:a.b.c.d`) is the IPv4 address it maps.

use std::net::IpAddr;

/// An IPv4 address or an IPv6 /64 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6Prefix(prefix)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_interface_ids_do_not_make_new_sources() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::from(a), Source::from(b), "same /64");
        assert_ne!(Source::from(a), Source::from(c), "another /64");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let other_mapped: IpAddr = "::ffff:192.0.2.8".parse().unwrap();
        assert_eq!(Source::from(v4), Source::from(mapped), "IPv4-mapped is IPv4");
        assert_ne!(Source::from(mapped), Source::from(other_mapped));
    }
}
