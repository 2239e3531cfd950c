use super::*;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
        .collect()
}

/// RFC 5769 §2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY, FINGERPRINT).
pub(crate) const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae
    802200105354554e207465737420636c69656e74 002400046e0001ff 80290008932ff9b151263b36
    000600096576746a3a68367659202020 000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2
    80280004e57a3bcf";
/// RFC 5769 §2.2: sample IPv4 response, 192.0.2.1:32853.
pub(crate) const RFC5769_IPV4_RESPONSE: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae
    8022000b7465737420766563746f7220 002000080001a147e112a643
    000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7 80280004c07d4c96";
/// RFC 5769 §2.3: sample IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
pub(crate) const RFC5769_IPV6_RESPONSE: &str = "010100482112a442b7e7a701bc34d686fa87dfae
    8022000b7465737420766563746f7220 002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9
    00080014a382954e4be67bf11784c97c8292c275bfe3ed41 80280004c8fb0b4c";

const VECTOR_TXID: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);

#[test]
fn rfc5769_request_decodes_as_an_ice_check() {
    let raw = hex(RFC5769_REQUEST);
    let msg = Message::decode(&raw).expect("valid vector");
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.method(), BINDING);
    assert_eq!(msg.transaction_id(), VECTOR_TXID);
    assert!(msg.has_username());
    assert!(msg.has_integrity());
    assert!(msg.has_fingerprint());
    assert!(msg.unknown_required().is_empty());
}

#[test]
fn rfc5769_ipv4_response_reports_its_mapped_address() {
    let raw = hex(RFC5769_IPV4_RESPONSE);
    let msg = Message::decode(&raw).expect("valid vector");
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.transaction_id(), VECTOR_TXID);
    assert_eq!(
        msg.xor_mapped_address(),
        Some("192.0.2.1:32853".parse().unwrap())
    );
    assert!(msg.has_fingerprint());
}

#[test]
fn rfc5769_ipv6_response_reports_its_mapped_address() {
    let raw = hex(RFC5769_IPV6_RESPONSE);
    let msg = Message::decode(&raw).expect("valid vector");
    assert_eq!(
        msg.reflexive_address(),
        Some(
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap()
        )
    );
}

#[test]
fn any_flipped_bit_in_a_fingerprinted_vector_is_rejected_or_loses_the_fingerprint() {
    // A single-bit corruption never panics and never yields a message that claims a valid
    // FINGERPRINT. (A flip in an attribute length can swallow FINGERPRINT into the value
    // before it: such a message decodes, but without a fingerprint, as it should.)
    let raw = hex(RFC5769_IPV4_RESPONSE);
    for i in 0..raw.len() * 8 {
        let mut bad = raw.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(msg) = Message::decode(&bad) {
            assert!(
                !msg.has_fingerprint(),
                "bit {i} flipped still passes FINGERPRINT"
            );
        }
    }
}

#[test]
fn truncated_messages_are_rejected() {
    let raw = hex(RFC5769_IPV4_RESPONSE);
    for len in 0..raw.len() {
        assert!(Message::decode(&raw[..len]).is_err(), "length {len}");
    }
}

#[test]
fn header_faults_have_their_own_errors() {
    let raw = binding_request(TransactionId([7; 12]));
    let mut cookie = raw.clone();
    cookie[4] ^= 0xff;
    assert_eq!(
        Message::decode(&cookie).unwrap_err(),
        DecodeError::BadMagicCookie
    );
    let mut unaligned = raw.clone();
    unaligned[3] = 6;
    assert_eq!(
        Message::decode(&unaligned).unwrap_err(),
        DecodeError::UnalignedLength
    );
    let mut longer = raw.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(matches!(
        Message::decode(&longer).unwrap_err(),
        DecodeError::LengthMismatch {
            declared: 28,
            actual: 32
        }
    ));
    let mut dtls = raw.clone();
    dtls[0] = 0x40;
    assert_eq!(Message::decode(&dtls).unwrap_err(), DecodeError::NotStun);
    assert_eq!(
        Message::decode(&raw[..19]).unwrap_err(),
        DecodeError::TooShort
    );
}

