//! The small harness the integration tests in `tests/tests/` share: the `dhtmeet`
//! binary, child processes that are always killed, free loopback ports, and loud skips.

pub mod browser;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `dhtmeet` binary, freshly built. `cargo test` only builds the binaries of the
/// packages it tests, so a test of this package could otherwise run a stale binary: the
/// first call runs `cargo build` for it (a no-op when it is up to date).
pub fn dhtmeet_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "dhtmeet-smol", "--bin", "dhtmeet"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the dhtmeet binary");
        assert!(status.success(), "building the dhtmeet binary failed");
        let bin = dir.join("dhtmeet");
        assert!(
            bin.exists(),
            "{} is missing after cargo build",
            bin.display()
        );
        bin
    })
    .clone()
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

/// Starts `dhtmeet stun-server --listen 127.0.0.1:0` and returns it with its address,
/// read from its ready line.
pub fn spawn_dhtmeet_stun_server() -> (ChildGuard, SocketAddr) {
    let mut child = Command::new(dhtmeet_bin())
        .args(["stun-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dhtmeet stun-server");
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    (guard, addr)
}

/// Starts `dhtmeet dht node --listen 127.0.0.1:0` (a private DHT of one, which also
/// answers STUN) and returns it with its address, read from its ready line.
pub fn spawn_dhtmeet_dht_node() -> (ChildGuard, SocketAddr) {
    let mut child = Command::new(dhtmeet_bin())
        .args(["dht", "node", "--listen", "127.0.0.1:0"])
        .env_remove("NODE_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dhtmeet dht node");
    let stdout = child.stdout.take().expect("stdout");
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let addr = line
        .split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    (guard, addr)
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
