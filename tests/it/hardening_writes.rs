//! Every device write passes the per-device check (issue 19, item 3): a stranger holding
//! the account credential cannot replace another device's files with an empty PUT, whatever
//! the length or the HTTP version, while the device itself still stores an empty file.

use crate::common::*;
use crate::device_secrets::{VICTIM, withholding_server};

const KEPT: &[u8] = b"<PHONE_CONFIG kept=\"1\"/>\n";

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {token}")
}

/// Writes a stored file of the victim's straight into the data directory.
fn victim_file(server: &ZServer, dir: &str, name: &str) -> std::path::PathBuf {
    let d = server.data_dir().join("uploads").join(VICTIM).join(dir);
    std::fs::create_dir_all(&d).expect("dir");
    let path = d.join(name);
    std::fs::write(&path, KEPT).expect("write");
    path
}

#[test]
fn an_empty_put_from_the_account_credential_cannot_replace_another_devices_file() {
    let server = ZServer::start();
    let (user, pass) = withholding_server(&server);
    let auth = basic(&user, &pass);
    let files = [
        ("overrides", format!("{VICTIM}-phone.cfg")),
        ("contacts", format!("{VICTIM}-directory.xml")),
        ("calllists", format!("{VICTIM}-calls.xml")),
    ];
    for (dir, name) in &files {
        let path = victim_file(&server, dir, name);
        let target = format!("/{dir}/{name}");
        // HTTP/1.1 with Content-Length: 0.
        let mut conn = Conn::open(server.device);
        let r = conn.request("PUT", &target, &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 403, "{target} Content-Length 0: {}", r.text());
        assert!(r.text().contains("device itself"), "{}", r.text());
        // HTTP/1.1 with a chunked body of no chunks.
        let mut conn = Conn::open(server.device);
        conn.send(
            format!(
                "PUT {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
        );
        let r = conn.read_response(false).expect("response");
        assert_eq!(r.status, 403, "{target} chunked: {}", r.text());
        // HTTP/1.0 without a length.
        let mut conn = Conn::open(server.device);
        conn.send(format!("PUT {target} HTTP/1.0\r\nAuthorization: {auth}\r\n\r\n").as_bytes());
        let r = conn.read_response(false).expect("response");
        assert_eq!(r.status, 403, "{target} HTTP/1.0: {}", r.text());
        assert_eq!(
            std::fs::read(&path).expect("still there"),
            KEPT,
            "{target} must be unchanged"
        );
    }
    // Nothing half-written: no temporary file left behind.
    let leftovers: Vec<_> = walk(&server.data_dir().join("uploads"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".incoming-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_empty_put_still_stores_an_empty_file_where_the_account_credential_may_write() {
    let server = ZServer::start();
    let (user, pass) = server.set_credentials();
    // Where the account credential may write: an account that serves it (mode off).
    server.serve_secrets_to_account();
    let mac = "0004f2000077";
    let site = write_file(server.dir.path(), "site.cfg", b"<polycomConfig/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    let auth = basic(&user, &pass);
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let mut conn = Conn::open(server.device);
        let length = if version == "HTTP/1.1" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        conn.send(
            format!(
                "PUT /contacts/{mac}-directory.xml {version}\r\nHost: x\r\nAuthorization: {auth}\r\n{length}\r\n"
            )
            .as_bytes(),
        );
        let r = conn.read_response(false).expect("response");
        assert!(
            matches!(r.status, 201 | 204),
            "{version}: {} {}",
            r.status,
            r.text()
        );
        let stored = server
            .data_dir()
            .join("uploads")
            .join(mac)
            .join("contacts")
            .join(format!("{mac}-directory.xml"));
        assert_eq!(std::fs::read(&stored).expect("stored").len(), 0);
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
