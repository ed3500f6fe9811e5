//! Logs an operator can use (issue 23): every refused device credential is one warn line
//! with the client address, which the shipped fail2ban filter matches
//! (`packaging/fail2ban/filter.d/zerotouch.conf`, checked with `fail2ban-regex` over the
//! server's own log); a phone's normal traffic — no credentials on a first request, a
//! replayed Digest header — writes none, and no line carries a user name or password.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use crate::common::*;
use crate::sim::digest::DigestSession;
use crate::sim::parse_challenges;

const MAC: &str = "0004f2000771";
const UA: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";
const LINE: &str = "refused device credential from";

fn wrong_basic(server: &ZServer, from: IpAddr, method: &str, path: &str) -> u16 {
    let basic = base64::engine::general_purpose::STANDARD.encode("phones:Wrong-Guess-123");
    Conn::open_from(from, server.device)
        .request(
            method,
            path,
            &[
                ("User-Agent", UA),
                ("Authorization", &format!("Basic {basic}")),
                ("Connection", "close"),
            ],
            if method == "PUT" { b"<a/>" } else { b"" },
        )
        .status
}

/// Runs `fail2ban-regex` with the shipped filter over `log`; returns the matched count and
/// the whole report.
fn fail2ban_matches(log: &Path) -> (usize, String) {
    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fail2ban/filter.d/zerotouch.conf");
    let out = std::process::Command::new("fail2ban-regex")
        .arg(log)
        .arg(&filter)
        .output()
        .expect("run fail2ban-regex");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let matched = report
        .lines()
        .find_map(|l| l.strip_prefix("Failregex: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a Failregex count");
    (matched, report)
}

#[test]
fn refused_credentials_are_one_line_each_for_fail2ban_and_normal_phone_traffic_none() {
    let server = ZServer::start();
    let (user, pass) = server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let path = format!("/{MAC}-device.cfg");

    // What phones do every day: a first request without credentials, then Digest, and
    // the same header again (a replay: stale, challenged afresh).
    let mut conn = Conn::open(server.device);
    let first = conn.request("GET", &path, &[("User-Agent", UA)], b"");
    assert_eq!(first.status, 401);
    let challenge = parse_challenges(first.headers_named("WWW-Authenticate"))
        .into_iter()
        .find(|c| c.is_usable_digest())
        .expect("a Digest challenge");
    let mut digest = DigestSession::from_challenge(&challenge);
    let header = digest.authorization(&user, &pass, "GET", &path);
    for expected in [200, 401, 401] {
        let r = conn.request(
            "GET",
            &path,
            &[("User-Agent", UA), ("Authorization", &header)],
            b"",
        );
        assert_eq!(r.status, expected, "{}", r.text());
    }

    // Wrong credentials: two GETs from one address, a PUT (refused before its body) from
    // another.
    let one = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 41));
    let two = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 42));
    assert_eq!(wrong_basic(&server, one, "GET", &path), 401);
    assert_eq!(
        wrong_basic(&server, one, "GET", &format!("/{MAC}.cfg")),
        401
    );
    assert_eq!(
        wrong_basic(
            &server,
            two,
            "PUT",
            &format!("/contacts/{MAC}-directory.xml")
        ),
        401
    );
    assert!(eventually(Duration::from_secs(5), || {
        server.output.lock().expect("output").matches(LINE).count() >= 3
    }));
    std::thread::sleep(Duration::from_millis(200));
    let output = server.output.lock().expect("output").clone();
    let lines: Vec<&str> = output.lines().filter(|l| l.contains(LINE)).collect();
    assert_eq!(lines.len(), 3, "{output}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(&format!("{LINE} 127.0.0.41 for {MAC}: wrong credentials")))
            .count(),
        2,
        "{lines:?}"
    );
    assert!(
        lines[2].contains(&format!("{LINE} 127.0.0.42 for {MAC}")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.contains("[WARN]")), "{lines:?}");
    for secret in [pass.as_str(), "Wrong-Guess-123", user.as_str()] {
        assert!(!output.contains(secret), "{secret} logged: {output}");
    }

    if !require(
        have("fail2ban-regex"),
        "fail2ban-regex is not installed (apt-get install fail2ban)",
    ) {
        return;
    }
    let log = write_file(server.dir.path(), "server.log", output.as_bytes());
    let (matched, report) = fail2ban_matches(&log);
    assert_eq!(matched, 3, "{report}");
}
