//! STUN codec and client benchmarks, with `stun-types` (the reference decoder of the
//! stun-proto project) on the same bytes in the same run. After the run, the ratio of
//! our medians to theirs is printed.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use dhtmeet_benches::median_ns;
use dhtmeet_core::stun::wire::{self, Message, TransactionId};
use dhtmeet_core::stun::{BindingClient, BindingServer, StunConfig, StunEvent};
use dhtmeet_core::{SansIo, Seed};

/// RFC 5769 §2.2: the sample IPv4 Binding success response (80 bytes).
const RFC5769_IPV4_RESPONSE: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae\
    8022000b7465737420766563746f7220002000080001a147e112a643\
    000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn parse(c: &mut Criterion) {
    let bytes = hex(RFC5769_IPV4_RESPONSE);
    let mut g = c.benchmark_group("stun_parse_rfc5769_response");
    g.bench_function("dhtmeet", |b| {
        b.iter(|| {
            let msg = Message::decode(black_box(&bytes)).unwrap();
            black_box(msg.xor_mapped_address())
        })
    });
    g.bench_function("stun-types", |b| {
        use stun_types::attribute::XorMappedAddress;
        b.iter(|| {
            let msg = stun_types::message::Message::from_bytes(black_box(&bytes)).unwrap();
            let xor = msg.attribute::<XorMappedAddress>().unwrap();
            black_box(xor.addr(msg.transaction_id()))
        })
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("stun_build_binding_request");
    g.bench_function("dhtmeet", |b| {
        b.iter(|| wire::binding_request(black_box(TransactionId([7; 12]))))
    });
    g.bench_function("stun-types", |b| {
        use stun_types::message::{
            BINDING, Message, MessageClass, MessageType, MessageWrite, MessageWriteExt,
            MessageWriteVec,
        };
        b.iter(|| {
            let mut m = Message::builder(
                MessageType::from_class_method(MessageClass::Request, BINDING),
                black_box(0x0707_0707_0707_0707_0707_0707u128).into(),
                MessageWriteVec::new(),
            );
            m.add_fingerprint().unwrap();
            m.finish()
        })
    });
    g.finish();
}

/// A whole client transaction in memory: the client's request, our responder's answer,
/// the client's handling of it and its `Finished` event.
fn transaction(c: &mut Criterion) {
    let server: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let me: SocketAddr = "198.51.100.2:4000".parse().unwrap();
    let start = Instant::now();
    let config = StunConfig {
        servers: vec![server],
        retry_interval: None,
        ..Default::default()
    };
    let mut responder = BindingServer::new();
    c.bench_function("stun_client_transaction_in_memory", |b| {
        b.iter(|| {
            let mut client = BindingClient::new(config.clone(), Seed([1; 32]), start).unwrap();
            let request = client.poll_transmit().unwrap();
            responder.handle_datagram(start, server, me, &request.contents);
            let response = responder.poll_transmit().unwrap();
            let now = start + Duration::from_millis(20);
            client.handle_datagram(now, me, server, &response.contents);
            loop {
                if let Some(StunEvent::Finished(r)) = client.poll_event() {
                    break black_box(r);
                }
            }
        })
    });
}

criterion_group!(benches, parse, build, transaction);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    for group in ["stun_parse_rfc5769_response", "stun_build_binding_request"] {
        if let (Some(ours), Some(theirs)) =
            (median_ns(group, "dhtmeet"), median_ns(group, "stun-types"))
        {
            println!(
                "{group}: dhtmeet {ours:.1} ns, stun-types {theirs:.1} ns, ratio dhtmeet/stun-types = {:.2}",
                ours / theirs
            );
        }
    }
}
