use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use super::*;
use crate::state::{MAX_SAVED_CONTACTS, MAX_SAVED_MEETINGS, MAX_SAVED_NODES};

fn arbitrary_ip(g: &mut Gen) -> IpAddr {
    if bool::arbitrary(g) {
        IpAddr::V4(Ipv4Addr::from(u32::arbitrary(g)))
    } else {
        IpAddr::V6(Ipv6Addr::from(u128::arbitrary(g)))
    }
}

fn arbitrary_endpoint(g: &mut Gen) -> SocketAddr {
    SocketAddr::new(arbitrary_ip(g), u16::arbitrary(g))
}

fn arbitrary_20(g: &mut Gen) -> [u8; 20] {
    let mut b = [0u8; 20];
    for x in &mut b {
        *x = u8::arbitrary(g);
    }
    b
}

/// A state within every bound (sizes up to the bounds, sometimes exactly at them).
#[derive(Clone, Debug)]
struct Bounded(SavedState);

impl Arbitrary for Bounded {
    fn arbitrary(g: &mut Gen) -> Self {
        let full = u8::arbitrary(g) % 16 == 0;
        let pick = |g: &mut Gen, max: usize| {
            if full {
                max
            } else {
                usize::arbitrary(g) % (max + 1)
            }
        };
        let nodes = (0..pick(g, MAX_SAVED_NODES))
            .map(|_| CompactNode {
                id: NodeId(arbitrary_20(g)),
                addr: arbitrary_endpoint(g),
            })
            .collect();
        let meetings = (0..pick(g, MAX_SAVED_MEETINGS))
            .map(|_| SavedMeeting {
                topic: InfoHash(arbitrary_20(g)),
                contacts: (0..pick(g, MAX_SAVED_CONTACTS))
                    .map(|_| arbitrary_endpoint(g))
                    .collect(),
            })
            .collect();
        Bounded(SavedState {
            node_id: bool::arbitrary(g).then(|| NodeId(arbitrary_20(g))),
            id_ip: bool::arbitrary(g).then(|| arbitrary_ip(g)),
            nodes,
            meetings,
        })
    }
}

fn sample() -> SavedState {
    SavedState {
        node_id: Some(NodeId([7; 20])),
        id_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        nodes: vec![
            CompactNode {
                id: NodeId([1; 20]),
                addr: "192.0.2.1:6881".parse().unwrap(),
            },
            CompactNode {
                id: NodeId([2; 20]),
                addr: "[2001:db8::1]:6881".parse().unwrap(),
            },
        ],
        meetings: vec![SavedMeeting {
            topic: InfoHash([9; 20]),
            contacts: vec!["198.51.100.4:40000".parse().unwrap()],
        }],
    }
}

#[test]
fn a_state_round_trips_byte_for_byte() {
    let bytes = sample().encode();
    assert_eq!(&bytes[..4], b"DMST");
    assert_eq!(bytes[4], VERSION);
    assert_eq!(SavedState::decode(&bytes), Ok(sample()));
    // 10 header + 20 id + 5 ip + 2 + (20+7) + (20+19) + 1 + 20 + 1 + 7 + 4 checksum.
    assert_eq!(bytes.len(), 136);
}

#[test]
fn an_empty_state_is_seventeen_bytes_and_valid() {
    let bytes = SavedState::default().encode();
    assert_eq!(bytes.len(), 10 + 2 + 1 + 4);
    assert_eq!(SavedState::decode(&bytes), Ok(SavedState::default()));
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    let bytes = sample().encode();
    for len in 0..bytes.len() {
        let got = SavedState::decode(&bytes[..len]);
        assert_eq!(got, Err(StateError::Truncated(len)), "cut at {len}");
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    let bytes = sample().encode();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            assert!(
                SavedState::decode(&b).is_err(),
                "flip of bit {bit} at {at} went unnoticed"
            );
        }
    }
}

#[test]
fn a_future_version_is_named_and_refused() {
    let mut bytes = sample().encode();
    bytes[4] = VERSION + 1;
    assert_eq!(
        SavedState::decode(&bytes),
        Err(StateError::FutureVersion(VERSION + 1))
    );
}

#[test]
fn a_foreign_file_is_not_a_state() {
    assert_eq!(
        SavedState::decode(b"{\"json\": true}"),
        Err(StateError::NotState)
    );
    assert_eq!(SavedState::decode(b"x"), Err(StateError::NotState));
}

