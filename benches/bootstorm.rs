//! Boot-storm simulator: N phones boot at once against a provisioning server, each running
//! the full sequence of a UCS phone (../shared/polycom.md): boot-log PUT from the updater,
//! master file, the generated and profile files, overrides, licences, directory, call list,
//! application-log HEAD and PUT. A share of the phones uses HTTPS with a full handshake, a
//! share is unknown (404 → `000000000000.cfg` → `<mac>-stage.cfg`), a share downloads a
//! firmware image. Every connection starts without credentials and answers the 401, as
//! phones do.
//!
//! It is a measuring tool, not a test: run it through `scripts/bench-bootstorm.sh`, which
//! starts zerotouch and nginx with the same bytes and prints the ratios. Run alone:
//!   cargo bench --bench bootstorm -- --http 127.0.0.1:8080 --phones 1000 ...
//! Only loopback addresses are accepted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// What one run does.
#[derive(Debug, Clone)]
struct Options {
    label: String,
    http: SocketAddr,
    https: Option<SocketAddr>,
    ca: Option<String>,
    phones: usize,
    concurrency: usize,
    https_share: f64,
    unknown_share: f64,
    firmware_share: f64,
    firmware_path: String,
    idle: usize,
    user: String,
    password: String,
    /// Known phones are 0004f2000000 + i; unknown ones 0004f3000000 + i.
    first: usize,
    time_limit: Duration,
    server_pid: Option<u32>,
    /// Only the master, generated and profile files (the 1,400 req/s comparison).
    configs_only: bool,
}

