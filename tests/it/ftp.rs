//! The FTP listener (`[ftp]`, `src/ftp/`, `http/device/ftp.rs`) with the real client
//! (`curl ftp://`): a phone's boot (master, its files, firmware with SIZE and REST, its
//! log stored then appended), the factory login (the unknown-device files and the move to
//! HTTP, never a SIP secret), wrong passwords throttled and logged, traversal, an upload
//! over the quota, and the passive port range used up — each a clear outcome, the server
//! still serving.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::common::{ZServer, eventually, have, require};

const MAC: &str = "0004f2a1b2c3";
const UNKNOWN: &str = "0004f2000777";
const SIP_SECRET: &str = "Line-Secret-1";

/// Passive ranges of the tests of this file, below Linux's ephemeral ports, one per test.
static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

fn passive_range(len: u16) -> (u16, u16) {
    let base = 21000 + (std::process::id() % 200) as u16 * 40;
    let first = base + NEXT_RANGE.fetch_add(len, Ordering::SeqCst);
    (first, first + len - 1)
}

/// A server with FTP on a loopback port and the passive range `(first, last)`.
fn start(extra: &str, (first, last): (u16, u16)) -> (ZServer, SocketAddr) {
    let server = ZServer::start_with(&format!(
        "ftp.listen = \"127.0.0.1:0\"\nftp.passive_first = {first}\nftp.passive_last = {last}\n{extra}"
    ));
    let out = server.output.lock().expect("lock").clone();
    let addr = out
        .lines()
        .find_map(|l| l.split("FTP listening on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no FTP line in:\n{out}"));
    (server, addr)
}

/// `curl` with `args` against `ftp://user:password@addr/path`.
fn curl(addr: SocketAddr, login: (&str, &str), path: &str, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--user"])
        .arg(format!("{}:{}", login.0, login.1))
        .args(args)
        .arg(format!("ftp://{addr}{path}"))
        .output()
        .expect("run curl")
}

/// The body of a successful RETR, or what curl said.
fn get(addr: SocketAddr, login: (&str, &str), path: &str) -> Result<Vec<u8>, String> {
    get_with(addr, login, path, &[])
}

fn get_with(
    addr: SocketAddr,
    login: (&str, &str),
    path: &str,
    args: &[&str],
) -> Result<Vec<u8>, String> {
    let out = curl(addr, login, path, args);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn add_device(server: &ZServer) -> (String, String) {
    let creds = server.set_credentials();
    let profile = server.dir.path().join("site.cfg");
    std::fs::write(
        &profile,
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<polycomConfig reg.1.server.1.address=\"sip.example.com\"/>\n",
    )
    .expect("profile");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        profile.to_str().expect("path"),
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "1001",
        "--sip-password",
        SIP_SECRET,
    ]);
    creds
}

fn write_image(server: &ZServer, version: &str, name: &str, bytes: &[u8]) {
    let dir = server.data_dir().join("firmware").join(version);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("image");
}

fn curl_present() -> bool {
    require(have("curl"), "curl (apt-get install curl)")
}

