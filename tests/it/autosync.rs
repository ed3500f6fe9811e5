//! Auto-Sync credentials end to end (docs/design.md §6.3, after the Lens pages), with simulated UCS
//! phones (`sim`) against the real server and a simulated clock: a rotation reaches online
//! phones at their next poll and offline phones when they come back, never a stranger;
//! turning Auto-Sync off locks the pending ones out (and says so first); disabling
//! provisioning refuses every device request.

use serde_json::Value;

use crate::common::*;
use crate::sim::{self, Boot, SimPhone};

const PHONES: usize = 100;
const ONLINE: usize = 70;
const FIRST: &str = "First-Passw0rd";
const SECOND: &str = "Second-Passw0rd";

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x1000 + i)
}

/// A profile and `n` associated devices, added with one import.
/// Associates `n` phones that stay on the account credential (Auto-Sync's subject): the
/// account serves secrets to it, so association opens no enrolment window (an import, like
/// any association, opens one in an account that withholds secrets).
fn associate(server: &ZServer, n: usize) {
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office", "--polling", "enable"]);
    let devices: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({"mac": mac(i), "profile": "office"}))
        .collect();
    let file = server.dir.path().join("devices.json");
    let doc = serde_json::json!({"format": "zerotouch-export", "version": 1, "devices": devices});
    std::fs::write(&file, doc.to_string()).expect("write");
    server.cli_ok(&["transfer", "import", file.to_str().expect("path")]);
}

fn json(server: &ZServer, args: &[&str]) -> Value {
    let out = server.cli_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn status(server: &ZServer) -> (u64, usize, usize) {
    let s = json(server, &["autosync", "status", "--json"]);
    (
        s["synced"].as_u64().expect("synced"),
        s["pending"].as_array().expect("pending").len(),
        s["locked_out"].as_array().expect("locked out").len(),
    )
}

fn flagged(server: &ZServer, flag: &str) -> Vec<String> {
    let inv = json(server, &["inventory", "--flag", flag, "--json"]);
    let mut macs: Vec<String> = inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["mac"].as_str().expect("mac").to_string())
        .collect();
    macs.sort();
    macs
}

