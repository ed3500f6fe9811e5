//! Secure by default (`actions::enrolment`, its `//!` states E-W, E-D and E-C): a fresh
//! install withholds secrets from the account credential in every account, association opens
//! a window until the phone enrols, a stranger who races the phone or comes after it is
//! caught as contested and gets nothing secret, phones enrol however late and whatever their
//! DHCP gives them, and an existing install keeps every phone's lines through the upgrade.

use std::net::{IpAddr, Ipv4Addr};

use crate::common::*;
use crate::sim::{Boot, SimPhone};

const PHONE: &str = "0004f2c0ffee";
const SIP_SECRET: &str = "Sip-Secret-81";
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const PHONE_AT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const STRANGER_UA: &str = "curl/8.14.1";

/// The default account with known credentials, a profile and one phone with a line.
fn install(server: &ZServer) -> (String, String) {
    let creds = server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&[
        "device",
        "add",
        PHONE,
        "--profile",
        "office",
        "--sip-user",
        "2001",
        "--sip-password",
        SIP_SECRET,
    ]);
    creds
}

fn status(server: &ZServer) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["enrol", "status", "--json"])).expect("json")
}

fn state_of(server: &ZServer, mac: &str) -> String {
    status(server)["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mac"] == mac)
        .map(|d| d["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Every file a client gets for the phone with the account credential, concatenated.
fn fetch_all(phone: &mut Phone) -> String {
    let master = phone.get(&format!("/{PHONE}.cfg"));
    assert_eq!(master.status, 200, "{}", master.text());
    let mut all = master.text();
    let files = all
        .split("CONFIG_FILES=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string();
    for f in files.split([',', ' ']).filter(|f| !f.is_empty()) {
        let r = phone.get(&format!("/{f}"));
        assert_eq!(r.status, 200, "{f}: {}", r.text());
        all.push_str(&r.text());
    }
    all
}

#[test]
fn a_fresh_install_withholds_secrets_and_the_phone_enrols_through_the_window_association_opened() {
    let server = ZServer::start();
    let shown = server.cli_ok(&["account", "show"]);
    assert!(
        shown.contains("secrets:          withheld until each device enrols"),
        "{shown}"
    );
    let (user, pass) = install(&server);
    let windows = server.cli_ok(&["enrol", "list"]);
    assert!(
        windows.contains(PHONE) && windows.contains("until the device enrols"),
        "association opened a window until it enrols: {windows}"
    );
    assert_eq!(state_of(&server, PHONE), "waiting");
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass).bind(PHONE_AT);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.user(), PHONE, "it adopted its own credential");
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET),
        "and got its line with it"
    );
    assert_eq!(phone.held("device.dhcp.bootSrvUseOpt"), "Static");
    assert_eq!(state_of(&server, PHONE), "enrolled");
    let windows = server.cli_ok(&["enrol", "list"]);
    assert!(
        !windows.contains(PHONE),
        "the window closed when it enrolled: {windows}"
    );
    // Start-up said what the option-160 value is, without the password.
    let out = server.output.lock().expect("output").clone();
    let line = out
        .lines()
        .find(|l| l.contains("DHCP option 160"))
        .expect("option 160 line");
    // Printed at the first start, before the test set its own credentials: the generated
    // user, the account's path, a placeholder for the password.
    let generated = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or_default();
    assert!(
        !generated.is_empty()
            && line.contains(&format!("http://{generated}:PASSWORD@<this-host>:"))
            && line.contains("/default-")
            && line.contains("account show --secrets"),
        "{line}"
    );
    assert!(
        !out.contains(&pass),
        "the password never goes to the output"
    );
}