#[test]
fn a_file_longer_than_any_state_is_refused_unread() {
    let mut bytes = sample().encode();
    bytes.resize(MAX_STATE_BYTES + 1, 0);
    assert_eq!(
        SavedState::decode(&bytes),
        Err(StateError::TooLarge(MAX_STATE_BYTES + 1))
    );
}

#[test]
fn lists_beyond_their_bounds_are_cut_on_encode() {
    let mut s = sample();
    s.id_ip = Some("2001:db8::9".parse().unwrap());
    s.nodes = vec![s.nodes[1]; MAX_SAVED_NODES + 10];
    s.meetings = vec![
        SavedMeeting {
            topic: InfoHash([3; 20]),
            contacts: vec!["[2001:db8::2]:1".parse().unwrap(); MAX_SAVED_CONTACTS + 5],
        };
        MAX_SAVED_MEETINGS + 3
    ];
    let bytes = s.encode();
    assert_eq!(bytes.len(), MAX_STATE_BYTES, "the largest possible state");
    let back = SavedState::decode(&bytes).unwrap();
    assert_eq!(back.nodes.len(), MAX_SAVED_NODES);
    assert_eq!(back.meetings.len(), MAX_SAVED_MEETINGS);
    assert!(
        back.meetings
            .iter()
            .all(|m| m.contacts.len() == MAX_SAVED_CONTACTS)
    );
}

#[test]
fn remembering_a_meeting_puts_it_first_and_merges_its_contacts() {
    let mut s = sample();
    let a: SocketAddr = "192.0.2.10:1000".parse().unwrap();
    let old = s.meetings[0].contacts[0];
    s.remember_meeting(InfoHash([4; 20]), &[a]);
    s.remember_meeting(InfoHash([9; 20]), &[a]);
    assert_eq!(s.meetings[0].topic, InfoHash([9; 20]));
    assert_eq!(s.meetings[0].contacts, vec![a, old]);
    assert_eq!(s.meetings[1].topic, InfoHash([4; 20]));
    for i in 0..MAX_SAVED_MEETINGS as u8 + 4 {
        s.remember_meeting(InfoHash([100 + i; 20]), &[a]);
    }
    assert_eq!(s.meetings.len(), MAX_SAVED_MEETINGS);
}

#[test]
fn prop_states_within_bounds_round_trip() {
    fn prop(s: Bounded) -> bool {
        let bytes = s.0.encode();
        bytes.len() <= MAX_STATE_BYTES && SavedState::decode(&bytes) == Ok(s.0)
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Bounded) -> bool);
}

#[test]
fn prop_any_bytes_give_a_clean_error_or_a_bounded_state() {
    fn prop(bytes: Vec<u8>) -> bool {
        match SavedState::decode(&bytes) {
            Ok(s) => {
                s.nodes.len() <= MAX_SAVED_NODES
                    && s.meetings.len() <= MAX_SAVED_MEETINGS
                    && s.meetings
                        .iter()
                        .all(|m| m.contacts.len() <= MAX_SAVED_CONTACTS)
                    && s.encode() == bytes
            }
            Err(_) => true,
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
}

/// Random bytes almost never pass the magic and the checksum; damage to a valid state
/// reaches the parser behind them. Whatever survives must be a valid state, and its
/// re-encoding must be the bytes themselves (the format has one encoding per state).
#[test]
fn prop_damaged_states_give_a_clean_error_or_the_same_bytes_back() {
    fn prop(s: Bounded, cuts: Vec<(u16, u8)>, fix_checksum: bool) -> TestResult {
        let mut bytes = s.0.encode();
        if bytes.len() <= 14 {
            return TestResult::discard();
        }
        for (at, x) in cuts {
            let at = usize::from(at) % bytes.len();
            bytes[at] ^= x;
        }
        if fix_checksum {
            // Re-seal the damage so the parser, not the checksum, has to find it.
            let n = bytes.len() - 4;
            let crc = crc32fast::hash(&bytes[..n]).to_be_bytes();
            bytes[n..].copy_from_slice(&crc);
        }
        match SavedState::decode(&bytes) {
            Ok(back) => TestResult::from_bool(back.encode() == bytes),
            Err(_) => TestResult::passed(),
        }
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Bounded, Vec<(u16, u8)>, bool) -> TestResult);
}

/// The fuzz corpus's seeds (written independently of this encoder, by hand from the
/// layout in docs/STATE.md) are valid states: the documented layout is the real one.
#[test]
fn the_seed_corpus_written_from_the_docs_decodes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/state_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let state = SavedState::decode(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(state.encode(), bytes, "{path:?}");
        n += 1;
    }
    assert!(n >= 3);
}
