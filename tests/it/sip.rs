//! SIP check-sync ("apply now", issue 21) with the real binary: the wire against SIPp
//! (Debian's `sip-tester`) as the phone's UAS on loopback, retransmissions against a plain
//! UDP socket, where requests may go (never to an address the device did not prove), and
//! the phone simulator re-polling on check-sync.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::sim::sip::{SipEar, Validation};
use crate::sim::{Boot, SimPhone};

const LINE_USER: &str = "1001";
const LINE_SECRET: &str = "Line-Secret-9";

/// A server with apply-now on for loopback, fast timers (T1 20 ms: timer F 1.28 s);
/// `extra` (dotted keys) replaces any of these defaults.
fn sip_server(extra: &str) -> ZServer {
    ZServer::start_with(&sip_text(extra))
}

/// The configuration of `sip_server`.
fn sip_text(extra: &str) -> String {
    let mut text = String::new();
    for (key, value) in [
        ("sip.enabled", "true"),
        ("sip.networks", "[\"127.0.0.0/8\"]"),
        ("sip.t1_ms", "20"),
        ("sip.confirm_wait_secs", "5"),
        ("sip.wave_gap_secs", "1"),
        ("sip.rate_per_sec", "200"),
    ] {
        if !extra.contains(key) {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str(extra);
    text
}

/// A free UDP port on `ip`.
fn free_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port()
}

/// The account credential, a profile whose phones listen for SIP on `port`, and `macs`
/// associated with a SIP line (user 1001).
fn setup(server: &ZServer, port: u16, macs: &[String]) -> (String, String) {
    let creds = server.set_credentials();
    let file = write_file(
        server.dir.path(),
        "site.cfg",
        format!("<polycomConfig voIpProt.SIP.local.port=\"{port}\" up.welcomeText=\"v1\"/>\n")
            .as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        file.to_str().expect("path"),
    ]);
    let secret = write_file(server.dir.path(), "line-secret", LINE_SECRET.as_bytes());
    let secret = format!("file:{}", secret.to_str().expect("path"));
    for mac in macs {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--sip-server",
            "sip.example.com",
            "--sip-user",
            LINE_USER,
            "--sip-password",
            &secret,
        ]);
    }
    creds
}

/// A phone at `ip` that enrols (its own credential) and so proves its address.
fn enrolled(server: &ZServer, mac: &str, ip: IpAddr, creds: &(String, String)) -> SimPhone {
    let mut phone = SimPhone::new(mac, &server.device.to_string(), &creds.0, &creds.1).bind(ip);
    assert_eq!(phone.boot_until_stable(6), Boot::Configured, "{mac}");
    assert_eq!(phone.user(), mac, "{mac} uses its own credential");
    phone
}

fn report(server: &ZServer, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["device"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&server.cli_ok(&all)).expect("json report")
}

fn device<'a>(report: &'a serde_json::Value, mac: &str) -> &'a serde_json::Value {
    report["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mac"] == mac)
        .expect("device in the report")
}

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x5100 + i)
}

fn have_sipp() -> bool {
    require(
        have("sipp"),
        "sipp not installed (apt-get install sip-tester)",
    )
}

/// SIPp as the UAS of `scenario` on `ip:port`, for one call, logging every message.
struct Sipp {
    child: Child,
    log: PathBuf,
}

impl Sipp {
    fn start(dir: &Path, scenario: &str, ip: IpAddr, port: u16) -> Sipp {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sip")
            .join(scenario);
        let log = dir.join(format!("{scenario}.log"));
        let child = Command::new("sipp")
            .args([
                "-sf",
                fixture.to_str().expect("path"),
                "-i",
                &ip.to_string(),
                "-p",
            ])
            .arg(port.to_string())
            .args([
                "-m",
                "1",
                "-timeout",
                "20s",
                "-timeout_error",
                "-nostdin",
                "-trace_msg",
                "-message_file",
            ])
            .arg(&log)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sipp");
        // SIPp binds its socket shortly after it starts.
        std::thread::sleep(Duration::from_millis(400));
        Sipp { child, log }
    }

    /// Waits for SIPp to end: whether every call succeeded, and its message log.
    fn finish(self) -> (bool, String) {
        let out = self.child.wait_with_output().expect("sipp ends");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let why = format!(
            "{}\n{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), why)
    }
}

#[test]
fn sip_wire_options_and_check_sync_reach_sipp_well_formed() {
    if !have_sipp() {
        return;
    }
    let server = sip_server("");
    let ip: IpAddr = "127.0.0.21".parse().expect("ip");
    let port = free_port(ip);
    let m = mac(1);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, ip, &creds);

    let sipp = Sipp::start(server.dir.path(), "options_uas.xml", ip, port);
    let r = report(&server, &["sip-ping", &m]);
    let d = device(&r, &m);
    assert_eq!(d["result"], "answered", "{r}");
    assert_eq!(d["status"], 200, "{r}");
    assert_eq!(
        d["target"],
        format!("{ip}:{port}"),
        "the proven address and the effective port"
    );
    assert_eq!(d["origin"], "proven");
    let (ok, log) = sipp.finish();
    assert!(ok, "SIPp's checks failed:\n{log}");

    let sipp = Sipp::start(server.dir.path(), "check_sync_uas.xml", ip, port);
    let r = report(&server, &["apply-now", &m]);
    assert_eq!(device(&r, &m)["result"], "answered", "{r}");
    let (ok, log) = sipp.finish();
    assert!(ok, "SIPp's checks of the NOTIFY failed:\n{log}");
    assert!(log.contains("NOTIFY sip:1001@"), "{log}");
    assert!(log.contains("Event: check-sync"), "{log}");
    // Via's sent-by is the sender's real address, not 0.0.0.0.
    assert!(log.contains("Via: SIP/2.0/UDP 127.0.0.1:"), "{log}");
    let audit = server.cli_ok(&["audit"]);
    assert!(audit.contains("device.apply-now"), "{audit}");
}

