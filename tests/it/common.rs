//! Shared helpers of the integration tests: start the real `zerotouch` binary on loopback
//! ports chosen by the kernel with a temporary data directory, run CLI commands against
//! it, and talk HTTP to it the way phones do (raw sockets, so every byte is ours to choose).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// User-Agents from ../shared/polycom.md.
pub const UA_VVX500_APP: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";
pub const UA_VVX500_UPDATER: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater";
pub const UA_VVX410_APP: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";
pub const UA_TRIO_APP: &str = "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:0004f2aabbcc) Type/Application";
pub const UA_SPIP_APP: &str =
    "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004a11a1a1a) Type/Application";
pub const UA_STUDIO_X30: &str =
    "FileTransport G_SERIES-PolyStudioX30-UA/3.10.0_362035 Type/Application";

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_zerotouch")
}

/// Directory of the real Polycom files the project tests against: `../shared/fixtures/polycom`
/// next to the repository (they are not copied into it), or `$ZEROTOUCH_FIXTURES`. `None`
/// (with a loud message) when neither exists.
pub fn shared_fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("ZEROTOUCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/polycom")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: no Polycom fixtures at {} (set ZEROTOUCH_FIXTURES)",
            dir.display()
        );
        None
    }
}

/// A running server with its own data directory.
pub struct ZServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub device: SocketAddr,
    /// The device HTTPS listener, when on.
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    /// Everything the server printed on stdout and stderr so far.
    pub output: Arc<Mutex<String>>,
    /// Environment of the server and of `cli` commands (e.g. the test clock).
    pub env: Vec<(String, String)>,
}

/// The variable debug builds read the clock offset from (seconds, in a file).
pub const TEST_CLOCK_VAR: &str = "ZEROTOUCH_TEST_CLOCK_FILE";

impl ZServer {
    /// Starts the server with the default test configuration.
    pub fn start() -> ZServer {
        ZServer::start_with("")
    }

    /// Starts the server; `extra` is TOML appended to the test configuration (it may add
    /// keys to `[limits]` etc. by repeating the table header is not allowed in TOML, so
    /// extra settings use dotted keys, e.g. `limits.upload_bytes = 2048`).
    pub fn start_with(extra: &str) -> ZServer {
        let dir = tempfile::tempdir().expect("tempdir");
        ZServer::start_in(dir, extra)
    }

