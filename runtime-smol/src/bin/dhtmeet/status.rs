//! `dhtmeet status`: start a node, let it reach STUN and the DHT, print the health
//! snapshot and what to do about anything that failed. Also the health printer `join`
//! uses for its `/status` command.

use std::io;
use std::time::{Duration, Instant};

use dhtmeet_core::{Event, Health};
use dhtmeet_smol::{NodeHandle, StartError};
use futures_lite::future;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    net: crate::net_args::NetArgs,
    /// Seconds to wait for STUN and the DHT.
    #[arg(long, default_value_t = 10.0)]
    wait: f64,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Why `dhtmeet status` failed, each case saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    /// The node could not start (the port, the addresses, the names).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The node's task ended before it gave its health.
    #[error("the node stopped before reporting its health (run again with DEBUG=1 to see why)")]
    NodeStopped,
    /// The socket failed while the node shut down.
    #[error("socket error while leaving: {0}")]
    Shutdown(io::Error),
    /// The check ran, and found problems (each printed with what to do).
    #[error("{0} problem(s) found (what to do about each is printed above)")]
    Problems(usize),
}

/// The health snapshot as JSON.
pub(crate) fn health_json(h: &Health) -> serde_json::Value {
    let s = &h.stats;
    serde_json::json!({
        "initialised": h.initialised,
        "stun_reachable": h.stun_reachable,
        "public_address": h.public_address.map(|a| a.to_string()),
        "mapping": h.mapping.as_str(),
        "nat": h.nat.to_string(),
        "nat_observations": h.nat_observations,
        "dht_ready": h.dht_ready,
        "routing_table_size": h.routing_table_size,
        "dht_read_only": h.dht_read_only,
        "active_peers": h.peers.len(),
        "peers": h.peers.iter().map(|p| serde_json::json!({
            "peer": p.member.to_string(),
            "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
            "bytes_sent": p.bytes.0,
            "bytes_received": p.bytes.1,
        })).collect::<Vec<_>>(),
        "bytes_sent": s.bytes_sent,
        "bytes_received": s.bytes_received,
        "messages_sent": s.messages_sent,
        "messages_received": s.messages_received,
        "datagrams_received": s.datagrams_received,
    })
}

/// The health snapshot as lines of text.
pub(crate) fn health_text(h: &Health) -> String {
    let s = &h.stats;
    let mut out = String::new();
    let stun = match (h.stun_reachable, h.public_address) {
        (true, Some(a)) => format!(
            "reachable; public address {a} ({} mapping)",
            h.mapping.as_str()
        ),
        (true, None) => "reachable".into(),
        (false, _) => "not reachable (yet)".into(),
    };
    out.push_str(&format!("STUN:     {stun}\n"));
    out.push_str(&format!(
        "NAT:      {} ({} observations of our address)\n",
        h.nat, h.nat_observations
    ));
    let mut dht = if h.dht_ready {
        format!("ready, {} nodes in the routing table", h.routing_table_size)
    } else {
        format!("not ready ({} nodes so far)", h.routing_table_size)
    };
    if h.dht_read_only {
        dht.push_str("; read-only (BEP 43: asks, answers no DHT queries)");
    }
    out.push_str(&format!("DHT:      {dht}\n"));
    out.push_str(&format!(
        "members:  {} connected; sent {} messages / {} bytes, received {} / {}\n",
        h.peers.len(),
        s.messages_sent,
        s.bytes_sent,
        s.messages_received,
        s.bytes_received
    ));
    for p in &h.peers {
        let rtt = p.rtt.map_or("?".into(), |r| {
            format!("{:.1} ms", r.as_secs_f64() * 1000.0)
        });
        out.push_str(&format!(
            "  {}  rtt {rtt}, sent {} B, received {} B\n",
            p.member, p.bytes.0, p.bytes.1
        ));
    }
    out
}

/// What a person can do about an unhealthy snapshot (empty when all is well).
pub(crate) fn advice(h: &Health, stun_configured: bool, bootstrap_configured: bool) -> Vec<String> {
    let mut out = Vec::new();
    if stun_configured && !h.stun_reachable {
        out.push(
            "no STUN server answered: check --stun / STUN_SERVERS and that outgoing UDP is allowed \
             (without STUN, members outside your network cannot reach you)"
                .into(),
        );
    }
    if bootstrap_configured && !h.dht_ready {
        out.push(
            "no DHT node answered: check --bootstrap, your network connection, and that outgoing \
             UDP is allowed"
                .into(),
        );
    }
    out
}

pub(crate) async fn run(args: Args) -> Result<(), StatusError> {
    let config = args.net.config();
    let (stun_configured, bootstrap_configured) = (
        !config.stun_servers.is_empty(),
        !config.bootstrap.is_empty(),
    );
    let node = NodeHandle::start(config).await?;
    let events = node.events();
    let until = Instant::now() + Duration::from_secs_f64(args.wait.max(0.0));
    let (mut stun_done, mut dht_done) = (!stun_configured, !bootstrap_configured);
    while !(stun_done && dht_done) {
        let next = future::or(async { events.recv().await.ok() }, async {
            smol::Timer::at(until).await;
            None
        })
        .await;
        match next {
            None => break,
            Some(Event::AddressDiscovered(_) | Event::StunUnreachable(_)) => stun_done = true,
            Some(Event::DhtReady { .. } | Event::DhtBootstrapFailed) => dht_done = true,
            Some(_) => {}
        }
    }
    let health = node.health().await.ok_or(StatusError::NodeStopped)?;
    let advice = advice(&health, stun_configured, bootstrap_configured);
    if args.json {
        let mut v = health_json(&health);
        v["local"] = node.local_addr().to_string().into();
        v["problems"] = advice.clone().into();
        println!("{v}");
    } else {
        println!("local:    {}", node.local_addr());
        print!("{}", health_text(&health));
        for a in &advice {
            println!("problem:  {a}");
        }
    }
    node.shutdown().await.map_err(StatusError::Shutdown)?;
    if advice.is_empty() {
        Ok(())
    } else {
        Err(StatusError::Problems(advice.len()))
    }
}
