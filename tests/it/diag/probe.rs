//! The DHCP probe against real dnsmasq servers in network namespaces, for what an operator
//! must be able to trust: a password in an option never shows (text, JSON, the database);
//! an answer without options is no all-clear unless the probe asked as a phone (`--mac`,
//! for servers that class by OUI); an option without a scheme is FTP to a phone; every
//! device listener and this host's own addresses are "this server".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Lab, findings, has, json, option};
use crate::common::*;

/// Runs `zerotouch diagnose dhcp` inside `ns` with extra arguments.
fn probe(ns: &str, interface: &str, config: &Path, extra: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin())
        .args([
            "diagnose",
            "dhcp",
            "--interface",
            interface,
            "--seconds",
            "3",
        ])
        .args(extra)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run the probe")
}

/// Every byte of the database files (the WAL too: recent writes live there).
fn database_bytes(data: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["zerotouch.db", "zerotouch.db-wal"] {
        all.extend(std::fs::read(data.join(name)).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The hex pairs an option's `hex` field would show for `text`.
fn hex_of(text: &str) -> String {
    text.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn passwords_in_dhcp_options_never_show_in_text_json_or_the_database() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start_with("device.public_names = [\"10.79.0.1\"]");
    let (user, password) = server.set_credentials();
    let stale = "Stale-Passw0rd-77";
    let port = server.device.port();
    let dir = server.dir.path().to_path_buf();
    // Two servers that disagree: the "servers differ" evidence quotes both options.
    let cli = lab.netns("c");
    let bridge = lab.name("br");
    lab.ip(&["-n", &cli, "link", "add", &bridge, "type", "bridge"]);
    lab.ip(&["-n", &cli, "link", "set", &bridge, "up"]);
    for (i, secret) in [(1, password.as_str()), (2, stale)] {
        let ns = lab.netns(&format!("s{i}"));
        let (s_if, c_if) = lab.veth(
            &format!("v{i}"),
            &ns,
            Some(&format!("10.79.0.{i}/24")),
            &cli,
        );
        lab.ip(&["-n", &cli, "link", "set", &c_if, "master", &bridge]);
        lab.dnsmasq(
            &ns,
            &s_if,
            &dir,
            &[
                format!("--dhcp-range=10.79.0.{}0,10.79.0.{}9,12h", i + 1, i + 1),
                format!("--dhcp-option=160,http://{user}:{secret}@10.79.0.1:{port}/"),
                // Without a scheme too, as an option 66 may carry it.
                format!("--dhcp-option=66,{user}:{secret}@10.79.0.1:{port}"),
            ],
        );
    }
    let out = probe(&cli, &bridge, &server.config, &["--json"]);
    let report = json(&out);
    assert!(has(&report, "dhcp.servers-differ", "warning"), "{report:#}");
    assert!(
        has(&report, "dhcp.stale-credentials", "error"),
        "{report:#}"
    );
    assert_eq!(out.status.code(), Some(2), "an error: exit status 2");
    let text_out = probe(&cli, &bridge, &server.config, &[]);
    assert_eq!(text_out.status.code(), Some(2));

    let text = String::from_utf8_lossy(&text_out.stdout);
    assert!(text.contains("[dhcp.servers-differ]"), "{text}");
    let db = database_bytes(&server.data_dir());
    for secret in [password.as_str(), stale] {
        for (what, bytes) in [
            ("the JSON output", &out.stdout),
            ("the JSON run's standard error", &out.stderr),
            ("the text output", &text_out.stdout),
            ("the text run's standard error", &text_out.stderr),
            ("the database", &db),
        ] {
            assert!(!contains(bytes, secret), "{secret} in {what}");
            assert!(
                !contains(bytes, &hex_of(secret)),
                "{secret} as hex in {what}"
            );
        }
    }
    assert!(
        text.contains(&format!("{user}:********@10.79.0.1")),
        "masked, not dropped: {text}"
    );
}

#[test]
fn options_given_only_to_polycom_macs_are_found_with_mac_and_never_an_all_clear_without() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start_with("device.public_names = [\"10.80.0.1\"]");
    let port = server.device.port();
    let dir = server.dir.path().to_path_buf();
    let srv = lab.netns("s");
    let cli = lab.netns("c");
    // The server's side is a bridge, so its forwarding table shows the Ethernet sources
    // the probe used.
    let bridge = lab.name("br");
    lab.ip(&["-n", &srv, "link", "add", &bridge, "type", "bridge"]);
    lab.ip(&["-n", &srv, "addr", "add", "10.80.0.1/24", "dev", &bridge]);
    lab.ip(&["-n", &srv, "link", "set", &bridge, "up"]);
    let (c_if, s_port) = lab.veth("v", &cli, None, &srv);
    lab.ip(&["-n", &srv, "link", "set", &s_port, "master", &bridge]);
    let url = format!("http://10.80.0.1:{port}/");
    lab.dnsmasq(
        &srv,
        &bridge,
        &dir,
        &[
            "--dhcp-range=10.80.0.100,10.80.0.150,12h".into(),
            "--dhcp-mac=set:polycom,00:04:f2:*:*:*".into(),
            format!("--dhcp-option=tag:polycom,66,{url}"),
        ],
    );
    // The client's own MAC, as its namespace sees it.
    let own_mac = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-n", &cli, "-br", "link", "show", &c_if])
            .output()
            .expect("ip link")
            .stdout,
    )
    .split_whitespace()
    .nth(2)
    .unwrap_or_default()
    .to_string();
    assert_eq!(own_mac.len(), 17, "the client's MAC: {own_mac}");

    // As this host: the server gives nothing, and that is a warning, not an all-clear.
    let out = probe(&cli, &c_if, &server.config, &["--json"]);
    let report = json(&out);
    assert!(
        report["result"]["answers"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{report:#}"
    );
    assert!(has(&report, "dhcp.no-boot-server", "warning"), "{report:#}");
    let title = report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "dhcp.no-boot-server"))
        .and_then(|f| f["title"].as_str())
        .unwrap_or("");
    assert!(
        title.contains("for this host's MAC") && title.contains("--mac"),
        "{title}"
    );
    assert_eq!(out.status.code(), Some(1), "a warning: exit status 1");

    // As a Polycom phone: the option is there, and points here.
    let out = probe(
        &cli,
        &c_if,
        &server.config,
        &["--json", "--mac", "00:04:f2:aa:bb:cc"],
    );
    let report = json(&out);
    assert_eq!(report["result"]["client_mac"], "00:04:f2:aa:bb:cc");
    assert_eq!(report["result"]["mac"], own_mac.as_str());
    let offer = report["result"]["answers"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["message_type"] == "OFFER"))
        .unwrap_or_else(|| panic!("an offer for the phone's MAC: {report:#}"));
    assert_eq!(option(offer, 66).expect("66")["text"], url.as_str());
    assert!(has(&report, "dhcp.points-here", "info"), "{report:#}");
    assert!(
        !findings(&report)
            .iter()
            .any(|(c, _)| c == "dhcp.no-boot-server"),
        "{report:#}"
    );
    assert!(
        report["result"]["notes"]
            .to_string()
            .contains("DHCP snooping"),
        "{report:#}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DHCP snooping"), "{stderr}");
    // The Ethernet source was this host's own MAC: the bridge learnt it, never the phone's.
    let fdb = String::from_utf8_lossy(
        &Command::new("bridge")
            .args(["-n", &srv, "fdb", "show", "br", &bridge])
            .output()
            .expect("bridge fdb")
            .stdout,
    )
    .to_string();
    assert!(fdb.contains(&own_mac), "{fdb}");
    assert!(!fdb.contains("00:04:f2:aa:bb:cc"), "{fdb}");
    // A bad MAC is named, and the check did not run.
    let out = probe(&cli, &c_if, &server.config, &["--mac", "00:04:f2"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mac: `00:04:f2` is not a MAC"));
}

/// A copy of the server's configuration whose device listeners are on every address at
/// fixed ports, as the package installs them (the probe only reads it; nothing binds them).
fn packaged_listeners(config: &Path) -> PathBuf {
    let text = std::fs::read_to_string(config).expect("config");
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("device.http_listen") && !l.starts_with("device.https_listen"))
        .map(String::from)
        .collect();
    out.push("device.http_listen = \"0.0.0.0:18080\"".into());
    out.push("device.https_listen = \"0.0.0.0:18443\"".into());
    let path = config.with_file_name("packaged.toml");
    std::fs::write(&path, out.join("\n") + "\n").expect("write");
    path
}

