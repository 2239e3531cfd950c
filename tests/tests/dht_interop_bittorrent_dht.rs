//! Interop with a Mainline DHT nobody here wrote: nodes of the `bittorrent-dht` npm
//! package (the DHT the original JavaScript system used), run by `tests/js/
//! bittorrent-dht-peer.mjs` on 127.0.0.1, against our [`Dht`] on a real socket.
//!
//! Each test starts its own Node.js process (killed on drop) and its own node of ours,
//! driven stepwise by `dhtmeet_std::Driver` on the test thread: the script's replies
//! arrive on a channel while our node runs in 20 ms slices, so our node keeps answering
//! while their nodes work. Every wait is bounded. Nothing leaves 127.0.0.1: their
//! nodes only ever get loopback bootstrap addresses (the script refuses any other).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use dhtmeet_core::Seed;
use dhtmeet_core::dht::krpc::{Body, Message, error_code};
use dhtmeet_core::dht::{Dht, DhtConfig, DhtEvent, InfoHash, LookupId, LookupSummary, NodeId};
use dhtmeet_std::Driver;
use dhtmeet_tests::{ChildGuard, require_tool};
use serde_json::{Value, json};

const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/js");
const NODE_HINT: &str = "Node.js 20 and npm: apt-get install -y nodejs npm";
/// The longest any single request to the script may take (its own limit is 15 s).
const REQUEST_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Their side: the Node.js script.

/// A `bittorrent-dht-peer.mjs` process and its line protocol.
struct TheirNodes {
    _child: ChildGuard,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    seq: u64,
}

/// A peer their lookup found, and the node that gave it (`None`: the node's own store).
#[derive(Clone, Copy, Debug)]
struct FoundPeer {
    peer: SocketAddr,
    from: Option<SocketAddr>,
}

/// One of their nodes, as the script reported it when it started.
#[derive(Clone, Debug)]
struct TheirNode {
    index: u64,
    id: NodeId,
    addr: SocketAddr,
}

/// Whether `bittorrent-dht` is installed in tests/js, installing it with `npm ci` (the
/// committed lock file) when npm is there. Under CI a missing package is a failure of
/// `.ci/run`; elsewhere a loud skip.
fn package_installed() -> bool {
    static INSTALL: OnceLock<bool> = OnceLock::new();
    *INSTALL.get_or_init(|| {
        let package = Path::new(JS_DIR).join("node_modules/bittorrent-dht/package.json");
        if package.exists() {
            return true;
        }
        let ci = std::env::var("CI").is_ok();
        assert!(
            !ci,
            "tests/js/node_modules is missing but CI is set: .ci/run must run `npm ci --prefix tests/js`"
        );
        if require_tool("npm", NODE_HINT) {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix", JS_DIR])
                .stdout(Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) && package.exists() {
                return true;
            }
        }
        dhtmeet_tests::skip_loudly(
            "the bittorrent-dht npm package is not installed \
             (npm ci --prefix tests/js); this test did not run",
        );
        false
    })
}

