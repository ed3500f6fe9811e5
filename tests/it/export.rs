//! Lossless export and import through the CLI: two accounts with profiles (and files),
//! devices with lines (a display name with an apostrophe and XML-hostile characters),
//! template values, sites, groups, policies, deliberate names and custom variables. Export
//! of one account → delete it all → import gives every device the same effective settings
//! and the same rendered bytes; the whole installation → a fresh server, the same. Bad
//! files are refused naming the record and field, with nothing stored changed; secrets
//! leave only sealed with a passphrase.

use serde_json::Value;

use crate::common::*;
use crate::sim::{Boot, SimPhone};

const A_MACS: [&str; 3] = ["0004f2ee0001", "0004f2ee0002", "0004f2ee0003"];
const B_MACS: [&str; 2] = ["0004f2ee00b1", "0004f2ee00b2"];
const HOSTILE: &str = "O'Brien & <Sons> \"HQ\"";
const SECRETS: [&str; 4] = [
    "Sip-Secret-A1",
    "Sip-Secret-B1",
    "Profile-Secret-1",
    "Policy-Secret-9",
];

fn p(path: &std::path::Path) -> &str {
    path.to_str().expect("path")
}

/// Two accounts (`default` and `branch`), each with a profile, devices, lines, a site, a
/// group and policies; a custom variable the profile file uses; a deliberate name.
fn populate(server: &ZServer) {
    server.set_credentials();
    server.cli_ok(&["variable", "set", "SYSLOG_HOST", "logs.example.com"]);
    let file = write_file(
        server.dir.path(),
        "site.cfg",
        b"<c lcl.ml.lang=\"French_France\" device.syslog.serverName=\"${SYSLOG_HOST}\" \
          up.screenSaver.enabled=\"1\"/>",
    );
    let b_file = write_file(
        server.dir.path(),
        "branch.cfg",
        b"<c up.backlight.idleIntensity=\"1\"/>",
    );
    let pw = write_file(server.dir.path(), "profile-pw", b"Profile-Secret-1\n");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        p(&file),
        "--language",
        "German_Germany",
        "--prov-user",
        "prov",
        "--prov-password",
        &format!("file:{}", p(&pw)),
    ]);
    add_branch_account(server);
    server.cli_ok(&[
        "profile",
        "add",
        "--account",
        "branch",
        "shop",
        "--file",
        p(&b_file),
    ]);
    for (i, mac) in A_MACS.iter().enumerate() {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--sip-user",
            &format!("10{i}"),
            "--sip-password",
            &format!("Sip-Secret-A{i}"),
        ]);
    }
    for (i, mac) in B_MACS.iter().enumerate() {
        server.cli_ok(&[
            "device",
            "add",
            "--account",
            "branch",
            mac,
            "--profile",
            "shop",
            "--sip-user",
            &format!("20{i}"),
            "--sip-password",
            &format!("Sip-Secret-B{i}"),
        ]);
    }
    // The display name set-line accepts, and which the import of its export must accept.
    server.cli_ok(&[
        "device",
        "set-line",
        A_MACS[1],
        "--line",
        "2",
        "--sip-user",
        "1102",
        "--display-name",
        HOSTILE,
        "--label",
        "Reception's",
    ]);
    server.cli_ok(&[
        "device",
        "set-vars",
        A_MACS[2],
        "--label",
        "Lobby phone",
        "--park-ext",
        "700",
    ]);
    server.cli_ok(&[
        "site",
        "add",
        "hq",
        "--description",
        "Head office, 3rd floor",
    ]);
    server.cli_ok(&["site", "assign", "hq", A_MACS[0], A_MACS[1]]);
    server.cli_ok(&["group", "add", "lobby", "--priority", "10"]);
    server.cli_ok(&["group", "add-member", "lobby", A_MACS[0], A_MACS[2]]);
    server.cli_ok(&["site", "add", "--account", "branch", "shopfloor"]);
    server.cli_ok(&[
        "site",
        "assign",
        "--account",
        "branch",
        "shopfloor",
        B_MACS[0],
    ]);
    server.cli_ok(&[
        "group",
        "add",
        "--account",
        "branch",
        "tills",
        "--priority",
        "3",
    ]);
    server.cli_ok(&[
        "group",
        "add-member",
        "--account",
        "branch",
        "tills",
        B_MACS[1],
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "site:hq",
        "lcl.ml.lang",
        "Dutch_Netherlands",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "group:lobby",
        "up.x",
        "a value, with \"quotes\" & <more>",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "account",
        "reg.1.auth.password",
        "Policy-Secret-9",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        &format!("device:{}", A_MACS[2]),
        "up.y",
        "z",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "--account",
        "branch",
        "group:tills",
        "lcl.ml.lang",
        "Italian_Italy",
    ]);
    server.cli_ok(&[
        "policy",
        "deliberate",
        "acme.tweak",
        "--reason",
        "vendor extension",
    ]);
}

