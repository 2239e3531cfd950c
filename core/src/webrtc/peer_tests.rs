//! Two `PeerConnection`s in memory over the core's test network: offer/answer with and
//! without trickle, framed (dhtmeet to dhtmeet) and plain (as towards a browser),
//! large messages both ways, a forged fingerprint, and bad descriptions.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::test_net::Net;
use crate::webrtc::{DisconnectReason, MAX_MESSAGE_SIZE};

const A: &str = "10.0.0.1:5000";
const B: &str = "10.0.0.2:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Offers from A, answers from B; hands every trickled signal across; returns the net
/// with both in it, the answer not yet modified by `edit_answer`.
fn pair_with(
    a_config: PeerConfig,
    b_config: PeerConfig,
    seed: u64,
    edit_answer: impl FnOnce(String) -> String,
) -> Net<PeerConnection> {
    pair_at(A, B, a_config, b_config, seed, |s| s, edit_answer)
}

/// `pair_with` on any two addresses, with the offer editable too.
fn pair_at(
    a_addr: &str,
    b_addr: &str,
    a_config: PeerConfig,
    b_config: PeerConfig,
    seed: u64,
    edit_offer: impl FnOnce(String) -> String,
    edit_answer: impl FnOnce(String) -> String,
) -> Net<PeerConnection> {
    let now = crate::test_clock::start();
    let mut net = Net::new(now, Duration::from_millis(5), seed);
    let root = Seed::from_u64(seed);
    let (mut a, offer) =
        PeerConnection::offer(now, a_config, addr(a_addr), root.child("a")).unwrap();
    let Signal::Offer { sdp } = offer else {
        panic!("not an offer")
    };
    let offer = Signal::Offer {
        sdp: edit_offer(sdp),
    };
    let offer = Signal::parse(offer.to_json().as_bytes()).unwrap();
    let (mut b, answer) =
        PeerConnection::answer(now, b_config, addr(b_addr), root.child("b"), &offer).unwrap();
    let Signal::Answer { sdp } = answer else {
        panic!("not an answer")
    };
    let answer = Signal::Answer {
        sdp: edit_answer(sdp),
    };
    let answer = Signal::parse(answer.to_json().as_bytes()).unwrap();
    a.handle_signal(now, &answer).unwrap();
    while let Some(s) = a.poll_signal() {
        let s = Signal::parse(s.to_json().as_bytes()).unwrap();
        b.handle_signal(now, &s).unwrap();
    }
    while let Some(s) = b.poll_signal() {
        a.handle_signal(now, &s).unwrap();
    }
    net.machines.insert(addr(a_addr), a);
    net.machines.insert(addr(b_addr), b);
    net
}

fn pair(a_config: PeerConfig, b_config: PeerConfig, seed: u64) -> Net<PeerConnection> {
    pair_with(a_config, b_config, seed, |s| s)
}

fn connected(events: &[(SocketAddr, SessionEvent)], who: &str) -> bool {
    events
        .iter()
        .any(|(a, e)| *a == addr(who) && *e == SessionEvent::Connected)
}

fn connect(net: &mut Net<PeerConnection>) {
    net.run_until(Duration::from_secs(10), |e| {
        connected(e, A) && connected(e, B)
    });
    assert!(
        connected(&net.events, A) && connected(&net.events, B),
        "no connection: {:?}",
        net.events
    );
}

