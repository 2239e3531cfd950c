//! A real browser for interop tests: Debian's `chromium`, headless, driven through
//! `chromedriver` (W3C WebDriver over HTTP on 127.0.0.1, with a small hand-rolled HTTP
//! client), and a loopback HTTP server for the test page. Nothing is downloaded.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{ChildGuard, wait_for};

/// Chromium's switches: headless as root, nothing contacting the network on its own,
/// and WebRTC host candidates as plain loopback addresses (no mDNS names).
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
];

/// A headless Chromium under chromedriver; both end when this is dropped.
#[derive(Debug)]
pub struct Browser {
    port: u16,
    session: String,
    profile: PathBuf,
    _driver: ChildGuard,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a Chromium session; `Err` says why
    /// the browser cannot start.
    pub fn start() -> Result<Browser, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run chromedriver: {e}"))?;
        let driver = ChildGuard(child);
        wait_for(Duration::from_secs(10), || {
            http(port, "GET", "/status", None)
                .ok()
                .filter(|v| v["value"]["ready"] == json!(true))
        })
        .ok_or("chromedriver did not become ready")?;
        let profile =
            std::env::temp_dir().join(format!("dhtmeet-chromium-{}-{port}", std::process::id()));
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "timeouts": {"script": 60_000},
        }}});
        let created = http(port, "POST", "/session", Some(&caps)).map_err(|e| e.to_string())?;
        let session = created["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("chromium did not start: {}", created["value"]["message"]))?
            .to_owned();
        Ok(Browser {
            port,
            session,
            profile,
            _driver: driver,
        })
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.command("url", json!({ "url": url })).map(|_| ())
    }

    /// Awaits the JavaScript expression `expr` (it may be a promise) in the page, with
    /// `args` as `args[0]`, `args[1]` …; its value, or the exception as `Err`.
    pub fn eval(&self, expr: &str, args: Vec<Value>) -> Result<Value, String> {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const args = Array.from(arguments).slice(0, -1);
             (async () => ({{ ok: await ({expr}) }}))()
               .then(done, (e) => done({{ err: String(e) }}));"
        );
        let v = self.command("execute/async", json!({ "script": script, "args": args }))?;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(format!("page error: {}", v["err"])),
        }
    }

    fn command(&self, what: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}/{what}", self.session);
        let v = http(self.port, "POST", &path, Some(&body)).map_err(|e| e.to_string())?;
        if v["value"].get("error").is_some() {
            return Err(format!("webdriver {what}: {}", v["value"]["message"]));
        }
        Ok(v["value"].clone())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts the browser, or says loudly why not: returns `None` after printing SKIPPED,
/// except under `CI=true`, where a browser that cannot start is a failure.
pub fn browser_or_skip() -> Option<Browser> {
    if !crate::require_tool("chromium", "apt-get install -y chromium chromium-driver")
        || !crate::require_tool("chromedriver", "apt-get install -y chromium-driver")
    {
        return None;
    }
    match Browser::start() {
        Ok(b) => Some(b),
        Err(why) => {
            assert!(
                std::env::var("CI").is_err(),
                "the browser did not start under CI: {why}"
            );
            eprintln!("\n*** SKIPPED: chromium cannot start ({why}); this test did not run ***\n");
            None
        }
    }
}

/// Serves `page` to every GET on a loopback port, from a thread that lives as long as
/// the test process; returns the page's URL.
pub fn serve_page(page: &'static str) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer_get(stream, page);
        }
    });
    Ok(url)
}

fn answer_get(stream: TcpStream, page: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // The request line and headers, up to the blank line.
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    )
}

/// One HTTP/1.1 request to 127.0.0.1:`port`, JSON in and out.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> io::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open despite `Connection: close`: read the
    // header, then exactly Content-Length bytes (or chunks, or to the end).
    let mut reader = BufReader::new(stream);
    let mut length = None;
    let mut chunked = false;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        line.clear();
    }
    let content = match (length, chunked) {
        (Some(n), false) => {
            let mut body = vec![0; n];
            reader.read_exact(&mut body)?;
            body
        }
        (_, true) => read_chunks(&mut reader)?,
        (None, false) => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            body
        }
    };
    serde_json::from_slice(&content).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn read_chunks(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            return Ok(out);
        }
        let start = out.len();
        out.resize(start + size, 0);
        reader.read_exact(&mut out[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}
