//! Bodies of the cargo-fuzz targets in `core/fuzz/`, compiled in CI behind the
//! `fuzzing` feature so they never rot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::krpc::Message as KrpcMessage;
use crate::stun::wire::Message;
use crate::webrtc::{PeerConfig, PeerConnection, Signal, sdp};
use crate::{Node, NodeConfig, SansIo, Seed};

/// Decodes arbitrary bytes as STUN; re-encoding what decodes must not panic either.
pub fn stun_decode(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        let _ = (
            msg.reflexive_address(),
            msg.error_code(),
            msg.unknown_required(),
        );
    }
}

/// Decodes arbitrary bytes as KRPC; whatever decodes must survive re-encoding unchanged
/// (the codec's round-trip promise, checked on inputs no generator thought of). The
/// assert is the point of a fuzz body: a failure is a bug for the fuzzer to report.
pub fn krpc_decode(data: &[u8]) {
    if let Ok(msg) = KrpcMessage::decode(data) {
        let again = KrpcMessage::decode(&msg.encode());
        assert_eq!(again.as_ref(), Ok(&msg), "re-encoding changed the message");
    }
}

/// Decodes arbitrary bytes as a saved state; whatever decodes must be within every bound,
/// re-encode to the very same bytes, and start a node without a panic.
pub fn state_decode(origin: Instant, data: &[u8]) {
    let Ok(state) = crate::SavedState::decode(data) else {
        return;
    };
    assert_eq!(state.encode(), data, "a state has one encoding");
    let mut config = NodeConfig::new(Seed::from_u64(0));
    config.local_addr = Some(SocketAddr::from(([10, 0, 0, 1], 4000)));
    config.saved_state = Some(state);
    if let Ok(node) = Node::new(origin, config) {
        let _ = node.export_state().encode();
    }
}

/// Feeds arbitrary datagrams to a node that is mid-discovery, as if from its server.
/// `origin` is the fuzz harness's fixed starting instant.
pub fn node_datagrams(origin: Instant, data: &[u8]) {
    let server: SocketAddr = SocketAddr::from(([192, 0, 2, 1], 3478));
    let local: SocketAddr = SocketAddr::from(([10, 0, 0, 1], 4000));
    let mut config = NodeConfig::new(Seed::from_u64(0));
    config.stun.servers = vec![server];
    let Ok(mut node) = Node::new(origin, config) else {
        return;
    };
    let mut now = origin;
    for chunk in data.split(|b| *b == 0xFF) {
        node.handle_datagram(now, local, server, chunk);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
        now += Duration::from_millis(100);
        node.handle_timeout(now);
    }
}

/// Parses arbitrary bytes as a JSON signal and, as SDP, through the first pass; a signal
/// must survive re-encoding, a cleaned SDP must pass again unchanged, and an offer goes
/// all the way to str0m's SDP parser and `accept_offer` (`origin` as for
/// [`node_datagrams`]). Every branch must end in a value or an error, never a panic.
pub fn sdp_signal(origin: Instant, data: &[u8]) {
    if let Ok(signal) = Signal::parse(data) {
        let again = Signal::parse(signal.to_json().as_bytes());
        assert_eq!(
            again.as_ref(),
            Ok(&signal),
            "re-encoding changed the signal"
        );
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(remote) = sdp::inspect(&text) {
        let again = sdp::inspect(&remote.cleaned).map(|r| r.cleaned);
        assert_eq!(
            again.as_ref(),
            Ok(&remote.cleaned),
            "cleaning is not idempotent"
        );
        let local = SocketAddr::from(([10, 0, 0, 1], 4000));
        let offer = Signal::Offer {
            sdp: text.into_owned(),
        };
        if let Ok((mut peer, _)) = PeerConnection::answer(
            origin,
            PeerConfig::default(),
            local,
            Seed::from_u64(0),
            &offer,
        ) {
            peer.handle_timeout(origin + Duration::from_millis(50));
            while peer.poll_transmit().is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz bodies run over the committed seed corpus in every test run, so a crash
    /// found by the fuzzer and added to the corpus stays fixed.
    #[test]
    fn seed_corpus_replays_without_panics() {
        let origin = crate::test_clock::start();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");
        let mut replayed = 0;
        for target in [
            "stun_decode",
            "node_datagrams",
            "krpc_decode",
            "state_decode",
            "sdp_signal",
        ] {
            let dir = std::fs::read_dir(format!("{root}/{target}")).expect("corpus directory");
            for entry in dir {
                let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
                match target {
                    "stun_decode" => super::stun_decode(&data),
                    "krpc_decode" => super::krpc_decode(&data),
                    "state_decode" => super::state_decode(origin, &data),
                    "sdp_signal" => super::sdp_signal(origin, &data),
                    _ => super::node_datagrams(origin, &data),
                }
                replayed += 1;
            }
        }
        assert!(replayed >= 6, "only {replayed} corpus files");
    }
}
