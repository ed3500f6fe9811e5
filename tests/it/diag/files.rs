//! Diagnostics of files, with no network involved: DHCP server configuration files (options
//! per scope, with file and line), the lint of Polycom configuration files (every fixture
//! and crafted problems), and lint warnings when a profile is added.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::json;
use crate::common::*;

#[test]
fn dhcp_config_lists_options_per_scope_with_file_and_line() {
    let server = ZServer::start_with("device.public_names = [\"prov.example.com\"]");
    let dir = server.dir.path();
    write_file(
        dir,
        "phones.conf",
        b"subnet 10.0.20.0 netmask 255.255.255.0 {\n  option polycom-prov \"http://old.example.com/\";\n}\n",
    );
    let main = write_file(
        dir,
        "dhcpd.conf",
        b"# option tftp-server-name \"commented.example.com\";\noption polycom-prov code 160 = text;\ninclude \"phones.conf\";\n",
    );
    let kea = write_file(
        dir,
        "kea-dhcp4.conf",
        br#"{ "Dhcp4": { "subnet4": [ { "id": 1, "subnet": "10.0.30.0/24",
  "option-data": [ { "code": 66, "data": "http://other.example.com/" } ] } ] } }"#,
    );
    let report = json(&server.cli(&[
        "diagnose",
        "dhcp-config",
        "--json",
        main.to_str().expect("path"),
        kea.to_str().expect("path"),
    ]));
    let options = report["result"]["options"].as_array().expect("options");
    assert_eq!(options.len(), 2, "{report:#}");
    assert!(
        options[0]["file"]
            .as_str()
            .unwrap_or("")
            .ends_with("phones.conf")
    );
    assert_eq!(options[0]["line"], 2);
    assert_eq!(options[0]["scope"], "subnet 10.0.20.0/24");
    assert_eq!(options[1]["dialect"], "kea");
    let elsewhere = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "dhcp.points-elsewhere")
        .count();
    assert_eq!(elsewhere, 2, "{report:#}");
    let out = server.cli(&["diagnose", "dhcp-config", main.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1), "warnings: exit status 1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("phones.conf:2"), "{text}");
}

