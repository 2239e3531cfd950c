//! A chat in a meeting with the async runtime: stdin lines go to every member, messages
//! are printed.
//!
//! ```sh
//! dhtmeet dht node --listen 127.0.0.1:6881 &          # a private DHT (and STUN server)
//! cargo run -p dhtmeet-smol --example smol_chat -- "$CODE" 127.0.0.1:6881
//! ```

use dhtmeet_core::Event;
use dhtmeet_smol::{Config, NodeHandle};
use futures_lite::{AsyncBufReadExt, StreamExt, future};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [code, server] = args.as_slice() else {
        return Err("usage: smol_chat CODE DHT_AND_STUN_ADDR".into());
    };
    smol::block_on(async {
        let node = NodeHandle::start(Config::private(&[server], &[server])).await?;
        let (me, _) = node.join(code).await?;
        println!("joined as {me} on {}", node.local_addr());

        let printer = async {
            let mut events = std::pin::pin!(node.events());
            while let Some(event) = events.next().await {
                match event {
                    Event::PeerConnected { member, .. } => println!("* {member} is here"),
                    Event::Message { member, data } => {
                        println!("<{member}> {}", String::from_utf8_lossy(&data))
                    }
                    _ => {}
                }
            }
        };
        let typer = async {
            let mut lines = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
            while let Some(Ok(line)) = lines.next().await {
                node.broadcast(line.as_bytes()).await;
            }
        };
        future::zip(printer, typer).await;
        node.shutdown().await?;
        Ok(())
    })
}
