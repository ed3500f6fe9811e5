//! Bad input, each with a clear status or message, and nothing already stored is lost.

use std::time::Duration;

use crate::common::*;

fn associated(server: &ZServer, mac: &str) {
    server.set_credentials();
    server.cli_ok(&["profile", "add", "p1"]);
    server.cli_ok(&["device", "add", mac, "--profile", "p1"]);
}

#[test]
fn a_malformed_mac_is_refused_with_the_field_named() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "p1"]);
    for bad in [
        "0004f2zzzzzz",
        "0004f2",
        "00:04:f2:aa:bb:cc:dd",
        "000000000000",
    ] {
        let out = server.cli(&["device", "add", bad, "--profile", "p1"]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mac:"), "{bad}: {err}");
    }
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    assert_eq!(phone.get("/0004f2zzzzzz.cfg").status, 404);
    assert_eq!(phone.get("/0004f2aabbc.cfg").status, 404);
}

/// An address without a protocol would send phones to FTP (their factory Server Type): the
/// CLI refuses it naming the field, whether on a profile, a device or an edit, and what was
/// stored stays.
#[test]
fn a_provisioning_address_without_a_protocol_is_refused_naming_the_field() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "p1"]);
    let bare = "prov2.example.com/cfg";
    for args in [
        vec!["profile", "add", "p2", "--prov-server", bare],
        vec![
            "device",
            "add",
            "0004f2000001",
            "--profile",
            "p1",
            "--prov-server",
            bare,
        ],
    ] {
        let out = server.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains("prov_server")
                && err.contains("names no protocol")
                && err.contains("https://prov2.example.com/cfg"),
            "{args:?}: {err}"
        );
    }
    let listed = server.cli_ok(&["profile", "list"]);
    assert!(!listed.contains("p2"), "{listed}");
    server.cli_ok(&[
        "device",
        "add",
        "0004f2000001",
        "--profile",
        "p1",
        "--prov-server",
        "https://prov2.example.com/cfg",
    ]);
}

