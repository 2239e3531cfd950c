//! [`NodeHandle`]: a node running on its own thread, for blocking programs.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dhtmeet_core::CodeStrength;
use dhtmeet_core::MemberId;
use dhtmeet_core::SendError;
use dhtmeet_core::{Event, Health, JoinError, Node};
use dhtmeet_runtime::policy::{Command, Output, Policy, Reply};
use dhtmeet_runtime::{COMMAND_QUEUE, LINGER, write_state};

use crate::{Config, Driver, Resumed, StartError, StateDir, Waker, prepare};

/// A dhtmeet node on its own thread: the socket, the timers and the core live there;
/// this handle sends it requests and receives its events.
///
/// ```no_run
/// use dhtmeet_core::Event;
/// use dhtmeet_std::{Config, NodeHandle};
///
/// let config = Config::private(&["192.0.2.10:3478"], &["192.0.2.10:6881"]);
/// let node = NodeHandle::start(config)?;
/// let (me, _) = node.join("some invitation code words here").expect("valid code");
/// println!("I am {me}");
/// for event in node.events() {
///     match event {
///         Event::PeerConnected { member, .. } => node.send(&member, b"hello")?,
///         Event::Message { member, data } => println!("{member}: {data:?}"),
///         _ => {}
///     }
/// }
/// node.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NodeHandle {
    commands: mpsc::SyncSender<Command>,
    waker: Waker,
    events: Mutex<mpsc::Receiver<Event>>,
    local: SocketAddr,
    resumed: Option<Resumed>,
    thread: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl NodeHandle {
    /// Resolves the configured names, binds the socket and starts the node thread.
    pub fn start(config: Config) -> Result<NodeHandle, StartError> {
        let prepared = prepare(&config)?;
        let local = prepared.node.local_addr.ok_or(StartError::NoLocalAddress)?;
        let prepared_resumed = prepared.resumed.clone();
        let node = Node::new(Instant::now(), prepared.node)?;
        let bind_error = |source| StartError::Bind {
            addr: local,
            source,
        };
        let state = prepared.state;
        let policy = Policy::new(node, config.event_queue, state.is_some(), Instant::now());
        let mut driver = Driver::new(prepared.socket, policy).map_err(bind_error)?;
        let waker = driver.waker().map_err(bind_error)?;
        let (commands, command_rx) = mpsc::sync_channel(COMMAND_QUEUE);
        let (event_tx, events) = mpsc::sync_channel(config.event_queue.max(1));
        let thread = std::thread::Builder::new()
            .name("dhtmeet-node".into())
            .spawn(move || {
                serve(driver, command_rx, event_tx, state)
                    .inspect_err(dhtmeet_runtime::event_log::log_node_stopped)
            })
            .map_err(bind_error)?;
        Ok(NodeHandle {
            commands,
            waker,
            events: Mutex::new(events),
            local,
            resumed: prepared_resumed,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The node's own address (its host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What the node resumed from, if it keeps state and found a usable saved state.
    pub fn resumed(&self) -> Option<&Resumed> {
        self.resumed.as_ref()
    }

    /// The node's events, in order: iterating blocks for the next one and ends when
    /// the node stops. The handle is `Sync`: one thread may read events while others
    /// send (each event goes to one reader).
    pub fn events(&self) -> Events<'_> {
        Events { handle: self }
    }

    /// The next event, waiting at most `timeout` (`None` on time-out or once the node
    /// stopped).
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.recv_timeout(timeout).ok()
    }

    /// Joins the meeting of `code`; see [`Node::join`].
    pub fn join(&self, code: &str) -> Result<(MemberId, CodeStrength), JoinError> {
        self.join_with(code, false)
    }

    /// Like [`NodeHandle::join`]; `allow_weak_code` accepts a typed code too weak to
    /// protect the meeting.
    pub fn join_with(
        &self,
        code: &str,
        allow_weak_code: bool,
    ) -> Result<(MemberId, CodeStrength), JoinError> {
        let code = code.to_owned();
        self.ask(|reply| Command::Join {
            code,
            allow_weak_code,
            reply,
        })
        .unwrap_or(Err(JoinError::Stopped))
    }

    /// Sends `data` to `member`, waiting while its queue is full (back-pressure).
    pub fn send(&self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        let (member, data) = (*member, data.to_vec());
        self.ask(|reply| Command::Send {
            member,
            data,
            wait: true,
            reply,
        })
        .unwrap_or(Err(SendError::Closed))
    }

    /// Sends `data` to `member` without waiting: a full queue is
    /// [`SendError::WouldBlock`] (retry after [`Event::Writable`]).
    pub fn try_send(&self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        let (member, data) = (*member, data.to_vec());
        self.ask(|reply| Command::Send {
            member,
            data,
            wait: false,
            reply,
        })
        .unwrap_or(Err(SendError::Closed))
    }

    /// Sends `data` to every connected member; returns those whose queue was full.
    pub fn broadcast(&self, data: &[u8]) -> Vec<MemberId> {
        let data = data.to_vec();
        self.ask(|reply| Command::Broadcast { data, reply })
            .unwrap_or_default()
    }

    /// A snapshot of the node's health (`None` once the node stopped).
    pub fn health(&self) -> Option<Health> {
        self.ask(|reply| Command::Health { reply })
    }

    /// Leaves the meeting (byes to every member); the node keeps running.
    pub fn leave(&self) {
        let _ = self.ask(|reply| Command::Leave { reply });
    }

    /// Leaves, lets the byes go out, stops the thread and closes the socket.
    pub fn shutdown(self) -> io::Result<()> {
        self.close()
    }

    /// Like [`NodeHandle::shutdown`], through a shared reference (for a handle shared
    /// between threads): afterwards every call fails and [`NodeHandle::events`] ends.
    /// Closing twice is harmless.
    pub fn close(&self) -> io::Result<()> {
        let taken = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(thread) = taken else {
            return Ok(());
        };
        let mut shutdown = Command::Shutdown;
        while let Err(mpsc::TrySendError::Full(back)) = self.commands.try_send(shutdown) {
            if thread.is_finished() {
                break;
            }
            shutdown = back;
            self.waker.wake();
            std::thread::sleep(Duration::from_millis(2));
        }
        self.waker.wake();
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the node thread panicked")))
    }

    /// Sends a command and waits for its answer (`None` if the node stopped).
    fn ask<T: Send + 'static>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let reply: Reply<T> = Box::new(move |value| {
            let _ = tx.send(value);
        });
        self.commands.send(command(reply)).ok()?;
        self.waker.wake();
        rx.recv().ok()
    }
}

