use std::net::Ipv6Addr;

use super::*;

fn ip(i: u32) -> IpAddr {
    IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

#[test]
fn a_flooding_source_is_limited_and_others_are_not() {
    let now = crate::test_clock::start();
    let mut g = FloodGuard::new(DHT_QUERIES, now);
    let (bad, good) = (ip(1), ip(2));
    let rate = DHT_QUERIES.per_source;
    let allowed = (0..1000).filter(|_| g.allow(bad, now)).count();
    assert_eq!(allowed, rate.burst as usize);
    assert!(g.allow(good, now));
    let later = now + Duration::from_secs(1);
    let allowed = (0..1000).filter(|_| g.allow(bad, later)).count();
    assert_eq!(allowed, rate.per_second as usize);
}

#[test]
fn one_ipv6_prefix_shares_one_budget() {
    let now = crate::test_clock::start();
    let mut g = FloodGuard::new(DHT_QUERIES, now);
    let allowed = (0..1000u16)
        .filter(|&i| g.allow(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, i, 0, 0, 1)), now))
        .count();
    assert_eq!(allowed, DHT_QUERIES.per_source.burst as usize);
    assert_eq!(g.len(), 1);
}

#[test]
fn new_sources_get_in_while_more_sources_than_the_table_holds_flood() {
    let start = crate::test_clock::start();
    let mut g = FloodGuard::new(DHT_QUERIES, start);
    let flooders = MAX_SOURCES as u32 + 104;
    let (mut newcomers, mut answered) = (0, 0);
    // Each flooder sends one query a second, spread evenly; a new source asks every 10 ms.
    for step in 0..(10 * flooders) {
        let now = start + Duration::from_secs(1) * step / flooders;
        g.allow(ip(step % flooders), now);
        assert!(g.len() <= MAX_SOURCES);
        if step % 40 == 0 {
            newcomers += 1;
            answered += usize::from(g.allow(ip(1_000_000 + step), now));
        }
    }
    assert_eq!(answered, newcomers, "every new source answered");
}

#[test]
fn a_table_full_of_busy_sources_admits_newcomers_from_a_shared_budget() {
    let now = crate::test_clock::start();
    let mut g = FloodGuard::new(DHT_QUERIES, now);
    for i in 0..MAX_SOURCES as u32 {
        assert!(g.allow(ip(i), now));
    }
    let answered = (0..1_000)
        .filter(|i| g.allow(ip(100_000 + i), now))
        .count();
    assert_eq!(answered, DHT_QUERIES.newcomers.burst as usize);
    assert_eq!(g.len(), MAX_SOURCES);
    // A moment later the flooders' budgets are full again: they give way to new sources.
    let later = now + Duration::from_secs(1);
    assert!(g.allow(ip(200_000), later));
    g.expire(later);
    assert_eq!(g.len(), 1);
}

#[test]
fn all_sources_together_stay_within_the_total() {
    let now = crate::test_clock::start();
    let mut g = FloodGuard::new(DHT_QUERIES, now);
    let mut allowed = 0;
    for _ in 0..DHT_QUERIES.per_source.burst {
        for i in 0..1_000 {
            allowed += usize::from(g.allow(ip(i), now));
        }
    }
    assert_eq!(allowed, DHT_QUERIES.total.burst as usize);
}
