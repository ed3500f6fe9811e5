//! Simulated phones (`sim`) against the real server, on what the simulator makes visible:
//! Digest end to end (the boot, uploads with their bodies, the 401 challenge over plain
//! HTTP and over HTTPS, what `device.digest` and `device.realm` offer, stale nonces), a boot
//! over one keep-alive connection, server types a phone cannot speak, credentials from a
//! DHCP boot-server URL, phones behind one address and on their own, Poly OS.

use std::net::IpAddr;

use crate::common::*;
use crate::sim::{self, AuthMode, Boot, Cred, SimPhone};

const MAC: &str = "0004f2a1b2c3";
const VERSION: &str = "5.9.8.1234";
/// The size of a test image of `release_zip`.
fn image_size(name: &str) -> u64 {
    (format!("{name} {VERSION} ").len() * 2000) as u64
}

/// Known credentials, a profile with one file and software for the VVX family, the VVX
/// 500's image in the catalogue, a shared directory, and `MAC` associated.
fn setup(server: &ZServer) -> (String, String) {
    let creds = server.set_credentials();
    import_release(server, VERSION, &["3111-44500-001.sip.ld"], &[]);
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        br#"<polycomConfig tcpIpApp.sntp.address="pool.ntp.org" up.welcomeSoundEnabled="0"/>"#,
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
        "--software",
        &format!("VVX={VERSION}"),
        "--polling",
        "enable",
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-user",
        "1001",
        "--sip-password",
        "Line-Secret-1",
    ]);
    std::fs::write(
        server.data_dir().join("assets/000000000000-directory.xml"),
        b"<directory><item_list/></directory>\n",
    )
    .expect("directory");
    creds
}

/// Every connection's first request carries no credentials and every other one carries
/// Digest credentials: of `user` (the account's) until the phone adopted its own credential
/// (user = its MAC, sent when it enrols), of its MAC from then on.
fn assert_digest_after_the_first_request(requests: &[sim::Request], user: &str) {
    let mut seen = std::collections::BTreeSet::new();
    let mut own = false;
    for r in requests {
        if seen.insert(r.conn) {
            assert_eq!(r.cred, Cred::None, "first request of its connection: {r:?}");
            assert_eq!(r.status, 401, "{r:?}");
        } else if r.cred == Cred::Digest(MAC.to_string()) {
            own = true;
        } else {
            assert!(
                !own,
                "back to the account credential after enrolling: {r:?}"
            );
            assert_eq!(r.cred, Cred::Digest(user.to_string()), "{r:?}");
        }
    }
}

#[test]
fn a_vvx500_boots_with_digest_over_one_connection_and_installs_its_firmware() {
    let server = ZServer::start();
    let (user, password) = setup(&server);
    let addr = server.device.to_string();
    let mut phone = SimPhone::new(MAC, &addr, &user, &password);
    // First boot: the image its part number names (it runs 5.9.7), and Auto-Sync's values.
    let Boot::Rebooted(adopted) = phone.boot() else {
        panic!("{:?}", phone.last_boot())
    };
    assert!(adopted.contains(&sim::FIRMWARE.to_string()), "{adopted:?}");
    assert!(
        adopted.contains(&sim::BOOT_SERVER.to_string()),
        "{adopted:?}"
    );
    assert_eq!(phone.version, VERSION);
    let fw = phone.last_boot().firmware.clone().expect("an image");
    assert_eq!(
        fw.url,
        format!("http://{addr}/firmware/{VERSION}/3111-44500-001.sip.ld")
    );
    assert_eq!(fw.bytes, image_size("3111-44500-001.sip.ld"));
    let first = phone.last_boot().clone();
    assert_eq!(
        first.conns.opened, 1,
        "one keep-alive connection: {first:?}"
    );
    assert_eq!((first.conns.server_closes, first.conns.drops), (0, 0));
    // Second boot: the new firmware, nothing to download, every optional file asked for.
    assert_eq!(phone.boot(), Boot::Configured, "{:?}", phone.last_boot());
    let second = phone.last_boot().clone();
    assert_eq!(second.firmware, None);
    assert_eq!(second.conns.opened, 1, "{second:?}");
    assert!(second.requests.len() >= 13, "{second:?}");
    assert_digest_after_the_first_request(phone.requests(), &user);
    assert!(
        phone
            .user_agent()
            .contains(&format!("UA/{VERSION} (SN:{MAC})"))
    );
    // The uploads arrived with Digest credentials and their bodies: the first boot's logs,
    // sent with the account credential before the phone enrolled, were refused (per-device
    // files need its own); the second boot's, with its own, are the first stored.
    assert_eq!(phone.last_status_of(&format!("/{MAC}-boot.log")), Some(201));
    let log = server
        .data_dir()
        .join(format!("uploads/{MAC}/logs/{MAC}-app.log"));
    let stored = std::fs::read_to_string(&log).expect("app log");
    assert!(stored.contains("(boot 2)"), "{stored}");
    // The server recorded the new firmware from the User-Agent.
    assert!(
        eventually(std::time::Duration::from_secs(10), || server
            .cli_ok(&["device", "show", MAC])
            .contains(&format!("firmware:      {VERSION}"))),
        "{}",
        server.cli_ok(&["device", "show", MAC])
    );
}

