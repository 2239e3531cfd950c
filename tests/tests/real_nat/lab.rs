//! Network namespaces that are always removed: a [`Lab`] owns the namespaces of one test
//! and every process started in them, and its `Drop` (which also runs when the test
//! panics) kills the processes, then deletes the namespaces (and with them every veth,
//! bridge and nftables table inside).
//!
//! Names are `dmnat<pid>-<test>-<role>`: unique per test process and test, so tests may
//! run in parallel. Veth pairs are created straight inside the namespaces, so nothing
//! is ever added to the host's own network namespace. Namespaces left behind by an
//! earlier run that crashed (its pid is gone) are removed on first use.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use dhtmeet_tests::ChildGuard;

/// The prefix of every namespace these tests create.
pub const PREFIX: &str = "dmnat";

/// Why the real-NAT tests cannot run here, or `None` if they can. Needs root (for
/// `ip netns`), `ip` (iproute2) and `nft` (nftables).
pub fn missing_requirement() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (apt-get install -y {package})"
            ));
        }
    }
    None
}

/// Runs `program args` and panics with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The namespaces and processes of one test.
#[derive(Debug)]
pub struct Lab {
    test: String,
    namespaces: Vec<String>,
    children: Vec<ChildGuard>,
    logs: PathBuf,
}

impl Lab {
    /// An empty lab for the test named `test` (a short tag, letters and digits).
    pub fn new(test: &str) -> Lab {
        remove_stale_namespaces();
        let logs = std::env::temp_dir().join(format!("{PREFIX}{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).expect("create the log directory");
        Lab {
            test: test.into(),
            namespaces: Vec::new(),
            children: Vec::new(),
            logs,
        }
    }

    /// Creates a namespace for `role`, with its loopback up and `sysctls` set inside it
    /// (they are per namespace), and returns its name.
    pub fn add_namespace(&mut self, role: &str, sysctls: &[&str]) -> String {
        let name = format!("{PREFIX}{}-{}-{role}", std::process::id(), self.test);
        // A name from a killed earlier run of this very test process id: start afresh.
        if list_namespaces().contains(&name) {
            remove_namespace(&name);
        }
        run("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        self.exec(&name, "ip", &["link", "set", "lo", "up"]);
        for s in sysctls {
            self.exec(&name, "sysctl", &["-q", "-w", s]);
        }
        name
    }

    /// Runs `program args` inside namespace `ns`, panicking if it fails.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Loads an nftables ruleset into namespace `ns`.
    pub fn nft(&self, ns: &str, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(ruleset.as_bytes())
            .expect("write the ruleset to nft");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft refused the ruleset in {ns}: {}\n{ruleset}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A veth pair between two namespaces: `a_if` in `a`, `b_if` in `b`, both up.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        run(
            "ip",
            &[
                "link", "add", "name", a_if, "netns", a, "type", "veth", "peer", "name", b_if,
                "netns", b,
            ],
        );
        self.exec(a, "ip", &["link", "set", a_if, "up"]);
        self.exec(b, "ip", &["link", "set", b_if, "up"]);
    }

    /// The directory of the logs and files (kept if the test fails).
    pub fn logs(&self) -> &std::path::Path {
        &self.logs
    }

    /// The file the stderr of the process named `name` goes to.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// The last `lines` lines of the stderr of the process named `name`.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts `command` inside namespace `ns` under the name `name` (its stderr goes to
    /// [`Lab::log_path`]) and keeps it, to be killed when the lab is dropped. The caller
    /// gets the child to take its stdin and stdout pipes from; it must not wait for it.
    pub fn spawn(&mut self, ns: &str, name: &str, command: &mut Command) -> &mut Child {
        let log = std::fs::File::create(self.log_path(name)).expect("create a log file");
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", ns])
            .arg(command.get_program())
            .args(command.get_args());
        for (k, v) in command.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        // `ip netns exec` execs the program, so this pid is the program's own.
        let child = wrapped
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?} in {ns}: {e}", command.get_program()));
        self.children.push(ChildGuard(child));
        &mut self.children.last_mut().expect("just pushed").0
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Our processes first (a namespace lives on while a process is inside it).
        self.children.clear();
        for ns in self.namespaces.drain(..).rev() {
            remove_namespace(&ns);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}

fn list_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Kills whatever still runs inside `ns` (only processes these tests started live in
/// these namespaces) and deletes it. Never panics: it runs in `Drop`.
fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let ok = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("warning: could not delete network namespace {ns}");
    }
}

/// Removes namespaces with our prefix whose test process no longer exists (a run that
/// was killed before its `Drop` ran). Once per test process.
fn remove_stale_namespaces() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        for ns in list_namespaces() {
            let Some(rest) = ns.strip_prefix(PREFIX) else {
                continue;
            };
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let ours = pid == std::process::id().to_string();
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if !pid.is_empty() && !ours && !alive {
                eprintln!("removing stale network namespace {ns} from an earlier run");
                remove_namespace(&ns);
            }
        }
    });
}