#[test]
fn sip_wire_a_digest_challenge_is_answered_with_the_line_credentials() {
    if !have_sipp() {
        return;
    }
    let server = sip_server("");
    let ip: IpAddr = "127.0.0.22".parse().expect("ip");
    let port = free_port(ip);
    let m = mac(2);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, ip, &creds);
    let sipp = Sipp::start(server.dir.path(), "digest_uas.xml", ip, port);
    let r = report(&server, &["apply-now", &m]);
    assert_eq!(device(&r, &m)["result"], "answered", "{r}");
    assert_eq!(device(&r, &m)["status"], 200, "{r}");
    let (ok, log) = sipp.finish();
    assert!(ok, "SIPp's verifyauth refused the answer:\n{log}");
    // Recompute the response from the logged Authorization.
    let auth = log
        .lines()
        .find_map(|l| l.strip_prefix("Authorization: "))
        .expect("an Authorization header");
    let get = |k: &str| {
        auth.split(',')
            .find_map(|p| {
                let (n, v) = p.trim().trim_start_matches("Digest ").split_once('=')?;
                (n.trim() == k).then(|| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_default()
    };
    let md5 = crate::sim::digest::md5_hex;
    let ha1 = md5(&format!("{LINE_USER}:PolycomSPIP:{LINE_SECRET}"));
    let ha2 = md5(&format!("NOTIFY:{}", get("uri")));
    let want = md5(&format!(
        "{ha1}:sippnonce42:{}:{}:auth:{ha2}",
        get("nc"),
        get("cnonce")
    ));
    assert_eq!(get("response"), want, "{auth}");
    assert_eq!(get("qop"), "auth");
    // The line's password never appears in what the CLI printed or logged.
    assert!(!r.to_string().contains(LINE_SECRET));
    assert!(!server.output.lock().expect("output").contains(LINE_SECRET));
}

/// A plain UDP socket where the phone should be: reads every request, answers the
/// `answer_at`-th copy (never, with `None`), and counts what arrived.
fn counting_socket(
    ip: IpAddr,
    port: u16,
    answer_at: Option<usize>,
) -> std::thread::JoinHandle<Vec<Instant>> {
    let s = UdpSocket::bind((ip, port)).expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(2500)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut at = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            at.push(Instant::now());
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            if Some(at.len()) == answer_at {
                let h = |name: &str| {
                    req.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .unwrap_or("")
                        .to_string()
                };
                let out = format!(
                    "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=x\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                    h("Via"),
                    h("From"),
                    h("To"),
                    h("Call-ID"),
                    h("CSeq")
                );
                s.send_to(out.as_bytes(), from).expect("send");
            }
        }
        at
    })
}

#[test]
fn sip_wire_retransmissions_stop_on_a_final_response_and_give_up_after_timer_f() {
    let server = sip_server("");
    let ip: IpAddr = "127.0.0.23".parse().expect("ip");
    let port = free_port(ip);
    let m = mac(3);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, ip, &creds);

    // Answered on the third copy: nothing more arrives after it.
    let h = counting_socket(ip, port, Some(3));
    let r = report(&server, &["sip-ping", &m]);
    assert_eq!(device(&r, &m)["result"], "answered", "{r}");
    let at = h.join().expect("socket");
    assert_eq!(at.len(), 3, "retransmissions stop at the final response");

    // Never answered: retransmitted on timer E (20, 40, 80, then every 160 ms) and given up
    // at timer F (64 × 20 ms).
    let h = counting_socket(ip, port, None);
    let t = Instant::now();
    let r = report(&server, &["sip-ping", &m]);
    let d = device(&r, &m);
    assert_eq!(d["result"], "unreachable", "{r}");
    assert!(
        d["detail"].as_str().unwrap_or("").contains("timer F"),
        "{r}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(1280),
        "{:?}",
        t.elapsed()
    );
    let at = h.join().expect("socket");
    // Fewer on a loaded machine, where sleeps overshoot; never more.
    assert!(
        (6..=12).contains(&at.len()),
        "1 send and about 10 retransmissions: {}",
        at.len()
    );
    let span = at[at.len() - 1] - at[0];
    assert!(
        span < Duration::from_millis(2000) && span > Duration::from_millis(900),
        "{span:?}"
    );
}

#[test]
fn sip_an_address_not_proven_is_never_sent_to() {
    let server = sip_server("");
    let port = free_port("127.0.0.24".parse().expect("ip"));
    let (lonely, victim) = (mac(4), mac(5));
    let creds = setup(&server, port, &[lonely.clone(), victim.clone()]);
    // No enrolment windows: a phone with the account credential proves nothing.
    server.cli_ok(&["enrol", "close", "--yes"]);
    let mut phone = SimPhone::new(&lonely, &server.device.to_string(), &creds.0, &creds.1)
        .bind("127.0.0.24".parse().expect("ip"));
    phone.boot_until_stable(4);
    assert_eq!(
        phone.user(),
        creds.0,
        "it still uses the account credential"
    );
    let ear = SipEar::listen(
        SocketAddr::new("127.0.0.24".parse().expect("ip"), port),
        Validation::None,
    )
    .expect("listen");
    let r = report(&server, &["apply-now", &lonely]);
    let d = device(&r, &lonely);
    assert_eq!(d["result"], "not sent", "{r}");
    assert_eq!(d["detail"], "no proven address", "{r}");
    assert!(
        ear.heard.lock().expect("heard").is_empty(),
        "nothing reached it"
    );

    // The victim enrols from .25; a stranger with the account credential naming its MAC
    // from .26 does not move the target.
    server.cli_ok(&["enrol", "open", "--minutes", "10", "--mac", &victim]);
    enrolled(&server, &victim, "127.0.0.25".parse().expect("ip"), &creds);
    let mut stranger = Phone::new(server.device, &victim, UA_VVX500_APP, &creds.0, &creds.1)
        .bind("127.0.0.26".parse().expect("ip"));
    for _ in 0..3 {
        stranger.get(&format!("/{victim}.cfg"));
        stranger.get(&format!("/{victim}-device.cfg"));
    }
    let stranger_ear = SipEar::listen(
        SocketAddr::new("127.0.0.26".parse().expect("ip"), port),
        Validation::None,
    )
    .expect("listen");
    let r = report(&server, &["sip-ping", &victim]);
    let d = device(&r, &victim);
    assert_eq!(d["target"], format!("127.0.0.25:{port}"), "{r}");
    assert_eq!(d["origin"], "proven");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        stranger_ear.heard.lock().expect("heard").is_empty(),
        "the stranger got nothing"
    );
}