/// The challenges of a 401 for `path` over a new connection.
fn challenges(client: &mut sim::Client, target: sim::Target) -> Vec<sim::Challenge> {
    let r = client
        .send(&sim::Outgoing {
            method: "GET",
            target: &target,
            user_agent: UA_VVX500_APP,
            headers: &[],
            body: b"",
            credentials: None,
            keep_body: true,
        })
        .expect("response");
    assert_eq!(r.status, 401);
    sim::parse_challenges(r.headers_named("WWW-Authenticate"))
}

#[test]
fn the_challenge_offers_digest_then_basic_over_http_and_basic_only_over_https() {
    let server = ZServer::start();
    setup(&server);
    let mut client = sim::Client::new(AuthMode::PreferDigest);
    let http = sim::Target {
        scheme: "http".into(),
        host: server.device.to_string(),
        path: format!("/{MAC}.cfg"),
    };
    let offered = challenges(&mut client, http);
    assert_eq!(offered.len(), 2, "{offered:?}");
    let digest = &offered[0];
    assert_eq!(digest.scheme, "digest");
    assert_eq!(digest.param("realm"), Some("zerotouch"));
    assert_eq!(digest.param("qop"), Some("auth"));
    assert_eq!(digest.param("algorithm"), Some("MD5"));
    assert!(
        digest.param("nonce").is_some_and(|n| n.len() >= 16),
        "{digest:?}"
    );
    assert!(!digest.is_stale());
    assert_eq!(offered[1].scheme, "basic");
    assert_eq!(offered[1].param("realm"), Some("zerotouch"));
    // Two challenges carry two different nonces.
    let again = challenges(
        &mut client,
        sim::Target {
            scheme: "http".into(),
            host: server.device.to_string(),
            path: "/000000000000.cfg".into(),
        },
    );
    assert_eq!(again[0].scheme, "digest");

    // HTTPS: the password is protected by TLS, so Basic only.
    let https = server.https.expect("HTTPS listener");
    client.trust =
        std::fs::read_to_string(server.data_dir().join("tls/ca.pem")).expect("CA certificate");
    let offered = challenges(
        &mut client,
        sim::Target {
            scheme: "https".into(),
            host: format!("127.0.0.1:{}", https.port()),
            path: format!("/{MAC}.cfg"),
        },
    );
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0].scheme, "basic");
}

#[test]
fn with_digest_off_the_challenge_offers_basic_in_its_realm_and_a_digest_only_phone_is_refused() {
    let server = ZServer::start_with("device.digest = false\ndevice.realm = \"office\"");
    let (user, password) = setup(&server);
    let addr = server.device.to_string();
    let mut client = sim::Client::new(AuthMode::PreferDigest);
    let offered = challenges(
        &mut client,
        sim::Target {
            scheme: "http".into(),
            host: addr.clone(),
            path: format!("/{MAC}.cfg"),
        },
    );
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0].scheme, "basic");
    assert_eq!(offered[0].param("realm"), Some("office"));

    let mut strict = SimPhone::new(MAC, &addr, &user, &password).auth_mode(AuthMode::Digest);
    assert_eq!(
        strict.boot(),
        Boot::Refused {
            status: 401,
            path: format!("/{MAC}.cfg")
        }
    );
    let mut phone = SimPhone::new(MAC, &addr, &user, &password);
    assert!(matches!(phone.boot(), Boot::Rebooted(_)));
    assert!(
        phone
            .requests()
            .iter()
            .skip(1)
            .all(|r| r.cred == Cred::Basic(user.clone())),
        "{:?}",
        phone.requests()
    );
}