/// The blocking iterator of [`NodeHandle::events`].
#[derive(Debug)]
pub struct Events<'a> {
    handle: &'a NodeHandle,
}

impl Iterator for Events<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let events = self.handle.events.lock().unwrap_or_else(|p| p.into_inner());
        events.recv().ok()
    }
}

impl Drop for NodeHandle {
    /// Shuts the node down cleanly (see [`NodeHandle::shutdown`]).
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The node thread: commands and datagrams until a `Shutdown` command (or a fatal
/// socket error), then the policy's shutdown (byes, the last save) and a linger.
fn serve(
    mut driver: Driver<Policy>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::SyncSender<Event>,
    state: Option<StateDir>,
) -> io::Result<()> {
    // Does what the policy asks: an event to the application's queue without waiting
    // (back to the policy when the queue is full), a save to the state directory.
    let mut take = |policy: &mut Policy, output: Output| {
        match output {
            Output::Event(event) => match events.try_send(event) {
                Ok(()) | Err(mpsc::TrySendError::Disconnected(_)) => {}
                Err(mpsc::TrySendError::Full(event)) => policy.refused(event, Instant::now()),
            },
            Output::Save(saved) => {
                if let Some(dir) = &state {
                    write_state(dir, &saved);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    };
    let ran = driver.run_with_input(
        None,
        Some(&commands),
        |policy, command, now| policy.apply(command, now),
        &mut take,
    );
    driver.machine_mut().shutdown(Instant::now());
    // Byes out, then a moment for them to leave and be acknowledged.
    let _ = driver.run(Some(Instant::now() + LINGER), &mut take);
    ran.map(|_| ())
}
