//! What a running node says about itself in the log, at levels that mean something:
//! `info` for normal operation (its address, the DHT ready, members connected and gone:
//! a handful of lines per meeting, never one per message or datagram), `warn` for trouble
//! it recovers from (no STUN answer, no bootstrap node, a session being retried, a member
//! lost), `debug` for the details (DHT lookups and addresses found). `error` is left to
//! what stops a node or loses its state (the drivers and the state directory).

use dhtmeet_core::Event;
use dhtmeet_core::PeerGone;

/// Logs one node event at its level (both runtimes' handles call it for every event).
pub fn log_event(event: &Event) {
    match event {
        Event::AddressDiscovered(report) => tracing::info!(
            address = %report.first.mapped,
            server = %report.first.server,
            mapping = ?report.mapping,
            "public address discovered"
        ),
        Event::StunUnreachable(e) => tracing::warn!("{e}"),
        Event::DhtReady { nodes } => tracing::info!(nodes, "DHT ready"),
        Event::DhtBootstrapFailed => tracing::warn!("no DHT bootstrap node answered; retrying"),
        Event::PeerConnected { member, via } => {
            tracing::info!(%member, via = via.as_str(), "member connected");
        }
        Event::PeerReconnecting {
            member,
            reason,
            attempt,
        } => tracing::warn!(%member, ?reason, attempt, "session to a member failed; retrying"),
        Event::PeerDisconnected { member, reason } => match reason {
            PeerGone::Left | PeerGone::WeLeft => tracing::info!(%member, ?reason, "member left"),
            PeerGone::Failed(_) => tracing::warn!(%member, ?reason, "member lost"),
        },
        Event::PeerConnecting { member, addr } => {
            tracing::debug!(%member, %addr, "member answered; connecting")
        }
        Event::PeerDiscovered { addr } => tracing::debug!(%addr, "address found under the topic"),
        Event::PeersFound { info_hash, peers } => {
            tracing::debug!(?info_hash, peers = peers.len(), "DHT peers found")
        }
        Event::LookupDone(summary) => tracing::debug!(?summary, "DHT lookup done"),
        // Per message: never logged (the application sees them).
        Event::Message { .. } | Event::Writable { .. } => {}
        _ => tracing::debug!(?event, "event"),
    }
}

/// Logs the error that stopped a node's thread or task (its socket failed): the one
/// place it is seen while the application runs (the handle returns it only at shutdown).
pub fn log_node_stopped(error: &std::io::Error) {
    tracing::error!(%error, "the node stopped: its socket failed");
}
