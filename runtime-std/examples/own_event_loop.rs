//! Driving the sans-IO core from your own event loop, with no runtime crate: the whole
//! contract is five calls. Here the loop is a plain blocking socket with a read timeout;
//! in your program it is whatever `poll`/`select`/reactor you already have.
//!
//! ```sh
//! cargo run -p dhtmeet-std --example own_event_loop -- 127.0.0.1:3478   # any STUN server
//! ```

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use dhtmeet_core::{Event, Node, NodeConfig, SansIo, Seed, canonical_remote};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stun = std::env::args()
        .nth(1)
        .ok_or("usage: own_event_loop STUN_ADDR")?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let local = socket.local_addr()?;
    let mut config = NodeConfig::new(Seed(rand_seed()));
    config.stun.servers = vec![stun.parse()?];
    config.dht = None; // Only STUN here; a meeting needs the DHT too.
    config.local_addr = Some(local);
    let mut node = Node::new(Instant::now(), config)?;
    let mut buf = vec![0u8; 65_535];
    let give_up = Instant::now() + Duration::from_secs(15);
    loop {
        // 1. Send everything the core wants sent.
        while let Some(t) = node.poll_transmit() {
            socket.send_to(&t.contents, t.destination)?;
        }
        // 2. Hand its events to the application.
        while let Some(event) = node.poll_event() {
            if let Event::AddressDiscovered(report) = event {
                println!(
                    "public address: {} ({})",
                    report.first.mapped,
                    report.mapping.as_str()
                );
                return Ok(());
            }
        }
        // 3. Sleep until a datagram arrives or the core's next deadline.
        let now = Instant::now();
        if now > give_up {
            return Err("no STUN answer".into());
        }
        let deadline = node.poll_timeout().unwrap_or(give_up).min(give_up);
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            // 4. Datagrams in, with the time.
            Ok((n, from)) => {
                node.handle_datagram(Instant::now(), local, canonical_remote(from), &buf[..n])
            }
            // 5. Deadlines in, with the time (spurious calls are harmless).
            Err(_) => node.handle_timeout(Instant::now()),
        }
    }
}

/// The core takes its randomness from the caller; here from the clock and the pid,
/// which is enough for an example (use `dhtmeet_std::random_seed` in real code).
fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    seed[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    seed
}