fn parse_args() -> Options {
    let mut o = Options {
        label: "server".into(),
        http: "127.0.0.1:8080".parse().expect("addr"),
        https: None,
        ca: None,
        phones: 1000,
        concurrency: 100,
        https_share: 0.0,
        unknown_share: 0.0,
        firmware_share: 0.0,
        firmware_path: "firmware/5.9.8.1234/3111-48500-001.sip.ld".into(),
        idle: 0,
        user: "phones".into(),
        password: "Bench-Passw0rd-1".into(),
        first: 0,
        time_limit: Duration::from_secs(300),
        server_pid: None,
        configs_only: false,
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut i = 0;
    while i < args.len() {
        let key = args[i].as_str();
        let val = args.get(i + 1).cloned().unwrap_or_default();
        let mut took = true;
        match key {
            "--label" => o.label = val,
            "--http" => o.http = val.parse().expect("--http IP:PORT"),
            "--https" => o.https = Some(val.parse().expect("--https IP:PORT")),
            "--ca" => o.ca = Some(val),
            "--phones" => o.phones = val.parse().expect("--phones N"),
            "--concurrency" => o.concurrency = val.parse().expect("--concurrency N"),
            "--https-share" => o.https_share = val.parse().expect("--https-share 0..1"),
            "--unknown-share" => o.unknown_share = val.parse().expect("--unknown-share 0..1"),
            "--firmware-share" => o.firmware_share = val.parse().expect("--firmware-share 0..1"),
            "--firmware-path" => o.firmware_path = val,
            "--idle" => o.idle = val.parse().expect("--idle N"),
            "--user" => o.user = val,
            "--password" => o.password = val,
            "--first" => o.first = val.parse().expect("--first N"),
            "--time-limit" => {
                o.time_limit = Duration::from_secs(val.parse().expect("--time-limit SECS"))
            }
            "--server-pid" => o.server_pid = Some(val.parse().expect("--server-pid PID")),
            "--configs-only" => {
                o.configs_only = true;
                took = false;
            }
            other => panic!("unknown option {other}"),
        }
        i += if took { 2 } else { 1 };
    }
    for addr in std::iter::once(o.http).chain(o.https) {
        assert!(
            addr.ip().is_loopback(),
            "the simulator only talks to loopback addresses"
        );
    }
    o
}

/// One step of a phone's boot.
struct Step {
    method: &'static str,
    path: String,
    /// Statuses that are normal for this step (404 on optional files is normal).
    ok: &'static [u16],
    body: Option<&'static [u8]>,
    updater: bool,
}

const OK: &[u16] = &[200];
const OPTIONAL: &[u16] = &[200, 404];
const STORED: &[u16] = &[200, 201, 204];
const BOOT_LOG: &[u8] = b"0101000000|boot |1|00|Bootstrap: application starting\n";
const APP_LOG: &[u8] = b"0101000010|app1 |1|00|Application, main: Starting\n";

fn known_steps(mac: &str, o: &Options, firmware: bool) -> Vec<Step> {
    let s = |method, path: String, ok, body, updater| Step {
        method,
        path,
        ok,
        body,
        updater,
    };
    if o.configs_only {
        return vec![
            s("GET", format!("/{mac}.cfg"), OK, None, false),
            s("GET", format!("/{mac}-device.cfg"), OK, None, false),
            s("GET", format!("/{mac}-profile.cfg"), OK, None, false),
        ];
    }
    let mut v = vec![
        s(
            "PUT",
            format!("/{mac}-boot.log"),
            STORED,
            Some(BOOT_LOG),
            true,
        ),
        s("GET", format!("/{mac}.cfg"), OK, None, false),
    ];
    if firmware {
        v.push(s("GET", format!("/{}", o.firmware_path), OK, None, false));
    }
    v.extend([
        s("GET", format!("/{mac}-device.cfg"), OK, None, false),
        s("GET", format!("/{mac}-profile.cfg"), OK, None, false),
        s(
            "GET",
            format!("/overrides/{mac}-phone.cfg"),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "GET",
            format!("/overrides/{mac}-web.cfg"),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "GET",
            "/000000000000-license.cfg".into(),
            OPTIONAL,
            None,
            false,
        ),
        s("GET", format!("/{mac}-license.cfg"), OPTIONAL, None, false),
        s(
            "GET",
            format!("/calllists/{mac}-calls.xml"),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "GET",
            format!("/contacts/{mac}-directory.xml"),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "GET",
            "/000000000000-directory.xml".into(),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "HEAD",
            format!("/logs/{mac}-app.log"),
            OPTIONAL,
            None,
            false,
        ),
        s(
            "PUT",
            format!("/logs/{mac}-app.log"),
            STORED,
            Some(APP_LOG),
            false,
        ),
    ]);
    v
}

fn unknown_steps(mac: &str) -> Vec<Step> {
    vec![
        Step {
            method: "GET",
            path: format!("/{mac}.cfg"),
            ok: &[404],
            body: None,
            updater: false,
        },
        Step {
            method: "GET",
            path: "/000000000000.cfg".into(),
            ok: OK,
            body: None,
            updater: false,
        },
        Step {
            method: "GET",
            path: format!("/{mac}-stage.cfg"),
            ok: OK,
            body: None,
            updater: false,
        },
    ]
}

/// Per-thread results, merged at the end.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    requests: u64,
    phones_done: u64,
    errors: BTreeMap<String, u64>,
    firmware_bytes: u64,
}

impl Tally {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A keep-alive connection with a small response reader.
struct Conn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    authed: bool,
}

enum Outcome {
    /// A complete response; `closing` when the server ends the connection after it.
    Status {
        status: u16,
        len: usize,
        closing: bool,
    },
    Closed,
}

