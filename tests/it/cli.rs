//! The command line: configuration checks, profiles and devices, rendering with provenance.

use crate::common::*;

#[test]
fn check_config_accepts_the_example_and_reports_every_problem() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&example)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write_file(dir.path(), "bad.toml", b"colour = 1\n[device]\nhttp_listen = \"nowhere\"\n[limits]\nhead_bytes = 10\n[log]\nlevel = \"chatty\"\n");
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "colour",
        "device.http_listen",
        "limits.head_bytes",
        "log.level",
    ] {
        assert!(
            text.contains(&format!("bad.toml: {key}:")),
            "{key} missing:\n{text}"
        );
    }
    assert!(text.contains("4 problem(s)"), "{text}");
}

#[test]
fn a_profile_in_use_cannot_be_deleted_and_says_how_many_devices_use_it() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "p1"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "p1"]);
    server.cli_ok(&["device", "add", "0004f2000002", "--profile", "p1"]);
    let out = server.cli(&["profile", "delete", "p1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("used by 2 devices"));
    server.cli_ok(&["device", "delete", "0004f2000001"]);
    server.cli_ok(&["device", "delete", "0004f2000002"]);
    server.cli_ok(&["profile", "delete", "p1"]);
    assert!(!server.cli_ok(&["profile", "list"]).contains("p1"));
}

#[test]
fn a_mac_is_associated_only_once() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "p1"]);
    server.cli_ok(&["device", "add", "0004F2000001", "--profile", "p1"]);
    let out = server.cli(&["device", "add", "0004f2000001", "--profile", "p1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already associated"));
}

