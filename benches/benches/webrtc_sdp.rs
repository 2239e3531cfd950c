//! The SDP path: parsing a real Chromium 156 offer (our first pass plus str0m's parser,
//! beside str0m's parser alone in the same run), parsing its JSON signal, and the CPU
//! cost of a whole offer/answer setup in memory until both data channels are open.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use dhtmeet_benches::median_ns;
use dhtmeet_core::webrtc::SessionEvent;
use dhtmeet_core::webrtc::{PeerConfig, PeerConnection, Signal, sdp};
use dhtmeet_core::{SansIo, Seed};
use str0m::change::SdpOffer;

const OFFER: &str = include_str!("../data/chromium-156-offer.sdp");

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("sdp_parse");
    g.bench_function("inspect_then_str0m", |b| {
        b.iter(|| {
            let r = sdp::inspect(black_box(OFFER)).unwrap();
            SdpOffer::from_sdp_string(&r.cleaned).unwrap()
        })
    });
    g.bench_function("str0m_alone", |b| {
        b.iter(|| SdpOffer::from_sdp_string(black_box(OFFER)).unwrap())
    });
    let json = Signal::Offer { sdp: OFFER.into() }.to_json();
    g.bench_function("signal_json", |b| {
        b.iter(|| Signal::parse(black_box(json.as_bytes())).unwrap())
    });
    g.finish();
}

/// Offer, answer and ICE/DTLS/SCTP at zero delay until both channels are open.
fn setup_once(seed: u64, now: Instant) -> Duration {
    let a_addr = SocketAddr::from(([10, 0, 0, 1], 5000));
    let b_addr = SocketAddr::from(([10, 0, 0, 2], 6000));
    let root = Seed::from_u64(seed);
    let (mut a, offer) =
        PeerConnection::offer(now, PeerConfig::default(), a_addr, root.child("a")).unwrap();
    let (mut b, answer) =
        PeerConnection::answer(now, PeerConfig::default(), b_addr, root.child("b"), &offer)
            .unwrap();
    a.handle_signal(now, &answer).unwrap();
    let mut t = now;
    let (mut a_open, mut b_open) = (false, false);
    while !(a_open && b_open) {
        while let Some(x) = a.poll_transmit() {
            b.handle_datagram(t, b_addr, a_addr, &x.contents);
        }
        while let Some(x) = b.poll_transmit() {
            a.handle_datagram(t, a_addr, b_addr, &x.contents);
        }
        while let Some(e) = a.poll_event() {
            a_open |= e == SessionEvent::Connected;
        }
        while let Some(e) = b.poll_event() {
            b_open |= e == SessionEvent::Connected;
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(t + Duration::from_millis(1));
        t = next.max(t);
        a.handle_timeout(t);
        b.handle_timeout(t);
        assert!(t < now + Duration::from_secs(10), "no connection");
    }
    t - now
}

fn setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("sdp_setup");
    g.sample_size(20);
    let mut seed = 0;
    g.bench_function("offer_answer_until_open", |b| {
        b.iter(|| {
            seed += 1;
            let now = Instant::now();
            setup_once(seed, now)
        })
    });
    g.finish();
}

criterion_group!(benches, parse, setup);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if let (Some(ours), Some(theirs)) = (
        median_ns("sdp_parse", "inspect_then_str0m"),
        median_ns("sdp_parse", "str0m_alone"),
    ) {
        println!(
            "first pass + str0m: {ours:.0} ns, str0m alone: {theirs:.0} ns (ratio {:.2})",
            ours / theirs
        );
    }
}
