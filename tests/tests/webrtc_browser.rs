//! Interop with a real browser: Debian's Chromium, headless, on loopback. A page with a
//! plain `RTCPeerConnection` (tests/pages/webrtc-peer.html) answers our offer (trickled
//! candidates), then offers to our answerer twice (candidates in the SDP, then trickled
//! as `JSON.stringify(event.candidate)`); each time text and
//! binary messages go both ways, binary ones larger than 64 KiB. And the README's example
//! page talks to `dhtmeet webrtc offer` as a user would. Skips loudly when the browser
//! cannot start (fails under `CI=true`).

use std::io::Write;
use std::net::UdpSocket;
use std::ops::ControlFlow;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dhtmeet_core::Seed;
use dhtmeet_core::webrtc::SessionEvent;
use dhtmeet_core::webrtc::{PeerConfig, PeerConnection, Signal};
use dhtmeet_tests::browser::{Browser, browser_or_skip, serve_page};
use dhtmeet_tests::{ChildGuard, dhtmeet_bin, wait_for};
use serde_json::{Value, json};

const PAGE: &str = include_str!("../pages/webrtc-peer.html");
const README_PAGE: &str = include_str!("../pages/readme-tab.html");
const README: &str = include_str!("../../README.md");
const LIMIT: Duration = Duration::from_secs(30);

enum Command {
    Signal(Signal),
    Send(Vec<u8>),
    Text(String),
    Stop,
}

/// A `PeerConnection` driven by the blocking runtime in a thread: commands in, events out.
struct Peer {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<SessionEvent>,
    thread: Option<JoinHandle<PeerConnection>>,
}

impl Peer {
    fn spawn(socket: UdpSocket, peer: PeerConnection) -> Peer {
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut driver = dhtmeet_std::Driver::new(socket, peer).unwrap();
            let end = Instant::now() + 4 * LIMIT;
            while Instant::now() < end {
                let tick = Instant::now() + Duration::from_millis(10);
                driver
                    .run(Some(tick), |_, e| {
                        let _ = event_tx.send(e);
                        ControlFlow::<()>::Continue(())
                    })
                    .unwrap();
                while let Ok(command) = command_rx.try_recv() {
                    let now = Instant::now();
                    let pc = driver.machine_mut();
                    match command {
                        Command::Signal(s) => {
                            pc.handle_signal(now, &s).expect("signal accepted");
                        }
                        Command::Send(m) => pc.send(&m).expect("send"),
                        Command::Text(t) => pc.send_text(&t).expect("send text"),
                        Command::Stop => return driver.into_parts().1,
                    }
                }
            }
            driver.into_parts().1
        });
        Peer {
            commands,
            events,
            thread: Some(thread),
        }
    }

    fn send(&self, command: Command) {
        self.commands.send(command).expect("peer thread alive");
    }

    /// Waits for the next event that `pick` takes.
    fn expect<T>(&self, what: &str, mut pick: impl FnMut(SessionEvent) -> Option<T>) -> T {
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(e @ SessionEvent::Disconnected { .. }) => panic!("{what}: got {e:?}"),
                Ok(e) => {
                    if let Some(v) = pick(e) {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("timed out waiting for {what}");
    }

    fn stop(mut self) -> PeerConnection {
        self.send(Command::Stop);
        self.thread.take().unwrap().join().expect("peer thread")
    }
}

/// FNV-1a, 32 bits: what the page computes over a binary message.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as u64
}

/// The page's `pattern(len, seed)`.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) & 255) as u8).collect()
}

fn eval(browser: &Browser, expr: &str, args: Vec<Value>) -> Value {
    browser
        .eval(expr, args)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Messages both ways over an open channel: text and > 64 KiB binary each way.
fn exchange(browser: &Browser, peer: &Peer) {
    let label = eval(browser, "opened()", vec![]);
    assert!(label.is_string(), "{label}");

    eval(browser, "sendText('hello from chromium')", vec![]);
    eval(browser, "sendPattern(100000, 7)", vec![]);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(peer.expect("a message from the page", |e| match e {
            SessionEvent::Message(m) => Some(m),
            _ => None,
        }));
    }
    assert_eq!(got[0], b"hello from chromium");
    assert_eq!(got[1], pattern(100_000, 7), "the 100,000-byte message");

    let big = pattern(200_000, 9);
    peer.send(Command::Text("hello from dhtmeet".into()));
    peer.send(Command::Send(big.clone()));
    let inbox = eval(browser, "received(2)", vec![]);
    assert_eq!(
        inbox[0],
        json!({"kind": "text", "text": "hello from dhtmeet"})
    );
    assert_eq!(
        inbox[1],
        json!({"kind": "binary", "len": 200_000, "fnv": fnv1a(&big)}),
        "the 200,000-byte message"
    );
}

fn connected(peer: &Peer) {
    peer.expect("Connected", |e| {
        (e == SessionEvent::Connected).then_some(())
    });
}