#[test]
fn a_stale_nonce_is_answered_with_the_new_one_and_never_counted_as_a_failure() {
    let server =
        ZServer::start_with_clock("auth.failure_limit = 1\nauth.nonce_lifetime_secs = 300");
    let (user, password) = setup(&server);
    let mut phone = Phone::new(server.device, MAC, UA_VVX500_APP, &user, &password).digest_only();
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    for round in 1..=2 {
        server.advance(400);
        // The connection is authenticated: the request carries the old nonce at once.
        assert_eq!(phone.get(&format!("/{MAC}-device.cfg")).status, 200);
        assert_eq!(phone.conn_stats().stale, round);
    }
    let statuses: Vec<(u16, bool)> = phone
        .requests()
        .iter()
        .map(|r| (r.status, r.cred == Cred::None))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (401, true),
            (200, false),
            (401, false),
            (200, false),
            (401, false),
            (200, false)
        ]
    );
    assert_eq!(phone.conn_stats().opened, 1);
    // Two stale answers did not count as wrong credentials: with a limit of one, the first
    // wrong password is still a challenge, the second is throttled.
    let mut wrong = Phone::new(server.device, MAC, UA_VVX500_APP, &user, "Wrong-Passw0rd");
    assert_eq!(wrong.get(&format!("/{MAC}.cfg")).status, 401);
    let mut wrong = Phone::new(server.device, MAC, UA_VVX500_APP, &user, "Wrong-Passw0rd");
    assert_eq!(wrong.get(&format!("/{MAC}.cfg")).status, 429);
}

#[test]
fn uploads_with_digest_carry_their_bodies_small_and_large() {
    let server = ZServer::start();
    let (user, password) = setup(&server);
    // Uploads with the account credential (Digest is the subject, not enrolment).
    server.serve_secrets_to_account();
    let mut phone = Phone::new(server.device, MAC, UA_VVX500_APP, &user, &password).digest_only();
    let path = format!("/logs/{MAC}-app.log");
    // A small body: the 401 comes after the server read it, on the same connection.
    assert_eq!(phone.request("PUT", &path, b"first line\n").status, 201);
    assert_eq!(
        phone.request("PUT", &path, b"first line\nsecond\n").status,
        204
    );
    let stored = server
        .data_dir()
        .join(format!("uploads/{MAC}/logs/{MAC}-app.log"));
    assert_eq!(
        std::fs::read(&stored).expect("log"),
        b"first line\nsecond\n"
    );
    assert_eq!(phone.conn_stats().opened, 1);
    // A body too large to read before the challenge: the server answers 401 and closes,
    // and the phone sends it again with Digest on a new connection.
    let big: Vec<u8> = b"0123456789abcdef\n".repeat(6000);
    let mut fresh = Phone::new(server.device, MAC, UA_VVX500_APP, &user, &password).digest_only();
    let ovr = format!("/overrides/{MAC}-phone.cfg");
    let mut body = b"<PHONE_CONFIG><OVERRIDES up.x=\"".to_vec();
    body.extend_from_slice(&big);
    body.extend_from_slice(b"\"/></PHONE_CONFIG>");
    let r = fresh.request("PUT", &ovr, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        fresh.conn_stats().server_closes,
        1,
        "{:?}",
        fresh.requests()
    );
    assert_eq!(fresh.conn_stats().opened, 2);
    assert_eq!(
        fresh.requests().last().map(|r| r.cred.clone()),
        Some(Cred::Digest(user.clone()))
    );
    let stored = server
        .data_dir()
        .join(format!("uploads/{MAC}/overrides/{MAC}-phone.cfg"));
    assert_eq!(std::fs::read(&stored).expect("override"), body);
}

#[test]
fn a_factory_phone_uses_its_server_type_for_an_address_without_a_scheme() {
    let server = ZServer::start();
    let (user, password) = setup(&server);
    let addr = server.device.to_string();
    // Factory default FTP: option 160 without a scheme leaves the phone on FTP.
    let mut ftp = SimPhone::factory(MAC, sim::VVX_500).dhcp(&addr);
    assert_eq!(
        ftp.boot(),
        Boot::Stranded {
            protocol: "FTP".into()
        }
    );
    assert!(ftp.requests().is_empty());
    let mut tftp = SimPhone::new(MAC, &addr, &user, &password).hold(sim::SERVER_TYPE, "TFTP");
    assert_eq!(
        tftp.boot(),
        Boot::Stranded {
            protocol: "TFTP".into()
        }
    );
    // Option 160 as an HTTP URL with credentials: the phone uses them, and Auto-Sync keeps
    // it here with boot server Static, its address without a scheme and server type HTTP.
    let mut phone =
        SimPhone::factory(MAC, sim::VVX_500).dhcp(&format!("http://{user}:{password}@{addr}/"));
    let Boot::Rebooted(adopted) = phone.boot() else {
        panic!("{:?}", phone.last_boot())
    };
    for p in [
        sim::BOOT_SERVER,
        sim::SERVER_NAME,
        sim::SERVER_TYPE,
        sim::USER,
    ] {
        assert!(adopted.contains(&p.to_string()), "{p}: {adopted:?}");
    }
    assert_eq!(phone.held(sim::SERVER_NAME), addr);
    assert_eq!(phone.held(sim::SERVER_TYPE), "HTTP");
    assert_eq!(phone.boot_until_stable(3), Boot::Configured);
    // The credentials it was sent with the address are its own (it enrolled): the ones in
    // the DHCP URL are no longer what it uses.
    assert_eq!(
        phone.requests().last().map(|r| r.cred.user()),
        Some(Some(MAC))
    );
    assert_ne!(user, MAC);
}

