//! The public infrastructure (STUN server, DHT bootstrap node) and the members: real
//! `dhtmeet join --json` processes in the home networks, whose events are gathered in
//! one place.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use dhtmeet_tests::dhtmeet_bin;
use serde_json::Value;

use crate::internet::Internet;

/// The UDP port every member listens on inside its home network.
pub const MEMBER_PORT: u16 = 4000;
/// How long any server may take to say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// Lines of a child's stdout, read by a thread until it closes.
fn lines_of(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `command` in the public namespace and returns its first stdout line.
fn start_server(net: &mut Internet, name: &str, command: &mut Command) -> String {
    let public = net.public.clone();
    let child = net.lab.spawn(&public, name, command);
    let lines = lines_of(child.stdout.take().expect("piped stdout"));
    match lines.recv_timeout(READY_LIMIT) {
        Ok(line) => line,
        Err(_) => panic!(
            "{name} did not start within {READY_LIMIT:?}; its stderr:\n{}",
            net.lab.log_tail(name, 30)
        ),
    }
}

/// `dhtmeet stun-server` on `ip:3478` (one of `internet::SERVERS`).
pub fn start_dhtmeet_stun_server(net: &mut Internet, ip: Ipv4Addr) -> SocketAddr {
    let addr = SocketAddr::from((ip, 3478));
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["stun-server", "--listen", &addr.to_string()]);
    let line = start_server(net, &format!("stun-server-{ip}"), &mut cmd);
    assert!(line.ends_with(&addr.to_string()), "ready line {line:?}");
    addr
}

/// `dhtmeet dht node` on `ip:6881` (one of `internet::SERVERS`), a new DHT network. Like
/// libtorrent's nodes, it tells each querier where it saw it (BEP 42's `ip`).
pub fn start_dhtmeet_dht_node(net: &mut Internet, ip: Ipv4Addr) -> SocketAddr {
    let addr = SocketAddr::from((ip, 6881));
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["dht", "node", "--listen", &addr.to_string()])
        .env_remove("NODE_ID");
    let line = start_server(net, &format!("dht-node-{ip}"), &mut cmd);
    assert!(line.ends_with(&addr.to_string()), "ready line {line:?}");
    addr
}

