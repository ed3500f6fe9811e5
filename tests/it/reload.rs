//! SIGHUP re-reads the configuration file (issue 23): a changed throttling limit is in force
//! at once, the log line names what was applied and what needs a restart, and a file with a
//! problem changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;

use crate::common::*;

/// The status of one request with a wrong password, from `from`.
fn wrong(server: &ZServer, from: IpAddr) -> u16 {
    let basic = base64::engine::general_purpose::STANDARD.encode("phones:not-the-password");
    Conn::open_from(from, server.device)
        .request(
            "GET",
            "/0004f2000001.cfg",
            &[
                ("Authorization", &format!("Basic {basic}")),
                ("Connection", "close"),
            ],
            b"",
        )
        .status
}

fn hup(server: &ZServer) {
    let st = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn logged(server: &ZServer, text: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        server.output.lock().expect("output").contains(text)
    })
}

#[test]
fn sighup_applies_a_changed_throttle_limit_and_names_what_needs_a_restart() {
    let server = ZServer::start();
    server.set_credentials();
    let first = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21));
    // The default limit (20 wrong attempts a minute): three are challenged, not throttled.
    let before: Vec<u16> = (0..3).map(|_| wrong(&server, first)).collect();
    assert_eq!(before, [401, 401, 401]);

    let original = std::fs::read_to_string(&server.config).expect("config");
    std::fs::write(
        &server.config,
        format!("{original}auth.failure_limit = 1\nlimits.memory_body_budget = 1048576\n"),
    )
    .expect("edit");
    hup(&server);
    assert!(
        logged(
            &server,
            "SIGHUP: configuration re-read: applied: auth.failure_limit = 1; needs a restart: \
             limits.memory_body_budget"
        ),
        "{}",
        server.output.lock().expect("output")
    );
    let second = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 22));
    let after: Vec<u16> = (0..3).map(|_| wrong(&server, second)).collect();
    assert_eq!(after, [401, 429, 429]);

    // A file with a problem: nothing changes, and the log says why.
    std::fs::write(
        &server.config,
        format!("{original}auth.failure_limit = 0\n"),
    )
    .expect("edit");
    hup(&server);
    assert!(
        logged(
            &server,
            "SIGHUP: configuration not re-read, the settings in force are kept"
        ),
        "{}",
        server.output.lock().expect("output")
    );
    assert!(
        server
            .output
            .lock()
            .expect("output")
            .contains("auth.failure_limit")
    );
    let third = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 23));
    let kept: Vec<u16> = (0..2).map(|_| wrong(&server, third)).collect();
    assert_eq!(kept, [401, 429]);
}

/// The status of a device upload of `size` bytes by the associated phone.
fn upload(server: &ZServer, size: usize) -> u16 {
    let mut phone = server.phone("0004f2000001", UA_VVX500_APP);
    phone
        .request("PUT", "/0004f2000001-app.log", &vec![b'x'; size])
        .status
}

/// How many of `n` connections held open from `from` the server keeps (the rest it closes
/// at once with a 503).
fn held_open(server: &ZServer, from: IpAddr, n: usize) -> usize {
    use std::io::{Read, Write};
    let conns: Vec<std::net::TcpStream> = (0..n)
        .map(|_| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            s.bind(&std::net::SocketAddr::new(from, 0).into())
                .expect("bind");
            s.connect(&server.device.into()).expect("connect");
            s.into()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    conns
        .into_iter()
        .filter_map(|mut c| {
            c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Ok(n) if n > 0 => (!buf[..n].starts_with(b"HTTP/1.1 503")).then_some(()),
                // Still open, waiting: kept.
                Err(_) => Some(()),
                _ => None,
            }
        })
        .count()
}

#[test]
fn sighup_puts_changed_limits_in_force_for_new_requests() {
    let server = ZServer::start();
    server.set_credentials();
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "office"]);
    let me = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 31));
    // Before: a 20 KB phone log is stored; 40 connections from one address are kept.
    assert_eq!(upload(&server, 20_000), 201);
    assert_eq!(held_open(&server, me, 40), 40);

    let original = std::fs::read_to_string(&server.config).expect("config");
    std::fs::write(
        &server.config,
        format!(
            "{original}limits.upload_bytes = 10000\nlimits.max_connections_per_ip = 10\n\
             limits.head_bytes = 2048\n"
        ),
    )
    .expect("edit");
    hup(&server);
    assert!(
        logged(
            &server,
            "SIGHUP: configuration re-read: applied: limits.head_bytes = 2048, \
             limits.max_connections_per_ip = 10, limits.upload_bytes = 10000; needs a \
             restart: nothing"
        ),
        "{}",
        server.output.lock().expect("output")
    );
    // After: the same upload is too large, one address keeps 10 connections, and a request
    // head over 2 KiB is refused.
    assert_eq!(upload(&server, 20_000), 413);
    // Stored again over the first one.
    assert_eq!(upload(&server, 5_000), 204);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 32));
    assert_eq!(held_open(&server, other, 40), 10);
    let big = "x".repeat(3000);
    let r = Conn::open(server.device).request(
        "GET",
        "/healthz",
        &[("X-Big", big.as_str()), ("Connection", "close")],
        b"",
    );
    assert_eq!(r.status, 431);
    // The console's per-request settings follow too: an API import over the new row cap
    // is refused whole.
    let token = user_with_token(&server, "ops", "admin", "");
    let csv = "0004f2000101,,,office\n0004f2000102,,,office\n0004f2000103,,,office\n";
    let r = api(&server, "POST", "/imports", Some(&token), csv);
    assert_eq!(json(&r)["status"], "Completed", "{}", r.text());
    let original = std::fs::read_to_string(&server.config).expect("config");
    std::fs::write(
        &server.config,
        format!("{original}console.csv_max_rows = 2\n"),
    )
    .expect("edit");
    hup(&server);
    assert!(logged(&server, "applied: console.csv_max_rows = 2"));
    let csv = "0004f2000201,,,office\n0004f2000202,,,office\n0004f2000203,,,office\n";
    let r = api(&server, "POST", "/imports", Some(&token), csv);
    let job = json(&r);
    assert_eq!(job["status"], "Failed", "{job}");
    assert!(
        job["message"].as_str().is_some_and(|m| m.contains('2')),
        "{job}"
    );
    // The metrics show the limits in force.
    let metrics = Conn::open(server.admin)
        .request("GET", "/metrics", &[("Connection", "close")], b"")
        .text();
    assert!(
        metrics.contains("zerotouch_limit{name=\"limits.upload_bytes\"} 10000"),
        "{metrics}"
    );
}