    /// Starts the server on an existing data directory (e.g. to restart it). Listeners
    /// default to loopback port 0; `extra` may set any of them itself (e.g. to "" to turn
    /// one off), in which case the default line is left out.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> ZServer {
        ZServer::start_in_env(dir, extra, Vec::new())
    }

    /// Starts the server with a simulated clock: the server and every `cli` command add
    /// the offset `set_clock`/`advance` write (debug builds only).
    pub fn start_with_clock(extra: &str) -> ZServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = dir.path().join("clock");
        std::fs::write(&clock, "0").expect("clock");
        let env = vec![(
            TEST_CLOCK_VAR.to_string(),
            clock.to_string_lossy().into_owned(),
        )];
        ZServer::start_in_env(dir, extra, env)
    }

    /// Moves the simulated clock by `secs` (servers started with `start_with_clock`).
    pub fn advance(&self, secs: i64) {
        let clock = self.dir.path().join("clock");
        let now: i64 = std::fs::read_to_string(&clock)
            .expect("a server started with start_with_clock")
            .trim()
            .parse()
            .expect("offset");
        std::fs::write(&clock, (now + secs).to_string()).expect("clock");
    }

    /// Moves the simulated clock by whole days.
    pub fn advance_days(&self, days: i64) {
        self.advance(days * 86_400);
    }

    fn start_in_env(dir: tempfile::TempDir, extra: &str, env: Vec<(String, String)>) -> ZServer {
        let config = dir.path().join("config.toml");
        let data = dir.path().join("data");
        let mut text = format!("data_dir = {:?}\n", data.to_string_lossy());
        for (key, value) in [
            ("device.http_listen", "\"127.0.0.1:0\""),
            ("device.https_listen", "\"127.0.0.1:0\""),
            ("admin.listen", "\"127.0.0.1:0\""),
            ("recording.flush_interval_ms", "50"),
            // Every simulated phone shares 127.0.0.1, like the phones of a site behind one
            // NAT address: exempt from the per-address limits. Tests of those limits use
            // other loopback addresses (127.0.0.2 and up).
            ("limits.nat_allowlist", "[\"127.0.0.1\"]"),
        ] {
            if !extra.contains(key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(extra);
        text.push('\n');
        std::fs::write(&config, text).expect("write config");
        ZServer::spawn(dir, config, env)
    }

    fn spawn(dir: tempfile::TempDir, config: PathBuf, env: Vec<(String, String)>) -> ZServer {
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zerotouch");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().expect("lock").push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let (mut device, mut https, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The admin line comes last of the listener lines.
        while admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "server did not start; output:\n{}",
                        output.lock().expect("lock")
                    );
                }
            };
            let addr = |l: &str| -> Option<SocketAddr> {
                let rest = l.split("://").nth(1)?;
                rest.trim_end_matches('/').parse().ok()
            };
            if line.contains("device HTTP listening on") {
                device = addr(&line);
            } else if line.contains("device HTTPS listening on") {
                https = addr(&line);
            } else if line.contains("admin listening on") {
                admin = addr(&line);
            }
        }
        ZServer {
            child: Some(child),
            dir,
            config,
            // With device HTTP off, tests that talk to `device` get the HTTPS port (and a
            // TLS error if they speak plain HTTP to it).
            device: device.or(https).expect("device addr"),
            https,
            admin: admin.expect("admin addr"),
            output,
            env,
        }
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `zerotouch <args> --config <this server's config>` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run zerotouch")
    }

    /// Runs a CLI command that must fail; returns its standard error.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "zerotouch {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Like `cli`, but panics unless the command succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "zerotouch {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The default account's device credentials.
    pub fn credentials(&self) -> (String, String) {
        let out = self.cli_ok(&["account", "show", "--secrets"]);
        let field = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .expect("field")
        };
        (field("device user:"), field("device password:"))
    }

    /// Sets the device credentials to known test values and returns them.
    pub fn set_credentials(&self) -> (String, String) {
        self.cli_ok(&[
            "account",
            "set-credentials",
            "--user",
            "phones",
            "--password",
            "Test-Passw0rd-42",
        ]);
        ("phones".into(), "Test-Passw0rd-42".into())
    }

    /// A phone with this MAC and User-Agent, using the default account's credentials.
    pub fn phone(&self, mac: &str, ua: &str) -> Phone {
        let (user, password) = self.credentials();
        Phone::new(self.device, mac, ua, &user, &password)
    }

    /// Waits until the recorder has written requests of `mac` (its writes are batched, so
    /// a test that reads activity right after a request must wait for them).
    pub fn wait_recorded(&self, mac: &str) {
        let recorded = eventually(Duration::from_secs(10), || {
            let out = self.cli(&["device", "show", mac]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("access count:") && !l.trim_end().ends_with(" 0"))
        });
        assert!(recorded, "no recorded request of {mac}");
    }

    /// Sends SIGTERM and waits for the process to exit; returns its output.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.output.lock().expect("lock").clone()
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process without letting it clean up; returns the data directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let dir = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Stops the server (SIGTERM) and returns its data directory and everything it printed.
    pub fn stop_with_output(mut self) -> (tempfile::TempDir, String) {
        self.terminate();
        let out = self.output.lock().expect("lock").clone();
        let dir = tempfile::tempdir().expect("placeholder");
        (std::mem::replace(&mut self.dir, dir), out)
    }

    /// Stops the server and returns its data directory, to restart on it.
    pub fn stop_keep(mut self) -> tempfile::TempDir {
        self.terminate();
        let dir = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for ZServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary with `--config` appended to the arguments.
pub fn cli_with_config(config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run zerotouch")
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 connection with a hand-written client: every request byte is ours.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and reads its response. `headers` are added after Host.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.stream.peer_addr().expect("peer")
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "PUT" || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
        self.read_response(method == "HEAD").expect("response")
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self, head_only: bool) -> Option<Resp> {
        let end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return self.read_response(head_only);
        }
        if head_only || status == 204 || status == 304 {
            return Some(resp);
        }
        let mut resp = resp;
        if let Some(len) = resp
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < len {
                if !self.fill() {
                    return None;
                }
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.fill() {
                        return None;
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )
                .ok()?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill() {
                        return None;
                    }
                }
                resp.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Whether the server closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).expect("timeout");
        let mut b = [0u8; 1];
        let closed = matches!(self.stream.read(&mut b), Ok(0))
            || matches!(self.stream.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        closed
    }
}

