//! # dhtmeet-runtime: what both runtimes share
//!
//! `dhtmeet-std` (a node on a thread) and `dhtmeet-smol` (a node as a task) are two
//! adapters over the same pieces, which live here so that neither runtime depends on
//! the other:
//!
//! * [`Config`] and [`prepare`]: what an embedder configures, turned into a bound
//!   socket and a core `NodeConfig` (name resolution, binding, the local address, the
//!   saved state loaded).
//! * [`StateDir`]: the state directory (slots, locks, atomic writes).
//! * [`policy`]: the runtime-neutral, IO-free policy of a running node — the
//!   application's [`Command`](policy::Command)s, event delivery to a bounded queue
//!   without ever stalling the node, sends waiting for room, and when to save. It
//!   touches no socket, file or clock: it tells the adapter what to do
//!   ([`Output`](policy::Output)) and the adapter does it.
//! * The small socket facts both drivers follow ([`MAX_READ_BATCH`], [`burst_step`],
//!   [`is_transient`], [`enlarge_buffers`]) and the pool of extra sockets a machine may
//!   ask for ([`pool`]).
//!
//! Embedders use the runtimes, which re-export what they need from here.

#![deny(missing_docs)]

mod config;
pub mod event_log;
pub mod policy;
pub mod pool;
pub mod state_dir;

pub use config::{
    Config, DHT_PORT, MAINLINE_ROUTERS, PUBLIC_STUN_SERVERS, Prepared, Resumed, STUN_PORT,
    StartError, bind, host_address, local_ip_towards, prepare, resolve_blocking,
};
pub use state_dir::StateDir;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use dhtmeet_core::{SavedState, Seed};

/// Writes what an [`Output::Save`](policy::Output::Save) carries; a failure is a
/// warning, since the meeting goes on without it (both runtimes' adapters).
pub fn write_state(dir: &StateDir, state: &SavedState) {
    if let Err(e) = dir.save(state) {
        tracing::error!(file = %dir.path().display(), error = %e, "cannot save state");
    }
}

/// Datagrams a driver reads in one go after a wakeup, before it sends and polls (both
/// runtimes): a burst is read while it fits the socket buffer and settled once.
pub const MAX_READ_BATCH: usize = 64;

/// Commands queued to a node's thread or task at most (a sender beyond it waits).
pub const COMMAND_QUEUE: usize = 256;

/// How long a stopping node keeps running so its byes reach the others.
pub const LINGER: Duration = Duration::from_millis(300);

/// A seed for a node's randomness from the operating system (the core never reads OS
/// randomness itself).
pub fn random_seed() -> io::Result<Seed> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(io::Error::other)?;
    Ok(Seed(seed))
}

/// The socket buffers a driver asks the OS for. A node's bursts (a data channel's
/// congestion window, DHT answers) can exceed the default 208 KiB; a datagram dropped
/// there costs SCTP a retransmission timeout of at least one second. The OS may grant
/// less (Linux caps it at `net.core.rmem_max`).
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Asks for [`SOCKET_BUFFER`]-sized receive and send buffers; a refusal is not an
/// error (the defaults still work, only more slowly under bursts).
pub fn enlarge_buffers(socket: &UdpSocket) {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the receive buffer");
    }
    if let Err(e) = s.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the send buffer");
    }
}

/// What a driver counted that the state machine never saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams the OS refused to send (unreachable network, wrong family, …): lost,
    /// like datagrams lost on the wire; protocols retransmit.
    pub send_errors: u64,
    /// Datagrams received and handed to the machine.
    pub received: u64,
    /// Wake-ups from a waker (std only; not handed to the machine).
    pub wakeups: u64,
    /// Datagrams whose `source_port` named no open pool socket: dropped.
    pub no_pool_socket: u64,
}

/// Errors a UDP receive loop carries on after: time-outs, and the ICMP errors Linux
/// reports on the next call for an earlier datagram.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// What a driver does with one non-blocking read of a burst (see [`burst_step`]).
#[derive(Debug)]
pub enum BurstStep {
    /// A datagram of this length from this address: hand it to the machine.
    Datagram(usize, SocketAddr),
    /// A transient error (an ICMP report for an earlier send): read on.
    Skip,
    /// Nothing more is waiting: the burst is over.
    Done,
    /// The socket failed: stop the node with this error.
    Fatal(io::Error),
}

/// Sorts the outcome of one non-blocking read after a wakeup: the socket being empty
/// ends the burst, a transient error is skipped, and any other error is fatal to the
/// node, as it would be on the blocking read (both drivers).
pub fn burst_step(read: io::Result<(usize, SocketAddr)>) -> BurstStep {
    match read {
        Ok((len, from)) => BurstStep::Datagram(len, from),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => BurstStep::Done,
        Err(e) if is_transient(&e) => BurstStep::Skip,
        Err(e) => BurstStep::Fatal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_ends_on_would_block_skips_icmp_reports_and_fails_on_anything_else() {
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(matches!(burst_step(Ok((3, from))), BurstStep::Datagram(3, f) if f == from));
        let err = |kind| Err(io::Error::from(kind));
        assert!(matches!(
            burst_step(err(io::ErrorKind::WouldBlock)),
            BurstStep::Done
        ));
        assert!(matches!(
            burst_step(err(io::ErrorKind::ConnectionRefused)),
            BurstStep::Skip
        ));
        for fatal in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidInput,
            io::ErrorKind::OutOfMemory,
        ] {
            assert!(
                matches!(burst_step(err(fatal)), BurstStep::Fatal(e) if e.kind() == fatal),
                "{fatal:?}"
            );
        }
    }
}
