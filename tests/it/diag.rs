//! Diagnostics against real servers: DNS records served by a real dnsmasq on a loopback
//! port; DHCP answers from real dnsmasq servers inside network namespaces joined by veth
//! pairs that each test creates and removes (never the host's network); the phone checks,
//! the snippets and the Diagnostics page. DHCP configuration files and lint are in
//! `files`.
//!
//! DHCP tests need root (namespaces, port 67/68); where the kernel refuses namespaces they
//! fail under CI and are skipped elsewhere (`common::require`). dnsmasq and iproute2 come
//! from Debian (`.ci/run` installs them).

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

mod files;
mod probe;

fn dnsmasq_bin() -> PathBuf {
    for p in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("dnsmasq is not installed: apt-get install dnsmasq-base (see .ci/run)");
}

/// A dnsmasq process, killed when dropped.
struct Dnsmasq {
    child: Child,
    log: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq (optionally inside a namespace) and waits until its log shows `ready`.
    fn start(netns: Option<&str>, args: &[String], log: PathBuf, ready: &str) -> Dnsmasq {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(dnsmasq_bin());
                c
            }
            None => Command::new(dnsmasq_bin()),
        };
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
        ])
        .arg(format!("--log-facility={}", log.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd.spawn().expect("start dnsmasq");
        let d = Dnsmasq { child, log };
        let ok = eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(&d.log).is_ok_and(|l| l.contains(ready))
        });
        assert!(ok, "dnsmasq did not start: {}", d.log_text());
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both UDP and TCP (DNS uses both).
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// The JSON report of a `diagnose` command that ran (exit status 0, 1 or 2 by its most
/// severe finding), checked against that status.
fn json(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "command failed ({code:?}): {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    if report.get("findings").is_some() {
        let rank =
            |(_, s): &(String, String)| ["info", "warning", "error"].iter().position(|x| x == s);
        let worst = findings(&report).iter().filter_map(rank).max().unwrap_or(0);
        assert_eq!(
            code,
            Some(worst as i32),
            "exit status by the worst finding: {report:#}"
        );
    }
    report
}

/// `(code, severity)` of every finding of a report.
fn findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(report: &Value, code: &str, severity: &str) -> bool {
    findings(report)
        .iter()
        .any(|(c, s)| c == code && s == severity)
}

#[test]
fn dns_probe_reads_srv_and_a_records_from_a_real_dnsmasq() {
    let server = ZServer::start();
    let port = free_port();
    let mut args: Vec<String> = vec![
        format!("--port={port}"),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        format!("--pid-file={}", server.dir.path().join("dns.pid").display()),
        "--srv-host=_rtcconfig._tcp.example.test,video-prov.other.test,443,0,10".into(),
        "--srv-host=_cmaconfig._tcp.example.test,rprm.other.test,443".into(),
        "--srv-host=_sipinternaltls._tcp.example.test,pool.example.test,5061".into(),
        "--srv-host=_ntp._udp.example.test,ntp.example.test,123".into(),
        "--host-record=lyncdiscoverinternal.example.test,127.0.0.20".into(),
    ];
    // Enough addresses for one name that the UDP answer is truncated and TCP is needed.
    for i in 1..=60 {
        args.push(format!(
            "--host-record=ucupdates-r2.example.test,127.0.1.{i}"
        ));
    }
    let _dns = Dnsmasq::start(None, &args, server.dir.path().join("dns.log"), "started");
    let out = server.cli(&[
        "diagnose",
        "dns",
        "--domain",
        "example.test",
        "--server",
        &format!("127.0.0.1:{port}"),
        "--timeout-ms",
        "2000",
        "--json",
    ]);
    let report = json(&out);
    let answers = report["result"]["answers"].as_array().expect("answers");
    let answer = |name: &str, t: &str| {
        answers
            .iter()
            .find(|a| a["name"] == name && a["rtype"] == t)
            .unwrap_or_else(|| panic!("no answer for {name} {t}: {report:#}"))
    };
    let rtc = answer("_rtcconfig._tcp.example.test", "SRV");
    assert_eq!(rtc["records"][0]["target"], "video-prov.other.test");
    assert_eq!(rtc["records"][0]["port"], 443);
    let lync = answer("lyncdiscoverinternal.example.test", "A");
    assert_eq!(lync["records"][0]["data"], "127.0.0.20");
    let many = answer("ucupdates-r2.example.test", "A");
    assert_eq!(
        many["records"].as_array().map(Vec::len),
        Some(60),
        "{many:#}"
    );
    assert_eq!(
        many["tcp"], true,
        "a truncated UDP answer is asked again over TCP"
    );
    assert!(has(&report, "dns.rtcconfig", "warning"), "{report:#}");
    assert!(has(&report, "dns.cmaconfig", "warning"), "{report:#}");
    assert!(has(&report, "dns.lync", "info"), "{report:#}");
    assert!(has(&report, "dns.ntp", "info"), "{report:#}");
    assert!(report["run_id"].as_i64().is_some(), "the run is stored");

    // The text output shows the records too; warnings: exit status 1.
    let out = server.cli(&[
        "diagnose",
        "dns",
        "--domain",
        "example.test",
        "--server",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("video-prov.other.test"), "{text}");
    assert!(text.contains("[dns.rtcconfig]"), "{text}");
}

#[test]
fn dns_probe_against_a_silent_port_says_no_answer() {
    let server = ZServer::start();
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let report = json(&server.cli(&[
        "diagnose",
        "dns",
        "--domain",
        "example.test",
        "--server",
        &addr,
        "--timeout-ms",
        "100",
        "--json",
    ]));
    assert!(has(&report, "dns.no-answer", "warning"), "{report:#}");
}

// ---------------------------------------------------------------------------------------
// DHCP in network namespaces

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Network namespaces and the dnsmasq servers inside them; everything is removed on drop,
/// also when the test fails.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    servers: Vec<Dnsmasq>,
}

