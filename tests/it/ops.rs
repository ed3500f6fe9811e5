//! Operations: backups while serving, restores, SIGTERM draining, health, readiness and
//! metrics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;

use crate::common::*;

const DEVICES: usize = 30;

fn populate(server: &ZServer) -> String {
    let (user, pass) = server.set_credentials();
    server.cli_ok(&["profile", "add", "p1"]);
    for i in 0..DEVICES {
        server.cli_ok(&[
            "device",
            "add",
            &format!("0004f2{i:06x}"),
            "--profile",
            "p1",
            "--sip-user",
            &format!("{}", 100 + i),
        ]);
    }
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Outcome counters of a load generator.
#[derive(Default)]
struct Load {
    complete: AtomicU64,
    /// Responses whose bytes stopped before Content-Length: must never happen.
    cut: AtomicU64,
}

/// One request on a fresh or kept connection; classifies the outcome.
fn one(
    stream: &mut Option<TcpStream>,
    addr: SocketAddr,
    path: &str,
    auth: &str,
    load: &Load,
) -> bool {
    if stream.is_none() {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
                *stream = Some(s);
            }
            Err(_) => return false,
        }
    }
    let s = stream.as_mut().expect("stream");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nUser-Agent: {UA_VVX500_APP}\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        *stream = None;
        return true;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                load.complete.fetch_add(1, Ordering::Relaxed);
                if head.contains("connection: close") {
                    *stream = None;
                }
                return true;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    load.cut.fetch_add(1, Ordering::Relaxed);
                }
                *stream = None;
                return true;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn start_load(
    addr: SocketAddr,
    auth: String,
    threads: usize,
) -> (Arc<Load>, Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handles = (0..threads)
        .map(|t| {
            let (load, stop, auth) = (load.clone(), stop.clone(), auth.clone());
            std::thread::spawn(move || {
                let mut stream = None;
                let mut i = t;
                let mut refused = 0;
                while !stop.load(Ordering::Relaxed) && refused < 20 {
                    let mac = format!("0004f2{:06x}", i % DEVICES);
                    let file = ["", "-device", "-profile"][i % 3];
                    if one(
                        &mut stream,
                        addr,
                        &format!("/{mac}{file}.cfg"),
                        &auth,
                        &load,
                    ) {
                        refused = 0;
                    } else {
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    i += 7;
                }
            })
        })
        .collect();
    (load, stop, handles)
}

#[test]
fn a_backup_taken_under_load_restores_every_association() {
    let server = ZServer::start();
    let auth = populate(&server);
    let (load, stop, handles) = start_load(server.device, auth, 6);
    std::thread::sleep(Duration::from_millis(300));
    let archive = server.dir.path().join("backup.tar.gz");
    let out = server.cli_ok(&["backup", archive.to_str().expect("path")]);
    assert!(out.contains(&format!("{DEVICES} devices")), "{out}");
    let refused = server.cli(&["restore", archive.to_str().expect("path")]);
    assert!(
        !refused.status.success(),
        "a restore must refuse while the server runs"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("running"));
    // A loaded machine may have answered fewer requests by now: the load runs on until it
    // has been real (and the backup above was taken while it ran).
    let ran = eventually(Duration::from_secs(60), || {
        load.complete.load(Ordering::Relaxed) > 100
    });
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("load thread");
    }
    assert!(ran, "the load ran");

    // Restore into a brand-new installation.
    let fresh = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        fresh.path(),
        "c.toml",
        format!(
            "data_dir = {:?}\n",
            fresh.path().join("data").to_string_lossy()
        )
        .as_bytes(),
    );
    let out = cli_with_config(&config, &["restore", archive.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = rusqlite::Connection::open(fresh.path().join("data/zerotouch.db")).expect("open");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM devices WHERE profile_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(n as usize, DEVICES);
    assert!(
        fresh.path().join("data/secret.key").exists(),
        "the secrets key comes back too"
    );
    let listed =
        String::from_utf8_lossy(&cli_with_config(&config, &["device", "list"]).stdout).into_owned();
    assert!(
        listed.contains("0004f2000000") && listed.contains(&format!("0004f2{:06x}", DEVICES - 1)),
        "{listed}"
    );
    drop(db);
    // The restored installation serves: the device credentials (sealed under the restored
    // key) are accepted, and each phone gets its own file.
    let (user, pass) = server.credentials();
    drop(server);
    let restored = ZServer::start_in(fresh, "");
    for i in [0, DEVICES - 1] {
        let mac = format!("0004f2{i:06x}");
        let mut phone = Phone::new(restored.device, &mac, UA_VVX500_APP, &user, &pass);
        let r = phone.get(&format!("/{mac}-device.cfg"));
        assert_eq!(r.status, 200, "{mac}: {}", r.text());
        assert!(
            r.text()
                .contains(&format!("reg.1.auth.userId=\"{}\"", 100 + i)),
            "{}",
            r.text()
        );
    }
}

#[test]
fn sigterm_under_load_finishes_every_response_and_flushes_the_access_log() {
    let server = ZServer::start_with("recording.access_log_per_device = 1000000");
    let auth = populate(&server);
    let (load, stop, handles) = start_load(server.device, auth, 8);
    std::thread::sleep(Duration::from_millis(800));
    let db_path = server.data_dir().join("zerotouch.db");
    let started = std::time::Instant::now();
    let (_dir, output) = server.stop_with_output();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("load thread");
    }
    assert!(took < Duration::from_secs(12), "drained in {took:?}");
    assert_eq!(
        load.cut.load(Ordering::Relaxed),
        0,
        "no response cut mid-way"
    );
    let complete = load.complete.load(Ordering::Relaxed);
    assert!(complete > 100, "the load ran ({complete})");
    let line = output
        .lines()
        .find(|l| l.contains("access log:"))
        .unwrap_or_else(|| panic!("no flush report:\n{output}"));
    let dropped: u64 = line
        .split(", ")
        .find_map(|p| p.strip_suffix(" dropped"))
        .and_then(|n| n.parse().ok())
        .expect("dropped");
    let written: u64 = line
        .split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("written");
    assert_eq!(
        written + dropped,
        complete,
        "every answered request was recorded or counted as dropped: {line}"
    );
    let db = rusqlite::Connection::open(&db_path).expect("open");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM access_log", [], |r| r.get(0))
        .expect("rows");
    assert_eq!(
        rows as u64, written,
        "what the recorder wrote is in the database"
    );
}