#[test]
fn a_stranger_after_enrolment_gets_no_secret_writes_nothing_and_the_device_shows_contested() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass).bind(PHONE_AT);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let mut stranger = Phone::new(server.device, PHONE, STRANGER_UA, &user, &pass).bind(STRANGER);
    let got = fetch_all(&mut stranger);
    assert!(
        !got.contains(SIP_SECRET),
        "no secret to the account credential: {got}"
    );
    assert!(
        !got.contains(&format!("device.prov.user=\"{PHONE}\"")),
        "no credential of its own: {got}"
    );
    for body in [&b"<x/>"[..], b""] {
        let r = stranger.request("PUT", &format!("/overrides/{PHONE}-phone.cfg"), body);
        assert_eq!(r.status, 403, "an override for it is refused: {}", r.text());
        let r = stranger.request("PUT", &format!("/contacts/{PHONE}-directory.xml"), body);
        assert_eq!(r.status, 403, "its directory is its own: {}", r.text());
    }
    let s = status(&server);
    assert_eq!(s["contested"], 1, "{s}");
    let dev = &s["devices"][0];
    assert_eq!(dev["state"], "contested");
    // The device page says so in words, without the secret.
    let page = Session::admin(&server)
        .get(&format!("/devices/{PHONE}"))
        .text();
    assert!(
        page.contains("contested: another client claimed it"),
        "{page}"
    );
    assert!(!page.contains(SIP_SECRET));
    // The phone itself was sent its pending credential (the first claim); the stranger came
    // after it enrolled.
    assert_eq!(dev["claims"][0]["address"], "127.0.0.2", "{dev}");
    assert!(dev["claims"][0]["delivered_at"].is_i64(), "{dev}");
    let claim = &dev["claims"][1];
    assert_eq!(claim["address"], "127.0.0.3", "{dev}");
    assert_eq!(claim["user_agent"], STRANGER_UA);
    assert!(claim["after_enrolment_at"].is_i64(), "{claim}");
    let text = server.cli_ok(&["enrol", "status"]);
    assert!(
        text.contains("must be treated as leaked") && text.contains("127.0.0.3"),
        "{text}"
    );
    // The phone holding its own credential keeps being served in full.
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET)
    );
    assert_eq!(
        phone.last_boot().failures.len(),
        0,
        "{:?}",
        phone.last_boot().failures
    );
    // The admin decides: dismiss (once), and the device is enrolled again.
    server.cli_ok(&["enrol", "dismiss", PHONE]);
    assert_eq!(state_of(&server, PHONE), "enrolled");
    let again = server.cli(&["enrol", "dismiss", PHONE]);
    assert!(!again.status.success(), "nothing left to dismiss");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not contested"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn a_stranger_racing_the_phone_in_its_window_is_caught_and_re_enrolment_binds_it_to_the_phone() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    // The stranger reads the phone's files first, inside the window association opened.
    let mut stranger = Phone::new(server.device, PHONE, STRANGER_UA, &user, &pass).bind(STRANGER);
    let got = fetch_all(&mut stranger);
    assert!(
        !got.contains(SIP_SECRET),
        "still no secret in the window: {got}"
    );
    assert!(
        got.contains(&format!("device.prov.user=\"{PHONE}\"")),
        "the window hands out the pending credential: {got}"
    );
    let pending = got
        .split("device.prov.password=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("pending password")
        .to_string();
    // The phone comes next: the same pending credential (delivery is not enrolment).
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass).bind(PHONE_AT);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.password(), pending, "never a new one");
    let s = status(&server);
    assert_eq!(s["contested"], 1, "two addresses got its credential: {s}");
    let addresses: Vec<&str> = s["devices"][0]["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .filter_map(|c| c["address"].as_str())
        .collect();
    assert_eq!(addresses, ["127.0.0.3", "127.0.0.2"]);
    // Re-enrolment bound to the phone's address: counted (the phone holds a credential of
    // its own) and confirmed; the stranger's address gets nothing new.
    let out = server.cli(&["enrol", "reenrol", PHONE, "--address", "127.0.0.2"]);
    assert!(!out.status.success(), "counted first");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(PHONE) && err.contains("confirm"), "{err}");
    server.cli_ok(&["enrol", "reenrol", PHONE, "--address", "127.0.0.2", "--yes"]);
    let mut stranger = Phone::new(server.device, PHONE, STRANGER_UA, &user, &pass).bind(STRANGER);
    let got = fetch_all(&mut stranger);
    assert!(
        !got.contains(&format!("device.prov.user=\"{PHONE}\"")),
        "a window bound to the phone's address gives the stranger nothing: {got}"
    );
    // The phone (on the credential it holds) is sent the new one and uses it.
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_ne!(phone.password(), pending, "a new credential of its own");
    assert_eq!(state_of(&server, PHONE), "enrolled");
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET)
    );
}

#[test]
fn a_phone_associated_a_month_before_its_first_boot_enrols_and_gets_its_lines() {
    let server = ZServer::start_with_clock("");
    let (user, pass) = install(&server);
    server.advance_days(30);
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.user(), PHONE);
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET)
    );
}

