//! # dhtmeet-smol: the async runtime
//!
//! Drives any dhtmeet state machine (anything implementing [`SansIo`]) over an
//! `async-io` UDP socket, with `async-io` timers: the same thin loop as `dhtmeet-std`,
//! awaiting the socket or the next `poll_timeout`, whichever comes first. It also holds
//! the `dhtmeet` command.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use std::time::Instant;
//! use dhtmeet_core::{Event, Node, NodeConfig};
//! use dhtmeet_smol::{Driver, random_seed};
//!
//! smol::block_on(async {
//!     let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
//!     let mut config = NodeConfig::new(random_seed()?);
//!     config.stun.servers = dhtmeet_smol::resolve_all(&["127.0.0.1:3478"], 3478).await?;
//!     let node = Node::new(Instant::now(), config).expect("valid config");
//!     let mut driver = Driver::new(socket, node)?;
//!     let mapped = driver
//!         .run(None, |_node, event| match event {
//!             Event::AddressDiscovered(report) => ControlFlow::Break(report.first.mapped),
//!             _ => ControlFlow::Continue(()),
//!         })
//!         .await?;
//!     println!("{mapped:?}");
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;

pub use dhtmeet_core::{SansIo, Seed};
use dhtmeet_core::{canonical_remote, socket_destination};
use dhtmeet_runtime::pool::SocketPool;
use dhtmeet_runtime::{BurstStep, burst_step};
pub use dhtmeet_runtime::{
    Config, DHT_PORT, DriverStats, MAINLINE_ROUTERS, MAX_READ_BATCH, PUBLIC_STUN_SERVERS, Resumed,
    SOCKET_BUFFER, STUN_PORT, StartError, StateDir, enlarge_buffers, is_transient, policy,
    random_seed, state_dir,
};
pub use handle::NodeHandle;

mod handle;
mod pool;

const MAX_DATAGRAM: usize = 65_535;

/// An async driver of one state machine over one UDP socket.
#[derive(Debug)]
pub struct Driver<M> {
    socket: Async<UdpSocket>,
    local: SocketAddr,
    machine: M,
    buf: Vec<u8>,
    stats: DriverStats,
    /// The machine's extra sockets (`pool.rs`); closed with the driver.
    pool: SocketPool<Async<UdpSocket>>,
}

enum Wake<I> {
    Datagram(io::Result<(usize, SocketAddr)>),
    /// The pool socket of this index is readable.
    Pool(usize),
    Timer,
    Input(Option<I>),
}