/// A simulated UCS phone: keeps a connection, sends no credentials on a connection's first
/// request, answers the 401 challenge with Basic, as phones do.
pub struct Phone {
    pub addr: SocketAddr,
    pub mac: String,
    pub ua: String,
    pub user: String,
    pub password: String,
    conn: Option<Conn>,
    authed: bool,
}

impl Phone {
    pub fn new(addr: SocketAddr, mac: &str, ua: &str, user: &str, password: &str) -> Phone {
        Phone {
            addr,
            mac: mac.into(),
            ua: ua.into(),
            user: user.into(),
            password: password.into(),
            conn: None,
            authed: false,
        }
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.user, self.password))
        )
    }

    /// Sends a request, answering a 401 once with credentials.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Resp {
        self.request_with(method, path, &[], body)
    }

    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let ua = self.ua.clone();
        let auth = self.basic();
        let mut headers: Vec<(&str, &str)> = vec![("User-Agent", ua.as_str())];
        headers.extend_from_slice(extra);
        if self.authed {
            headers.push(("Authorization", auth.as_str()));
        }
        let resp = self.send(method, path, &headers, body);
        if resp.status == 401 && !self.authed {
            self.authed = true;
            headers.push(("Authorization", auth.as_str()));
            return self.send(method, path, &headers, body);
        }
        resp
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(self.addr));
        }
        let conn = self.conn.as_mut().expect("conn");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        if conn.stream.write_all(&bytes).is_err() {
            // The server closed an idle connection: reconnect once, as a phone would.
            self.conn = Some(Conn::open(self.addr));
            let conn = self.conn.as_mut().expect("conn");
            conn.send(&bytes);
        }
        let head_only = method == "HEAD";
        let conn = self.conn.as_mut().expect("conn");
        match conn.read_response(head_only) {
            Some(r) => {
                if r.header("Connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    self.conn = None;
                }
                r
            }
            None => {
                self.conn = Some(Conn::open(self.addr));
                let conn = self.conn.as_mut().expect("conn");
                conn.send(&bytes);
                conn.read_response(head_only)
                    .expect("response after reconnect")
            }
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, b"")
    }
}

/// Waits until `f` returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Writes a file into the test's temporary directory and returns its path.
pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write file");
    p
}

/// The one-time password the first start printed for `admin`.
pub fn admin_password(server: &ZServer) -> String {
    let out = server.output.lock().expect("lock").clone();
    out.lines()
        .find_map(|l| l.split("one-time password: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(String::from)
        .unwrap_or_else(|| panic!("no one-time password in the output:\n{out}"))
}

/// Creates a user (with a known password) and an API token for it; returns the token.
pub fn user_with_token(server: &ZServer, name: &str, role: &str, company: &str) -> String {
    let out = std::process::Command::new(bin())
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--company",
            company,
            "--password-stdin",
            "--config",
        ])
        .arg(&server.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"a-long-test-password\n")?;
            c.wait_with_output()
        })
        .expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
        .cli_ok(&["user", "token", name, "--name", "test"])
        .trim()
        .to_string()
}

