//! The probe codec: what a port-prediction attempt sends (docs/PROTOCOL.md, "Port
//! prediction probes").
//!
//! ```text
//! 0      1      2          10     14               30
//! 0x0F | kind | attempt  | seq  | mac (16 bytes) |
//! ```
//!
//! `kind` is 1 (probe) or 2 (ack); `attempt` is the prober's attempt id (an ack echoes
//! the probe's); `seq` is the probe's sequence number, big-endian (an ack echoes it);
//! `mac = HMAC-SHA256(K, bytes[0..14])[0..16]` where `K` is the sender→receiver key of
//! [`ProbeKeys`]. A datagram is exactly [`PROBE_LEN`] bytes.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::meeting::signal::MemberId;

/// The first byte of every probe and ack. RFC 7983 (and RFC 9443) leave 4–15 unassigned:
/// nothing else on the socket (STUN 0–3, DTLS 20–63, TURN 64–79, KRPC `d`, RTP 128–191,
/// the simulator's yardstick `P`) uses it.
pub const PUNCH_BYTE: u8 = 0x0F;

/// The length of every probe and ack.
pub const PROBE_LEN: usize = 30;

/// The length of the truncated MAC.
pub const MAC_LEN: usize = 16;

/// The label of the key derivation.
const KEY_LABEL: &[u8] = b"dhtmeet/punch/v1\0";

const KIND_PROBE: u8 = 1;
const KIND_ACK: u8 = 2;
const MACED_LEN: usize = PROBE_LEN - MAC_LEN;

/// An attempt's random id (8 bytes from its seed): what makes its acks fresh.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId(pub [u8; 8]);

impl std::fmt::Debug for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Probe or ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// "Can you hear me on this path?" Sent by the prober with its own attempt id.
    Probe,
    /// "I heard your probe `seq` of attempt `attempt`": echoes both.
    Ack,
}

/// One decoded, authenticated probe or ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeMessage {
    /// Probe or ack.
    pub kind: ProbeKind,
    /// The attempt id of the probe (an ack echoes the probe's).
    pub attempt: AttemptId,
    /// The probe's sequence number (an ack echoes the probe's).
    pub seq: u32,
}

/// Why a datagram is not a valid probe or ack for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Wrong first byte, length or kind.
    #[error("malformed probe")]
    Malformed,
    /// The MAC does not verify: not from the peer of this pair, altered, or reflected.
    #[error("probe not authenticated")]
    BadMac,
}

/// The two directional keys of one pair of members: only holders of the meeting key
/// can compute them, a probe made for one pair is refused by every other pair, and a
/// probe reflected back to its sender fails (the directions have different keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeKeys {
    send: [u8; 32],
    receive: [u8; 32],
}