#[test]
fn phones_behind_one_address_beyond_the_mac_limit_are_served_and_reported() {
    let server = ZServer::start_with("auth.macs_per_ip = 2");
    let (user, password) = setup(&server);
    let addr = server.device.to_string();
    let macs = ["0004f2c00001", "0004f2c00002", "0004f2c00003"];
    for m in macs {
        server.cli_ok(&["device", "add", m, "--profile", "office"]);
    }
    // A NAT'd branch: the third phone behind one address is over the limit, and is served
    // like the others (I1: refusing it would lock a real phone out); the limit is reported.
    let shared: IpAddr = "127.0.0.7".parse().expect("ip");
    for m in macs {
        let mut p = SimPhone::new(m, &addr, &user, &password)
            .with_sequence(sim::Sequence::Config)
            .bind(shared);
        let first = p.boot();
        assert!(matches!(first, Boot::Rebooted(_)), "{m}: {first:?}");
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{m}");
    }
    let mut admin = Conn::open(server.admin);
    let metrics = admin.request("GET", "/metrics", &[], b"").text();
    let many = metrics
        .lines()
        .find(|l| l.starts_with("zerotouch_many_macs_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(many > 0, "reported: {metrics}");
}

#[test]
fn a_studio_x30_synced_by_auto_sync_keeps_a_full_url() {
    let server = ZServer::start();
    let (user, password) = setup(&server);
    server.cli_ok(&["autosync", "set", "--poly-os", "on"]);
    let mac = "0004f2d0e0f0";
    server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    let url = format!("http://{}/", server.device);
    let mut x30 = SimPhone::poly_os(mac, &url, &user, &password);
    let first = x30.boot();
    assert!(
        x30.requests()
            .iter()
            .skip(1)
            .all(|r| r.cred == Cred::Basic(user.clone())),
        "Poly OS answers with Basic: {:?}",
        x30.requests()
    );
    // Auto-Sync's address must be a full URL: Poly OS has no server type, and an address
    // without a scheme strands it at its next boot.
    assert!(
        x30.held(sim::SERVER_NAME).starts_with("http://"),
        "first boot {first:?}, holds {:?}",
        x30.device
    );
    assert_eq!(x30.boot(), Boot::Configured, "{:?}", x30.last_boot());
    // It came back at that URL: nothing is pending any more.
    server.wait_recorded(mac);
    assert_eq!(x30.boot(), Boot::Configured, "{:?}", x30.last_boot());
    // What a Poly OS device is sent: full URLs, no UC Software switches (`device.set`,
    // `.set`), no server type, and the CA (when delivered) under its own name.
    // A Poly OS device declared by its vendor model and never seen: everything pending.
    let declared = "0004f2d0e0f1";
    server.cli_ok(&[
        "device",
        "add",
        declared,
        "--profile",
        "office",
        "--vendor-model",
        "Poly_Studio_X50",
    ]);
    let files = server.cli_ok(&["render", declared, "--as", "account"]);
    assert!(files.contains("device.prov.serverName=\"http"), "{files}");
    for absent in [
        "device.set=",
        ".set=\"1\"",
        "device.prov.serverType",
        "bootSrvUseOpt",
    ] {
        assert!(!files.contains(absent), "{absent} sent to Poly OS: {files}");
    }
    let inv: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["inventory", "--json"])).expect("json");
    let device = inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mac"] == mac)
        .expect("the X30");
    // Confirmed at that URL. (`device.prov.tagSerialNo` stays awaited: the server sends
    // the UCS serial tag to Poly OS too, whose User-Agent never carries it; reported.)
    let awaiting = device["awaiting"].as_array().expect("awaiting");
    for p in [sim::SERVER_NAME, sim::USER, sim::PASSWORD] {
        assert!(!awaiting.iter().any(|a| a == p), "{p}: {device}");
    }
}