#[test]
fn a_rotation_reaches_every_phone_that_comes_back_and_never_a_stranger() {
    let started = std::time::Instant::now();
    let server = ZServer::start_with_clock("");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    // Phones on the account credential (Auto-Sync's subject), not enrolled ones.
    server.serve_secrets_to_account();
    associate(&server, PHONES);
    let addr = server.device.to_string();
    let mut phones: Vec<SimPhone> = (0..PHONES)
        .map(|i| SimPhone::new(&mac(i), &addr, "phones", FIRST))
        .collect();

    // First contact: Auto-Sync (on for a new installation's account) keeps each phone here
    // (boot server Static, this address) with the account's credentials: one reboot each.
    for p in &mut phones {
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{}", p.mac);
        assert_eq!(p.reboots, 1, "{}", p.mac);
        assert_eq!(p.held(sim::BOOT_SERVER), "Static");
        assert_eq!(p.held(sim::SERVER_NAME), addr);
        assert_eq!(
            p.held(sim::SERVER_TYPE),
            "HTTP",
            "no CA confirmed: no HTTPS"
        );
        assert_eq!(p.held(sim::TAG_SERIAL), "1");
        assert_eq!(
            p.config.get("prov.polling.enabled").map(String::as_str),
            Some("1")
        );
    }
    assert_eq!(status(&server), (PHONES as u64, 0, 0));

    // A day later the credentials change. Auto-Sync is on and every phone was seen
    // recently: nobody is locked out, so no confirmation is needed.
    server.advance_days(1);
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
    assert_eq!(status(&server), (0, PHONES, 0));
    assert_eq!(flagged(&server, "credentials-pending").len(), PHONES);

    // The online phones poll: still holding the old credentials, they are served the new
    // ones, reboot, and come back with them.
    for p in &mut phones[..ONLINE] {
        let first = p.boot();
        assert_eq!(
            first,
            Boot::Rebooted(vec![sim::PASSWORD.to_string()]),
            "{}: only the password changed",
            p.mac
        );
        assert_eq!(p.boot(), Boot::Configured, "{}", p.mac);
        assert_eq!(p.password(), SECOND);
    }
    assert_eq!(status(&server), (ONLINE as u64, PHONES - ONLINE, 0));

    // Within the grace window the old credentials stay valid for every device that may
    // hold them, whatever other requests used: a request with the account credential
    // proves nothing about which phone sent it (an admin's curl with the new ones must not
    // lock out a phone still holding the old ones). A stranger with the old ones gets what
    // anyone with the new ones gets.
    let mut stranger = SimPhone::new(&mac(0), &addr, "phones", FIRST);
    assert!(
        matches!(stranger.boot(), Boot::Rebooted(_)),
        "old credentials inside the window"
    );
    let mut direct = Phone::new(server.device, &mac(1), UA_VVX500_APP, "phones", FIRST);
    assert_eq!(direct.get(&format!("/{}-device.cfg", mac(1))).status, 200);
    // ...and for requests that name no device (shared files, firmware).
    let mut anon = Phone::new(server.device, &mac(ONLINE), UA_VVX500_APP, "phones", FIRST);
    assert_eq!(anon.get("/000000000000.cfg").status, 200);
    // The phones the stranger named still count as seen with the old generation: their
    // latest request used it.
    assert_eq!(status(&server), (ONLINE as u64 - 2, PHONES - ONLINE + 2, 0));
    for p in &mut phones[..2] {
        assert_eq!(
            p.boot(),
            Boot::Configured,
            "{}: the real phone is served",
            p.mac
        );
    }
    assert_eq!(status(&server), (ONLINE as u64, PHONES - ONLINE, 0));

    // Five days later, most offline phones come back and sync within the window.
    server.advance_days(5);
    let back = PHONES - 5;
    for p in &mut phones[ONLINE..back] {
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{}", p.mac);
        assert_eq!(p.password(), SECOND, "{}", p.mac);
    }
    assert_eq!(status(&server), (back as u64, 5, 0));

    // Turning Auto-Sync off inside the grace window: the count comes first. The five still
    // on the first credentials hold it; the others were last seen with the second, which
    // proves nothing about the phone (anyone holding it can send one), so each may still
    // hold the first and is counted too.
    let err = server.cli_err(&["autosync", "disable"]);
    assert!(
        err.contains(&format!("{PHONES} phone(s) affected"))
            && err.contains("Auto-Sync is off")
            && err.contains("--yes"),
        "{err}"
    );
    for i in back..PHONES {
        assert!(
            err.contains(&format!("{}: holds generation", mac(i))),
            "{}: {err}",
            mac(i)
        );
    }
    assert!(
        err.contains(&format!("{}: may still hold generation", mac(0))),
        "{err}"
    );
    assert_eq!(status(&server).1, 5, "nothing changed without --yes");
    server.cli_ok(&["autosync", "disable", "--yes"]);
    let pending: Vec<String> = (back..PHONES).map(mac).collect();
    assert_eq!(flagged(&server, "locked-out"), pending);
    assert_eq!(status(&server), (back as u64, 0, 5));
    // No rollback: the synced phones keep what they have and are served as before.
    assert_eq!(phones[0].boot(), Boot::Configured);
    assert_eq!(phones[0].password(), SECOND);
    // A locked-out phone is refused.
    let refused = phones[back].boot();
    assert!(
        matches!(refused, Boot::Refused { status: 401, .. }),
        "{refused:?}"
    );

    // Re-admitting one recovers it (Auto-Sync stays off).
    server.cli_ok(&["autosync", "readmit", &mac(back)]);
    assert_eq!(phones[back].boot_until_stable(4), Boot::Configured);
    assert_eq!(phones[back].password(), SECOND);
    assert_eq!(flagged(&server, "locked-out").len(), 4);

    // Disabling provisioning: the count, then every device request refused.
    let err = server.cli_err(&["account", "disable"]);
    assert!(
        err.contains(&format!("{PHONES} phone(s) affected")),
        "{err}"
    );
    server.cli_ok(&["account", "disable", "--yes"]);
    let shown = server.cli_ok(&["account", "show"]);
    assert!(
        shown.contains("provisioning:     disabled")
            && shown.contains("auto-sync:        disabled"),
        "{shown}"
    );
    for p in &mut phones {
        match p.boot() {
            Boot::Refused { status: 404, .. } => {}
            other => panic!("{}: {other:?}", p.mac),
        }
    }
    let mut direct = Phone::new(server.device, &mac(0), UA_VVX500_APP, "phones", SECOND);
    assert_eq!(direct.get(&format!("/{}-device.cfg", mac(0))).status, 403);
    assert_eq!(direct.get("/000000000000.cfg").status, 404);
    let err = server.cli_err(&[
        "account",
        "set-credentials",
        "--user",
        "x1",
        "--password",
        "Third-Passw0rd",
    ]);
    assert!(err.contains("enable it"), "{err}");
    eprintln!("{PHONES} phones in {:?}", started.elapsed());
}