#[test]
fn a_factory_phone_whose_dhcp_url_carries_credentials_enrols_once_it_is_sent_static() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let dhcp = format!("http://{user}:{pass}@{}/", server.device);
    let mut phone = SimPhone::factory(PHONE, crate::sim::VVX_500).dhcp(&dhcp);
    assert_eq!(phone.boot_until_stable(5), Boot::Configured);
    assert_eq!(phone.held("device.dhcp.bootSrvUseOpt"), "Static");
    assert_eq!(phone.user(), PHONE);
    assert!(
        !phone.held("device.prov.serverName").contains('@'),
        "no credentials in the address it is sent: {}",
        phone.held("device.prov.serverName")
    );
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET)
    );
    assert_eq!(state_of(&server, PHONE), "enrolled");
}

#[test]
fn a_poly_os_device_declared_as_one_is_not_withheld_and_is_not_counted_as_waiting() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let video = "0004f2b0b0b0";
    server.cli_ok(&[
        "device",
        "add",
        video,
        "--profile",
        "office",
        "--vendor-model",
        "Poly_Studio_X30",
    ]);
    assert_eq!(state_of(&server, video), "exempt");
    let s = status(&server);
    assert_eq!(s["not_enrolled"], 1, "only the phone waits: {s}");
    let mut x30 = SimPhone::poly_os(video, &format!("http://{}", server.device), &user, &pass);
    assert_eq!(x30.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        x30.user(),
        user,
        "no credential of its own for a family that cannot adopt it"
    );
}

#[test]
fn the_enrolment_api_shows_states_and_counts_and_confirms_like_the_cli() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let token = user_with_token(&server, "ops", "admin", "");
    let api = |method: &str, path: &str, body: &str| -> (u16, serde_json::Value) {
        let r = crate::common::api(&server, method, path, Some(&token), body);
        let v = serde_json::from_str(&r.text()).unwrap_or(serde_json::Value::Null);
        (r.status, v)
    };
    let (code, v) = api("GET", "/accounts/default/enrolment", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["withhold"], true);
    assert_eq!(v["not_enrolled"], 1);
    assert_eq!(v["devices"][0]["state"], "waiting");
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let path = format!("/accounts/default/enrolment/devices/{PHONE}/reenrol");
    let (code, v) = api("POST", &path, "{}");
    assert_eq!(code, 409, "counted first: {v}");
    assert_eq!(v["error"]["devices"], 1, "{v}");
    let (code, v) = api(
        "POST",
        &path,
        r#"{"confirm": true, "address": "127.0.0.9"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["address"], "127.0.0.9");
    let (code, v) = api(
        "POST",
        &path,
        r#"{"address": "not-an-address", "confirm": true}"#,
    );
    assert_eq!(code, 422, "a bad address is named: {v}");
    let (code, v) = api(
        "POST",
        "/accounts/default/enrolment/windows",
        r#"{"minutes": 0}"#,
    );
    assert_eq!(code, 422, "{v}");
    assert!(v.to_string().contains("minutes"), "{v}");
    let (code, v) = api(
        "POST",
        &format!("/accounts/default/enrolment/devices/{PHONE}/dismiss"),
        "",
    );
    assert_eq!(code, 409, "not contested: {v}");
}

/// An install from before withholding was the default: its phones were served their SIP
/// passwords with the account credential. After the upgrade each keeps them at every boot
/// until it has enrolled (no timer), and the account says how many have not.
#[test]
fn an_existing_install_upgraded_keeps_every_phones_lines_until_it_enrols() {
    // Fixed ports: the phone keeps the address it was given across the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let extra = format!("device.http_listen = \"127.0.0.1:{port}\"\n");
    let server = ZServer::start_with(&extra);
    let (user, pass) = install(&server);
    server.cli_ok(&["enrol", "mode", "off"]);
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.user(),
        user,
        "served with the account credential, as before"
    );
    let dir = server.stop_keep();
    // The database as the release before this one left it: schema 8, no withholding.
    {
        let conn =
            rusqlite::Connection::open(dir.path().join("data").join("zerotouch.db")).expect("db");
        conn.execute_batch(UNDO_AFTER_0011)
            .expect("undo 0012 and later");
        conn.execute_batch(
            "DROP TABLE enrolment_claims;
             DROP TABLE deliberate_parameters;
             ALTER TABLE device_credentials DROP COLUMN contested_at;
             ALTER TABLE devices DROP COLUMN secrets_until_enrolled;
             DELETE FROM enrolment_windows;
             ALTER TABLE enrolment_windows DROP COLUMN until_enrolled;
             ALTER TABLE enrolment_windows DROP COLUMN address;
             ALTER TABLE accounts DROP COLUMN enrol_window_max_days;
             UPDATE accounts SET device_secrets = 0;
             PRAGMA user_version = 8;",
        )
        .expect("downgrade");
    }
    let server = ZServer::start_in(dir, &extra);
    assert_eq!(state_of(&server, PHONE), "served-before");
    let shown = server.cli_ok(&["account", "show"]);
    assert!(shown.contains("1 device(s) not yet enrolled"), "{shown}");
    // Every boot keeps its line; the first one also brings its own credential.
    for _ in 0..2 {
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        assert_eq!(
            phone.config.get("reg.1.auth.password").map(String::as_str),
            Some(SIP_SECRET)
        );
    }
    assert_eq!(phone.user(), PHONE, "it enrolled on the way");
    assert_eq!(state_of(&server, PHONE), "enrolled");
    let shown = server.cli_ok(&["account", "show"]);
    assert!(!shown.contains("not yet enrolled"), "{shown}");
}

