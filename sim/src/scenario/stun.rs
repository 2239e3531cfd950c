//! `stun`: a host behind a NAT preset asks two STUN servers for its address.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use dhtmeet_core::stun::StunReport;
use dhtmeet_core::{Event, Node, NodeConfig, Seed};

use super::{LAN_HOST, STUN_SERVERS, ScenarioError, access_link, server_link, site_public};
use crate::engine::{PcapSummary, Sim, SimStats};
use crate::preset::NatPreset;
use crate::topology::{HostSpec, Realm};
use crate::trace::TraceHash;

/// Virtual time the scenario waits for the report.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What the `stun` scenario found.
#[derive(Debug)]
pub struct StunOutcome {
    /// The seed of the run.
    pub seed: u64,
    /// The preset the client sat behind.
    pub preset: NatPreset,
    /// The client's own socket.
    pub local: SocketAddr,
    /// The client's STUN report (mapped addresses, mapping class).
    pub report: StunReport,
    /// The hash of the run's trace.
    pub trace_hash: TraceHash,
    /// Counters of the run.
    pub stats: SimStats,
    /// What the pcap capture holds, if one was written.
    pub pcap: Option<PcapSummary>,
}

/// Runs the scenario with `seed`, capturing to `pcap` if given.
pub fn run(
    preset: NatPreset,
    seed: u64,
    pcap: Option<Box<dyn Write>>,
) -> Result<StunOutcome, ScenarioError> {
    let mut sim: Sim<Node> = Sim::new(Seed::from_u64(seed));
    if let Some(out) = pcap {
        sim.capture_pcap(out)?;
    }
    for (i, &addr) in STUN_SERVERS.iter().enumerate() {
        let name = format!("stun-{}", i + 1);
        let node = Node::new(sim.now(), NodeConfig::new(sim.host_seed(&name)))?;
        let spec = HostSpec::new(name, Realm::Internet, addr).with_link(server_link());
        sim.add_host(spec, node)?;
    }
    let (realm, local, client_link) = match preset {
        NatPreset::Open => (
            Realm::Internet,
            SocketAddr::new(site_public(1), LAN_HOST.port()),
            access_link(),
        ),
        _ => {
            let realm = preset.install(
                &mut sim,
                "client",
                Realm::Internet,
                site_public(1),
                access_link(),
            )?;
            (realm, LAN_HOST, Default::default())
        }
    };
    let mut config = NodeConfig::new(sim.host_seed("client"));
    config.stun.servers = STUN_SERVERS.to_vec();
    config.stun.retry_interval = None;
    let node = Node::new(sim.now(), config)?;
    let client = sim.add_host(
        HostSpec::new("client", realm, local).with_link(client_link),
        node,
    )?;
    let report = loop {
        match sim.run_until_event(DEADLINE) {
            Some(e) if e.host == client => {
                // Other events (a later core may report more) are not this scenario's.
                let event = e.event;
                if let Event::StunUnreachable(_) = &event {
                    return Err(ScenarioError::Failed {
                        what: "no STUN server answered",
                        after: sim.elapsed(),
                        hash: sim.trace_hash(),
                    });
                }
                if let Event::AddressDiscovered(report) = event {
                    break report;
                }
            }
            Some(_) => continue,
            None => {
                return Err(ScenarioError::Failed {
                    what: "no STUN report",
                    after: sim.elapsed(),
                    hash: sim.trace_hash(),
                });
            }
        }
    };
    let pcap = sim.finish_pcap()?;
    Ok(StunOutcome {
        seed,
        preset,
        local,
        report,
        trace_hash: sim.trace_hash(),
        stats: sim.stats(),
        pcap,
    })
}