#[test]
fn a_phone_boots_over_ftp_and_stores_then_appends_its_log() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start("", passive_range(10));
    let (user, password) = add_device(&server);
    // The client holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    let login = (user.as_str(), password.as_str());
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    write_image(&server, "5.9.8.1234", "sip.ld", &image);

    // Its master, then the files it names, as over HTTP.
    let master = get(addr, login, &format!("/{MAC}.cfg")).expect("master");
    assert!(contains(&master, "CONFIG_FILES"), "{master:?}");
    assert!(contains(&master, "-device.cfg"));
    let device = get(addr, login, &format!("/{MAC}-device.cfg")).expect("device file");
    assert!(contains(&device, SIP_SECRET), "served as over HTTP");
    // Its files move it to device HTTP: the address they name is HTTP's, not FTP's.
    let http_port = format!(":{}", server.device.port());
    assert!(
        contains(&master, &http_port) || contains(&device, &http_port),
        "the move to HTTP"
    );

    // Firmware: SIZE and MDTM (curl -I), then REST from an offset (curl -C).
    let head = curl(addr, login, "/firmware/5.9.8.1234/sip.ld", &["-I"]);
    let said = String::from_utf8_lossy(&head.stdout);
    assert!(said.contains("Content-Length: 50000"), "{said}");
    assert!(said.contains("Last-Modified:"), "{said}");
    let out = curl(addr, login, "/firmware/5.9.8.1234/sip.ld", &["-C", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, image[1000..].to_vec());
    assert_eq!(
        get(addr, login, "/firmware/5.9.8.1234/sip.ld").expect("image"),
        image
    );

    // Its log: STOR, then APPE; stored whole.
    let tmp = tempfile::tempdir().expect("tmp");
    let first = tmp.path().join("first.log");
    let more = tmp.path().join("more.log");
    std::fs::write(&first, b"boot line 1\n").expect("first");
    std::fs::write(&more, b"app line 2\n").expect("more");
    let log = format!("/logs/{MAC}-app.log");
    let out = curl(addr, login, &log, &["-T", first.to_str().expect("p")]);
    assert!(
        out.status.success(),
        "STOR: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(
        addr,
        login,
        &log,
        &["-T", more.to_str().expect("p"), "--append"],
    );
    assert!(
        out.status.success(),
        "APPE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = server
        .data_dir()
        .join(format!("uploads/{MAC}/logs/{MAC}-app.log"));
    assert_eq!(
        std::fs::read(&stored).expect("stored log"),
        b"boot line 1\napp line 2\n".to_vec()
    );
    // Recorded under the FTP commands, and the device shows FTP as its protocol.
    server.wait_recorded(MAC);
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    let count = |method: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM access_log WHERE method = ?1",
            [method],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert!(
        eventually(Duration::from_secs(5), || count("APPE") == 1),
        "APPE recorded"
    );
    assert!(count("RETR") >= 2 && count("STOR") == 1);
    let protocol: String = db
        .query_row(
            "SELECT a.last_protocol FROM device_activity a JOIN devices d ON d.id = a.device_id \
             WHERE d.mac = ?1",
            [MAC],
            |r| r.get(0),
        )
        .expect("activity");
    assert_eq!(protocol, "ftp");
    // /metrics counts FTP apart: requests by route and outcome, and the listener.
    let m = crate::common::Conn::open(server.admin).request("GET", "/metrics", &[], b"");
    let text = m.text();
    assert!(
        text.contains("zerotouch_ftp_requests_total{route=\"firmware\",outcome=\"served\"}"),
        "{text}"
    );
    assert!(
        text.contains("zerotouch_ftp_sessions{counter=\"stores\"} 2"),
        "{text}"
    );
}

#[test]
fn the_factory_login_gets_the_move_to_http_and_never_a_sip_secret() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start("", passive_range(10));
    let (_, account_password) = add_device(&server);
    let factory = ("PlcmSpIp", "PlcmSpIp");
    // An unknown phone at factory settings: the default master and its staging file.
    let master = get(addr, factory, "/000000000000.cfg").expect("default master");
    assert!(
        contains(&master, "[PHONE_MAC_ADDRESS]-stage.cfg"),
        "{master:?}"
    );
    let stage = get(addr, factory, &format!("/{UNKNOWN}-stage.cfg")).expect("stage");
    assert!(contains(&stage, "prov.polling.enabled=\"1\""));
    assert!(get(addr, factory, &format!("/{UNKNOWN}.cfg")).is_err());
    // The associated phone: its files without the SIP secret, with the account credential
    // and device HTTP's address (the move to HTTP).
    let mut served = Vec::new();
    for name in [
        format!("/{MAC}.cfg"),
        format!("/{MAC}-device.cfg"),
        format!("/{MAC}-phone.cfg"),
        format!("/{MAC}-tls-probe.cfg"),
    ] {
        if let Ok(bytes) = get(addr, factory, &name) {
            assert!(
                !contains(&bytes, SIP_SECRET),
                "{name} carries the SIP secret"
            );
            served.extend(bytes);
        }
    }
    assert!(
        contains(&served, &account_password),
        "the account credential moves it"
    );
    assert!(contains(&served, &format!(":{}", server.device.port())));
    // It stores nothing.
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("x.log");
    std::fs::write(&f, b"x").expect("x");
    let out = curl(
        addr,
        factory,
        &format!("/logs/{MAC}-app.log"),
        &["-T", f.to_str().expect("p")],
    );
    assert!(!out.status.success());
    // Recorded under the FTP command, as the factory login.
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    assert!(
        eventually(Duration::from_secs(10), || db
            .query_row(
                "SELECT count(*) FROM access_log WHERE method = 'RETR' AND auth = 'factory'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .is_ok_and(|n| n >= 3)),
        "factory reads recorded"
    );
    // Turned off for the account: its devices get only the unknown-device files.
    server.cli_ok(&["account", "ftp-factory-login", "off"]);
    assert!(
        eventually(Duration::from_secs(5), || get(
            addr,
            factory,
            &format!("/{MAC}-device.cfg")
        )
        .is_err()),
        "refused once turned off"
    );
    assert!(get(addr, factory, "/000000000000.cfg").is_ok());
}

#[test]
fn the_factory_login_is_refused_when_the_configuration_turns_it_off() {
    if !curl_present() {
        return;
    }
    let (_server, addr) = start("ftp.factory_login = false", passive_range(4));
    let err = get(addr, ("PlcmSpIp", "PlcmSpIp"), "/000000000000.cfg").expect_err("530");
    assert!(
        err.contains("530") || err.contains("Access denied"),
        "{err}"
    );
}

#[test]
fn wrong_passwords_are_throttled_and_logged_and_traversal_refused() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start("auth.failure_limit = 3", passive_range(10));
    let (user, password) = add_device(&server);
    for _ in 0..5 {
        let err =
            get(addr, (&user, "wrong-password"), &format!("/{MAC}.cfg")).expect_err("refused");
        assert!(
            err.contains("530") || err.contains("Access denied"),
            "{err}"
        );
    }
    // The log lines reach the test through the server's output reader: wait for them.
    let logged = |text: &str| {
        eventually(Duration::from_secs(10), || {
            server.output.lock().expect("lock").contains(text)
        })
    };
    assert!(
        logged(
            "refused device credential from 127.0.0.1 for a request naming no device: wrong credentials"
        ),
        "{}",
        server.output.lock().expect("lock")
    );
    assert!(
        logged("(throttled)"),
        "{}",
        server.output.lock().expect("lock")
    );
    // As over HTTP, the right credential still works (a phone behind the same address).
    assert!(get(addr, (&user, &password), &format!("/{MAC}.cfg")).is_ok());

    // Traversal from another server's point of view: refused, nothing outside served.
    let (server, addr) = start("", passive_range(10));
    let (user, password) = add_device(&server);
    let login = (user.as_str(), password.as_str());
    write_image(&server, "1.0", "sip.ld", b"image");
    for path in [
        "/../etc/passwd",
        "/firmware/../../etc/passwd",
        "/firmware/1.0/../1.0/sip.ld",
        "/%2e%2e/etc/passwd",
        "/firmware\\1.0\\sip.ld",
    ] {
        // As sent (curl would otherwise squash the dot segments itself), through CWD and
        // as one RETR path.
        for method in ["multicwd", "nocwd"] {
            let args = ["--path-as-is", "--ftp-method", method];
            let err = get_with(addr, login, path, &args).expect_err(path);
            assert!(
                err.contains("550")
                    || err.contains("553")
                    || err.contains("(9)")
                    || err.contains("(78)"),
                "{path} ({method}): {err}"
            );
        }
    }
    // Still serving.
    assert_eq!(
        get(addr, login, "/firmware/1.0/sip.ld").expect("image"),
        b"image".to_vec()
    );
}

#[test]
fn an_upload_over_the_quota_is_refused_clearly_and_nothing_half_stored() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start(
        "limits.upload_bytes = 4096\nlimits.device_quota_bytes = 10000",
        passive_range(10),
    );
    let (user, password) = add_device(&server);
    server.serve_secrets_to_account();
    let login = (user.as_str(), password.as_str());
    let tmp = tempfile::tempdir().expect("tmp");
    let small = tmp.path().join("small");
    let big = tmp.path().join("big");
    std::fs::write(&small, vec![b'a'; 4000]).expect("small");
    std::fs::write(&big, vec![b'x'; 5000]).expect("big");
    let put = |path: &str, file: &std::path::Path| {
        curl(addr, login, path, &["-T", file.to_str().expect("p")])
    };
    let override_path = format!("/overrides/{MAC}-phone.cfg");
    assert!(put(&override_path, &small).status.success());
    // Over the size cap: 552, and the earlier file kept.
    let out = put(&override_path, &big);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Exceeded storage allocation"), "{said}");
    let stored = server
        .data_dir()
        .join(format!("uploads/{MAC}/overrides/{MAC}-phone.cfg"));
    assert_eq!(std::fs::read(&stored).expect("kept"), vec![b'a'; 4000]);
    // Over the device's quota: 552 too.
    assert!(
        put(&format!("/logs/{MAC}-app.log"), &small)
            .status
            .success()
    );
    let out = put(&format!("/contacts/{MAC}-directory.xml"), &small);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Exceeded storage allocation"), "{said}");
    // No partial upload remains anywhere.
    let partial = walk(&server.data_dir().join("uploads"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".incoming-"))
        })
        .count();
    assert_eq!(partial, 0);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_used_up_passive_range_gets_a_clear_refusal_and_the_server_goes_on() {
    if !curl_present() {
        return;
    }
    // A range of one port, held by someone else.
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let (server, addr) = start("", (port, port));
    let (user, password) = add_device(&server);
    let login = (user.as_str(), password.as_str());
    write_image(&server, "1.0", "sip.ld", b"image");
    let err = get(addr, login, "/firmware/1.0/sip.ld").expect_err("no passive port");
    assert!(
        err.contains("425") || err.contains("(13)") || err.contains("(30)"),
        "{err}"
    );
    // Once the port is free again, the same request works.
    drop(holder);
    assert_eq!(
        get(addr, login, "/firmware/1.0/sip.ld").expect("image"),
        b"image".to_vec()
    );
}