impl Lab {
    /// A lab with a unique prefix, or `None` when the kernel refuses namespaces (a skip
    /// outside CI, a failure under CI: `require`).
    fn new() -> Option<Lab> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("zt{}{n}", std::process::id() % 100_000);
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            servers: Vec::new(),
        };
        let probe = lab.name("chk");
        let out = Command::new("ip")
            .args(["netns", "add", &probe])
            .output()
            .expect("run ip (apt-get install iproute2)");
        if !require(
            out.status.success(),
            &format!(
                "the kernel refuses network namespaces here ({}); DHCP probe tests need root",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ) {
            return None;
        }
        lab.namespaces.push(probe);
        Some(lab)
    }

    fn name(&self, tag: &str) -> String {
        format!("{}{tag}", self.prefix)
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn netns(&mut self, tag: &str) -> String {
        let ns = self.name(tag);
        self.ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        self.ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair from `a` (address `a_addr`, or none) to `b`; returns the two names.
    fn veth(&self, tag: &str, a: &str, a_addr: Option<&str>, b: &str) -> (String, String) {
        let (x, y) = (self.name(&format!("{tag}a")), self.name(&format!("{tag}b")));
        self.ip(&["link", "add", &x, "type", "veth", "peer", "name", &y]);
        self.ip(&["link", "set", &x, "netns", a]);
        self.ip(&["link", "set", &y, "netns", b]);
        if let Some(addr) = a_addr {
            self.ip(&["-n", a, "addr", "add", addr, "dev", &x]);
        }
        self.ip(&["-n", a, "link", "set", &x, "up"]);
        self.ip(&["-n", b, "link", "set", &y, "up"]);
        (x, y)
    }

    fn dnsmasq(&mut self, ns: &str, interface: &str, dir: &Path, extra: &[String]) -> &Dnsmasq {
        // A new name per start: a restarted server must not find its predecessor's log.
        let tag = format!(
            "{ns}-{interface}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut args = vec![
            "--port=0".to_string(),
            "--no-ping".into(),
            format!("--interface={interface}"),
            "--bind-interfaces".into(),
            format!(
                "--dhcp-leasefile={}",
                dir.join(format!("{tag}.leases")).display()
            ),
            format!("--pid-file={}", dir.join(format!("{tag}.pid")).display()),
            "--log-dhcp".into(),
        ];
        args.extend_from_slice(extra);
        let log = dir.join(format!("{tag}.log"));
        self.servers
            .push(Dnsmasq::start(Some(ns), &args, log, "DHCP, IP range"));
        self.servers.last().expect("just pushed")
    }

    /// Runs `zerotouch diagnose dhcp` inside `ns`.
    fn probe(&self, ns: &str, interface: &str, config: &Path) -> Value {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin())
            .args([
                "diagnose",
                "dhcp",
                "--interface",
                interface,
                "--seconds",
                "3",
                "--json",
                "--config",
            ])
            .arg(config)
            .output()
            .expect("run the probe");
        json(&out)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // dnsmasq first: a namespace with a process in it lingers.
        self.servers.clear();
        for ns in &self.namespaces {
            // Deleting a namespace removes the veth ends inside it, and so their peers.
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn option(answer: &Value, code: u64) -> Option<&Value> {
    answer["options"]
        .as_array()?
        .iter()
        .find(|o| o["code"].as_u64() == Some(code))
}

#[test]
fn dhcp_probe_sees_options_66_160_and_150_and_finds_stale_credentials() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start_with("device.public_names = [\"10.77.0.1\"]");
    let (user, _password) = server.set_credentials();
    let port = server.device.port();
    let srv = lab.netns("s");
    let cli = lab.netns("c");
    let (s_if, c_if) = lab.veth("v", &srv, Some("10.77.0.1/24"), &cli);
    // The client has an address, so the INFORM is sent and answered too.
    lab.ip(&["-n", &cli, "addr", "add", "10.77.0.9/24", "dev", &c_if]);
    let stale = format!("http://{user}:Old-Passw0rd@10.77.0.1:{port}/");
    let dir = server.dir.path().to_path_buf();
    lab.dnsmasq(
        &srv,
        &s_if,
        &dir,
        &[
            "--dhcp-range=10.77.0.100,10.77.0.150,12h".into(),
            "--dhcp-option=66,http://old-prov.example.com/".into(),
            // No shell here, so no quotes: dnsmasq would keep them.
            format!("--dhcp-option=160,{stale}"),
            "--dhcp-option=150,10.77.0.5,10.77.0.6".into(),
        ],
    );
    let report = lab.probe(&cli, &c_if, &server.config);
    let answers = report["result"]["answers"].as_array().expect("answers");
    let types: Vec<&str> = answers
        .iter()
        .filter_map(|a| a["message_type"].as_str())
        .collect();
    assert!(
        types.contains(&"OFFER") && types.contains(&"ACK"),
        "DISCOVER and INFORM both answered: {report:#}"
    );
    let offer = answers
        .iter()
        .find(|a| a["message_type"] == "OFFER")
        .expect("offer");
    assert_eq!(offer["server"], "10.77.0.1");
    assert_eq!(
        option(offer, 150).expect("150")["addresses"],
        serde_json::json!(["10.77.0.5", "10.77.0.6"]),
        "both addresses of option 150, and the options after it"
    );
    assert_eq!(
        option(offer, 160).expect("160")["text"],
        stale.replace("Old-Passw0rd", "********").as_str(),
        "the option is shown with its password masked"
    );
    assert_eq!(
        option(offer, 66).expect("66")["text"],
        "http://old-prov.example.com/"
    );
    assert!(
        has(&report, "dhcp.stale-credentials", "error"),
        "{report:#}"
    );
    assert!(
        has(&report, "dhcp.points-elsewhere", "warning"),
        "{report:#}"
    );
    assert!(has(&report, "dhcp.option150", "info"), "{report:#}");
    assert!(
        !findings(&report)
            .iter()
            .any(|(c, _)| c == "dhcp.servers-differ"),
        "one server"
    );
    let evidence = report["findings"].to_string();
    assert!(
        !evidence.contains("Old-Passw0rd"),
        "findings never show the password: {evidence}"
    );
    // Never a REQUEST, so never a lease.
    for entry in std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok) {
        if entry.path().extension().is_some_and(|x| x == "leases") {
            let leases = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(leases.trim().is_empty(), "a lease was taken: {leases}");
        }
    }

    // With the current credentials in option 160, the staleness finding goes away.
    lab.servers.clear();
    let (user, password) = server.credentials();
    let current = format!("http://{user}:{password}@10.77.0.1:{port}/");
    lab.dnsmasq(
        &srv,
        &s_if,
        &dir,
        &[
            "--dhcp-range=10.77.0.100,10.77.0.150,12h".into(),
            format!("--dhcp-option=160,{current}"),
        ],
    );
    let report = lab.probe(&cli, &c_if, &server.config);
    assert!(has(&report, "dhcp.points-here", "info"), "{report:#}");
    assert!(
        !findings(&report)
            .iter()
            .any(|(c, _)| c == "dhcp.stale-credentials"),
        "{report:#}"
    );
}

#[test]
fn two_dhcp_servers_that_disagree_are_a_finding_and_a_pair_that_agrees_is_not() {
    let Some(mut lab) = Lab::new() else { return };
    let server = ZServer::start();
    let dir = server.dir.path().to_path_buf();
    let cli = lab.netns("c");
    let bridge = lab.name("br");
    lab.ip(&["-n", &cli, "link", "add", &bridge, "type", "bridge"]);
    lab.ip(&["-n", &cli, "link", "set", &bridge, "up"]);
    let mut servers = Vec::new();
    for i in 1..=2 {
        let ns = lab.netns(&format!("s{i}"));
        let addr = format!("10.78.0.{i}/24");
        let (s_if, c_if) = lab.veth(&format!("v{i}"), &ns, Some(&addr), &cli);
        lab.ip(&["-n", &cli, "link", "set", &c_if, "master", &bridge]);
        servers.push((ns, s_if));
    }
    let start = |lab: &mut Lab, same: bool| {
        lab.servers.clear();
        for (i, (ns, s_if)) in servers.iter().enumerate() {
            let n = i + 1;
            let option66 = if same {
                "http://prov.example.com/".to_string()
            } else {
                format!("http://server{n}.example.com/")
            };
            lab.dnsmasq(
                ns,
                s_if,
                &dir,
                &[
                    format!("--dhcp-range=10.78.0.{}0,10.78.0.{}9,12h", n + 1, n + 1),
                    format!("--dhcp-option=66,{option66}"),
                ],
            );
        }
    };
    start(&mut lab, false);
    let report = lab.probe(&cli, &bridge, &server.config);
    let servers_seen: std::collections::BTreeSet<&str> = report["result"]["answers"]
        .as_array()
        .expect("answers")
        .iter()
        .filter_map(|a| a["server"].as_str())
        .collect();
    assert_eq!(servers_seen.len(), 2, "{report:#}");
    assert!(has(&report, "dhcp.servers-differ", "warning"), "{report:#}");
    let differ = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "dhcp.servers-differ")
        .expect("finding");
    let evidence = differ["evidence"].as_str().unwrap_or("");
    assert!(
        evidence.contains("server1.example.com") && evidence.contains("server2.example.com"),
        "{evidence}"
    );

    start(&mut lab, true);
    let report = lab.probe(&cli, &bridge, &server.config);
    assert!(has(&report, "dhcp.failover-pair", "info"), "{report:#}");
    assert!(
        !findings(&report)
            .iter()
            .any(|(c, _)| c == "dhcp.servers-differ"),
        "{report:#}"
    );
}

