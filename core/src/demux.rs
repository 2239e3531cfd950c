//! Demultiplexing the node's one UDP socket by the first byte (RFC 7983, plus KRPC).
//!
//! | first byte | protocol |
//! |---|---|
//! | 0–3 | STUN (our client and server, and ICE checks for WebRTC) |
//! | 20–63 | DTLS |
//! | `d` (0x64) | bencoded KRPC (Mainline DHT, and our signaling) |
//! | 0x0F | port-prediction probes and acks (`punch::wire`) |
//! | anything else (ZRTP 16–19, TURN channels 64–79, RTP/RTCP 128–191, …) | dropped, counted |
//!
//! `d` (100) sits in the range RFC 7983 leaves unassigned (80–127; RFC 9443 gives it to
//! QUIC, which dhtmeet does not use), so the byte is free for KRPC on this socket. 0x0F
//! lies in 4–15, which both RFCs leave unassigned.

/// What a datagram is, judged by its first byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacketKind {
    /// A STUN message (first byte 0–3).
    Stun,
    /// A DTLS record (first byte 20–63).
    Dtls,
    /// A bencoded KRPC message (first byte `d`).
    Krpc,
    /// A port-prediction probe or ack (first byte 0x0F).
    Punch,
    /// Anything else, including the empty datagram.
    Unknown,
}

impl PacketKind {
    /// Classifies a datagram.
    pub fn classify(datagram: &[u8]) -> PacketKind {
        match datagram.first() {
            Some(0..=3) => PacketKind::Stun,
            Some(20..=63) => PacketKind::Dtls,
            Some(b'd') => PacketKind::Krpc,
            Some(0x0F) => PacketKind::Punch,
            _ => PacketKind::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_exactly_the_rfc7983_kind() {
        for b in 0..=255u8 {
            let expected = match b {
                0..=3 => PacketKind::Stun,
                20..=63 => PacketKind::Dtls,
                0x64 => PacketKind::Krpc,
                0x0F => PacketKind::Punch,
                _ => PacketKind::Unknown,
            };
            assert_eq!(PacketKind::classify(&[b, 0, 0]), expected, "byte {b}");
        }
        assert_eq!(PacketKind::classify(&[]), PacketKind::Unknown);
    }
}