#[test]
fn sip_bad_input_outside_networks_and_bad_settings_are_refused_by_name() {
    let server = sip_server("");
    let port = free_port("127.0.0.27".parse().expect("ip"));
    let m = mac(6);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, "127.0.0.27".parse().expect("ip"), &creds);
    // An admin's fallback outside the device networks is refused, naming the field.
    let err = server.cli_err(&["device", "sip-address", &m, "192.0.2.7"]);
    assert!(
        err.contains("address") && err.contains("sip.networks"),
        "{err}"
    );
    let err = server.cli_err(&["device", "sip-address", &m, "not-an-ip"]);
    assert!(err.contains("address"), "{err}");
    server.cli_ok(&["device", "sip-address", &m, "127.0.0.28:5070"]);
    let err = server.cli_err(&["device", "apply-now"]);
    assert!(err.contains("name devices"), "{err}");
    let err = server.cli_err(&["device", "apply-now", "nonsense"]);
    assert!(err.contains("nonsense"), "{err}");

    // The same device with networks that leave loopback out: refused, nothing sent.
    let cfg = write_file(
        server.dir.path(),
        "narrow.toml",
        std::fs::read_to_string(&server.config)
            .expect("config")
            .replace(
                "sip.networks = [\"127.0.0.0/8\"]",
                "sip.networks = [\"10.0.0.0/8\"]",
            )
            .as_bytes(),
    );
    let out = cli_with_config(&cfg, &["device", "apply-now", &m, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let d = device(&r, &m);
    assert_eq!(d["result"], "not sent", "{r}");
    assert!(
        d["detail"]
            .as_str()
            .unwrap_or("")
            .contains("outside the configured device networks"),
        "{r}"
    );

    // check-config names each bad [sip] key.
    let bad = write_file(
        server.dir.path(),
        "bad.toml",
        b"[sip]\nenabled = true\nnetworks = [\"10.0.0.0/33\"]\nrate_per_sec = 0\nt1_ms = 0\nreboot_share_percent = 500\n",
    );
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    for key in [
        "sip.networks[0]",
        "sip.rate_per_sec",
        "sip.t1_ms",
        "sip.reboot_share_percent",
    ] {
        assert!(text.contains(key), "{key} not named: {text}");
    }
    let typo = write_file(server.dir.path(), "typo.toml", b"[sip]\nwaves = 3\n");
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&typo)
        .output()
        .expect("check-config");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sip.waves"),
        "{out:?}"
    );
    // Off by default: apply-now says which key turns it on.
    let off = write_file(
        server.dir.path(),
        "off.toml",
        std::fs::read_to_string(&server.config)
            .expect("config")
            .replace("sip.enabled = true", "sip.enabled = false")
            .as_bytes(),
    );
    let out = cli_with_config(&off, &["device", "apply-now", &m]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sip.enabled"));
}

/// `n` phones, each enrolled from its own loopback address 127.0.1.x; the first
/// `listening` of them listen for SIP there.
fn fleet(
    server: &ZServer,
    n: usize,
    first: usize,
) -> (u16, Vec<String>, Vec<SimPhone>, (String, String)) {
    let ip = |i: usize| -> IpAddr { format!("127.0.1.{}", i + 1).parse().expect("ip") };
    let port = free_port(ip(0));
    let macs: Vec<String> = (0..n).map(|i| mac(first + i)).collect();
    let creds = setup(server, port, &macs);
    let phones = macs
        .iter()
        .enumerate()
        .map(|(i, m)| enrolled(server, m, ip(i), &creds))
        .collect();
    (port, macs, phones, creds)
}

