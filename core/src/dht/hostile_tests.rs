//! Issue 15, findings 1 and 2: one attacker flooding a node's peer store or its flood
//! guard, the node driven datagram by datagram with the time passed in. Each scenario
//! counts the replies the other sources get.

use super::*;
use crate::dht::extension::ExtensionVerdict;
use crate::dht::krpc::Want;
use crate::dht::peer_store::MAX_PEERS;
use crate::test_clock;

const DM_SIGNAL: &[u8] = b"dm_signal";

fn lone_node(now: Instant) -> Dht {
    let mut dht = Dht::new(now, DhtConfig::default(), Seed::from_u64(15)).unwrap();
    dht.register_extension(DM_SIGNAL);
    dht
}

fn query(query: Query) -> Vec<u8> {
    Message {
        transaction_id: b"hq".to_vec(),
        version: None,
        read_only: false,
        ip: None,
        body: Body::Query {
            id: NodeId([0x42; 20]),
            query,
        },
    }
    .encode()
}

fn signal() -> Vec<u8> {
    query(Query::Other {
        method: DM_SIGNAL.to_vec(),
        args: b"d2:id20:BBBBBBBBBBBBBBBBBBBBe".to_vec(),
    })
}

/// Delivers `datagram` from `from` at `now` (running any timer due first) and returns
/// the replies to `from`; everything else the node sends or reports is drained.
fn deliver(dht: &mut Dht, now: Instant, from: SocketAddr, datagram: &[u8]) -> Vec<Message> {
    if dht.poll_timeout().is_some_and(|t| t <= now) {
        dht.handle_timeout(now);
    }
    dht.handle_datagram(now, SocketAddr::from(([192, 0, 2, 1], 6881)), from, datagram);
    // The extension's owner (here: one that finds every signal valid) acknowledges.
    while let Some(event) = dht.poll_event() {
        if let DhtEvent::ExtensionQuery { reply, .. } = event {
            dht.answer_extension(reply, ExtensionVerdict::Acknowledge);
        }
    }
    std::iter::from_fn(|| dht.poll_transmit())
        .filter(|t| t.destination == from)
        .filter_map(|t| Message::decode(&t.contents).ok())
        .filter(|m| !matches!(m.body, Body::Query { .. }))
        .collect()
}

fn answered(replies: &[Message]) -> bool {
    matches!(replies, [Message { body: Body::Response { .. }, .. }])
}

/// The response to a get_peers for `info_hash` from `from`: (token, values).
fn get_peers(
    dht: &mut Dht,
    now: Instant,
    from: SocketAddr,
    info_hash: InfoHash,
) -> (Vec<u8>, Vec<SocketAddr>) {
    let q = query(Query::GetPeers {
        info_hash,
        want: Want::default(),
    });
    match &deliver(dht, now, from, &q)[..] {
        [Message {
            body: Body::Response { response, .. },
            ..
        }] => (response.token.clone().unwrap_or_default(), response.values.clone()),
        other => panic!("get_peers from {from}: {other:?}"),
    }
}

fn announce(info_hash: InfoHash, token: &[u8]) -> Vec<u8> {
    query(Query::AnnouncePeer {
        info_hash,
        port: 0,
        implied_port: true,
        token: token.to_vec(),
    })
}

/// Replies one IP gets to 1,000 pings a second for 20 s, spread over `ports` ports.
fn answers_to_one_ip(ports: u16) -> usize {
    let start = test_clock::start();
    let mut dht = lone_node(start);
    let ping = query(Query::Ping);
    (0..20_000u16)
        .filter(|&i| {
            let now = start + Duration::from_millis(u64::from(i));
            let from = SocketAddr::from(([198, 51, 100, 66], 10_000 + i % ports));
            answered(&deliver(&mut dht, now, from, &ping))
        })
        .count()
}

#[test]
fn one_ip_gets_no_more_answers_from_many_ports_than_from_one() {
    let one = answers_to_one_ip(1);
    let many = answers_to_one_ip(500);
    eprintln!("answers in 20 s: one port {one}, 500 ports {many}");
    // The burst, then the rate: 60 + 20 × 20.
    assert!((455..=465).contains(&one), "one port: {one}");
    assert_eq!(many, one, "500 ports of one IP");
}

