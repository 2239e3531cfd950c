//! The first pass over remote SDP: what real stacks send, and arbitrary text.

use super::*;
use crate::webrtc::peer::tests::chromium_offer;

#[test]
fn keeps_what_str0m_can_use_and_says_what_it_skipped() {
    let r = inspect(&chromium_offer()).unwrap();
    assert_eq!(r.setup, Some(Setup::ActPass));
    assert_eq!(r.ufrag, "5Yls");
    assert_eq!(r.max_message_size, 262_144);
    assert!(!r.framing);
    assert!(r.end_of_candidates);
    let want: Vec<SocketAddr> = vec![
        "127.0.0.1:46243".parse().unwrap(),
        "[::1]:46244".parse().unwrap(),
    ];
    assert_eq!(r.candidates, want);
    assert_eq!((r.skipped_mdns, r.skipped_other), (1, 1));
    assert!(!r.cleaned.contains(".local"));
    assert!(!r.cleaned.contains("sha-384"));
    assert_eq!(r.cleaned.matches("a=fingerprint:sha-256").count(), 1);
    assert!(r.cleaned.ends_with("a=end-of-candidates\r\n"));
}

#[test]
fn tolerates_fingerprint_variants_and_message_size_forms() {
    let offer = chromium_offer();
    // Lower case, a sha-512 line, the same sha-256 twice, at session level.
    let sha512 = format!("a=fingerprint:SHA-512 {}", vec!["ab"; 64].join(":"));
    let sdp = offer
        .replace("a=group:BUNDLE 0", &format!("a=group:BUNDLE 0\r\n{sha512}"))
        .replace("a=max-message-size:262144", "a=max-message-size:0")
        + "a=fingerprint:sha-256 5b:59:4e:6c:a1:0b:2b:6f:8e:88:2e:b6:7d:2e:20:0d:52:38:cb:e7:0a:4d:8a:9b:1c:6c:6b:2b:44:7d:ba:e9\r\n";
    let r = inspect(&sdp).unwrap();
    assert_eq!(r.max_message_size, MAX_MESSAGE_SIZE);
    assert!(
        r.cleaned
            .contains(&format!("a=max-message-size:{MAX_MESSAGE_SIZE}"))
    );
    // No a=max-message-size: RFC 8841's 64 KiB.
    let none = offer.replace("a=max-message-size:262144\r\n", "");
    assert_eq!(
        inspect(&none).unwrap().max_message_size,
        DEFAULT_MAX_MESSAGE_SIZE
    );
    // Two different sha-256 fingerprints cannot both be one certificate's.
    let two = offer.clone() + "a=fingerprint:sha-256 " + &vec!["00"; 32].join(":") + "\r\n";
    assert_eq!(inspect(&two), Err(SdpError::ConflictingFingerprints));
    // A sha-256 line of the wrong length.
    let short = offer.replace("a=fingerprint:sha-256 5B:59:", "a=fingerprint:sha-256 ");
    assert_eq!(inspect(&short), Err(SdpError::BadFingerprint));
    // Roles: active and passive pass, two different ones do not.
    for role in ["active", "passive"] {
        let s = offer.replace("a=setup:actpass", &format!("a=setup:{role}"));
        assert!(inspect(&s).is_ok(), "{role}");
    }
    let both = offer.replace("a=setup:actpass", "a=setup:active\r\na=setup:passive");
    assert_eq!(inspect(&both), Err(SdpError::UnsupportedSetup));
    // LF line ends (some stacks, hand-edited SDP) are accepted and written as CRLF.
    let lf = offer.replace("\r\n", "\n");
    assert_eq!(
        inspect(&lf).unwrap().cleaned,
        inspect(&offer).unwrap().cleaned
    );
    // A rejected (port 0) data channel is no data channel.
    let rejected = offer.replace("m=application 9", "m=application 0");
    assert_eq!(inspect(&rejected), Err(SdpError::NoDataChannel));
    assert_eq!(
        inspect(&"v=0\r\n".repeat(MAX_SDP_LINES + 1)),
        Err(SdpError::TooLong)
    );
}

#[test]
fn candidates_are_checked_one_by_one() {
    let usable = "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host generation 0";
    assert!(matches!(check_candidate(usable), CandidateCheck::Usable(_)));
    let v6 = "candidate:1 1 UDP 2122260223 2001:db8::1 5000 typ srflx raddr :: rport 0";
    assert!(matches!(check_candidate(v6), CandidateCheck::Usable(_)));
    assert_eq!(
        check_candidate("candidate:1 1 udp 1 1f0e.local 5000 typ host"),
        CandidateCheck::Mdns
    );
    for bad in [
        "candidate:1 2 udp 1 192.0.2.1 5000 typ host",
        "candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active",
        "candidate:1 1 udp 1 host.example 5000 typ host",
        "candidate:1 1 udp 1 192.0.2.1 99999 typ host",
        "candidate:1 1 udp 1 192.0.2.1 5000 type host",
        "candidate:",
    ] {
        assert_eq!(check_candidate(bad), CandidateCheck::Unusable, "{bad}");
    }
}

#[test]
fn any_text_is_an_error_or_a_stable_description() {
    fn prop(text: String, lines: Vec<String>, base: bool) -> bool {
        // Either raw text, or a valid offer with arbitrary lines spliced in.
        let sdp = if base {
            let mut s = chromium_offer();
            for l in lines {
                s.push_str(&l);
                s.push_str("\r\n");
            }
            s
        } else {
            text
        };
        match inspect(&sdp) {
            // What passed once passes again unchanged: the cleaning is idempotent.
            Ok(r) => inspect(&r.cleaned).is_ok_and(|again| again.cleaned == r.cleaned),
            Err(_) => true,
        }
    }
    quickcheck::quickcheck(prop as fn(String, Vec<String>, bool) -> bool);
}