/// One API request; `token` becomes a bearer token.
pub fn api(server: &ZServer, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    let mut conn = Conn::open(server.admin);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    conn.request(method, &format!("/api/v1{path}"), &headers, body.as_bytes())
}

/// The parsed JSON body of a response.
pub fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

/// A signed-in browser-like client: keeps the cookie, adds the CSRF token to POSTs.
pub struct Session {
    pub addr: std::net::SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn post_raw(addr: std::net::SocketAddr, path: &str, cookie: &str, body: &str) -> Resp {
    let mut c = Conn::open(addr);
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Connection", "close"),
    ];
    if !cookie.is_empty() {
        headers.push(("Cookie", cookie));
    }
    c.request("POST", path, &headers, body.as_bytes())
}

impl Session {
    pub fn sign_in(server: &ZServer, user: &str, password: &str) -> Session {
        let r = post_raw(
            server.admin,
            "/login",
            "",
            &form_body(&[("username", user), ("password", password)]),
        );
        assert_eq!(r.status, 303, "{}", r.text());
        let set = r.header("Set-Cookie").expect("cookie").to_string();
        let cookie = set.split(';').next().expect("pair").to_string();
        let mut s = Session {
            addr: server.admin,
            cookie,
            csrf: String::new(),
        };
        let page = s.get("/password");
        s.csrf = csrf_of(&page.text());
        s
    }

    /// Signs in as the first admin and replaces the one-time password.
    pub fn admin(server: &ZServer) -> Session {
        let pw = admin_password(server);
        let s = Session::sign_in(server, "admin", &pw);
        let r = s.post(
            "/password",
            &[
                ("current_password", &pw),
                ("new_password", "a-long-new-password"),
                ("repeat_password", "a-long-new-password"),
            ],
        );
        assert_eq!(r.status, 303, "{}", r.text());
        s
    }

    pub fn get(&self, path: &str) -> Resp {
        let mut c = Conn::open(self.addr);
        c.request(
            "GET",
            path,
            &[("Cookie", &self.cookie), ("Connection", "close")],
            b"",
        )
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        post_raw(self.addr, path, &self.cookie, &form_body(&all))
    }
}

pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field")
        .to_string()
}

/// A UC Software release zip in the layout Polycom ships, with test bytes for images:
/// `sip.ver`, the images (`<part>.sip.ld` for a split release, `sip.ld` for a combined
/// one), `000000000000.cfg`, configuration templates and a localization folder.
pub fn release_zip(dir: &Path, version: &str, images: &[&str]) -> PathBuf {
    let path = dir.join(format!("release-{version}-{}.zip", images.len()));
    let file = std::fs::File::create(&path).expect("create zip");
    let mut w = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("sip.ver".into(), format!("{version}\r\n").into_bytes()),
        (
            "000000000000.cfg".into(),
            b"<APPLICATION APP_FILE_PATH=\"sip.ld\" CONFIG_FILES=\"\"/>".to_vec(),
        ),
        (
            "Config/site.cfg".into(),
            b"<polycomConfig tcpIpApp.sntp.address=\"\"/>".to_vec(),
        ),
        (
            "VVXLocalization/German_Germany/VVX-dictionary.xml".into(),
            b"<dictionary/>".to_vec(),
        ),
    ];
    for image in images {
        // Test bytes: the image's name repeated, so each file differs.
        entries.push((
            image.to_string(),
            format!("{image} {version} ").repeat(2000).into_bytes(),
        ));
    }
    for (name, bytes) in &entries {
        w.start_file(name.as_str(), opts).expect("start");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish");
    path
}

/// Imports a release through the CLI (`families` for combined images).
pub fn import_release(server: &ZServer, version: &str, images: &[&str], families: &[&str]) {
    let zip = release_zip(server.dir.path(), version, images);
    let mut args = vec!["firmware", "import", zip.to_str().expect("path")];
    for f in families {
        args.extend(["--family", f]);
    }
    server.cli_ok(&args);
}