impl Conn {
    fn open(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let conn = rustls::ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                // Complete the handshake now, so its cost lands on the connect.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Box::new(s)
            }
        };
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            authed: false,
        })
    }

    fn send(&mut self, step: &Step, ua: &str, auth: Option<&str>) -> std::io::Result<Outcome> {
        let mut req = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {ua}\r\n",
            step.method, step.path, "zerotouch"
        );
        if let Some(a) = auth {
            req.push_str("Authorization: ");
            req.push_str(a);
            req.push_str("\r\n");
        }
        if let Some(body) = step.body {
            req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut bytes = req.into_bytes();
            bytes.extend_from_slice(body);
            self.stream.write_all(&bytes)?;
        } else {
            req.push_str("\r\n");
            self.stream.write_all(req.as_bytes())?;
        }
        self.stream.flush()?;
        self.read(step.method == "HEAD")
    }

    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn read(&mut self, head_only: bool) -> std::io::Result<Outcome> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if !self.fill()? {
                return Ok(Outcome::Closed);
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let lower = head.to_ascii_lowercase();
        let len: usize = lower
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        let closing = lower.contains("connection: close");
        if head_only || status == 304 || status == 204 {
            return Ok(Outcome::Status {
                status,
                len: 0,
                closing,
            });
        }
        while self.buf.len() < len {
            if !self.fill()? {
                return Ok(Outcome::Closed);
            }
        }
        self.buf.drain(..len);
        Ok(Outcome::Status {
            status,
            len,
            closing,
        })
    }
}

