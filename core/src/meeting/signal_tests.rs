use super::*;
use crate::meeting::keys::MeetingKeys;
use crate::nat::NatClass;
use crate::webrtc::{CandidateKind, IceCandidate, SessionParameters};
use quickcheck::QuickCheck;

fn key() -> [u8; 32] {
    MeetingKeys::derive("correct-horse-battery-staple").signaling
}

fn params_signal() -> DmSignal {
    DmSignal {
        node_id: NodeId([0x11; 20]),
        from: MemberId([1, 2, 3, 4, 5, 6, 7, 8]),
        to: None,
        seq: 1,
        echo: None,
        nat: NatClass::Unknown,
        body: DmSignalBody::Params(SessionParameters {
            ufrag: "abcd".into(),
            pwd: "0123456789abcdefghijkl".into(),
            fingerprint: [0xAB; 32],
            candidates: vec![
                IceCandidate {
                    kind: CandidateKind::Host,
                    addr: "192.0.2.1:4000".parse().unwrap(),
                },
                IceCandidate {
                    kind: CandidateKind::Host,
                    addr: "[2001:db8::1]:4000".parse().unwrap(),
                },
            ],
            sctp_init: None,
        }),
    }
}

const ME: MemberId = MemberId([9; 8]);
/// A hello with challenge `x` = 8 × `0x33`, as in the document's vectors.
const HELLO: DmSignalBody = DmSignalBody::Hello {
    challenge: Challenge([0x33; 8]),
};

#[test]
fn a_hello_carries_its_challenge_and_any_message_may_echo_one() {
    let echo = Some(Challenge([0x44; 8]));
    for body in [HELLO, params_signal().body, DmSignalBody::Bye] {
        let s = DmSignal {
            echo,
            to: Some(ME),
            body,
            ..params_signal()
        };
        let args = s.encode_args(&key());
        assert!(args.windows(5).any(|w| w == b"1:e8:"), "{s:?}");
        assert_eq!(DmSignal::decode_args(&args, &key(), ME), Ok(s));
    }
    // The echo is authenticated: a changed one fails the MAC.
    let args = DmSignal { echo, ..params_signal() }.encode_args(&key());
    let at = args.windows(5).position(|w| w == b"1:e8:").unwrap() + 5;
    let mut altered = args.clone();
    altered[at] ^= 1;
    assert_eq!(
        DmSignal::decode_args(&altered, &key(), ME),
        Err(DmSignalError::BadMac)
    );
}

#[test]
fn a_hello_without_a_challenge_or_a_challenge_outside_a_hello_is_malformed() {
    let unsigned = |s: &DmSignal, x: Option<&[u8]>| {
        // The canonical dictionary with `x` added or removed, under a valid MAC.
        let plain = s.args(None, None);
        let edit = |d: &[u8]| -> Vec<u8> {
            let mut d = d.to_vec();
            if let Some(at) = d.windows(5).position(|w| w == b"1:x8:") {
                d.drain(at..at + 13);
            }
            if let Some(x) = x {
                d.pop();
                d.extend_from_slice(format!("1:x{}:", x.len()).as_bytes());
                d.extend_from_slice(x);
                d.push(b'e');
            }
            d
        };
        let h = mac(&key(), &edit(&plain));
        edit(&s.args(Some(&h), None))
    };
    let hello = DmSignal {
        body: HELLO,
        ..params_signal()
    };
    assert_eq!(
        DmSignal::decode_args(&unsigned(&hello, None), &key(), ME),
        Err(DmSignalError::Malformed("x"))
    );
    assert_eq!(
        DmSignal::decode_args(&unsigned(&hello, Some(&[1; 7])), &key(), ME),
        Err(DmSignalError::Malformed("x"))
    );
    assert_eq!(
        DmSignal::decode_args(&unsigned(&params_signal(), Some(&[1; 8])), &key(), ME),
        Err(DmSignalError::Malformed("x"))
    );
    // The helper itself builds valid messages.
    assert!(DmSignal::decode_args(&unsigned(&hello, Some(&[0x33; 8])), &key(), ME).is_ok());
}