#[test]
fn health_readiness_and_metrics_are_served() {
    let server = ZServer::start();
    let auth = populate(&server);
    let mut conn = Conn::open(server.device);
    for path in ["/0004f2000000.cfg", "/0004f2000000-device.cfg", "/nope.cfg"] {
        conn.request("GET", path, &[("Authorization", &auth)], b"");
    }
    let mut admin = Conn::open(server.admin);
    assert_eq!(admin.request("GET", "/readyz", &[], b"").status, 200);
    let health = admin.request("GET", "/healthz", &[], b"");
    assert!(
        health
            .text()
            .contains(&format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{}",
        health.text()
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            let m = admin.request("GET", "/metrics", &[], b"").text();
            m.contains("zerotouch_device_requests_total{route=\"master\",status=\"200\"} 1")
                && m.contains(
                    "zerotouch_device_requests_total{route=\"generated\",status=\"200\"} 1",
                )
                && m.contains("zerotouch_devices{state=\"provisioned-active\"} 1")
                && m.contains(&format!(
                    "zerotouch_devices{{state=\"staged\"}} {}",
                    DEVICES - 1
                ))
                && m.contains("zerotouch_recorder_dropped_total 0")
        }),
        "{}",
        admin.request("GET", "/metrics", &[], b"").text()
    );
    let page = admin.request("GET", "/health", &[], b"").text();
    assert!(
        page.contains(env!("CARGO_PKG_VERSION")),
        "the UI footer shows the version"
    );
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("zerotouch {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The daily timer's command: `backup` given no file writes into `backup.dir` and keeps
/// `backup.keep` archives; `/metrics` then shows what an operator alerts on.
#[test]
fn scheduled_backups_keep_the_newest_and_metrics_show_backup_certificate_and_credential_states() {
    let backups = tempfile::tempdir().expect("tempdir");
    let server = ZServer::start_with(&format!(
        "backup.dir = \"{}\"\nbackup.keep = 2",
        backups.path().join("daily").display()
    ));
    populate(&server);
    let mut admin = Conn::open(server.admin);
    let metrics = |admin: &mut Conn| admin.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics(&mut admin).contains("zerotouch_backup_last_success_timestamp_seconds 0\n"),
        "no backup yet: {}",
        metrics(&mut admin)
    );
    let mut outputs = Vec::new();
    for _ in 0..3 {
        outputs.push(server.cli_ok(&["backup"]));
    }
    let daily = backups.path().join("daily");
    let mut left: Vec<String> = std::fs::read_dir(&daily)
        .expect("backup.dir created")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "backup.keep = 2: {left:?} ({outputs:?})");
    assert!(
        outputs[2].contains("removed ") && outputs[2].contains("backup.keep = 2"),
        "{outputs:?}"
    );
    let newest = outputs[2]
        .split("backup written to ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("archive named");
    assert!(newest.ends_with(&left[1]), "{newest} vs {left:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&daily).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "backup.dir is private");

    let m = metrics(&mut admin);
    let value = |name: &str| -> i64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {m}"))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let last = value("zerotouch_backup_last_success_timestamp_seconds");
    assert!((now - last).abs() < 120, "last backup {last}, now {now}");
    assert!(value("zerotouch_database_size_bytes") > 4096);
    let expiry = value("zerotouch_tls_certificate_expiry_timestamp_seconds");
    assert!(
        expiry > now + 30 * 86_400,
        "the generated certificate: {expiry}"
    );
    // Every associated device is in exactly one credential state.
    let states: i64 = ["synced", "pending", "locked_out", "never_seen"]
        .iter()
        .map(|s| {
            value(&format!(
                "zerotouch_autosync_devices{{account=\"default\",state=\"{s}\"}}"
            ))
        })
        .sum();
    assert_eq!(states, DEVICES as i64, "{m}");
}

/// `backup` with neither a file nor `backup.dir` names what to give.
#[test]
fn a_backup_with_no_file_and_no_backup_dir_says_what_to_give() {
    let server = ZServer::start();
    let out = server.cli(&["backup"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("backup.dir") && err.contains("zerotouch backup FILE"),
        "{err}"
    );
}

/// Takes a database back to schema 11 (the previous release's): the later migrations
/// undone, the version lowered. Returns the older version.
fn downgrade_to_schema_11(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch(UNDO_AFTER_0011).expect("downgrade");
    conn.execute_batch("PRAGMA user_version = 11;")
        .expect("downgrade");
    11
}

/// Any command that finds an older schema migrates it only with the data directory to
/// itself, and copies the database first (as `migrate` and the server do).
#[test]
fn a_command_migrating_an_older_schema_copies_the_database_first_and_never_under_a_server() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    let config = server.config.clone();
    let env = server.env.clone();
    let db = server.data_dir().join("zerotouch.db");
    let backups = server.data_dir().join("backups");
    // A server holds the data directory: the command refuses and changes nothing.
    let older = downgrade_to_schema_11(&db);
    let err = server.cli_err(&["profile", "list"]);
    assert!(
        err.contains("needs migrating") && err.contains("zerotouch migrate"),
        "{err}"
    );
    let version = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .expect("open")
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version")
    };
    assert_eq!(version(&db), older, "nothing migrated under the server");
    assert!(!backups.exists(), "no copy either");
    let dir = server.stop_keep();
    let out = std::process::Command::new(bin())
        .args(["profile", "list", "--config"])
        .arg(&config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("office"),
        "the data is there"
    );
    assert!(err.contains("before migrating it"), "{err}");
    let copies: Vec<_> = std::fs::read_dir(&backups)
        .expect("backups/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        copies.len() == 1 && copies[0].starts_with(&format!("zerotouch-schema{older}-")),
        "{copies:?}"
    );
    assert!(version(&db) > older, "migrated");
    drop(dir);
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = ZServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_file(dir.path(), "c.toml", format!("data_dir = {:?}\ndevice.http_listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\n", server.data_dir().to_string_lossy()).as_bytes());
    let out = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is running"));
}

