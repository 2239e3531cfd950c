//! [`NodeHandle`]: a node running as a task, for async programs.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Instant;

use dhtmeet_core::CodeStrength;
use dhtmeet_core::MemberId;
use dhtmeet_core::SendError;
use dhtmeet_core::{Event, Health, JoinError, Node};
use dhtmeet_runtime::policy::{Command, Output, Policy, Reply};
use dhtmeet_runtime::write_state;
use dhtmeet_runtime::{COMMAND_QUEUE, Config, LINGER, Resumed, StartError, StateDir, prepare};
use smol::channel::{Receiver, Sender, TrySendError};

use crate::Driver;

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
///             Event::PeerConnected { member, .. } => node.send(&member, b"hello").await?,
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
        let node = Node::new(Instant::now(), prepared.node)?;
        let state = prepared.state;
        let policy = Policy::new(node, queue, state.is_some(), Instant::now());
        let driver = Driver::new(prepared.socket, policy).map_err(|source| StartError::Bind {
            addr: local,
            source,
        })?;
        let (commands, command_rx) = smol::channel::bounded(COMMAND_QUEUE);
        let (event_tx, events) = smol::channel::bounded(queue);
        let task = smol::spawn(async move {
            let mut driver = driver;
            serve(&mut driver, command_rx, event_tx, state)
                .await
                .inspect_err(dhtmeet_runtime::event_log::log_node_stopped)
        });
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

/// The node task: commands and datagrams until a `Shutdown` command, the command
/// channel closing (the handle dropped) or a fatal socket error; then the policy's
/// shutdown, once (byes, the last save), and a linger.
async fn serve(
    driver: &mut Driver<Policy>,
    commands: Receiver<Command>,
    events: Sender<Event>,
    state: Option<StateDir>,
) -> io::Result<()> {
    let ran = driver
        .run_with_input(
            None,
            Some(&commands),
            |policy, command, now| policy.apply(command, now),
            |policy, output| {
                take(policy, output, &events, state.as_ref());
                ControlFlow::Continue(())
            },
        )
        .await;
    driver.machine_mut().shutdown(Instant::now());
    // Byes out, then a moment for them to leave and be acknowledged.
    let _ = driver
        .run(Some(Instant::now() + LINGER), |policy, output| {
            take(policy, output, &events, state.as_ref());
            ControlFlow::<()>::Continue(())
        })
        .await;
    ran.map(|_| ())
}

/// Does what the policy asks: an event to the application's queue without waiting
/// (back to the policy when the queue is full), a save to the state directory.
fn take(policy: &mut Policy, output: Output, events: &Sender<Event>, state: Option<&StateDir>) {
    match output {
        Output::Event(event) => match events.try_send(event) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(event)) => policy.refused(event, Instant::now()),
        },
        Output::Save(saved) => {
            if let Some(dir) = state {
                write_state(dir, &saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhtmeet_core::{NodeConfig, Seed};

    #[test]
    fn a_shutdown_command_saves_the_state_once() {
        let dir =
            std::env::temp_dir().join(format!("dhtmeet-smol-save-once-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).expect("state dir");
        let file = state.path().to_path_buf();
        let now = Instant::now();
        let node = Node::new(now, NodeConfig::new(Seed::from_u64(3))).expect("valid config");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut driver = Driver::new(socket, Policy::new(node, 8, true, now)).unwrap();
        let (commands, command_rx) = smol::channel::bounded(1);
        let (event_tx, _events) = smol::channel::bounded(8);
        commands.try_send(Command::Shutdown).unwrap();
        smol::block_on(serve(&mut driver, command_rx, event_tx, Some(state))).unwrap();
        assert_eq!(driver.machine().saves(), 1, "saved once");
        assert!(file.exists(), "the save was written");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
