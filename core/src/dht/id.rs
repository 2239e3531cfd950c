//! 160-bit identifiers of the Mainline DHT (BEP 5): node ids and info-hashes, and the
//! XOR metric between them.

use std::cmp::Ordering;

/// A 160-bit DHT node id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

/// A 160-bit info-hash: the key peers announce under (a meeting's topic).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_hex(f, &self.0)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_hex(f, &self.0)
    }
}

impl std::fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_hex(f, &self.0)
    }
}

impl std::fmt::Display for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_hex(f, &self.0)
    }
}

fn write_hex(f: &mut std::fmt::Formatter<'_>, bytes: &[u8]) -> std::fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A 40-character hex string is not a valid id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 40 hexadecimal characters")]
pub struct ParseIdError;

fn parse_hex20(s: &str) -> Result<[u8; 20], ParseIdError> {
    let s = s.trim();
    if s.len() != 40 || !s.is_ascii() {
        return Err(ParseIdError);
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ParseIdError)?;
    }
    Ok(out)
}

impl std::str::FromStr for NodeId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_hex20(s).map(NodeId)
    }
}

impl std::str::FromStr for InfoHash {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_hex20(s).map(InfoHash)
    }
}

impl From<InfoHash> for NodeId {
    fn from(h: InfoHash) -> NodeId {
        NodeId(h.0)
    }
}

/// XOR distance between two ids; compares as a 160-bit big-endian number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    /// The XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, out) in d.iter_mut().enumerate() {
            *out = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// Which of `a` and `b` is closer to `self`.
    pub fn cmp_distance(&self, a: &NodeId, b: &NodeId) -> Ordering {
        self.distance(a).cmp(&self.distance(b))
    }

    /// Length of the common prefix of `self` and `other`, in bits (160 if equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }
}

impl Distance {
    /// Leading zero bits (160 for distance zero).
    pub fn leading_zeros(&self) -> usize {
        for (i, b) in self.0.iter().enumerate() {
            if *b != 0 {
                return i * 8 + b.leading_zeros() as usize;
            }
        }
        160
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_xor_compared_big_endian() {
        let zero = NodeId([0; 20]);
        let mut one = [0u8; 20];
        one[19] = 1;
        let mut high = [0u8; 20];
        high[0] = 0x80;
        assert!(zero.distance(&NodeId(one)) < zero.distance(&NodeId(high)));
        assert_eq!(zero.common_prefix_len(&NodeId(high)), 0);
        assert_eq!(zero.common_prefix_len(&NodeId(one)), 159);
        assert_eq!(zero.common_prefix_len(&zero), 160);
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let id: InfoHash = "0123456789abcdef0123456789abcdef01234567".parse().unwrap();
        assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef01234567");
        assert!("0123".parse::<InfoHash>().is_err());
        assert!(
            "zz23456789abcdef0123456789abcdef01234567"
                .parse::<InfoHash>()
                .is_err()
        );
        assert!(
            "é123456789abcdef0123456789abcdef0123456"
                .parse::<InfoHash>()
                .is_err()
        );
    }
}
