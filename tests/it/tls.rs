//! HTTPS against the real binary with real clients (curl, openssl s_client): TLS 1.2 and
//! 1.3, keep-alive, client certificates and the MAC they bind (a spoofed identity header
//! is ignored), stalled, garbage and truncated handshakes, CA delivery to phones and the
//! no-secrets HTTP mode. Admin-supplied files and reloads: `tls_files.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use crate::common::*;

const MAC: &str = "0004f2aabbcc";
const OTHER_MAC: &str = "0004f2000001";

/// A test CA that issues client certificates.
struct TestCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("ca");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A client certificate with this CN, valid now unless `expired`; writes
    /// `<stem>.pem` and `<stem>.key` and returns their paths.
    fn client(&self, dir: &Path, stem: &str, cn: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        if expired {
            p.not_before = now - time::Duration::days(30);
            p.not_after = now - time::Duration::days(1);
        } else {
            p.not_before = now - time::Duration::days(1);
            p.not_after = now + time::Duration::days(30);
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("sign");
        (
            write_file(dir, &format!("{stem}.pem"), cert.pem().as_bytes()),
            write_file(dir, &format!("{stem}.key"), key.serialize_pem().as_bytes()),
        )
    }
}

/// Runs curl; returns (exit ok, HTTP status, body, stderr).
pub(crate) fn curl(args: &[&str]) -> (bool, u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (
        out.status.success(),
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn https(server: &ZServer) -> SocketAddr {
    server.https.expect("device HTTPS is on")
}

pub(crate) fn ca_file(server: &ZServer) -> String {
    server
        .data_dir()
        .join("tls/ca.pem")
        .to_string_lossy()
        .into_owned()
}

/// `openssl s_client` with `extra` arguments, sending `input`; returns its stdout.
pub(crate) fn s_client(addr: SocketAddr, extra: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    // Give the server time to answer before closing stdin ends the session.
    std::thread::sleep(Duration::from_millis(700));
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Associates `MAC` (SIP password on line 1) and returns the device credentials.
fn associate(server: &ZServer, macs: &[&str]) -> (String, String) {
    let creds = server.set_credentials();
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        b"<polycomConfig up.welcomeSoundEnabled=\"0\"/>\n",
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("p"),
    ]);
    for mac in macs {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--sip-server",
            "sip.example.com",
            "--sip-user",
            "1001",
            "--sip-password",
            "Line-Secret-1",
        ]);
    }
    creds
}

#[test]
fn https_speaks_tls_1_2_and_1_3_with_the_generated_certificate() {
    let server = ZServer::start();
    let (user, pass) = associate(&server, &[MAC]);
    let url = format!("https://localhost:{}/{MAC}.cfg", https(&server).port());
    let ca = ca_file(&server);
    let auth = format!("{user}:{pass}");
    for version in [["--tls-max", "1.2"], ["--tlsv1.3", "--tlsv1.3"]] {
        let (ok, status, body, _) = curl(&[
            "--cacert",
            &ca,
            "--resolve",
            &format!("localhost:{}:127.0.0.1", https(&server).port()),
            "-u",
            &auth,
            "-A",
            UA_VVX500_APP,
            version[0],
            version[1],
            &url,
        ]);
        assert!(ok && status == 200, "{version:?}: {status} {body}");
        assert!(body.contains("CONFIG_FILES"), "{body}");
    }
    for (flag, proto) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(
            https(&server),
            &[flag, "-CAfile", &ca, "-verify_return_error"],
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert!(
            out.contains(&format!("Protocol  : {proto}")) || out.contains(&format!(", {proto},")),
            "{out}"
        );
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(
            out.contains("HTTP/1.1 "),
            "an HTTP answer over {proto}: {out}"
        );
    }
    let pem = std::fs::read_to_string(server.data_dir().join("tls/server.pem")).expect("pem");
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("in").write_all(pem.as_bytes())?;
            c.wait_with_output()
        })
        .expect("fingerprint");
    let fp = String::from_utf8_lossy(&fp.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or("")
        .replace(':', "")
        .to_ascii_lowercase();
    let show = server.cli_ok(&["tls", "show"]);
    assert!(
        show.contains(&fp),
        "tls show lists the SHA-256 {fp}:\n{show}"
    );
    assert!(
        show.contains("IP:127.0.0.1") && show.contains("days left"),
        "{show}"
    );
    assert!(show.contains("local CA"), "{show}");
    let meta = std::fs::metadata(server.data_dir().join("tls/server.key")).expect("key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn keep_alive_carries_several_requests_over_one_tls_connection() {
    let server = ZServer::start();
    let port = https(&server).port();
    let url = format!("https://localhost:{port}/{MAC}.cfg");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--cacert",
            &ca_file(&server),
            "--resolve",
            &resolve,
        ])
        .args([
            "-w",
            "%{http_code} %{num_connects}\n",
            &url,
            &url,
            &url,
            &url,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    // Bodies of all but the first transfer go to stdout too; keep the -w lines.
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("401 ")).collect();
    assert_eq!(
        lines,
        vec!["401 1", "401 0", "401 0", "401 0"],
        "one connection, four answers"
    );
}

