//! `zerotouch render` and `render --explain` show exactly what the device endpoint serves for
//! the same request — host, scheme and credential — on every fixture device: the bytes of
//! each file, and each parameter's value as the phone reads its files (first file wins).

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::*;

const UA: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";

/// Fetches `path` as a phone would, with curl: Basic credentials, over HTTP or HTTPS.
fn curl(url: &str, user: &str, password: &str, ca: Option<&std::path::Path>) -> (u16, Vec<u8>) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-A",
        UA,
        "-u",
        &format!("{user}:{password}"),
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let mut body = out.stdout;
    let at = body.iter().rposition(|b| *b == b'\n').expect("status line");
    let status = String::from_utf8_lossy(&body[at + 1..])
        .trim()
        .parse()
        .expect("status");
    body.truncate(at);
    (status, body)
}

/// Parameters of the files in order, first file wins (how a phone reads CONFIG_FILES).
fn phone_reads(files: &[Vec<u8>]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for bytes in files {
        let text = String::from_utf8_lossy(bytes);
        let Ok(doc) = roxmltree::Document::parse(&text) else {
            continue;
        };
        for n in doc.descendants().filter(|n| n.is_element()) {
            for a in n.attributes() {
                out.entry(a.name().to_string())
                    .or_insert_with(|| a.value().to_string());
            }
        }
    }
    out
}

fn populate(server: &ZServer, fixtures: &std::path::Path) {
    // The shared file sets parameters only zerotouch may set (device.set, device.prov.*):
    // refused at upload (I6), so the profile gets the file without them.
    let sanitized = server.dir.path().join("fixtures");
    std::fs::create_dir_all(&sanitized).expect("dir");
    for name in std::fs::read_dir(fixtures).expect("fixtures").flatten() {
        let bytes = std::fs::read(name.path()).expect("read");
        let (clean, _) = zerotouch::domain::withhold::strip_owned(&bytes);
        std::fs::write(sanitized.join(name.file_name()), clean).expect("write");
    }
    let fixtures = sanitized.as_path();
    let f = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
    server.cli_ok(&["enrol", "mode", "off", "--yes"]);
    server.cli_ok(&[
        "profile",
        "add",
        "common",
        "--file",
        &f("site_flat_common.cfg"),
        "--polling",
        "enable",
    ]);
    server.cli_ok(&[
        "profile",
        "add",
        "shared",
        "--file",
        &f("device_set_customizations.cfg"),
        "--file",
        &f("perphone_nested_phone1.cfg"),
        "--language",
        "German_Germany",
    ]);
    server.cli_ok(&[
        "device",
        "add",
        "0004f2000001",
        "--profile",
        "common",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "1001",
        "--sip-password",
        "Line-Secret-1",
        "--display-name",
        "Front Desk",
    ]);
    server.cli_ok(&[
        "device",
        "add",
        "0004f2000002",
        "--profile",
        "shared",
        "--sip-user",
        "1002",
        "--sip-password",
        "Line-Secret-2",
    ]);
    server.cli_ok(&["device", "add", "0004f2000003", "--profile", "shared"]);
    server.cli_ok(&["site", "add", "hq"]);
    server.cli_ok(&["site", "assign", "hq", "0004f2000001", "0004f2000002"]);
    server.cli_ok(&[
        "policy",
        "set",
        "site:hq",
        "tcpIpApp.sntp.address",
        "ntp.hq.example",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "account",
        "lcl.ml.lang",
        "English_United_Kingdom",
    ]);
}

