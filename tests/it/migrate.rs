//! `zerotouch migrate-tree` against a crafted FTP root of many phones (three profiles' worth
//! of shared files, per-phone files with SIP passwords, overrides, firmware, owned
//! parameters): the dry run writes nothing, bad input is named and writes nothing, and after
//! the apply each phone booted against the real server gets the parameters it got from the
//! old tree (merged here independently: leftmost file wins, overrides on top).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use crate::sim::{Boot, SimPhone};

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x70_0000 + i)
}

fn password(i: usize) -> String {
    format!("Old-Sip-Pass-{i:05}")
}

/// The tree's phones: `(kind, mac)`, kind 0 on the default master with its own file first,
/// 1 with its own master listing its file last (its language shadowed), 2 with a master
/// whose shared file sets the provisioning server (owned, left out).
fn write_tree(dir: &Path, n: usize) {
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    w(
        "000000000000.cfg",
        "<?xml version=\"1.0\" standalone=\"yes\"?>\n<APPLICATION APP_FILE_PATH=\"sip.ld\" \
         CONFIG_FILES=\"[PHONE_MAC_ADDRESS]-reg.cfg, site-a.cfg, features.cfg\" \
         OVERRIDES_DIRECTORY=\"\" LICENSE_DIRECTORY=\"\"/>\n",
    );
    w(
        "site-a.cfg",
        "<polycomConfig><lcl lcl.ml.lang=\"German_Germany\"/><tcpIpApp \
         tcpIpApp.sntp.address=\"ntp-a.example.com\"/></polycomConfig>\n",
    );
    w(
        "site-b.cfg",
        "<polycomConfig><lcl lcl.ml.lang=\"Spanish_Spain\"/><tcpIpApp \
         tcpIpApp.sntp.address=\"ntp-b.example.com\"/></polycomConfig>\n",
    );
    w(
        "site-c.cfg",
        "<polycomConfig><device device.set=\"1\" device.prov.serverName=\"ftp.old.example\" \
         device.prov.serverName.set=\"1\"/><tcpIpApp tcpIpApp.sntp.address=\"ntp-c.example.com\"/>\
         </polycomConfig>\n",
    );
    w(
        "features.cfg",
        "<polycomConfig><feature feature.presence.enabled=\"1\" \
         up.welcomeText=\"Welcome &amp; hello\"/></polycomConfig>\n",
    );
    w("readme.txt", "the old server\n");
    w("sip.ld", "not really firmware");
    w("3111-48500-001.sip.ld", "not really firmware either");
    for i in 0..n {
        let m = mac(i);
        let kind = i % 3;
        if kind == 1 {
            w(
                &format!("{m}.cfg"),
                &format!(
                    "<APPLICATION APP_FILE_PATH=\"sip.ld\" \
                     CONFIG_FILES=\"site-b.cfg, features.cfg, {m}-reg.cfg\"/>"
                ),
            );
        } else if kind == 2 {
            w(
                &format!("{m}.cfg"),
                &format!("<APPLICATION CONFIG_FILES=\"site-c.cfg, {m}-reg.cfg\"/>"),
            );
        }
        w(
            &format!("{m}-reg.cfg"),
            &format!(
                "<polycomConfig><reg reg.1.address=\"{i}\" reg.1.auth.userId=\"{i}\" \
                 reg.1.auth.password=\"{}\" reg.1.displayName=\"O&apos;Brien &amp; Co {i}\" \
                 reg.1.server.1.address=\"pbx.example.com\"/><lcl \
                 lcl.ml.lang=\"French_France\"/></polycomConfig>",
                password(i)
            ),
        );
        if i % 10 == 0 {
            w(
                &format!("{m}-phone.cfg"),
                "<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity=\"2\"/></PHONE_CONFIG>",
            );
        }
    }
}

/// The parameters a phone got from the old tree: its master's files, leftmost first wins,
/// then its override file on top; the parameters zerotouch owns left out.
fn old_params(dir: &Path, m: &str) -> BTreeMap<String, String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let master = read(&format!("{m}.cfg"))
        .or_else(|| read("000000000000.cfg"))
        .expect("master");
    let doc = roxmltree::Document::parse(&master).expect("master xml");
    let list = doc
        .descendants()
        .find(|n| n.has_tag_name("APPLICATION"))
        .and_then(|n| n.attribute("CONFIG_FILES"))
        .expect("CONFIG_FILES")
        .replace("[PHONE_MAC_ADDRESS]", m);
    let attrs = |text: &str| -> Vec<(String, String)> {
        let doc = roxmltree::Document::parse(text).expect("xml");
        doc.descendants()
            .flat_map(|n| {
                n.attributes()
                    .map(|a| (a.name().to_string(), a.value().to_string()))
            })
            .filter(|(n, _)| n.contains('.') && !n.starts_with("device."))
            .collect()
    };
    let mut out = BTreeMap::new();
    if let Some(o) = read(&format!("{m}-phone.cfg")) {
        out.extend(attrs(&o));
    }
    for f in list.split(',').map(str::trim) {
        for (k, v) in attrs(&read(f).expect("listed file")) {
            out.entry(k).or_insert(v);
        }
    }
    out
}

