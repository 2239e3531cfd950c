//! The event queue: a binary heap of small keys over a slab of payloads.
//!
//! Events are ordered by virtual time, then by the order they were scheduled in (a
//! sequence number), so two events at the same instant always run in the same order:
//! the queue is deterministic without relying on the heap's internal layout. The heap
//! holds only `(time, sequence, slot)` (24 bytes), so sifting never moves payloads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }

    /// Schedules `event` at `at` (ns), after every event already scheduled at `at`.
    pub(crate) fn push(&mut self, at: u64, event: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at, self.seq, slot)));
        self.seq += 1;
    }

    /// The time of the next event.
    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the next event.
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let event = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((at, event))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Bytes held by the queue's buffers (capacity, not just length).
    pub(crate) fn footprint(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Reverse<(u64, u64, u32)>>()
            + self.slots.capacity() * std::mem::size_of::<Option<T>>()
            + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_time_events_run_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(5, "b1");
        q.push(1, "a");
        q.push(5, "b2");
        q.push(5, "b3");
        assert_eq!(q.pop(), Some((1, "a")));
        q.push(5, "b4"); // reuses a slot, still ordered after b3
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(rest, vec!["b1", "b2", "b3", "b4"]);
    }
}
