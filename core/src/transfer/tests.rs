use std::time::{Duration, Instant};

use quickcheck::{QuickCheck, TestResult};

use super::wire::{self, Frame, FrameError};
use super::*;
use crate::meeting::signal::MemberId;
use crate::test_clock;

const ALICE: MemberId = MemberId([1; 8]);
const BOB: MemberId = MemberId([2; 8]);

fn name(s: &str) -> FileName {
    FileName::parse(s).unwrap()
}

fn key(member: MemberId, id: u32) -> TransferKey {
    TransferKey { member, id }
}

#[test]
fn the_bytes_on_the_wire_are_those_of_the_cli_before_the_move() {
    let offer = wire::encode_offer(3, 1 << 40, &[7; 32], &name("report.pdf"));
    let mut want = vec![0, 1, 0, 0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 0];
    want.extend_from_slice(&[7; 32]);
    want.extend_from_slice(&[0, 10]);
    want.extend_from_slice(b"report.pdf");
    assert_eq!(offer, want);
    assert_eq!(
        wire::encode_data(3, 99, b"abc"),
        [0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 99, b'a', b'b', b'c']
    );
}

#[test]
fn frames_round_trip_and_text_passes_through() {
    let offer = wire::encode_offer(3, 1 << 40, &[7; 32], &name("report.pdf"));
    assert_eq!(
        wire::decode(&offer).unwrap(),
        Frame::Offer {
            id: 3,
            size: 1 << 40,
            sha256: [7; 32],
            name: "report.pdf"
        }
    );
    let data = wire::encode_data(3, 99, b"abc");
    assert_eq!(
        wire::decode(&data).unwrap(),
        Frame::Data {
            id: 3,
            offset: 99,
            bytes: b"abc"
        }
    );
    assert_eq!(wire::decode(b"hello").unwrap(), Frame::Text(b"hello"));
    assert_eq!(wire::decode(b"").unwrap(), Frame::Text(b""));
}

