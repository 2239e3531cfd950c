use super::*;
use crate::meeting::MeetingConfig;
use crate::test_clock;
use std::time::Duration;

/// Members in memory: signaling and datagrams both arrive after `latency`.
struct Room {
    members: BTreeMap<SocketAddr, Meeting>,
    now: Instant,
    latency: Duration,
    in_flight: Vec<(Instant, SocketAddr, SocketAddr, Packet)>,
    events: Vec<(SocketAddr, Event)>,
    /// Datagrams to these addresses vanish (a member that crashed or lost its network).
    blackholes: Vec<SocketAddr>,
    /// Every signaling message seen, for replay tests.
    signals: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

#[derive(Clone)]
enum Packet {
    DmSignal(Vec<u8>),
    Datagram(Vec<u8>),
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 4000))
}

fn member(code: &str, i: u8, now: Instant) -> Meeting {
    Meeting::new(
        now,
        MeetingConfig::default(),
        MeetingKeys::derive(code),
        NodeId([i; 20]),
        addr(i),
        Seed::from_u64(u64::from(i)),
    )
}

impl Room {
    fn new(codes: &[&str]) -> Room {
        let now = test_clock::start();
        let members = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (addr(i as u8 + 1), member(c, i as u8 + 1, now)))
            .collect();
        Room {
            members,
            now,
            latency: Duration::from_millis(25),
            in_flight: Vec::new(),
            events: Vec::new(),
            blackholes: Vec::new(),
            signals: Vec::new(),
        }
    }

    /// Everyone learns everyone's address, as the DHT would tell them.
    fn discover_all(&mut self) {
        let all: Vec<SocketAddr> = self.members.keys().copied().collect();
        let now = self.now;
        for m in self.members.values_mut() {
            m.handle_peers_found(now, &all);
        }
    }

    fn drain(&mut self) {
        for (&from, m) in &mut self.members {
            while let Some((to, args)) = m.poll_signal() {
                self.signals.push((from, to, args.clone()));
                self.in_flight
                    .push((self.now + self.latency, from, to, Packet::DmSignal(args)));
            }
            while let Some(t) = m.poll_transmit() {
                self.in_flight.push((
                    self.now + self.latency,
                    from,
                    t.destination,
                    Packet::Datagram(t.contents),
                ));
            }
            while let Some(e) = m.poll_event() {
                self.events.push((from, e));
            }
        }
    }

    fn run(&mut self, for_: Duration) {
        let end = self.now + for_;
        loop {
            self.drain();
            let next_arrival = self.in_flight.iter().map(|p| p.0).min();
            let next_timer = self.members.values().filter_map(|m| m.poll_timeout()).min();
            let Some(next) = next_arrival.into_iter().chain(next_timer).min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|p| p.0 <= now);
            self.in_flight = later;
            for (_, from, to, packet) in due {
                if self.blackholes.contains(&to) || self.blackholes.contains(&from) {
                    continue;
                }
                let Some(m) = self.members.get_mut(&to) else {
                    continue;
                };
                match packet {
                    Packet::DmSignal(args) => {
                        m.handle_signal(now, from, &args);
                    }
                    Packet::Datagram(d) => {
                        Meeting::handle_datagram(m, now, to, from, &d);
                    }
                }
            }
            for m in self.members.values_mut() {
                if m.poll_timeout().is_some_and(|t| t <= now) {
                    m.handle_timeout(now);
                }
            }
        }
        self.now = self.now.max(end);
    }

    fn connected_pairs(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerConnected { .. }))
            .count()
    }

    fn messages_at(&self, at: SocketAddr) -> Vec<&Vec<u8>> {
        self.events
            .iter()
            .filter(|(a, _)| *a == at)
            .filter_map(|(_, e)| match e {
                Event::Message { data, .. } => Some(data),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn two_members_meet_and_exchange_small_and_large_messages() {
    let mut room = Room::new(&["apple-river-7", "apple-river-7"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    assert_eq!(
        room.connected_pairs(),
        2,
        "both sides report the connection: {:?}",
        room.events
    );
    let a = room.members[&addr(1)].member_id();
    let b = room.members[&addr(2)].member_id();
    assert_eq!(room.members[&addr(1)].connected(), vec![b]);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    room.members
        .get_mut(&addr(1))
        .unwrap()
        .send(&b, b"hello from a")
        .unwrap();
    room.members
        .get_mut(&addr(1))
        .unwrap()
        .send(&b, &big)
        .unwrap();
    room.members
        .get_mut(&addr(2))
        .unwrap()
        .send(&a, b"hello from b")
        .unwrap();
    let now = room.now;
    for m in room.members.values_mut() {
        m.handle_timeout(now);
    }
    room.run(Duration::from_secs(10));
    assert_eq!(
        room.messages_at(addr(2)),
        vec![&b"hello from a".to_vec(), &big],
        "in order, intact"
    );
    assert_eq!(room.messages_at(addr(1)), vec![&b"hello from b".to_vec()]);
}

/// A member's counters (`peer_stats`, shown per peer in `Health`) are the application's:
/// its messages and their payload bytes, without the delivery frame (kind and sequence
/// number) or the acknowledgements the delivery layer sends.
#[test]
fn per_member_counters_count_the_applications_payload_only() {
    let mut room = Room::new(&["apple-river-7", "apple-river-7"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    assert_eq!(room.connected_pairs(), 2);
    let a = room.members[&addr(1)].member_id();
    let b = room.members[&addr(2)].member_id();
    let sender = room.members.get_mut(&addr(1)).unwrap();
    sender.send(&b, &[7u8; 1000]).unwrap();
    sender.send(&b, b"0123456789").unwrap();
    let now = room.now;
    for m in room.members.values_mut() {
        m.handle_timeout(now);
    }
    room.run(Duration::from_secs(10));
    assert_eq!(room.messages_at(addr(2)).len(), 2);
    let at_a = room.members[&addr(1)].peer_stats(&b).unwrap();
    let at_b = room.members[&addr(2)].peer_stats(&a).unwrap();
    assert_eq!((at_a.messages_sent, at_a.bytes_sent), (2, 1010));
    assert_eq!((at_b.messages_received, at_b.bytes_received), (2, 1010));
    // B acknowledged them: acknowledgements are not the application's.
    assert_eq!((at_b.messages_sent, at_b.bytes_sent), (0, 0));
    assert_eq!((at_a.messages_received, at_a.bytes_received), (0, 0));
}

#[test]
fn three_members_form_a_full_mesh() {
    let mut room = Room::new(&["m", "m", "m"]);
    room.discover_all();
    room.run(Duration::from_secs(15));
    for m in room.members.values() {
        assert_eq!(m.connected().len(), 2, "{:?}", room.events);
    }
}

#[test]
fn a_non_member_who_knows_the_topic_gets_nowhere() {
    let mut room = Room::new(&["the-real-code", "the-real-code", "a-guess"]);
    room.discover_all();
    room.run(Duration::from_secs(15));
    let outsider = &room.members[&addr(3)];
    assert!(outsider.connected().is_empty());
    for i in [1, 2] {
        let m = &room.members[&addr(i)];
        assert_eq!(m.connected().len(), 1, "members still meet each other");
        assert!(
            m.stats().dropped_bad_mac >= 1,
            "the outsider's hellos are refused"
        );
    }
    assert!(
        !room
            .events
            .iter()
            .any(|(a, e)| *a == addr(3) && matches!(e, Event::PeerConnecting { .. }))
    );
}

#[test]
fn replayed_signaling_is_dropped() {
    let mut room = Room::new(&["c", "c"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    assert_eq!(room.connected_pairs(), 2);
    let replays: Vec<_> = room.signals.clone();
    let now = room.now;
    for (from, to, args) in &replays {
        if let Some(m) = room.members.get_mut(to) {
            m.handle_signal(now, *from, args);
        }
    }
    room.run(Duration::from_secs(5));
    let dropped: u64 = room
        .members
        .values()
        .map(|m| m.stats().dropped_replayed)
        .sum();
    assert_eq!(
        dropped as usize,
        replays.len() - room.signals_to_self(),
        "every replay refused"
    );
    for m in room.members.values() {
        assert_eq!(m.connected().len(), 1, "the replays changed nothing");
    }
}

impl Room {
    /// Signals a member sent to its own address (its own hello) are not replays.
    fn signals_to_self(&self) -> usize {
        self.signals.iter().filter(|(f, t, _)| f == t).count()
    }
}

#[test]
fn leaving_says_bye_and_the_other_side_sees_it() {
    let mut room = Room::new(&["c", "c"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    let now = room.now;
    room.members.get_mut(&addr(1)).unwrap().leave(now);
    room.run(Duration::from_secs(2));
    assert!(room.events.iter().any(|(a, e)| *a == addr(2)
        && matches!(
            e,
            Event::PeerDisconnected {
                reason: PeerGone::Left,
                ..
            }
        )));
    assert!(room.members[&addr(2)].connected().is_empty());
}

#[test]
fn a_vanished_member_is_retried_three_times_then_given_up() {
    let mut room = Room::new(&["c", "c"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    room.blackholes.push(addr(2));
    room.run(Duration::from_secs(200));
    let at_a: Vec<&Event> = room
        .events
        .iter()
        .filter(|(a, _)| *a == addr(1))
        .map(|(_, e)| e)
        .collect();
    let retries = at_a
        .iter()
        .filter(|e| matches!(e, Event::PeerReconnecting { .. }))
        .count();
    assert_eq!(retries, 3, "{at_a:?}");
    assert!(
        matches!(
            at_a.last(),
            Some(Event::PeerDisconnected {
                reason: PeerGone::Failed(_),
                ..
            })
        ),
        "{at_a:?}"
    );
    assert!(room.members[&addr(1)].connected().is_empty());
}

#[test]
fn garbage_signaling_and_datagrams_never_panic() {
    let mut room = Room::new(&["c"]);
    let now = room.now;
    let m = room.members.get_mut(&addr(1)).unwrap();
    for junk in [
        &b""[..],
        b"d",
        b"de",
        b"d1:ki1ee",
        &[0u8; 300],
        b"\x16\xfe\xfd\x00\x00",
    ] {
        m.handle_signal(now, addr(9), junk);
        assert!(!m.accepts(addr(9), junk));
        m.handle_datagram(now, addr(1), addr(9), junk);
    }
    assert!(m.stats().dropped_malformed >= 5);
    assert_eq!(m.stats().dropped_unrouted, 6);
}

#[test]
fn messages_sent_across_a_reconnection_arrive_exactly_once_in_order() {
    let mut room = Room::new(&["c", "c"]);
    room.discover_all();
    room.run(Duration::from_secs(10));
    let b = room.members[&addr(2)].member_id();
    let send = |room: &mut Room, range: std::ops::Range<u32>| {
        for i in range {
            room.members
                .get_mut(&addr(1))
                .unwrap()
                .send(&b, format!("m{i}").as_bytes())
                .unwrap();
        }
    };
    send(&mut room, 0..5);
    room.run(Duration::from_secs(1));
    // The path dies for longer than the dead-path timeout: both sessions fail, and what
    // was in flight is lost with them.
    room.blackholes.push(addr(2));
    send(&mut room, 5..10);
    room.run(Duration::from_secs(20));
    room.blackholes.clear();
    send(&mut room, 10..15);
    room.run(Duration::from_secs(60));
    let got: Vec<String> = room
        .messages_at(addr(2))
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let want: Vec<String> = (0..15).map(|i| format!("m{i}")).collect();
    assert_eq!(
        got, want,
        "exactly once, in order, across the reconnection: {:?}",
        room.events
    );
    assert!(
        room.events
            .iter()
            .any(|(_, e)| matches!(e, Event::PeerReconnecting { .. })),
        "it did reconnect"
    );
}

/// An address that does not answer gets hellos quickly at first (a hole punch: the first
/// may meet a NAT that has not seen the peer's own hello yet), then every `hello_every`:
/// at 0, 0.25, 0.75, 1.75, 3.75 and 7.75 s, then 5 s apart.
#[test]
fn hellos_to_a_silent_address_ramp_up_then_settle() {
    let now = test_clock::start();
    let mut m = member("zihuk-nirur-zopup-hifat-kipul-bopaj", 1, now);
    let silent = SocketAddr::from(([192, 0, 2, 9], 4000));
    m.handle_peers_found(now, &[silent]);
    let mut sent_at = Vec::new();
    let mut t = now;
    while t < now + Duration::from_secs(18) {
        while let Some((to, _)) = m.poll_signal() {
            assert_eq!(to, silent);
            sent_at.push((t - now).as_millis());
        }
        let Some(next) = m.poll_timeout() else { break };
        t = next.max(t + Duration::from_millis(1));
        m.handle_timeout(t);
    }
    assert_eq!(sent_at, [0, 250, 750, 1750, 3750, 7750, 12750, 17750]);
}

#[test]
fn members_learn_each_others_nat_class_from_signaling() {
    let code = "correct-horse-battery-staple";
    let mut room = Room::new(&[code, code]);
    let (a, b) = (addr(1), addr(2));
    let sequential = NatClass::Sequential { step: 1 };
    room.members.get_mut(&a).unwrap().set_nat_class(sequential);
    room.discover_all();
    room.run(Duration::from_secs(5));
    assert_eq!(room.connected_pairs(), 2);
    let id = |at: SocketAddr, room: &Room| room.members[&at].member_id();
    let (id_a, id_b) = (id(a, &room), id(b, &room));
    assert_eq!(room.members[&b].peer_nat(&id_a), sequential);
    // B never said: unknown, as for a member of an older version.
    assert_eq!(room.members[&a].peer_nat(&id_b), NatClass::Unknown);
    assert_eq!(room.members[&a].peer_nat(&MemberId([0; 8])), NatClass::Unknown);
}

/// Issue 15, finding 3: an attacker announces its own addresses under the topic, collects
/// the hellos members send there, and replays them to a member from those addresses.
/// 1,000 real hellos of 100 members who have since gone, from 10 addresses, plus the
/// hellos of a live member: the victim starts no session with a ghost, sends no ICE
/// parameters to the attacker, keeps every member slot free, and the live member still
/// connects.
#[test]
fn replayed_hellos_from_an_attackers_addresses_make_no_ghost_members() {
    let code = "lusab-babad-gutih-tugad-mudof-rapin";
    let mut room = Room::new(&[code, code]);
    let (victim, live) = (addr(1), addr(2));
    let attackers: Vec<SocketAddr> = (0..10u16)
        .map(|i| SocketAddr::from(([203, 0, 113, 66], 7000 + i)))
        .collect();
    // 100 members greet the attacker's addresses, then leave: 1,000 captured hellos.
    let now = room.now;
    let mut captured = Vec::new();
    for i in 0..100u64 {
        let mut ghost = Meeting::new(
            now,
            MeetingConfig::default(),
            MeetingKeys::derive(code),
            NodeId([0x77; 20]),
            SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 4000)),
            Seed::from_u64(1000 + i),
        );
        ghost.handle_peers_found(now, &attackers);
        while let Some((to, args)) = ghost.poll_signal() {
            captured.push((to, args));
        }
    }
    assert_eq!(captured.len(), 1000);
    let replay = |room: &mut Room, hellos: &[(SocketAddr, Vec<u8>)]| {
        let now = room.now;
        let m = room.members.get_mut(&victim).unwrap();
        for (from, args) in hellos {
            m.handle_signal(now, *from, args);
        }
    };
    replay(&mut room, &captured);
    room.run(Duration::from_secs(1));
    // The members find each other, and the attacker's addresses too.
    let all: Vec<SocketAddr> = [victim, live].into_iter().chain(attackers.clone()).collect();
    let now = room.now;
    for m in room.members.values_mut() {
        m.handle_peers_found(now, &all);
    }
    room.run(Duration::from_secs(1));
    // The live member's hellos to the attacker, replayed too, and the old ones again.
    let from_live: Vec<(SocketAddr, Vec<u8>)> = room
        .signals
        .iter()
        .filter(|(f, t, _)| *f == live && attackers.contains(t))
        .map(|(_, t, a)| (*t, a.clone()))
        .collect();
    assert!(!from_live.is_empty(), "the live member greets the attacker too");
    replay(&mut room, &from_live);
    replay(&mut room, &captured);
    room.run(Duration::from_secs(150));

    let v = &room.members[&victim];
    assert_eq!(
        v.connected(),
        [room.members[&live].member_id()],
        "the live member connects, and nobody else"
    );
    assert_eq!(v.peers.len(), 1, "no member slot for a ghost");
    assert_eq!(v.stats().dropped_full, 0, "nobody was refused");
    let connecting_to_attacker = room.events.iter().any(|(at, e)| {
        *at == victim && matches!(e, Event::PeerConnecting { addr, .. } if attackers.contains(addr))
    });
    assert!(!connecting_to_attacker, "no session with a ghost");
    let revealing = |args: &[u8]| {
        [&b"1:ki1e"[..], b"1:f32:", b"1:u", b"1:p"]
            .iter()
            .any(|k| args.windows(k.len()).any(|w| w == *k))
    };
    let revealed = room
        .signals
        .iter()
        .filter(|(f, t, a)| *f == victim && attackers.contains(t) && revealing(a))
        .count();
    assert_eq!(revealed, 0, "no ICE parameters, fingerprint or candidates to the attacker");
    let transmits_to_attacker = room
        .in_flight
        .iter()
        .filter(|(_, f, t, p)| *f == victim && attackers.contains(t) && matches!(p, Packet::Datagram(_)))
        .count();
    assert_eq!(transmits_to_attacker, 0);
    // Every copy got at most a hello back, and few of those: one per address per 100 ms,
    // besides the hellos to addresses found under the topic.
    let stats = v.stats();
    assert!(stats.unproven_hellos >= 1000, "{stats:?}");
    let hellos_to_attacker = room
        .signals
        .iter()
        .filter(|(f, t, _)| *f == victim && attackers.contains(t))
        .count();
    eprintln!("{stats:?}; {hellos_to_attacker} hellos to the attacker's addresses");
    assert!(hellos_to_attacker <= 10 * (3 + 40), "{hellos_to_attacker}");
}

/// Only one member found the other (the other's announce is not stored yet): the one
/// that did greets, is challenged back, proves itself, and both connect.
#[test]
fn a_member_greeted_by_one_it_never_found_challenges_it_then_connects() {
    let mut room = Room::new(&["c", "c"]);
    let now = room.now;
    room.members
        .get_mut(&addr(1))
        .unwrap()
        .handle_peers_found(now, &[addr(2)]);
    room.run(Duration::from_secs(5));
    assert_eq!(room.connected_pairs(), 2, "{:?}", room.events);
    let b = &room.members[&addr(2)];
    assert_eq!(b.stats().unproven_hellos, 1, "one hello before the proof");
    assert_eq!(b.stats().dropped_unproven, 0);
}

/// A proven member's parameters, copied and sent from another address, are refused: a
/// parameters message proves nothing unless it echoes a challenge sent to where it is
/// from.
#[test]
fn a_members_parameters_from_another_address_are_refused_and_change_nothing() {
    let mut room = Room::new(&["c", "c"]);
    room.discover_all();
    room.run(Duration::from_secs(5));
    assert_eq!(room.connected_pairs(), 2);
    // B's parameters to A, sent by an attacker as new (A forgets B's numbers first).
    let params = room
        .signals
        .iter()
        .find(|(f, t, a)| *f == addr(2) && *t == addr(1) && a.windows(6).any(|w| w == b"1:ki1e"))
        .map(|(_, _, a)| a.clone())
        .unwrap();
    let now = room.now;
    let a = room.members.get_mut(&addr(1)).unwrap();
    a.replay = ReplayGuard::new();
    let attacker = SocketAddr::from(([203, 0, 113, 66], 7000));
    assert!(!a.handle_signal(now, attacker, &params), "answered as a non-member");
    assert_eq!(a.stats().dropped_unproven, 1);
    room.run(Duration::from_secs(2));
    let a = &room.members[&addr(1)];
    assert_eq!(a.connected().len(), 1);
    assert_eq!(a.peers.values().next().map(|p| p.addr), Some(addr(2)));
}