fn add_branch_account(server: &ZServer) {
    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .args([
            "account",
            "add",
            "branch",
            "--name",
            "Branch",
            "--user",
            "bphones",
            "--password-stdin",
            "--config",
        ])
        .arg(&server.config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Branch-Passw0rd-7\n")
        .expect("write");
    let _ = child.wait();
    assert!(server.cli_ok(&["account", "list"]).contains("branch"));
}

/// The phone of `A_MACS[0]`, which enrols (gets a credential of its own) at its first boot.
fn enrolled_phone(server: &ZServer) -> SimPhone {
    SimPhone::new(
        A_MACS[0],
        &server.device.to_string(),
        "phones",
        "Test-Passw0rd-42",
    )
}

/// Every device's rendered files (as served to the device with its own credential, for a
/// fixed host) and effective settings. The enrolled phone's are left out: what it
/// confirmed (the provisioning state, observed facts) does not travel, so its files carry
/// the pending changes again until it next fetches them; the tests boot it instead.
fn snapshot(server: &ZServer) -> Vec<(String, String, Value)> {
    A_MACS[1..]
        .iter()
        .chain(B_MACS.iter())
        .map(|m| {
            let files = server.cli_ok(&["render", m, "--host", "zt.example.com:8080"]);
            let explain: Value = serde_json::from_str(&server.cli_ok(&[
                "render",
                m,
                "--host",
                "zt.example.com:8080",
                "--explain",
                "--json",
            ]))
            .expect("json");
            (m.to_string(), files, explain)
        })
        .collect()
}

/// What a failed import must leave alone: the stored configuration of both accounts.
fn dump(server: &ZServer) -> String {
    let mut out = String::new();
    for args in [
        &["device", "list"][..],
        &["device", "list", "--account", "branch"],
        &["site", "list"],
        &["group", "list"],
        &["policy", "list"],
        &["variable", "list"],
    ] {
        out.push_str(&server.cli_ok(args));
    }
    for (m, files, _) in snapshot(server) {
        out.push_str(&m);
        out.push_str(&files);
    }
    out
}

fn wipe_default_account(server: &ZServer) {
    for mac in A_MACS {
        server.cli_ok(&["device", "delete", mac, "--yes"]);
    }
    server.cli_ok(&["profile", "delete", "office"]);
    server.cli_ok(&["site", "delete", "hq"]);
    server.cli_ok(&["group", "delete", "lobby"]);
    server.cli_ok(&["policy", "unset", "account", "reg.1.auth.password"]);
    server.cli_ok(&["policy", "undeliberate", "acme.tweak"]);
}

#[test]
fn export_of_one_account_then_wipe_then_import_gives_the_same_bytes() {
    let server = ZServer::start();
    populate(&server);
    let mut phone = enrolled_phone(&server);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let phone_before = phone.config.clone();
    let before = snapshot(&server);
    assert!(
        before[0].1.contains("O&apos;Brien &amp; &lt;Sons&gt;")
            || before[0].1.contains("O&#39;Brien &amp; &lt;Sons&gt;"),
        "the display name is escaped, not refused:\n{}",
        before[0].1
    );
    let plain = server.cli_ok(&["transfer", "export"]);
    for secret in SECRETS {
        assert!(
            !plain.contains(secret),
            "{secret} exported without --with-secrets"
        );
    }
    let pass = write_file(server.dir.path(), "pass", b"correct horse battery staple\n");
    let file = server.dir.path().join("default.json");
    server.cli_ok(&[
        "transfer",
        "export",
        "--with-secrets",
        "--passphrase-file",
        p(&pass),
        "--out",
        p(&file),
    ]);
    let bytes = std::fs::read(&file).expect("archive");
    for secret in SECRETS {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in clear in the sealed archive"
        );
    }
    wipe_default_account(&server);
    assert!(!server.cli_ok(&["device", "list"]).contains(A_MACS[0]));
    // A sealed file needs its passphrase; a wrong one is refused, nothing written.
    let err = server.cli_err(&["transfer", "import", p(&file)]);
    assert!(err.contains("passphrase"), "{err}");
    let wrong = write_file(server.dir.path(), "wrong", b"not the passphrase at all\n");
    let err = server.cli_err(&[
        "transfer",
        "import",
        "--passphrase-file",
        p(&wrong),
        p(&file),
    ]);
    assert!(err.contains("passphrase"), "{err}");
    let out = server.cli_ok(&[
        "transfer",
        "import",
        "--passphrase-file",
        p(&pass),
        p(&file),
    ]);
    assert!(out.contains("profiles 1 created"), "{out}");
    assert!(out.contains("devices 3 created"), "{out}");
    assert_eq!(snapshot(&server), before);
    // An account's archive goes back to the account it names: the branch's devices.
    let branch = server.dir.path().join("branch.json");
    server.cli_ok(&[
        "transfer",
        "export",
        "--account",
        "branch",
        "--with-secrets",
        "--passphrase-file",
        p(&pass),
        "--out",
        p(&branch),
    ]);
    for mac in B_MACS {
        server.cli_ok(&["device", "delete", mac, "--yes"]);
    }
    let out = server.cli_ok(&[
        "transfer",
        "import",
        "--passphrase-file",
        p(&pass),
        p(&branch),
    ]);
    assert!(out.contains("devices 2 created"), "{out}");
    assert_eq!(snapshot(&server), before);
    let elsewhere = ZServer::start();
    let err = elsewhere.cli_err(&[
        "transfer",
        "import",
        "--passphrase-file",
        p(&pass),
        p(&branch),
    ]);
    assert!(
        err.contains("account `branch`") && err.contains("--account"),
        "{err}"
    );
    // The enrolled phone keeps its own credential: it boots as before, not enrolling again.
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.config, phone_before);
}