#[test]
fn dhcp_probe_names_a_missing_interface() {
    let server = ZServer::start();
    let out = server.cli(&[
        "diagnose",
        "dhcp",
        "--interface",
        "zt-nosuch0",
        "--seconds",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3), "a check that could not run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no interface `zt-nosuch0`"), "{err}");
}

#[test]
fn dhcp_probe_without_privileges_names_the_capabilities() {
    let unprivileged_ports =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1024);
    // Where the kernel lets anyone bind port 68 (containers often do), root runs the probe
    // in a network namespace of its own with the usual limit.
    let namespace = unprivileged_ports <= 68;
    if !require(
        !namespace || is_root(),
        "this kernel lets anyone bind port 68 (net.ipv4.ip_unprivileged_port_start <= 68) \
         and only root can give the test a network namespace with the usual limit",
    ) {
        return;
    }
    let args = [
        "diagnose",
        "dhcp",
        "--interface",
        "lo",
        "--seconds",
        "1",
        "--raw",
    ];
    let ns = format!("zt68-{}", std::process::id());
    let ip = |a: &[&str]| {
        let o = Command::new("ip").args(a).output().expect("ip (iproute2)");
        assert!(
            o.status.success(),
            "ip {a:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let mut cmd = if namespace {
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "netns",
            "exec",
            &ns,
            "sh",
            "-c",
            "echo 1024 > /proc/sys/net/ipv4/ip_unprivileged_port_start",
        ]);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns]);
        c
    } else if is_root() {
        Command::new("env")
    } else {
        let mut c = Command::new(bin());
        c.args(args);
        c
    };
    if is_root() {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(bin())
        .args(args);
    }
    let out = cmd.output().expect("run the probe (setpriv: util-linux)");
    if namespace {
        ip(&["netns", "del", &ns]);
    }
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_NET_RAW") && err.contains("CAP_NET_BIND_SERVICE") && err.contains("root"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Phones, snippets, the page