#[test]
fn attribute_after_fingerprint_is_rejected() {
    let mut w = MessageWriter::new(Class::Request, BINDING, TransactionId([1; 12]));
    w.attribute(attr::SOFTWARE, b"x");
    let mut raw = w.finish_with_fingerprint();
    // Append a SOFTWARE attribute after FINGERPRINT and fix the length field.
    raw.extend_from_slice(&[0x80, 0x22, 0, 0]);
    let len = (raw.len() - HEADER_LEN) as u16;
    raw[2..4].copy_from_slice(&len.to_be_bytes());
    // Recompute FINGERPRINT over the new header so that only its position is wrong.
    let fp_at = raw.len() - 12;
    let crc = crc32fast::hash(&raw[..fp_at]) ^ FINGERPRINT_XOR;
    raw[fp_at + 4..fp_at + 8].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        Message::decode(&raw).unwrap_err(),
        DecodeError::FingerprintNotLast
    );
}

#[test]
fn unknown_comprehension_required_attributes_are_listed() {
    let mut w = MessageWriter::new(Class::Request, BINDING, TransactionId([2; 12]));
    w.attribute(attr::CHANGE_REQUEST, &[0, 0, 0, 6]);
    w.attribute(0x7777, b"abc");
    w.attribute(0xC001, b"optional"); // comprehension-optional: ignored
    let raw = w.finish_with_fingerprint();
    let msg = Message::decode(&raw).unwrap();
    assert_eq!(msg.unknown_required(), &[attr::CHANGE_REQUEST, 0x7777]);
}

#[test]
fn error_response_round_trips() {
    let raw = error_response(
        BINDING,
        TransactionId([3; 12]),
        420,
        "Unknown Attribute",
        &[3],
    );
    let msg = Message::decode(&raw).unwrap();
    assert_eq!(msg.class(), Class::Error);
    assert_eq!(msg.error_code(), Some(420));
}

#[test]
fn malformed_error_code_is_rejected() {
    let mut w = MessageWriter::new(Class::Error, BINDING, TransactionId([4; 12]));
    w.attribute(attr::ERROR_CODE, &[0, 0, 7, 0]);
    assert_eq!(
        Message::decode(&w.finish()).unwrap_err(),
        DecodeError::MalformedAttribute(attr::ERROR_CODE)
    );
}

#[test]
fn message_type_packs_class_and_method_as_figure_3() {
    assert_eq!(message_type(Class::Request, BINDING), 0x0001);
    assert_eq!(message_type(Class::Indication, BINDING), 0x0011);
    assert_eq!(message_type(Class::Success, BINDING), 0x0101);
    assert_eq!(message_type(Class::Error, BINDING), 0x0111);
    for method in [0u16, 1, 0x0FFF, 0x0ABC] {
        for class in [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ] {
            assert_eq!(
                split_message_type(message_type(class, method)),
                (class, method)
            );
        }
    }
}

/// An arbitrary socket address of either family.
#[derive(Clone, Debug)]
struct AnyAddr(SocketAddr);

impl Arbitrary for AnyAddr {
    fn arbitrary(g: &mut Gen) -> Self {
        let ip = if bool::arbitrary(g) {
            IpAddr::V4(Ipv4Addr::from(u32::arbitrary(g)))
        } else {
            IpAddr::V6(Ipv6Addr::from(u128::arbitrary(g)))
        };
        AnyAddr(SocketAddr::new(ip, u16::arbitrary(g)))
    }
}

/// A valid-but-odd message: any class and method, arbitrary extra attributes (known,
/// unknown, comprehension-required or not, any length), duplicates, maybe FINGERPRINT.
#[derive(Clone, Debug)]
struct OddMessage {
    class: u8,
    method: u16,
    txid: [u8; 12],
    mapped: AnyAddr,
    extra: Vec<(u16, Vec<u8>)>,
    fingerprint: bool,
}