#[test]
fn new_sources_are_answered_while_one_ip_floods_from_4200_ports() {
    let start = test_clock::start();
    let mut dht = lone_node(start);
    let ping = query(Query::Ping);
    let (mut asked, mut answers) = (0u32, 0u32);
    // 4,200 ports, one datagram per port per second, for 10 s; a new source every 10 ms.
    for i in 0..42_000u32 {
        let now = start + Duration::from_secs(1) * i / 4_200;
        let port = 10_000 + (i % 4_200) as u16;
        deliver(&mut dht, now, SocketAddr::from(([198, 51, 100, 66], port)), &ping);
        if i % 42 == 0 {
            let newcomer = SocketAddr::from(([10, 1, (asked >> 8) as u8, asked as u8], 6881));
            asked += 1;
            answers += u32::from(answered(&deliver(&mut dht, now, newcomer, &ping)));
        }
    }
    eprintln!("new sources answered: {answers} of {asked}");
    assert!(answers * 100 >= asked * 99, "{answers} of {asked}");
}

#[test]
fn a_dht_flood_from_many_sources_does_not_starve_meeting_signaling() {
    let start = test_clock::start();
    let mut dht = lone_node(start);
    let (ping, signal) = (query(Query::Ping), signal());
    let (mut asked, mut answers) = (0u32, 0u32);
    // 5,000 addresses, two pings a second each (10,000/s, twice the DHT's total budget),
    // for 4 s; from the second second on, ten members signal each other's node every
    // 100 ms.
    for i in 0..40_000u32 {
        let now = start + Duration::from_secs(1) * i / 10_000;
        let flooder = SocketAddr::from(([10, 2, ((i % 5_000) >> 8) as u8, i as u8], 6881));
        deliver(&mut dht, now, flooder, &ping);
        if i >= 10_000 && i % 100 == 0 {
            let member = SocketAddr::from(([203, 0, 113, (i / 100 % 10) as u8 + 1], 4000));
            asked += 1;
            answers += u32::from(answered(&deliver(&mut dht, now, member, &signal)));
        }
    }
    eprintln!("signals answered under a DHT flood: {answers} of {asked}");
    assert!(answers * 100 >= asked * 99, "{answers} of {asked}");
}

#[test]
fn an_announce_flood_leaves_pings_answered_and_a_new_meeting_found() {
    let start = test_clock::start();
    let mut dht = lone_node(start);
    let ping = query(Query::Ping);
    // One attacker: 200 IPv6 /64s of one /48, one address each, many ports.
    let attacker = |subnet: u32, port: u32| {
        let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xbad, subnet as u16, 0, 0, 0, 1);
        SocketAddr::new(ip.into(), 20_000 + (port % 500) as u16)
    };
    let tokens: Vec<Vec<u8>> = (0..200)
        .map(|s| get_peers(&mut dht, start, attacker(s, 0), InfoHash([0; 20])).0)
        .collect();
    let topic = InfoHash([0x70; 20]);
    let (alice, bob) = (
        SocketAddr::from(([203, 0, 113, 1], 4000)),
        SocketAddr::from(([203, 0, 113, 2], 4000)),
    );
    let (mut pings, mut pongs) = (0u32, 0u32);
    // 1,400 announces a second for 10 s, each for a new random info-hash; a ping from a
    // new source every 100 ms; Alice announces the new meeting after 8 s.
    for i in 0..14_000u32 {
        let now = start + Duration::from_secs(1) * i / 1_400;
        let mut info_hash = [0u8; 20];
        info_hash[..4].copy_from_slice(&(i + 1).to_be_bytes());
        let s = i % 200;
        deliver(
            &mut dht,
            now,
            attacker(s, i),
            &announce(InfoHash(info_hash), &tokens[s as usize]),
        );
        if i % 140 == 0 {
            let other = SocketAddr::from(([192, 0, 2, (pings % 250) as u8 + 2], 6881));
            pings += 1;
            pongs += u32::from(answered(&deliver(&mut dht, now, other, &ping)));
        }
        if i == 11_200 {
            assert_eq!(dht.peer_store_size().1, MAX_PEERS, "the store is full");
            let (token, _) = get_peers(&mut dht, now, alice, topic);
            let reply = deliver(&mut dht, now, alice, &announce(topic, &token));
            assert!(answered(&reply), "{reply:?}");
        }
    }
    let now = start + Duration::from_secs(10);
    let (_, found) = get_peers(&mut dht, now, bob, topic);
    eprintln!("pings answered: {pongs} of {pings}; Bob found {found:?}");
    assert_eq!(found, vec![alice], "the acknowledged announce was stored");
    assert!(pongs * 100 >= pings * 99, "{pongs} of {pings}");
}
