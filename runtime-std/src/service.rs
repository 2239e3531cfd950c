//! The application's requests to a running node, shared by both runtimes' handles.
//!
//! A handle sends [`Command`]s over a channel to the thread or task that owns the
//! socket; the [`Service`] applies them to the core [`Node`] between two datagrams and
//! answers through the command's reply. The only state it adds is the sends that met a
//! full queue: they wait for the member's `Writable` event (back-pressure) or its
//! departure, never in an unbounded buffer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::meeting::code::CodeStrength;
use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::webrtc::SendError;
use dhtmeet_core::{Event, Health, JoinError, Node, SansIo, Transmit};

use crate::StateDir;

/// How often a node that keeps state saves it (also: when a member connects, and at
/// shutdown).
pub const SAVE_EVERY: Duration = Duration::from_secs(60);

/// How a command's answer travels back: each runtime wraps its own channel.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Sends waiting for room at most, over all members: a caller beyond it gets
/// [`SendError::WouldBlock`] at once.
pub const MAX_PARKED_SENDS: usize = 64;

/// Whether a runtime may drop `event` when the application's event queue is full
/// instead of waiting for room: `Writable` is a hint the next one repeats, and waiting
/// for it would let a sender that never reads events stall its own node.
pub fn may_drop_when_full(event: &Event) -> bool {
    matches!(event, Event::Writable { .. })
}

/// A request to the node.
pub enum Command {
    /// Join the meeting of `code`.
    Join {
        /// The invitation code.
        code: String,
        /// Accept a typed code that is too weak.
        allow_weak_code: bool,
        /// Our member id and the code's strength, or why not.
        reply: Reply<Result<(MemberId, CodeStrength), JoinError>>,
    },
    /// Send a message to one member; answered once the message is queued (after waiting
    /// for room if the queue was full) or refused.
    Send {
        /// The member.
        member: MemberId,
        /// The message.
        data: Vec<u8>,
        /// Whether to wait for room when the queue is full.
        wait: bool,
        /// The outcome.
        reply: Reply<Result<(), SendError>>,
    },
    /// Send a message to every connected member; answered with the members whose queue
    /// was full (they did not get it).
    Broadcast {
        /// The message.
        data: Vec<u8>,
        /// The members that were skipped.
        reply: Reply<Vec<MemberId>>,
    },
    /// A health snapshot.
    Health {
        /// The snapshot.
        reply: Reply<Health>,
    },
    /// Leave the meeting (byes to every member); the node keeps running.
    Leave {
        /// Answered when done.
        reply: Reply<()>,
    },
    /// Leave and stop the node.
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Join { .. } => "Join",
            Command::Send { .. } => "Send",
            Command::Broadcast { .. } => "Broadcast",
            Command::Health { .. } => "Health",
            Command::Leave { .. } => "Leave",
            Command::Shutdown => "Shutdown",
        };
        f.write_str(name)
    }
}

struct Parked {
    member: MemberId,
    data: Vec<u8>,
    reply: Reply<Result<(), SendError>>,
}

/// The core node plus the sends waiting for room and the state file: the state machine
/// a handle's driver runs.
pub struct Service {
    node: Node,
    parked: VecDeque<Parked>,
    state: Option<StateDir>,
    next_save: Option<Instant>,
    now: Instant,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.node)
            .field("parked", &self.parked.len())
            .finish()
    }
}

impl Service {
    /// Serves `node`, keeping no state.
    pub fn new(node: Node, now: Instant) -> Self {
        Service::with_state(node, None, now)
    }

    /// Serves `node`, saving its state into `state` every [`SAVE_EVERY`], when a member
    /// connects and at shutdown.
    pub fn with_state(node: Node, state: Option<StateDir>, now: Instant) -> Self {
        let next_save = state.as_ref().map(|_| now + SAVE_EVERY);
        Service {
            node,
            parked: VecDeque::new(),
            state,
            next_save,
            now,
        }
    }

    /// Saves the node's state now (a failure is a warning: the meeting goes on).
    pub fn save_state(&mut self) {
        let Some(dir) = &self.state else {
            return;
        };
        self.next_save = Some(self.now + SAVE_EVERY);
        if let Err(e) = dir.save(&self.node.export_state()) {
            tracing::warn!(file = %dir.path().display(), error = %e, "cannot save state");
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, mutably.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Applies one command at `now`; `Break` asks the runtime to stop (after
    /// [`Service::shutdown`]).
    pub fn apply(&mut self, command: Command, now: Instant) -> ControlFlow<()> {
        self.now = self.now.max(now);
        match command {
            Command::Join {
                code,
                allow_weak_code,
                reply,
            } => reply(self.node.join(&code, allow_weak_code, now)),
            Command::Send {
                member,
                data,
                wait,
                reply,
            } => {
                // Keep the order of one member's messages: behind a parked one, park.
                if self.parked.iter().any(|p| p.member == member) {
                    self.park(member, data, wait, reply);
                } else {
                    match self.node.send(&member, &data) {
                        Err(SendError::WouldBlock) => self.park(member, data, wait, reply),
                        other => reply(other),
                    }
                }
            }
            Command::Broadcast { data, reply } => reply(self.node.broadcast(&data)),
            Command::Health { reply } => reply(self.node.health()),
            Command::Leave { reply } => {
                self.node.leave(now);
                self.fail_parked(|_| true);
                reply(());
            }
            Command::Shutdown => {
                self.shutdown(now);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Leaves the meeting, refuses every waiting send and saves the state.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.node.leave(now);
        self.fail_parked(|_| true);
        self.save_state();
    }

    fn park(
        &mut self,
        member: MemberId,
        data: Vec<u8>,
        wait: bool,
        reply: Reply<Result<(), SendError>>,
    ) {
        if !wait || self.parked.len() >= MAX_PARKED_SENDS {
            reply(Err(SendError::WouldBlock));
            return;
        }
        self.parked.push_back(Parked {
            member,
            data,
            reply,
        });
    }

    fn fail_parked(&mut self, which: impl Fn(&MemberId) -> bool) {
        let (fail, keep): (VecDeque<Parked>, VecDeque<Parked>) =
            self.parked.drain(..).partition(|p| which(&p.member));
        self.parked = keep;
        for p in fail {
            (p.reply)(Err(SendError::Closed));
        }
    }

    /// Retries `member`'s waiting sends in order until one meets a full queue again.
    fn retry(&mut self, member: MemberId) {
        let mut i = 0;
        while i < self.parked.len() {
            if self.parked[i].member != member {
                i += 1;
                continue;
            }
            match self.node.send(&member, &self.parked[i].data) {
                Err(SendError::WouldBlock) => return,
                outcome => {
                    if let Some(p) = self.parked.remove(i) {
                        (p.reply)(outcome);
                    }
                }
            }
        }
    }
}

impl SansIo for Service {
    type Event = Event;

    fn handle_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        self.now = self.now.max(now);
        self.node.handle_datagram(now, local, remote, d);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.node.handle_timeout(now);
        if self.next_save.is_some_and(|t| t <= now) {
            self.save_state();
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.node.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        let event = self.node.poll_event()?;
        match &event {
            Event::Writable { member } => self.retry(*member),
            Event::PeerDisconnected { member, .. } => {
                let gone = *member;
                self.fail_parked(|m| *m == gone);
            }
            // The moment a restart would most like to remember.
            Event::PeerConnected { .. } => self.save_state(),
            _ => {}
        }
        Some(event)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.node.poll_timeout(), self.next_save) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