/// coturn (`turnserver`, Debian's package) as a plain STUN server on port 3478 of
/// each of `ips` (one process: two STUN servers, as a member's list of public ones
/// gives it); returns their addresses once each has answered a Binding request.
pub fn start_coturn(net: &mut Internet, ips: &[Ipv4Addr]) -> Vec<SocketAddr> {
    let addrs: Vec<SocketAddr> = ips.iter().map(|&ip| SocketAddr::from((ip, 3478))).collect();
    let pidfile = net.lab.log_path("turnserver-pid");
    let mut cmd = Command::new("turnserver");
    cmd.args(["-n", "--stun-only", "--no-auth"]);
    for ip in ips {
        cmd.arg("--listening-ip").arg(ip.to_string());
    }
    cmd.args([
        "--listening-port",
        "3478",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
    ])
    .args(["--no-rfc5780", "--log-file", "stdout", "--pidfile"])
    .arg(&pidfile);
    let public = net.public.clone();
    let child = net.lab.spawn(&public, "coturn", &mut cmd);
    // Drain its log lines so that it never blocks on a full pipe.
    let _lines = lines_of(child.stdout.take().expect("piped stdout"));
    let end = Instant::now() + READY_LIMIT;
    for addr in &addrs {
        loop {
            let probe = Command::new("ip")
                .args(["netns", "exec", &public])
                .arg(dhtmeet_bin())
                .args(["stun", "--json", "--timeout", "1", &addr.to_string()])
                .output()
                .expect("run dhtmeet stun");
            if probe.status.success() {
                break;
            }
            assert!(
                Instant::now() < end,
                "coturn did not answer on {addr} within {READY_LIMIT:?}: {}",
                String::from_utf8_lossy(&probe.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    addrs
}

/// A `bittorrent-dht` (npm) node on `ip:6881` (one of `internet::SERVERS`) run by
/// `tests/js/bittorrent-dht-bootstrap.mjs`, a new DHT network. It does not say where it
/// saw a querier (no BEP 42 `ip` in its replies).
pub fn start_bittorrent_dht(net: &mut Internet, ip: Ipv4Addr, js_dir: &Path) -> SocketAddr {
    let addr = SocketAddr::from((ip, 6881));
    let mut cmd = Command::new("node");
    cmd.arg(js_dir.join("bittorrent-dht-bootstrap.mjs"))
        .arg(addr.to_string());
    let line = start_server(net, "bittorrent-dht", &mut cmd);
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line:?}"));
    assert_eq!(ready["addr"], addr.to_string(), "{line}");
    addr
}

/// What one member has said so far.
#[derive(Debug, Default)]
pub struct MemberState {
    /// Its member id, once it has joined.
    pub id: Option<String>,
    /// Its public address, as STUN told it.
    pub public: Option<String>,
    /// Member ids it has an open data channel with now.
    pub connected: BTreeSet<String>,
    /// Member ids it ever had an open data channel with.
    pub ever_connected: BTreeSet<String>,
    /// How each member was last reached (`peer_connected`'s `via`: `direct` or
    /// `predicted`), by member id.
    pub via: BTreeMap<String, String>,
    /// Messages received: (sender's member id, text).
    pub messages: Vec<(String, String)>,
    /// Files received and verified: (sender's member id, path, SHA-256 in hex).
    pub files: Vec<(String, String, String)>,
    /// Every event, for the failure report.
    pub events: Vec<Value>,
}

/// The members of one meeting, one per home network.
#[derive(Debug)]
pub struct Meeting {
    /// The home network of each member, by member index.
    pub homes: Vec<usize>,
    /// When the members were started: each event gets `"at_ms"`, the milliseconds
    /// since then when it came in (for the failure report).
    started: Instant,
    stdins: Vec<ChildStdin>,
    events: Receiver<(usize, Value)>,
    /// What each member has said, by member index.
    pub members: Vec<MemberState>,
}

impl Meeting {
    /// Starts one `dhtmeet join CODE` in every home network of `net` (member `i` in home
    /// `i`); see [`Meeting::start_in`].
    pub fn start(
        net: &mut Internet,
        code: &str,
        bootstrap: &[SocketAddr],
        stun: &[SocketAddr],
    ) -> Self {
        let homes: Vec<usize> = (0..net.homes.len()).collect();
        Self::start_in(net, &homes, code, bootstrap, stun)
    }

    /// Starts one `dhtmeet join CODE` in each of the home networks `homes` (member `i`
    /// in home `homes[i]`, its log named `member<home>`), so that one network can hold
    /// several meetings, each with its own code. Every member bootstraps from
    /// `bootstrap`, asks `stun`, and writes the files it receives to
    /// [`Meeting::inbox`]`(net, home)`.
    pub fn start_in(
        net: &mut Internet,
        homes: &[usize],
        code: &str,
        bootstrap: &[SocketAddr],
        stun: &[SocketAddr],
    ) -> Self {
        let list = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let started = Instant::now();
        let (tx, events) = mpsc::channel();
        let mut stdins = Vec::new();
        for (i, &home) in homes.iter().enumerate() {
            let host = net.homes[home].host.clone();
            let mut cmd = Command::new(dhtmeet_bin());
            // `--no-state`: a member remembers no DHT nodes and no members' addresses
            // of an earlier run (or of another test), which would be stale contacts.
            cmd.args(["join", code, "--json", "--exit-after", "300", "--no-state"])
                .args(["--listen", &format!("0.0.0.0:{MEMBER_PORT}")])
                .args(["--bootstrap", &list(bootstrap)])
                .args(["--stun", &list(stun)])
                .arg("--files-dir")
                .arg(Self::inbox(net, home))
                .env_remove("MEETING_CODE")
                .env_remove("STUN_SERVERS")
                .env_remove("NODE_ID");
            let child = net.lab.spawn(&host, &format!("member{home}"), &mut cmd);
            stdins.push(child.stdin.take().expect("piped stdin"));
            forward_events(i, child.stdout.take().expect("piped stdout"), tx.clone());
        }
        let members = (0..stdins.len()).map(|_| MemberState::default()).collect();
        Meeting {
            homes: homes.to_vec(),
            started,
            stdins,
            events,
            members,
        }
    }

    /// Where the member in home `home` writes the files it receives.
    pub fn inbox(net: &Internet, home: usize) -> PathBuf {
        net.lab.log_path(&format!("inbox{home}"))
    }

    /// The index of the member with id `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.id.as_deref() == Some(id))
    }

    fn apply(&mut self, i: usize, mut v: Value) {
        if let Some(o) = v.as_object_mut() {
            let at = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            o.insert("at_ms".into(), at.into());
        }
        let m = &mut self.members[i];
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        match v["event"].as_str() {
            Some("joined") => m.id = text("member"),
            Some("address_discovered") => m.public = text("address"),
            Some("peer_connected") => {
                if let Some(p) = text("peer") {
                    m.connected.insert(p.clone());
                    m.ever_connected.insert(p.clone());
                    m.via.insert(p, text("via").unwrap_or_default());
                }
            }
            Some("peer_disconnected") => {
                if let Some(p) = text("peer") {
                    m.connected.remove(&p);
                }
            }
            Some("message") => {
                if let (Some(p), Some(t)) = (text("peer"), text("text")) {
                    m.messages.push((p, t));
                }
            }
            Some("file_received") if v["verified"] == true => {
                if let (Some(p), Some(path), Some(sha)) =
                    (text("peer"), text("path"), text("sha256"))
                {
                    m.files.push((p, path, sha));
                }
            }
            _ => {}
        }
        m.events.push(v);
    }

    /// Takes in events until `done` holds or `limit` passes; whether `done` held.
    pub fn wait_until(&mut self, limit: Duration, mut done: impl FnMut(&Meeting) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.events.recv_timeout(left) {
                Ok((i, v)) => self.apply(i, v),
                Err(mpsc::RecvTimeoutError::Timeout) => return done(self),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
            }
        }
    }

    /// Takes in the events that have arrived, without waiting.
    pub fn take_events(&mut self) {
        while let Ok((i, v)) = self.events.try_recv() {
            self.apply(i, v);
        }
    }

    /// Pairs `(a, b)`, `a < b`, whose members both have an open channel to the other.
    pub fn connected_pairs(&self) -> BTreeSet<(usize, usize)> {
        let n = self.members.len();
        let mut pairs = BTreeSet::new();
        for a in 0..n {
            for b in a + 1..n {
                let (ma, mb) = (&self.members[a], &self.members[b]);
                if let (Some(ia), Some(ib)) = (&ma.id, &mb.id) {
                    if ma.connected.contains(ib) && mb.connected.contains(ia) {
                        pairs.insert((a, b));
                    }
                }
            }
        }
        pairs
    }

    /// Member `i` types `line` (sent to every member it is connected to).
    pub fn say(&mut self, i: usize, line: &str) {
        let stdin = &mut self.stdins[i];
        writeln!(stdin, "{line}").expect("write to a member's stdin");
        stdin.flush().expect("flush a member's stdin");
    }

    /// Which messages arrived: (sender, receiver, text) by member index.
    pub fn deliveries(&self) -> BTreeSet<(usize, usize, String)> {
        let index: BTreeMap<&str, usize> = self
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.id.as_deref().map(|id| (id, i)))
            .collect();
        let mut out = BTreeSet::new();
        for (to, m) in self.members.iter().enumerate() {
            for (from, text) in &m.messages {
                if let Some(&from) = index.get(from.as_str()) {
                    out.insert((from, to, text.clone()));
                }
            }
        }
        out
    }
}

fn forward_events(i: usize, stdout: ChildStdout, tx: Sender<(usize, Value)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send((i, v)).is_err() {
                    break;
                }
            }
        }
    });
}