#[test]
fn diagnose_exits_0_1_2_by_the_worst_finding_and_3_when_it_cannot_run() {
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    let dir = server.dir.path();
    let run = |name: &str, line: String| {
        let file = write_file(dir, name, format!("{line}\n").as_bytes());
        let out = server.cli(&["diagnose", "dhcp-config", file.to_str().expect("path")]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!text.contains(&password), "{text}");
        (out.status.code(), text)
    };
    let here = format!("dhcp-option=160,\"http://{user}:{password}@127.0.0.1:8080/\"");
    let (code, text) = run("clean.conf", here);
    assert_eq!(code, Some(0), "info only: {text}");
    assert!(
        text.contains(&format!("{user}:********@127.0.0.1")),
        "{text}"
    );
    let (code, text) = run(
        "elsewhere.conf",
        "dhcp-option=66,\"http://old.example.com/\"".into(),
    );
    assert_eq!(code, Some(1), "a warning: {text}");
    let (code, text) = run(
        "stale.conf",
        format!("dhcp-option=160,\"http://{user}:Old-Passw0rd-9@127.0.0.1:8080/\""),
    );
    assert_eq!(code, Some(2), "an error: {text}");
    assert!(!text.contains("Old-Passw0rd-9"), "{text}");
    let out = server.cli(&["diagnose", "dhcp-config"]);
    assert_eq!(out.status.code(), Some(3), "no file: the check did not run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("name at least one configuration file"));
    // Snippets have no findings.
    assert_eq!(server.cli(&["diagnose", "snippets"]).status.code(), Some(0));
    let help = String::from_utf8_lossy(
        &Command::new(bin())
            .args(["diagnose", "--help"])
            .output()
            .expect("help")
            .stdout,
    )
    .into_owned();
    assert!(
        help.contains("2 at least one error") && help.contains("1 at least one warning"),
        "{help}"
    );
}

// ---------------------------------------------------------------------------------------
// Lint

#[test]
fn lint_reads_every_fixture_and_flags_device_set_in_the_shared_file() {
    let fixtures = polycom_fixtures();
    let names = fixture_files();
    let mut shared_seen = false;
    for path in &names {
        let out = Command::new(bin())
            .args(["lint", "--json"])
            .arg(path)
            .output()
            .expect("lint");
        assert!(
            out.status.success(),
            "{}: no errors expected",
            path.display()
        );
        let f: Value = serde_json::from_slice(&out.stdout).expect("json");
        let codes: Vec<&str> = f
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|x| x["code"].as_str())
            .collect();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "device_set_customizations.cfg" {
            shared_seen = true;
            let set = f
                .as_array()
                .expect("array")
                .iter()
                .find(|x| x["code"] == "lint.device-set-left-on")
                .expect("device.set=1 kept for good");
            assert_eq!(
                (set["line"].as_u64(), set["param"].as_str()),
                (Some(16), Some("device.set"))
            );
            let secret = f
                .as_array()
                .expect("array")
                .iter()
                .find(|x| x["code"] == "lint.secret-over-http")
                .expect("the local admin password");
            assert_eq!(secret["param"], "device.auth.localAdminPassword");
            assert!(
                !codes.contains(&"lint.device-without-set"),
                "every device.* there has its .set: {f:#}"
            );
        } else {
            assert!(
                codes.iter().all(|c| *c != "lint.not-well-formed"),
                "{name}: {f:#}"
            );
        }
    }
    assert!(shared_seen, "{names:?}");
    // The minimal master orders its site file; with a config that serves plain HTTP, secrets
    // become warnings.
    let server = ZServer::start();
    let text = server.cli_ok(&[
        "lint",
        fixtures.join("site_flat_common.cfg").to_str().expect("p"),
        fixtures
            .join("master_mac_subst_000000000000.cfg")
            .to_str()
            .expect("p"),
        fixtures
            .join("device_set_customizations.cfg")
            .to_str()
            .expect("p"),
    ]);
    assert!(
        text.contains(
            "CONFIG_FILES order from the master file: [PHONE_MAC_ADDRESS]-user.cfg, common.cfg"
        ),
        "{text}"
    );
    assert!(
        text.contains("device_set_customizations.cfg:20: warning: device.auth.localAdminPassword"),
        "{text}"
    );
}

#[test]
fn lint_reports_each_crafted_problem_with_file_line_and_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let first = write_file(
        d,
        "first.cfg",
        b"<polycomConfig\n  reg.1.address=\"100\"\n  device.prov.serverName=\"prov.example.com\"\n  reg.1.auth.password=\"secret\"/>\n",
    );
    let second = write_file(
        d,
        "second.cfg",
        b"<c>\n<a reg.1.address=\"200\"/>\n<b up.x=\"1\"/>\n<b up.x=\"2\"/>\n<d feature.label=\"${NO_SUCH}\" device.set=\"1\"/>\n</c>\n",
    );
    let broken = write_file(d, "broken.cfg", b"<a>\n<b x.y=\"1\">\n</a>\n");
    let run = |files: &[&Path]| {
        let mut cmd = Command::new(bin());
        cmd.arg("lint");
        for f in files {
            cmd.arg(f);
        }
        cmd.output().expect("lint")
    };
    let out = run(&[&first, &second]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the unknown variable is an error: {text}"
    );
    for expected in [
        "first.cfg:3: warning: device.prov.serverName: ignored by the phone",
        "first.cfg:4: info: reg.1.auth.password: a secret",
        "second.cfg:2: warning: reg.1.address: never takes effect: ",
        "second.cfg:4: warning: up.x: set twice in this file (also line 3",
        "second.cfg:5: error: feature.label: line 5: unknown variable `${NO_SUCH}`",
        "second.cfg:5: warning: device.set: device.set=\"1\" kept",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let out = run(&[&broken]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains("broken.cfg:3: error: not well-formed XML at line 3"),
        "{text}"
    );
}

