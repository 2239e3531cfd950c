use std::net::{IpAddr, Ipv6Addr};

use super::*;

fn hash(n: u32) -> InfoHash {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&n.to_be_bytes());
    InfoHash(b)
}

fn peer(n: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, (n >> 8) as u8, n as u8], 6881))
}

/// Address `host` of the attacker's /64 number `subnet`, all in one /48.
fn attacker(subnet: u16, host: u16, port: u16) -> SocketAddr {
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, subnet, 0, 0, 0, host);
    SocketAddr::new(IpAddr::V6(ip), port)
}

/// Fills the store to [`MAX_PEERS`] with the attacker's /64s, each at its quota, every
/// peer under its own info-hash.
fn fill_with_one_attacker(s: &mut PeerStore, now: Instant) {
    let mut n = 1_000_000;
    for subnet in 0.. {
        for host in 0..MAX_PEERS_PER_SOURCE as u16 {
            if s.size().1 == MAX_PEERS {
                return;
            }
            n += 1;
            s.announce(hash(n), attacker(subnet, host, 6881), now);
        }
    }
}

#[test]
fn peers_expire_and_reannounce_refreshes() {
    let start = crate::test_clock::start();
    let mut s = PeerStore::new();
    s.announce(hash(1), peer(1), start);
    s.announce(hash(1), peer(2), start + PEER_TTL / 2);
    assert_eq!(s.get(&hash(1), true, true, start), vec![peer(2), peer(1)]);
    assert_eq!(s.get(&hash(1), true, true, start + PEER_TTL), vec![peer(2)]);
    s.announce(hash(1), peer(1), start + PEER_TTL);
    assert_eq!(s.get(&hash(1), true, true, start + PEER_TTL).len(), 2);
    assert_eq!(s.size(), (1, 2), "peer 1 was expired, then announced again");
    assert!(
        s.get(&hash(1), false, true, start).is_empty(),
        "family filter"
    );
    s.expire(start + PEER_TTL + PEER_TTL / 2);
    assert_eq!(s.size(), (1, 1), "peer 2 expired in time order");
    s.expire(start + 3 * PEER_TTL);
    assert_eq!(s.size(), (0, 0));
    assert_eq!(s.evicted(), 0, "expiry is not eviction");
}

#[test]
fn one_source_holds_its_quota_across_all_info_hashes() {
    let now = crate::test_clock::start();
    let mut s = PeerStore::new();
    // The flood: 2,000 announces for random info-hashes from one IP, any ports.
    for i in 0..2_000u16 {
        let from = SocketAddr::from(([198, 51, 100, 66], 10_000 + i % 500));
        s.announce(hash(u32::from(i)), from, now);
    }
    let source = Source::from(IpAddr::from([198, 51, 100, 66]));
    assert_eq!(s.held_by(source), MAX_PEERS_PER_SOURCE);
    assert_eq!(s.size(), (MAX_PEERS_PER_SOURCE, MAX_PEERS_PER_SOURCE));
    // The source keeps its most recent announces.
    assert_eq!(s.get(&hash(1_999), true, true, now).len(), 1);
    assert!(s.get(&hash(0), true, true, now).is_empty());
    // An IPv6 /64 is one source, whatever its interface ids.
    for i in 0..200u16 {
        s.announce(hash(5_000 + u32::from(i)), attacker(1, i, 1), now);
    }
    assert_eq!(
        s.held_by(Source::from(attacker(1, 0, 1).ip())),
        MAX_PEERS_PER_SOURCE
    );
}

#[test]
fn a_new_meeting_is_stored_in_a_store_full_of_one_attackers_entries() {
    let now = crate::test_clock::start();
    let mut s = PeerStore::new();
    fill_with_one_attacker(&mut s, now);
    assert_eq!(s.size().1, MAX_PEERS);
    let meeting = hash(7);
    let (alice, bob) = (peer(1), peer(2));
    s.announce(meeting, alice, now);
    s.announce(meeting, bob, now);
    assert_eq!(s.get(&meeting, true, true, now), vec![bob, alice]);
    assert_eq!(s.size().1, MAX_PEERS, "room was made, the bound holds");
    // The attacker keeps announcing new info-hashes from every /64 it used, and more:
    // it only ever displaces itself.
    for i in 0..20_000u32 {
        let subnet = (i % 200) as u16;
        s.announce(hash(2_000_000 + i), attacker(subnet, i as u16, 1), now);
    }
    assert_eq!(s.get(&meeting, true, true, now), vec![bob, alice]);
    assert_eq!(s.size().1, MAX_PEERS);
    assert!(s.evicted() >= 20_000);
}

#[test]
fn a_full_info_hash_evicts_from_its_biggest_holder() {
    let now = crate::test_clock::start();
    let mut s = PeerStore::new();
    let topic = hash(1);
    // Ten members announce first; then one IP fills the rest of the topic from many ports.
    for m in 0..10 {
        s.announce(topic, peer(m), now);
    }
    for port in 0..200 {
        s.announce(topic, SocketAddr::from(([198, 51, 100, 66], 1_000 + port)), now);
    }
    assert_eq!(s.size(), (1, 10 + MAX_PEERS_PER_SOURCE));
    // Eighty more members, one address each: the topic fills, and each one after that
    // displaces the flooder, which holds the most.
    for m in 100..180 {
        s.announce(topic, peer(m), now);
    }
    assert_eq!(s.size(), (1, MAX_PEERS_PER_HASH));
    let flooder = Source::from(IpAddr::from([198, 51, 100, 66]));
    assert_eq!(s.held_by(flooder), MAX_PEERS_PER_HASH - 90);
    let members_left = (0..10u16)
        .chain(100..180)
        .filter(|m| s.by_hash[&topic].values().any(|p| *p == peer(*m)))
        .count();
    assert_eq!(members_left, 90, "the flooder's peers went first");
}

#[test]
fn the_store_stays_bounded_under_many_sources() {
    let now = crate::test_clock::start();
    let mut s = PeerStore::new();
    for i in 0..(3 * MAX_PEERS as u32) {
        let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1));
        s.announce(hash(i % 50_000), from, now);
        assert!(s.size().1 <= MAX_PEERS);
    }
    assert_eq!(s.size().1, MAX_PEERS);
    assert!(s.by_hash.values().all(|p| p.len() <= MAX_PEERS_PER_HASH));
    assert_eq!(s.holders.len(), s.by_source.len());
    assert_eq!(s.by_time.len(), MAX_PEERS);
    s.announce(hash(1), peer(1), now + PEER_TTL);
    assert_eq!(s.size(), (1, 1), "expired peers make room");
}
