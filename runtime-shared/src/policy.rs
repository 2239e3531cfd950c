//! The policy of a running node, shared by both runtimes' handles: runtime-neutral and
//! IO-free.
//!
//! A handle sends [`Command`]s over a channel to the thread or task that owns the
//! socket; the adapter there drives a [`Policy`] (a [`SansIo`] machine around the core
//! [`Node`]) with its runtime's driver, applies each command with [`Policy::apply`],
//! and acts on what [`SansIo::poll_event`] gives ([`Output`]):
//!
//! * [`Output::Event`]: offer it to the application's bounded event queue without
//!   waiting; if the queue is full, hand it back with [`Policy::refused`]. The policy
//!   then holds it and what follows (see [`delivery`](self#event-delivery)) and asks
//!   for a retry through `poll_timeout`; the node never waits for the application.
//! * [`Output::Save`]: write the [`SavedState`] it carries (the adapter owns the file;
//!   the policy never touches one).
//!
//! The policy adds no protocol logic. Its only state is what the application and the
//! node wait for from each other: sends that met a full queue (they wait for the
//! member's `Writable` event or its departure, at most [`MAX_PARKED_SENDS`]), events the
//! application has no room for yet, and the save schedule.
//!
//! # Event delivery
//!
//! While the application's queue is full, events are held here in order and offered
//! again every [`RETRY_DELIVERY`]. What is held is bounded: as many events again as the
//! application's queue (`Config::event_queue`) and [`MAX_HELD_BYTES`] of messages.
//! `Writable` is never held (the next one repeats the hint). When the hold is full, a
//! new event is dropped and counted ([`Policy::dropped_events`], one warning per
//! stall) — except a member arriving or leaving (`PeerConnecting`, `PeerConnected`,
//! `PeerReconnecting`, `PeerDisconnected`), which takes the place of the oldest other
//! held event, so the application's list of members stays right.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::CodeStrength;
use dhtmeet_core::MemberId;
use dhtmeet_core::SendError;
use dhtmeet_core::{Event, Health, JoinError, Node, SansIo, SavedState, SocketCommand, Transmit};

mod delivery;

use delivery::Delivery;
pub use delivery::{MAX_HELD_BYTES, RETRY_DELIVERY};

/// How often a node that keeps state saves it (also: when a member connects, and at
/// shutdown).
pub const SAVE_EVERY: Duration = Duration::from_secs(60);

/// How a command's answer travels back: each runtime wraps its own channel.
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Sends waiting for room at most, over all members: a caller beyond it gets
/// [`SendError::WouldBlock`] at once.
pub const MAX_PARKED_SENDS: usize = 64;

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

/// What the adapter must do next, from [`SansIo::poll_event`].
#[derive(Debug)]
pub enum Output {
    /// Offer this event to the application (without waiting; see [`Policy::refused`]).
    Event(Event),
    /// Write this state to the node's state directory now.
    Save(SavedState),
}

struct Parked {
    member: MemberId,
    data: Vec<u8>,
    reply: Reply<Result<(), SendError>>,
}

