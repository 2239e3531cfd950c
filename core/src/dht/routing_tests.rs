use super::*;
use crate::test_clock;
use quickcheck::{Arbitrary, Gen, QuickCheck};

fn id(first: u8, last: u8) -> NodeId {
    let mut b = [0u8; 20];
    b[0] = first;
    b[19] = last;
    NodeId(b)
}

fn node(id: NodeId, n: u16) -> CompactNode {
    CompactNode {
        id,
        addr: SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 6881)),
    }
}

#[test]
fn own_id_and_wrong_family_are_rejected() {
    let now = test_clock::start();
    let own = id(0, 0);
    let mut t = RoutingTable::new(own, false, now);
    assert_eq!(t.on_response(node(own, 1), now), Insertion::Rejected);
    let v6 = CompactNode {
        id: id(1, 1),
        addr: "[2001:db8::1]:6881".parse().unwrap(),
    };
    assert_eq!(t.on_response(v6, now), Insertion::Rejected);
    let port0 = CompactNode {
        id: id(1, 1),
        addr: "10.0.0.1:0".parse().unwrap(),
    };
    assert_eq!(t.on_response(port0, now), Insertion::Rejected);
    assert!(t.is_empty());
}

#[test]
fn the_bucket_with_our_id_splits_and_far_buckets_fill_up() {
    let now = test_clock::start();
    let mut t = RoutingTable::new(id(0, 0), false, now);
    // 8 far nodes (first bit 1) fill the first bucket, then 8 more are cached.
    for i in 0..16u8 {
        let r = t.on_response(node(id(0x80 | i, i), u16::from(i)), now);
        if i < 8 {
            assert!(matches!(r, Insertion::Added), "{i}: {r:?}");
        } else {
            assert_eq!(r, Insertion::Cached { ping: None }, "{i}");
        }
    }
    // Near nodes force splits of the bucket holding our id.
    for i in 0..8u8 {
        assert_eq!(
            t.on_response(node(id(0x40 >> (i % 4), 100 + i), 100 + u16::from(i)), now),
            Insertion::Added
        );
    }
    assert!(t.bucket_count() > 1);
    assert_eq!(t.len(), 16);
}

#[test]
fn a_questionable_node_is_offered_for_a_ping_and_a_bad_one_is_replaced() {
    let start = test_clock::start();
    let mut t = RoutingTable::new(id(0, 0), false, start);
    for i in 0..8u8 {
        t.on_response(node(id(0x80 | i, 0), u16::from(i)), start);
    }
    let later = start + GOOD_FOR;
    // Everyone is questionable now; the oldest is offered for a ping.
    let newcomer = node(id(0xF0, 1), 99);
    let Insertion::Cached { ping: Some(stale) } = t.on_response(newcomer, later) else {
        panic!("expected a ping")
    };
    // It fails twice: it turns bad and the newcomer takes its place.
    t.on_timeout(&stale.id, stale.addr, later);
    assert!(t.entries().any(|e| e.node == stale));
    t.on_timeout(&stale.id, stale.addr, later);
    assert!(!t.entries().any(|e| e.node == stale));
    assert!(t.entries().any(|e| e.node == newcomer));
}

#[test]
fn an_id_cannot_move_to_another_address() {
    let now = test_clock::start();
    let mut t = RoutingTable::new(id(0, 0), false, now);
    let n = node(id(0x80, 1), 1);
    t.on_response(n, now);
    let moved = CompactNode {
        addr: "10.9.9.9:1".parse().unwrap(),
        ..n
    };
    assert_eq!(t.on_response(moved, now), Insertion::Rejected);
    assert_eq!(t.closest(&n.id, 1, now), vec![n]);
}

#[test]
fn only_known_nodes_are_refreshed_by_their_queries() {
    let start = test_clock::start();
    let mut t = RoutingTable::new(id(0, 0), false, start);
    let n = node(id(0x80, 1), 1);
    t.on_response(n, start);
    let later = start + GOOD_FOR;
    assert!(t.on_query(&n.id, n.addr, later));
    assert_eq!(t.good_count(later), 1);
    assert!(!t.on_query(&id(0x81, 1), n.addr, later));
    assert_eq!(t.len(), 1);
}

#[test]
fn stale_buckets_get_a_refresh_target_inside_them() {
    let start = test_clock::start();
    let own = id(0x12, 0x34);
    let mut t = RoutingTable::new(own, false, start);
    for i in 0..40u16 {
        let mut b = [0u8; 20];
        b[0] = (i * 37) as u8;
        b[1] = i as u8;
        t.on_response(node(NodeId(b), i), start);
    }
    let mut counter = 0u8;
    let targets = t.stale_buckets(start + GOOD_FOR, || {
        counter = counter.wrapping_add(1);
        [counter.wrapping_mul(151); 20]
    });
    assert_eq!(targets.len(), t.bucket_count());
    for (i, target) in targets.iter().enumerate() {
        assert_eq!(t.bucket_index(target), i, "target for bucket {i}");
    }
    t.touch_all(start + GOOD_FOR);
    assert!(t.stale_buckets(start + GOOD_FOR, || [0; 20]).is_empty());
}

#[derive(Clone, Debug)]
struct Ops(Vec<([u8; 20], u16, u8)>);

impl Arbitrary for Ops {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 300;
        Ops((0..n)
            .map(|_| {
                let mut b = [0u8; 20];
                b.iter_mut().for_each(|x| *x = u8::arbitrary(g));
                // Skew towards ids near ours (all-zero) so that splits happen.
                let shift = u8::arbitrary(g) % 24;
                for bit in 0..usize::from(shift) {
                    b[bit / 8] &= !(0x80 >> (bit % 8));
                }
                (b, u16::arbitrary(g) % 400 + 1, u8::arbitrary(g) % 4)
            })
            .collect())
    }
}

#[test]
fn prop_buckets_hold_their_ranges_and_closest_matches_brute_force() {
    fn prop(ops: Ops, target: Vec<u8>) -> bool {
        let start = test_clock::start();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, false, start);
        for (i, (b, n, op)) in ops.0.iter().enumerate() {
            let now = start + Duration::from_secs(i as u64 * 10);
            let n = node(NodeId(*b), *n);
            match op {
                0 => {
                    t.on_timeout(&n.id, n.addr, now);
                }
                _ => {
                    t.on_response(n, now);
                }
            }
        }
        let last = t.buckets.len() - 1;
        let ranges_ok = t.buckets.iter().enumerate().all(|(i, b)| {
            b.nodes.len() <= K
                && b.replacements.len() <= REPLACEMENTS
                && b.nodes.iter().all(|e| {
                    let cpl = own.common_prefix_len(&e.node.id);
                    if i == last { cpl >= i } else { cpl == i }
                })
        });
        let mut ids: Vec<NodeId> = t.entries().map(|e| e.node.id).collect();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        let mut tb = [0u8; 20];
        tb.iter_mut().zip(target.iter()).for_each(|(a, b)| *a = *b);
        let target = NodeId(tb);
        let now = start + Duration::from_secs(ops.0.len() as u64 * 10);
        let got = t.closest(&target, K, now);
        let mut brute: Vec<CompactNode> = t
            .entries()
            .filter(|e| e.status(now) != NodeStatus::Bad)
            .map(|e| e.node)
            .collect();
        brute.sort_by_key(|n| target.distance(&n.id));
        brute.truncate(K);
        ranges_ok && ids.len() == total && got == brute && t.bucket_count() <= MAX_BUCKETS
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Ops, Vec<u8>) -> bool);
}
