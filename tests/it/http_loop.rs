//! The connection loop against real sockets: keep-alive, pipelining, HTTP/1.0, framing
//! attacks, size limits and timeouts.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::*;

fn health(conn: &mut Conn) -> Resp {
    conn.request("GET", "/healthz", &[], b"")
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = ZServer::start();
    let mut conn = Conn::open(server.admin);
    for _ in 0..20 {
        let r = health(&mut conn);
        assert_eq!(r.status, 200);
        assert!(r.header("Connection").is_none());
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = ZServer::start();
    let mut conn = Conn::open(server.admin);
    let host = server.admin.to_string();
    let mut batch = String::new();
    for path in ["/healthz", "/assets/nope.css", "/healthz", "/health"] {
        batch.push_str(&format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }
    conn.send(batch.as_bytes());
    let statuses: Vec<u16> = (0..4)
        .map(|_| conn.read_response(false).expect("response").status)
        .collect();
    assert_eq!(statuses, vec![200, 404, 200, 200]);
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = ZServer::start();
    let mut conn = Conn::open(server.admin);
    conn.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert!(conn.is_closed(Duration::from_secs(2)));

    let mut conn = Conn::open(server.admin);
    conn.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    conn.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(conn.read_response(false).expect("second").status, 200);
}

#[test]
fn smuggling_attempts_are_refused_and_the_connection_closed() {
    let server = ZServer::start();
    let host = server.device.to_string();
    for (name, status, head) in [
        (
            "CL and TE",
            400,
            format!(
                "POST /x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "TE and CL",
            400,
            format!(
                "PUT /x HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "two CL",
            400,
            format!(
                "PUT /x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
            ),
        ),
        (
            "negative CL",
            400,
            format!("PUT /x HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n"),
        ),
        (
            "CL with junk",
            400,
            format!("PUT /x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1 2\r\n\r\n"),
        ),
        (
            "TE chunked, chunked",
            501,
            format!(
                "PUT /x HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
            ),
        ),
        (
            "obfuscated TE",
            501,
            format!("PUT /x HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n"),
        ),
        ("no Host", 400, "GET /x HTTP/1.1\r\n\r\n".to_string()),
        (
            "two Hosts",
            400,
            format!("GET /x HTTP/1.1\r\nHost: {host}\r\nHost: evil\r\n\r\n"),
        ),
        (
            "absolute target",
            400,
            format!("GET http://{host}/x HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        ),
    ] {
        let mut conn = Conn::open(server.device);
        conn.send(head.as_bytes());
        let r = conn
            .read_response(false)
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(r.status, status, "{name}");
        assert!(
            conn.is_closed(Duration::from_secs(2)),
            "{name}: connection must close"
        );
    }
    // The server is still serving.
    assert_eq!(health(&mut Conn::open(server.admin)).status, 200);
}

#[test]
fn an_oversize_head_gets_431() {
    let server = ZServer::start_with("limits.head_bytes = 2048");
    let mut conn = Conn::open(server.device);
    let big = "a".repeat(4096);
    conn.send(format!("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    assert_eq!(conn.read_response(false).expect("response").status, 431);
    let mut conn = Conn::open(server.device);
    let mut req = String::from("GET /x HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        req.push_str(&format!("X-{i}: 1\r\n"));
    }
    conn.send(format!("{req}\r\n").as_bytes());
    assert_eq!(conn.read_response(false).expect("response").status, 431);
}

#[test]
fn a_slow_client_is_cut_off_after_the_head_timeout() {
    let server = ZServer::start_with("limits.head_timeout_secs = 1");
    let mut conn = Conn::open(server.device);
    let started = Instant::now();
    conn.send(b"GET /0004f2000001.cfg HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(400));
    conn.send(b"Host: x\r\n");
    let r = conn.read_response(false).expect("a 408 before closing");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Other clients were served meanwhile.
    assert_eq!(health(&mut Conn::open(server.admin)).status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let server = ZServer::start_with("limits.device_idle_secs = 1");
    let mut conn = Conn::open(server.device);
    assert_eq!(conn.request("GET", "/nothing-here", &[], b"").status, 401);
    let started = Instant::now();
    assert!(conn.is_closed(Duration::from_secs(5)));
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[test]
fn a_chunked_upload_is_stored_whole() {
    let server = ZServer::start();
    server.set_credentials();
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "p1"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "p1"]);
    let (user, pass) = server.credentials();
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{pass}")
        )
    );
    let mut conn = Conn::open(server.device);
    let head = format!(
        "PUT /logs/0004f2000001-app.log HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nUser-Agent: {UA_VVX500_APP}\r\n\r\n"
    );
    conn.send(head.as_bytes());
    conn.send(b"5\r\nhello\r\n");
    conn.stream.flush().expect("flush");
    conn.send(b"7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 201, "{}", r.text());
    let stored = std::fs::read(
        server
            .data_dir()
            .join("uploads/0004f2000001/logs/0004f2000001-app.log"),
    )
    .expect("stored");
    assert_eq!(stored, b"hello, world");
    // The connection is still usable.
    let r = conn.request(
        "GET",
        "/logs/0004f2000001-app.log",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.body, b"hello, world");
}

#[test]
fn expect_100_continue_is_answered_only_after_authentication() {
    let server = ZServer::start();
    server.set_credentials();
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "p1"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "p1"]);
    let mut conn = Conn::open(server.device);
    conn.send(b"PUT /logs/0004f2000001-app.log HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = conn.read_response(false).expect("response");
    assert_eq!(r.status, 401, "no 100 Continue before authentication");
    let (user, pass) = server.credentials();
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{pass}")
        )
    );
    let mut conn = Conn::open(server.device);
    conn.send(format!("PUT /logs/0004f2000001-app.log HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").as_bytes());
    let mut first = [0u8; 25];
    std::io::Read::read_exact(&mut conn.stream, &mut first).expect("100 continue");
    assert!(
        first.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    conn.send(b"hello");
    assert_eq!(conn.read_response(false).expect("final").status, 201);
}

#[test]
fn the_connection_cap_answers_503_and_the_server_recovers() {
    let server = ZServer::start_with("limits.max_connections = 3");
    let held: Vec<Conn> = (0..3).map(|_| Conn::open(server.admin)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = Conn::open(server.admin);
    extra.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let r = extra.read_response(false).expect("503");
    assert_eq!(r.status, 503);
    assert!(r.header("Retry-After").is_some());
    drop(held);
    assert!(eventually(Duration::from_secs(5), || {
        let mut c = Conn::open(server.admin);
        c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        c.read_response(false).is_some_and(|r| r.status == 200)
    }));
}