/// A client-auth server with its test CAs.
fn mtls_server(mode: &str) -> (ZServer, TestCa, tempfile::TempDir) {
    let pki = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("Test device CA");
    let bundle = write_file(pki.path(), "client-ca.pem", ca.cert_pem.as_bytes());
    let server = ZServer::start_with(&format!(
        "tls.client_auth = \"{mode}\"\ntls.client_ca_file = {:?}\ntls.key_type = \"ecdsa-p256\"",
        bundle.to_string_lossy()
    ));
    (server, ca, pki)
}

#[test]
fn required_client_certificates_refuse_strangers_and_bind_the_phone_to_its_mac() {
    let (server, ca, pki) = mtls_server("required");
    let (user, pass) = associate(&server, &[MAC, OTHER_MAC]);
    let auth = format!("{user}:{pass}");
    let port = https(&server).port();
    let base = format!("https://127.0.0.1:{port}");
    let cafile = ca_file(&server);
    let good = ca.client(pki.path(), "good", "SEP0004F2AABBCC", false);
    let stranger = TestCa::new("Someone else's CA").client(pki.path(), "stranger", MAC, false);
    let expired = ca.client(pki.path(), "expired", MAC, true);
    let with = |cert: Option<&(PathBuf, PathBuf)>, path: &str, extra: &[&str]| {
        let mut args: Vec<String> =
            vec!["--cacert".into(), cafile.clone(), "-u".into(), auth.clone()];
        if let Some((c, k)) = cert {
            args.extend([
                "--cert".into(),
                c.to_string_lossy().into(),
                "--key".into(),
                k.to_string_lossy().into(),
            ]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("{base}{path}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    };
    let mine = format!("/{MAC}.cfg");
    let theirs = format!("/{OTHER_MAC}.cfg");

    let (ok, status, _, err) = with(None, &mine, &[]);
    assert!(
        !ok && status == 0,
        "no certificate must be refused: {status} {err}"
    );
    let (ok, status, _, err) = with(Some(&stranger), &mine, &[]);
    assert!(
        !ok && status == 0,
        "another CA's certificate must be refused: {status} {err}"
    );
    let (ok, status, _, err) = with(Some(&expired), &mine, &[]);
    assert!(
        !ok && status == 0,
        "an expired certificate must be refused: {status} {err}"
    );

    let (ok, status, body, _) = with(Some(&good), &mine, &[]);
    assert!(ok && status == 200, "own files: {status} {body}");
    let (_, status, body, _) = with(Some(&good), &format!("/{MAC}-device.cfg"), &[]);
    assert_eq!(status, 200, "{body}");
    let (_, status, body, _) = with(Some(&good), &theirs, &[]);
    assert_eq!(status, 403, "another MAC's master: {body}");
    assert!(body.contains("another device"), "{body}");
    let (_, status, _, _) = with(Some(&good), &format!("/{OTHER_MAC}-device.cfg"), &[]);
    assert_eq!(status, 403);
    // A client cannot claim another identity with the internal header.
    let spoof =
        format!("x-zerotouch-client-cert: mac={OTHER_MAC}; sha256=00; subject=CN={OTHER_MAC}");
    let (_, status, _, _) = with(Some(&good), &theirs, &["-H", &spoof]);
    assert_eq!(status, 403, "a spoofed identity header is ignored");
    let (_, status, _, _) = with(Some(&good), &mine, &["-H", &spoof]);
    assert_eq!(status, 200, "the verified identity still holds");
    // Refusals are recorded: logged, and in the device's access log.
    assert!(eventually(Duration::from_secs(5), || {
        server
            .output
            .lock()
            .expect("lock")
            .contains("asked for the files of 0004f2000001")
    }));
    assert!(
        eventually(Duration::from_secs(5), || {
            server
                .cli_ok(&["device", "show", OTHER_MAC])
                .contains("cert-mismatch")
        }),
        "{}",
        server.cli_ok(&["device", "show", OTHER_MAC])
    );
    // The server is still serving.
    let mut admin = Conn::open(server.admin);
    assert_eq!(admin.request("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn optional_client_certificates_let_phones_without_one_in() {
    let (server, ca, pki) = mtls_server("optional");
    let (user, pass) = associate(&server, &[MAC, OTHER_MAC]);
    let auth = format!("{user}:{pass}");
    let url = |mac: &str| format!("https://127.0.0.1:{}/{mac}.cfg", https(&server).port());
    let (_, status, _, _) = curl(&["--cacert", &ca_file(&server), "-u", &auth, &url(OTHER_MAC)]);
    assert_eq!(status, 200, "no certificate: no MAC binding");
    let (c, k) = ca.client(pki.path(), "good", "00:04:f2:aa:bb:cc", false);
    let cert = [
        "--cert",
        c.to_str().expect("p"),
        "--key",
        k.to_str().expect("p"),
    ];
    let (_, status, _, _) = curl(
        &[
            &["--cacert", &ca_file(&server), "-u", &auth][..],
            &cert,
            &[&url(OTHER_MAC)],
        ]
        .concat(),
    );
    assert_eq!(status, 403);
    let (_, status, _, _) = curl(
        &[
            &["--cacert", &ca_file(&server), "-u", &auth][..],
            &cert,
            &[&url(MAC)],
        ]
        .concat(),
    );
    assert_eq!(status, 200);
}

/// With the vendor's device CA configured, association opens no enrolment window: the
/// account credential gets neither a credential nor a secret, a verified certificate naming
/// the MAC gets everything, and an admin cannot open a window (the secure-by-default issue,
/// item 4).
#[test]
fn with_a_device_ca_only_a_certificate_enrols_and_no_window_opens() {
    let (server, ca, pki) = mtls_server("optional");
    let (user, pass) = associate(&server, &[MAC]);
    let auth = format!("{user}:{pass}");
    // The per-device file: the one that carries the lines and the device's own credential.
    let url = format!(
        "https://127.0.0.1:{}/{MAC}-device.cfg",
        https(&server).port()
    );
    let cafile = ca_file(&server);
    let (_, status, body, _) = curl(&["--cacert", &cafile, "-u", &auth, &url]);
    assert_eq!(status, 200);
    // (Auto-Sync's account credentials, which it already holds, are not its own.)
    assert!(
        !body.contains("Line-Secret-1") && !body.contains(&format!("device.prov.user=\"{MAC}\"")),
        "the account credential alone got a secret or the device's own credential:\n{body}"
    );
    let (c, k) = ca.client(pki.path(), "good", "SEP0004F2AABBCC", false);
    let (_, status, body, _) = curl(&[
        "--cacert",
        &cafile,
        "-u",
        &auth,
        "--cert",
        c.to_str().expect("p"),
        "--key",
        k.to_str().expect("p"),
        &url,
    ]);
    assert_eq!(status, 200);
    assert!(body.contains("Line-Secret-1"), "{body}");
    for args in [
        &["enrol", "open", "--minutes", "60", "--mac", MAC][..],
        &["enrol", "reenrol", MAC, "--yes"][..],
    ] {
        let out = server.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("certificate"),
            "{args:?}: {err}"
        );
    }
    let status = server.cli_ok(&["enrol", "status"]);
    assert!(
        status.contains("enrol with their certificates") && !status.contains("\twindow open"),
        "{status}"
    );
}

/// Opens a TCP connection and returns how long the server took to close it (None: it
/// did not within `wait`).
fn closed_within(mut s: TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue, // an alert
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed());
            }
            Err(_) => return None,
        }
    }
}

/// The first bytes of a TLS ClientHello record (header and the start of the handshake).
const HALF_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0x11, 0x22, 0x33,
];

