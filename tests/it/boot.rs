//! A phone's boot against the real server: the VVX 500 sequence of docs/design.md §2 for
//! an associated phone, the unknown-phone staging path, and byte-stable rendering.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::*;

const MAC: &str = "0004f2a1b2c3";

/// Parameters of a Polycom config file, by name.
fn params(xml: &[u8]) -> HashMap<String, String> {
    let text = std::str::from_utf8(xml).expect("utf-8");
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML ({e}):\n{text}"));
    let mut out = HashMap::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            if a.name().contains('.') {
                out.insert(a.name().to_string(), a.value().to_string());
            }
        }
    }
    out
}

/// The root element's attributes of a master file.
fn master_attrs(xml: &[u8]) -> HashMap<String, String> {
    let text = std::str::from_utf8(xml).expect("utf-8");
    let doc = roxmltree::Document::parse(text).expect("master is XML");
    let mut out = HashMap::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            out.insert(a.name().to_string(), a.value().to_string());
        }
    }
    out
}

fn setup(server: &ZServer) {
    server.set_credentials();
    // These phones hold the account credential (the boot sequence is the subject here).
    server.serve_secrets_to_account();
    // Firmware as Polycom ships it split: part-number-prefixed images (test bytes).
    import_release(server, "5.9.8.1234", &["3111-48500-001.sip.ld"], &[]);
    let dir = server.dir.path();
    let profile = write_file(
        dir,
        "site.cfg",
        br#"<?xml version="1.0" encoding="UTF-8"?>
<polycomConfig reg.1.server.1.address="profile.example.com" voIpProt.server.1.address="profile.example.com"
  tcpIpApp.sntp.address="pool.ntp.org" up.welcomeSoundEnabled="0" feature.label="${MAC}"/>
"#,
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        profile.to_str().expect("path"),
        "--software",
        "VVX=5.9.8.1234",
        "--polling",
        "enable",
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
        "Line-Secret-1",
        "--display-name",
        "Front Desk",
        "--line-label",
        "1001",
    ]);
    let assets = server.data_dir().join("assets");
    std::fs::write(
        assets.join("000000000000-directory.xml"),
        b"<directory><item_list/></directory>\n",
    )
    .expect("dir");
}