/// Runs one phone's boot; returns false if it gave up.
fn boot(
    o: &Options,
    index: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
    auth: &str,
    t: &mut Tally,
) -> bool {
    let frac = |share: f64, salt: usize| {
        ((index.wrapping_mul(2654435761).wrapping_add(salt)) % 10_000) as f64 / 10_000.0 < share
    };
    let unknown = frac(o.unknown_share, 17);
    let secure = !unknown && frac(o.https_share, 91) && tls.is_some();
    let firmware = !unknown && frac(o.firmware_share, 7);
    let mac = if unknown {
        format!("0004f3{:06x}", o.first + index)
    } else {
        format!("0004f2{:06x}", o.first + index)
    };
    let steps = if unknown {
        unknown_steps(&mac)
    } else {
        known_steps(&mac, o, firmware)
    };
    let app_ua =
        format!("FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:{mac}) Type/Application");
    let updater_ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Updater".to_string();
    let addr = if secure {
        o.https.unwrap_or(o.http)
    } else {
        o.http
    };
    let mut conn: Option<Conn> = None;
    for step in &steps {
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > 3 {
                t.error("gave up after 3 tries");
                return false;
            }
            if conn.is_none() {
                let started = Instant::now();
                match Conn::open(addr, if secure { tls } else { None }) {
                    Ok(c) => {
                        if secure {
                            t.latencies_us.push(started.elapsed().as_micros() as u32);
                        }
                        conn = Some(c);
                    }
                    Err(e) => {
                        t.error(format!("connect: {}", e.kind()));
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connection");
            let ua = if step.updater { &updater_ua } else { &app_ua };
            let started = Instant::now();
            let result = c.send(step, ua, c.authed.then_some(auth));
            let micros = started.elapsed().as_micros() as u32;
            t.requests += 1;
            t.latencies_us.push(micros);
            match result {
                Ok(Outcome::Status {
                    status,
                    len,
                    closing,
                }) => {
                    if closing {
                        conn = None;
                    }
                    if status == 401 && !conn.as_ref().is_some_and(|c| c.authed) {
                        // The phone's first request on a connection carries no credentials.
                        if let Some(c) = conn.as_mut() {
                            c.authed = true;
                        } else {
                            t.error("401 then close");
                        }
                        continue;
                    }
                    if step.path.contains(".sip.ld") {
                        t.firmware_bytes += len as u64;
                    }
                    if status == 503 || status == 429 {
                        t.error(format!("{status} (shed)"));
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                    if !step.ok.contains(&status) {
                        t.error(format!(
                            "{} {} -> {status}",
                            step.method,
                            kind_of(&step.path)
                        ));
                    }
                    break;
                }
                Ok(Outcome::Closed) => {
                    conn = None;
                    t.error("closed mid-response");
                }
                Err(e) => {
                    conn = None;
                    t.error(format!("io: {}", e.kind()));
                }
            }
        }
    }
    t.phones_done += 1;
    true
}

fn kind_of(path: &str) -> &'static str {
    if path.ends_with("-boot.log") || path.ends_with("-app.log") {
        "log"
    } else if path.ends_with("-device.cfg") {
        "device.cfg"
    } else if path.ends_with("-profile.cfg") {
        "profile.cfg"
    } else if path.ends_with("-stage.cfg") {
        "stage.cfg"
    } else if path.contains(".sip.ld") {
        "firmware"
    } else if path.ends_with(".cfg") {
        "cfg"
    } else {
        "other"
    }
}

/// Resident memory and thread count of a process, from /proc.
fn proc_status(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

fn tls_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).expect("--ca file");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: rustls::pki_types::CertificateDer<'static> = cert.expect("CA PEM");
        roots.add(cert).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every phone does a full handshake: no session cache, no tickets.
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Holds `n` idle keep-alive connections open for the length of the storm.
fn hold_idle(
    addr: SocketAddr,
    n: usize,
    auth: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        let mut failed = 0;
        for i in 0..n {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(mut s) => {
                    let req = format!(
                        "GET /0004f2{:06x}.cfg HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n",
                        i % 1000
                    );
                    let _ = s.write_all(req.as_bytes());
                    conns.push(s);
                }
                Err(_) => failed += 1,
            }
        }
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // How many are still open: a read that times out means the server kept it.
        let mut open = 0;
        for mut s in conns {
            let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
            let mut b = [0u8; 65536];
            loop {
                match s.read(&mut b) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        open += 1;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        (open, failed)
    })
}

fn main() {
    let o = parse_args();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", o.user, o.password))
    );
    let tls = o.ca.as_deref().map(tls_config);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + o.time_limit;
    let stop = Arc::new(AtomicBool::new(false));
    let idle = (o.idle > 0).then(|| hold_idle(o.http, o.idle, auth.clone(), stop.clone()));
    if idle.is_some() {
        // Let the idle connections settle before the storm starts.
        std::thread::sleep(Duration::from_millis(500 + o.idle as u64 / 10));
    }
    // Sample the server's memory and threads while the storm runs.
    let peak = Arc::new(Mutex::new((0u64, 0u64)));
    let sampler = o.server_pid.map(|pid| {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, threads)) = proc_status(pid) {
                    let mut p = peak.lock().expect("lock");
                    p.0 = p.0.max(rss);
                    p.1 = p.1.max(threads);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..o.concurrency)
        .map(|_| {
            let (o, next, tls, auth) = (o.clone(), next.clone(), tls.clone(), auth.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut t = Tally::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= o.phones || Instant::now() > deadline {
                            break;
                        }
                        boot(&o, i, tls.as_ref(), &auth, &mut t);
                    }
                    t
                })
                .expect("spawn")
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.join().expect("worker");
        all.latencies_us.extend(t.latencies_us);
        all.requests += t.requests;
        all.phones_done += t.phones_done;
        all.firmware_bytes += t.firmware_bytes;
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let idle_result = idle.map(|h| h.join().expect("idle holder"));
    if let Some(s) = sampler {
        let _ = s.join();
    }
    all.latencies_us.sort_unstable();
    let l = &all.latencies_us;
    let (rss, threads) = *peak.lock().expect("lock");
    let errors: u64 = all.errors.values().sum();
    // One machine-readable line for the script, then the details.
    println!(
        "RESULT label={} phones={} seconds={:.2} phones_per_s={:.0} requests={} requests_per_s={:.0} p50_ms={:.2} p95_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={} firmware_mb_per_s={:.1} peak_rss_mb={:.1} peak_threads={} idle_open={} idle_failed={}",
        o.label,
        all.phones_done,
        elapsed,
        all.phones_done as f64 / elapsed,
        all.requests,
        all.requests as f64 / elapsed,
        percentile(l, 0.50),
        percentile(l, 0.95),
        percentile(l, 0.99),
        percentile(l, 1.0),
        errors,
        all.firmware_bytes as f64 / 1e6 / elapsed,
        rss as f64 / 1024.0,
        threads,
        idle_result.map_or(0, |r| r.0),
        idle_result.map_or(0, |r| r.1),
    );
    for (kind, n) in &all.errors {
        println!("  error {kind}: {n}");
    }
}
