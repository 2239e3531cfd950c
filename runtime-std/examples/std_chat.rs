//! A chat in a meeting with the blocking runtime: stdin lines go to every member,
//! messages are printed.
//!
//! ```sh
//! dhtmeet dht node --listen 127.0.0.1:6881 &          # a private DHT (and STUN server)
//! cargo run -p dhtmeet-std --example std_chat -- "$CODE" 127.0.0.1:6881
//! ```
//! (Get a code with `dhtmeet join --bootstrap none`, or use `Config::default()` for the
//! public Internet.)

use std::io::BufRead;

use dhtmeet_core::Event;
use dhtmeet_std::{Config, NodeHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [code, server] = args.as_slice() else {
        return Err("usage: std_chat CODE DHT_AND_STUN_ADDR".into());
    };
    let node = NodeHandle::start(Config::private(&[server], &[server]))?;
    let (me, _) = node.join(code)?;
    println!("joined as {me} on {}", node.local_addr());

    std::thread::scope(|scope| {
        scope.spawn(|| {
            for event in node.events() {
                match event {
                    Event::PeerConnected { member, .. } => println!("* {member} is here"),
                    Event::PeerDisconnected { member, reason } => {
                        println!("* {member} left ({reason:?})")
                    }
                    Event::Message { member, data } => {
                        println!("<{member}> {}", String::from_utf8_lossy(&data))
                    }
                    _ => {}
                }
            }
        });
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            node.broadcast(line.as_bytes());
        }
        node.close() // Leave the meeting; the event loop above ends.
    })?;
    Ok(())
}