const MAC: &str = "0004f2d1a9e7";

#[test]
fn phones_with_wrong_credentials_and_redirecting_overrides_are_found() {
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    let site = write_file(server.dir.path(), "site.cfg", b"<c up.x=\"1\"/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("p"),
    ]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let mut good = Phone::new(server.device, MAC, UA_VVX500_APP, &user, &password);
    let ovr = br#"<PHONE_CONFIG><OVERRIDES device.prov.serverName="rogue.example.com" reg.1.server.1.address="sip.rogue.example.com"/></PHONE_CONFIG>"#;
    assert_eq!(good.get(&format!("/{MAC}.cfg")).status, 200);
    assert_eq!(
        good.request("PUT", &format!("/overrides/{MAC}-phone.cfg"), ovr)
            .status,
        201
    );
    let mut stale = Phone::new(server.device, MAC, UA_VVX500_APP, &user, "Old-Passw0rd-1");
    assert_eq!(stale.get(&format!("/{MAC}.cfg")).status, 401);
    let report = eventually(Duration::from_secs(10), || {
        let r = json(&server.cli(&["diagnose", "phones", "--json"]));
        has(&r, "access.bad-credentials", "warning")
    });
    assert!(report, "the wrong credentials show up");
    let r = json(&server.cli(&["diagnose", "phones", "--json"]));
    assert!(has(&r, "overrides.server", "warning"), "{r:#}");
    assert!(has(&r, "overrides.registration", "warning"), "{r:#}");
    assert!(r["findings"].to_string().contains(MAC), "{r:#}");
}