impl TheirNodes {
    /// Starts the script, or returns `None` (after a loud SKIP line) when Node.js or the
    /// package is missing outside CI.
    fn spawn() -> Option<TheirNodes> {
        // One install at a time: the tests of this file run in parallel.
        static LOCK: Mutex<()> = Mutex::new(());
        {
            let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            if !require_tool("node", NODE_HINT) || !package_installed() {
                return None;
            }
        }
        let mut child = Command::new("node")
            .arg("bittorrent-dht-peer.mjs")
            .current_dir(JS_DIR)
            // bittorrent-dht's own debug output, if someone asks for it.
            .env_remove("DEBUG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node bittorrent-dht-peer.mjs");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let child = ChildGuard(child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("bittorrent-dht-peer.mjs: {line}"),
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the script's ready line within 10 s");
        assert_eq!(ready["ready"], true, "unexpected first line {ready}");
        Some(TheirNodes {
            _child: child,
            stdin,
            lines,
            seq: 0,
        })
    }

    /// Sends `request` and runs our node until the script replies; the reply, whether
    /// `ok` or not.
    fn try_request(&mut self, ours: &mut OurNode, mut request: Value) -> Value {
        self.seq += 1;
        request["seq"] = json!(self.seq);
        writeln!(self.stdin, "{request}").expect("write to the script");
        self.stdin.flush().expect("flush the script's stdin");
        let end = Instant::now() + REQUEST_LIMIT;
        loop {
            match self.lines.try_recv() {
                Ok(reply) if reply["seq"] == json!(self.seq) => return reply,
                Ok(other) => eprintln!("ignoring a line from the script: {other}"),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => panic!("the script exited"),
            }
            assert!(
                Instant::now() < end,
                "no reply to {request} within {REQUEST_LIMIT:?}"
            );
            ours.run_for(Duration::from_millis(20));
        }
    }

    /// Like [`TheirNodes::try_request`], but the reply must be `ok`.
    fn request(&mut self, ours: &mut OurNode, request: Value) -> Value {
        let reply = self.try_request(ours, request.clone());
        assert_eq!(reply["ok"], true, "{request} failed: {reply}");
        reply
    }

    /// Starts one of their nodes bootstrapping from `bootstrap` and waits until it is
    /// ready (its bootstrap lookup finished).
    fn start(&mut self, ours: &mut OurNode, bootstrap: &[SocketAddr]) -> TheirNode {
        let bootstrap: Vec<String> = bootstrap.iter().map(|a| a.to_string()).collect();
        let r = self.request(ours, json!({"cmd": "start", "bootstrap": bootstrap}));
        TheirNode {
            index: r["node"].as_u64().expect("node index"),
            id: hex_id(&r["id"]),
            addr: addr(&r["addr"]),
        }
    }

    /// The nodes in their node's routing table.
    fn table(&mut self, ours: &mut OurNode, node: &TheirNode) -> BTreeSet<(NodeId, SocketAddr)> {
        let r = self.request(ours, json!({"cmd": "table", "node": node.index}));
        r["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| (hex_id(&n["id"]), addr(&n["addr"])))
            .collect()
    }

    /// Their node's lookup of `info_hash`: the peers it found.
    fn lookup(
        &mut self,
        ours: &mut OurNode,
        node: &TheirNode,
        info_hash: InfoHash,
    ) -> Vec<FoundPeer> {
        let r = self.request(
            ours,
            json!({"cmd": "lookup", "node": node.index, "info_hash": info_hash.to_string()}),
        );
        r["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .map(|p| FoundPeer {
                peer: addr(&p["peer"]),
                from: (!p["from"].is_null()).then(|| addr(&p["from"])),
            })
            .collect()
    }

    /// A raw KRPC query from their node to `to`, through their k-rpc socket.
    fn query(
        &mut self,
        ours: &mut OurNode,
        node: &TheirNode,
        to: SocketAddr,
        q: &str,
        a: Value,
    ) -> Value {
        self.request(
            ours,
            json!({"cmd": "query", "node": node.index, "to": to.to_string(), "q": q, "a": a}),
        )
    }

    /// Sends `bytes` from their node's socket to `to`; the first datagram back within 1 s.
    fn send_raw(
        &mut self,
        ours: &mut OurNode,
        node: &TheirNode,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Option<Vec<u8>> {
        let r = self.request(
            ours,
            json!({"cmd": "send_raw", "node": node.index, "to": to.to_string(), "hex": hex(bytes)}),
        );
        r["reply"].as_str().map(unhex)
    }
}

// ---------------------------------------------------------------------------------------
// Our side: a `Dht` on a loopback socket, run in slices on the test thread.

struct OurNode {
    driver: Driver<Dht>,
    events: Vec<DhtEvent>,
}

impl OurNode {
    fn new(seed: u64, bootstrap: Vec<SocketAddr>) -> OurNode {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let config = DhtConfig {
            bootstrap,
            ..DhtConfig::default()
        };
        let dht = Dht::new(Instant::now(), config, Seed::from_u64(seed)).expect("valid config");
        OurNode {
            driver: Driver::new(socket, dht).expect("driver"),
            events: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.driver.local_addr()
    }

    fn dht(&mut self) -> &mut Dht {
        self.driver.machine_mut()
    }

    fn run_for(&mut self, slice: Duration) {
        self.run_until(slice, |_| None::<()>);
    }

    /// Runs until `found` picks something out of a new event, or `limit` passes.
    fn run_until<T>(
        &mut self,
        limit: Duration,
        mut found: impl FnMut(&DhtEvent) -> Option<T>,
    ) -> Option<T> {
        let events = &mut self.events;
        self.driver
            .run(Some(Instant::now() + limit), |_, event| {
                let hit = found(&event);
                events.push(event);
                match hit {
                    Some(v) => ControlFlow::Break(v),
                    None => ControlFlow::Continue(()),
                }
            })
            .expect("our socket failed")
    }

    /// Runs until our node is ready; the nodes in its table then.
    fn ready(&mut self) -> usize {
        self.run_until(Duration::from_secs(10), |e| match e {
            DhtEvent::Ready { nodes } => Some(*nodes),
            _ => None,
        })
        .expect("our DHT node ready within 10 s")
    }

    /// Runs until lookup `id` finishes (other lookups, such as the node's own bucket
    /// refreshes, may finish meanwhile).
    fn lookup_done(&mut self, id: LookupId) -> LookupSummary {
        self.run_until(Duration::from_secs(20), |e| match e {
            DhtEvent::LookupDone(s) if s.id == id => Some(s.clone()),
            _ => None,
        })
        .expect("our lookup finished within 20 s")
    }

    /// The IPv4 routing table.
    fn table(&mut self) -> BTreeSet<(NodeId, SocketAddr)> {
        self.dht()
            .routing_table()
            .entries()
            .map(|e| (e.node.id, e.node.addr))
            .collect()
    }

    /// Asserts that nothing they sent was dropped as malformed, unmatched or misrouted.
    fn assert_nothing_dropped(&mut self) {
        let s = self.dht().stats();
        assert_eq!(s.dropped_malformed, 0, "{s:?}");
        assert_eq!(s.dropped_unknown_transaction, 0, "{s:?}");
        assert_eq!(s.dropped_unexpected_source, 0, "{s:?}");
        assert_eq!(s.dropped_flood, 0, "{s:?}");
        assert_eq!(s.dropped_bad_token, 0, "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Small conversions.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the script"))
        .collect()
}

fn hex_id(v: &Value) -> NodeId {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a node id: {v}"))
}

fn addr(v: &Value) -> SocketAddr {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {v}"))
}

fn info_hash(label: &str) -> InfoHash {
    // Any 20 bytes do; a readable label keeps failures readable.
    let mut b = [0u8; 20];
    for (d, s) in b.iter_mut().zip(label.bytes().cycle()) {
        *d = s;
    }
    InfoHash(b)
}

/// A network of their nodes only: one with no bootstrap node, `more` bootstrapping from it.
fn their_network(
    theirs: &mut TheirNodes,
    ours: &mut OurNode,
    more: usize,
) -> (TheirNode, Vec<TheirNode>) {
    let first = theirs.start(ours, &[]);
    let rest = (0..more)
        .map(|_| theirs.start(ours, &[first.addr]))
        .collect();
    (first, rest)
}

// ---------------------------------------------------------------------------------------
// Scenarios.

#[test]
fn their_nodes_join_our_routing_table_and_our_node_answers_their_queries() {
    let mut ours = OurNode::new(1, Vec::new());
    assert_eq!(ours.ready(), 0, "no bootstrap node: ready at once, empty");
    let Some(mut theirs) = TheirNodes::spawn() else {
        return;
    };
    let us = ours.addr();
    let our_id = ours.dht().id();
    let nodes: Vec<TheirNode> = (0..3).map(|_| theirs.start(&mut ours, &[us])).collect();

    // They queried us (their bootstrap find_node); we pinged each unknown querier, and
    // their answers put them in our table.
    let wanted: BTreeSet<_> = nodes.iter().map(|n| (n.id, n.addr)).collect();
    let end = Instant::now() + Duration::from_secs(10);
    while !wanted.is_subset(&ours.table()) {
        assert!(
            Instant::now() < end,
            "their nodes {wanted:?} not all in our table {:?} within 10 s",
            ours.table()
        );
        ours.run_for(Duration::from_millis(50));
    }
    let stats = ours.dht().stats();
    assert!(stats.queries_received >= 3, "{stats:?}");
    assert!(
        stats.responses_received >= 3,
        "our pings answered: {stats:?}"
    );
    assert_eq!(stats.errors_sent, 0, "{stats:?}");

    // Their view: we are in every one of their tables, under our id and address; they
    // got our pings, and nothing we sent made their KRPC socket warn (undecodable
    // bencode, a reply to no transaction of theirs, a reply from the wrong address).
    for n in &nodes {
        assert!(
            theirs.table(&mut ours, n).contains(&(our_id, us)),
            "our node {our_id} at {us} is not in their node {}'s table",
            n.index
        );
        let stats = theirs.request(&mut ours, json!({"cmd": "stats", "node": n.index}));
        assert!(stats["queries"]["ping"].as_u64() >= Some(1), "{stats}");
        assert_eq!(stats["warnings"], 0, "their node {}: {stats}", n.index);
    }

    // Their queries, answered by us: ping, find_node (we know their other nodes),
    // get_peers (a token, and nodes since nobody announced).
    let asker = &nodes[2];
    let pong = theirs.query(&mut ours, asker, us, "ping", json!({}));
    assert_eq!(pong["r"]["id"], our_id.to_string());
    let found = theirs.query(
        &mut ours,
        asker,
        us,
        "find_node",
        json!({"target": nodes[0].id.to_string()}),
    );
    let found_nodes: BTreeSet<(NodeId, SocketAddr)> = found["r"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (hex_id(&n["id"]), addr(&n["addr"])))
        .collect();
    assert!(
        found_nodes.contains(&(nodes[0].id, nodes[0].addr))
            && found_nodes.contains(&(nodes[1].id, nodes[1].addr)),
        "find_node from their node {} got {found_nodes:?}",
        asker.index
    );
    assert!(
        !found_nodes.iter().any(|(_, a)| *a == asker.addr),
        "we must not send a querier itself"
    );
    let peers = theirs.query(
        &mut ours,
        asker,
        us,
        "get_peers",
        json!({"info_hash": info_hash("nobody").to_string()}),
    );
    assert!(
        peers["r"]["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{peers}"
    );
    assert!(
        !peers["r"]["nodes"].as_array().expect("nodes").is_empty(),
        "{peers}"
    );
    assert!(ours.dht().stats().queries_received >= 6);
    ours.assert_nothing_dropped();
}

#[test]
fn their_announce_is_found_by_our_get_peers() {
    // Their network forms and announces without us (a node of ours that nobody knows
    // idles meanwhile), so the peers we find can only come from their nodes.
    let mut idle = OurNode::new(20, Vec::new());
    let Some(mut theirs) = TheirNodes::spawn() else {
        return;
    };
    let (first, rest) = their_network(&mut theirs, &mut idle, 2);
    let topic = info_hash("their-announce");
    let implied = theirs.request(
        &mut idle,
        json!({"cmd": "announce", "node": rest[0].index, "info_hash": topic.to_string(), "port": 0}),
    );
    assert!(implied["hits"].as_u64() >= Some(1), "{implied}");
    let explicit = theirs.request(
        &mut idle,
        json!({"cmd": "announce", "node": rest[1].index, "info_hash": topic.to_string(), "port": 6881}),
    );
    assert!(explicit["hits"].as_u64() >= Some(1), "{explicit}");

    // Our node joins through their first node and looks the topic up.
    let mut ours = OurNode::new(2, vec![first.addr]);
    assert!(ours.ready() >= 1);
    let lookup = ours
        .dht()
        .get_peers(Instant::now(), topic)
        .expect("lookup started");
    let summary = ours.lookup_done(lookup);
    let peers: BTreeSet<SocketAddr> = summary.peers.iter().copied().collect();
    let implied_peer = rest[0].addr; // implied_port: their DHT socket's port
    let explicit_peer: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    assert!(
        peers.contains(&implied_peer) && peers.contains(&explicit_peer),
        "our get_peers found {peers:?}, wanted {implied_peer} and {explicit_peer}"
    );
    assert!(
        ours.events.iter().any(|e| matches!(
            e,
            DhtEvent::PeersFound { info_hash, .. } if *info_hash == topic
        )),
        "PeersFound before LookupDone"
    );
    ours.assert_nothing_dropped();
}

/// Our node joins their network and announces `topic` with `port`; a node of theirs
/// that joined afterwards looks it up. The peers it found, and from which node.
fn our_announce_then_their_lookup(
    seed: u64,
    topic: InfoHash,
    port: Option<u16>,
) -> Option<(SocketAddr, Vec<FoundPeer>)> {
    let mut idle = OurNode::new(seed + 100, Vec::new());
    let mut theirs = TheirNodes::spawn()?;
    let (first, _rest) = their_network(&mut theirs, &mut idle, 2);
    drop(idle);
    let mut ours = OurNode::new(seed, vec![first.addr]);
    assert!(ours.ready() >= 1);
    let lookup = ours
        .dht()
        .announce(Instant::now(), topic, port)
        .expect("announce started");
    let summary = ours.lookup_done(lookup);
    assert_eq!(
        summary.announced, 3,
        "all three of their nodes gave a token and acknowledged: {summary:?}"
    );
    // A node that was not there for the announce: whatever it finds, it finds over
    // the wire from the nodes that stored our announce.
    let late = theirs.start(&mut ours, &[first.addr]);
    let found = theirs.lookup(&mut ours, &late, topic);
    ours.assert_nothing_dropped();
    Some((ours.addr(), found))
}

#[test]
fn our_implied_port_announce_is_found_by_their_lookup() {
    let topic = info_hash("our-implied-port");
    let Some((us, found)) = our_announce_then_their_lookup(3, topic, None) else {
        return;
    };
    // implied_port: the port they saw our announce_peer come from, our DHT socket's.
    assert!(
        found.iter().any(|f| f.peer == us && f.from.is_some()),
        "their lookup found {found:?}, wanted {us} from a remote node"
    );
}

#[test]
fn our_explicit_port_announce_is_found_by_their_lookup() {
    let topic = info_hash("our-explicit-port");
    let Some((_, found)) = our_announce_then_their_lookup(4, topic, Some(4242)) else {
        return;
    };
    let wanted: SocketAddr = "127.0.0.1:4242".parse().unwrap();
    assert!(
        found.iter().any(|f| f.peer == wanted && f.from.is_some()),
        "their lookup found {found:?}, wanted {wanted} from a remote node"
    );
}

#[test]
fn their_unusual_and_malformed_messages_are_answered_or_dropped() {
    let mut ours = OurNode::new(5, Vec::new());
    let Some(mut theirs) = TheirNodes::spawn() else {
        return;
    };
    let us = ours.addr();
    let our_id = ours.dht().id();
    let them = theirs.start(&mut ours, &[us]);
    let error = |reply: &Value| reply["e"][0].as_i64();

    // BEP 44 get/put, which bittorrent-dht sends and we do not implement: 204.
    let get = theirs.query(
        &mut ours,
        &them,
        us,
        "get",
        json!({"target": info_hash("bep44").to_string()}),
    );
    assert_eq!(error(&get), Some(error_code::METHOD_UNKNOWN), "{get}");
    let put = theirs.query(
        &mut ours,
        &them,
        us,
        "put",
        json!({"v": "hello", "token": "00"}),
    );
    assert_eq!(error(&put), Some(error_code::METHOD_UNKNOWN), "{put}");

    // A find_node without a target, an announce with a forged token: 203.
    let no_target = theirs.query(&mut ours, &them, us, "find_node", json!({}));
    assert_eq!(error(&no_target), Some(error_code::PROTOCOL), "{no_target}");
    let forged = theirs.query(
        &mut ours,
        &them,
        us,
        "announce_peer",
        json!({"info_hash": info_hash("forged").to_string(), "port": 1, "implied_port": 0,
               "token": "0102030405060708"}),
    );
    assert_eq!(error(&forged), Some(error_code::PROTOCOL), "{forged}");
    assert_eq!(ours.dht().stats().dropped_bad_token, 1);

    // Their announce_peer exactly as bittorrent-dht builds it: `port` 0 and
    // `implied_port` 1, with the token we gave. We store their socket's address.
    let topic = info_hash("their-implied");
    let peers = theirs.query(
        &mut ours,
        &them,
        us,
        "get_peers",
        json!({"info_hash": topic.to_string(), "noseed": 1}),
    );
    let token = peers["r"]["token"].as_str().expect("token").to_owned();
    let stored = theirs.query(
        &mut ours,
        &them,
        us,
        "announce_peer",
        json!({"info_hash": topic.to_string(), "port": 0, "implied_port": 1, "token": token}),
    );
    assert_eq!(stored["r"]["id"], our_id.to_string(), "{stored}");
    let again = theirs.query(
        &mut ours,
        &them,
        us,
        "get_peers",
        json!({"info_hash": topic.to_string()}),
    );
    assert_eq!(again["r"]["values"], json!([them.addr.to_string()]));

    // Raw datagrams from their socket. A 2-byte transaction id (theirs) and a 1-byte
    // one are echoed exactly.
    let ping = |t: &[u8]| {
        let mut m = b"d1:ad2:id20:".to_vec();
        m.extend_from_slice(&them.id.0);
        m.extend_from_slice(format!("e1:q4:ping1:t{}:", t.len()).as_bytes());
        m.extend_from_slice(t);
        m.extend_from_slice(b"1:y1:qe");
        m
    };
    for t in [&b"\x00\x07"[..], b"x"] {
        let reply = theirs
            .send_raw(&mut ours, &them, us, &ping(t))
            .expect("a pong");
        let reply = Message::decode(&reply).expect("our pong decodes");
        assert_eq!(reply.transaction_id, t);
        assert!(matches!(reply.body, Body::Response { id, .. } if id == our_id));
    }
    // Truncated bencode and an empty transaction id: nothing to answer, counted.
    let before = ours.dht().stats().dropped_malformed;
    assert_eq!(theirs.send_raw(&mut ours, &them, us, b"d1:ad2:id20:"), None);
    assert_eq!(theirs.send_raw(&mut ours, &them, us, &ping(b"")), None);
    assert_eq!(ours.dht().stats().dropped_malformed, before + 2);
    // A response to a transaction we never started: dropped and counted.
    let mut unsolicited = b"d1:rd2:id20:".to_vec();
    unsolicited.extend_from_slice(&them.id.0);
    unsolicited.extend_from_slice(b"e1:t2:zz1:y1:re");
    assert_eq!(theirs.send_raw(&mut ours, &them, us, &unsolicited), None);
    assert_eq!(ours.dht().stats().dropped_unknown_transaction, 1);

    // We still answer them normally, and they still count us as a good node.
    let pong = theirs.query(&mut ours, &them, us, "ping", json!({}));
    assert_eq!(pong["r"]["id"], our_id.to_string());
    assert!(theirs.table(&mut ours, &them).contains(&(our_id, us)));
}