#[test]
fn render_explain_shows_sources_and_masks_secrets() {
    let server = ZServer::start();
    server.cli_ok(&[
        "profile",
        "add",
        "p1",
        "--polling",
        "enable",
        "--language",
        "German_Germany",
    ]);
    server.cli_ok(&[
        "device",
        "add",
        "0004f2000001",
        "--profile",
        "p1",
        "--sip-user",
        "200",
        "--sip-password",
        "Sip-Secret-9",
        "--polling",
        "0",
    ]);
    let out = server.cli_ok(&["render", "0004f2000001", "--explain"]);
    assert!(!out.contains("Sip-Secret-9"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .to_string()
    };
    assert!(line("reg.1.auth.password").contains("********"));
    assert!(
        line("prov.polling.enabled ").contains(" 0 ")
            && line("prov.polling.enabled ").ends_with("device"),
        "the device beats the profile"
    );
    assert!(line("lcl.ml.lang").ends_with("profile"));
    assert!(line("device.prov.tagSerialNo ").contains("pending change"));
}

#[test]
fn the_ztp_policy_needs_confirmation_and_changes_what_unknown_phones_get() {
    let server = ZServer::start();
    // Nothing seen yet: ztp still asks (it changes phones not seen yet).
    let err = server.cli_err(&["account", "set-policy", "--unknown-devices", "ztp"]);
    assert!(
        err.contains("0 phone(s) affected") && err.contains("not seen yet"),
        "{err}"
    );
    // A phone seen unassociated (staged) is counted by name.
    let mut seen = server.phone("0004f2000008", UA_VVX500_APP);
    assert_eq!(seen.get("/0004f2000008.cfg").status, 404);
    server.wait_recorded("0004f2000008");
    let err = server.cli_err(&["account", "set-policy", "--unknown-devices", "ztp"]);
    assert!(
        err.contains("1 phone(s) affected") && err.contains("0004f2000008"),
        "{err}"
    );
    assert!(
        err.contains("stops asking this server") && err.contains("--yes"),
        "{err}"
    );
    assert!(
        server.cli_ok(&["account", "show"]).contains("stage"),
        "nothing changed"
    );
    server.cli_ok(&["account", "set-policy", "--unknown-devices", "ztp", "--yes"]);
    let mut phone = server.phone("0004f2000009", UA_VVX500_APP);
    assert_eq!(phone.get("/0004f2000009.cfg").status, 404);
    let master = phone.get("/000000000000.cfg");
    assert!(master.text().contains("[PHONE_MAC_ADDRESS]-ztp.cfg"));
    let ztp = phone.get("/0004f2000009-ztp.cfg").text();
    assert!(
        ztp.contains("device.prov.ztpEnabled=\"0\"") && ztp.contains("device.prov.serverName=\"\""),
        "{ztp}"
    );
    // reject: 404 for masters, 403 for the rest; the phone seen unassociated is counted.
    let err = server.cli_err(&["account", "set-policy", "--unknown-devices", "reject"]);
    assert!(
        err.contains("1 phone(s) affected") && err.contains("refused"),
        "{err}"
    );
    server.cli_ok(&[
        "account",
        "set-policy",
        "--unknown-devices",
        "reject",
        "--yes",
    ]);
    let mut phone = server.phone("0004f2000009", UA_VVX500_APP);
    assert_eq!(phone.get("/000000000000.cfg").status, 404);
    assert_eq!(phone.get("/0004f2000009-device.cfg").status, 403);
    // default-profile: associated on first sight.
    server.cli_ok(&["profile", "add", "starter"]);
    server.cli_ok(&[
        "account",
        "set-policy",
        "--unknown-devices",
        "default-profile",
        "--default-profile",
        "starter",
    ]);
    let mut phone = server.phone("0004f2000010", UA_VVX500_APP);
    assert_eq!(phone.get("/0004f2000010.cfg").status, 200);
    assert!(
        server
            .cli_ok(&["device", "list"])
            .contains("0004f2000010  starter")
    );
}

/// The binary in `dir` with no `--config` and no `$ZEROTOUCH_CONFIG`.
fn bare(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .current_dir(dir)
        .env_remove("ZEROTOUCH_CONFIG")
        .args(args)
        .output()
        .expect("run zerotouch")
}

#[test]
fn without_a_configuration_commands_stop_and_create_nothing_but_migrate_does() {
    // The installed configuration would be used instead of the embedded default.
    if !require(
        !std::path::Path::new("/etc/zerotouch/config.toml").exists(),
        "/etc/zerotouch/config.toml exists here, so commands without --config use it",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["device", "list"][..],
        &["account", "show"],
        &["diagnose", "phones"],
        &["secrets", "rotate-key"],
        &["backup", "b.tar.gz"],
    ] {
        let out = bare(dir.path(), args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for part in [
            "no data directory ./zerotouch-data",
            "--config",
            "$ZEROTOUCH_CONFIG",
            "/etc/zerotouch/config.toml",
            "nothing was created",
        ] {
            assert!(err.contains(part), "{args:?}: {part} not in: {err}");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
    // `migrate` creates the data directory (the README's quick start); then commands work.
    let out = bare(dir.path(), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("zerotouch-data/zerotouch.db").is_file());
    let out = bare(dir.path(), &["device", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zerotouch_config_names_the_configuration_when_config_is_not_given() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(bin())
        .current_dir(elsewhere.path())
        .env("ZEROTOUCH_CONFIG", &server.config)
        .args(["device", "add", "0004f2e0e0e1", "--profile", "office"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        server.cli_ok(&["device", "list"]).contains("0004f2e0e0e1"),
        "written to the server's database"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).expect("dir").count(), 0);
    // --config still wins, and a missing file is named.
    let missing = elsewhere.path().join("missing.toml");
    let out = std::process::Command::new(bin())
        .env("ZEROTOUCH_CONFIG", &missing)
        .args(["device", "list"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("missing.toml") && err.contains("ZEROTOUCH_CONFIG"),
        "{err}"
    );
    let out = std::process::Command::new(bin())
        .env("ZEROTOUCH_CONFIG", &missing)
        .args(["device", "list", "--config"])
        .arg(&server.config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn output_into_a_pipe_whose_reader_is_gone_ends_quietly_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    // Enough devices that `device list` outgrows the pipe's buffer (64 KiB).
    for part in 0..2 {
        // An import takes at most 1000 lines.
        let csv: String = (part * 1000..(part + 1) * 1000)
            .map(|i| format!("0004f2{i:06x},,,office\n"))
            .collect();
        let file = write_file(server.dir.path(), "many.csv", csv.as_bytes());
        server.cli_ok(&["import", file.to_str().expect("path")]);
    }
    let quiet = |what: &str, out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{what}: ends by SIGPIPE, not a panic: {:?} {err}",
            out.status
        );
    };
    // A reader gone before the command writes a byte: the pipe's read end is closed.
    for args in [
        &["device", "show", "0004f2000001"][..],
        &["device", "list"],
        &["account", "show"],
        &["profile", "list"],
    ] {
        let mut child = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&server.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?} wrote into the closed pipe"
        );
        quiet(&format!("{args:?}"), &out);
    }
    // As a shell runs it: `device list | head -1`.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" device list --config "$1" | head -1"#)
        .arg(bin())
        .arg(&server.config)
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "no panic, no `Broken pipe` error: {err}");
}
