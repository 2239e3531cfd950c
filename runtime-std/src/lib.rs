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
//! let node = Node::new(Instant::now(), config).expect("valid config");
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

mod handle;
mod pool;

pub use dhtmeet_runtime::{
    Config, DHT_PORT, DriverStats, MAINLINE_ROUTERS, MAX_READ_BATCH, PUBLIC_STUN_SERVERS, Prepared,
    Resumed, SOCKET_BUFFER, STUN_PORT, StartError, StateDir, bind, enlarge_buffers, host_address,
    is_transient, local_ip_towards, policy, prepare, random_seed, resolve_blocking, state_dir,
};
pub use handle::{Events, NodeHandle};

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use dhtmeet_core::{SansIo, Seed};
use dhtmeet_core::{canonical_remote, socket_destination};
use dhtmeet_runtime::pool::SocketPool;
use dhtmeet_runtime::{BurstStep, burst_step};

/// The largest UDP payload; the receive buffer has this size so nothing is truncated.
const MAX_DATAGRAM: usize = 65_535;

/// A blocking driver of one state machine over one UDP socket.
#[derive(Debug)]
pub struct Driver<M> {
    socket: UdpSocket,
    local: SocketAddr,
    machine: M,
    buf: Vec<u8>,
    stats: DriverStats,
    wakers: Vec<SocketAddr>,
    /// The machine's extra sockets (`pool.rs`); closed with the driver.
    pool: SocketPool<UdpSocket>,
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
            pool: SocketPool::default(),
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

    /// Gives back the socket and the machine; the pool sockets are closed.
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
            if !self.pool.is_empty() {
                self.wait_with_pool(wait)?;
                continue;
            }
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
            match burst_step(self.socket.recv_from(&mut self.buf)) {
                BurstStep::Datagram(len, from) => self.deliver(len, from),
                BurstStep::Skip => {}
                BurstStep::Done => break,
                BurstStep::Fatal(e) => {
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

    /// Sends what the machine has to send and does what it asks of its pool, until it
    /// has nothing more for either.
    fn flush(&mut self) {
        loop {
            self.send_all();
            if !self.apply_socket_commands() {
                break;
            }
        }
    }

    fn send_all(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            if t.source_port.is_some() || t.ttl.is_some() {
                self.send_special(&t);
                continue;
            }
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
