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

mod config;
pub mod event_log;
mod handle;
pub mod service;

pub use config::{
    Config, DHT_PORT, MAINLINE_ROUTERS, PUBLIC_STUN_SERVERS, Prepared, Resumed, STUN_PORT,
    StartError, bind, host_address, local_ip_towards, prepare, resolve_blocking,
};
pub use handle::{Events, NodeHandle};

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use dhtmeet_core::{SansIo, Seed};
use dhtmeet_core::{canonical_remote, socket_destination};

pub mod state_dir;
pub use state_dir::StateDir;

/// The largest UDP payload; the receive buffer has this size so nothing is truncated.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams a driver reads in one go after a wakeup, before it sends and polls (both
/// runtimes): a burst is read while it fits the socket buffer and settled once.
pub const MAX_READ_BATCH: usize = 64;

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
    /// Wake-ups from a [`Waker`] (not handed to the machine).
    pub wakeups: u64,
}

/// A blocking driver of one state machine over one UDP socket.
#[derive(Debug)]
pub struct Driver<M> {
    socket: UdpSocket,
    local: SocketAddr,
    machine: M,
    buf: Vec<u8>,
    stats: DriverStats,
    wakers: Vec<SocketAddr>,
}

/// Wakes a blocked [`Driver`] from another thread (see [`Driver::waker`]).
#[derive(Debug)]
pub struct Waker {
    socket: UdpSocket,
}

impl Waker {
    /// Wakes the driver; a lost wake-up only delays input until the next datagram or
    /// timer.
    pub fn wake(&self) {
        let _ = self.socket.send(&[0]);
    }
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
            wakers: Vec::new(),
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
        on_event: impl FnMut(&mut M, M::Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        self.run_with_input::<(), T>(
            deadline,
            None,
            |_, (), _| ControlFlow::Continue(()),
            on_event,
        )
    }

    /// Like [`Driver::run`], and also hands whatever arrives on `input` (application
    /// commands) to `on_input` with the current time, between two datagrams; `on_input`
    /// may end the run too. The sender wakes the blocked driver with a [`Waker`] from
    /// [`Driver::waker`]; without one, input waits for the next datagram or timer.
    pub fn run_with_input<I, T>(
        &mut self,
        deadline: Option<Instant>,
        input: Option<&mpsc::Receiver<I>>,
        mut on_input: impl FnMut(&mut M, I, Instant) -> ControlFlow<T>,
        mut on_event: impl FnMut(&mut M, M::Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        loop {
            if let Some(rx) = input {
                while let Ok(item) = rx.try_recv() {
                    if let ControlFlow::Break(value) =
                        on_input(&mut self.machine, item, Instant::now())
                    {
                        self.drain_events(&mut on_event);
                        self.flush();
                        return Ok(Some(value));
                    }
                }
            }
            self.flush();
            if let Some(value) = self.drain_events(&mut on_event) {
                self.flush();
                return Ok(Some(value));
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
                    self.deliver(len, from);
                    self.read_ready()?;
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Hands the datagram in `buf[..len]` to the machine (or counts a wake-up).
    fn deliver(&mut self, len: usize, from: SocketAddr) {
        if self.wakers.contains(&from) {
            self.stats.wakeups += 1;
            return;
        }
        self.stats.received += 1;
        let remote = canonical_remote(from);
        self.machine
            .handle_datagram(Instant::now(), self.local, remote, &self.buf[..len]);
    }

    /// Takes what else is already waiting (up to [`MAX_READ_BATCH`] datagrams) before
    /// sending and polling, so a burst is read while it fits the socket's buffer and the
    /// machine settles it once (see `Session` in the core).
    fn read_ready(&mut self) -> io::Result<()> {
        self.socket.set_nonblocking(true)?;
        let mut result = Ok(());
        for _ in 0..MAX_READ_BATCH {
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, from)) => self.deliver(len, from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.socket.set_nonblocking(false)?;
        result
    }

    /// A way for another thread to wake this driver out of its blocking read (after
    /// putting a command on the input channel): a loopback datagram from a socket the
    /// driver knows, swallowed before the machine sees it.
    pub fn waker(&mut self) -> io::Result<Waker> {
        let target = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, self.local.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, self.local.port()))
            }
            _ => self.local,
        };
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(target)?;
        let from = socket.local_addr()?;
        self.wakers.push(from);
        // A dual-stack socket sees an IPv4 sender as IPv4-mapped IPv6.
        if let SocketAddr::V4(v4) = from {
            self.wakers
                .push(SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()));
        }
        Ok(Waker { socket })
    }

    fn drain_events<T>(
        &mut self,
        on_event: &mut impl FnMut(&mut M, M::Event) -> ControlFlow<T>,
    ) -> Option<T> {
        while let Some(event) = self.machine.poll_event() {
            if let ControlFlow::Break(value) = on_event(&mut self.machine, event) {
                return Some(value);
            }
        }
        None
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