/// The Enrolment page in a real headless Chromium: a contested device with its claimant,
/// re-enrolment counted and confirmed, then the claims gone.
#[test]
fn the_enrolment_page_shows_a_contested_device_and_re_enrols_it_with_a_confirmation() {
    use crate::browser::{Browser, ONE_BROWSER, runtime};
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass).bind(PHONE_AT);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let mut stranger = Phone::new(server.device, PHONE, STRANGER_UA, &user, &pass).bind(STRANGER);
    fetch_all(&mut stranger);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "enrolment").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.goto("/accounts/default").await;
        let text = b.text().await;
        assert!(text.contains("not yet enrolled · contested"), "{text}");
        b.click_link("Enrolment").await;
        assert_eq!(b.path().await, "/accounts/default/enrolment");
        let text = b.text().await;
        assert!(
            text.contains("Contested devices")
                && text.contains("127.0.0.3")
                && text.contains(STRANGER_UA)
                && text.contains("must be treated as leaked"),
            "{text}"
        );
        b.shot("contested").await;
        b.fill("address", "127.0.0.2").await;
        b.click("form[action$='/reenrol'] button[type=submit]")
            .await;
        let text = b.text().await;
        assert!(
            text.contains("Re-enrol the device") && text.contains(PHONE),
            "counted and asked first: {text}"
        );
        b.shot("confirm").await;
        b.click("button.danger").await;
        let text = b.text().await;
        assert!(text.contains("Re-enrolment open"), "{text}");
        assert!(text.contains("No device is contested"), "{text}");
        assert!(
            text.contains("127.0.0.2"),
            "the window is bound to the phone: {text}"
        );
        b.shot("reenrolled").await;
        b.close().await;
    });
}

/// A replaced phone: the old one's credential is revoked with the association, and the new
/// MAC gets a window until it enrols; a device the unknown-device policy associated gets
/// none until an admin confirms it.
#[test]
fn a_replacement_enrols_through_its_own_window_and_auto_associated_devices_wait_for_an_admin() {
    let server = ZServer::start();
    let (user, pass) = install(&server);
    let mut old = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass);
    assert_eq!(old.boot_until_stable(4), Boot::Configured);
    let token = user_with_token(&server, "ops", "admin", "");
    let new_mac = "0004f2c0ffef";
    let body = format!(r#"{{"new_mac": "{new_mac}", "serial": "", "confirm": true}}"#);
    let r = crate::common::api(
        &server,
        "POST",
        &format!("/devices/{PHONE}/replace"),
        Some(&token),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(state_of(&server, new_mac), "waiting");
    let mut new = SimPhone::new(new_mac, &server.device.to_string(), &user, &pass);
    assert_eq!(new.boot_until_stable(4), Boot::Configured);
    assert_eq!(new.user(), new_mac);
    assert_eq!(
        new.config.get("reg.1.auth.password").map(String::as_str),
        Some(SIP_SECRET),
        "the line moved to the new phone"
    );
    assert_ne!(new.password(), old.password(), "a credential of its own");

    // The default-profile policy associates an unknown phone: no window until confirmed.
    server.cli_ok(&[
        "account",
        "set-policy",
        "--unknown-devices",
        "default-profile",
        "--default-profile",
        "office",
    ]);
    let stray = "0004f2c0ff00";
    let mut phone = SimPhone::new(stray, &server.device.to_string(), &user, &pass);
    phone.boot_until_stable(4);
    assert_eq!(
        phone.user(),
        user,
        "no credential of its own before an admin confirms it"
    );
    assert_eq!(state_of(&server, stray), "no-window");
    server.cli_ok(&["device", "confirm", stray]);
    assert_eq!(state_of(&server, stray), "waiting");
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(phone.user(), stray, "enrolled once confirmed");
}