#[test]
fn chromium_answers_our_offer_and_offers_to_our_answer() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let url = serve_page(PAGE).unwrap();
    browser.goto(&url).unwrap();
    let now = Instant::now();

    // 1. We offer (trickle ICE: the candidates follow the offer); Chromium answers.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = PeerConfig {
        trickle: true,
        ..PeerConfig::default()
    };
    let (mut pc, offer) =
        PeerConnection::offer(now, config, socket.local_addr().unwrap(), Seed::from_u64(1))
            .unwrap();
    let mut candidates = Vec::new();
    while let Some(s) = pc.poll_signal() {
        candidates.push(json!(s.to_json()));
    }
    assert!(
        candidates.len() >= 2,
        "a candidate and the end of candidates"
    );
    let answer = eval(
        &browser,
        "answerOffer(args[0], args[1])",
        vec![json!(offer.to_json()), json!(candidates)],
    );
    let answer = Signal::parse(answer.as_str().unwrap().as_bytes()).unwrap();
    let peer = Peer::spawn(socket, pc);
    peer.send(Command::Signal(answer));
    connected(&peer);
    exchange(&browser, &peer);
    let pc = peer.stop();
    assert!(!pc.is_framed(), "a browser does not frame");
    assert_eq!(
        pc.max_message_size(),
        262_144,
        "Chromium's a=max-message-size"
    );
    let stats = pc.stats();
    assert_eq!((stats.messages_sent, stats.messages_received), (2, 2));
    assert!(stats.bytes_received >= 100_000 && stats.bytes_sent >= 200_000);

    // 2. Chromium offers (candidates in the SDP, host addresses as plain IPs); we answer.
    let offer = eval(&browser, "makeOffer()", vec![]);
    let offer = Signal::parse(offer.as_str().unwrap().as_bytes()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (pc, answer) = PeerConnection::answer(
        Instant::now(),
        PeerConfig::default(),
        socket.local_addr().unwrap(),
        Seed::from_u64(2),
        &offer,
    )
    .unwrap();
    assert!(pc.signaling_stats().candidates_added >= 1);
    let peer = Peer::spawn(socket, pc);
    eval(
        &browser,
        "acceptAnswer(args[0])",
        vec![json!(answer.to_json())],
    );
    connected(&peer);
    exchange(&browser, &peer);
    let pc = peer.stop();
    let stats = pc.stats();
    assert_eq!((stats.messages_sent, stats.messages_received), (2, 2));

    // 3. Chromium offers with trickle ICE: an offer without candidates, then each
    //    candidate as `JSON.stringify(event.candidate)`; we answer and take them.
    let offer = eval(&browser, "makeTrickleOffer()", vec![]);
    let offer = Signal::parse(offer.as_str().unwrap().as_bytes()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (pc, answer) = PeerConnection::answer(
        Instant::now(),
        PeerConfig::default(),
        socket.local_addr().unwrap(),
        Seed::from_u64(3),
        &offer,
    )
    .unwrap();
    assert_eq!(
        pc.signaling_stats().candidates_added,
        0,
        "nothing in the SDP"
    );
    let peer = Peer::spawn(socket, pc);
    eval(
        &browser,
        "acceptAnswer(args[0])",
        vec![json!(answer.to_json())],
    );
    let trickled = eval(&browser, "trickledCandidates()", vec![]);
    let trickled = trickled.as_array().unwrap();
    assert!(!trickled.is_empty(), "Chromium trickled no candidate");
    for c in trickled {
        let signal = Signal::parse(c.as_str().unwrap().as_bytes()).unwrap();
        assert!(matches!(
            signal,
            Signal::Candidate(_) | Signal::EndOfCandidates
        ));
        peer.send(Command::Signal(signal));
    }
    connected(&peer);
    exchange(&browser, &peer);
    let pc = peer.stop();
    assert!(pc.signaling_stats().candidates_added >= 1);
}

#[test]
fn the_readme_page_talks_to_dhtmeet_webrtc_offer() {
    assert!(
        README.contains(README_PAGE.trim_end()),
        "README.md must show tests/pages/readme-tab.html verbatim"
    );
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let url = serve_page(README_PAGE).unwrap();
    browser.goto(&url).unwrap();

    let mut child = Process::new(dhtmeet_bin())
        .args(["webrtc", "offer", "--json", "--listen", "127.0.0.1:0"])
        .args(["--exit-after", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dhtmeet webrtc offer");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = ChildGuard(child);
    let events = dhtmeet_tests::json_events(stdout);
    let next = |name: &str| loop {
        let v = events.recv_timeout(LIMIT).expect("an event from dhtmeet");
        if v["event"] == name {
            return v;
        }
    };

    // What a user does: paste the offer into the page, the answer into dhtmeet.
    let offer = next("signal")["signal"].to_string();
    let answer = eval(&browser, "answer(args[0])", vec![json!(offer)]);
    writeln!(stdin, "{}", answer.as_str().unwrap()).unwrap();
    assert_eq!(next("connected")["framed"], false);
    wait_for(LIMIT, || {
        eval(&browser, "channel && channel.readyState === 'open'", vec![])
            .as_bool()
            .filter(|open| *open)
    })
    .expect("the page's channel opened");

    eval(&browser, "send('hello from the tab')", vec![]);
    assert_eq!(next("message")["text"], "hello from the tab");
    writeln!(stdin, "hello from dhtmeet").unwrap();
    stdin.flush().unwrap();
    let shown = wait_for(LIMIT, || {
        let text = eval(
            &browser,
            "document.getElementById('log').textContent",
            vec![],
        );
        text.as_str()
            .filter(|t| t.contains("peer: hello from dhtmeet"))
            .map(str::to_owned)
    });
    assert!(shown.is_some(), "the page never showed the message");
}
