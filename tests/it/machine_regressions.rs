//! The nine ways ordinary use locked phones out while the tools said all was well (the
//! credential state-machine issue), each a named test, each also run with the defect put
//! back behind its test-only switch (`domain::regress`, debug builds) to show the test
//! catches it. Requests go out with curl, as an admin's check or a phone would send them,
//! from loopback addresses of the test's choosing.

use std::process::Command;

use crate::common::*;
use crate::sim::{self, Boot, SerialTag, SimPhone};

const FIRST: &str = "First-Passw0rd";
const SECOND: &str = "Second-Passw0rd";
const UA: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x7000 + i)
}

/// A server (simulated clock) with `defect` switched back on, or none.
fn server(defect: Option<&str>, extra: &str) -> ZServer {
    match defect {
        Some(d) => ZServer::start_with_clock_env(extra, &[("ZEROTOUCH_TEST_REGRESS", d)]),
        None => ZServer::start_with_clock(extra),
    }
}

/// `GET path` with curl from `from` (a loopback address), Basic credentials: the status
/// and the body.
fn curl(server: &ZServer, from: &str, path: &str, user: &str, password: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--interface", from, "-A", UA, "-u"])
        .arg(format!("{user}:{password}"))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("http://{}{path}", server.device))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

fn setup(server: &ZServer, phones: usize, secrets_on: bool) {
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    server.cli_ok(&[
        "enrol",
        "mode",
        if secrets_on { "on" } else { "off" },
        "--yes",
    ]);
    server.cli_ok(&["profile", "add", "office", "--polling", "enable"]);
    for i in 0..phones {
        server.cli_ok(&[
            "device",
            "add",
            &mac(i),
            "--profile",
            "office",
            "--sip-server",
            "sip.example.com",
            "--sip-user",
            &format!("{}", 100 + i),
            "--sip-password",
            &format!("Line-Secret-{i}"),
        ]);
    }
}

fn rotate(server: &ZServer) {
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
}

fn autosync(server: &ZServer) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["autosync", "status", "--json"])).expect("json")
}

/// Runs `check` on a normal server and expects it to pass; then, with `defect` back, expects
/// it to fail (a panic inside `check`).
fn with_teeth(defect: &str, check: fn(Option<&str>)) {
    check(None);
    let caught = std::panic::catch_unwind(|| check(Some(defect)));
    assert!(
        caught.is_err(),
        "with `{defect}` switched back on the test should fail, and it passed"
    );
}

/// Defect 1: After a rotation, one `GET <mac>.cfg` with the new credentials (an admin's curl)
/// recorded the MAC as synced and took the old ones from the real phone.
#[test]
fn an_admin_curl_with_the_new_credentials_does_not_lock_out_the_phone_still_on_the_old() {
    with_teeth("curl-synced", |defect| {
        let s = server(defect, "");
        setup(&s, 1, false);
        let mut phone = SimPhone::new(&mac(0), &s.device.to_string(), "phones", FIRST);
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        rotate(&s);
        // The admin checks with the new credentials, as the README shows.
        let (status, _) = curl(
            &s,
            "127.0.0.1",
            &format!("/{}.cfg", mac(0)),
            "phones",
            SECOND,
        );
        assert_eq!(status, 200);
        let st = autosync(&s);
        assert_eq!(st["synced"], 1, "seen with the new ones: {st}");
        // The real phone still holds the old ones: it is served, given the new ones, and
        // comes back with them.
        assert_eq!(
            phone.boot(),
            Boot::Rebooted(vec![sim::PASSWORD.to_string()]),
            "the phone on the old credentials is served"
        );
        assert_eq!(phone.boot(), Boot::Configured);
        assert_eq!(phone.password(), SECOND);
        // Re-admission works for any MAC an admin names.
        s.cli_ok(&["autosync", "readmit", &mac(0)]);
    });
}