#[test]
fn sigterm_stops_the_ftp_listener_cleanly() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start("", passive_range(4));
    assert!(get(addr, ("PlcmSpIp", "PlcmSpIp"), "/000000000000.cfg").is_ok());
    let out = server.stop();
    assert!(out.contains("stopped"), "{out}");
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn explicit_ftps_serves_the_same_files_and_moves_the_phone_to_https() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start("", passive_range(10));
    let (user, password) = add_device(&server);
    server.serve_secrets_to_account();
    let login = (user.as_str(), password.as_str());
    let ca = server.data_dir().join("tls/ca.pem");
    let tls = ["--ssl-reqd", "--cacert", ca.to_str().expect("ca")];
    // AUTH TLS, PBSZ, PROT P: control and data over TLS, with the device certificate.
    let master = get_with(addr, login, &format!("/{MAC}.cfg"), &tls).expect("master over FTPS");
    let device = get_with(addr, login, &format!("/{MAC}-device.cfg"), &tls).expect("device");
    let https = server.https.expect("device HTTPS").port();
    assert!(
        contains(&master, &format!(":{https}")) || contains(&device, &format!(":{https}")),
        "over TLS, the files move the phone to HTTPS"
    );
    // An upload over FTPS.
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("boot.log");
    std::fs::write(&f, b"over tls\n").expect("log");
    let mut args = tls.to_vec();
    args.extend(["-T", f.to_str().expect("p")]);
    let out = curl(addr, login, &format!("/logs/{MAC}-boot.log"), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = server
        .data_dir()
        .join(format!("uploads/{MAC}/logs/{MAC}-boot.log"));
    assert_eq!(
        std::fs::read(stored).expect("stored"),
        b"over tls\n".to_vec()
    );
    // Recorded as FTPS.
    server.wait_recorded(MAC);
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    let protocol = || -> String {
        db.query_row(
            "SELECT a.last_protocol FROM device_activity a JOIN devices d ON d.id = a.device_id \
             WHERE d.mac = ?1",
            [MAC],
            |r| r.get(0),
        )
        .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(5), || protocol() == "ftps"),
        "{}",
        protocol()
    );
}