#[test]
fn after_the_grace_window_a_phone_is_locked_out_and_reported() {
    let server = ZServer::start_with_clock("");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    associate(&server, 3);
    let addr = server.device.to_string();
    let mut phones: Vec<SimPhone> = (0..3)
        .map(|i| SimPhone::new(&mac(i), &addr, "phones", FIRST))
        .collect();
    for p in &mut phones {
        assert_eq!(p.boot_until_stable(4), Boot::Configured);
    }
    server.cli_ok(&["autosync", "set", "--grace-days", "3"]);
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
    server.advance_days(2);
    assert_eq!(
        phones[0].boot_until_stable(4),
        Boot::Configured,
        "within the window"
    );
    server.advance_days(2);
    let r = phones[1].boot();
    assert!(matches!(r, Boot::Refused { status: 401, .. }), "{r:?}");
    let report = json(&server, &["autosync", "report", "--json"]);
    let rows = report.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{report}");
    assert!(rows.iter().all(|r| r["state"] == "locked-out"));
    assert!(
        rows[0]["why"]
            .as_str()
            .expect("why")
            .contains("grace window")
    );
    // Re-admitting every locked-out phone at once lets them sync.
    let out = server.cli_ok(&["autosync", "readmit", "--all-locked-out"]);
    assert!(out.contains("2 device(s) re-admitted"), "{out}");
    for p in &mut phones[1..] {
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{}", p.mac);
        assert_eq!(p.password(), SECOND);
    }
    assert!(
        server
            .cli_ok(&["autosync", "report"])
            .contains("every device has come back")
    );
    // A compromised rotation has no window: it needs confirmation, then the old
    // credentials stop working at once.
    let err = server.cli_err(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        "Third-Passw0rd",
        "--compromised",
    ]);
    assert!(
        err.contains("3 phone(s) affected") && err.contains("refused from now"),
        "{err}"
    );
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        "Third-Passw0rd",
        "--compromised",
        "--yes",
    ]);
    let r = phones[0].boot();
    assert!(matches!(r, Boot::Refused { status: 401, .. }), "{r:?}");
}

#[test]
fn a_phone_not_seen_for_n_days_gets_no_old_credentials() {
    let server = ZServer::start_with_clock("");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    associate(&server, 1);
    let mut phone = SimPhone::new(&mac(0), &server.device.to_string(), "phones", FIRST);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    server.wait_recorded(&mac(0));
    server.cli_ok(&["autosync", "set", "--seen-days", "5", "--grace-days", "30"]);
    // Not seen for 6 days when the credentials change: counted then, refused from then on.
    server.advance_days(6);
    let err = server.cli_err(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
    ]);
    assert!(
        err.contains(&mac(0)) && err.contains("refused from now") && err.contains("--yes"),
        "{err}"
    );
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
    server.advance_days(1);
    let r = phone.boot();
    assert!(matches!(r, Boot::Refused { status: 401, .. }), "{r:?}");
    let s = json(&server, &["autosync", "status", "--json"]);
    assert!(
        s["locked_out"][0]["why"]
            .as_str()
            .expect("why")
            .contains("not been seen recently when these credentials were replaced"),
        "{s}"
    );
}

#[test]
fn seen_days_is_measured_at_the_rotation_not_at_each_request() {
    let server = ZServer::start_with_clock("");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    associate(&server, 1);
    let mut phone = SimPhone::new(&mac(0), &server.device.to_string(), "phones", FIRST);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    server.wait_recorded(&mac(0));
    // Last seen 20 days before the rotation (within 30), back on day 12 of a 14-day window:
    // 32 days after it was last seen, and served.
    server.advance_days(20);
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
    server.advance_days(12);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.password(), SECOND);
}