/// The core node plus what waits between it and the application: the state machine a
/// handle's driver runs.
pub struct Policy {
    node: Node,
    parked: VecDeque<Parked>,
    delivery: Delivery,
    keeps_state: bool,
    next_save: Option<Instant>,
    save_due: bool,
    saves: u64,
    stopped: bool,
    now: Instant,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("node", &self.node)
            .field("parked", &self.parked.len())
            .field("held", &self.delivery.held())
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl Policy {
    /// Runs `node` for an application whose event queue holds `event_queue` events.
    /// With `keeps_state`, the policy asks for a save every [`SAVE_EVERY`], when a
    /// member connects and once at shutdown.
    pub fn new(node: Node, event_queue: usize, keeps_state: bool, now: Instant) -> Self {
        Policy {
            node,
            parked: VecDeque::new(),
            delivery: Delivery::new(event_queue.max(1)),
            keeps_state,
            next_save: keeps_state.then(|| now + SAVE_EVERY),
            save_due: false,
            saves: 0,
            stopped: false,
            now,
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

    /// Whether [`Policy::shutdown`] ran.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Saves asked for so far ([`Output::Save`]s handed out).
    pub fn saves(&self) -> u64 {
        self.saves
    }

    /// Events dropped because the application did not read (`Writable` hints aside).
    pub fn dropped_events(&self) -> u64 {
        self.delivery.dropped()
    }

    /// Events held for the application right now.
    pub fn held_events(&self) -> usize {
        self.delivery.held()
    }

    /// The application's queue had no room for `event` (from [`Output::Event`]) at
    /// `now`: hold it, and hold what follows, until a retry at
    /// `now + `[`RETRY_DELIVERY`].
    pub fn refused(&mut self, event: Event, now: Instant) {
        self.now = self.now.max(now);
        self.delivery.refused(event, now);
    }

    /// Applies one command at `now`; `Break` asks the runtime to stop (after
    /// [`Policy::shutdown`]).
    pub fn apply(&mut self, command: Command, now: Instant) -> ControlFlow<()> {
        self.now = self.now.max(now);
        match command {
            Command::Join {
                code,
                allow_weak_code,
                reply,
            } => {
                let joined = self.node.join(now, &code, allow_weak_code);
                if let Ok((member, _)) = &joined {
                    tracing::info!(%member, "joined the meeting");
                }
                reply(joined)
            }
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

    /// Leaves the meeting, refuses every waiting send and asks for the last save. Only
    /// the first call does anything: a runtime may reach its stop by two ways (a
    /// `Shutdown` command, the command channel closing) and the state is saved once.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.node.leave(now);
        self.fail_parked(|_| true);
        self.next_save = None;
        self.save_due = self.keeps_state;
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

    /// What the policy itself does about an event, before the application sees it.
    fn react(&mut self, event: &Event) {
        match event {
            Event::Writable { member } => self.retry(*member),
            Event::PeerDisconnected { member, .. } => {
                let gone = *member;
                self.fail_parked(|m| *m == gone);
            }
            // The moment a restart would most like to remember.
            Event::PeerConnected { .. } if self.keeps_state && !self.stopped => {
                self.save_due = true;
            }
            _ => {}
        }
    }

    fn take_save(&mut self) -> Option<SavedState> {
        if !std::mem::take(&mut self.save_due) {
            return None;
        }
        if !self.stopped {
            self.next_save = Some(self.now + SAVE_EVERY);
        }
        self.saves += 1;
        Some(self.node.export_state())
    }
}

impl SansIo for Policy {
    type Event = Output;

    fn handle_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, d: &[u8]) {
        self.now = self.now.max(now);
        self.node.handle_datagram(now, local, remote, d);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.node.handle_timeout(now);
        self.delivery.handle_timeout(now);
        if self.next_save.is_some_and(|t| t <= now) {
            self.next_save = None;
            self.save_due = true;
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.node.poll_transmit()
    }

    /// Saves first, then held events (once the application may have room), then the
    /// node's new events. The node's queue is always drained: while the application has
    /// no room, new events go to the hold, so nothing the node does waits for it.
    fn poll_event(&mut self) -> Option<Output> {
        loop {
            if let Some(state) = self.take_save() {
                return Some(Output::Save(state));
            }
            if let Some(event) = self.delivery.next_held() {
                return Some(Output::Event(event));
            }
            let event = self.node.poll_event()?;
            // A member's message is never logged and asks for no reaction: it goes
            // straight to the hold's check.
            if !matches!(event, Event::Message { .. }) {
                crate::event_log::log_event(&event);
                self.react(&event);
            }
            if let Some(event) = self.delivery.pass_or_hold(event) {
                return Some(Output::Event(event));
            }
        }
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.node.poll_socket_command()
    }

    fn handle_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        self.now = self.now.max(now);
        self.node.handle_socket_opened(now, local);
    }

    fn handle_socket_failed(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.node.handle_socket_failed(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.node.poll_timeout(),
            self.next_save,
            self.delivery.retry_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