#[test]
fn every_truncation_of_a_control_frame_is_an_error_not_a_panic() {
    let offer = wire::encode_offer(1, 5, &[1; 32], &name("x"));
    for cut in 1..offer.len() {
        assert!(wire::decode(&offer[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = offer.clone();
    longer.push(0);
    assert_eq!(wire::decode(&longer), Err(FrameError::TrailingBytes));
    assert_eq!(wire::decode(&[0, 9]), Err(FrameError::UnknownKind(9)));
    let mut bad = wire::encode_offer(1, 5, &[1; 32], &name("x"));
    *bad.last_mut().unwrap() = 0xff;
    assert_eq!(wire::decode(&bad), Err(FrameError::NameNotUtf8));
}

#[test]
fn hostile_names_are_refused_and_a_senders_names_are_made_acceptable() {
    for (hostile, error) in [
        ("../../etc/passwd", NameError::Separator),
        ("..\\..\\x.txt", NameError::Separator),
        ("C:x", NameError::Separator),
        (".bashrc", NameError::Hidden),
        ("..", NameError::Hidden),
        (".", NameError::Hidden),
        ("a\nb", NameError::Control),
        ("a\u{1b}[2Jb", NameError::Control),
        ("", NameError::Empty),
        ("  ", NameError::Empty),
    ] {
        assert_eq!(FileName::parse(hostile), Err(error), "{hostile:?}");
    }
    let long = "é".repeat(200);
    assert_eq!(FileName::parse(&long), Err(NameError::TooLong { len: 400 }));
    assert_eq!(FileName::sanitize("../../etc/passwd").as_str(), "passwd");
    assert_eq!(FileName::sanitize("..\\..\\x.txt").as_str(), "x.txt");
    assert_eq!(FileName::sanitize(".bashrc").as_str(), "bashrc");
    assert_eq!(
        FileName::sanitize(" .x ").as_str(),
        " .x ",
        "kept: not hidden"
    );
    assert_eq!(FileName::sanitize(". ").as_str(), "file");
    assert_eq!(FileName::sanitize("a\nb:c").as_str(), "ab_c");
    assert_eq!(FileName::sanitize("..").as_str(), "file");
    assert_eq!(
        FileName::sanitize(&long).as_str().len(),
        254,
        "cut on a boundary"
    );
}

/// The messages of a file `body` sent as `id`, offer first.
fn messages(id: u32, file_name: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Outgoing::new(id, name(file_name), body.len() as u64, [9; 32]).unwrap();
    let mut messages = vec![out.offer()];
    while let Some(mut chunk) = out.next_chunk() {
        let at = usize::try_from(chunk.offset()).unwrap();
        let len = chunk.payload_mut().len();
        chunk.payload_mut().copy_from_slice(&body[at..at + len]);
        messages.push(chunk.into_message());
    }
    assert!(out.is_complete());
    messages
}

#[test]
fn a_file_in_chunks_arrives_in_order_and_completes() {
    let now = test_clock::start();
    let body: Vec<u8> = (0..CHUNK * 2 + 1000).map(|i| i as u8).collect();
    let msgs = messages(5, "data.bin", &body);
    assert_eq!(msgs.len(), 4, "offer and three chunks");
    let mut inbox = Incoming::new();
    let Ok(Received::Offer(file)) = inbox.handle_message(now, ALICE, &msgs[0]) else {
        panic!("not an offer")
    };
    assert_eq!(
        file,
        IncomingFile {
            key: key(ALICE, 5),
            name: name("data.bin"),
            size: body.len() as u64,
            sha256: [9; 32]
        }
    );
    let mut written = Vec::new();
    for m in &msgs[1..] {
        let Ok(Received::Chunk {
            key: k,
            bytes,
            done,
            size,
        }) = inbox.handle_message(now, ALICE, m)
        else {
            panic!("not a chunk")
        };
        assert_eq!(k, key(ALICE, 5));
        written.extend_from_slice(bytes);
        assert_eq!((done, size), (written.len() as u64, body.len() as u64));
    }
    assert_eq!(written, body);
    assert_eq!(inbox.arriving(), 0, "a complete file is forgotten");
    let stats = inbox.stats();
    assert_eq!((stats.offers, stats.complete), (1, 1));
    assert_eq!(stats.bytes, body.len() as u64);
    assert_eq!(inbox.poll_timeout(), None);
}

#[test]
fn a_zero_byte_file_is_complete_with_its_offer() {
    let mut inbox = Incoming::new();
    let msgs = messages(1, "empty", b"");
    assert_eq!(msgs.len(), 1);
    let r = inbox.handle_message(test_clock::start(), ALICE, &msgs[0]);
    assert!(matches!(
        r,
        Ok(Received::Offer(IncomingFile { size: 0, .. }))
    ));
    assert_eq!(inbox.arriving(), 0);
}

#[test]
fn text_is_handed_back_untouched() {
    let mut inbox = Incoming::new();
    assert_eq!(
        inbox.handle_message(test_clock::start(), ALICE, b"hi all"),
        Ok(Received::Text(b"hi all"))
    );
}

/// The refusal of `message`, which must be refused.
fn refusal(inbox: &mut Incoming, from: MemberId, message: &[u8]) -> Refused {
    inbox
        .handle_message(test_clock::start(), from, message)
        .unwrap_err()
}

#[test]
fn pieces_that_lie_about_order_or_size_drop_the_file() {
    let now = test_clock::start();
    let mut inbox = Incoming::new();
    let offer = |id, size| wire::encode_offer(id, size, &[0; 32], &name("x"));
    inbox.handle_message(now, ALICE, &offer(1, 3)).unwrap();
    let r = refusal(&mut inbox, ALICE, &wire::encode_data(1, 1, b"b"));
    assert!(
        matches!(
            r,
            Refused::OutOfOrder {
                offset: 1,
                expected: 0,
                ..
            }
        ),
        "{r}"
    );
    assert_eq!(r.dropped(), Some(key(ALICE, 1)));
    assert_eq!(inbox.arriving(), 0);
    // The size lied: more bytes than offered.
    inbox.handle_message(now, ALICE, &offer(2, 3)).unwrap();
    let r = refusal(&mut inbox, ALICE, &wire::encode_data(2, 0, b"abcd"));
    assert!(matches!(r, Refused::Overrun { size: 3, .. }), "{r}");
    assert_eq!(r.dropped(), Some(key(ALICE, 2)));
    // A piece larger than a chunk.
    inbox
        .handle_message(now, ALICE, &offer(3, 1 << 30))
        .unwrap();
    let big = vec![0u8; CHUNK + 1];
    let r = refusal(&mut inbox, ALICE, &wire::encode_data(3, 0, &big));
    assert!(matches!(r, Refused::ChunkTooLarge { .. }), "{r}");
    // After that, its pieces belong to no file.
    let r = refusal(&mut inbox, ALICE, &wire::encode_data(3, 0, b"a"));
    assert_eq!(r, Refused::UnknownFile { key: key(ALICE, 3) });
    assert_eq!(r.dropped(), None);
    // Another member cannot write into Alice's file.
    inbox.handle_message(now, ALICE, &offer(4, 3)).unwrap();
    let r = refusal(&mut inbox, BOB, &wire::encode_data(4, 0, b"a"));
    assert_eq!(r, Refused::UnknownFile { key: key(BOB, 4) });
    assert_eq!(inbox.arriving(), 1);
    assert_eq!(inbox.stats().pieces_refused, 5);
}

#[test]
fn offers_too_large_badly_named_or_reused_are_refused() {
    let now = test_clock::start();
    let mut inbox = Incoming::new();
    let big = wire::encode_offer(1, MAX_FILE_SIZE + 1, &[0; 32], &name("big"));
    assert!(matches!(
        inbox.handle_message(now, ALICE, &big),
        Err(Refused::TooLarge { .. })
    ));
    let mut traversal = wire::encode_offer(2, 1, &[0; 32], &name("xx"));
    let n = traversal.len();
    traversal[n - 2..].copy_from_slice(b"..");
    assert_eq!(
        inbox.handle_message(now, ALICE, &traversal),
        Err(Refused::BadName {
            key: key(ALICE, 2),
            error: NameError::Hidden
        })
    );
    let offer = wire::encode_offer(3, 10, &[0; 32], &name("x"));
    inbox.handle_message(now, ALICE, &offer).unwrap();
    let r = inbox.handle_message(now, ALICE, &offer).unwrap_err();
    assert_eq!(r.dropped(), Some(key(ALICE, 3)), "both copies go");
    assert_eq!(inbox.arriving(), 0);
    assert_eq!(inbox.stats().offers_refused, 3);
    assert!(matches!(
        inbox.handle_message(now, ALICE, &[0, 1, 0]),
        Err(Refused::Malformed {
            error: FrameError::Truncated,
            ..
        })
    ));
    assert_eq!(inbox.stats().malformed, 1);
}

#[test]
fn one_member_cannot_take_every_place_and_places_are_bounded() {
    let now = test_clock::start();
    let mut inbox = Incoming::new();
    let offer = |id| wire::encode_offer(id, 10, &[0; 32], &name("f"));
    for id in 0..MAX_INCOMING_PER_MEMBER as u32 {
        inbox.handle_message(now, ALICE, &offer(id)).unwrap();
    }
    assert!(matches!(
        inbox.handle_message(now, ALICE, &offer(100)),
        Err(Refused::Busy { .. })
    ));
    for m in 2..=(MAX_INCOMING / MAX_INCOMING_PER_MEMBER) as u8 {
        for id in 0..MAX_INCOMING_PER_MEMBER as u32 {
            inbox
                .handle_message(now, MemberId([m; 8]), &offer(id))
                .unwrap();
        }
    }
    assert_eq!(inbox.arriving(), MAX_INCOMING);
    assert!(matches!(
        inbox.handle_message(now, MemberId([99; 8]), &offer(0)),
        Err(Refused::Busy { .. })
    ));
}

#[test]
fn a_silent_file_is_dropped_after_the_stall_timeout() {
    let t0 = test_clock::start();
    let mut inbox = Incoming::new();
    inbox
        .handle_message(t0, ALICE, &wire::encode_offer(1, 10, &[0; 32], &name("a")))
        .unwrap();
    let t1 = t0 + Duration::from_secs(100);
    inbox
        .handle_message(t1, ALICE, &wire::encode_data(1, 0, b"abc"))
        .unwrap();
    assert_eq!(inbox.poll_timeout(), Some(t1 + STALL_TIMEOUT));
    inbox.handle_timeout(t1 + STALL_TIMEOUT - Duration::from_millis(1));
    assert_eq!(inbox.poll_event(), None, "heard from 100 s in");
    inbox.handle_timeout(t1 + STALL_TIMEOUT);
    assert_eq!(
        inbox.poll_event(),
        Some(IncomingEvent::Stalled {
            key: key(ALICE, 1),
            name: name("a")
        })
    );
    assert_eq!(inbox.arriving(), 0);
    assert_eq!(inbox.stats().stalled, 1);
}

#[test]
fn a_sender_who_leaves_takes_its_files_along() {
    let now = test_clock::start();
    let mut inbox = Incoming::new();
    let offer = |id| wire::encode_offer(id, 10, &[0; 32], &name("a"));
    inbox.handle_message(now, ALICE, &offer(1)).unwrap();
    inbox.handle_message(now, BOB, &offer(1)).unwrap();
    inbox.member_left(ALICE);
    assert_eq!(
        inbox.poll_event(),
        Some(IncomingEvent::SenderLeft {
            key: key(ALICE, 1),
            name: name("a")
        })
    );
    assert_eq!(inbox.poll_event(), None);
    assert_eq!(inbox.arriving(), 1);
    inbox.cancel(key(BOB, 1));
    assert_eq!(inbox.arriving(), 0);
}

#[test]
fn a_file_over_the_limit_cannot_be_sent() {
    assert_eq!(
        Outgoing::new(1, name("a"), MAX_FILE_SIZE + 1, [0; 32]).unwrap_err(),
        OutgoingError::TooLarge {
            size: MAX_FILE_SIZE + 1
        }
    );
}

#[test]
fn prop_offers_and_pieces_round_trip() {
    fn prop(
        id: u32,
        size: u64,
        sha: Vec<u8>,
        raw_name: String,
        offset: u64,
        bytes: Vec<u8>,
    ) -> bool {
        let mut sha256 = [0u8; 32];
        for (s, b) in sha256.iter_mut().zip(sha) {
            *s = b;
        }
        let file_name = FileName::sanitize(&raw_name);
        let offer = wire::encode_offer(id, size, &sha256, &file_name);
        let data = wire::encode_data(id, offset, &bytes);
        wire::decode(&offer)
            == Ok(Frame::Offer {
                id,
                size,
                sha256,
                name: file_name.as_str(),
            })
            && wire::decode(&data)
                == Ok(Frame::Data {
                    id,
                    offset,
                    bytes: &bytes,
                })
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(u32, u64, Vec<u8>, String, u64, Vec<u8>) -> bool);
}

#[test]
fn prop_any_bytes_decode_without_panic_and_what_decodes_reencodes_the_same() {
    fn prop(kind: bool, mut bytes: Vec<u8>) -> TestResult {
        // Half the cases look like control frames, so the decoder gets past the first byte.
        if kind {
            bytes.splice(0..0, [0, 1 + u8::from(bytes.len() % 2 == 0)]);
        }
        match wire::decode(&bytes) {
            Ok(Frame::Text(t)) => TestResult::from_bool(t == &bytes[..]),
            Ok(Frame::Data {
                id,
                offset,
                bytes: b,
            }) => TestResult::from_bool(wire::encode_data(id, offset, b) == bytes),
            Ok(Frame::Offer {
                id,
                size,
                sha256,
                name,
            }) => match FileName::parse(name) {
                Ok(n) => TestResult::from_bool(wire::encode_offer(id, size, &sha256, &n) == bytes),
                Err(_) => TestResult::discard(),
            },
            Err(_) => TestResult::passed(),
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(bool, Vec<u8>) -> TestResult);
}

#[test]
fn prop_a_sanitized_name_is_always_accepted_and_an_accepted_name_is_kept() {
    fn prop(raw: String) -> bool {
        let sanitized = FileName::sanitize(&raw);
        let accepted = FileName::parse(sanitized.as_str()) == Ok(sanitized.clone());
        let kept = FileName::parse(&raw).is_err() || sanitized.as_str() == raw;
        accepted && kept
    }
    let hostile = ["../a", "..", ".x", " .x", "a/", "\u{0}", "é", "C:\\x"];
    for h in hostile {
        assert!(prop(h.into()), "{h:?}");
    }
    assert!(prop(String::from_utf8(vec![b'a'; 300]).unwrap()));
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(String) -> bool);
}

#[test]
fn prop_any_messages_keep_the_receiver_within_its_bounds() {
    fn prop(messages: Vec<(u8, u8, u32, Vec<u8>)>) -> bool {
        let mut inbox = Incoming::new();
        let mut now: Instant = test_clock::start();
        for (member, kind, id, rest) in messages {
            let mut m = vec![0, kind % 4];
            m.extend_from_slice(&(id % 4).to_be_bytes());
            m.extend_from_slice(&rest);
            now += Duration::from_secs(u64::from(kind));
            let _ = inbox.handle_message(now, MemberId([member % 3; 8]), &m);
            inbox.handle_timeout(now);
            while inbox.poll_event().is_some() {}
            if inbox.arriving() > MAX_INCOMING {
                return false;
            }
        }
        true
    }
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(Vec<(u8, u8, u32, Vec<u8>)>) -> bool);
}