/// `render` of every file of `mac`, with the request's host, scheme and credential.
fn rendered(
    server: &ZServer,
    mac: &str,
    host: &str,
    https: bool,
    who: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![
        format!("{mac}.cfg"),
        format!("{mac}-device.cfg"),
        format!("{mac}-profile.cfg"),
    ];
    names.push(format!("{mac}-profile-2.cfg"));
    let mut out = Vec::new();
    for name in names {
        let mut args = vec![
            "render",
            mac,
            "--host",
            host,
            "--as",
            who,
            "--file",
            name.as_str(),
        ];
        if https {
            args.push("--https");
        }
        let o = server.cli(&args);
        if o.status.success() {
            out.push((name, o.stdout));
        } else {
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("receives no file"),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    out
}

fn explained(server: &ZServer, mac: &str, host: &str, https: bool, who: &str) -> serde_json::Value {
    let mut args = vec![
        "render",
        mac,
        "--host",
        host,
        "--as",
        who,
        "--explain",
        "--json",
    ];
    if https {
        args.push("--https");
    }
    serde_json::from_str(&server.cli_ok(&args)).expect("json")
}

/// Every file and every value `render` shows equals what the endpoint served.
fn check_device(
    server: &ZServer,
    mac: &str,
    base: &str,
    https: bool,
    who: (&str, &str, &str),
    ca: Option<&std::path::Path>,
) {
    let (as_, user, password) = who;
    let host = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    // The master request is where a phone's evidence is read (it may confirm a change):
    // render shows the files of the request that follows it.
    let (status, master) = curl(&format!("{base}/{mac}.cfg"), user, password, ca);
    assert_eq!(status, 200, "{mac}.cfg as {as_}");
    let files = rendered(server, mac, host, https, as_);
    assert!(files.len() >= 2, "{mac}: master and generated file");
    let explain = explained(server, mac, host, https, as_);
    let mut served = Vec::new();
    for (name, bytes) in &files {
        let (status, body) = if *name == format!("{mac}.cfg") {
            (200, master.clone())
        } else {
            curl(&format!("{base}/{name}"), user, password, ca)
        };
        assert_eq!(status, 200, "{mac} {name} as {as_}");
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(bytes),
            "{mac} {name} as {as_} over {}: render differs from what the phone got",
            if https { "HTTPS" } else { "HTTP" }
        );
        if name.ends_with(".cfg") && !name.ends_with(&format!("{mac}.cfg")) {
            served.push(body);
        }
    }
    // A file render does not list is not served either.
    let (status, _) = curl(&format!("{base}/{mac}-profile-3.cfg"), user, password, ca);
    assert_eq!(status, 404);
    let reads = phone_reads(&served);
    let rows = explain.as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    let extra: Vec<&&str> = names.iter().filter(|n| !reads.contains_key(**n)).collect();
    let missing: Vec<&String> = reads
        .keys()
        .filter(|k| !names.contains(&k.as_str()))
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{mac}: explained but not served {extra:?}; served but not explained {missing:?}"
    );
    for row in rows {
        let name = row["name"].as_str().expect("name");
        let got = reads
            .get(name)
            .unwrap_or_else(|| panic!("{mac}: {name} explained, not served"));
        if row["secret"] == true {
            assert!(!got.is_empty() || row["value"] == "", "{name}");
        } else if !row["value"]
            .as_str()
            .unwrap_or_default()
            .starts_with("(CA certificate")
        {
            assert_eq!(row["value"].as_str(), Some(got.as_str()), "{mac} {name}");
        }
    }
}

#[test]
fn render_shows_exactly_what_the_endpoint_serves_for_the_same_request() {
    let fixtures = polycom_fixtures();
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    populate(&server, &fixtures);
    let ca = server.data_dir().join("tls/ca.pem");
    let http = format!("http://{}", server.device);
    let https = format!("https://localhost:{}", server.https.expect("https").port());
    for mac in ["0004f2000001", "0004f2000002", "0004f2000003"] {
        check_device(
            &server,
            mac,
            &http,
            false,
            ("device", &user, &password),
            None,
        );
        check_device(
            &server,
            mac,
            &https,
            true,
            ("device", &user, &password),
            Some(&ca),
        );
    }
    // With per-device secrets on, the account credential gets less than the device: render
    // shows that too, for the same credential.
    server.cli_ok(&["enrol", "mode", "on", "--yes"]);
    for mac in ["0004f2000001", "0004f2000002"] {
        check_device(
            &server,
            mac,
            &http,
            false,
            ("account", &user, &password),
            None,
        );
        let as_account = rendered(&server, mac, &server.device.to_string(), false, "account");
        let generated = &as_account[1].1;
        assert!(
            !String::from_utf8_lossy(generated).contains("Line-Secret"),
            "{mac}: no SIP password for the account credential"
        );
    }
}
