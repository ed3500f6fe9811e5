//! Boot-storm simulator: N phones boot at once against a provisioning server. Each phone is
//! the test suite's phone simulator (`tests/it/sim`, included below): it reads its master
//! file's CONFIG_FILES (no list of its own), fetches firmware by its part-number name when
//! the version differs, answers the 401 of every new connection as the challenge offers
//! (Digest where offered, as phones do), uploads its logs, adopts `device.*` values with
//! `device.set` and reboots until nothing changes, so an Auto-Sync rollout costs here what
//! it costs with real phones (a boot and a reboot).
//!
//! A phone counts as an error unless its last boot ended `Configured`: any CONFIG_FILES entry
//! not 2xx, a broken file, a failed download, a refused master, a dropped connection. The
//! 401 challenges and the optional files' 404s are normal. The script prints a ratio only
//! when neither server had an error (else INVALID).
//!
//! It is a measuring tool, not a test: run it through `scripts/bench-bootstorm.sh`, which
//! starts zerotouch and nginx and gives nginx the bytes zerotouch served in the same phase
//! (`--save`). Run alone:
//!   cargo bench --bench bootstorm -- --http 127.0.0.1:8080 --phones 1000 ...
//! Only loopback addresses are accepted.

#[path = "../tests/it/sim/mod.rs"]
mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sim::{Boot, SimPhone};

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
    idle: usize,
    user: String,
    password: String,
    /// Known phones are 0004f2000000 + i; unknown ones 0004f3000000 + i.
    first: usize,
    time_limit: Duration,
    server_pid: Option<u32>,
    /// Master, CONFIG_FILES and firmware only (the peers' req/s comparison).
    configs_only: bool,
    /// Phones as after their first boot: serial tag on, boot server Static.
    provisioned: bool,
    /// The application version the phones run (the profile's: no download).
    version: String,
    /// Most boots per phone (a boot and the reboots its adopted values cause).
    max_boots: u32,
    /// Answer challenges with Basic even where Digest is offered.
    basic: bool,
    /// Where to write the bytes of every 2xx GET (first seen per path), after the storm.
    save: Option<PathBuf>,
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
        idle: 0,
        user: "phones".into(),
        password: "Bench-Passw0rd-1".into(),
        first: 0,
        time_limit: Duration::from_secs(300),
        server_pid: None,
        configs_only: false,
        provisioned: false,
        version: "5.9.8.1234".into(),
        max_boots: 4,
        basic: false,
        save: None,
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
            "--idle" => o.idle = val.parse().expect("--idle N"),
            "--user" => o.user = val,
            "--password" => o.password = val,
            "--first" => o.first = val.parse().expect("--first N"),
            "--time-limit" => {
                o.time_limit = Duration::from_secs(val.parse().expect("--time-limit SECS"))
            }
            "--server-pid" => o.server_pid = Some(val.parse().expect("--server-pid PID")),
            "--version" => o.version = val,
            "--max-boots" => o.max_boots = val.parse().expect("--max-boots N"),
            "--save" => o.save = Some(PathBuf::from(val)),
            "--configs-only" | "--provisioned" | "--basic" => {
                match key {
                    "--configs-only" => o.configs_only = true,
                    "--provisioned" => o.provisioned = true,
                    _ => o.basic = true,
                }
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

/// Per-thread results, merged at the end.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    requests: u64,
    boots: u64,
    phones_done: u64,
    /// Phones whose last boot did not end `Configured`, by what happened.
    errors: BTreeMap<String, u64>,
    /// Answers other than 2xx, by status (challenges and optional 404s included).
    statuses: BTreeMap<u16, u64>,
    firmware_bytes: u64,
    connections: u64,
    /// First 2xx body seen per path (with `--save`).
    bodies: BTreeMap<String, Vec<u8>>,
}

/// A phone of the storm, built as the phase asks.
fn phone(o: &Options, index: usize, ca: &str) -> SimPhone {
    let frac = |share: f64, salt: usize| {
        ((index.wrapping_mul(2654435761).wrapping_add(salt)) % 10_000) as f64 / 10_000.0 < share
    };
    let unknown = frac(o.unknown_share, 17);
    let secure = !unknown && frac(o.https_share, 91) && o.https.is_some();
    let mac = if unknown {
        format!("0004f3{:06x}", o.first + index)
    } else {
        format!("0004f2{:06x}", o.first + index)
    };
    let (addr, kind) = match (secure, o.https) {
        (true, Some(s)) => (s, "HTTPS"),
        _ => (o.http, "HTTP"),
    };
    let mut p = SimPhone::new(&mac, &addr.to_string(), &o.user, &o.password)
        .with_model(sim::VVX_501)
        .with_version(&o.version)
        .hold(sim::SERVER_TYPE, kind)
        .trust(ca)
        .timeout(Duration::from_secs(30));
    if o.provisioned {
        p = p
            .hold(sim::TAG_SERIAL, "1")
            .hold(sim::BOOT_SERVER, "Static");
    }
    if o.configs_only {
        p = p.with_sequence(sim::Sequence::Config);
    }
    if o.basic {
        p = p.auth_mode(sim::AuthMode::Basic);
    }
    if o.save.is_some() {
        p = p.keep_bodies();
    }
    p
}