#[test]
fn path_traversal_is_refused_before_any_file_is_touched() {
    let server = ZServer::start();
    associated(&server, "0004f2000001");
    // A file outside the data directory's served trees that traversal would reach.
    std::fs::write(server.data_dir().join("secret.txt"), b"secret").expect("write");
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    // Refused as bad paths (400) before anything is looked up.
    for path in [
        "/../config.toml",
        "/%2e%2e/config.toml",
        "/firmware/%2e%2e/%2e%2e/secret.txt",
        "/firmware/..%2f..%2fsecret.txt",
        "/assets/../secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/logs/..%5c..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "//etc/passwd",
    ] {
        let r = phone.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert!(!r.text().contains("secret"), "{path} leaked a file");
    }
    let mut conn = Conn::open(server.device);
    conn.send(b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = conn.read_response(false).expect("response");
    // A name no file has is found out only with credentials (no probing without them).
    assert_eq!(r.status, 401);
    assert_eq!(phone.get("/etc/passwd").status, 404);
    let mut conn = Conn::open(server.device);
    conn.send(b"GET ../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.read_response(false).expect("response").status, 400);
    // Uploads cannot be written outside their directory either.
    let r = phone.request("PUT", "/logs/%2e%2e%2f0004f2000001-app.log", b"x");
    assert_eq!(r.status, 400);
}

#[test]
fn unknown_file_names_are_404() {
    let server = ZServer::start();
    associated(&server, "0004f2000001");
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    for path in [
        "/bootrom.ld",
        "/0004f2000001-unknown.cfg",
        "/logs/0004f2000001-phone.cfg",
        "/firmware/1.0/sip.ld",
        "/.htaccess",
    ] {
        let r = phone.get(path);
        assert!(matches!(r.status, 404), "{path}: {}", r.status);
    }
    assert_eq!(
        phone.request("PUT", "/0004f2000001.cfg", b"<x/>").status,
        405,
        "masters cannot be written"
    );
    assert_eq!(
        phone
            .request("PUT", "/000000000000-directory.xml", b"<x/>")
            .status,
        405,
        "shared assets are read-only"
    );
    assert_eq!(
        phone.request("DELETE", "/0004f2000001.cfg", b"").status,
        405
    );
}

#[test]
fn an_oversize_upload_is_refused_and_the_stored_file_kept() {
    let server =
        ZServer::start_with("limits.upload_bytes = 4096\nlimits.device_quota_bytes = 10000");
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    associated(&server, "0004f2000001");
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    let path = "/overrides/0004f2000001-phone.cfg";
    assert_eq!(
        phone.request("PUT", path, b"<OVERRIDES a.b=\"1\"/>").status,
        201
    );
    let r = phone.request("PUT", path, &vec![b'x'; 5000]);
    assert_eq!(r.status, 413);
    assert_eq!(
        phone.get(path).body,
        b"<OVERRIDES a.b=\"1\"/>".to_vec(),
        "the earlier upload survives"
    );
    // The per-device quota counts every file.
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    assert_eq!(
        phone
            .request("PUT", "/logs/0004f2000001-app.log", &vec![b'a'; 4000])
            .status,
        201
    );
    assert_eq!(
        phone
            .request(
                "PUT",
                "/contacts/0004f2000001-directory.xml",
                &vec![b'b'; 4000]
            )
            .status,
        201
    );
    assert_eq!(
        phone
            .request(
                "PUT",
                "/calllists/0004f2000001-calls.xml",
                &vec![b'c'; 4000]
            )
            .status,
        507
    );
    let leftovers = std::fs::read_dir(server.data_dir().join("uploads/.incoming"))
        .expect("dir")
        .count();
    assert_eq!(leftovers, 0, "no partial upload remains");
    // Uploads after a device's first stream into its own directory: none remains there.
    let logs = server.data_dir().join("uploads/0004f2000001/logs");
    let partial = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .expect("device dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".incoming-"))
            .count()
    };
    assert_eq!(partial(&logs), 0);
    // One a crash left there goes at the next start; the device's log stays.
    let dir = server.stop_keep();
    std::fs::write(logs.join(".incoming-crashed"), b"half a log").expect("plant");
    let server = ZServer::start_in(dir, "");
    assert!(
        eventually(Duration::from_secs(5), || partial(&logs) == 0),
        "the partial upload is removed"
    );
    let log = logs.join("0004f2000001-app.log");
    assert!(log.is_file());
    // The restarted server serves the very log kept there.
    let (user, pass) = server.credentials();
    let mut phone = Phone::new(server.device, "0004f2000001", UA_VVX500_APP, &user, &pass);
    let head = phone.request("HEAD", "/logs/0004f2000001-app.log", b"");
    assert_eq!(head.status, 200);
    let size = std::fs::metadata(&log).expect("log").len().to_string();
    assert_eq!(head.header("Content-Length"), Some(size.as_str()));
}

#[test]
fn wrong_credentials_are_throttled_per_ip_and_valid_ones_still_work() {
    let server = ZServer::start_with("auth.failure_limit = 3");
    associated(&server, "0004f2000001");
    let (user, pass) = server.credentials();
    let mut thief = Phone::new(
        server.device,
        "0004f2000001",
        UA_VVX500_APP,
        &user,
        "wrong-password",
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(thief.get("/0004f2000001.cfg").status);
    }
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[4], 429);
    let r = thief.get("/0004f2000001.cfg");
    assert!(r.header("Retry-After").is_some());
    // The real phone, from the same address, is never throttled.
    let mut phone = Phone::new(server.device, "0004f2000001", UA_VVX500_APP, &user, &pass);
    assert_eq!(phone.get("/0004f2000001.cfg").status, 200);
    // Requests without credentials are challenges, not failures.
    let mut conn = Conn::open(server.device);
    assert_eq!(
        conn.request("GET", "/0004f2000001.cfg", &[], b"").status,
        401
    );
}

#[test]
fn a_corrupt_profile_file_is_refused_naming_file_and_line_and_nothing_is_stored() {
    let server = ZServer::start();
    let dir = server.dir.path();
    let good = write_file(dir, "good.cfg", b"<polycomConfig a.b=\"1\"/>");
    let bad = write_file(
        dir,
        "broken.cfg",
        b"<polycomConfig>\n  <reg reg.1.address=\"1\">\n</polycomConfig>\n",
    );
    let out = server.cli(&[
        "profile",
        "add",
        "p1",
        "--file",
        good.to_str().expect("p"),
        "--file",
        bad.to_str().expect("p"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.cfg") && err.contains("line 3"),
        "{err}"
    );
    assert!(
        !server.cli_ok(&["profile", "list"]).contains("p1"),
        "nothing half-written"
    );
    let unknown = write_file(dir, "vars.cfg", b"<c\n a.b=\"${NO_SUCH_VARIABLE}\"/>");
    let out = server.cli(&[
        "profile",
        "add",
        "p2",
        "--file",
        unknown.to_str().expect("p"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: unknown variable `${NO_SUCH_VARIABLE}`"),
        "{err}"
    );
}

#[test]
fn a_read_only_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let config = write_file(dir.path(), "c.toml", format!("data_dir = {:?}\ndevice.http_listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\n", data.to_string_lossy()).as_bytes());
    // Root ignores permission bits, so run the server as an unprivileged user then.
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o555))
        .expect("chmod");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        std::process::Command::new(bin())
    };
    let out = cmd
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&data.to_string_lossy().to_string())
            && (err.contains("not writable") || err.contains("creating data directory")),
        "{err}"
    );
}

#[test]
fn a_busy_port_is_a_clear_startup_error() {
    let server = ZServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        dir.path(),
        "c.toml",
        format!(
            "data_dir = {:?}\ndevice.http_listen = \"{}\"\nadmin.listen = \"127.0.0.1:0\"\n",
            dir.path().join("d").to_string_lossy(),
            server.device
        )
        .as_bytes(),
    );
    let out = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("another program"),
        "{err}"
    );
}

#[test]
fn a_newer_database_is_refused() {
    let server = ZServer::start();
    let db = server.data_dir().join("zerotouch.db");
    let dir = server.stop_keep();
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.pragma_update(None, "user_version", 999).expect("bump");
    drop(conn);
    let out = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(dir.path().join("config.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer release"));
    let _ = Duration::from_secs(0);
}
