//! Events on their way to an application whose queue may be full (see the policy's
//! "Event delivery"): held in order, bounded, never waited for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dhtmeet_core::Event;

/// How often held events are offered to the application again.
pub const RETRY_DELIVERY: Duration = Duration::from_millis(5);

/// Message bytes held for the application at most.
pub const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// The hold between the node and the application's queue.
#[derive(Debug)]
pub(crate) struct Delivery {
    held: VecDeque<Event>,
    held_bytes: usize,
    /// Events held at most (the application's queue size again).
    limit: usize,
    /// Set while the application's queue is full: when to offer again.
    retry_at: Option<Instant>,
    dropped: u64,
    dropped_in_stall: u64,
}

/// Events that say who is in the meeting: the last to be dropped.
fn is_membership(event: &Event) -> bool {
    matches!(
        event,
        Event::PeerConnecting { .. }
            | Event::PeerConnected { .. }
            | Event::PeerReconnecting { .. }
            | Event::PeerDisconnected { .. }
    )
}

fn bytes(event: &Event) -> usize {
    match event {
        Event::Message { data, .. } => data.len(),
        _ => 0,
    }
}

impl Delivery {
    pub(crate) fn new(limit: usize) -> Self {
        Delivery {
            held: VecDeque::new(),
            held_bytes: 0,
            limit,
            retry_at: None,
            dropped: 0,
            dropped_in_stall: 0,
        }
    }

    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
        }
    }

    /// The oldest held event, when the application may have room for it.
    pub(crate) fn next_held(&mut self) -> Option<Event> {
        if self.retry_at.is_some() {
            return None;
        }
        let event = self.held.pop_front()?;
        self.held_bytes -= bytes(&event);
        if self.held.is_empty() && self.dropped_in_stall > 0 {
            tracing::warn!(
                dropped = self.dropped_in_stall,
                "the application read its events again; events were dropped meanwhile"
            );
            self.dropped_in_stall = 0;
        }
        Some(event)
    }

    /// A new event from the node: to the application now (`Some`) if nothing is held
    /// and its queue may have room, else held (or dropped).
    pub(crate) fn pass_or_hold(&mut self, event: Event) -> Option<Event> {
        if self.retry_at.is_none() && self.held.is_empty() {
            return Some(event);
        }
        self.hold(event);
        None
    }

    /// The application's queue was full for `event` (the oldest not yet delivered).
    pub(crate) fn refused(&mut self, event: Event, now: Instant) {
        self.retry_at = Some(now + RETRY_DELIVERY);
        if matches!(event, Event::Writable { .. }) {
            return;
        }
        // It was first in line: it goes back first, even past the limit by one.
        self.held_bytes += bytes(&event);
        self.held.push_front(event);
    }

    fn hold(&mut self, event: Event) {
        if matches!(event, Event::Writable { .. }) {
            return;
        }
        let fits =
            |d: &Self| d.held.len() < d.limit && d.held_bytes + bytes(&event) <= MAX_HELD_BYTES;
        if !fits(self) && is_membership(&event) {
            // Make room by dropping the oldest events that are not about membership.
            while !fits(self) {
                let Some(i) = self.held.iter().position(|e| !is_membership(e)) else {
                    break;
                };
                if let Some(old) = self.held.remove(i) {
                    self.held_bytes -= bytes(&old);
                    self.count_drop();
                }
            }
        }
        if fits(self) {
            self.held_bytes += bytes(&event);
            self.held.push_back(event);
        } else {
            self.count_drop();
        }
    }

    fn count_drop(&mut self) {
        if self.dropped_in_stall == 0 {
            tracing::warn!(
                held = self.held.len(),
                "the application does not read its events: dropping new ones until it does"
            );
        }
        self.dropped += 1;
        self.dropped_in_stall += 1;
    }
}
