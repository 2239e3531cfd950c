//! `dhtmeet join`: join a meeting; stdin lines go to every member, messages are printed.

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dhtmeet_core::dht::DhtConfig;
use dhtmeet_core::meeting::code::{self, CodeStrength, RECOMMENDED_BITS};
use dhtmeet_core::{Event, Node, NodeConfig, Seed};
use dhtmeet_smol::{Driver, random_seed, resolve_all};

use crate::stun::STUN_PORT;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The invitation code (default: $MEETING_CODE; with neither, a new code is made
    /// and printed: give it to the others).
    #[arg(env = "MEETING_CODE")]
    code: Option<String>,
    /// DHT nodes to bootstrap from (comma-separated host:port). Default: the public
    /// Mainline routers (the real Internet). `--bootstrap none` starts a new network.
    #[arg(long, value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// STUN servers (comma-separated host:port; default: $STUN_SERVERS).
    #[arg(long, value_delimiter = ',')]
    stun: Vec<String>,
    /// Local address to bind (default 0.0.0.0:0).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// One JSON object per line per event instead of text.
    #[arg(long)]
    json: bool,
    /// Leave the meeting after this many seconds.
    #[arg(long)]
    exit_after: Option<f64>,
    /// Accept a typed code that is too weak to protect the meeting.
    #[arg(long)]
    allow_weak_code: bool,
    /// A fixed DHT node id (40 hex characters); default: random, BEP 42-secure once the
    /// public address is known.
    #[arg(long, env = "NODE_ID")]
    node_id: Option<String>,
    #[command(flatten)]
    state: crate::saved_state::StateArgs,
}

enum Command {
    Line(String),
    Leave,
    SaveState,
}

/// The address of this machine's interface towards `dest`: a UDP `connect` picks the
/// route and sends nothing.
fn local_ip_towards(dest: SocketAddr) -> Option<IpAddr> {
    let bind = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let probe = UdpSocket::bind(bind).ok()?;
    probe.connect(dest).ok()?;
    probe
        .local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

fn emit(json: bool, event: &str, fields: serde_json::Value, text: String) {
    if json {
        let mut obj = fields;
        obj["event"] = event.into();
        println!("{obj}");
    } else {
        println!("{text}");
    }
    let _ = std::io::stdout().flush();
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    let (code, generated) = match &args.code {
        Some(c) => (c.clone(), false),
        None => {
            let seed = random_seed().map_err(|e| format!("no OS randomness: {e}"))?;
            (code::generate(&mut seed.rng()), true)
        }
    };
    let strength = code::check(&code, args.allow_weak_code).map_err(|e| e.to_string())?;
    if let CodeStrength::Custom { estimated_bits } = strength {
        if estimated_bits < RECOMMENDED_BITS {
            eprintln!(
                "WARNING: this meeting code is weak (about {estimated_bits} bits): anyone who sees the meeting \
                 in the DHT can guess it offline and join. Use a generated code (run `dhtmeet join` with no code)."
            );
        }
    }
    let bootstrap_names: Vec<String> = match args.bootstrap.as_slice() {
        [] => {
            eprintln!(
                "note: bootstrapping from the public Mainline routers (give --bootstrap to use your own)"
            );
            dhtmeet_smol::MAINLINE_ROUTERS
                .iter()
                .map(|s| s.to_string())
                .collect()
        }
        [none] if none == "none" => Vec::new(),
        given => given.to_vec(),
    };
    let (remembered, saved) = crate::saved_state::Remembered::open(&args.state);
    let bootstrap = crate::saved_state::resolve_bootstrap(&bootstrap_names, saved.as_ref()).await?;
    let remembers_nodes = saved.as_ref().is_some_and(|s| !s.nodes.is_empty());
    let stun = resolve_all(&crate::servers_from_args_or_env(&args.stun), STUN_PORT)
        .await
        .map_err(|e| e.to_string())?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let socket = UdpSocket::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = socket.local_addr().map_err(|e| e.to_string())?;
    let local = if bound.ip().is_unspecified() {
        let towards = bootstrap
            .iter()
            .chain(&stun)
            .next()
            .copied()
            .or_else(|| crate::saved_state::first_node(saved.as_ref()));
        let ip = towards.and_then(local_ip_towards).ok_or(
            "cannot tell this machine's address: give --listen with a specific address, or --bootstrap/--stun",
        )?;
        SocketAddr::new(ip, bound.port())
    } else {
        bound
    };
    let seed: Seed = random_seed().map_err(|e| format!("no OS randomness: {e}"))?;
    let mut config = NodeConfig::new(seed);
    config.stun.servers = stun;
    let node_id = args
        .node_id
        .as_deref()
        .map(|h| {
            h.parse()
                .map_err(|e| format!("NODE_ID / --node-id {h:?}: {e}"))
        })
        .transpose()?;
    config.dht = Some(DhtConfig {
        bootstrap: bootstrap.clone(),
        node_id,
        ..DhtConfig::default()
    });
    config.local_addr = Some(local);
    config.saved_state = saved;
    let mut node = Node::new(config, Instant::now()).map_err(|e| e.to_string())?;
    let (me, strength) = node
        .join(&code, args.allow_weak_code, Instant::now())
        .map_err(|e| e.to_string())?;
    let topic = node
        .meeting()
        .map(|m| m.topic().to_string())
        .unwrap_or_default();
    // Ctrl-C leaves cleanly from the moment "joined" is printed (a handler installed
    // after it let an early Ctrl-C kill the process without a bye or a save).
    let (tx, rx) = smol::channel::bounded::<Command>(64);
    let ctrl_tx = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = ctrl_tx.try_send(Command::Leave);
    });
    if generated {
        eprintln!("Your invitation code (give it to the others): {code}");
    }
    emit(
        args.json,
        "joined",
        serde_json::json!({"member": me.to_string(), "topic": topic, "local": local.to_string(),
            "code": if generated { Some(code.clone()) } else { None }, "code_bits": strength.bits()}),
        format!(
            "* joined meeting {topic} as member {me} on {local} (code: {} bits)",
            strength.bits()
        ),
    );
    if bootstrap.is_empty() && !remembers_nodes {
        eprintln!("note: a new DHT network: others must bootstrap from {local}");
    }

    let stdin_tx = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if stdin_tx.send_blocking(Command::Line(line)).is_err() {
                break;
            }
        }
        // End of input does not leave the meeting.
    });
    remembered.spawn_ticker(tx.clone(), || Command::SaveState);
    let deadline = args
        .exit_after
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut driver = Driver::new(socket, node).map_err(|e| e.to_string())?;
    let json = args.json;
    let outcome = driver
        .run_with_input(
            deadline,
            Some(&rx),
            |node, command, _now| match command {
                Command::Line(line) => {
                    let full = node.broadcast(line.as_bytes());
                    for m in full {
                        eprintln!("warning: {m} is not reading fast enough; line not sent to it");
                    }
                    ControlFlow::Continue(())
                }
                Command::Leave => ControlFlow::Break(()),
                Command::SaveState => {
                    remembered.save(node);
                    ControlFlow::Continue(())
                }
            },
            |node, event| {
                print_event(json, &event);
                remembered.after_event(node, &event);
                ControlFlow::Continue(())
            },
        )
        .await;
    let _ = outcome.map_err(|e| format!("socket error: {e}"))?;
    // Leave cleanly: byes out, sessions closed, then a moment for the byes to leave.
    driver.machine_mut().leave(Instant::now());
    remembered.save(driver.machine());
    let _ = driver
        .run(Some(Instant::now() + Duration::from_millis(300)), |_, e| {
            print_event(json, &e);
            ControlFlow::<()>::Continue(())
        })
        .await;
    emit(
        json,
        "left",
        serde_json::json!({}),
        "* left the meeting".into(),
    );
    Ok(())
}