/// I10: a restore never silently takes back a credential phones adopted since the backup.
#[test]
fn a_restore_counts_the_phones_holding_credentials_the_backup_lacks_and_asks_first() {
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    let macs = ["0004f2000a01", "0004f2000a02", "0004f2000a03"];
    for mac in macs {
        server.cli_ok(&["device", "add", mac, "--profile", "office"]);
        let mut phone = Phone::new(server.device, mac, UA_VVX500_APP, &user, &password);
        assert_eq!(phone.get(&format!("/{mac}.cfg")).status, 200);
    }
    let archive = server.dir.path().join("before.tar.gz");
    server.cli_ok(&["backup", archive.to_str().expect("path")]);
    // A rotation after the backup; two phones adopt the new credentials.
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        "Rotated-Passw0rd-7",
        "--yes",
    ]);
    for mac in &macs[..2] {
        let mut phone = Phone::new(
            server.device,
            mac,
            UA_VVX500_APP,
            "phones",
            "Rotated-Passw0rd-7",
        );
        assert_eq!(phone.get(&format!("/{mac}.cfg")).status, 200);
        server.wait_recorded(mac);
    }
    let (dir, _) = server.stop_with_output();
    let config = dir.path().join("config.toml");
    let generations = || -> i64 {
        let db = rusqlite::Connection::open(dir.path().join("data/zerotouch.db")).expect("db");
        db.query_row("SELECT max(generation) FROM account_credentials", [], |r| {
            r.get(0)
        })
        .expect("generations")
    };
    let before = generations();

    let out = cli_with_config(&config, &["restore", archive.to_str().expect("path")]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    // The two seen with the new credentials, and the third: last seen with the old ones,
    // but a request with the account credential proves nothing about the phone, which may
    // have been given the new ones since (by DHCP option 160, say).
    assert!(err.contains("3 phone(s) affected"), "{err}");
    for mac in macs {
        assert!(
            err.contains(&format!("{mac}: may hold credential generation"))
                && err.contains("the backup does not accept"),
            "{err}"
        );
    }
    assert!(
        err.contains(&format!("with generation {}", "2")),
        "each with what it was last seen with: {err}"
    );
    assert_eq!(generations(), before, "nothing replaced");
    assert!(
        !std::fs::read_dir(dir.path().join("data"))
            .expect("dir")
            .any(|e| {
                e.expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".pre-restore")
            })
    );

    // Confirmed: restored, and the phones counted are the ones refused.
    let out = cli_with_config(
        &config,
        &["restore", "--yes", archive.to_str().expect("path")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = ZServer::start_in(dir, "");
    let mut adopted = Phone::new(
        server.device,
        macs[0],
        UA_VVX500_APP,
        "phones",
        "Rotated-Passw0rd-7",
    );
    assert_eq!(adopted.get(&format!("/{}.cfg", macs[0])).status, 401);
    let mut kept = Phone::new(server.device, macs[2], UA_VVX500_APP, &user, &password);
    assert_eq!(kept.get(&format!("/{}.cfg", macs[2])).status, 200);
}

/// A restore keeps what it replaces in a directory of its own, even when one of its name is
/// there already (two restores in one second): it used to move the database aside into the
/// earlier one and then fail on `tls/`, leaving the installation half moved (found by the
/// model-based test).
#[test]
fn a_second_restore_in_the_same_second_keeps_both_copies() {
    let server = ZServer::start();
    let archive = server.dir.path().join("b.tar.gz");
    server.cli_ok(&["backup", archive.to_str().expect("path")]);
    let (dir, _) = server.stop_with_output();
    let config = dir.path().join("config.toml");
    let data = dir.path().join("data");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for t in now..now + 30 {
        let earlier = data.join(format!(".pre-restore-{t}/tls"));
        std::fs::create_dir_all(&earlier).expect("earlier copy");
        std::fs::write(earlier.join("kept.pem"), b"x").expect("file");
    }
    let out = cli_with_config(
        &config,
        &["restore", "--yes", archive.to_str().expect("path")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        data.join("zerotouch.db").exists(),
        "the restored database is in place"
    );
    let server = ZServer::start_in(dir, "");
    server.cli_ok(&["account", "show"]);
}

/// The database's view of one import job: status and message.
fn job_row(server: &ZServer, id: i64) -> (String, String) {
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    db.query_row(
        "SELECT status, message FROM import_jobs WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("job row")
}

#[test]
fn a_cli_import_killed_while_the_server_runs_is_marked_interrupted_without_a_restart() {
    use std::process::{Command, Stdio};
    let server = ZServer::start_with("[console]\ncsv_max_rows = 400000\n");
    server.cli_ok(&["profile", "add", "office"]);
    let csv: String = (0..300_000)
        .map(|i| format!("0004f2{i:06x},,,office\n"))
        .collect();
    let file = write_file(server.dir.path(), "big.csv", csv.as_bytes());
    let mut child = Command::new(bin())
        .args(["import", file.to_str().expect("path"), "--config"])
        .arg(&server.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("import");
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    let running = || {
        db.query_row(
            "SELECT id FROM import_jobs WHERE status = 'Processing' AND finished_at IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .ok()
    };
    assert!(
        eventually(Duration::from_secs(120), || running().is_some()),
        "the CLI import never showed as Processing"
    );
    let id = running().expect("job");
    child.kill().expect("kill -9");
    let _ = child.wait();
    // The runner is gone: reading the job (the API here, the console alike) names it
    // interrupted; no restart, no wait for the minute's housekeeping.
    let token = user_with_token(&server, "ops", "admin", "");
    let r = api(&server, "GET", &format!("/imports/{id}"), Some(&token), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let job = json(&r);
    assert_eq!(job["status"], "Failed", "{job}");
    let message = job["message"].as_str().expect("message");
    assert!(
        message.starts_with("interrupted: the process that ran it (pid ")
            && message.contains("nothing was applied"),
        "{message}"
    );
    assert_eq!(job_row(&server, id).0, "Failed");
    // Nothing of it was applied.
    let n: i64 = db
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0, "a killed import applied devices");
    // A job whose runner still runs (this server's own console import, here one marked as
    // run by a live process) is left alone.
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", sleeper.id())).expect("stat");
    let start = stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("starttime")
        .to_string();
    db.execute(
        "INSERT INTO import_jobs (account_id, status, created_at, runner)
         SELECT id, 'Processing', 0, ?1 FROM accounts LIMIT 1",
        [format!("{}:{start}", sleeper.id())],
    )
    .expect("insert");
    let live = db.last_insert_rowid();
    let r = api(
        &server,
        "GET",
        &format!("/imports/{live}"),
        Some(&token),
        "",
    );
    assert_eq!(json(&r)["status"], "Processing", "{}", r.text());
    sleeper.kill().expect("kill");
    let _ = sleeper.wait();
    let r = api(
        &server,
        "GET",
        &format!("/imports/{live}"),
        Some(&token),
        "",
    );
    assert_eq!(json(&r)["status"], "Failed", "{}", r.text());
}
