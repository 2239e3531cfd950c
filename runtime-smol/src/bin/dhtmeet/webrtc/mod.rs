//! `dhtmeet webrtc offer|answer`: a data channel to any standard WebRTC peer (a browser
//! tab, simple-peer, another library), with offer and answer passed by hand. Once
//! connected it behaves like `join`: stdin lines are sent, messages are printed.
//!
//! Signals (the offer or answer, trickled candidates, the end of candidates) are taken
//! at any time, on stdin and from `--offer`/`--answer` files ([`signals`]); a line that
//! is a signal is never sent as a message. [`app`] holds the two handlers the driver
//! calls: one for input, one for the connection's events.

mod app;
mod error;
mod signals;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhtmeet_core::stun::{BindingClient, StunConfig, StunEvent};
use dhtmeet_core::webrtc::{PeerConfig, PeerConnection, Signal};
use dhtmeet_smol::{Driver, random_seed, resolve_all};
use smol::channel::{Receiver, Sender};

use self::app::{App, Input};
pub(crate) use self::error::WebrtcError;
use crate::net_args::StunServers;
use crate::stun::STUN_PORT;

/// How long STUN waits for the server-reflexive address.
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
    /// STUN servers (comma-separated host:port) to learn a server-reflexive candidate
    /// from (default: $STUN_SERVERS, else none; `--stun none`: none).
    #[arg(long, value_delimiter = ',')]
    stun: Vec<String>,
    /// Write our signals (offer or answer, one JSON signal per line) to FILE instead of
    /// stdout.
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
    /// Read the answer, and any candidates, from FILE (waits until it appears, and
    /// takes lines added later) besides stdin.
    #[arg(long, value_name = "FILE")]
    answer: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnswerArgs {
    #[command(flatten)]
    common: Common,
    /// Read the offer, and any candidates, from FILE (it must hold the offer; lines
    /// added later are taken too) instead of waiting for it on stdin.
    #[arg(long, value_name = "FILE")]
    offer: Option<PathBuf>,
}

pub(crate) async fn run(command: Command) -> Result<(), WebrtcError> {
    let (common, offer_file, answer_file) = match command {
        Command::Offer(a) => (a.common, None, Some(a.answer)),
        Command::Answer(a) => (a.common, a.offer, None),
    };
    let (socket, local) = bind(common.listen)?;
    let config = peer_config(&common, &socket, local).await?;
    let (tx, rx) = smol::channel::bounded::<Input>(64);
    crate::forward_stdin(tx.clone(), Input::Line);
    let ctrl_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = ctrl_tx.try_send(Input::Close);
    });

    let start = Start {
        config,
        local,
        seed: random_seed().map_err(WebrtcError::Randomness)?,
        json: common.json,
        tx,
    };
    let (app, mut peer, ours) = match answer_file {
        Some(answer_file) => start.offer(answer_file)?,
        None => start.answer(offer_file, &rx).await?,
    };
    let ours: Vec<Signal> = std::iter::once(ours)
        .chain(std::iter::from_fn(|| peer.poll_signal()))
        .collect();
    signals::publish(common.out.as_deref(), common.json, &ours)?;
    crate::emit(
        common.json,
        "listening",
        serde_json::json!({"local": local.to_string()}),
        format!("* WebRTC on {local}"),
    );

    let deadline = common
        .exit_after
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut driver = Driver::new(socket, peer).map_err(WebrtcError::Socket)?;
    // Both handlers are the app's; the driver calls one at a time.
    let app = std::cell::RefCell::new(app);
    let outcome = driver
        .run_with_input(
            deadline,
            Some(&rx),
            |peer, input, now| app.borrow_mut().on_input(peer, input, now),
            |peer, event| app.borrow_mut().on_event(peer, event),
        )
        .await
        .map_err(WebrtcError::Socket)?;
    if let Some(Err(e)) = outcome {
        return Err(e);
    }
    close(&mut driver, common.json).await;
    Ok(())
}

/// What starting either side takes; `tx` feeds signal files into the run's input.
struct Start {
    config: PeerConfig,
    local: SocketAddr,
    seed: dhtmeet_core::Seed,
    json: bool,
    tx: Sender<Input>,
}

impl Start {
    /// The offerer: the connection, our offer, and the answer file followed if given.
    fn offer(
        self,
        answer_file: Option<PathBuf>,
    ) -> Result<(App, PeerConnection, Signal), WebrtcError> {
        let (peer, offer) =
            PeerConnection::offer(Instant::now(), self.config, self.local, self.seed)
                .map_err(WebrtcError::Offer)?;
        match answer_file {
            Some(path) => signals::follow(path, 0, true, self.tx),
            None => eprintln!("paste the answer (one line of JSON), then any candidates:"),
        }
        Ok((App::offerer(self.json), peer, offer))
    }

