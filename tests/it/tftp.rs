//! The TFTP listener (`[tftp]`, `src/tftp/`, `http/device/tftp.rs`) with the real Debian
//! client (`tftp` from tftp-hpa) where it can say it, and raw UDP where it cannot (options,
//! write requests, bad packets, floods, other source addresses): a phone's boot, no secret
//! ever in a TFTP answer, traversal, out-of-range options, the source allowlist, a bounded
//! flood, and a 50 MB image whose block numbers roll over.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{UA_VVX500_APP, ZServer, have, require};

const MAC: &str = "0004f2a1b2c3";
const UNKNOWN: &str = "0004f2000777";
const SIP_SECRET: &str = "Line-Secret-1";

/// A server with TFTP on a loopback port, answering 127.0.0.1 only (127.0.0.2 is a stranger).
fn start(extra: &str) -> (ZServer, SocketAddr) {
    let server = ZServer::start_with(&format!(
        "tftp.listen = \"127.0.0.1:0\"\ntftp.allow = [\"127.0.0.1/32\"]\n{extra}"
    ));
    let out = server.output.lock().expect("lock").clone();
    let addr = out
        .lines()
        .find_map(|l| l.split("TFTP listening on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no TFTP line in:\n{out}"));
    (server, addr)
}

/// `tftp 127.0.0.1 PORT -m binary -c get NAME OUT`: the file's bytes, or the client's
/// message.
fn client_get(addr: SocketAddr, name: &str, dir: &Path) -> Result<Vec<u8>, String> {
    let out_path = dir.join("fetched");
    let _ = std::fs::remove_file(&out_path);
    let out = Command::new("tftp")
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .args(["-m", "binary", "-c", "get", name])
        .arg(&out_path)
        .output()
        .expect("run tftp");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if said.contains("Error code") || said.contains("Transfer timed out") {
        return Err(said);
    }
    std::fs::read(&out_path).map_err(|e| format!("{e}: {said}"))
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for f in [name, "octet"] {
        p.extend_from_slice(f.as_bytes());
        p.push(0);
    }
    for (k, v) in options {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

/// A UDP client on `local`, with a short receive timeout.
fn udp(local: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{local}:0")).expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    s
}

/// The next datagram and where it came from, if any arrives in time.
fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some((buf, from))
}

/// The code of an error packet.
fn error_code(p: &[u8]) -> Option<u16> {
    (p.len() >= 4 && p[..2] == [0, 5]).then(|| u16::from_be_bytes([p[2], p[3]]))
}

/// A whole read over raw UDP: the options acknowledged (if any) and the bytes.
fn raw_read(
    addr: SocketAddr,
    name: &str,
    options: &[(&str, &str)],
) -> Result<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let s = udp("127.0.0.1");
    s.send_to(&rrq(name, options), addr).expect("send");
    let mut data = Vec::new();
    let mut oack = Vec::new();
    let mut expected: u16 = 1;
    loop {
        let (p, from) = recv(&s).ok_or_else(|| b"no answer".to_vec())?;
        match (p[0], p[1]) {
            (0, 6) => {
                oack = p[2..].to_vec();
                s.send_to(&[0, 4, 0, 0], from).expect("ack 0");
            }
            (0, 3) => {
                let block = u16::from_be_bytes([p[2], p[3]]);
                s.send_to(&[0, 4, p[2], p[3]], from).expect("ack");
                if block != expected {
                    continue;
                }
                data.extend_from_slice(&p[4..]);
                let blksize = options
                    .iter()
                    .find(|(k, _)| *k == "blksize")
                    .map_or(512, |(_, v)| v.parse::<usize>().expect("n"));
                if p.len() - 4 < blksize {
                    return Ok((oack, data));
                }
                expected = expected.wrapping_add(1);
            }
            _ => return Err(p),
        }
    }
}

fn add_device(server: &ZServer) {
    server.set_credentials();
    let profile = server.dir.path().join("site.cfg");
    std::fs::write(
        &profile,
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<polycomConfig reg.1.server.1.address=\"sip.example.com\"/>\n",
    )
    .expect("profile");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        profile.to_str().expect("path"),
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "1001",
        "--sip-password",
        SIP_SECRET,
    ]);
}

