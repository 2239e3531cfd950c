//! # dhtmeet-std: the blocking runtime
//!
//! Drives any dhtmeet state machine (anything implementing [`SansIo`]) over a
//! `std::net::UdpSocket` on the calling thread. The loop is thin on purpose: read the
//! socket into `handle_datagram`, send what `poll_transmit` gives, hand events to the
//! caller, and wait for the socket with a read timeout set to the next `poll_timeout`.
//! There is no protocol logic here.
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::ops::ControlFlow;
//! use std::time::{Duration, Instant};
//! use dhtmeet_core::{Event, Node, NodeConfig};
//! use dhtmeet_std::{Driver, random_seed};
//!
//! let socket = UdpSocket::bind("0.0.0.0:0")?;
//! let mut config = NodeConfig::new(random_seed()?);
//! config.stun.servers = vec!["127.0.0.1:3478".parse().unwrap()];
//! let node = Node::new(config, Instant::now()).expect("valid config");
//! let mut driver = Driver::new(socket, node)?;
//! let deadline = Instant::now() + Duration::from_secs(15);
//! let found = driver.run(Some(deadline), |_node, event| match event {
//!     Event::AddressDiscovered(report) => ControlFlow::Break(report.first.mapped),
//!     Event::StunUnreachable(e) => { eprintln!("{e}"); ControlFlow::Continue(()) }
//!     _ => ControlFlow::Continue(()),
//! })?;
//! println!("public address: {found:?}");
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

pub use dhtmeet_core::{SansIo, Seed};
use dhtmeet_core::{canonical_remote, socket_destination};

pub mod state_dir;
pub use state_dir::StateDir;

/// The largest UDP payload; the receive buffer has this size so nothing is truncated.
const MAX_DATAGRAM: usize = 65_535;

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
}

/// A blocking driver of one state machine over one UDP socket.
#[derive(Debug)]
pub struct Driver<M> {
    socket: UdpSocket,
    local: SocketAddr,
    machine: M,
    buf: Vec<u8>,
    stats: DriverStats,
}

impl<M: SansIo> Driver<M> {
    /// Takes ownership of a bound socket and the machine it serves.
    pub fn new(socket: UdpSocket, machine: M) -> io::Result<Self> {
        let local = socket.local_addr()?;
        enlarge_buffers(&socket);
        Ok(Driver {
            socket,
            local,
            machine,
            buf: vec![0; MAX_DATAGRAM],
            stats: DriverStats::default(),
        })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The state machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The state machine, for API calls between runs.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// What the driver counted.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Gives back the socket and the machine.
    pub fn into_parts(self) -> (UdpSocket, M) {
        (self.socket, self.machine)
    }

    /// Runs until `on_event` returns `Break(value)` (then `Ok(Some(value))`) or until
    /// `deadline` passes (then `Ok(None)`). Socket errors other than the ICMP-driven
    /// ones a UDP socket reports for earlier sends end the run with `Err`.
    pub fn run<T>(
        &mut self,
        deadline: Option<Instant>,
        mut on_event: impl FnMut(&mut M, M::Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        loop {
            self.flush();
            while let Some(event) = self.machine.poll_event() {
                if let ControlFlow::Break(value) = on_event(&mut self.machine, event) {
                    self.flush();
                    return Ok(Some(value));
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(None);
            }
            let timeout = self.machine.poll_timeout();
            if timeout.is_some_and(|t| t <= now) {
                self.machine.handle_timeout(now);
                continue;
            }
            let wake = timeout.into_iter().chain(deadline).min();
            // A zero read timeout means "block forever" to std: wait at least 1 ms.
            let wait = wake.map(|w| {
                w.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            self.socket.set_read_timeout(wait)?;
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, from)) => {
                    self.stats.received += 1;
                    let remote = canonical_remote(from);
                    self.machine.handle_datagram(
                        Instant::now(),
                        self.local,
                        remote,
                        &self.buf[..len],
                    );
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            let sent = socket_destination(self.local, t.destination)
                .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))
                .and_then(|to| self.socket.send_to(&t.contents, to));
            match sent {
                Ok(_) => self.stats.sent += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    tracing::debug!(destination = %t.destination, error = %e, "send failed");
                }
            }
        }
    }
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