#[test]
fn snippets_without_public_names_never_use_a_short_host_name() {
    let server = ZServer::start();
    let short = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let out = server.cli(&["diagnose", "snippets", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let url = list[0]["url"].as_str().expect("url").to_string();
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .expect("host")
        .to_string();
    // A full name (dotted), or an address with a note saying to set device.public_names.
    if !short.contains('.') {
        assert_ne!(host, short, "the short host name in {url}");
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || url.contains("://[");
    assert!(host.contains('.') || is_ip, "{url}");
    if is_ip {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("device.public_names"),
            "an address is used without saying what to set: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn snippets_point_at_the_service_addresses_with_and_without_credentials() {
    let server = ZServer::start_with("device.public_names = [\"prov.example.com\"]");
    let (user, password) = server.set_credentials();
    let port = server.device.port();
    let port_arg = port.to_string();
    let plain = server.cli_ok(&["diagnose", "snippets", "--port", &port_arg]);
    assert!(
        plain.contains(&format!(
            "dhcp-option=160,\"http://prov.example.com:{port}/\""
        )),
        "{plain}"
    );
    assert!(
        plain.contains("Set-DhcpServerv4OptionValue -OptionId 160"),
        "{plain}"
    );
    assert!(
        plain.contains("option polycom-prov code 160 = text;"),
        "{plain}"
    );
    assert!(plain.contains("\"name\": \"polycom-prov\""), "{plain}");
    assert!(!plain.contains(&password));
    let with = server.cli_ok(&[
        "diagnose",
        "snippets",
        "--with-credentials",
        "--host",
        "10.1.2.3",
        "--port",
        &port_arg,
    ]);
    assert!(
        with.contains(&format!("http://{user}:{password}@10.1.2.3:{port}/")),
        "{with}"
    );
    assert!(
        with.contains("/default-"),
        "the service address of the account: {with}"
    );
}

#[test]
fn the_diagnostics_page_shows_the_last_runs_and_starts_checks() {
    let server = ZServer::start();
    // Signed out: no page, no check.
    let mut anonymous = Conn::open(server.admin);
    assert_eq!(
        anonymous.request("GET", "/diagnostics", &[], b"").status,
        303
    );
    assert_ne!(
        post_raw(server.admin, "/diagnostics/phones", "", "").status,
        303
    );

    let admin = Session::admin(&server);
    let page = admin.get("/diagnostics");
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(
        text.contains("DHCP probe") && text.contains("Not run yet"),
        "{text}"
    );
    assert!(text.contains("action=\"/diagnostics/dhcp\""), "{text}");

    // A check run from the CLI shows up on the page with its explanation.
    server.cli_ok(&["diagnose", "phones"]);
    let r = admin.post("/diagnostics/phones", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let text = admin.get("/diagnostics").text();
    assert!(text.contains("last 7 day(s)"), "{text}");

    // A POST without the session's CSRF token (another site's form) is refused.
    let r = post_raw(server.admin, "/diagnostics/phones", &admin.cookie, "");
    assert_eq!(r.status, 403);

    // Only admins see diagnostics.
    user_with_token(&server, "viewer1", "viewer", "");
    let viewer = Session::sign_in(&server, "viewer1", "a-long-test-password");
    assert_eq!(viewer.get("/diagnostics").status, 403);

    // The DHCP probe runs as a separate process; a bad interface ends as a failed run.
    let r = admin.post(
        "/diagnostics/dhcp",
        &[("interface", "zt-nosuch0"), ("seconds", "1")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let started = Instant::now();
    let done = eventually(Duration::from_secs(20), || {
        admin
            .get("/diagnostics")
            .text()
            .contains("no interface `zt-nosuch0`")
    });
    assert!(
        done,
        "the failed probe is shown ({} ms): {}",
        started.elapsed().as_millis(),
        admin.get("/diagnostics").text()
    );
    let r = admin.post(
        "/diagnostics/dhcp",
        &[("interface", "../etc"), ("seconds", "1")],
    );
    assert_eq!(r.status, 422);
}

#[test]
fn srv_targets_are_resolved_a_dangling_one_warned_and_one_named_here_but_elsewhere_warned() {
    let server =
        ZServer::start_with("device.public_names = [\"prov.example.test\", \"here.example.test\"]");
    let port = free_port();
    let args: Vec<String> = vec![
        format!("--port={port}"),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        format!("--pid-file={}", server.dir.path().join("dns.pid").display()),
        // Named as this server, but its A record points at another host.
        "--srv-host=_rtcconfig._tcp.example.test,prov.example.test,443".into(),
        "--host-record=prov.example.test,10.99.0.5".into(),
        // A Lync pool that is gone: the target has no address.
        "--srv-host=_sipinternaltls._tcp.example.test,gone-pool.example.test,5061".into(),
        // Named as this server and resolving here: information only.
        "--srv-host=_rtcconfig._tcp.ok.test,here.example.test,443".into(),
        "--host-record=here.example.test,127.0.0.1".into(),
    ];
    let _dns = Dnsmasq::start(None, &args, server.dir.path().join("dns.log"), "started");
    let server_arg = format!("127.0.0.1:{port}");
    let probe = |domain: &str, json_out: bool| {
        let mut a = vec![
            "diagnose",
            "dns",
            "--domain",
            domain,
            "--timeout-ms",
            "2000",
            "--server",
            &server_arg,
        ];
        if json_out {
            a.push("--json");
        }
        server.cli(&a)
    };
    let out = probe("example.test", true);
    let report = json(&out);
    let targets = report["result"]["targets"].as_array().expect("targets");
    assert!(
        targets
            .iter()
            .any(|t| t["name"] == "prov.example.test" && t["records"][0]["data"] == "10.99.0.5"),
        "{report:#}"
    );
    assert!(has(&report, "dns.rtcconfig", "warning"), "{report:#}");
    let rtc = report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "dns.rtcconfig"))
        .expect("rtcconfig finding");
    assert!(
        rtc["title"]
            .as_str()
            .is_some_and(|t| t.contains("names this server"))
            && rtc["fix"].as_str().is_some_and(|f| f.contains("10.99.0.5")),
        "{rtc:#}"
    );
    let dangling: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "dns.dangling-target")
        .collect();
    assert_eq!(dangling.len(), 1, "{report:#}");
    assert_eq!(dangling[0]["severity"], "warning");
    assert!(
        dangling[0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("gone-pool.example.test")),
        "{dangling:?}"
    );
    assert_eq!(out.status.code(), Some(1), "warnings: exit status 1");
    // The text output lists each target with what it resolved to.
    let text = String::from_utf8_lossy(&probe("example.test", false).stdout).to_string();
    assert!(
        text.contains("gone-pool.example.test") && text.contains("no address"),
        "{text}"
    );
    // A record naming this server that resolves here is information, and nothing dangles.
    let report = json(&probe("ok.test", true));
    assert!(has(&report, "dns.rtcconfig", "info"), "{report:#}");
    assert!(
        !findings(&report)
            .iter()
            .any(|(c, _)| c == "dns.dangling-target"),
        "{report:#}"
    );
}