#[test]
fn params_and_bye_round_trip_under_the_meeting_key() {
    let s = params_signal();
    let args = s.encode_args(&key());
    assert!(args.len() < 250, "{} bytes", args.len());
    assert_eq!(DmSignal::decode_args(&args, &key(), ME), Ok(s.clone()));
    let bye = DmSignal {
        body: DmSignalBody::Bye,
        to: Some(ME),
        seq: 2,
        ..s.clone()
    };
    assert_eq!(
        DmSignal::decode_args(&bye.encode_args(&key()), &key(), ME),
        Ok(bye)
    );
    let hello = DmSignal {
        body: HELLO,
        seq: 3,
        ..s.clone()
    };
    assert_eq!(
        DmSignal::decode_args(&hello.encode_args(&key()), &key(), ME),
        Ok(hello)
    );
    // Reflexive candidates and an SCTP INIT (SNAP) travel too.
    let DmSignalBody::Params(mut p) = s.body.clone() else {
        unreachable!()
    };
    p.candidates.push(IceCandidate {
        kind: CandidateKind::ServerReflexive,
        addr: "203.0.113.5:6000".parse().unwrap(),
    });
    p.sctp_init = Some(vec![1, 2, 3, 4, 5]);
    let full = DmSignal {
        body: DmSignalBody::Params(p),
        ..s
    };
    assert_eq!(
        DmSignal::decode_args(&full.encode_args(&key()), &key(), ME),
        Ok(full)
    );
}

#[test]
fn a_non_member_cannot_forge_or_alter_a_message() {
    let args = params_signal().encode_args(&key());
    let outsider = MeetingKeys::derive("correct-horse-battery-stapler").signaling;
    assert_eq!(
        DmSignal::decode_args(&args, &outsider, ME),
        Err(DmSignalError::BadMac)
    );
    assert_eq!(
        DmSignal::decode_args(&params_signal().encode_args(&outsider), &key(), ME),
        Err(DmSignalError::BadMac)
    );
    // Every single-byte change is refused (as malformed or unauthenticated), never a panic.
    for i in 0..args.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = args.clone();
            bad[i] ^= flip;
            assert!(
                DmSignal::decode_args(&bad, &key(), ME).is_err(),
                "byte {i} ^ {flip:#x} accepted"
            );
        }
    }
    // Truncations too.
    for len in 0..args.len() {
        assert!(DmSignal::decode_args(&args[..len], &key(), ME).is_err());
    }
}

#[test]
fn an_extra_key_is_refused() {
    let args = params_signal().encode_args(&key());
    // Insert "1:zi1e" before the final 'e': a well-formed, sorted, unknown key.
    let mut extra = args[..args.len() - 1].to_vec();
    extra.extend_from_slice(b"1:zi1ee");
    assert_eq!(
        DmSignal::decode_args(&extra, &key(), ME),
        Err(DmSignalError::Malformed("unknown key"))
    );
}

#[test]
fn a_message_for_another_member_is_refused() {
    let s = DmSignal {
        to: Some(MemberId([7; 8])),
        ..params_signal()
    };
    assert_eq!(
        DmSignal::decode_args(&s.encode_args(&key()), &key(), ME),
        Err(DmSignalError::NotForUs)
    );
}

#[test]
fn replays_and_stale_messages_are_refused_reordering_within_the_window_is_not() {
    let now = crate::test_clock::start();
    let mut g = ReplayGuard::new();
    let m = MemberId([1; 8]);
    assert_eq!(g.check(m, 10, now), Ok(()));
    assert_eq!(g.check(m, 10, now), Err(DmSignalError::Replayed));
    assert_eq!(g.check(m, 12, now), Ok(()));
    assert_eq!(g.check(m, 11, now), Ok(()), "late but new");
    assert_eq!(g.check(m, 11, now), Err(DmSignalError::Replayed));
    assert_eq!(g.check(m, 12 + REPLAY_WINDOW, now), Ok(()));
    assert_eq!(
        g.check(m, 12, now),
        Err(DmSignalError::Replayed),
        "fell out of the window"
    );
    assert_eq!(g.check(MemberId([2; 8]), 10, now), Ok(()), "per member");
}

#[test]
fn the_replay_table_is_bounded() {
    let start = crate::test_clock::start();
    let mut g = ReplayGuard::new();
    for i in 0..(MAX_TRACKED_MEMBERS as u64 + 10) {
        let now = start + std::time::Duration::from_millis(i);
        g.check(MemberId(i.to_be_bytes()), 1, now).unwrap();
    }
    assert_eq!(g.members.len(), MAX_TRACKED_MEMBERS);
}

