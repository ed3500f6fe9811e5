//! Admission before memory (issue 19, item 4): strangers declaring large bodies, on the
//! admin port or the device port, reserve no memory, so sign-in and phones' uploads go on;
//! and one signed-in address cannot take the whole admin budget either.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::*;

const MAC: &str = "0004f2a1b2c3";

/// A connection that sent a request head declaring a body it never sends.
fn declare(addr: SocketAddr, method: &str, path: &str, length: u64, extra: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         {extra}Content-Length: {length}\r\n\r\n"
    )
    .expect("head");
    s
}

/// The status line a held connection got, if any.
fn answer(mut s: TcpStream) -> String {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        Err(_) => String::new(),
    }
}

/// A server with a phone that may upload, and the admin's one-time password.
fn server_with_phone(extra: &str) -> (ZServer, Phone, String) {
    let server = ZServer::start_with(extra);
    let password = admin_password(&server);
    let (user, pass) = server.set_credentials();
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let phone = Phone::new(server.device, MAC, UA_VVX500_APP, &user, &pass);
    (server, phone, password)
}

fn phone_uploads(phone: &mut Phone) {
    let r = phone.request("PUT", &format!("/{MAC}-app.log"), b"boot log\n");
    assert_eq!(r.status / 100, 2, "the phone's upload: {}", r.text());
}

#[test]
fn strangers_declaring_large_admin_bodies_do_not_starve_sign_in_or_phones() {
    let (server, mut phone, password) = server_with_phone("");
    // 24 strangers each declare a 16 MiB shared-asset upload: 384 MiB, more than the
    // whole 256 MiB budget. Before admission came first, 16 of them held it all and every
    // admin POST, sign-in included, answered 503.
    let held: Vec<_> = (0..24)
        .map(|_| declare(server.admin, "POST", "/files", 16 << 20, ""))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let s = Session::sign_in(&server, "admin", &password);
    assert!(!s.cookie.is_empty());
    phone_uploads(&mut phone);
    for h in held {
        let status = answer(h);
        assert!(
            status.is_empty() || status.starts_with("HTTP/1.1 401"),
            "a stranger's large body is refused before it is read: {status}"
        );
    }
}

#[test]
fn strangers_declaring_device_bodies_do_not_starve_sign_in_or_phones() {
    // A small budget, so that a few connections would have filled it: 80 x 64 KiB = 5 MiB.
    let (server, mut phone, password) = server_with_phone("limits.memory_body_budget = 4194304");
    let held: Vec<_> = (0..80)
        .map(|_| declare(server.device, "POST", &format!("/{MAC}.cfg"), 64 << 10, ""))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let s = Session::sign_in(&server, "admin", &password);
    assert!(!s.cookie.is_empty());
    phone_uploads(&mut phone);
    for h in held {
        let status = answer(h);
        assert!(
            status.is_empty() || status.starts_with("HTTP/1.1 405"),
            "a device body of a method phones never use is refused before it is read: {status}"
        );
    }
}

#[test]
fn one_signed_in_address_holds_at_most_its_share_of_the_admin_budget() {
    // 4 MiB budget: an address holds one body of any allowed size, more only within 1 MiB.
    let server = ZServer::start_with("limits.memory_body_budget = 4194304");
    let s = Session::admin(&server);
    let cookie = format!("Cookie: {}\r\n", s.cookie);
    let first = declare(server.admin, "POST", "/devices", 900 << 10, &cookie);
    std::thread::sleep(Duration::from_millis(300));
    let second = declare(server.admin, "POST", "/devices", 900 << 10, &cookie);
    let status = answer(second);
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    // Another address is not held back by the first one's share...
    let other: IpAddr = [127, 0, 0, 2].into();
    let mut c = Conn::open_from(other, server.admin);
    c.send(
        format!(
            "POST /devices HTTP/1.1\r\nHost: {}\r\n{cookie}Content-Length: {}\r\n\r\n",
            server.admin,
            900 << 10
        )
        .as_bytes(),
    );
    c.send(&vec![b'x'; 900 << 10]);
    let r = c.read_response(false).expect("response");
    assert_ne!(r.status, 503, "{}", r.text());
    // ...and sign-in from the busy address still gets in (small bodies cost no budget).
    let again = post_raw(
        server.admin,
        "/login",
        "",
        &form_body(&[("username", "admin"), ("password", "a-long-new-password")]),
    );
    assert_eq!(again.status, 303, "{}", again.text());
    drop(first);
}