#[test]
fn a_trickling_upload_is_cut_at_the_deadline_and_nothing_stored() {
    if !curl_present() {
        return;
    }
    let (server, addr) = start(
        "limits.body_timeout_secs = 1\nlimits.body_deadline_secs = 2",
        passive_range(10),
    );
    let (user, password) = add_device(&server);
    server.serve_secrets_to_account();
    let login = (user.as_str(), password.as_str());
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("slow.log");
    std::fs::write(&f, vec![b'z'; 400_000]).expect("file");
    // 400 kB at 40 kB a second: 10 s, over the 2 s deadline.
    let started = std::time::Instant::now();
    let out = curl(
        addr,
        login,
        &format!("/logs/{MAC}-app.log"),
        &["-T", f.to_str().expect("p"), "--limit-rate", "40K"],
    );
    assert!(!out.status.success(), "refused");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut at the deadline"
    );
    assert!(
        !server
            .data_dir()
            .join(format!("uploads/{MAC}/logs/{MAC}-app.log"))
            .exists(),
        "nothing stored"
    );
    // Still serving.
    assert!(get(addr, login, &format!("/{MAC}.cfg")).is_ok());
}

#[test]
fn the_api_and_the_command_set_the_factory_login_per_account() {
    let server = ZServer::start();
    let token = crate::common::user_with_token(&server, "bot", "admin", "");
    let r = crate::common::api(&server, "GET", "/accounts/default", Some(&token), "");
    assert_eq!(
        crate::common::json(&r)["ftp_factory_login"],
        true,
        "on by default"
    );
    let r = crate::common::api(
        &server,
        "PUT",
        "/accounts/default/ftp-factory-login",
        Some(&token),
        r#"{"enabled": false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(crate::common::json(&r)["ftp_factory_login"], false);
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("ftp factory login: refused")
    );
    assert!(
        server
            .cli_ok(&["audit"])
            .contains("account.set-ftp-factory-login")
    );
    server.cli_ok(&["account", "ftp-factory-login", "on"]);
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("ftp factory login: accepted")
    );
    let err = server.cli_err(&["account", "ftp-factory-login", "maybe"]);
    assert!(err.contains("state"), "{err}");
    // The console's account page says FTP sends credentials in clear, and turns it off.
    let s = crate::common::Session::admin(&server);
    let page = s.get("/accounts/default").text();
    assert!(
        page.contains("FTP sends user names, passwords and files in clear"),
        "{page}"
    );
    let r = s.post("/accounts/default/ftp-factory-login", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("ftp factory login: refused")
    );
}