    /// The answerer: waits for the offer (in `offer_file`, else on stdin), answers it,
    /// and hands it the candidates that came with or before the offer.
    async fn answer(
        self,
        offer_file: Option<PathBuf>,
        rx: &Receiver<Input>,
    ) -> Result<(App, PeerConnection, Signal), WebrtcError> {
        let mut early = Vec::new();
        let offer = match offer_file {
            Some(path) => {
                let (mut found, taken) = signals::read_offer_file(&path)?;
                if !found.contains(&Signal::EndOfCandidates) {
                    signals::follow(path, taken, false, self.tx);
                }
                early = found.split_off(1);
                found.remove(0)
            }
            None => {
                eprintln!("paste the offer (one line of JSON), then any candidates:");
                signals::await_offer(rx, &mut early).await?
            }
        };
        let now = Instant::now();
        let (mut peer, answer) =
            PeerConnection::answer(now, self.config, self.local, self.seed, &offer)
                .map_err(WebrtcError::BadOffer)?;
        let mut app = App::answerer(self.json, early);
        app.take_early(&mut peer, now);
        Ok((app, peer, answer))
    }
}

/// Closes gracefully (if the peer did not) and prints the counters.
async fn close(driver: &mut Driver<PeerConnection>, json: bool) {
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
}

/// The connection's settings: framing, and our server-reflexive address if STUN
/// servers are given (`--stun`, else `STUN_SERVERS`).
async fn peer_config(
    common: &Common,
    socket: &UdpSocket,
    local: SocketAddr,
) -> Result<PeerConfig, WebrtcError> {
    let mut config = PeerConfig {
        framing: !common.plain,
        ..PeerConfig::default()
    };
    let StunServers::Given(names) = crate::net_args::stun_servers(&common.stun) else {
        return Ok(config);
    };
    let servers = resolve_all(&names, STUN_PORT)
        .await
        .map_err(WebrtcError::ResolveStun)?;
    match server_reflexive(socket, servers).await? {
        Some(mapped) if mapped != local => config.server_reflexive.push(mapped),
        Some(_) => {}
        None => eprintln!("warning: no answer from the STUN servers; host candidate only"),
    }
    Ok(config)
}

/// Binds `listen` (default `0.0.0.0:0`); the address to announce as the host candidate.
fn bind(listen: Option<SocketAddr>) -> Result<(UdpSocket, SocketAddr), WebrtcError> {
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let listen_error = |source| WebrtcError::Listen {
        addr: listen,
        source,
    };
    let socket = UdpSocket::bind(listen).map_err(listen_error)?;
    let bound = socket.local_addr().map_err(listen_error)?;
    if !bound.ip().is_unspecified() {
        return Ok((socket, bound));
    }
    // The interface of the default route: a UDP `connect` to a documentation address
    // (RFC 5737) picks the route and sends nothing. Without one: loopback.
    let ip = UdpSocket::bind("0.0.0.0:0")
        .and_then(|probe| {
            probe
                .connect("192.0.2.1:9")
                .and_then(|()| probe.local_addr())
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    Ok((socket, SocketAddr::new(ip, bound.port())))
}

/// Our address as the STUN servers see it, asked from our own socket.
async fn server_reflexive(
    socket: &UdpSocket,
    servers: Vec<SocketAddr>,
) -> Result<Option<SocketAddr>, WebrtcError> {
    let clone = socket.try_clone().map_err(WebrtcError::Socket)?;
    let config = StunConfig {
        servers,
        query_timeout: STUN_WAIT,
        retry_interval: None,
        ..StunConfig::default()
    };
    let seed = random_seed().map_err(WebrtcError::Randomness)?;
    let client =
        BindingClient::new(config, seed, Instant::now()).map_err(WebrtcError::StunConfig)?;
    let mut driver = Driver::new(clone, client).map_err(WebrtcError::Socket)?;
    driver
        .run(Some(Instant::now() + STUN_WAIT), |_, event| match event {
            StunEvent::Observed(observation) => ControlFlow::Break(Some(observation.mapped)),
            StunEvent::Finished(_) => ControlFlow::Break(None),
            StunEvent::ServerFailed { .. } => ControlFlow::Continue(()),
        })
        .await
        .map(Option::flatten)
        .map_err(WebrtcError::Socket)
}