/// Whether the server still holds a connection open (nothing to read, no EOF).
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 1];
    let open = matches!(s.peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).expect("blocking");
    open
}

#[test]
fn stalled_handshakes_are_closed_after_the_timeout_without_holding_a_worker() {
    // A timeout long enough that "served while they stall" is about order, not speed.
    const TIMEOUT: Duration = Duration::from_secs(6);
    let server = ZServer::start_with(
        "tls.handshake_timeout_secs = 6\nlimits.max_connections = 8\ntls.key_type = \"ecdsa-p256\"",
    );
    let addr = https(&server);
    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..5 {
        let mut s = TcpStream::connect(addr).expect("connect");
        if i % 2 == 1 {
            s.write_all(HALF_HELLO).expect("half hello");
        }
        stalled.push(s);
    }
    // Other clients are served meanwhile: while every stalled handshake is still open.
    let (ok, status, _, err) = curl(&[
        "--cacert",
        &ca_file(&server),
        &format!("https://127.0.0.1:{}/x.cfg", addr.port()),
    ]);
    assert!(ok && status == 401, "{status} {err}");
    let served_after = started.elapsed();
    assert!(
        stalled.iter().all(still_open),
        "served while others stall (curl took {served_after:?})"
    );
    for s in stalled {
        // Closed at the timeout: never before it, and well before a second one.
        closed_within(s, TIMEOUT * 2).expect("a stalled handshake is closed");
        let at = started.elapsed();
        assert!(
            at >= TIMEOUT - Duration::from_millis(100),
            "closed after the timeout, not before: {at:?} (curl was served after {served_after:?})"
        );
    }
    // Their slots are free again.
    let mut admin = Conn::open(server.admin);
    let open = || {
        let r = Conn::open(server.admin).request("GET", "/healthz", &[], b"");
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["open_connections"]
            .as_u64()
            .unwrap_or(99)
    };
    assert!(
        eventually(Duration::from_secs(3), || open() <= 2),
        "open: {}",
        open()
    );
    assert_eq!(admin.request("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn garbage_and_truncated_handshakes_end_at_once_and_the_server_keeps_serving() {
    // At once: long before the handshake timeout would close them.
    let server =
        ZServer::start_with("tls.key_type = \"ecdsa-p256\"\ntls.handshake_timeout_secs = 60");
    let addr = https(&server);
    // Plain HTTP (and other garbage) instead of a ClientHello: an alert, then close.
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0u8; 64][..],
        b"\x16\x03\x01\xff\xff garbage",
    ] {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(junk).expect("write");
        closed_within(s, Duration::from_secs(30))
            .expect("refused at once, long before the 60 s handshake timeout");
    }
    // A truncated handshake: half a ClientHello, then the client hangs up.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(HALF_HELLO).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert!(closed_within(s, Duration::from_secs(30)).is_some());
    let (ok, status, _, err) = curl(&[
        "--cacert",
        &ca_file(&server),
        &format!("https://127.0.0.1:{}/x.cfg", addr.port()),
    ]);
    assert!(ok && status == 401, "still serving: {status} {err}");
}

