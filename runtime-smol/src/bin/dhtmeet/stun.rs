//! `dhtmeet stun`: one discovery round against the given servers.

use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::{
    AllServersFailed, BindingClient, Observation, StunConfig, StunConfigError, StunEvent,
    StunReport,
};
use dhtmeet_smol::{Driver, random_seed, resolve_all};

use crate::net_args::StunServers;

/// The well-known STUN port (RFC 8489 §18.6), used when a server has no port.
pub(crate) const STUN_PORT: u16 = 3478;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Local address to bind (default: 0.0.0.0:0, or [::]:0 if a server is IPv6).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Give up on a server after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// STUN servers (host, host:port, ip:port); default: $STUN_SERVERS (empty: unset).
    #[arg(value_name = "SERVER")]
    servers: Vec<String>,
}

/// Why `dhtmeet stun` failed, each case saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StunCliError {
    #[error("no STUN server given: pass SERVER... or set STUN_SERVERS")]
    NoServers,
    #[error("STUN servers set to none: nothing to ask")]
    ServersNone,
    #[error("--timeout must be a positive number of seconds, not {0}")]
    BadTimeout(f64),
    #[error("{0} (check the server names)")]
    Resolve(std::io::Error),
    #[error("cannot bind {addr}: {source} (give another --bind address)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no OS randomness: {0}")]
    Randomness(std::io::Error),
    #[error("STUN: {0}")]
    Config(StunConfigError),
    #[error("socket error: {0}")]
    Socket(std::io::Error),
    #[error("{error}: {servers} (timeout {timeout:.1} s each; is outgoing UDP allowed?)")]
    NoAnswer {
        error: AllServersFailed,
        servers: String,
        timeout: f64,
    },
    #[error("the STUN client stopped without a result")]
    Stopped,
}

pub(crate) async fn run(args: Args) -> Result<(), StunCliError> {
    let names = match crate::net_args::stun_servers(&args.servers) {
        StunServers::Given(names) => names,
        StunServers::Default => {
            return Err(StunCliError::NoServers);
        }
        StunServers::None => return Err(StunCliError::ServersNone),
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(StunCliError::BadTimeout(args.timeout));
    }
    let servers = resolve_all(&names, STUN_PORT)
        .await
        .map_err(StunCliError::Resolve)?;
    let (report, local) =
        discover(servers, args.bind, Duration::from_secs_f64(args.timeout)).await?;
    if args.json {
        println!("{}", report_json(&report, local));
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Runs one round; the report and the local address the socket was bound to.
pub(crate) async fn discover(
    servers: Vec<SocketAddr>,
    bind: Option<SocketAddr>,
    query_timeout: Duration,
) -> Result<(StunReport, SocketAddr), StunCliError> {
    let bind = bind.unwrap_or_else(|| {
        let unspecified = if servers.iter().all(SocketAddr::is_ipv4) {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        unspecified.parse().expect("a literal address")
    });
    let socket =
        UdpSocket::bind(bind).map_err(|source| StunCliError::Bind { addr: bind, source })?;
    let tried = servers.clone();
    let config = StunConfig {
        servers,
        query_timeout,
        retry_interval: None,
        ..StunConfig::default()
    };
    let seed = random_seed().map_err(StunCliError::Randomness)?;
    let client = BindingClient::new(config, seed, Instant::now()).map_err(StunCliError::Config)?;
    let mut driver = Driver::new(socket, client).map_err(StunCliError::Socket)?;
    let local = driver.local_addr();
    let outcome = driver
        .run(None, |_, event| match event {
            StunEvent::Observed(o) => {
                tracing::info!(server = %o.server, mapped = %o.mapped, "answer");
                ControlFlow::Continue(())
            }
            StunEvent::ServerFailed { server, reason } => {
                tracing::warn!(%server, %reason, "STUN server failed");
                ControlFlow::Continue(())
            }
            StunEvent::Finished(result) => ControlFlow::Break(result),
        })
        .await
        .map_err(StunCliError::Socket)?;
    match outcome {
        Some(Ok(report)) => Ok((report, local)),
        Some(Err(error)) => {
            let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
            Err(StunCliError::NoAnswer {
                error,
                servers: list.join(", "),
                timeout: query_timeout.as_secs_f64(),
            })
        }
        None => Err(StunCliError::Stopped),
    }
}

fn rtt_ms(o: &Observation) -> f64 {
    o.rtt.as_secs_f64() * 1000.0
}

fn print_report(report: &StunReport) {
    let first = &report.first;
    println!("{}", first.mapped);
    println!("server:  {}", first.server);
    println!("rtt:     {:.1} ms", rtt_ms(first));
    println!("mapping: {}", report.mapping.as_str());
    for o in &report.observations[1..] {
        println!(
            "also:    {} saw {} ({:.1} ms)",
            o.server,
            o.mapped,
            rtt_ms(o)
        );
    }
}

pub(crate) fn report_json(report: &StunReport, local: SocketAddr) -> serde_json::Value {
    let observations: Vec<_> = report
        .observations
        .iter()
        .map(|o| {
            serde_json::json!({
                "server": o.server.to_string(),
                "mapped": o.mapped.to_string(),
                "rtt_ms": rtt_ms(o),
            })
        })
        .collect();
    serde_json::json!({
        "mapped": report.first.mapped.to_string(),
        "server": report.first.server.to_string(),
        "rtt_ms": rtt_ms(&report.first),
        "mapping": report.mapping.as_str(),
        "local": local.to_string(),
        "observations": observations,
    })
}