/// Defect 2: `enrol mode off` locked out every enrolled phone (its own credential was accepted
/// only while the mode was on).
#[test]
fn an_enrolled_phone_keeps_its_own_credential_when_withholding_is_turned_off() {
    with_teeth("own-needs-mode", |defect| {
        let s = server(defect, "");
        setup(&s, 1, true);
        s.cli_ok(&["enrol", "open", "--minutes", "60", "--mac", &mac(0)]);
        let mut phone = SimPhone::new(&mac(0), &s.device.to_string(), "phones", FIRST);
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        assert_eq!(phone.user(), mac(0), "enrolled: it uses its own credential");
        s.cli_ok(&["enrol", "mode", "off", "--yes"]);
        assert_eq!(phone.boot(), Boot::Configured, "still served");
        let (status, body) = curl(
            &s,
            "127.0.0.1",
            &format!("/{}-device.cfg", mac(0)),
            phone.user(),
            phone.password(),
        );
        assert_eq!(status, 200);
        assert!(body.contains("Line-Secret-0"), "with its SIP password");
    });
}

/// Defect 3: `enrol mode on` withdrew SIP passwords from every phone not yet enrolled, with no
/// count and no confirmation.
#[test]
fn withholding_secrets_counts_the_phones_that_lose_them_and_asks_first() {
    with_teeth("mode-unconfirmed", |defect| {
        let s = server(defect, "");
        setup(&s, 3, false);
        let err = s.cli_err(&["enrol", "mode", "on"]);
        assert!(
            err.contains("3 phone(s) affected") && err.contains(&mac(2)) && err.contains("--yes"),
            "{err}"
        );
        // Nothing changed: the account credential still gets the lines.
        let (status, body) = curl(
            &s,
            "127.0.0.1",
            &format!("/{}-device.cfg", mac(1)),
            "phones",
            FIRST,
        );
        assert_eq!(status, 200);
        assert!(body.contains("Line-Secret-1"), "{body}");
    });
}

/// Defect 4: A profile file carrying `device.prov.user`/`password` (a legacy site.cfg) was accepted
/// with a warning; once the server's own values were confirmed the profile's won and the
/// phone was locked out.
#[test]
fn a_profile_file_that_sets_provisioning_credentials_is_refused_naming_file_line_and_parameter() {
    with_teeth("owned-in-profile", |defect| {
        let s = server(defect, "");
        setup(&s, 0, false);
        let file = write_file(
            s.dir.path(),
            "site.cfg",
            b"<polycomConfig up.welcome=\"1\"\n  device.prov.user=\"legacy\"\n  device.prov.password=\"legacy-pass\"/>\n",
        );
        let err = s.cli_err(&[
            "profile",
            "add",
            "legacy",
            "--file",
            file.to_str().expect("path"),
        ]);
        assert!(
            err.contains("site.cfg")
                && err.contains("line 2")
                && err.contains("device.prov.user")
                && err.contains("line 3")
                && err.contains("device.prov.password"),
            "{err}"
        );
        assert!(
            !s.cli_ok(&["profile", "list"]).contains("legacy"),
            "nothing stored"
        );
    });
}

/// Defect 5: A phone whose User-Agent carries no `(SN:<mac>)` never confirmed the serial tag, so
/// `device.set="1"` was sent on every boot forever.
#[test]
fn a_phone_without_the_serial_tag_is_not_sent_device_set_forever() {
    with_teeth("tag-forever", |defect| {
        let s = server(defect, "");
        setup(&s, 1, false);
        let mut phone = SimPhone::new(&mac(0), &s.device.to_string(), "phones", FIRST)
            .with_serial_tag(SerialTag::Off);
        let _ = phone.boot();
        let mut stable = false;
        for _ in 0..machine_give_up() + 2 {
            if phone.boot() == Boot::Configured {
                stable = true;
                break;
            }
        }
        assert!(stable, "device.set stops once its reboot is seen");
        let (_, body) = curl(
            &s,
            "127.0.0.1",
            &format!("/{}-device.cfg", mac(0)),
            "phones",
            FIRST,
        );
        assert!(!body.contains("device.set"), "{body}");
    });
}