#[test]
fn the_ca_is_delivered_to_phones_and_confirmed_by_the_https_probe() {
    let server =
        ZServer::start_with("tls.deliver_ca_to_phones = true\ntls.key_type = \"ecdsa-p256\"");
    let (user, pass) = associate(&server, &[MAC]);
    let port = https(&server).port();
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    let master = phone.get(&format!("/{MAC}.cfg")).text();
    let probe = format!("https://127.0.0.1:{port}/{MAC}-tls-probe.cfg");
    assert!(
        master.contains(&probe),
        "the probe is listed while the CA is pending:\n{master}"
    );
    let device = phone.get(&format!("/{MAC}-device.cfg")).text();
    for want in [
        "device.sec.TLS.customCaCert1=\"-----BEGIN CERTIFICATE-----&#10;",
        "device.sec.TLS.customCaCert1.set=\"1\"",
        "device.set=\"1\"",
        "device.sec.TLS.profileSelection.provisioning=\"PlatformProfile1\"",
    ] {
        assert!(device.contains(want), "{want} in:\n{device}");
    }
    assert!(!device.contains("customCaCert2"), "slot 2 stays free");
    assert_eq!(
        phone.get(&format!("/{MAC}-tls-probe.cfg")).status,
        404,
        "never over plain HTTP"
    );
    let (ok, status, _, err) = curl(&[
        "--cacert",
        &ca_file(&server),
        "-u",
        &format!("{user}:{pass}"),
        "-A",
        UA_VVX500_APP,
        &probe,
    ]);
    assert!(ok && status == 200, "{status} {err}");
    let master = phone.get(&format!("/{MAC}.cfg")).text();
    assert!(
        !master.contains("tls-probe"),
        "confirmed: no probe any more:\n{master}"
    );
    let device = phone.get(&format!("/{MAC}-device.cfg")).text();
    assert!(
        !device.contains("customCaCert1"),
        "confirmed: no CA any more:\n{device}"
    );
    assert!(
        server
            .cli_ok(&["tls", "status"])
            .contains("confirmed to trust local CA: 1")
    );
}

