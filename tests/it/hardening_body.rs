//! A total deadline for request bodies (issue 19, item 4): a body dripping one byte just
//! inside the silence timeout is cut off when its deadline passes, instead of holding its
//! connection (and the memory reserved for it) for ever.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn a_dripping_body_is_cut_off_at_its_deadline() {
    let server = ZServer::start_with("limits.body_timeout_secs = 2\nlimits.body_deadline_secs = 3");
    let mut s = TcpStream::connect(server.admin).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            server.admin
        )
        .as_bytes(),
    )
    .expect("head");
    let started = Instant::now();
    let mut answer = Vec::new();
    // One byte a second, well inside the 2 s silence timeout, for up to 12 s.
    while started.elapsed() < Duration::from_secs(12) {
        if s.write_all(b"1\r\nx\r\n").is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        took < Duration::from_secs(7),
        "the dripping body held its connection for {took:?}: {text}"
    );
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // Bad configuration names the key.
    let bad = write_file(
        server.dir.path(),
        "bad.toml",
        b"[limits]\nbody_timeout_secs = 30\nbody_deadline_secs = 5\n",
    );
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("check-config");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && all.contains("limits.body_deadline_secs"),
        "{all}"
    );
}