/// Boots one phone until it is stable; tallies its requests and outcome.
fn run_phone(o: &Options, index: usize, ca: &str, t: &mut Tally) {
    let mut p = phone(o, index, ca);
    let mut last = Boot::Configured;
    for _ in 0..o.max_boots {
        last = p.boot();
        t.boots += 1;
        if let Some(bodies) = p.bodies.as_mut() {
            for (path, body) in bodies.drain(..) {
                t.bodies.entry(path).or_insert(body);
            }
        }
        let rebooting = match &last {
            Boot::Rebooted(_) => true,
            Boot::Incomplete { adopted, .. } => !adopted.is_empty(),
            _ => false,
        };
        if !rebooting {
            break;
        }
    }
    for r in p.requests() {
        t.requests += 1;
        t.latencies_us.push(r.micros.min(u32::MAX as u64) as u32);
        if !(200..300).contains(&r.status) {
            *t.statuses.entry(r.status).or_default() += 1;
        }
    }
    t.firmware_bytes += p.firmware_updates.iter().map(|f| f.bytes).sum::<u64>();
    t.connections += p.conn_stats().opened;
    match last {
        Boot::Configured => t.phones_done += 1,
        Boot::Rebooted(_) => *t.errors.entry("still rebooting".into()).or_default() += 1,
        Boot::Incomplete { failed, .. } => {
            for f in failed {
                let kind = format!(
                    "{} {}: {}",
                    kind_of(&f.url),
                    f.status.map_or("-".to_string(), |s| s.to_string()),
                    f.what.split(':').next().unwrap_or("")
                );
                *t.errors.entry(kind).or_default() += 1;
            }
        }
        Boot::Refused { status, .. } => {
            *t.errors
                .entry(format!("master refused {status}"))
                .or_default() += 1
        }
        Boot::Unreachable(e) => {
            *t.errors
                .entry(format!(
                    "unreachable: {}",
                    e.split(':').next().unwrap_or("")
                ))
                .or_default() += 1
        }
        Boot::Stranded { protocol } => {
            *t.errors
                .entry(format!("stranded on {protocol}"))
                .or_default() += 1
        }
    }
}

fn kind_of(url: &str) -> &'static str {
    if url.ends_with(".log") {
        "log"
    } else if url.ends_with("-device.cfg") {
        "device.cfg"
    } else if url.contains("-profile") {
        "profile.cfg"
    } else if url.ends_with("-stage.cfg") {
        "stage.cfg"
    } else if url.contains(".sip.ld") {
        "firmware"
    } else if url.ends_with(".cfg") {
        "cfg"
    } else if url.is_empty() {
        "connection"
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

/// Writes the bodies under `dir` by path (after the storm, so the writes cost it nothing).
fn save(dir: &Path, bodies: &BTreeMap<String, Vec<u8>>) {
    for (path, body) in bodies {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|s| s == ".." || s.is_empty()) {
            continue;
        }
        let file = dir.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("save dir");
        }
        std::fs::write(&file, body).expect("save");
    }
}

fn main() {
    let o = parse_args();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", o.user, o.password))
    );
    let ca =
        o.ca.as_deref()
            .map(|f| std::fs::read_to_string(f).expect("--ca file"))
            .unwrap_or_default();
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
            let (o, next, ca) = (o.clone(), next.clone(), ca.clone());
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || {
                    let mut t = Tally::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= o.phones || Instant::now() > deadline {
                            break;
                        }
                        run_phone(&o, i, &ca, &mut t);
                    }
                    t
                })
                .expect("spawn")
        })
        .collect();
    let mut all = Tally::default();
    let mut saved = BTreeMap::new();
    for w in workers {
        let t = w.join().expect("worker");
        all.latencies_us.extend(t.latencies_us);
        all.requests += t.requests;
        all.boots += t.boots;
        all.phones_done += t.phones_done;
        all.firmware_bytes += t.firmware_bytes;
        all.connections += t.connections;
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
        for (k, v) in t.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        for (k, v) in t.bodies {
            saved.entry(k).or_insert(v);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let idle_result = idle.map(|h| h.join().expect("idle holder"));
    if let Some(s) = sampler {
        let _ = s.join();
    }
    if let Some(dir) = &o.save {
        save(dir, &saved);
    }
    all.latencies_us.sort_unstable();
    let l = &all.latencies_us;
    let (rss, threads) = *peak.lock().expect("lock");
    let errors: u64 = all.errors.values().sum();
    let attempted = next.load(Ordering::Relaxed).min(o.phones) as u64;
    let unfinished = attempted.saturating_sub(all.phones_done + errors);
    let statuses: BTreeSet<String> = all
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    // One machine-readable line for the script, then the details.
    println!(
        "RESULT label={} phones={} seconds={:.2} phones_per_s={:.0} boots={} requests={} requests_per_s={:.0} connections={} p50_ms={:.2} p95_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={} firmware_mb_per_s={:.1} peak_rss_mb={:.1} peak_threads={} idle_open={} idle_failed={} non2xx={}",
        o.label,
        all.phones_done,
        elapsed,
        all.phones_done as f64 / elapsed,
        all.boots,
        all.requests,
        all.requests as f64 / elapsed,
        all.connections,
        percentile(l, 0.50),
        percentile(l, 0.95),
        percentile(l, 0.99),
        percentile(l, 1.0),
        errors + unfinished,
        all.firmware_bytes as f64 / 1e6 / elapsed,
        rss as f64 / 1024.0,
        threads,
        idle_result.map_or(0, |r| r.0),
        idle_result.map_or(0, |r| r.1),
        if statuses.is_empty() {
            "none".to_string()
        } else {
            statuses.into_iter().collect::<Vec<_>>().join(",")
        },
    );
    if unfinished > 0 {
        println!("  error not finished within the time limit: {unfinished}");
    }
    for (kind, n) in &all.errors {
        println!("  error {kind}: {n}");
    }
}