impl Arbitrary for OddMessage {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut txid = [0u8; 12];
        txid.iter_mut().for_each(|b| *b = u8::arbitrary(g));
        let n = usize::arbitrary(g) % 5;
        let extra = (0..n)
            .map(|_| {
                let ty = *g
                    .choose(&[
                        attr::SOFTWARE,
                        0x7001,
                        0xC0DE,
                        attr::USERNAME,
                        attr::NONCE,
                        0x0042,
                    ])
                    .unwrap_or(&attr::SOFTWARE);
                let len = usize::arbitrary(g) % 40;
                (ty, (0..len).map(|_| u8::arbitrary(g)).collect())
            })
            .collect();
        OddMessage {
            class: u8::arbitrary(g) % 4,
            method: u16::arbitrary(g) & 0x0FFF,
            txid,
            mapped: AnyAddr::arbitrary(g),
            extra,
            fingerprint: bool::arbitrary(g),
        }
    }
}

impl OddMessage {
    fn encode(&self) -> Vec<u8> {
        let class = [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ][usize::from(self.class)];
        let mut w = MessageWriter::new(class, self.method, TransactionId(self.txid));
        for (ty, value) in &self.extra {
            w.attribute(*ty, value);
        }
        w.xor_mapped_address(self.mapped.0);
        if self.fingerprint {
            w.finish_with_fingerprint()
        } else {
            w.finish()
        }
    }
}

#[test]
fn prop_arbitrary_bytes_never_panic() {
    fn prop(bytes: Vec<u8>) -> bool {
        let _ = Message::decode(&bytes);
        true
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
}

#[test]
fn prop_odd_messages_round_trip() {
    fn prop(m: OddMessage) -> bool {
        let raw = m.encode();
        let msg = match Message::decode(&raw) {
            Ok(msg) => msg,
            Err(_) => return false,
        };
        msg.transaction_id() == TransactionId(m.txid)
            && msg.method() == m.method
            && msg.xor_mapped_address() == Some(m.mapped.0)
            && msg.has_fingerprint() == m.fingerprint
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(OddMessage) -> bool);
}

/// Our decoder agrees with `stun-types`, the reference decoder: whatever we accept it
/// accepts, with the same transaction id, type and XOR-MAPPED-ADDRESS; and a corrupted
/// message that either rejects for a FINGERPRINT mismatch, both reject.
#[test]
fn prop_agrees_with_stun_types() {
    use stun_types::attribute::{AttributeStaticType, XorMappedAddress};
    use stun_types::message::Message as Reference;

    fn prop(m: OddMessage, flip: Option<(usize, u8)>) -> TestResult {
        let mut raw = m.encode();
        if let Some((at, mask)) = flip {
            let at = at % raw.len();
            raw[at] ^= mask;
        }
        let ours = Message::decode(&raw);
        let theirs = Reference::from_bytes(&raw);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                let same_id = u128::from(theirs.transaction_id())
                    == u128::from_be_bytes({
                        let mut b = [0u8; 16];
                        b[4..].copy_from_slice(&ours.transaction_id().0);
                        b
                    });
                let same_type = theirs.get_type().to_bytes() == raw[..2];
                let their_addr = theirs
                    .attribute::<XorMappedAddress>()
                    .ok()
                    .map(|a| a.addr(theirs.transaction_id()));
                TestResult::from_bool(
                    same_id && same_type && their_addr == ours.xor_mapped_address(),
                )
            }
            (Ok(_), Err(e)) => TestResult::error(format!("we accept what stun-types rejects: {e}")),
            // stun-types stops reading at the first attribute that may not follow
            // MESSAGE-INTEGRITY and accepts the message without reaching FINGERPRINT;
            // only a FINGERPRINT it did read must fail there too.
            (Err(DecodeError::BadFingerprint), Ok(theirs))
                if theirs.has_attribute(stun_types::attribute::Fingerprint::TYPE) =>
            {
                TestResult::error("stun-types accepts a bad FINGERPRINT it read")
            }
            // We are stricter on purpose (exact datagram length, address families,
            // ERROR-CODE ranges, FINGERPRINT last): see docs/stun.md.
            (Err(_), _) => TestResult::passed(),
        }
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop as fn(OddMessage, Option<(usize, u8)>) -> TestResult);
}
