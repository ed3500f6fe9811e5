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
    let out = server.cli(&["account", "set-policy", "--unknown-devices", "ztp"]);
    assert!(!out.status.success());
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
    // reject: 404 for masters, 403 for the rest.
    server.cli_ok(&["account", "set-policy", "--unknown-devices", "reject"]);
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