fn print_event(json: bool, event: &Event) {
    let peer = |m: &dhtmeet_core::meeting::signal::MemberId| m.to_string();
    match event {
        Event::AddressDiscovered(r) => emit(
            json,
            "address_discovered",
            serde_json::json!({"address": r.first.mapped.to_string(), "mapping": r.mapping.as_str()}),
            format!(
                "* public address {} ({})",
                r.first.mapped,
                r.mapping.as_str()
            ),
        ),
        Event::DhtReady { nodes } => emit(
            json,
            "dht_ready",
            serde_json::json!({"nodes": nodes}),
            format!("* DHT ready ({nodes} nodes)"),
        ),
        Event::DhtBootstrapFailed => emit(
            json,
            "error",
            serde_json::json!({"error": "no DHT bootstrap node answered"}),
            "! no DHT bootstrap node answered; retrying".into(),
        ),
        Event::StunUnreachable(e) => emit(
            json,
            "error",
            serde_json::json!({"error": e.to_string()}),
            format!("! {e}"),
        ),
        Event::PeerDiscovered { addr } => emit(
            json,
            "peer_discovered",
            serde_json::json!({"address": addr.to_string()}),
            format!("* found {addr} under the meeting's topic"),
        ),
        Event::PeerConnecting { member, addr } => emit(
            json,
            "peer_connecting",
            serde_json::json!({"peer": peer(member), "address": addr.to_string()}),
            format!("* connecting to member {member} at {addr}"),
        ),
        Event::PeerConnected { member } => emit(
            json,
            "peer_connected",
            serde_json::json!({"peer": peer(member)}),
            format!("* connected to member {member}"),
        ),
        Event::PeerReconnecting {
            member,
            reason,
            attempt,
        } => emit(
            json,
            "peer_disconnected",
            serde_json::json!({"peer": peer(member), "reason": format!("{reason:?}"), "reconnect_attempt": attempt}),
            format!("* lost member {member} ({reason:?}); reconnecting (attempt {attempt})"),
        ),
        Event::PeerDisconnected { member, reason } => emit(
            json,
            "peer_disconnected",
            serde_json::json!({"peer": peer(member), "reason": format!("{reason:?}")}),
            format!("* member {member} is gone ({reason:?})"),
        ),
        Event::Message { member, data } => {
            let text = String::from_utf8_lossy(data);
            emit(
                json,
                "message",
                serde_json::json!({"peer": peer(member), "text": text, "bytes": data.len()}),
                format!("<{member}> {text}"),
            )
        }
        _ => {}
    }
}
