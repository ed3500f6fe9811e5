//! Digest replays (issue 19, item 5): a captured `qop=auth` header is accepted once per
//! (nonce, nc), a response without `qop` only for GET and HEAD; a replay gets `401` with
//! `stale=true` and is never counted as a wrong credential, so a client that re-sends the
//! same header on every request of a keep-alive connection still provisions.

use crate::common::*;
use crate::sim::digest::DigestSession;
use crate::sim::parse_challenges;

const MAC: &str = "0004f2000661";
const UA: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";

fn setup(extra: &str) -> (ZServer, String, String) {
    let server = ZServer::start_with(extra);
    let (user, pass) = server.set_credentials();
    // Uploads with the account credential (what is tested here is not enrolment).
    server.serve_secrets_to_account();
    let site = write_file(server.dir.path(), "site.cfg", b"<polycomConfig/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    (server, user, pass)
}

/// A Digest session from the challenge of an unauthenticated request on `conn`.
fn session(conn: &mut Conn, path: &str) -> DigestSession {
    let r = conn.request("GET", path, &[("User-Agent", UA)], b"");
    assert_eq!(r.status, 401);
    digest_of(&r)
}

fn digest_of(r: &Resp) -> DigestSession {
    let c = parse_challenges(r.headers_named("WWW-Authenticate"))
        .into_iter()
        .find(|c| c.is_usable_digest())
        .expect("a Digest challenge");
    DigestSession::from_challenge(&c)
}

fn is_stale(r: &Resp) -> bool {
    r.status == 401
        && parse_challenges(r.headers_named("WWW-Authenticate"))
            .iter()
            .any(|c| c.is_usable_digest() && c.is_stale())
}

#[test]
fn a_replayed_digest_header_is_stale_never_a_failure_and_never_stores_anything() {
    // One wrong credential would throttle this address: replays must not count.
    let (server, user, pass) = setup("auth.failure_limit = 1");
    let path = format!("/{MAC}-device.cfg");
    let mut conn = Conn::open(server.device);
    let mut s = session(&mut conn, &path);
    let header = s.authorization(&user, &pass, "GET", &path);
    let ok = conn.request(
        "GET",
        &path,
        &[("User-Agent", UA), ("Authorization", &header)],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    for _ in 0..5 {
        // The captured header again, on this connection and on a new one.
        for c in [&mut conn, &mut Conn::open(server.device)] {
            let r = c.request(
                "GET",
                &path,
                &[("User-Agent", UA), ("Authorization", &header)],
                b"",
            );
            assert!(is_stale(&r), "a replay is stale: {} {}", r.status, r.text());
        }
    }
    // A PUT with a different body under a captured header stores nothing.
    let upload = format!("/contacts/{MAC}-directory.xml");
    let put = s.authorization(&user, &pass, "PUT", &upload);
    let r = conn.request(
        "PUT",
        &upload,
        &[("User-Agent", UA), ("Authorization", &put)],
        b"<a/>",
    );
    assert!(matches!(r.status, 201 | 204), "{} {}", r.status, r.text());
    let r = conn.request(
        "PUT",
        &upload,
        &[("User-Agent", UA), ("Authorization", &put)],
        b"<evil/>",
    );
    assert!(
        is_stale(&r),
        "a replayed PUT is stale: {} {}",
        r.status,
        r.text()
    );
    let stored = server
        .data_dir()
        .join("uploads")
        .join(MAC)
        .join("contacts")
        .join(format!("{MAC}-directory.xml"));
    assert_eq!(std::fs::read(&stored).expect("stored"), b"<a/>");
    // RFC 2069 (no qop): fine for GET, never for a PUT.
    let mut old = s.clone();
    old.qop = None;
    let get = old.authorization(&user, &pass, "GET", &path);
    let r = conn.request(
        "GET",
        &path,
        &[("User-Agent", UA), ("Authorization", &get)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let put = old.authorization(&user, &pass, "PUT", &upload);
    let r = conn.request(
        "PUT",
        &upload,
        &[("User-Agent", UA), ("Authorization", &put)],
        b"<evil/>",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(std::fs::read(&stored).expect("stored"), b"<a/>");
    // Never throttled, never logged as a wrong credential.
    let mut fresh = Conn::open(server.device);
    let mut s2 = session(&mut fresh, &path);
    let h = s2.authorization(&user, &pass, "GET", &path);
    let r = fresh.request(
        "GET",
        &path,
        &[("User-Agent", UA), ("Authorization", &h)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let log = server.output.lock().expect("log").clone();
    assert!(!log.contains("too many wrong credentials"), "{log}");
    let metrics = Conn::open(server.admin)
        .request("GET", "/metrics", &[], b"")
        .text();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("zerotouch_auth_throttled_ips ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn a_client_resending_one_header_on_a_keep_alive_connection_still_provisions() {
    let (server, user, pass) = setup("auth.failure_limit = 1");
    let path = format!("/{MAC}-device.cfg");
    let mut conn = Conn::open(server.device);
    let mut s = session(&mut conn, &path);
    let mut header = s.authorization(&user, &pass, "GET", &path);
    let (mut served, mut stale) = (0, 0);
    for _ in 0..10 {
        // A lazy embedded client: the same header until the server asks for a new one.
        let mut r = conn.request(
            "GET",
            &path,
            &[("User-Agent", UA), ("Authorization", &header)],
            b"",
        );
        if is_stale(&r) {
            stale += 1;
            s = digest_of(&r);
            header = s.authorization(&user, &pass, "GET", &path);
            r = conn.request(
                "GET",
                &path,
                &[("User-Agent", UA), ("Authorization", &header)],
                b"",
            );
        }
        assert_eq!(r.status, 200, "{}", r.text());
        served += 1;
    }
    assert_eq!(served, 10);
    assert_eq!(
        stale, 9,
        "each re-sent header is answered with a fresh nonce"
    );
}