fn machine_give_up() -> usize {
    zerotouch::domain::machine::GIVE_UP_AFTER as usize
}

/// Defect 6: `enrol rotate` cleared the device's confirmation: during an account-wide window a
/// stranger with the account credential received the rotated credential (and with it the
/// SIP password), and the real phone was locked out.
#[test]
fn rotating_an_own_credential_during_a_window_never_hands_it_to_a_stranger() {
    with_teeth("rotate-unenrols", |defect| {
        let s = server(defect, "");
        setup(&s, 1, true);
        s.cli_ok(&["enrol", "open", "--minutes", "600"]);
        let mut phone = SimPhone::new(&mac(0), &s.device.to_string(), "phones", FIRST);
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        assert_eq!(phone.user(), mac(0));
        s.cli_ok(&["enrol", "rotate", &mac(0), "--yes"]);
        // A stranger with the account credential, inside the account-wide window.
        let (status, body) = curl(
            &s,
            "127.0.0.2",
            &format!("/{}-device.cfg", mac(0)),
            "phones",
            FIRST,
        );
        assert_eq!(status, 200);
        assert!(
            !body.contains("device.prov.password") && !body.contains("Line-Secret-0"),
            "no credential and no secret for the stranger: {body}"
        );
        // The real phone gets its new credential and its lines.
        assert!(matches!(phone.boot(), Boot::Rebooted(_)));
        assert_eq!(phone.boot(), Boot::Configured);
    });
}

/// Defect 7: More than 50 phones behind one address (a NAT'd branch) got 429 on their master file.
#[test]
fn sixty_phones_behind_one_address_are_all_served() {
    with_teeth("mac-limit", |defect| {
        let s = server(defect, "");
        setup(&s, 60, false);
        // 127.0.0.1 is the harness's allowlisted site; this branch is not.
        for i in 0..60 {
            let (status, _) = curl(
                &s,
                "127.0.0.3",
                &format!("/{}.cfg", mac(i)),
                "phones",
                FIRST,
            );
            assert_eq!(status, 200, "{}", mac(i));
        }
    });
}

/// Defect 8: During a grace window, phones on the old generation got 401 on the shared licence and
/// directory files — three wrong-credential counts per boot — so a NAT'd site was throttled.
#[test]
fn phones_on_the_old_credentials_get_shared_files_and_are_never_throttled() {
    with_teeth("shared-old-401", |defect| {
        let s = server(defect, "auth.failure_limit = 5");
        setup(&s, 1, false);
        let licence = write_file(s.dir.path(), "000000000000-license.cfg", b"<license/>");
        s.cli_ok(&["assets", "put", licence.to_str().expect("path")]);
        rotate(&s);
        for _ in 0..10 {
            let (status, _) = curl(
                &s,
                "127.0.0.4",
                "/000000000000-license.cfg",
                "phones",
                FIRST,
            );
            assert_eq!(status, 200, "the shared licence with the old credentials");
        }
        let (status, _) = curl(
            &s,
            "127.0.0.4",
            &format!("/{}.cfg", mac(0)),
            "phones",
            FIRST,
        );
        assert_eq!(status, 200, "not throttled");
    });
}

/// Defect 9: `seen_days` was checked at each request: a phone last seen 20 days before a rotation
/// that came back on day 12 of a 14-day window was refused.
#[test]
fn a_phone_seen_within_seen_days_at_the_rotation_is_served_when_it_comes_back_late() {
    with_teeth("seen-at-request", |defect| {
        let s = server(defect, "");
        setup(&s, 1, false);
        let mut phone = SimPhone::new(&mac(0), &s.device.to_string(), "phones", FIRST);
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        s.wait_recorded(&mac(0));
        s.advance_days(20);
        rotate(&s);
        s.advance_days(12);
        assert_eq!(phone.boot_until_stable(4), Boot::Configured);
        assert_eq!(phone.password(), SECOND);
    });
}