#[test]
fn malformed_arguments_are_refused_with_the_field_named() {
    let k = key();
    assert_eq!(
        DmSignal::decode_args(b"le", &k, ME),
        Err(DmSignalError::Malformed("bencode"))
    );
    assert_eq!(
        DmSignal::decode_args(b"d1:ki1ee", &k, ME),
        Err(DmSignalError::Malformed("h"))
    );
    assert_eq!(
        DmSignal::decode_args(b"d1:hi1ee", &k, ME),
        Err(DmSignalError::Malformed("type"))
    );
    assert_eq!(
        DmSignal::decode_args(b"d1:ki1eetrailing", &k, ME),
        Err(DmSignalError::Malformed("bencode"))
    );
}

/// The test vector published in docs/PROTOCOL.md.
#[test]
fn signaling_test_vector() {
    let args = params_signal().encode_args(&key());
    let hex: String = args.iter().map(|b| format!("{b:02x}")).collect();
    let h_at = args.windows(6).position(|w| w == b"1:h16:").expect("h key") + 6;
    let mac_hex: String = args[h_at..h_at + MAC_LEN]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(mac_hex, SIGNAL_MAC_VECTOR, "whole args: {hex}");
}

const SIGNAL_MAC_VECTOR: &str = "cd66a00fbc9951f1029bfbd03e8c65da";

#[test]
fn prop_arbitrary_arguments_never_panic_or_authenticate() {
    fn prop(bytes: Vec<u8>) -> bool {
        let mut with_dict = b"d".to_vec();
        with_dict.extend_from_slice(&bytes);
        DmSignal::decode_args(&bytes, &key(), ME).is_err()
            && DmSignal::decode_args(&with_dict, &key(), ME).is_err()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
}

#[test]
fn member_ids_print_and_parse_as_16_hex_digits() {
    let id = MemberId([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]);
    assert_eq!(id.to_string(), "deadbeef000102ff");
    assert_eq!("deadbeef000102ff".parse::<MemberId>(), Ok(id));
    assert_eq!("DEADBEEF000102FF".parse::<MemberId>(), Ok(id));
    for bad in [
        "",
        "deadbeef",
        "deadbeef000102fg",
        "deadbeef000102ff00",
        "+eadbeef000102ff",
    ] {
        assert!(bad.parse::<MemberId>().is_err(), "{bad:?}");
    }
}

/// docs/PROTOCOL.md, whose `dm_signal vector` blocks are checked below.
const PROTOCOL_MD: &str = include_str!("../../../docs/PROTOCOL.md");

/// Every ```` ```text ```` block of PROTOCOL.md that starts `dm_signal vector: NAME`,
/// as (NAME, the bytes its hex lines spell).
fn documented_vectors() -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut lines = PROTOCOL_MD.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("dm_signal vector: ") else {
            continue;
        };
        let hex: String = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        assert!(hex.len() % 2 == 0, "{name}: odd hex length");
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        found.push((name.trim().to_owned(), bytes));
    }
    found
}

/// The messages the document's vectors describe in prose.
fn vector_signal(name: &str) -> DmSignal {
    let base = DmSignal {
        node_id: NodeId([0x11; 20]),
        from: MemberId([1, 2, 3, 4, 5, 6, 7, 8]),
        to: None,
        seq: 1,
        echo: None,
        nat: NatClass::Unknown,
        body: HELLO,
    };
    let candidate = |kind, addr: &str| IceCandidate {
        kind,
        addr: addr.parse().unwrap(),
    };
    match name {
        "hello" => base,
        "params" => DmSignal {
            seq: 2,
            to: Some(MemberId([9; 8])),
            echo: Some(Challenge([0x44; 8])),
            body: DmSignalBody::Params(SessionParameters {
                ufrag: "abcd".into(),
                pwd: "0123456789abcdefghijkl".into(),
                fingerprint: [0xAB; 32],
                candidates: vec![
                    candidate(CandidateKind::Host, "192.0.2.1:4000"),
                    candidate(CandidateKind::Host, "[2001:db8::1]:4000"),
                    candidate(CandidateKind::ServerReflexive, "198.51.100.7:51000"),
                    candidate(CandidateKind::ServerReflexive, "[2001:db8:ffff::7]:51000"),
                ],
                sctp_init: Some(vec![
                    0x01, 0x00, 0x00, 0x14, 0x12, 0x34, 0x56, 0x78, 0x00, 0x02, 0x00, 0x00, 0xff,
                    0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
                ]),
            }),
            ..base
        },
        "bye" => DmSignal {
            seq: 3,
            to: Some(MemberId([9; 8])),
            body: DmSignalBody::Bye,
            ..base
        },
        "hello with a NAT class" => DmSignal {
            seq: 4,
            nat: NatClass::Sequential { step: 1 },
            ..base
        },
        "hello answering a challenge" => DmSignal {
            seq: 5,
            to: Some(MemberId([9; 8])),
            echo: Some(Challenge([0x44; 8])),
            ..base
        },
        other => panic!("PROTOCOL.md has a dm_signal vector this test does not know: {other}"),
    }
}

