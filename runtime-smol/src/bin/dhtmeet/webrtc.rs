//! `dhtmeet webrtc offer|answer`: a data channel to any standard WebRTC peer (a browser
//! tab, simple-peer, another library), with offer and answer passed by hand. Once
//! connected it behaves like `join`: stdin lines are sent, messages are printed.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::{BindingClient, StunConfig, StunEvent};
use dhtmeet_core::webrtc::SessionEvent;
use dhtmeet_core::webrtc::{PeerConfig, PeerConnection, Signal};
use dhtmeet_smol::{Driver, random_seed, resolve_all};

use crate::stun::STUN_PORT;

/// How long `--stun` waits for the server-reflexive address.
const STUN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print an offer, then wait for the answer (on stdin, or in --answer FILE).
    Offer(OfferArgs),
    /// Read an offer (on stdin, or from --offer FILE) and print the answer.
    Answer(AnswerArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// Local address to bind (default: 0.0.0.0 on a free port, announced with this
    /// machine's address towards the network).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A STUN server (host:port) to learn a server-reflexive candidate from.
    #[arg(long)]
    stun: Option<String>,
    /// Write our signal (offer or answer) to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// One JSON object per line per event instead of text.
    #[arg(long)]
    json: bool,
    /// Close after this many seconds.
    #[arg(long)]
    exit_after: Option<f64>,
    /// Never frame messages, even towards another dhtmeet (one line = one message).
    #[arg(long)]
    plain: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct OfferArgs {
    #[command(flatten)]
    common: Common,
    /// Read the answer from FILE (waits until it appears) instead of stdin.
    #[arg(long, value_name = "FILE")]
    answer: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnswerArgs {
    #[command(flatten)]
    common: Common,
    /// Read the offer from FILE instead of stdin.
    #[arg(long, value_name = "FILE")]
    offer: Option<PathBuf>,
}

enum Input {
    Line(String),
    Signal(Signal),
    Close,
}

pub(crate) async fn run(command: Command) -> Result<(), String> {
    let (common, offer_file, answer_file) = match command {
        Command::Offer(a) => (a.common, None, Some(a.answer)),
        Command::Answer(a) => (a.common, a.offer, None),
    };
    let offering = answer_file.is_some();
    let (socket, local) = bind(common.listen)?;
    let mut config = PeerConfig {
        framing: !common.plain,
        ..PeerConfig::default()
    };
    if let Some(server) = &common.stun {
        let server = resolve_all(&[server], STUN_PORT)
            .await
            .map_err(|e| e.to_string())?;
        match server_reflexive(&socket, server).await? {
            Some(mapped) if mapped != local => config.server_reflexive.push(mapped),
            Some(_) => {}
            None => eprintln!("warning: no answer from the STUN server; host candidate only"),
        }
    }

    // stdin: signals first (an offer to answer, or the answer), then lines to send.
    let (tx, rx) = smol::channel::bounded::<Input>(64);
    crate::forward_stdin(tx.clone(), Input::Line);
    let ctrl_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = ctrl_tx.try_send(Input::Close);
    });

    let seed = random_seed().map_err(|e| format!("no OS randomness: {e}"))?;
    let now = Instant::now();
    let (peer, ours) = if offering {
        PeerConnection::offer(now, config, local, seed).map_err(|e| e.to_string())?
    } else {
        let offer = match offer_file {
            Some(path) => read_signal_file(&path, false).await?,
            None => {
                eprintln!("paste the offer (one line of JSON):");
                next_signal(&rx).await?
            }
        };
        PeerConnection::answer(now, config, local, seed, &offer)
            .map_err(|e| format!("cannot answer this offer: {e}"))?
    };
    let mut signals = vec![ours];
    let mut peer = peer;
    while let Some(s) = peer.poll_signal() {
        signals.push(s);
    }
    publish(&common, &signals)?;
    crate::emit(
        common.json,
        "listening",
        serde_json::json!({"local": local.to_string()}),
        format!("* WebRTC on {local}"),
    );

    let mut awaiting_answer = offering;
    if let Some(Some(path)) = answer_file {
        let file_tx = tx.clone();
        smol::spawn(async move {
            if let Ok(answer) = read_signal_file(&path, true).await {
                let _ = file_tx.send(Input::Signal(answer)).await;
            }
        })
        .detach();
    } else if offering {
        eprintln!("paste the answer (one line of JSON):");
    }
    drop(tx);

    let deadline = common
        .exit_after
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let json = common.json;
    let mut driver = Driver::new(socket, peer).map_err(|e| e.to_string())?;
    let outcome = driver
        .run_with_input(
            deadline,
            Some(&rx),
            |peer, input, now| {
                let signal = match input {
                    Input::Close => return ControlFlow::Break(Ok(())),
                    Input::Signal(s) => s,
                    Input::Line(line) if awaiting_answer => match Signal::parse(line.as_bytes()) {
                        Ok(s) => s,
                        Err(e) => {
                            eprintln!("not a signal ({e}); paste the answer as one line of JSON");
                            return ControlFlow::Continue(());
                        }
                    },
                    Input::Line(line) => {
                        if let Err(e) = peer.send_text(&line) {
                            eprintln!("warning: line not sent: {e}");
                        }
                        return ControlFlow::Continue(());
                    }
                };
                match peer.handle_signal(now, &signal) {
                    Ok(_) => {
                        if matches!(signal, Signal::Answer { .. }) {
                            awaiting_answer = false;
                        }
                        ControlFlow::Continue(())
                    }
                    Err(e) if matches!(signal, Signal::Answer { .. }) => {
                        ControlFlow::Break(Err(format!("cannot use this answer: {e}")))
                    }
                    Err(e) => {
                        eprintln!("warning: signal ignored: {e}");
                        ControlFlow::Continue(())
                    }
                }
            },
            |peer, event| {
                print_event(json, peer, &event);
                match event {
                    SessionEvent::Disconnected { .. } => ControlFlow::Break(Ok(())),
                    _ => ControlFlow::Continue(()),
                }
            },
        )
        .await
        .map_err(|e| format!("socket error: {e}"))?;
    if let Some(Err(e)) = outcome {
        return Err(e);
    }
    if !driver.machine().is_closed() {
        driver.machine_mut().close();
        let _ = driver
            .run(Some(Instant::now() + Duration::from_millis(300)), |_, _| {
                ControlFlow::<()>::Continue(())
            })
            .await;
    }
    let stats = driver.machine().stats();
    crate::emit(
        json,
        "closed",
        serde_json::json!({"messages_sent": stats.messages_sent, "messages_received": stats.messages_received,
            "bytes_sent": stats.bytes_sent, "bytes_received": stats.bytes_received}),
        "* closed".into(),
    );
    Ok(())
}