#[test]
fn an_associated_vvx500_boots_through_the_whole_sequence() {
    let server = ZServer::start();
    setup(&server);
    let mut updater = server.phone(MAC, UA_VVX500_UPDATER);
    // 1. The boot-stage updater uploads its boot log (first try without credentials).
    let r = updater.request("PUT", &format!("/{MAC}-boot.log"), b"boot log line 1\n");
    assert_eq!(r.status, 201, "{}", r.text());

    let mut phone = server.phone(MAC, UA_VVX500_APP);
    // 2. Master file.
    let master = phone.get(&format!("/{MAC}.cfg"));
    assert_eq!(master.status, 200, "{}", master.text());
    let attrs = master_attrs(&master.body);
    let config_files: Vec<String> = attrs["CONFIG_FILES"]
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(
        config_files,
        vec![format!("{MAC}-device.cfg"), format!("{MAC}-profile.cfg")],
        "generated file first"
    );
    assert_eq!(
        attrs["APP_FILE_PATH"], "",
        "no image for models without a version"
    );
    let image = &attrs["APP_FILE_PATH_VVX500"];
    assert_eq!(image, "firmware/5.9.8.1234/sip.ld");
    let (log_dir, ovr_dir, contacts_dir, calls_dir) = (
        attrs["LOG_FILE_DIRECTORY"].clone(),
        attrs["OVERRIDES_DIRECTORY"].clone(),
        attrs["CONTACTS_DIRECTORY"].clone(),
        attrs["CALL_LISTS_DIRECTORY"].clone(),
    );

    // 3. Firmware: the phone prefixes the image name with its part number.
    let fw_path = format!("/{}", image.replace("sip.ld", "3111-48500-001.sip.ld"));
    let fw = phone.get(&fw_path);
    assert_eq!(fw.status, 200);
    let size = "3111-48500-001.sip.ld 5.9.8.1234 ".len() * 2000;
    assert_eq!(fw.body.len(), size);
    let etag = fw.header("ETag").expect("etag").to_string();
    let part = phone.request_with("GET", &fw_path, &[("Range", "bytes=1000-1999")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 1000);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 1000-1999/{size}").as_str())
    );
    let same = phone.request_with("GET", &fw_path, &[("If-None-Match", &etag)], b"");
    assert_eq!(same.status, 304);

    // 4. Each CONFIG_FILES entry, left to right; the first file that sets a value wins.
    let mut effective: HashMap<String, String> = HashMap::new();
    for f in &config_files {
        let r = phone.get(&format!("/{f}"));
        assert_eq!(r.status, 200, "{f}: {}", r.text());
        for (k, v) in params(&r.body) {
            effective.entry(k).or_insert(v);
        }
    }
    assert_eq!(
        effective["reg.1.server.1.address"], "sip.example.com",
        "the device file wins over the profile"
    );
    assert_eq!(
        effective["voIpProt.server.1.address"],
        "profile.example.com"
    );
    assert_eq!(effective["reg.1.auth.password"], "Line-Secret-1");
    assert_eq!(effective["prov.polling.enabled"], "1");
    assert_eq!(
        effective["feature.label"],
        MAC.to_uppercase(),
        "variables are expanded"
    );

    // 5. Overrides, licences, call list, directory: 404s are normal, the shared directory exists.
    for p in [
        format!("/{ovr_dir}/{MAC}-phone.cfg"),
        format!("/{ovr_dir}/{MAC}-web.cfg"),
        "/000000000000-license.cfg".to_string(),
        format!("/{MAC}-license.cfg"),
        format!("/{calls_dir}/{MAC}-calls.xml"),
        format!("/{contacts_dir}/{MAC}-directory.xml"),
    ] {
        assert_eq!(phone.get(&p).status, 404, "{p}");
    }
    let dir = phone.get("/000000000000-directory.xml");
    assert_eq!(dir.status, 200);
    assert!(dir.text().contains("<directory>"));

    // 6. Application log: HEAD, then PUT, into the directory the master names.
    let log_path = format!("/{log_dir}/{MAC}-app.log");
    assert_eq!(phone.request("HEAD", &log_path, b"").status, 404);
    assert_eq!(phone.request("PUT", &log_path, b"app log\n").status, 201);
    let head = phone.request("HEAD", &log_path, b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("8"));
    // Overrides made on the phone are stored and read back.
    let ovr = br#"<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="1"/></PHONE_CONFIG>"#;
    assert_eq!(
        phone
            .request("PUT", &format!("/{ovr_dir}/{MAC}-phone.cfg"), ovr)
            .status,
        201
    );
    assert_eq!(
        phone.get(&format!("/{ovr_dir}/{MAC}-phone.cfg")).body,
        ovr.to_vec()
    );
    assert_eq!(
        phone
            .request("PUT", &format!("/{calls_dir}/{MAC}-calls.xml"), b"<calls/>")
            .status,
        201
    );

    // The requests were recorded: access count, model and firmware (from Type/Application).
    assert!(
        eventually(Duration::from_secs(5), || {
            let out = server.cli_ok(&["device", "show", MAC]);
            // Recorded in batches: the sync (the device file's 200) may come a batch later.
            out.contains("firmware:      5.9.7.47435")
                && out.contains("VVX_500")
                && !out.contains("last sync:     --")
        }),
        "{}",
        server.cli_ok(&["device", "show", MAC])
    );
    let out = server.cli_ok(&["device", "show", MAC]);
    assert!(out.contains(&format!("/{MAC}.cfg")), "{out}");
    assert!(
        out.contains("last sync:") && !out.contains("last sync:     --"),
        "{out}"
    );

    // The whole, grown log again: it holds the stored one, so no previous copy is kept.
    // Only new lines: the previous upload is kept beside it as `.1`.
    let stored = server
        .data_dir()
        .join("uploads")
        .join(MAC)
        .join("logs")
        .join(format!("{MAC}-app.log"));
    let previous = stored.with_file_name(format!("{MAC}-app.log.1"));
    assert_eq!(
        phone.request("PUT", &log_path, b"app log\nmore\n").status,
        204
    );
    assert!(!previous.exists(), "a grown log needs no previous copy");
    assert_eq!(phone.request("PUT", &log_path, b"newer\n").status, 204);
    assert_eq!(std::fs::read(&stored).expect("log"), b"newer\n");
    assert_eq!(
        std::fs::read(&previous).expect("previous log"),
        b"app log\nmore\n"
    );
}

#[test]
fn an_unknown_phone_is_staged_and_picks_up_its_association_later() {
    let server = ZServer::start();
    setup(&server);
    let unknown = "0004f2ffee01";
    let mut phone = server.phone(unknown, UA_VVX410_APP);
    assert_eq!(phone.get(&format!("/{unknown}.cfg")).status, 404);
    let master = phone.get("/000000000000.cfg");
    assert_eq!(master.status, 200);
    let attrs = master_attrs(&master.body);
    assert_eq!(attrs["CONFIG_FILES"], "[PHONE_MAC_ADDRESS]-stage.cfg");
    assert_eq!(attrs["APP_FILE_PATH"], "");
    let stage = phone.get(&format!("/{unknown}-stage.cfg"));
    assert_eq!(stage.status, 200);
    let p = params(&stage.body);
    assert_eq!(p["prov.polling.enabled"], "1");
    assert!(p["prov.polling.period"].parse::<u32>().expect("period") > 3600);
    assert!(
        !p.keys().any(|k| k.contains("password")),
        "no secrets for unknown phones"
    );
    // Recorded as seen, not associated (by the sighting writer, within moments).
    assert!(
        eventually(Duration::from_secs(5), || server
            .cli_ok(&["device", "list", "--unassociated"])
            .contains(unknown)),
        "the unknown phone is listed as seen"
    );
    // The admin associates it; the phone's next poll gets its configuration.
    server.cli_ok(&["device", "add", unknown, "--profile", "office"]);
    let master = phone.get(&format!("/{unknown}.cfg"));
    assert_eq!(master.status, 200);
    assert!(master.text().contains(&format!("{unknown}-device.cfg")));
}