#[test]
fn the_whole_installation_moves_to_a_fresh_server_with_the_same_bytes() {
    let server = ZServer::start();
    populate(&server);
    let mut phone = enrolled_phone(&server);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let phone_before = phone.config.clone();
    let before = snapshot(&server);
    let pass = write_file(server.dir.path(), "pass", b"correct horse battery staple\n");
    let file = server.dir.path().join("all.json");
    server.cli_ok(&[
        "transfer",
        "export",
        "--all",
        "--with-secrets",
        "--passphrase-file",
        p(&pass),
        "--out",
        p(&file),
    ]);
    let text = std::fs::read_to_string(&file).expect("archive");
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in clear");
    }
    let archive: Value = serde_json::from_str(&text).expect("json");
    let slugs: Vec<&str> = archive["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["export"]["account"].as_str().expect("account"))
        .collect();
    assert_eq!(slugs.len(), 2, "{slugs:?}");
    assert!(slugs.contains(&"branch") && slugs.contains(&"default"));
    let fresh = ZServer::start();
    fresh.set_credentials();
    let out = fresh.cli_ok(&[
        "transfer",
        "import",
        "--passphrase-file",
        p(&pass),
        p(&file),
    ]);
    assert!(out.contains("accounts 1 created"), "{out}");
    assert_eq!(snapshot(&fresh), before);
    // The phone moves to the new server with its own credential.
    let mut moved = SimPhone::new(
        A_MACS[0],
        &fresh.device.to_string(),
        phone.user(),
        phone.password(),
    );
    assert_eq!(moved.boot_until_stable(4), Boot::Configured);
    // Everything but the server's own address (another port) is what it had.
    let without_address = |c: &std::collections::BTreeMap<String, String>| {
        c.iter()
            .filter(|(_, v)| {
                !v.contains(&server.device.port().to_string())
                    && !v.contains(&fresh.device.port().to_string())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_address(&moved.config),
        without_address(&phone_before)
    );
    assert_eq!(
        moved.config.get("reg.1.auth.userId").map(String::as_str),
        Some("100")
    );
    // A phone never booted before the move enrols on the new server like any newly
    // associated one, and gets its line's password (the import opened its window).
    let (user, password) = ("phones", "Test-Passw0rd-42");
    let mut fresh_phone = SimPhone::new(A_MACS[1], &fresh.device.to_string(), user, password);
    assert_eq!(fresh_phone.boot_until_stable(6), Boot::Configured);
    assert_eq!(
        fresh_phone.user(),
        A_MACS[1],
        "it enrolled its own credential"
    );
    assert_eq!(
        fresh_phone
            .config
            .get("reg.1.auth.password")
            .map(String::as_str),
        Some("Sip-Secret-A1")
    );
}

#[test]
fn bad_files_name_the_record_and_field_and_change_nothing() {
    let server = ZServer::start();
    populate(&server);
    let file = server.dir.path().join("good.json");
    server.cli_ok(&["transfer", "export", "--out", p(&file)]);
    let good: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let before = dump(&server);
    let try_import = |name: &str, bytes: &[u8]| -> String {
        let f = write_file(server.dir.path(), name, bytes);
        let err = server.cli_err(&["transfer", "import", p(&f)]);
        assert_eq!(dump(&server), before, "{name} changed something");
        err
    };
    // A corrupted archive.
    let text = serde_json::to_string_pretty(&good).expect("text");
    let err = try_import("cut.json", &text.as_bytes()[..text.len() / 2]);
    assert!(err.contains("cut.json"), "{err}");
    // A wrong format version.
    let mut v = good.clone();
    v["version"] = Value::from(99);
    let err = try_import("version.json", v.to_string().as_bytes());
    assert!(
        err.contains("format") && err.contains("version 99"),
        "{err}"
    );
    // A row with a bad field, after good ones: nothing of the good ones is written either.
    let mut v = good.clone();
    v["devices"][1]["lines"][0]["display_name"] = Value::from("bell\u{7}");
    v["devices"][0]["serial"] = Value::from("x");
    let err = try_import("field.json", v.to_string().as_bytes());
    assert!(err.contains("devices[1].lines[1].display_name"), "{err}");
    assert!(err.contains("devices[0].serial"), "{err}");
    // A profile file that is not XML names the profile and the file.
    let mut v = good.clone();
    v["profiles"][0]["files"][0]["content"] = Value::from("PGM+PC9j");
    v["devices"][0]["sip_server"] = Value::from("changed.example.com");
    let err = try_import("profile.json", v.to_string().as_bytes());
    assert!(err.contains("profiles[0]"), "{err}");
}

#[test]
fn the_installation_moves_through_the_api_for_admins_only() {
    let server = ZServer::start();
    populate(&server);
    let before = snapshot(&server);
    let admin = user_with_token(&server, "ada", "admin", "");
    let viewer = user_with_token(&server, "vera", "viewer", "");
    assert_eq!(
        api(&server, "GET", "/export", Some(&viewer), "").status,
        403
    );
    let pass = [("X-Export-Passphrase", "correct horse battery staple")];
    let refused = api(
        &server,
        "GET",
        "/export?include_secrets=true",
        Some(&admin),
        "",
    );
    assert_eq!(
        refused.status,
        422,
        "secrets only sealed: {}",
        refused.text()
    );
    let r = api_with(
        &server,
        "GET",
        "/export?include_secrets=true",
        Some(&admin),
        "",
        &pass,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for secret in SECRETS {
        assert!(!r.text().contains(secret), "{secret} in clear");
    }
    let fresh = ZServer::start();
    fresh.set_credentials();
    let token = user_with_token(&fresh, "ada", "admin", "");
    let no_pass = api(&fresh, "POST", "/import", Some(&token), &r.text());
    assert_eq!(no_pass.status, 422, "{}", no_pass.text());
    let done = api_with(&fresh, "POST", "/import", Some(&token), &r.text(), &pass);
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(json(&done)["accounts_created"], 1);
    assert_eq!(snapshot(&fresh), before);
}

#[test]
fn the_installation_moves_through_the_console_too() {
    let server = ZServer::start();
    populate(&server);
    let before = snapshot(&server);
    let s = Session::admin(&server);
    let page = s.get("/transfer");
    assert_eq!(page.status, 200);
    let r = s.post(
        "/transfer/export",
        &[
            ("include_secrets", "on"),
            ("passphrase", "correct horse battery staple"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("Content-Disposition")
            .is_some_and(|d| d.contains("zerotouch-installation.json"))
    );
    let archive = r.text();
    for secret in SECRETS {
        assert!(!archive.contains(secret), "{secret} in clear");
    }
    let fresh = ZServer::start();
    fresh.set_credentials();
    let fs = Session::admin(&fresh);
    let refused = crate::lens::post_file(&fs, "/transfer/import", &[], ("all.json", &archive));
    assert_eq!(refused.status, 422, "no passphrase: {}", refused.text());
    let done = crate::lens::post_file(
        &fs,
        "/transfer/import",
        &[("passphrase", "correct horse battery staple")],
        ("all.json", &archive),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(
        done.text().contains("accounts created: 1"),
        "{}",
        done.text()
    );
    assert_eq!(snapshot(&fresh), before);
}