#[test]
fn no_secrets_mode_keeps_secret_files_off_plain_http_and_refuses_to_strand_devices() {
    let server = ZServer::start_with("tls.key_type = \"ecdsa-p256\"");
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    let (user, pass) = associate(&server, &[MAC]);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}-device.cfg")).status, 200);
    let dir = server.stop_keep();
    // The phone has only ever used plain HTTP: limiting HTTP would strand it.
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let limited = format!("{text}device.http_mode = \"no-secrets\"\n");
    std::fs::write(&config, &limited).expect("write");
    let out = cli_with_config(&config, &["tls", "status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(MAC));
    let serve = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(
        !serve.status.success()
            && err.contains("device.http_mode")
            && err.contains("1 associated device"),
        "{err}"
    );

    std::fs::write(&config, format!("{limited}device.allow_stranding = true\n")).expect("write");
    let server = ZServer::start_in(
        dir,
        "device.allow_stranding = true\ndevice.http_mode = \"no-secrets\"\ntls.key_type = \"ecdsa-p256\"",
    );
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(
        phone.get(&format!("/{MAC}.cfg")).status,
        200,
        "the master carries no secrets"
    );
    let r = phone.get(&format!("/{MAC}-device.cfg"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("HTTPS only"), "{}", r.text());
    assert_eq!(
        phone.get(&format!("/{MAC}-profile.cfg")).status,
        200,
        "no secrets in it"
    );
    let (_, status, body, _) = curl(&[
        "--cacert",
        &ca_file(&server),
        "-u",
        &format!("{user}:{pass}"),
        &format!(
            "https://127.0.0.1:{}/{MAC}-device.cfg",
            https(&server).port()
        ),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Line-Secret-1"));
}

#[test]
fn a_device_certificate_proves_the_device_and_gets_its_secrets() {
    use crate::device_secrets::{LINE_SECRET, PHONE, VICTIM, withholding_server};
    let (server, ca, pki) = mtls_server("optional");
    let (user, pass) = withholding_server(&server);
    let auth = format!("{user}:{pass}");
    let base = format!("https://127.0.0.1:{}", https(&server).port());
    let cafile = ca_file(&server);
    let cert = ca.client(
        pki.path(),
        "phone",
        &format!("SEP{}", PHONE.to_uppercase()),
        false,
    );
    let get = |with_cert: bool, path: &str| {
        let mut args: Vec<String> =
            vec!["--cacert".into(), cafile.clone(), "-u".into(), auth.clone()];
        if with_cert {
            args.extend([
                "--cert".into(),
                cert.0.to_string_lossy().into(),
                "--key".into(),
                cert.1.to_string_lossy().into(),
            ]);
        }
        args.push(format!("{base}{path}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    };
    // No window is open: without the certificate, the account credential gets no secret.
    let (_, status, body, _) = get(false, &format!("/{PHONE}-device.cfg"));
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(LINE_SECRET), "{body}");
    // The verified certificate naming the MAC is proof: secrets, and the device's own
    // credential for it to adopt.
    let (_, status, body, _) = get(true, &format!("/{PHONE}-device.cfg"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(LINE_SECRET), "{body}");
    assert!(
        body.contains(&format!("device.prov.user=\"{PHONE}\"")),
        "{body}"
    );
    // It proves only its own MAC.
    let (_, status, _, _) = get(true, &format!("/{VICTIM}-device.cfg"));
    assert_eq!(status, 403);
}