#[test]
fn sip_behaviour_a_policy_change_applied_now_reaches_listening_phones_and_waits_for_the_rest() {
    let server = sip_server("");
    let (n, deaf) = (50, 10);
    let (port, macs, phones, _) = fleet(&server, n, 100);
    server.cli_ok(&["policy", "set", "account", "up.welcomeText", "v2"]);
    // Each listening phone waits for check-sync and then fetches its configuration.
    let mut handles = Vec::new();
    let mut unreachable = Vec::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        if i >= n - deaf {
            unreachable.push(phone);
            continue;
        }
        let addr = SocketAddr::new(format!("127.0.1.{}", i + 1).parse().expect("ip"), port);
        handles.push(std::thread::spawn(move || {
            let ear = SipEar::listen(addr, Validation::None).expect("listen");
            let boot = phone.on_check_sync(&ear, Duration::from_secs(30));
            assert!(
                ear.malformed.lock().expect("m").is_empty(),
                "{:?}",
                ear.malformed
            );
            (phone, boot)
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let token = user_with_token(&server, "ops", "admin", "");
    // A deaf phone polls just before the send, most often in the same second: that fetch
    // is not a re-poll (it once counted as one when judged to the second).
    unreachable[0].poll();
    let t = Instant::now();
    let r = api(
        &server,
        "POST",
        "/devices/apply-now",
        Some(&token),
        r#"{"account": true}"#,
    );
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = json(&r);
    assert_eq!(r["answered"], n - deaf, "{r}");
    assert_eq!(r["unreachable"], deaf, "{r}");
    assert_eq!(r["repolled"], n - deaf, "{r}");
    assert_eq!(
        r["restarts"], 0,
        "a policy on an application parameter restarts nothing: {r}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    eprintln!("apply-now to {n} phones ({deaf} unreachable): {took:?}");
    for h in handles {
        let (phone, boot) = h.join().expect("phone");
        assert!(boot.is_some(), "{} heard no check-sync", phone.mac);
        assert_eq!(
            phone.config.get("up.welcomeText").map(String::as_str),
            Some("v2"),
            "{}",
            phone.mac
        );
        let d = device(&r, &phone.mac);
        assert_eq!(d["changes"][0]["state"], "applied", "{d}");
    }
    for phone in unreachable.iter_mut() {
        let d = device(&r, &phone.mac);
        assert_eq!(d["result"], "unreachable", "{d}");
        assert_eq!(d["changes"][0]["state"], "waiting for next poll", "{d}");
        // Applied at its next poll.
        phone.poll();
        assert_eq!(
            phone.config.get("up.welcomeText").map(String::as_str),
            Some("v2")
        );
    }
    assert_eq!(macs.len(), n);
}

#[test]
fn sip_behaviour_a_rotation_is_counted_as_restarts_and_sent_in_waves_of_the_site_share() {
    let server = sip_server("sip.reboot_share_percent = 25\n");
    let (port, macs, phones, _) = fleet(&server, 4, 200);
    server.cli_ok(&["site", "add", "hq"]);
    let mut assign = vec!["site", "assign", "hq"];
    assign.extend(macs.iter().map(String::as_str));
    server.cli_ok(&assign);
    for m in &macs {
        server.cli_ok(&["enrol", "rotate", m, "--yes"]);
    }
    // Counted first: without confirmation nothing is sent.
    let ears: Vec<SipEar> = (0..4)
        .map(|i| {
            SipEar::listen(
                SocketAddr::new(format!("127.0.1.{}", i + 1).parse().expect("ip"), port),
                Validation::None,
            )
            .expect("listen")
        })
        .collect();
    let err = server.cli_err(&["device", "apply-now", "--site", "hq"]);
    assert!(
        err.contains("4 phone(s)") && err.contains("restarts"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        ears.iter().all(|e| e.heard.lock().expect("h").is_empty()),
        "sent without confirmation"
    );
    drop(ears);
    let mut handles = Vec::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        let addr = SocketAddr::new(format!("127.0.1.{}", i + 1).parse().expect("ip"), port);
        handles.push(std::thread::spawn(move || {
            let ear = SipEar::listen(addr, Validation::None).expect("listen");
            let heard_at = ear
                .check_sync(Duration::from_secs(30))
                .map(|_| Instant::now());
            // It fetches, adopts the new credential and restarts with it.
            let boot = phone.boot_until_stable(4);
            (phone, heard_at, boot)
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = report(&server, &["apply-now", "--site", "hq", "--yes"]);
    assert_eq!(r["restarts"], 4, "{r}");
    assert_eq!(
        r["waves"], 4,
        "25% of a 4-phone site: one restarting phone per wave: {r}"
    );
    let mut waves: Vec<u64> = macs
        .iter()
        .map(|m| device(&r, m)["wave"].as_u64().expect("wave"))
        .collect();
    waves.sort();
    assert_eq!(waves, vec![0, 1, 2, 3]);
    let mut heard: Vec<Instant> = Vec::new();
    for h in handles {
        let (phone, at, boot) = h.join().expect("phone");
        assert_eq!(boot, Boot::Configured, "{}", phone.mac);
        heard.push(at.expect("check-sync heard"));
        assert!(
            device(&r, &phone.mac)["restarts"][0]
                .as_str()
                .unwrap_or("")
                .contains("device.prov.password")
        );
    }
    heard.sort();
    for w in heard.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "waves a gap apart: {heard:?}"
        );
    }
}

#[test]
fn sip_a_flood_of_apply_now_requests_is_bounded_by_the_rate() {
    let server = sip_server("sip.rate_per_sec = 10\nsip.confirm_wait_secs = 0\n");
    let ip: IpAddr = "127.0.0.29".parse().expect("ip");
    let port = free_port(ip);
    let m = mac(7);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, ip, &creds);
    let ear = SipEar::listen(SocketAddr::new(ip, port), Validation::None).expect("listen");
    let token = user_with_token(&server, "ops", "admin", "");
    let body = format!("{{\"macs\": [\"{m}\"]}}");
    let t = Instant::now();
    // Twenty admins pressing the button at once: the server paces them together.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| api(&server, "POST", "/devices/apply-now", Some(&token), &body).status)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request"))
            .collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    let elapsed = t.elapsed();
    let n = ear.heard.lock().expect("heard").len();
    assert!(n >= 1, "sent at all");
    // At 10 per second, never more than the elapsed seconds allow (plus the first).
    let allowed = (elapsed.as_secs_f64() * 10.0).ceil() as usize + 1;
    assert!(n <= allowed, "{n} requests in {elapsed:?} at 10/s");
    let sent = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(n, sent, "one NOTIFY per apply-now");
    assert!(
        elapsed >= Duration::from_millis(((sent - 1) * 100) as u64),
        "{sent} sends took only {elapsed:?} at 10/s"
    );
}

#[test]
fn sip_console_and_api_apply_now_one_device_and_name_bad_input() {
    let server = sip_server("");
    let ip: IpAddr = "127.0.0.30".parse().expect("ip");
    let port = free_port(ip);
    let m = mac(8);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    let mut phone = enrolled(&server, &m, ip, &creds);
    let ear = SipEar::listen(SocketAddr::new(ip, port), Validation::None).expect("listen");

    // The console: the device page offers it, the page says where it goes, the form sends.
    let s = Session::admin(&server);
    let page = s.get(&format!("/devices/{m}")).text();
    assert!(page.contains(&format!("/devices/{m}/apply-now")), "{page}");
    assert!(
        page.contains("Proven address (SIP check-sync)") && page.contains("127.0.0.30"),
        "{page}"
    );
    let form = s.get(&format!("/devices/{m}/apply-now"));
    assert_eq!(form.status, 200, "{}", form.text());
    assert!(
        form.text().contains("127.0.0.30"),
        "the proven address: {}",
        form.text()
    );
    let waiter = std::thread::spawn(move || {
        let boot = phone.on_check_sync(&ear, Duration::from_secs(20));
        (phone, boot)
    });
    let done = s.post(&format!("/devices/{m}/apply-now"), &[]);
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.text().contains("answered"), "{}", done.text());
    let (phone, boot) = waiter.join().expect("phone");
    assert!(boot.is_some(), "{} heard no check-sync", phone.mac);
    assert!(done.text().contains("applied"), "{}", done.text());
    assert!(!done.text().contains(LINE_SECRET));

    // The API names what is wrong.
    let token = user_with_token(&server, "ops", "admin", "");
    for (body, status, field) in [
        ("{}", 422, "macs"),
        (r#"{"macs": ["0004f2000001"], "group": "x"}"#, 422, "body"),
        (r#"{"macs": ["nonsense"]}"#, 422, "devices"),
        (r#"{"group": "nowhere"}"#, 404, ""),
        (r#"{"macs": [], "colour": 1}"#, 422, "colour"),
    ] {
        let r = api(&server, "POST", "/devices/apply-now", Some(&token), body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(field), "{body}: {}", r.text());
    }
    let r = api(&server, "GET", "/devices/apply-now", Some(&token), "");
    assert_eq!(r.status, 405, "{}", r.text());
}

/// The apply-now benchmark (`scripts/bench-sip.sh`): `ZEROTOUCH_SIP_BENCH_N` devices
/// (default 1000), each with a proven address of its own on loopback (127.2.x.y, written
/// straight into the database as that many enrolled phones would leave it) and a UDP
/// listener there answering 200 at once. Prints the sends per second and the time until
/// every device answered.
#[test]
#[ignore = "benchmark: scripts/bench-sip.sh"]
fn sip_bench_apply_now_to_many_loopback_listeners() {
    let n: usize = std::env::var("ZEROTOUCH_SIP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rate: u32 = std::env::var("ZEROTOUCH_SIP_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let _ = rlimit::increase_nofile_limit(n as u64 + 4096);
    let server = sip_server(&format!(
        "sip.rate_per_sec = {rate}\nsip.confirm_wait_secs = 0\nsip.t1_ms = 500\n"
    ));
    let ip = |i: usize| -> IpAddr {
        format!("127.2.{}.{}", i / 250, i % 250 + 1)
            .parse()
            .expect("ip")
    };
    let port = free_port(ip(0));
    let file = write_file(
        server.dir.path(),
        "site.cfg",
        format!("<polycomConfig voIpProt.SIP.local.port=\"{port}\" reg.1.address=\"1001\"/>\n")
            .as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        file.to_str().expect("path"),
    ]);
    let macs: Vec<String> = (0..n).map(|i| format!("0004f3{i:06x}")).collect();
    for chunk in macs.chunks(1000) {
        let csv: String = chunk.iter().map(|m| format!("{m},,,office\n")).collect();
        let f = write_file(server.dir.path(), "bench.csv", csv.as_bytes());
        server.cli_ok(&["import", f.to_str().expect("path")]);
    }
    {
        let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
        db.busy_timeout(Duration::from_secs(10)).expect("busy");
        db.execute_batch("BEGIN").expect("begin");
        for (i, m) in macs.iter().enumerate() {
            db.execute(
                "INSERT INTO device_sip (device_id, proven_ip, proven_at)
                 SELECT id, ?2, 0 FROM devices WHERE mac = ?1",
                rusqlite::params![m, ip(i).to_string()],
            )
            .expect("proven address");
        }
        db.execute_batch("COMMIT").expect("commit");
    }
    // Listeners: a few threads, each answering its share of the sockets at once.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|i| {
            let s = UdpSocket::bind((ip(i), port)).expect("bind listener");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let threads = 4;
    let mut shares: Vec<Vec<UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in sockets.into_iter().enumerate() {
        shares[i % threads].push(s);
    }
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (answered, stop) = (answered.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut idle = true;
                    for s in &share {
                        while let Ok((len, from)) = s.recv_from(&mut buf) {
                            idle = false;
                            let req = String::from_utf8_lossy(&buf[..len]).to_string();
                            let h = |name: &str| {
                                req.lines()
                                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                                    .unwrap_or("")
                                    .to_string()
                            };
                            let out = format!(
                                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                                h("Via"), h("From"), h("To"), h("Call-ID"), h("CSeq")
                            );
                            let _ = s.send_to(out.as_bytes(), from);
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    let out = server.cli(&[
        "device",
        "apply-now",
        "--account",
        "default",
        "--yes",
        "--json",
    ]);
    let took = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().expect("listener");
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let timing = stderr
        .lines()
        .find(|l| l.contains("planned in"))
        .unwrap_or("")
        .to_string();
    eprintln!(
        "SIP bench: {n} devices, rate {rate}/s: answered {} (listeners counted {}), unreachable {}, \
         not sent {}; apply-now took {took:.2?} in all ({:.0} devices/s end to end): planning {} ms, \
         sending until all answered {} ms ({:.0} sends/s) {timing}",
        r["answered"],
        answered.load(std::sync::atomic::Ordering::Relaxed),
        r["unreachable"],
        r["not_sent"],
        n as f64 / took.as_secs_f64(),
        r["planned_ms"],
        r["sent_ms"],
        n as f64 * 1000.0 / r["sent_ms"].as_f64().unwrap_or(1.0).max(1.0)
    );
    assert_eq!(r["answered"], n, "{}", r["devices"][0]);
}

#[test]
fn sip_behaviour_with_request_validation_apply_now_answers_the_challenge_and_a_bare_notify_is_refused()
 {
    let server = sip_server("");
    let n = 3;
    let (port, macs, mut phones, _) = fleet(&server, n, 300);
    let ip = |i: usize| -> IpAddr { format!("127.0.1.{}", i + 1).parse().expect("ip") };
    let out = server.cli_ok(&["account", "sip", "--validation", "on"]);
    assert!(out.contains("the PBX must authenticate"), "{out}");
    server.cli_ok(&["policy", "set", "account", "up.welcomeText", "v3"]);
    for phone in phones.iter_mut() {
        phone.poll();
        assert_eq!(
            phone
                .config
                .get("voIpProt.SIP.requestValidation.1.method")
                .map(String::as_str),
            Some("digest"),
            "{}",
            phone.mac
        );
        assert!(
            matches!(Validation::of(&phone.config), Validation::Digest { ref user, .. } if user == LINE_USER),
            "{}: {:?}",
            phone.mac,
            phone.config
        );
    }
    server.cli_ok(&["policy", "set", "account", "up.welcomeText", "v4"]);

    // A NOTIFY without credentials, from anyone: challenged, never acted on.
    {
        let ear = SipEar::listen(
            SocketAddr::new(ip(0), port),
            Validation::of(&phones[0].config),
        )
        .expect("listen");
        let sock = UdpSocket::bind((IpAddr::from([127, 0, 0, 1]), 0)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let from = sock.local_addr().expect("addr");
        let to = SocketAddr::new(ip(0), port);
        let req = format!(
            "NOTIFY sip:{LINE_USER}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKbare1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:x@{from}>;tag=1\r\nTo: <sip:{LINE_USER}@{to}>\r\n\
             Call-ID: bare-1\r\nCSeq: 1 NOTIFY\r\nContact: <sip:x@{from}>\r\nEvent: check-sync\r\n\
             Content-Length: 0\r\n\r\n"
        );
        sock.send_to(req.as_bytes(), to).expect("send");
        let mut buf = [0u8; 4096];
        let (len, _) = sock.recv_from(&mut buf).expect("an answer");
        let answer = String::from_utf8_lossy(&buf[..len]).to_string();
        assert!(answer.starts_with("SIP/2.0 401"), "{answer}");
        assert!(answer.contains("realm=\"PolycomSPIP\""), "{answer}");
        assert!(
            ear.check_sync(Duration::from_millis(300)).is_none(),
            "an unauthenticated check-sync is not acted on"
        );
    }

    // Apply now: each phone challenges, zerotouch answers with the line's credentials.
    let mut handles = Vec::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        let addr = SocketAddr::new(ip(i), port);
        let validation = Validation::of(&phone.config);
        handles.push(std::thread::spawn(move || {
            let ear = SipEar::listen(addr, validation).expect("listen");
            let boot = phone.on_check_sync(&ear, Duration::from_secs(30));
            (phone, boot)
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = report(&server, &["apply-now", "--account", "default"]);
    assert_eq!(r["answered"], n, "{r}");
    assert_eq!(r["repolled"], n, "{r}");
    for m in &macs {
        assert_eq!(device(&r, m)["status"], 200, "{r}");
    }
    for h in handles {
        let (phone, boot) = h.join().expect("phone");
        assert!(boot.is_some(), "{} accepted no check-sync", phone.mac);
        assert_eq!(
            phone.config.get("up.welcomeText").map(String::as_str),
            Some("v4"),
            "{}",
            phone.mac
        );
    }
}

#[test]
fn sip_behaviour_apply_after_change_sends_a_policy_change_now_but_never_a_restart() {
    let server = sip_server("");
    let n = 3;
    let (port, macs, phones, _) = fleet(&server, n, 400);
    let ip = |i: usize| -> IpAddr { format!("127.0.1.{}", i + 1).parse().expect("ip") };
    let token = user_with_token(&server, "ops", "admin", "");
    // By default a change waits for the next poll: nothing is sent.
    let r = api(
        &server,
        "PUT",
        "/accounts/default/policies",
        Some(&token),
        r#"{"scope": "account", "parameter": "up.welcomeText", "value": "v5"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["after_change"]["mode"], "waiting for next poll");

    let r = api(
        &server,
        "PUT",
        "/accounts/default/sip",
        Some(&token),
        r#"{"apply_after_change": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["sip"]["apply_after_change"], true, "{}", r.text());
    let audit = server.cli_ok(&["audit", "--json"]);
    assert!(audit.contains("account.set-sip"), "{audit}");

    let mut handles = Vec::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        let addr = SocketAddr::new(ip(i), port);
        handles.push(std::thread::spawn(move || {
            let ear = SipEar::listen(addr, Validation::None).expect("listen");
            let boot = phone.on_check_sync(&ear, Duration::from_secs(20));
            // Then a change that restarts phones: never sent automatically.
            let restart = ear.check_sync(Duration::from_secs(4));
            (phone, boot, restart)
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = api(
        &server,
        "PUT",
        "/accounts/default/policies",
        Some(&token),
        r#"{"scope": "account", "parameter": "up.welcomeText", "value": "v6"}"#,
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the request does not wait for the sends"
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after = &json(&r)["after_change"];
    assert_eq!(after["mode"], "applying now", "{after}");
    assert_eq!(after["sending"], n, "{after}");
    std::thread::sleep(Duration::from_secs(2));
    let out = server.cli_ok(&[
        "policy",
        "set",
        "account",
        "device.syslog.serverName",
        "syslog.example.com",
    ]);
    assert!(out.contains("waiting for next poll"), "{out}");
    for m in &macs {
        assert!(
            out.contains(&format!("{m}: the change restarts it")),
            "{m}: {out}"
        );
    }
    for h in handles {
        let (phone, boot, restart) = h.join().expect("phone");
        assert!(boot.is_some(), "{} heard no check-sync", phone.mac);
        assert_eq!(
            phone.config.get("up.welcomeText").map(String::as_str),
            Some("v6"),
            "{}",
            phone.mac
        );
        assert!(
            restart.is_none(),
            "{}: a restart was sent unasked",
            phone.mac
        );
    }
}

fn inventory_of(server: &ZServer) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["inventory", "--json"])).expect("inventory json")
}

fn online_of<'a>(inv: &'a serde_json::Value, mac: &str) -> &'a serde_json::Value {
    &inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mac"] == mac)
        .expect("device in the inventory")["online"]
}

#[test]
fn sip_online_state_shows_the_evidence_and_the_background_check_keeps_it_current() {
    let server = ZServer::start_with_clock(&sip_text(""));
    let (port, macs, _phones, _) = fleet(&server, 2, 500);
    let ip = |i: usize| -> IpAddr { format!("127.0.1.{}", i + 1).parse().expect("ip") };
    // The access recorder writes activity a moment later.
    std::thread::sleep(Duration::from_secs(1));
    let inv = inventory_of(&server);
    for m in &macs {
        let o = online_of(&inv, m);
        assert_eq!(o["online"], true, "{o}");
        assert!(
            o["evidence"].as_str().expect("e").starts_with("polled "),
            "{o}"
        );
    }
    assert_eq!(inv["online"], 2, "{inv}");
    let text = server.cli_ok(&["inventory"]);
    assert!(text.contains("online: 2 online, 0 offline"), "{text}");

    // Two days without a poll: offline, with the last evidence.
    server.advance_days(2);
    let inv = inventory_of(&server);
    for m in &macs {
        let o = online_of(&inv, m);
        assert_eq!(o["online"], false, "{o}");
        assert!(
            o["evidence"]
                .as_str()
                .expect("e")
                .starts_with("no evidence since "),
            "{o}"
        );
    }
    // The check is off by default: nothing is asked.
    let ear = SipEar::listen(SocketAddr::new(ip(0), port), Validation::None).expect("listen");
    std::thread::sleep(Duration::from_secs(3));
    assert!(ear.heard.lock().expect("heard").is_empty(), "check is off");

    // On: the phone that listens answers OPTIONS and is online again; the deaf one is not.
    server.cli_ok(&["account", "sip", "--online-check", "on"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let inv = inventory_of(&server);
        let o = online_of(&inv, &macs[0]).clone();
        if o["online"] == true {
            assert!(
                o["evidence"]
                    .as_str()
                    .expect("e")
                    .starts_with("answered OPTIONS "),
                "{o}"
            );
            assert_eq!(online_of(&inv, &macs[1])["online"], false, "{inv}");
            assert_eq!(inv["offline"], 1, "{inv}");
            break;
        }
        assert!(Instant::now() < deadline, "never online again: {o}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let heard = ear.heard.lock().expect("heard").clone();
    assert!(heard.iter().all(|r| r.starts_with("OPTIONS ")), "{heard:?}");
    assert!(ear.malformed.lock().expect("m").is_empty());
    // Asked at most once per interval: no further OPTIONS within the next rounds.
    let n = heard.len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        ear.heard.lock().expect("heard").len(),
        n,
        "asked again too soon"
    );
}

#[test]
fn sip_account_settings_are_set_from_the_console_and_the_cli_and_say_what_validation_costs() {
    let server = sip_server("");
    let show = server.cli_ok(&["account", "show"]);
    assert!(
        show.contains("off: phones accept check-sync from any host"),
        "{show}"
    );
    assert!(show.contains("wait for the next poll"), "{show}");
    let s = Session::admin(&server);
    let page = s.get("/accounts/default").text();
    assert!(page.contains("Apply now (SIP check-sync)"), "{page}");
    assert!(!page.contains("Request validation is on"), "{page}");
    let r = s.post(
        "/accounts/default/sip",
        &[("validation", "on"), ("apply_after_change", "on")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get("/accounts/default").text();
    assert!(
        page.contains("check-sync from the PBX now needs the PBX to authenticate"),
        "{page}"
    );
    assert!(
        page.contains("phones with no registered line cannot be reached"),
        "{page}"
    );
    let show = server.cli_ok(&["account", "show"]);
    assert!(show.contains("the PBX must authenticate too"), "{show}");
    assert!(show.contains("apply now (phones it restarts"), "{show}");
    let err = server.cli_err(&["account", "sip", "--apply-after-change", "soon"]);
    assert!(err.contains("--apply-after-change"), "{err}");
    let out = server.cli_ok(&["account", "sip", "--validation", "off"]);
    assert!(out.contains("off: phones accept check-sync"), "{out}");
}

#[test]
fn sip_behaviour_apply_after_change_sends_a_line_change_through_the_api() {
    let server = sip_server("");
    let (port, macs, mut phones, _) = fleet(&server, 1, 600);
    server.cli_ok(&["account", "sip", "--apply-after-change", "now"]);
    let token = user_with_token(&server, "ops", "admin", "");
    let addr = SocketAddr::new("127.0.1.1".parse().expect("ip"), port);
    let mut phone = phones.remove(0);
    let h = std::thread::spawn(move || {
        let ear = SipEar::listen(addr, Validation::None).expect("listen");
        let boot = phone.on_check_sync(&ear, Duration::from_secs(20));
        (phone, boot)
    });
    std::thread::sleep(Duration::from_millis(300));
    let r = api(
        &server,
        "PUT",
        &format!("/devices/{}/lines/1", macs[0]),
        Some(&token),
        r#"{"line_label": "Front desk"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (phone, boot) = h.join().expect("phone");
    assert!(boot.is_some(), "no check-sync after the line change");
    assert_eq!(
        phone.config.get("reg.1.label").map(String::as_str),
        Some("Front desk"),
        "{:?}",
        phone.config
    );
}

#[test]
fn sip_behaviour_apply_after_change_sends_line_changes_from_the_cli_and_the_console() {
    let server = sip_server("");
    let (port, macs, mut phones, _) = fleet(&server, 1, 600);
    server.cli_ok(&["account", "sip", "--apply-after-change", "now"]);
    let addr = SocketAddr::new("127.0.1.1".parse().expect("ip"), port);
    let mac = macs[0].clone();
    let mut phone = phones.remove(0);
    // The CLI: the command sends check-sync and waits for it before it ends.
    let ear = SipEar::listen(addr, Validation::None).expect("listen");
    let h = {
        let mac = mac.clone();
        let config = server.config.clone();
        std::thread::spawn(move || {
            cli_with_config(
                &config,
                &[
                    "device", "set-line", &mac, "--line", "1", "--label", "Lobby",
                ],
            )
        })
    };
    let boot = phone.on_check_sync(&ear, Duration::from_secs(20));
    let out = h.join().expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("after the change: applying now"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(boot.is_some(), "no check-sync after the CLI's line change");
    assert_eq!(
        phone.config.get("reg.1.label").map(String::as_str),
        Some("Lobby")
    );
    drop(ear);
    // The console: the notice says the phone is sent check-sync now.
    let s = Session::admin(&server);
    let h = std::thread::spawn(move || {
        let ear = SipEar::listen(addr, Validation::None).expect("listen");
        let boot = phone.on_check_sync(&ear, Duration::from_secs(20));
        (phone, boot)
    });
    std::thread::sleep(Duration::from_millis(300));
    let values = s.get(&format!("/devices/{mac}/values")).text();
    assert!(values.contains("l1.line_label"), "{values}");
    let r = s.post(
        &format!("/devices/{mac}/lines/1"),
        &[("l1.sip_user", "1000"), ("l1.line_label", "Reception")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        r.header("Location")
            .is_some_and(|l| l.contains("done=line-saved-applying")),
        "{:?}",
        r.headers
    );
    let (phone, boot) = h.join().expect("phone");
    assert!(
        boot.is_some(),
        "no check-sync after the console's line change"
    );
    assert_eq!(
        phone.config.get("reg.1.label").map(String::as_str),
        Some("Reception"),
        "{:?}",
        phone.config
    );
}

/// Through the PBX (`sip.pbx_command`): devices zerotouch cannot send to — here never seen,
/// so with no proven address — are reached by the admin's command, run per device with the
/// MAC and the line's SIP user and nothing else of the server (no password, no variable of
/// its environment); a failing run is reported with its exit code; a device with no SIP
/// line is not handed to the PBX. With `pbx_for = "all"` even an enrolled phone at a proven
/// address goes through the PBX, and no SIP packet reaches it.
#[test]
fn devices_zerotouch_cannot_reach_go_through_the_pbx_command() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("pbx.log");
    let script = write_file(
        dir.path(),
        "pbx-resync",
        format!(
            "#!/bin/sh\necho \"args=$1 $2 mac=$PROV_MAC tenant=$PROV_TENANT user=$PROV_SIP_USER event=$PROV_EVENT\" >> {log}\nenv | sort | tr '\\n' ' ' >> {log}\necho >> {log}\necho resync queued for $2\n[ \"$1\" = \"{failing}\" ] && exit 3\nexit 0\n",
            log = log.display(),
            failing = mac(2),
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let port = free_port(ip);
    let pbx = |pbx_for: &str| {
        format!(
            "sip.pbx_command = \"{}\"\nsip.pbx_for = \"{pbx_for}\"\nsip.confirm_wait_secs = 1\n",
            script.display()
        )
    };
    let server = sip_server(&pbx("unreachable"));
    let macs: Vec<String> = (1..=2).map(mac).collect();
    setup(&server, port, &macs);
    // A device without a SIP line: the PBX has no registration for it.
    server.cli_ok(&["device", "add", &mac(3), "--profile", "office"]);
    let out = server.cli(&[
        "device",
        "apply-now",
        &mac(1),
        &mac(2),
        &mac(3),
        "--yes",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    // Each run is kept with its exit code in the audit entry.
    let audit = server.cli_ok(&["audit", "--json", "--limit", "20"]);
    assert!(
        audit.contains("device.apply-now") && audit.contains("exit code 3"),
        "{audit}"
    );
    let one = device(&r, &mac(1));
    assert_eq!(
        (one["result"].as_str(), one["origin"].as_str()),
        (Some("sent via PBX"), Some("pbx")),
        "{r}"
    );
    assert!(
        one["detail"]
            .as_str()
            .expect("detail")
            .contains("exit code 0")
    );
    assert!(
        one["detail"]
            .as_str()
            .expect("detail")
            .contains("resync queued for 1001")
    );
    let two = device(&r, &mac(2));
    assert_eq!(two["result"], "failed", "{r}");
    assert!(
        two["detail"]
            .as_str()
            .expect("detail")
            .contains("exit code 3"),
        "{r}"
    );
    let three = device(&r, &mac(3));
    assert_eq!(three["result"], "not sent", "{r}");
    assert!(
        three["detail"]
            .as_str()
            .expect("detail")
            .contains("no SIP line"),
        "{r}"
    );
    assert_eq!(
        (r["sent"].as_u64(), r["via_pbx"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    let logged = std::fs::read_to_string(&log).expect("the command ran");
    assert!(
        logged.contains(&format!(
            "args={m} 1001 mac={m} tenant=default user=1001 event=check-sync",
            m = mac(1)
        )),
        "{logged}"
    );
    assert_eq!(
        logged.matches("args=").count(),
        2,
        "once per device with a line: {logged}"
    );
    // A clean environment: the line's password and the server's own variables stay out.
    assert!(!logged.contains(LINE_SECRET), "{logged}");
    assert!(
        !logged.contains("HOME=") && !logged.contains("ZEROTOUCH"),
        "{logged}"
    );
    drop(server);

    // Every device through the PBX: an enrolled phone at its proven address gets no packet.
    let server = sip_server(&pbx("all"));
    let m = mac(1);
    let creds = setup(&server, port, std::slice::from_ref(&m));
    enrolled(&server, &m, ip, &creds);
    let listener = counting_socket(ip, port, Some(1));
    let r = report(&server, &["apply-now", &m, "--yes"]);
    assert_eq!(device(&r, &m)["origin"], "pbx", "{r}");
    assert!(
        listener.join().expect("listener").is_empty(),
        "no SIP packet reached the phone"
    );
}