/// A control connection from `from` that logs in; the reply to PASS, and the connection.
fn login_from(
    from: std::net::Ipv4Addr,
    to: SocketAddr,
    user: &str,
    password: &str,
) -> (String, std::io::BufReader<std::net::TcpStream>) {
    use std::io::{BufRead, Write};
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("s");
    s.bind(&SocketAddr::new(from.into(), 0).into())
        .expect("bind");
    s.connect_timeout(&to.into(), Duration::from_secs(2))
        .expect("connect");
    let stream: std::net::TcpStream = s.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut r = std::io::BufReader::new(stream);
    let mut line = String::new();
    let mut reply = |r: &mut std::io::BufReader<std::net::TcpStream>, send: Option<String>| {
        if let Some(cmd) = send {
            r.get_mut().write_all(cmd.as_bytes()).expect("send");
        }
        line.clear();
        r.read_line(&mut line).expect("reply");
        line.clone()
    };
    assert!(reply(&mut r, None).starts_with("220"), "greeting");
    assert!(reply(&mut r, Some(format!("USER {user}\r\n"))).starts_with("331"));
    let pass = reply(&mut r, Some(format!("PASS {password}\r\n")));
    (pass, r)
}

#[test]
fn sessions_over_the_per_address_cap_are_refused_until_one_ends() {
    let (server, addr) = start("limits.max_connections_per_ip = 2", passive_range(4));
    let stranger = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let (first, c1) = login_from(stranger, addr, "PlcmSpIp", "PlcmSpIp");
    let (second, _c2) = login_from(stranger, addr, "PlcmSpIp", "PlcmSpIp");
    assert!(
        first.starts_with("230") && second.starts_with("230"),
        "{first}{second}"
    );
    let (third, _) = login_from(stranger, addr, "PlcmSpIp", "PlcmSpIp");
    assert!(third.starts_with("530"), "{third}");
    // The log line reaches the test through the server's output reader: wait for it.
    assert!(eventually(Duration::from_secs(10), || server
        .output
        .lock()
        .expect("lock")
        .contains("too many FTP sessions logged in")));
    // The exempt address (the site behind one NAT) is not capped; a session that ends
    // gives its place back.
    let (local, _c3) = login_from(std::net::Ipv4Addr::LOCALHOST, addr, "PlcmSpIp", "PlcmSpIp");
    assert!(local.starts_with("230"), "{local}");
    drop(c1);
    assert!(
        eventually(Duration::from_secs(5), || login_from(
            stranger, addr, "PlcmSpIp", "PlcmSpIp"
        )
        .0
        .starts_with("230")),
        "the place is given back"
    );
}