/// Binds `listen` (default `0.0.0.0:0`); the address to announce as the host candidate.
fn bind(listen: Option<SocketAddr>) -> Result<(UdpSocket, SocketAddr), String> {
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let socket = UdpSocket::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = socket.local_addr().map_err(|e| e.to_string())?;
    if !bound.ip().is_unspecified() {
        return Ok((socket, bound));
    }
    // The interface of the default route: a UDP `connect` to a documentation address
    // (RFC 5737) picks the route and sends nothing. Without one: loopback.
    let probe = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let ip = probe
        .connect("192.0.2.1:9")
        .and_then(|()| probe.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    Ok((socket, SocketAddr::new(ip, bound.port())))
}

/// Our address as the STUN server sees it, asked from our own socket.
async fn server_reflexive(
    socket: &UdpSocket,
    servers: Vec<SocketAddr>,
) -> Result<Option<SocketAddr>, String> {
    let clone = socket.try_clone().map_err(|e| e.to_string())?;
    let config = StunConfig {
        servers,
        query_timeout: STUN_WAIT,
        retry_interval: None,
        ..StunConfig::default()
    };
    let seed = random_seed().map_err(|e| format!("no OS randomness: {e}"))?;
    let client = BindingClient::new(config, seed, Instant::now()).map_err(|e| e.to_string())?;
    let mut driver = Driver::new(clone, client).map_err(|e| e.to_string())?;
    driver
        .run(Some(Instant::now() + STUN_WAIT), |_, event| match event {
            StunEvent::Observed(observation) => ControlFlow::Break(Some(observation.mapped)),
            StunEvent::Finished(_) => ControlFlow::Break(None),
            StunEvent::ServerFailed { .. } => ControlFlow::Continue(()),
        })
        .await
        .map(Option::flatten)
        .map_err(|e| e.to_string())
}

/// Prints our signals: to `--out FILE` (one JSON signal per line), else to stdout.
fn publish(common: &Common, signals: &[Signal]) -> Result<(), String> {
    let lines: Vec<String> = signals.iter().map(Signal::to_json).collect();
    match &common.out {
        Some(path) => {
            let text = lines.join("\n") + "\n";
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            for line in lines {
                if common.json {
                    let signal: serde_json::Value =
                        serde_json::from_str(&line).map_err(|e| e.to_string())?;
                    crate::emit(
                        true,
                        "signal",
                        serde_json::json!({ "signal": signal }),
                        line,
                    );
                } else {
                    println!("{line}");
                }
            }
            let _ = std::io::stdout().flush();
            Ok(())
        }
    }
}

/// The first line of `path` that is a signal; with `wait`, polls until the file has one.
async fn read_signal_file(path: &PathBuf, wait: bool) -> Result<Signal, String> {
    loop {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut error = None;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match Signal::parse(line.as_bytes()) {
                        Ok(s) => return Ok(s),
                        Err(e) => error = Some(e),
                    }
                }
                if !wait {
                    return Err(match error {
                        Some(e) => format!("{}: {e}", path.display()),
                        None => format!("{}: no signal in the file", path.display()),
                    });
                }
            }
            Err(e) if !wait => return Err(format!("cannot read {}: {e}", path.display())),
            Err(_) => {}
        }
        async_io::Timer::after(Duration::from_millis(200)).await;
    }
}

