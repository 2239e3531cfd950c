//! The small harness the integration tests in `tests/tests/` share: the `dhtmeet`
//! binary, child processes that are always killed, free loopback ports, and loud skips.

pub mod browser;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// A target of this workspace, freshly built: `kind` is `"bin"` or `"example"`.
/// `cargo test` only builds the binaries of the packages it tests (and no examples), so
/// a test could otherwise run a stale or missing program: this runs `cargo build` for it
/// (a no-op when it is up to date), in the test's own profile.
pub fn cargo_built(package: &str, kind: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        package,
        &format!("--{kind}"),
        name,
    ]);
    if dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building {kind} {name} failed");
    let path = match kind {
        "example" => dir.join("examples").join(name),
        _ => dir.join(name),
    };
    assert!(
        path.exists(),
        "{} is missing after cargo build",
        path.display()
    );
    path
}

/// The `dhtmeet` binary, freshly built once per test process ([`cargo_built`]).
pub fn dhtmeet_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_built("dhtmeet-smol", "bin", "dhtmeet"))
        .clone()
}

/// The lines a child writes to `output` (its stdout or stderr), as they arrive.
pub fn lines_of(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The JSON objects a child prints one per line on `stdout` (`--json`), as they
/// arrive; other lines are skipped.
pub fn json_events(stdout: ChildStdout) -> mpsc::Receiver<serde_json::Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits up to `limit` for an event named `name`; every event seen (that one too) goes
/// into `seen`. `None` on time-out or when the child's output ended.
pub fn wait_event(
    rx: &mpsc::Receiver<serde_json::Value>,
    name: &str,
    limit: Duration,
    seen: &mut Vec<serde_json::Value>,
) -> Option<serde_json::Value> {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) => {
                seen.push(v.clone());
                if v["event"] == name {
                    return Some(v);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// A child process that is killed and reaped when dropped, even if the test panics.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
    s.local_addr().expect("local addr").port()
}

/// Whether `tool` is on PATH. If not: under CI (`CI=true`) that is a failure of
/// `.ci/run`'s installs, so panic; elsewhere print a loud SKIP line and return false.
pub fn require_tool(tool: &str, install_hint: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{tool} is not installed but CI is set: .ci/run must install it ({install_hint})"
        );
        skip_loudly(&format!(
            "{tool} is not installed ({install_hint}); this test did not run"
        ));
    }
    found
}

/// Says loudly that a test did not run: straight to the process's stderr, which the
/// test harness does not capture (`eprintln!` would show only with `--nocapture`).
pub fn skip_loudly(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {why} ***\n");
}

/// Spawns `cmd` with stdout piped and returns it with its first stdout line: the ready
/// line our servers print once they listen. Stderr is whatever `cmd` says.
pub fn spawn_until_ready(cmd: &mut Command, what: &str) -> (ChildGuard, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what}'s ready line: {e}"));
    (guard, line)
}

/// The address a ready line ends with ("… listening on 127.0.0.1:4242").
pub fn ready_addr(line: &str) -> SocketAddr {
    line.split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
}

/// Starts `dhtmeet stun-server --listen 127.0.0.1:0` and returns it with its address,
/// read from its ready line.
pub fn spawn_dhtmeet_stun_server() -> (ChildGuard, SocketAddr) {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["stun-server", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::inherit());
    let (guard, line) = spawn_until_ready(&mut cmd, "dhtmeet stun-server");
    (guard, ready_addr(&line))
}

/// Starts `dhtmeet dht node --listen 127.0.0.1:0` (a private DHT of one, which also
/// answers STUN) and returns it with its address, read from its ready line.
pub fn spawn_dhtmeet_dht_node() -> (ChildGuard, SocketAddr) {
    let mut cmd = Command::new(dhtmeet_bin());
    cmd.args(["dht", "node", "--listen", "127.0.0.1:0"])
        .env_remove("NODE_ID")
        .stderr(Stdio::null());
    let (guard, line) = spawn_until_ready(&mut cmd, "dhtmeet dht node");
    (guard, ready_addr(&line))
}

/// Polls `probe` every 50 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `len` bytes no compressor or period would fake: an xorshift stream from `seed`
/// (for files the tests send and check by SHA-256).
pub fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// An empty directory of this test process under the system's temporary directory
/// (emptied first if a previous run left it).
pub fn fresh_temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temporary directory");
    d
}