impl<M: SansIo> Driver<M> {
    /// Takes ownership of a bound socket (made non-blocking here) and the machine.
    pub fn new(socket: UdpSocket, machine: M) -> io::Result<Self> {
        let local = socket.local_addr()?;
        enlarge_buffers(&socket);
        let socket = Async::new(socket)?;
        Ok(Driver {
            socket,
            local,
            machine,
            buf: vec![0; MAX_DATAGRAM],
            stats: DriverStats::default(),
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

    /// Runs until `on_event` returns `Break(value)` (then `Ok(Some(value))`) or until
    /// `deadline` passes (then `Ok(None)`). Dropping the future stops the run cleanly:
    /// the machine stays in the driver, consistent, between two inputs.
    pub async fn run<T>(
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
        .await
    }

    /// Like [`Driver::run`], and also hands whatever arrives on `input` (application
    /// commands: lines to send, a leave request …) to `on_input` with the current time,
    /// between two datagrams; `on_input` may end the run too, and so does the channel
    /// closing (every sender dropped), with `Ok(None)`.
    pub async fn run_with_input<I, T>(
        &mut self,
        deadline: Option<Instant>,
        input: Option<&smol::channel::Receiver<I>>,
        mut on_input: impl FnMut(&mut M, I, Instant) -> ControlFlow<T>,
        mut on_event: impl FnMut(&mut M, M::Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        loop {
            self.flush().await;
            while let Some(event) = self.machine.poll_event() {
                if let ControlFlow::Break(value) = on_event(&mut self.machine, event) {
                    self.flush().await;
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
            let recv = async { Wake::Datagram(self.socket.recv_from(&mut self.buf).await) };
            let pool = async { Wake::Pool(pool::readable(&self.pool).await) };
            let timer = async {
                match wake {
                    Some(at) => Timer::at(at).await,
                    None => Timer::never().await,
                };
                Wake::Timer
            };
            let command = async {
                match input {
                    Some(rx) => Wake::Input(rx.recv().await.ok()),
                    None => future::pending().await,
                }
            };
            match future::or(recv, future::or(pool, future::or(timer, command))).await {
                Wake::Datagram(Ok((len, from))) => {
                    self.deliver(len, from);
                    // Take what else is already waiting before sending and polling, so a
                    // burst is read while it fits the socket's buffer.
                    // A fatal error stops the node, as on the awaited read.
                    for _ in 0..MAX_READ_BATCH {
                        match burst_step(self.socket.get_ref().recv_from(&mut self.buf)) {
                            BurstStep::Datagram(len, from) => self.deliver(len, from),
                            BurstStep::Skip => {}
                            BurstStep::Done => break,
                            BurstStep::Fatal(e) => return Err(e),
                        }
                    }
                }
                Wake::Pool(index) => self.read_pool_socket(index),
                Wake::Datagram(Err(e)) if is_transient(&e) => {}
                Wake::Datagram(Err(e)) => return Err(e),
                Wake::Timer => {}
                Wake::Input(Some(item)) => {
                    if let ControlFlow::Break(value) =
                        on_input(&mut self.machine, item, Instant::now())
                    {
                        self.flush().await;
                        return Ok(Some(value));
                    }
                }
                Wake::Input(None) => return Ok(None),
            }
        }
    }

    /// Hands the datagram in `buf[..len]` to the machine.
    fn deliver(&mut self, len: usize, from: SocketAddr) {
        self.stats.received += 1;
        let remote = canonical_remote(from);
        self.machine
            .handle_datagram(Instant::now(), self.local, remote, &self.buf[..len]);
    }

    /// Sends what the machine has to send and does what it asks of its pool, until it
    /// has nothing more for either.
    async fn flush(&mut self) {
        loop {
            self.send_all().await;
            if !self.apply_socket_commands() {
                break;
            }
        }
    }

    async fn send_all(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            if t.source_port.is_some() || t.ttl.is_some() {
                self.send_special(&t).await;
                continue;
            }
            let sent = match socket_destination(self.local, t.destination) {
                Some(to) => self.socket.send_to(&t.contents, to).await,
                None => Err(io::Error::from(io::ErrorKind::Unsupported)),
            };
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

/// Resolves `host:port`, `host` (with `default_port`), `ip:port` or `[ipv6]:port`
/// entries to socket addresses, in order, without duplicates, on smol's blocking pool
/// ([`dhtmeet_runtime::resolve_blocking`]). Name resolution happens here in the runtime,
/// never in the core.
pub async fn resolve_all(
    entries: &[impl AsRef<str>],
    default_port: u16,
) -> io::Result<Vec<SocketAddr>> {
    let entries: Vec<String> = entries.iter().map(|e| e.as_ref().to_owned()).collect();
    smol::unblock(move || dhtmeet_runtime::resolve_blocking(&entries, default_port))
        .await
        .map_err(|e| {
            let kind = match &e {
                dhtmeet_runtime::StartError::Resolve { source, .. } => source.kind(),
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, e.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_literals_and_localhost_with_default_ports() {
        smol::block_on(async {
            let got = resolve_all(
                &["127.0.0.1:1", "127.0.0.1", "[::1]:9", " ", "127.0.0.1:1"],
                3478,
            )
            .await
            .unwrap();
            let want: Vec<SocketAddr> = vec![
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:3478".parse().unwrap(),
                "[::1]:9".parse().unwrap(),
            ];
            assert_eq!(got, want);
            let local = resolve_all(&["localhost:5"], 3478).await.unwrap();
            assert!(
                local.iter().all(|a| a.ip().is_loopback() && a.port() == 5),
                "{local:?}"
            );
        });
    }
}