#[test]
fn an_automatically_associated_phone_gets_no_auto_sync_until_confirmed() {
    let server = ZServer::start_with_clock("");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&[
        "account",
        "set-policy",
        "--unknown-devices",
        "default-profile",
        "--default-profile",
        "office",
    ]);
    let mut phone = SimPhone::new(&mac(7), &server.device.to_string(), "phones", FIRST);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.held(sim::BOOT_SERVER),
        "Default",
        "no Auto-Sync values"
    );
    assert_eq!(
        phone.held(sim::TAG_SERIAL),
        "1",
        "zerotouch's own values still come"
    );
    let reboots = phone.reboots;
    server.cli_ok(&["device", "confirm", &mac(7)]);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.held(sim::BOOT_SERVER),
        "Static",
        "confirmed: Auto-Sync applies"
    );
    assert_eq!(phone.reboots, reboots + 1);
}

#[test]
fn a_phone_moves_to_https_only_after_it_proves_it_trusts_the_ca() {
    let server =
        ZServer::start_with("tls.deliver_ca_to_phones = true\ntls.key_type = \"ecdsa-p256\"");
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    associate(&server, 2);
    // The phone enrols (its own credential is what proves anything it does); a second
    // phone, or anyone holding the account credential, proves nothing.
    server.cli_ok(&["enrol", "mode", "on", "--yes"]);
    server.cli_ok(&["enrol", "open", "--minutes", "60", "--mac", &mac(0)]);
    let https = server.https.expect("device HTTPS listener");
    let mut phone = SimPhone::new(&mac(0), &server.device.to_string(), "phones", FIRST);
    // First boot: the CA, the serial tag, its own credential and Auto-Sync's values arrive
    // together; the TLS probe (last in CONFIG_FILES) cannot be fetched yet: the phone does
    // not trust us, its handshake fails. So HTTPS is not asked for.
    let probe = format!(
        "https://127.0.0.1:{}/{}-tls-probe.cfg",
        https.port(),
        mac(0)
    );
    let Boot::Incomplete { failed, adopted } = phone.boot() else {
        panic!("the first boot delivers changes and fails the probe")
    };
    assert!(adopted.contains(&sim::CA_CERT.to_string()), "{adopted:?}");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].url, probe);
    assert_eq!(failed[0].status, None, "no TLS without a trusted CA");
    assert!(failed[0].what.contains("TLS handshake"), "{failed:?}");
    assert_eq!(phone.held(sim::SERVER_TYPE), "HTTP");
    assert_eq!(phone.user(), mac(0), "its own credential");
    assert!(
        phone.requests().iter().all(|r| r.url != probe),
        "no request without a trusted CA: {:?}",
        phone.requests()
    );
    // It now trusts the CA and fetches the probe, which confirms the CA; still over HTTP.
    assert_eq!(phone.boot_until_stable(6), Boot::Configured);
    assert!(
        phone
            .requests()
            .iter()
            .any(|r| r.url == probe && r.status == 200)
    );
    assert_eq!(phone.held(sim::SERVER_TYPE), "HTTP");
    // Only now, at its next poll, is it sent server type HTTPS and the HTTPS address.
    assert_eq!(
        phone.boot(),
        Boot::Rebooted(vec![
            sim::SERVER_NAME.to_string(),
            sim::SERVER_TYPE.to_string()
        ])
    );
    assert_eq!(phone.held(sim::SERVER_TYPE), "HTTPS");
    assert_eq!(
        phone.held(sim::SERVER_NAME),
        format!("127.0.0.1:{}", https.port())
    );
    // It boots over HTTPS now, and there everything is confirmed: nothing more is pending.
    assert_eq!(phone.boot(), Boot::Configured);
    let last = phone.requests().last().expect("requests");
    assert!(last.url.starts_with("https://"), "{last:?}");

    // A phone on the account credential fetches its probe too (as anyone could, with
    // `curl -k`): that proves nothing, so it is never switched to HTTPS (it might not trust
    // the CA at all).
    let mut other = SimPhone::new(&mac(1), &server.device.to_string(), "phones", FIRST);
    assert_eq!(other.boot_until_stable(6), Boot::Configured);
    assert!(
        other
            .requests()
            .iter()
            .any(|r| r.url.ends_with("-tls-probe.cfg") && r.status == 200),
        "{:?}",
        other.requests()
    );
    assert_eq!(other.held(sim::SERVER_TYPE), "HTTP");
    assert_eq!(other.boot(), Boot::Configured, "still nothing to switch");
    let inv = json(&server, &["inventory", "--json"]);
    assert_eq!(
        inv["devices"][0]["awaiting"],
        serde_json::json!([]),
        "{inv}"
    );
}