#[test]
fn profile_add_prints_lint_warnings_but_keeps_the_profile() {
    let server = ZServer::start();
    let file = write_file(
        server.dir.path(),
        "site.cfg",
        b"<c device.sntp.serverName=\"ntp.example.com\" lcl.ml.lang=\"German_Germany\"/>",
    );
    let out = server.cli_ok(&[
        "profile",
        "add",
        "linted",
        "--file",
        file.to_str().expect("p"),
    ]);
    assert!(out.contains("profile `linted` created"), "{out}");
    assert!(
        out.contains("lint: ") && out.contains("lint.device-without-set"),
        "{out}"
    );
    assert!(server.cli_ok(&["profile", "list"]).contains("linted"));
}

#[test]
fn a_credential_change_reminds_of_option_160_and_warns_when_dhcp_was_seen_carrying_the_old_ones() {
    let server = ZServer::start_with("device.public_names = [\"prov.example.com\"]");
    let (user, password) = server.set_credentials();
    let port = server.device.port();
    let token = user_with_token(&server, "ops", "admin", "");
    let option = |r: &Resp| crate::common::json(r)["dhcp_option_160"].clone();
    // Before any analysis: the value to paste, no warning.
    let r = api(&server, "GET", "/accounts/default", Some(&token), "");
    let o = option(&r);
    // The configured port is 0 here (the test's server took a free one): no port shown.
    assert_eq!(
        o["value"],
        format!("http://{user}:PASSWORD@prov.example.com/").as_str(),
        "{o}"
    );
    assert!(o.get("warning").is_none(), "{o}");
    // DHCP (here a dnsmasq file analysed) gives phones the current credentials.
    let dir = server.dir.path();
    let conf = write_file(
        dir,
        "dnsmasq.conf",
        format!("dhcp-option=160,\"http://{user}:{password}@prov.example.com:{port}/\"\n")
            .as_bytes(),
    );
    let out = server.cli(&["diagnose", "dhcp-config", conf.to_str().expect("path")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = api(&server, "GET", "/accounts/default", Some(&token), "");
    assert!(
        option(&r).get("warning").is_none(),
        "current: no warning {}",
        r.text()
    );
    // The credentials change: the CLI says what option 160 must now hold and warns that
    // DHCP was seen carrying the old ones; the API and the console say it too.
    let out = server.cli(&[
        "account",
        "set-credentials",
        "--user",
        "phones2",
        "--password",
        "New-Passw0rd-2",
        "--yes",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("it must now hold: http://phones2:PASSWORD@prov.example.com/"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: the last DHCP configuration analysis")
            && stderr.contains("not account `Default`'s current ones"),
        "{stderr}"
    );
    let r = api(&server, "GET", "/accounts/default", Some(&token), "");
    let o = option(&r);
    assert!(
        o["warning"]
            .as_str()
            .is_some_and(|w| w.contains("option 160")),
        "{o}"
    );
    assert_eq!(o["value"], "http://phones2:PASSWORD@prov.example.com/");
    let session = Session::admin(&server);
    let page = session.get("/accounts/default").text();
    assert!(page.contains("id=\"option-160-stale\""), "{page}");
    // No password anywhere it was said.
    for (what, text) in [
        ("stdout", stdout.as_str()),
        ("stderr", stderr.as_str()),
        ("api", &r.text()),
        ("page", &page),
    ] {
        for secret in [password.as_str(), "New-Passw0rd-2"] {
            assert!(!text.contains(secret), "{what} shows a password: {text}");
        }
    }
    // DHCP updated and analysed again: the warning is gone.
    let conf = write_file(
        dir,
        "dnsmasq.conf",
        format!("dhcp-option=160,\"http://phones2:New-Passw0rd-2@prov.example.com:{port}/\"\n")
            .as_bytes(),
    );
    server.cli(&["diagnose", "dhcp-config", conf.to_str().expect("path")]);
    let r = api(&server, "GET", "/accounts/default", Some(&token), "");
    assert!(option(&r).get("warning").is_none(), "{}", r.text());
    assert!(
        !session
            .get("/accounts/default")
            .text()
            .contains("option-160-stale")
    );
}
