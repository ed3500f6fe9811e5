//! The one privilege rule (issue 23): run as root on a data directory another user owns
//! (here uid/gid 65534, as `bad_input.rs` uses for an unprivileged server), the CLI becomes
//! that user before it opens anything; `secrets rotate-key` writes the key with the owner,
//! group and mode of the one it replaces; a restore run as root leaves the service's files.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const SERVICE: u32 = 65534;

/// Every file and directory below `dir` whose owner is not `uid:gid`.
fn not_owned_by(dir: &Path, uid: u32, gid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            let m = e.metadata().expect("meta");
            if (m.uid(), m.gid()) != (uid, gid) {
                out.push(format!("{} {}:{}", e.path().display(), m.uid(), m.gid()));
            }
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

fn zt(config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(dir)
        .status()
        .expect("chown");
    assert!(st.success());
}

/// An installation whose data directory the service user owns and whose secrets key is
/// outside it, root:service 0640 in a root:service 0750 directory, as the package lays out
/// `/etc/zerotouch`.
fn packaged_layout(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let etc = dir.join("etc");
    std::fs::create_dir(&etc).expect("etc");
    let data = dir.join("data");
    let key = etc.join("secret.key");
    let config = write_file(
        &etc,
        "config.toml",
        format!(
            "data_dir = {:?}\nsecrets_key_file = {:?}\n",
            data.to_string_lossy(),
            key.to_string_lossy()
        )
        .as_bytes(),
    );
    zt(&config, &["migrate"]);
    chown_tree(&data, SERVICE, SERVICE);
    std::os::unix::fs::chown(&etc, Some(0), Some(SERVICE)).expect("chown etc");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    std::os::unix::fs::chown(&key, Some(0), Some(SERVICE)).expect("chown key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    (config, data, key)
}

#[test]
fn root_run_commands_leave_the_service_owners_files_and_key() {
    if !require(is_root(), "needs root (chown, switching users)") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, data, key) = packaged_layout(dir.path());
    zt(
        &config,
        &[
            "account",
            "set-credentials",
            "--user",
            "phones",
            "--password",
            "Priv-Test-Passw0rd",
        ],
    );
    zt(&config, &["profile", "add", "office"]);
    zt(
        &config,
        &["device", "add", "0004f2a1b2c3", "--profile", "office"],
    );
    assert_eq!(not_owned_by(&data, SERVICE, SERVICE), Vec::<String>::new());

    // A backup into a directory only root may write: the archive is root's.
    let backups = dir.path().join("root-only");
    std::fs::create_dir(&backups).expect("mkdir");
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let archive = backups.join("b.tar.gz");
    zt(&config, &["backup", archive.to_str().expect("utf-8")]);
    assert_eq!(std::fs::metadata(&archive).expect("archive").uid(), 0);
    assert_eq!(not_owned_by(&data, SERVICE, SERVICE), Vec::<String>::new());

    // Key rotation: the key keeps root:service 0640, and the service can still read it.
    let before = std::fs::read(&key).expect("key");
    zt(&config, &["secrets", "rotate-key"]);
    let m = std::fs::metadata(&key).expect("key");
    assert_ne!(std::fs::read(&key).expect("key"), before);
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, SERVICE, 0o640));
    assert_eq!(not_owned_by(&data, SERVICE, SERVICE), Vec::<String>::new());

    // Restore of the backup taken before the rotation: the old key comes back with the same
    // owner and mode; every restored file is the service's, with the documented modes.
    zt(
        &config,
        &["restore", archive.to_str().expect("utf-8"), "--yes"],
    );
    assert_eq!(std::fs::read(&key).expect("key"), before);
    let m = std::fs::metadata(&key).expect("key");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, SERVICE, 0o640));
    assert_eq!(not_owned_by(&data, SERVICE, SERVICE), Vec::<String>::new());
    let db = std::fs::metadata(data.join("zerotouch.db")).expect("db");
    assert_eq!(db.mode() & 0o777, 0o640);
    // The service user reads what root restored.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "device",
            "list",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("setpriv (util-linux)");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0004f2a1b2c3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_service_user_cannot_rotate_a_key_it_may_not_write_and_nothing_changes() {
    if !require(is_root(), "needs root (chown, switching users)") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _data, key) = packaged_layout(dir.path());
    let before = std::fs::read(&key).expect("key");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "secrets",
            "rotate-key",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not writable by this user") && err.contains("as root"),
        "{err}"
    );
    assert_eq!(std::fs::read(&key).expect("key"), before);
}