fn messages(net: &Net<PeerConnection>, to: &str) -> Vec<Vec<u8>> {
    net.events
        .iter()
        .filter(|(a, _)| *a == addr(to))
        .filter_map(|(_, e)| match e {
            SessionEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn peer<'a>(net: &'a mut Net<PeerConnection>, who: &str) -> &'a mut PeerConnection {
    net.machines.get_mut(&addr(who)).unwrap()
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends `messages` from `from` and runs until `to` has them all.
fn exchange(net: &mut Net<PeerConnection>, from: &str, to: &str, sent: &[Vec<u8>]) {
    let before = messages(net, to).len();
    for m in sent {
        peer(net, from).send(m).unwrap();
    }
    let want = before + sent.len();
    let to_addr = addr(to);
    net.run_until(Duration::from_secs(20), |e| {
        e.iter()
            .filter(|(a, e)| *a == to_addr && matches!(e, SessionEvent::Message(_)))
            .count()
            >= want
    });
    assert_eq!(&messages(net, to)[before..], sent);
}

#[test]
fn two_dhtmeet_peers_frame_messages_of_any_size() {
    let mut net = pair(PeerConfig::default(), PeerConfig::default(), 1);
    connect(&mut net);
    assert!(peer(&mut net, A).is_framed() && peer(&mut net, B).is_framed());
    assert_eq!(peer(&mut net, A).max_message_size(), MAX_MESSAGE_SIZE);
    // One at a time: 3 MiB is more than the 1 MiB send queue takes at once.
    let big = vec![payload(1, 3 << 20), payload(2, 10), payload(3, 300_000)];
    for m in &big {
        exchange(&mut net, A, B, std::slice::from_ref(m));
        exchange(&mut net, B, A, std::slice::from_ref(m));
    }
    let stats = peer(&mut net, A).stats();
    assert_eq!(stats.messages_sent, 3);
    assert_eq!(stats.messages_received, 3);
}

#[test]
fn towards_a_standard_peer_one_message_is_one_sctp_message() {
    // B does not announce framing, as a browser would not: both sides go plain, and
    // messages up to str0m's a=max-message-size (256 KiB) pass whole, both ways.
    let plain = PeerConfig {
        framing: false,
        ..PeerConfig::default()
    };
    let mut net = pair(PeerConfig::default(), plain, 2);
    connect(&mut net);
    assert!(!peer(&mut net, A).is_framed() && !peer(&mut net, B).is_framed());
    assert_eq!(peer(&mut net, A).max_message_size(), 256 * 1024);
    let sent = vec![payload(4, 200_000), payload(5, 1), payload(6, 256 * 1024)];
    exchange(&mut net, A, B, &sent);
    exchange(&mut net, B, A, &sent);
    assert_eq!(
        peer(&mut net, A).send(&payload(7, 256 * 1024 + 1)),
        Err(SendError::TooLarge)
    );
    peer(&mut net, A).send_text("hello").unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(messages(&net, B).last().unwrap(), b"hello");
}

/// On a plain channel an empty message would go to SCTP as an empty write, which takes
/// a stream sequence number and sends nothing (str0m cannot send RFC 8831's one-byte
/// "empty" payload): every later message on the ordered channel would wait for it at
/// the receiver forever. So `send` refuses empty messages there, and what follows
/// still arrives. (Framed channels carry empty messages: a frame has its tag byte.)
#[test]
fn an_empty_message_on_a_plain_channel_never_blocks_the_next() {
    let plain = PeerConfig {
        framing: false,
        ..PeerConfig::default()
    };
    let mut net = pair(PeerConfig::default(), plain, 9);
    connect(&mut net);
    assert!(!peer(&mut net, A).is_framed());
    let _ = peer(&mut net, A).send(b"");
    let _ = peer(&mut net, A).send_text("");
    peer(&mut net, A).send_text("after").unwrap();
    net.run(Duration::from_secs(2));
    assert_eq!(messages(&net, B), vec![b"after".to_vec()]);
    assert_eq!(peer(&mut net, A).send(b""), Err(SendError::Empty));
    assert_eq!(peer(&mut net, A).send_text(""), Err(SendError::Empty));
}

/// Plain channels cannot cut a message to the SCTP budget's room as framed ones do, so
/// a nearly empty buffer (under 8 KiB unacknowledged) counts as empty: a message never
/// waits for the peer's delayed acknowledgement of the last packet (200 ms). At zero
/// delay the budget is its 64 KiB floor, and a 200 KiB message after a small one (one
/// packet, acknowledged late) used to wait that long.
#[test]
fn a_plain_channel_never_waits_for_delayed_acks() {
    let plain = PeerConfig {
        framing: false,
        ..PeerConfig::default()
    };
    let mut net = pair(plain.clone(), plain, 3);
    net.latency = Duration::ZERO;
    connect(&mut net);
    assert!(!peer(&mut net, A).is_framed());
    // Give ICE a round trip measured at zero delay, so the budget is the floor.
    net.run(Duration::from_secs(2));
    let sent: Vec<Vec<u8>> = (0..8)
        .map(|i| payload(i, if i % 2 == 0 { 100 } else { 200 * 1024 }))
        .collect();
    let started = net.now;
    exchange(&mut net, A, B, &sent);
    let took = net.now - started;
    // With the old rule (any byte unacknowledged blocks a message that overflows the
    // budget) it took 400 ms: two delayed acknowledgements waited for.
    assert!(
        took < Duration::from_millis(100),
        "8 messages at zero delay took {took:?} of virtual time"
    );
}

#[test]
fn trickled_candidates_connect_like_candidates_in_the_sdp() {
    let trickle = PeerConfig {
        trickle: true,
        ..PeerConfig::default()
    };
    let now = crate::test_clock::start();
    let (mut a, offer) =
        PeerConnection::offer(now, trickle.clone(), addr(A), Seed::from_u64(3)).unwrap();
    let Signal::Offer { sdp } = &offer else {
        panic!()
    };
    assert!(!sdp.contains("a=candidate"), "{sdp}");
    assert!(matches!(a.poll_signal(), Some(Signal::Candidate(_))));
    assert_eq!(a.poll_signal(), Some(Signal::EndOfCandidates));
    let mut net = pair(trickle.clone(), trickle, 3);
    connect(&mut net);
    exchange(&mut net, A, B, &[payload(8, 70_000)]);
}

#[test]
fn ipv6_candidates_connect() {
    const A6: &str = "[2001:db8::1]:5000";
    const B6: &str = "[2001:db8::2]:6000";
    let config = PeerConfig::default;
    let mut net = pair_at(A6, B6, config(), config(), 10, |s| s, |s| s);
    net.run_until(Duration::from_secs(10), |e| {
        connected(e, A6) && connected(e, B6)
    });
    assert!(connected(&net.events, A6) && connected(&net.events, B6));
    net.machines
        .get_mut(&addr(A6))
        .unwrap()
        .send(b"over IPv6")
        .unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(messages(&net, B6), vec![b"over IPv6".to_vec()]);
}

#[test]
fn every_dtls_role_an_offer_can_state_connects() {
    // actpass (ours), and an offerer that insists on being the DTLS client (active) or
    // server (passive): the answerer takes the other role, as RFC 5763 §5 says.
    for (i, role) in ["actpass", "active", "passive"].into_iter().enumerate() {
        let mut net = pair_at(
            A,
            B,
            PeerConfig::default(),
            PeerConfig::default(),
            20 + i as u64,
            |sdp| sdp.replace("a=setup:actpass", &format!("a=setup:{role}")),
            |sdp| {
                let answered = if role == "passive" {
                    "active"
                } else {
                    "passive"
                };
                assert!(sdp.contains(&format!("a=setup:{answered}")), "{sdp}");
                sdp
            },
        );
        net.run_until(Duration::from_secs(10), |e| {
            connected(e, A) && connected(e, B)
        });
        assert!(
            connected(&net.events, A) && connected(&net.events, B),
            "offer with a=setup:{role}: {:?}",
            net.events
        );
    }
}

#[test]
fn a_forged_fingerprint_never_connects() {
    // The answer's fingerprint is well-formed but not B's certificate's: DTLS fails.
    let mut net = pair_with(PeerConfig::default(), PeerConfig::default(), 4, |sdp| {
        let at = sdp.find("a=fingerprint:sha-256 ").unwrap() + 22;
        let mut sdp = sdp.into_bytes();
        sdp[at] = if sdp[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(sdp).unwrap()
    });
    net.run(Duration::from_secs(12));
    assert!(!connected(&net.events, A) && !connected(&net.events, B));
    assert!(
        net.events.iter().any(|(a, e)| *a == addr(A)
            && *e
                == SessionEvent::Disconnected {
                    reason: DisconnectReason::HandshakeFailed
                }),
        "{:?}",
        net.events
    );
    assert!(peer(&mut net, A).is_closed());
}

/// A browser-like offer (Chromium's shape, data channel only).
pub(crate) fn chromium_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0 network-id 1",
        "a=candidate:2 1 udp 2122262783 ::1 46244 typ host generation 0 network-id 2",
        "a=candidate:3 1 udp 2122262783 0bd4a8e8-9d7c-4a5e-9b3e-3f0c55e7a0a1.local 46245 typ host generation 0",
        "a=candidate:4 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
        "a=ice-ufrag:5Yls",
        "a=ice-pwd:4d3F1tDcBfh9Gx0tH0Q1Uo0C",
        "a=ice-options:trickle",
        "a=fingerprint:sha-384 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
        "a=fingerprint:sha-256 5B:59:4E:6C:A1:0B:2B:6F:8E:88:2E:B6:7D:2E:20:0D:52:38:CB:E7:0A:4D:8A:9B:1C:6C:6B:2B:44:7D:BA:E9",
        "a=setup:actpass",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "a=end-of-candidates",
        "",
    ]
    .join("\r\n")
}

#[test]
fn answers_a_browser_offer_and_skips_what_it_cannot_use() {
    let now = crate::test_clock::start();
    let offer = Signal::Offer {
        sdp: chromium_offer(),
    };
    let (b, answer) = PeerConnection::answer(
        now,
        PeerConfig::default(),
        addr(B),
        Seed::from_u64(5),
        &offer,
    )
    .unwrap();
    let Signal::Answer { sdp } = answer else {
        panic!()
    };
    assert!(
        sdp.contains("a=setup:passive") || sdp.contains("a=setup:active"),
        "{sdp}"
    );
    assert!(sdp.contains("webrtc-datachannel"), "{sdp}");
    assert!(sdp.contains(FRAMING_ATTRIBUTE));
    let stats = b.signaling_stats();
    assert_eq!(stats.candidates_added, 2, "IPv4 and IPv6 host candidates");
    assert_eq!(stats.skipped_mdns, 1);
    assert_eq!(stats.skipped_unusable, 1, "the TCP candidate");
    assert!(!b.is_framed(), "a browser does not announce framing");
    assert_eq!(b.max_message_size(), 262_144);
}

#[test]
fn trickled_mdns_and_foreign_candidates_are_refused_cleanly() {
    let now = crate::test_clock::start();
    let offer = Signal::Offer {
        sdp: chromium_offer(),
    };
    let (mut b, _) = PeerConnection::answer(
        now,
        PeerConfig::default(),
        addr(B),
        Seed::from_u64(6),
        &offer,
    )
    .unwrap();
    let mut candidate = |c: &str, ufrag: Option<&str>| {
        b.handle_signal(
            now,
            &Signal::Candidate(CandidateInit {
                candidate: c.into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: ufrag.map(Into::into),
            }),
        )
    };
    assert_eq!(
        candidate("candidate:9 1 udp 1 abc.local 5 typ host", None),
        Ok(CandidateOutcome::SkippedMdns)
    );
    assert_eq!(
        candidate("candidate:9 1 udp 1 [::1] 5 typ host", None),
        Ok(CandidateOutcome::SkippedUnusable)
    );
    assert_eq!(
        candidate(
            "candidate:9 1 udp 2122260223 192.0.2.9 5 typ host",
            Some("5Yls")
        ),
        Ok(CandidateOutcome::Added)
    );
    assert_eq!(
        candidate(
            "candidate:9 1 udp 2122260223 192.0.2.9 6 typ host",
            Some("zzzz")
        ),
        Err(PeerError::ForeignCandidate)
    );
    assert_eq!(
        b.handle_signal(
            now,
            &Signal::Offer {
                sdp: chromium_offer()
            }
        ),
        Err(PeerError::UnexpectedSignal)
    );
}

#[test]
fn bad_descriptions_are_clear_errors_and_no_connection() {
    let now = crate::test_clock::start();
    let good = chromium_offer();
    let answer = |sdp: String| {
        PeerConnection::answer(
            now,
            PeerConfig::default(),
            addr(B),
            Seed::from_u64(7),
            &Signal::Offer { sdp },
        )
        .map(|_| ())
    };
    let without = |needle: &str| {
        good.split("\r\n")
            .filter(|l| !l.starts_with(needle))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let cases: Vec<(String, PeerError)> = vec![
        ("hello".into(), SdpError::NotSdp.into()),
        (
            good.replace(
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            ),
            SdpError::NoDataChannel.into(),
        ),
        (
            without("a=fingerprint"),
            SdpError::MissingFingerprint.into(),
        ),
        (
            without("a=fingerprint:sha-256"),
            SdpError::UnsupportedFingerprint.into(),
        ),
        (
            good.replace("a=fingerprint:sha-256 5B:59", "a=fingerprint:sha-256 5B:5"),
            SdpError::BadFingerprint.into(),
        ),
        (without("a=ice-pwd"), SdpError::MissingIceCredentials.into()),
        (
            good.replace("actpass", "holdconn"),
            SdpError::UnsupportedSetup.into(),
        ),
        (
            good.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1 2"),
            PeerError::Rejected,
        ),
    ];
    for (sdp, want) in cases {
        assert_eq!(answer(sdp.clone()), Err(want), "{sdp}");
    }
    assert_eq!(answer(good), Ok(()));
    // An answer in place of an offer, and an answer that does not choose a role.
    let answer_signal = Signal::Answer {
        sdp: chromium_offer(),
    };
    assert!(matches!(
        PeerConnection::answer(
            now,
            PeerConfig::default(),
            addr(B),
            Seed::from_u64(8),
            &answer_signal
        ),
        Err(PeerError::UnexpectedSignal)
    ));
    let (mut a, _) =
        PeerConnection::offer(now, PeerConfig::default(), addr(A), Seed::from_u64(9)).unwrap();
    assert_eq!(
        a.handle_signal(now, &answer_signal),
        Err(SdpError::UnsupportedSetup.into())
    );
    assert!(a.is_closed());
}

#[test]
fn any_text_as_an_offer_or_answer_gives_an_error_or_a_session() {
    fn prop(seed: u64, edits: Vec<(u16, u8)>, raw: String) -> bool {
        let now = crate::test_clock::start();
        // Mutate a valid offer (so the parser goes deep), or take raw text.
        let sdp = if seed % 4 == 0 {
            raw
        } else {
            let mut bytes = chromium_offer().into_bytes();
            for (at, b) in edits {
                let at = at as usize % bytes.len();
                match b % 3 {
                    0 => bytes[at] = b,
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, b' ' + b % 90),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let offer = Signal::Offer { sdp: sdp.clone() };
        if let Ok((mut b, _)) = PeerConnection::answer(
            now,
            PeerConfig::default(),
            addr(B),
            Seed::from_u64(seed),
            &offer,
        ) {
            b.handle_timeout(now + Duration::from_millis(10));
            while b.poll_transmit().is_some() {}
        }
        let (mut a, _) =
            PeerConnection::offer(now, PeerConfig::default(), addr(A), Seed::from_u64(seed))
                .unwrap();
        let _ = a.handle_signal(now, &Signal::Answer { sdp });
        a.handle_timeout(now + Duration::from_millis(10));
        true
    }
    // quickcheck prints the failing input, which reproduces the case.
    quickcheck::QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(u64, Vec<(u16, u8)>, String) -> bool);
}

#[test]
fn same_seed_same_offer_except_the_certificate() {
    // ICE credentials, the session id, the mid and candidate foundations come from the
    // seed; only the DTLS certificate (its fingerprint) is OS-random (docs/webrtc.md).
    let now = crate::test_clock::start();
    let offer = |seed| {
        let (_, offer) =
            PeerConnection::offer(now, PeerConfig::default(), addr(A), Seed::from_u64(seed))
                .unwrap();
        let Signal::Offer { sdp } = offer else {
            panic!()
        };
        sdp.lines()
            .filter(|l| !l.starts_with("a=fingerprint:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(offer(11), offer(11));
    assert_ne!(offer(11), offer(12));
}
