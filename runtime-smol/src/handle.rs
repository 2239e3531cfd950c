//! [`NodeHandle`]: a node running as a task, for async programs.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Instant;

use dhtmeet_core::meeting::code::CodeStrength;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::webrtc::SendError;
use dhtmeet_core::{Event, Health, JoinError, Node};
use dhtmeet_std::service::{Command, Reply, Service, may_drop_when_full};
use dhtmeet_std::{Config, Resumed, StartError, prepare};
use smol::channel::{Receiver, Sender};

use crate::Driver;

/// Commands queued to the node task at most (a sender beyond it waits).
const COMMAND_QUEUE: usize = 256;
/// How long a leaving node keeps running so its byes reach the others.
const LINGER: std::time::Duration = std::time::Duration::from_millis(300);

/// A dhtmeet node running as a task on smol's executor; this handle sends it requests,
/// and its events are a [`Stream`](futures_lite::Stream).
///
/// ```no_run
/// use dhtmeet_core::Event;
/// use dhtmeet_smol::{Config, NodeHandle};
/// use futures_lite::StreamExt;
///
/// smol::block_on(async {
///     let config = Config::private(&["192.0.2.10:3478"], &["192.0.2.10:6881"]);
///     let node = NodeHandle::start(config).await?;
///     node.join("some invitation code words here").await.expect("valid code");
///     let mut events = std::pin::pin!(node.events());
///     while let Some(event) = events.next().await {
///         match event {
///             Event::PeerConnected { member } => node.send(&member, b"hello").await?,
///             Event::Message { member, data } => println!("{member}: {data:?}"),
///             _ => {}
///         }
///     }
///     node.shutdown().await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NodeHandle {
    commands: Sender<Command>,
    events: Receiver<Event>,
    local: SocketAddr,
    resumed: Option<Resumed>,
    task: Option<smol::Task<io::Result<()>>>,
}

impl NodeHandle {
    /// Resolves the configured names (on a blocking thread), binds the socket and starts
    /// the node task.
    pub async fn start(config: Config) -> Result<NodeHandle, StartError> {
        let queue = config.event_queue.max(1);
        let prepared = smol::unblock(move || prepare(&config)).await?;
        let local = prepared.node.local_addr.ok_or(StartError::NoLocalAddress)?;
        let prepared_resumed = prepared.resumed.clone();
        let node = Node::new(prepared.node, Instant::now())?;
        let service = Service::with_state(node, prepared.state, Instant::now());
        let driver = Driver::new(prepared.socket, service).map_err(|source| StartError::Bind {
            addr: local,
            source,
        })?;
        let (commands, command_rx) = smol::channel::bounded(COMMAND_QUEUE);
        let (event_tx, events) = smol::channel::bounded(queue);
        let task = smol::spawn(serve(driver, command_rx, event_tx));
        Ok(NodeHandle {
            commands,
            events,
            local,
            resumed: prepared_resumed,
            task: Some(task),
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

    /// The node's events, as a stream (clones share one queue). It ends when the node
    /// stops.
    pub fn events(&self) -> Receiver<Event> {
        self.events.clone()
    }

    /// Joins the meeting of `code`; see [`Node::join`].
    pub async fn join(&self, code: &str) -> Result<(MemberId, CodeStrength), JoinError> {
        self.join_with(code, false).await
    }

    /// Like [`NodeHandle::join`]; `allow_weak_code` accepts a typed code too weak to
    /// protect the meeting.
    pub async fn join_with(
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
        .await
        .unwrap_or(Err(JoinError::Stopped))
    }

    /// Sends `data` to `member`; waits while its queue is full (back-pressure).
    pub async fn send(&self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        self.send_inner(member, data, true).await
    }

    /// Sends without waiting: a full queue is [`SendError::WouldBlock`].
    pub async fn try_send(&self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        self.send_inner(member, data, false).await
    }

    async fn send_inner(
        &self,
        member: &MemberId,
        data: &[u8],
        wait: bool,
    ) -> Result<(), SendError> {
        let (member, data) = (*member, data.to_vec());
        self.ask(|reply| Command::Send {
            member,
            data,
            wait,
            reply,
        })
        .await
        .unwrap_or(Err(SendError::Closed))
    }

    /// Sends `data` to every connected member; returns those whose queue was full.
    pub async fn broadcast(&self, data: &[u8]) -> Vec<MemberId> {
        let data = data.to_vec();
        self.ask(|reply| Command::Broadcast { data, reply })
            .await
            .unwrap_or_default()
    }

    /// A snapshot of the node's health (`None` once the node stopped).
    pub async fn health(&self) -> Option<Health> {
        self.ask(|reply| Command::Health { reply }).await
    }

    /// Leaves the meeting (byes to every member); the node keeps running.
    pub async fn leave(&self) {
        let _ = self.ask(|reply| Command::Leave { reply }).await;
    }

    /// Leaves, lets the byes go out, and waits for the task to end (socket closed).
    pub async fn shutdown(mut self) -> io::Result<()> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let _ = self.commands.send(Command::Shutdown).await;
        // Nobody reads events any more: never let a full queue hold the task.
        self.events.close();
        task.await
    }

    async fn ask<T: Send + 'static>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        let (tx, rx) = smol::channel::bounded(1);
        let reply: Reply<T> = Box::new(move |value| {
            let _ = tx.try_send(value);
        });
        self.commands.send(command(reply)).await.ok()?;
        rx.recv().await.ok()
    }
}

impl Drop for NodeHandle {
    /// Stops the node cleanly in the background: the task leaves the meeting, lets the
    /// byes go out and closes the socket.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // A closed command channel is the task's signal to shut down.
            self.commands.close();
            self.events.close();
            task.detach();
        }
    }
}

enum Stop {
    /// The event queue is full: deliver this one, waiting, then go on.
    Deliver(Event),
    Shutdown,
}

async fn serve(
    mut driver: Driver<Service>,
    commands: Receiver<Command>,
    events: Sender<Event>,
) -> io::Result<()> {
    loop {
        let stop = driver
            .run_with_input(
                None,
                Some(&commands),
                |service, command, now| match service.apply(command, now) {
                    ControlFlow::Break(()) => ControlFlow::Break(Stop::Shutdown),
                    ControlFlow::Continue(()) => ControlFlow::Continue(()),
                },
                |_, event| match events.try_send(event) {
                    Ok(()) | Err(smol::channel::TrySendError::Closed(_)) => {
                        ControlFlow::Continue(())
                    }
                    Err(smol::channel::TrySendError::Full(event)) if may_drop_when_full(&event) => {
                        ControlFlow::Continue(())
                    }
                    Err(smol::channel::TrySendError::Full(event)) => {
                        ControlFlow::Break(Stop::Deliver(event))
                    }
                },
            )
            .await?;
        match stop {
            Some(Stop::Deliver(event)) => {
                let _ = events.send(event).await;
            }
            Some(Stop::Shutdown) | None => break,
        }
    }
    driver.machine_mut().shutdown(Instant::now());
    let _ = driver
        .run(Some(Instant::now() + LINGER), |_, event| {
            let _ = events.try_send(event);
            ControlFlow::<()>::Continue(())
        })
        .await;
    Ok(())
}