impl std::fmt::Debug for ProbeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeKeys(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m =
        <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl ProbeKeys {
    /// The keys between `us` and `peer` in the meeting whose signaling key is
    /// `meeting_key` ([`crate::meeting::keys::MeetingKeys::signaling`]):
    /// `K(a→b) = HMAC-SHA256(meeting_key, "dhtmeet/punch/v1" 0x00 ‖ a ‖ b)`.
    pub fn derive(meeting_key: &[u8; 32], us: MemberId, peer: MemberId) -> ProbeKeys {
        ProbeKeys {
            send: hmac(meeting_key, &[KEY_LABEL, &us.0, &peer.0]),
            receive: hmac(meeting_key, &[KEY_LABEL, &peer.0, &us.0]),
        }
    }

    /// The keys between the public IPs `us` and `peer`, for an attempt made before any
    /// signaling, when neither side knows the other's member id
    /// ([`super::plan::decide_blind`]):
    /// `K(a→b) = HMAC-SHA256(meeting_key, "dhtmeet/punch/v1" 0x00 ‖ "ip" ‖ a ‖ b)`, each
    /// IP as 16 bytes (IPv4 mapped into IPv6).
    pub fn derive_for_addresses(meeting_key: &[u8; 32], us: IpAddr, peer: IpAddr) -> ProbeKeys {
        let ip16 = |ip: IpAddr| match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let (a, b) = (ip16(us), ip16(peer));
        ProbeKeys {
            send: hmac(meeting_key, &[KEY_LABEL, b"ip", &a, &b]),
            receive: hmac(meeting_key, &[KEY_LABEL, b"ip", &b, &a]),
        }
    }

    /// Encodes and authenticates a message from us to the peer.
    pub fn seal(&self, message: &ProbeMessage) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[0] = PUNCH_BYTE;
        out[1] = match message.kind {
            ProbeKind::Probe => KIND_PROBE,
            ProbeKind::Ack => KIND_ACK,
        };
        out[2..10].copy_from_slice(&message.attempt.0);
        out[10..14].copy_from_slice(&message.seq.to_be_bytes());
        let mac = hmac(&self.send, &[&out[..MACED_LEN]]);
        out[MACED_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        out
    }

    /// Decodes a datagram from the peer and checks its MAC (in constant time). Never
    /// panics, whatever the bytes.
    pub fn open(&self, datagram: &[u8]) -> Result<ProbeMessage, ProbeError> {
        let message = parse(datagram)?;
        let mac = hmac(&self.receive, &[&datagram[..MACED_LEN]]);
        if !constant_time_eq(&mac[..MAC_LEN], &datagram[MACED_LEN..]) {
            return Err(ProbeError::BadMac);
        }
        Ok(message)
    }
}

/// The fields of a datagram of the right shape, not yet authenticated.
fn parse(datagram: &[u8]) -> Result<ProbeMessage, ProbeError> {
    let bytes: &[u8; PROBE_LEN] = datagram.try_into().map_err(|_| ProbeError::Malformed)?;
    if bytes[0] != PUNCH_BYTE {
        return Err(ProbeError::Malformed);
    }
    let kind = match bytes[1] {
        KIND_PROBE => ProbeKind::Probe,
        KIND_ACK => ProbeKind::Ack,
        _ => return Err(ProbeError::Malformed),
    };
    let mut attempt = [0u8; 8];
    attempt.copy_from_slice(&bytes[2..10]);
    let seq = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    Ok(ProbeMessage {
        kind,
        attempt: AttemptId(attempt),
        seq,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    fn ids() -> (MemberId, MemberId) {
        (MemberId([1, 2, 3, 4, 5, 6, 7, 8]), MemberId([9; 8]))
    }

    fn pair(key: &[u8; 32]) -> (ProbeKeys, ProbeKeys) {
        let (a, b) = ids();
        (ProbeKeys::derive(key, a, b), ProbeKeys::derive(key, b, a))
    }

    impl Arbitrary for ProbeMessage {
        fn arbitrary(g: &mut Gen) -> Self {
            let mut attempt = [0u8; 8];
            for b in &mut attempt {
                *b = u8::arbitrary(g);
            }
            ProbeMessage {
                kind: if bool::arbitrary(g) {
                    ProbeKind::Probe
                } else {
                    ProbeKind::Ack
                },
                attempt: AttemptId(attempt),
                seq: u32::arbitrary(g),
            }
        }
    }

    #[test]
    fn prop_sealed_messages_open_on_the_other_side_only() {
        fn prop(m: ProbeMessage, key: u8) -> bool {
            let (a, b) = pair(&[key; 32]);
            let bytes = a.seal(&m);
            b.open(&bytes) == Ok(m)
                && a.open(&bytes) == Err(ProbeError::BadMac)
                && crate::PacketKind::classify(&bytes) == crate::PacketKind::Punch
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(ProbeMessage, u8) -> bool);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic_and_never_verify() {
        fn prop(bytes: Vec<u8>, head: bool) -> bool {
            let (_, b) = pair(&[7; 32]);
            let mut bytes = bytes;
            if head {
                // Give the bytes the right shape so the MAC check is reached.
                bytes.resize(PROBE_LEN, 0);
                bytes[0] = PUNCH_BYTE;
                bytes[1] = 1 + (bytes[1] & 1);
            }
            b.open(&bytes).is_err()
        }
        QuickCheck::new()
            .tests(5000)
            .quickcheck(prop as fn(Vec<u8>, bool) -> bool);
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let (a, b) = pair(&[3; 32]);
        let m = ProbeMessage {
            kind: ProbeKind::Probe,
            attempt: AttemptId([0xaa; 8]),
            seq: 77,
        };
        let good = a.seal(&m);
        for bit in 0..PROBE_LEN * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(b.open(&bad).is_err(), "bit {bit} flipped still verifies");
        }
        assert!(b.open(&good[..PROBE_LEN - 1]).is_err());
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(b.open(&longer), Err(ProbeError::Malformed));
    }

    #[test]
    fn keys_bind_the_pair_and_the_meeting() {
        let (a, _) = pair(&[3; 32]);
        let (_, other_meeting) = pair(&[4; 32]);
        let (us, _) = ids();
        let third = ProbeKeys::derive(&[3; 32], MemberId([0x33; 8]), us);
        let bytes = a.seal(&ProbeMessage {
            kind: ProbeKind::Ack,
            attempt: AttemptId([1; 8]),
            seq: 1,
        });
        assert_eq!(other_meeting.open(&bytes), Err(ProbeError::BadMac));
        assert_eq!(third.open(&bytes), Err(ProbeError::BadMac));
        assert!(!format!("{a:?}").contains("03"));
    }

    /// The test vector of docs/PROTOCOL.md ("Port prediction probes"), computed there
    /// independently (Python's `hmac`).
    #[test]
    fn probe_test_vector() {
        let meeting = crate::meeting::keys::MeetingKeys::derive("correct-horse-battery-staple");
        let keys = ProbeKeys::derive(
            &meeting.signaling,
            MemberId([1, 2, 3, 4, 5, 6, 7, 8]),
            MemberId([9; 8]),
        );
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let probe = keys.seal(&ProbeMessage {
            kind: ProbeKind::Probe,
            attempt: AttemptId([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]),
            seq: 258,
        });
        let ack = keys.seal(&ProbeMessage {
            kind: ProbeKind::Ack,
            attempt: AttemptId([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]),
            seq: 258,
        });
        assert_eq!(hex(&probe), PROBE_VECTOR);
        assert_eq!(hex(&ack), ACK_VECTOR);
    }

    /// The keys of an attempt made before signaling, by public IPs (PROTOCOL.md).
    #[test]
    fn probe_test_vector_keyed_by_addresses() {
        let meeting = crate::meeting::keys::MeetingKeys::derive("correct-horse-battery-staple");
        let keys = ProbeKeys::derive_for_addresses(
            &meeting.signaling,
            "198.51.100.1".parse().unwrap(),
            "203.0.113.9".parse().unwrap(),
        );
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let probe = keys.seal(&ProbeMessage {
            kind: ProbeKind::Probe,
            attempt: AttemptId([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]),
            seq: 258,
        });
        assert_eq!(
            hex(&probe),
            "0f01101112131415161700000102f1c7140b443d01e93d70b9f76c7c0464"
        );
        // The other side opens it with the keys from its side, and no other pair's.
        let theirs = ProbeKeys::derive_for_addresses(
            &meeting.signaling,
            "203.0.113.9".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        );
        assert!(theirs.open(&probe).is_ok());
        assert!(keys.open(&probe).is_err(), "reflected");
    }

    const PROBE_VECTOR: &str = "0f0110111213141516170000010202af308af841fd2ef329845a846f52f9";
    const ACK_VECTOR: &str = "0f02101112131415161700000102b780840a66fee76acf7fd108b3ebeccd";
}