/// The device's own credential: delivered when it fetches its file over HTTP inside its
/// enrolment window with the account credential.
fn own_credential(server: &ZServer) -> String {
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    let over_http = phone.get(&format!("/{MAC}-device.cfg"));
    assert_eq!(over_http.status, 200, "{}", over_http.text());
    let own = attr(&over_http.body, "device.prov.password")
        .expect("its own credential was delivered over HTTP");
    assert!(!own.is_empty());
    own
}

/// The value of an attribute in a file, if set.
fn attr(bytes: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split(&format!("{name}=\""))
        .nth(1)?
        .split('"')
        .next()
        .map(String::from)
}

fn write_image(server: &ZServer, version: &str, name: &str, bytes: &[u8]) {
    let dir = server.data_dir().join("firmware").join(version);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("image");
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_phone_boots_over_tftp_and_no_secret_is_ever_served() {
    if !require(have("tftp"), "the tftp client (apt-get install tftp-hpa)") {
        return;
    }
    let (server, addr) = start("");
    add_device(&server);
    let (_, account_password) = server.credentials();
    let own = own_credential(&server);
    let image = b"sip.ld test image bytes\n".repeat(100);
    write_image(&server, "5.9.8.1234", "sip.ld", &image);
    let tmp = tempfile::tempdir().expect("tmp");

    // An unknown phone's boot: the default master names its staging file, which it gets.
    let master = client_get(addr, "000000000000.cfg", tmp.path()).expect("master");
    let master = String::from_utf8(master).expect("utf8");
    assert!(master.contains("[PHONE_MAC_ADDRESS]-stage.cfg"), "{master}");
    let err = client_get(addr, &format!("{UNKNOWN}.cfg"), tmp.path()).expect_err("404 first");
    assert!(err.contains("Error code 1"), "{err}");
    let stage = client_get(addr, &format!("{UNKNOWN}-stage.cfg"), tmp.path()).expect("stage");
    assert!(contains(&stage, "prov.polling.enabled=\"1\""));
    let fw = client_get(addr, "firmware/5.9.8.1234/sip.ld", tmp.path()).expect("firmware");
    assert_eq!(fw, image);
    // The unknown MAC was noted as seen, as over HTTP.
    std::thread::sleep(Duration::from_millis(500));
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    let seen: i64 = db
        .query_row(
            "SELECT count(*) FROM devices WHERE mac = ?1 AND profile_id IS NULL",
            [UNKNOWN],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(seen, 1, "the unknown MAC is noted");

    // Every name a phone or a harvester could ask for: nothing carries a secret.
    let names = [
        format!("{MAC}.cfg"),
        format!("{MAC}-device.cfg"),
        format!("{MAC}-profile.cfg"),
        format!("{MAC}-tls-probe.cfg"),
        format!("{MAC}-stage.cfg"),
        format!("{MAC}-ztp.cfg"),
        format!("{MAC}-phone.cfg"),
        format!("{MAC}-web.cfg"),
        "000000000000.cfg".into(),
        "000000000000-directory.xml".into(),
        format!("/{MAC}-device.cfg"),
    ];
    for name in &names {
        let got = raw_read(addr, name, &[]);
        let bytes = match &got {
            Ok((_, b)) => b.clone(),
            Err(p) => p.clone(),
        };
        for secret in [SIP_SECRET, account_password.as_str(), own.as_str()] {
            assert!(!contains(&bytes, secret), "{name} carries a secret");
        }
        if name.contains("-device.cfg") || name.contains("-profile.cfg") {
            assert_eq!(
                got.as_ref().err().and_then(|p| error_code(p)),
                Some(2),
                "{name} is refused"
            );
        }
    }
    // The associated device's own master is not rendered over TFTP; the log says why.
    assert!(raw_read(addr, &format!("{MAC}.cfg"), &[]).is_err());
    assert!(
        server
            .output
            .lock()
            .expect("lock")
            .contains("asked for its files over TFTP")
    );
    // Recorded with method RRQ.
    std::thread::sleep(Duration::from_millis(300));
    let rrqs: i64 = db
        .query_row(
            "SELECT count(*) FROM access_log WHERE method = 'RRQ'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert!(rrqs >= names.len() as i64, "{rrqs}");
}

#[test]
fn traversal_writes_bad_options_bad_packets_and_strangers_get_clear_outcomes() {
    let (server, addr) = start("");
    write_image(&server, "1.0", "sip.ld", &vec![7u8; 5000]);
    // Traversal, absolute names outside the tree, backslashes, encodings: error 2 or 1.
    for name in [
        "../etc/passwd",
        "firmware/../../etc/passwd",
        "firmware/1.0/../1.0/sip.ld",
        "..\\..\\etc\\passwd",
        "firmware\\1.0\\sip.ld",
        "%2e%2e/etc/passwd",
        "//etc/passwd",
    ] {
        let p = raw_read(addr, name, &[]).expect_err(name);
        assert_eq!(error_code(&p), Some(2), "{name}: {p:?}");
    }
    let p = raw_read(addr, "/etc/passwd", &[]).expect_err("absolute");
    assert!(matches!(error_code(&p), Some(1 | 2)), "{p:?}");
    // Options out of range: error 8 naming the option.
    for (opts, word) in [
        (vec![("blksize", "7")], "blksize"),
        (vec![("blksize", "65465")], "blksize"),
        (vec![("blksize", "lots")], "blksize"),
        (vec![("timeout", "0")], "timeout"),
        (vec![("timeout", "256")], "timeout"),
        (vec![("tsize", "99")], "tsize"),
    ] {
        let p = raw_read(addr, "firmware/1.0/sip.ld", &opts).expect_err(word);
        assert_eq!(error_code(&p), Some(8), "{opts:?}");
        assert!(contains(&p, word), "{opts:?}: {p:?}");
    }
    // Options in range: acknowledged, and the file arrives in those blocks.
    let (oack, data) = raw_read(
        addr,
        "firmware/1.0/sip.ld",
        &[("blksize", "1428"), ("tsize", "0"), ("timeout", "3")],
    )
    .expect("read with options");
    assert_eq!(data, vec![7u8; 5000]);
    assert_eq!(
        oack,
        b"blksize\x001428\x00tsize\x005000\x00timeout\x003\x00".to_vec()
    );
    let (_, data) = raw_read(addr, "firmware/1.0/sip.ld", &[("blksize", "8")]).expect("tiny");
    assert_eq!(data.len(), 5000);
    // A write request: error 2.
    let s = udp("127.0.0.1");
    let mut wrq = rrq("000000000000.cfg", &[]);
    wrq[1] = 2;
    s.send_to(&wrq, addr).expect("send");
    let (p, _) = recv(&s).expect("answer");
    assert_eq!(error_code(&p), Some(2));
    assert!(contains(&p, "does not accept writes"));
    // Garbage, an unknown opcode, a truncated request, a stray ACK: an error each.
    for bad in [
        &b"\x00"[..],
        &b"\x00\x09hello\x00"[..],
        &b"\x00\x01sip.ld"[..],
        &b"\x00\x01sip.ld\x00mail\x00"[..],
        &b"\x00\x04\x00\x01"[..],
    ] {
        s.send_to(bad, addr).expect("send");
        let (p, _) = recv(&s).expect("answer");
        assert!(matches!(error_code(&p), Some(4 | 5)), "{bad:?}: {p:?}");
    }
    // A stranger (127.0.0.2 is not in tftp.allow): no answer at all.
    let stranger = udp("127.0.0.2");
    stranger
        .send_to(&rrq("000000000000.cfg", &[]), addr)
        .expect("send");
    assert!(recv(&stranger).is_none(), "a stranger got an answer");
    // Nothing is broken: the same file is still served.
    let (_, data) = raw_read(addr, "firmware/1.0/sip.ld", &[]).expect("still serving");
    assert_eq!(data.len(), 5000);
    let out = server.output.lock().expect("lock").clone();
    assert!(out.contains("outside tftp.allow"), "{out}");
}

#[test]
fn a_flood_of_read_requests_is_bounded_and_the_server_keeps_serving() {
    let (server, addr) = start("tftp.max_transfers = 4\ntftp.timeout_secs = 1\ntftp.retries = 1");
    write_image(&server, "1.0", "sip.ld", &vec![1u8; 4096]);
    // 200 requests from 200 ports that never acknowledge anything.
    let sockets: Vec<UdpSocket> = (0..200).map(|_| udp("127.0.0.1")).collect();
    for s in &sockets {
        s.send_to(&rrq("firmware/1.0/sip.ld", &[]), addr)
            .expect("send");
    }
    let (mut data, mut busy) = (0, 0);
    for s in &sockets {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("t");
        if let Some((p, _)) = recv(s) {
            match (p[1], error_code(&p)) {
                (3, _) => data += 1,
                (_, Some(0)) => busy += 1,
                _ => {}
            }
        }
    }
    assert!(data <= 4, "{data} transfers ran at once over a cap of 4");
    assert!(
        busy >= 150,
        "only {busy} requests were told the server is busy"
    );
    // The abandoned transfers time out (1 s, one retry); then the server serves again,
    // over TFTP and HTTP.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match raw_read(addr, "firmware/1.0/sip.ld", &[]) {
            Ok((_, d)) => {
                assert_eq!(d.len(), 4096);
                break;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
            Err(p) => panic!("not serving after the flood: {p:?}"),
        }
    }
    let r = crate::common::Conn::open(server.device).request("GET", "/000000000000.cfg", &[], b"");
    assert_eq!(r.status, 401, "device HTTP still answers");
    // /metrics counts TFTP apart: requests by route and outcome, and the listener's
    // busy answers.
    let m = crate::common::Conn::open(server.admin).request("GET", "/metrics", &[], b"");
    let text = m.text();
    assert!(
        text.contains("zerotouch_tftp_requests_total{route=\"firmware\",outcome=\"served\"}"),
        "{text}"
    );
    let busy_line = text
        .lines()
        .find(|l| l.starts_with("zerotouch_tftp_transfers{counter=\"busy\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!busy_line.ends_with(" 0"), "{busy_line}");
}

#[test]
fn a_50_mb_image_is_read_back_identical_across_block_number_rollover() {
    if !require(have("tftp"), "the tftp client (apt-get install tftp-hpa)") {
        return;
    }
    let (server, addr) = start("");
    // 50 MB at 512-byte blocks is 102,400 blocks: the block number wraps past 65535.
    let mut image = Vec::with_capacity(50 * 1024 * 1024);
    let mut x: u32 = 0x1234_5678;
    while image.len() < 50 * 1024 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image.extend_from_slice(&x.to_le_bytes());
    }
    write_image(&server, "9.9.9", "3111-48500-001.sip.ld", &image);
    let tmp = tempfile::tempdir().expect("tmp");
    let got = client_get(addr, "firmware/9.9.9/3111-48500-001.sip.ld", tmp.path()).expect("read");
    assert_eq!(got.len(), image.len());
    assert!(got == image, "the image read back differs");
}

#[test]
fn the_account_credential_is_served_over_tftp_only_when_the_account_allows_it() {
    let (server, addr) = start("");
    add_device(&server);
    let (user, account_password) = server.credentials();
    let own = own_credential(&server);
    let device_file = format!("{MAC}-device.cfg");
    // Off (the default): the device's own files are not served.
    let p = raw_read(addr, &device_file, &[]).expect_err("refused");
    assert_eq!(error_code(&p), Some(2));
    let p = raw_read(addr, &format!("{MAC}.cfg"), &[]).expect_err("not found");
    assert_eq!(error_code(&p), Some(1));
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("not served over TFTP")
    );

    // On: the master and the device file, with Auto-Sync's move to device HTTP and the
    // account credential, and still no secret of the device.
    let said = server.cli_ok(&["account", "tftp-credential", "on"]);
    assert!(said.contains("option 160"), "{said}");
    let (_, master) = raw_read(addr, &format!("{MAC}.cfg"), &[]).expect("master");
    assert!(
        contains(&master, &device_file),
        "{}",
        String::from_utf8_lossy(&master)
    );
    let (_, file) = raw_read(addr, &device_file, &[]).expect("device file");
    let text = String::from_utf8_lossy(&file).into_owned();
    assert_eq!(
        attr(&file, "device.prov.user").as_deref(),
        Some(user.as_str()),
        "{text}"
    );
    assert_eq!(
        attr(&file, "device.prov.password").as_deref(),
        Some(account_password.as_str()),
        "{text}"
    );
    let http = server.device.to_string();
    assert_eq!(
        attr(&file, "device.prov.serverName").as_deref(),
        Some(http.as_str()),
        "the move goes to device HTTP: {text}"
    );
    let (_, profile) = raw_read(addr, &format!("{MAC}-profile.cfg"), &[]).expect("profile");
    for (name, bytes) in [
        ("master", &master),
        ("device", &file),
        ("profile", &profile),
    ] {
        assert!(
            !contains(bytes, SIP_SECRET),
            "{name} carries the SIP secret"
        );
        assert!(
            !contains(bytes, &own),
            "{name} carries the device's own credential"
        );
    }
    // The inventory shows the protocol the device used last: TFTP, then HTTP.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .cli_ok(&["inventory", "--json"])
        .contains(r#""protocol": "tftp""#)
    {
        assert!(Instant::now() < deadline, "the inventory never showed tftp");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .cli_ok(&["inventory", "--json"])
        .contains(r#""protocol": "http""#)
    {
        assert!(Instant::now() < deadline, "the inventory never showed http");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The change is audited; off again serves nothing of the device.
    assert!(
        server
            .cli_ok(&["audit"])
            .contains("account.set-tftp-credential")
    );
    server.cli_ok(&["account", "tftp-credential", "off"]);
    let p = raw_read(addr, &device_file, &[]).expect_err("refused again");
    assert_eq!(error_code(&p), Some(2));
    let err = server.cli_err(&["account", "tftp-credential", "maybe"]);
    assert!(err.contains("state"), "{err}");
}

#[test]
fn the_api_and_the_console_set_the_allowance_and_say_what_it_exposes() {
    let (server, _addr) = start("");
    let token = crate::common::user_with_token(&server, "bot", "admin", "");
    let r = crate::common::api(&server, "GET", "/accounts/default", Some(&token), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(crate::common::json(&r)["tftp_credential"], false);
    let r = crate::common::api(
        &server,
        "PUT",
        "/accounts/default/tftp-credential",
        Some(&token),
        r#"{"enabled": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(crate::common::json(&r)["tftp_credential"], true);
    let r = crate::common::api(
        &server,
        "PUT",
        "/accounts/default/tftp-credential",
        Some(&token),
        r#"{"enabled": "yes"}"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    // The console's account page says how exposed the credential is, and turns it off.
    let s = crate::common::Session::admin(&server);
    let page = s.get("/accounts/default").text();
    assert!(page.contains("as exposed as in DHCP option 160"), "{page}");
    let r = s.post("/accounts/default/tftp-credential", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("not served over TFTP")
    );
}

#[test]
fn sigterm_lets_a_running_transfer_finish_then_stops() {
    let (server, addr) = start("");
    let image: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    write_image(&server, "1.0", "sip.ld", &image);
    let s = udp("127.0.0.1");
    s.send_to(&rrq("firmware/1.0/sip.ld", &[]), addr)
        .expect("send");
    let (first, from) = recv(&s).expect("block 1");
    assert_eq!(&first[..4], &[0, 3, 0, 1]);
    let mut data = first[4..].to_vec();
    // SIGTERM while the transfer runs: it is drained, not cut.
    let stopping = std::thread::spawn(move || server.stop());
    std::thread::sleep(Duration::from_millis(300));
    s.send_to(&[0, 4, 0, 1], from).expect("ack 1");
    let mut expected: u16 = 2;
    loop {
        let (p, _) = recv(&s).expect("the transfer goes on while stopping");
        let block = u16::from_be_bytes([p[2], p[3]]);
        s.send_to(&[0, 4, p[2], p[3]], from).expect("ack");
        if block != expected {
            continue;
        }
        data.extend_from_slice(&p[4..]);
        if p.len() - 4 < 512 {
            break;
        }
        expected = expected.wrapping_add(1);
    }
    assert!(data == image, "the drained transfer is complete");
    let out = stopping.join().expect("stop");
    assert!(out.contains("stopped"), "{out}");
    // Stopped: nothing answers any more.
    let late = udp("127.0.0.1");
    late.send_to(&rrq("000000000000.cfg", &[]), addr)
        .expect("send");
    assert!(recv(&late).is_none());
}