#[test]
fn platform_changes_are_sent_until_the_phone_confirms_them() {
    let server = ZServer::start();
    setup(&server);
    let mac = "0004f2a1b2c4";
    server.cli_ok(&["profile", "add", "static", "--boot-server-option", "Static"]);
    server.cli_ok(&["device", "add", mac, "--profile", "static"]);
    // First boot: no serial tag yet; the generated file carries device.set and every change.
    let mut phone = server.phone(mac, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{mac}.cfg")).status, 200);
    let first = params(&phone.get(&format!("/{mac}-device.cfg")).body);
    assert_eq!(first.get("device.set").map(String::as_str), Some("1"));
    assert_eq!(first["device.dhcp.bootSrvUseOpt"], "Static");
    assert_eq!(first["device.dhcp.bootSrvUseOpt.set"], "1");
    assert_eq!(
        first["device.prov.serverName"],
        server.device.to_string(),
        "keeps the phone where it is"
    );
    assert_eq!(first["device.prov.tagSerialNo"], "1");
    // The phone applies them, reboots, and now tags its User-Agent with its MAC.
    let ua = UA_VVX500_APP.replace(" Type/", &format!(" (SN:{mac}) Type/"));
    let mut rebooted = server.phone(mac, &ua);
    assert_eq!(rebooted.get(&format!("/{mac}.cfg")).status, 200);
    let steady = params(&rebooted.get(&format!("/{mac}-device.cfg")).body);
    assert!(
        !steady.contains_key("device.set"),
        "a steady state carries no device.set: {steady:?}"
    );
    assert!(
        !steady.keys().any(|k| k.starts_with("device.")),
        "{steady:?}"
    );
}

#[test]
fn the_same_data_renders_the_same_bytes_in_two_processes() {
    let server = ZServer::start();
    setup(&server);
    let host = server.device.to_string();
    let a = server.cli_ok(&["render", MAC, "--host", &host]);
    let b = server.cli_ok(&["render", MAC, "--host", &host]);
    assert_eq!(a, b);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    for name in [
        format!("{MAC}.cfg"),
        format!("{MAC}-device.cfg"),
        format!("{MAC}-profile.cfg"),
    ] {
        let served = phone.get(&format!("/{name}")).body;
        let rendered = server.cli_ok(&["render", MAC, "--host", &host, "--file", &name]);
        assert_eq!(String::from_utf8_lossy(&served), rendered, "{name}");
    }
}

#[test]
fn the_fixture_files_round_trip_as_profile_files() {
    let server = ZServer::start();
    server.set_credentials();
    // Byte for byte, secrets included: served to the account credential.
    server.serve_secrets_to_account();
    let files = fixture_files();
    for (i, path) in files.iter().enumerate() {
        let name = format!("fixture{i}");
        // A file that sets what only zerotouch may set (device.set, device.prov.*) is
        // refused naming each line; without those parameters it round-trips.
        let original = std::fs::read(path).expect("read");
        let (clean, owned) = zerotouch::domain::withhold::strip_owned(&original);
        let path = if owned.is_empty() {
            path.clone()
        } else {
            let err = server.cli_err(&[
                "profile",
                "add",
                &name,
                "--file",
                path.to_str().expect("path"),
            ]);
            for param in &owned {
                assert!(err.contains(&format!("`{param}`")), "{param}: {err}");
            }
            write_file(server.dir.path(), &format!("clean-{i}.cfg"), &clean)
        };
        server.cli_ok(&[
            "profile",
            "add",
            &name,
            "--file",
            path.to_str().expect("path"),
        ]);
        let mac = format!("0004f2{i:06x}");
        server.cli_ok(&["device", "add", &mac, "--profile", &name]);
        let mut phone = server.phone(&mac, UA_VVX500_APP);
        let served = phone.get(&format!("/{mac}-profile.cfg"));
        assert_eq!(served.status, 200);
        let original = std::fs::read(&path).expect("read");
        assert_eq!(
            served.body,
            original,
            "{} must be served byte for byte",
            path.display()
        );
    }
}
