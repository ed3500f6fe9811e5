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
        format!("{original}auth.failure_limit = 1\nlimits.max_connections = 500\n"),
    )
    .expect("edit");
    hup(&server);
    assert!(
        logged(
            &server,
            "SIGHUP: configuration re-read: applied: auth.failure_limit = 1; needs a restart: \
             limits.max_connections"
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