#[test]
fn an_option_without_a_scheme_is_ftp_and_every_listener_and_host_address_is_this_server() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start_with("device.public_names = [\"10.81.0.1\"]");
    let config = packaged_listeners(&server.config);
    let dir = server.dir.path().to_path_buf();
    let srv = lab.netns("s");
    let cli = lab.netns("c");
    let (s_if, c_if) = lab.veth("v", &srv, Some("10.81.0.1/24"), &cli);
    // The probe runs in the client's namespace: 10.81.0.9 is "this host" there.
    lab.ip(&["-n", &cli, "addr", "add", "10.81.0.9/24", "dev", &c_if]);
    lab.dnsmasq(
        &srv,
        &s_if,
        &dir,
        &[
            "--dhcp-range=10.81.0.100,10.81.0.150,12h".into(),
            "--dhcp-option=66,10.81.0.1".into(),
            "--dhcp-option=160,https://10.81.0.1:18443/".into(),
            "--dhcp-option=161,http://10.81.0.9:18080/".into(),
        ],
    );
    let out = probe(&cli, &c_if, &config, &["--json"]);
    let report = json(&out);
    let list = report["findings"].as_array().expect("findings");
    let of = |code: u64| -> Vec<(String, String)> {
        list.iter()
            .filter(|f| {
                f["evidence"]
                    .as_str()
                    .is_some_and(|e| e.contains(&format!("option {code} =")))
            })
            .map(|f| {
                (
                    f["code"].as_str().unwrap_or("").to_string(),
                    f["severity"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pair = |c: &str, s: &str| vec![(c.to_string(), s.to_string())];
    assert_eq!(of(66), pair("dhcp.no-scheme", "warning"), "{report:#}");
    let fix = list
        .iter()
        .find(|f| f["code"] == "dhcp.no-scheme")
        .and_then(|f| f["fix"].as_str())
        .unwrap_or("");
    assert!(
        fix.contains("FTP") && fix.contains("`https://10.81.0.1:18443/`"),
        "{fix}"
    );
    assert_eq!(
        of(160),
        pair("dhcp.points-here", "info"),
        "the HTTPS listener is this server: {report:#}"
    );
    assert_eq!(
        of(161),
        pair("dhcp.points-here", "info"),
        "this host's own address, with listeners on 0.0.0.0: {report:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn options_given_by_vendor_class_are_found_with_that_family_and_named_in_the_report() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start_with("device.public_names = [\"10.82.0.1\"]");
    let port = server.device.port();
    let dir = server.dir.path().to_path_buf();
    let srv = lab.netns("s");
    let cli = lab.netns("c");
    let (c_if, s_if) = lab.veth("v", &cli, None, &srv);
    lab.ip(&["-n", &srv, "addr", "add", "10.82.0.1/24", "dev", &s_if]);
    let url = format!("http://10.82.0.1:{port}/");
    // The server gives the provisioning address only to Trio phones (dnsmasq matches a
    // substring of option 60), the way sites move one family to another server.
    lab.dnsmasq(
        &srv,
        &s_if,
        &dir,
        &[
            "--dhcp-range=10.82.0.100,10.82.0.150,12h".into(),
            "--dhcp-vendorclass=set:trio,RealPresenceTrio".into(),
            format!("--dhcp-option=tag:trio,66,{url}"),
        ],
    );
    let phone = "00:04:f2:aa:bb:cd";
    // As a VVX (the default): nothing, and the finding says which class asked and how to
    // ask as another family.
    let out = probe(&cli, &c_if, &server.config, &["--json", "--mac", phone]);
    let report = json(&out);
    assert!(has(&report, "dhcp.no-boot-server", "info"), "{report:#}");
    let fix = report["findings"].to_string();
    assert!(
        fix.contains("vvx (Polycom, VVX-VVX_410)") && fix.contains("--family"),
        "{fix}"
    );
    // As a Trio: the option is there and points here.
    let out = probe(
        &cli,
        &c_if,
        &server.config,
        &["--json", "--mac", phone, "--family", "trio"],
    );
    let report = json(&out);
    assert_eq!(
        report["result"]["vendor_class"],
        "trio (Polycom, RealPresenceTrio-Trio_8800)"
    );
    let offer = report["result"]["answers"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["message_type"] == "OFFER"))
        .unwrap_or_else(|| panic!("an offer for the Trio: {report:#}"));
    assert_eq!(option(offer, 66).expect("66")["text"], url.as_str());
    assert!(has(&report, "dhcp.points-here", "info"), "{report:#}");
    // The text output names the class; an unknown family is named with the known ones.
    let out = probe(
        &cli,
        &c_if,
        &server.config,
        &["--mac", phone, "--family", "lync"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("vendor class (option 60): lync (`MS-UC-Client`)"),
        "{text}"
    );
    let out = probe(&cli, &c_if, &server.config, &["--family", "polyos"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--family: `polyos` is not one of vvx, trio, ccx"),
        "{err}"
    );
}
