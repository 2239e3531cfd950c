use std::time::{Duration, Instant};

use dhtmeet_core::MemberId;
use dhtmeet_core::PeerGone;
use dhtmeet_core::{Event, Node, NodeConfig, SansIo, Seed};

use super::delivery::{Delivery, MAX_HELD_BYTES, RETRY_DELIVERY};
use super::{Command, Output, Policy, SAVE_EVERY};

fn policy(keeps_state: bool, now: Instant) -> Policy {
    let node = Node::new(now, NodeConfig::new(Seed::from_u64(7))).expect("valid config");
    Policy::new(node, 4, keeps_state, now)
}

/// Drains the policy; returns (saves, events).
fn drain(p: &mut Policy) -> (usize, Vec<Event>) {
    let (mut saves, mut events) = (0, Vec::new());
    while let Some(out) = p.poll_event() {
        match out {
            Output::Save(_) => saves += 1,
            Output::Event(e) => events.push(e),
        }
    }
    (saves, events)
}

fn message(n: u8, len: usize) -> Event {
    Event::Message {
        member: MemberId([n; 8]),
        data: vec![n; len],
    }
}

#[test]
fn a_shutdown_reached_twice_saves_once() {
    let now = Instant::now();
    let mut p = policy(true, now);
    assert!(p.apply(Command::Shutdown, now).is_break());
    p.shutdown(now + Duration::from_millis(1));
    assert_eq!(drain(&mut p).0, 1);
    // Nor later: no periodic save after the stop.
    p.handle_timeout(now + SAVE_EVERY * 2);
    assert_eq!(drain(&mut p).0, 0);
    assert_eq!(p.saves(), 1);
}

#[test]
fn a_node_without_state_never_asks_for_a_save() {
    let now = Instant::now();
    let mut p = policy(false, now);
    p.handle_timeout(now + SAVE_EVERY * 2);
    p.shutdown(now + SAVE_EVERY * 2);
    assert_eq!(drain(&mut p).0, 0);
}

#[test]
fn a_node_with_state_saves_every_minute() {
    let now = Instant::now();
    let mut p = policy(true, now);
    assert!(p.poll_timeout().is_some_and(|t| t <= now + SAVE_EVERY));
    p.handle_timeout(now + SAVE_EVERY);
    assert_eq!(drain(&mut p).0, 1);
    assert!(
        p.poll_timeout()
            .is_some_and(|t| t <= now + SAVE_EVERY * 2 && t > now + SAVE_EVERY / 2)
    );
}

#[test]
fn a_refused_event_is_offered_again_first_after_the_retry_delay() {
    let now = Instant::now();
    let mut d = Delivery::new(8);
    assert!(
        d.pass_or_hold(message(1, 3)).is_some(),
        "room: straight through"
    );
    d.refused(message(2, 3), now);
    assert!(
        d.pass_or_hold(message(3, 3)).is_none(),
        "held behind the refused one"
    );
    assert_eq!(d.retry_at(), Some(now + RETRY_DELIVERY));
    assert!(d.next_held().is_none(), "not before the retry");
    d.handle_timeout(now + RETRY_DELIVERY);
    let order: Vec<Event> = std::iter::from_fn(|| d.next_held()).collect();
    assert_eq!(order, vec![message(2, 3), message(3, 3)]);
    assert_eq!(d.dropped(), 0);
}

#[test]
fn writable_hints_are_never_held() {
    let now = Instant::now();
    let mut d = Delivery::new(8);
    let writable = Event::Writable {
        member: MemberId([1; 8]),
    };
    d.refused(writable.clone(), now);
    assert!(d.pass_or_hold(writable).is_none());
    assert_eq!(d.held(), 0);
}

#[test]
fn a_full_hold_drops_new_messages_but_keeps_membership_news() {
    let now = Instant::now();
    let mut d = Delivery::new(3);
    d.refused(message(1, 1), now);
    assert!(d.pass_or_hold(message(2, 1)).is_none());
    assert!(d.pass_or_hold(message(3, 1)).is_none());
    assert!(d.pass_or_hold(message(4, 1)).is_none());
    assert_eq!(
        (d.held(), d.dropped()),
        (3, 1),
        "the newest message is dropped"
    );
    let gone = Event::PeerDisconnected {
        member: MemberId([9; 8]),
        reason: PeerGone::Left,
    };
    assert!(d.pass_or_hold(gone.clone()).is_none());
    assert_eq!(d.dropped(), 2, "the oldest message made room");
    d.handle_timeout(now + RETRY_DELIVERY);
    let order: Vec<Event> = std::iter::from_fn(|| d.next_held()).collect();
    assert_eq!(order, vec![message(2, 1), message(3, 1), gone]);
}

#[test]
fn held_messages_are_bounded_in_bytes() {
    let now = Instant::now();
    let mut d = Delivery::new(1000);
    d.refused(message(1, 1), now);
    let big = MAX_HELD_BYTES / 4;
    for n in 2..10 {
        assert!(d.pass_or_hold(message(n, big)).is_none());
    }
    assert_eq!(d.held(), 4, "the refused one and three of a quarter each");
    assert_eq!(d.dropped(), 5);
}