#[test]
fn every_dm_signal_vector_in_protocol_md_encodes_and_decodes_byte_for_byte() {
    let vectors = documented_vectors();
    let names: Vec<&str> = vectors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "hello",
            "params",
            "bye",
            "hello with a NAT class",
            "hello answering a challenge"
        ],
        "one vector per kind, one with `t`, one with `e` and `to`"
    );
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut kinds = Vec::new();
    for (name, bytes) in &vectors {
        let signal = vector_signal(name);
        let encoded = signal.encode_args(&key());
        assert_eq!(hex(&encoded), hex(bytes), "{name}: encoding");
        let decoded = DmSignal::decode_args(bytes, &key(), ME);
        assert_eq!(decoded.as_ref(), Ok(&signal), "{name}: decoding");
        kinds.push(std::mem::discriminant(&signal.body));
    }
    // Every kind has its vector, and the kind-1 one uses every key of the table.
    let params = &vectors[1].1;
    for key in [
        "1:c6:", "2:c618:", "1:e8:", "1:f32:", "1:h16:", "2:id20:", "1:ki1e", "1:m8:", "1:ni2e", "1:p22:",
        "1:r6:", "2:r618:", "1:s20:", "2:to8:", "1:u4:",
    ] {
        assert!(
            params.windows(key.len()).any(|w| w == key.as_bytes()),
            "params lacks {key}"
        );
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    kinds.dedup();
    assert_eq!(kinds.len(), 3);
    assert!(
        vectors[3].1.windows(8).any(|w| w == b"1:t3:\x05\x00\x01"),
        "the NAT vector carries t = sequential, step 1"
    );
}

#[test]
fn the_nat_class_travels_in_hellos_and_parameters_and_its_absence_is_unknown() {
    for nat in [
        NatClass::Unknown,
        NatClass::Open,
        NatClass::EndpointIndependent { preserving: true },
        NatClass::PortPreserving,
        NatClass::Sequential { step: 3 },
        NatClass::Random,
    ] {
        for body in [HELLO, params_signal().body] {
            let s = DmSignal {
                nat,
                body,
                ..params_signal()
            };
            let args = s.encode_args(&key());
            let has_t = args.windows(4).any(|w| w == b"1:t1" || w == b"1:t3");
            assert_eq!(has_t, nat != NatClass::Unknown, "{nat}: `t` only when known");
            assert_eq!(DmSignal::decode_args(&args, &key(), ME), Ok(s));
        }
    }
}

/// A message as a later version might send it: `t` = `value` (MACed as sent).
fn hello_with_raw_t(value: &[u8]) -> Vec<u8> {
    let s = DmSignal {
        body: HELLO,
        ..params_signal()
    };
    let h = mac(&key(), &s.args(None, Some(value)));
    s.args(Some(&h), Some(value))
}

#[test]
fn a_nat_class_this_version_does_not_know_is_unknown_but_authentic() {
    for value in [&[7u8][..], &[5], &[5, 0, 0], &[], &[200, 1, 2, 3]] {
        let decoded = DmSignal::decode_args(&hello_with_raw_t(value), &key(), ME);
        assert_eq!(decoded.map(|s| s.nat), Ok(NatClass::Unknown), "{value:?}");
    }
    // A known kind with bytes a later version appended.
    let decoded = DmSignal::decode_args(&hello_with_raw_t(&[5, 0, 2, 9, 9]), &key(), ME);
    assert_eq!(decoded.map(|s| s.nat), Ok(NatClass::Sequential { step: 2 }));
    // Too long a value is malformed; an altered one does not authenticate.
    assert_eq!(
        DmSignal::decode_args(&hello_with_raw_t(&[1; 17]), &key(), ME),
        Err(DmSignalError::Malformed("t"))
    );
    let mut altered = hello_with_raw_t(&[5, 0, 1]);
    let at = altered.windows(5).position(|w| w == b"1:t3:").unwrap() + 7;
    altered[at] = 2;
    assert_eq!(
        DmSignal::decode_args(&altered, &key(), ME),
        Err(DmSignalError::BadMac)
    );
}
