//! Files private by default (issue 19, item 2): what the server and the CLI write — the
//! database and its WAL, uploads, TLS material, keys — is not readable by other users,
//! backups are readable by their owner only, and what an older release left readable is
//! restricted at the next start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn every_path(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).expect("list").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(every_path(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every file and directory under the data directory is closed to other users.
fn assert_private(data: &Path) {
    let open: Vec<String> = every_path(data)
        .into_iter()
        .filter(|p| mode(p) & 0o007 != 0)
        .map(|p| format!("{} {:o}", p.display(), mode(&p)))
        .collect();
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

#[test]
fn the_server_and_its_backups_keep_their_files_private() {
    let server = ZServer::start();
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
    let mac = "0004f2000321";
    server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    let mut phone = server.phone(mac, "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435");
    phone.user = user;
    phone.password = pass;
    let r = phone.request("PUT", &format!("/contacts/{mac}-directory.xml"), b"<d/>");
    assert!(matches!(r.status, 201 | 204), "{}", r.text());
    let data = server.data_dir();
    assert!(data.join("zerotouch.db-wal").exists(), "the WAL is there");
    assert!(data.join("tls").join("ca.key").exists(), "the CA is there");
    assert_private(&data);
    let key = every_path(&data)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "secret.key"))
        .expect("a secrets key");
    assert_eq!(mode(&key), 0o600, "{}", key.display());

    let archive = server.dir.path().join("backup.tar.gz");
    server.cli_ok(&["backup", archive.to_str().expect("path")]);
    assert_eq!(mode(&archive), 0o600, "the backup holds the keys");

    // What an older release (or another umask) left readable is restricted at start.
    let dir = server.stop_keep();
    let data = dir.path().join("data");
    for p in [data.clone(), data.join("zerotouch.db"), data.join("tls")] {
        let open = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(open)).expect("chmod");
    }
    let server = ZServer::start_in(dir, "");
    assert_private(&server.data_dir());
}