/// The first stdin line that is a signal (others are reported and skipped).
async fn next_signal(rx: &smol::channel::Receiver<Input>) -> Result<Signal, String> {
    loop {
        match rx.recv().await {
            Ok(Input::Line(line)) if line.trim().is_empty() => {}
            Ok(Input::Line(line)) => match Signal::parse(line.as_bytes()) {
                Ok(s) => return Ok(s),
                Err(e) => eprintln!("not a signal ({e}); paste it as one line of JSON"),
            },
            Ok(Input::Signal(s)) => return Ok(s),
            Ok(Input::Close) | Err(_) => return Err("no offer given".into()),
        }
    }
}

fn print_event(json: bool, peer: &PeerConnection, event: &SessionEvent) {
    match event {
        SessionEvent::Connected => crate::emit(
            json,
            "connected",
            serde_json::json!({"framed": peer.is_framed(), "max_message_size": peer.max_message_size()}),
            format!(
                "* connected ({}; messages up to {} bytes)",
                if peer.is_framed() {
                    "dhtmeet framing"
                } else {
                    "plain data channel"
                },
                peer.max_message_size()
            ),
        ),
        SessionEvent::Message(data) => {
            let text = String::from_utf8_lossy(data);
            crate::emit(
                json,
                "message",
                serde_json::json!({"text": text, "bytes": data.len()}),
                format!("<peer> {text}"),
            )
        }
        SessionEvent::Disconnected { reason } => crate::emit(
            json,
            "disconnected",
            serde_json::json!({"reason": format!("{reason:?}")}),
            format!("* disconnected ({reason:?})"),
        ),
        _ => {}
    }
}