fn profiles(server: &ZServer) -> String {
    server.cli_ok(&["profile", "list"])
}

#[test]
fn an_old_ftp_root_moves_in_and_every_phone_gets_what_it_got_before() {
    let n: usize = std::env::var("MIGRATE_PHONES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = ZServer::start();
    let creds = server.set_credentials();
    let tree = tempfile::tempdir().expect("tree");
    write_tree(tree.path(), n);
    let path = tree.path().to_str().expect("path");

    // The dry run says what becomes what and writes nothing.
    let out = server.cli_ok(&["migrate-tree", path]);
    assert!(out.contains("dry run, nothing written"), "{out}");
    assert!(out.contains(&format!("{n} device(s) associated")), "{out}");
    for (profile, files) in [
        ("migrated_1", "site-a.cfg, features.cfg"),
        ("migrated_2", "site-b.cfg, features.cfg"),
        ("migrated_3", "site-c.cfg"),
    ] {
        assert!(
            out.contains(&format!("profile {profile}: ")) && out.contains(files),
            "{profile}: {out}"
        );
    }
    assert!(out.contains("firmware 3111-48500-001.sip.ld"), "{out}");
    assert!(out.contains("left out readme.txt"), "{out}");
    assert!(
        out.contains("device.prov.serverName") && out.contains("set by zerotouch itself"),
        "{out}"
    );
    assert!(out.contains("secret reg.1.auth.password in"), "{out}");
    assert!(
        !out.contains(&password(0)),
        "no secret value is printed: {out}"
    );
    assert!(!profiles(&server).contains("migrated_"), "dry run wrote");
    assert!(
        !server.data_dir().join("uploads").join(mac(0)).exists(),
        "a dry run leaves no file or directory behind"
    );

    // A broken file is named with its line; nothing is written.
    let broken = tempfile::tempdir().expect("broken");
    write_tree(broken.path(), 9);
    std::fs::write(
        broken.path().join(format!("{}-reg.cfg", mac(4))),
        "<polycomConfig>\n<reg reg.1.address=\"4\">\n</polycomConfig>",
    )
    .expect("write");
    let err = server.cli_err(&[
        "migrate-tree",
        "--apply",
        broken.path().to_str().expect("p"),
    ]);
    assert!(
        err.contains(&format!("{}-reg.cfg", mac(4))) && err.contains("line 3"),
        "{err}"
    );
    assert!(!profiles(&server).contains("migrated_"), "half-written");

    // A MAC associated already is named; nothing is written either.
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", &mac(5), "--profile", "office"]);
    let err = server.cli_err(&["migrate-tree", "--apply", path]);
    assert!(
        err.contains(&mac(5)) && err.contains("associated already"),
        "{err}"
    );
    assert!(!profiles(&server).contains("migrated_"), "half-written");
    let out = server.cli(&["device", "show", &mac(6)]);
    assert!(
        !out.status.success(),
        "a device of the refused run was stored"
    );
    server.cli_ok(&["device", "delete", &mac(5), "--yes"]);

    // Applied.
    let out = server.cli_ok(&["migrate-tree", "--apply", path]);
    assert!(out.contains("applied"), "{out}");
    let list = profiles(&server);
    for p in ["migrated_1", "migrated_2", "migrated_3"] {
        assert!(list.contains(p), "{list}");
    }
    // SIP passwords are stored sealed: never in the database's bytes.
    let secrets: Vec<String> = (0..n).map(password).collect();
    for f in ["zerotouch.db", "zerotouch.db-wal"] {
        let bytes = std::fs::read(server.data_dir().join(f)).unwrap_or_default();
        let found: Vec<&String> = secrets
            .iter()
            .filter(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
            .collect();
        assert!(found.is_empty(), "{f} holds {found:?}");
    }
    // A sample of phones of every kind boots and gets what it got before.
    // Each phone boots once: a second phone with the account credential for an enrolled
    // MAC would be a stranger (contested), served no secret.
    let step = (n / 45).max(1);
    let sample: std::collections::BTreeSet<usize> = (0..n)
        .step_by(step)
        .chain([1, 2, 10])
        .filter(|i| *i < n)
        .collect();
    for i in sample {
        let m = mac(i);
        let mut phone = SimPhone::new(&m, &server.device.to_string(), &creds.0, &creds.1);
        assert_eq!(phone.boot_until_stable(6), Boot::Configured, "{m}");
        let want = old_params(tree.path(), &m);
        for (k, v) in &want {
            assert_eq!(
                phone.config.get(k),
                Some(v),
                "{m} (kind {}): {k}; got {:?}",
                i % 3,
                phone.config
            );
        }
        assert_ne!(
            phone
                .device
                .get("device.prov.serverName")
                .map(String::as_str),
            Some("ftp.old.example"),
            "{m}: the old server's address was left out"
        );
    }
}
