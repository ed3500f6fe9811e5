//! Per-device secrets end to end (docs/design.md §6.4) with the phone simulator: a stranger holding
//! the account credential and a victim's MAC gets no secret; the phone gets its own
//! credential inside an enrolment window, adopts it and only then its secrets; its own
//! files are its own; rotation and re-enrolment; secrets sealed in the database. The device
//! certificate path is in `tls.rs` (`a_device_certificate_proves_the_device_and_gets_its_secrets`).

use std::time::Duration;

use crate::common::*;
use crate::sim::{self, Boot, SimPhone};

pub const PHONE: &str = "0004f2a1b2c3";
pub const VICTIM: &str = "0004f2d4e5f6";
pub const LINE_SECRET: &str = "Line-Secret-1";
pub const PROFILE_SECRET: &str = "Profile-Secret-7";
const UA: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";

/// An account that withholds secrets, a profile file with a secret-bearing line, and two
/// devices with SIP passwords. Returns the account credential.
pub fn withholding_server(server: &ZServer) -> (String, String) {
    let creds = server.set_credentials();
    server.cli_ok(&["enrol", "mode", "on", "--yes"]);
    let file = write_file(
        server.dir.path(),
        "site.cfg",
        format!(
            "<polycomConfig up.welcomeSoundEnabled=\"0\" reg.1.auth.password=\"{PROFILE_SECRET}\" \
             voIpProt.server.1.address=\"sip.example.com\"/>\n"
        )
        .as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        file.to_str().expect("path"),
    ]);
    for mac in [PHONE, VICTIM] {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--sip-server",
            "sip.example.com",
            "--sip-user",
            "1001",
            "--sip-password",
            LINE_SECRET,
        ]);
    }
    // Association opened a window for each until it enrols; these tests open their own.
    server.cli_ok(&["enrol", "close", "--yes"]);
    creds
}

fn no_secret_in(text: &str) {
    assert!(!text.contains(LINE_SECRET), "line secret leaked: {text}");
    assert!(
        !text.contains(PROFILE_SECRET),
        "profile secret leaked: {text}"
    );
}

#[test]
fn a_stranger_gets_no_secret_and_the_phone_gets_its_own_after_adopting_its_credential() {
    let server = ZServer::start();
    let (user, pass) = withholding_server(&server);
    let addr = server.device.to_string();

    // A stranger with the account credential and the victim's MAC (printed on its label).
    let mut stranger = Phone::new(server.device, VICTIM, UA, &user, &pass);
    for path in [
        format!("/{VICTIM}.cfg"),
        format!("/{VICTIM}-device.cfg"),
        format!("/{VICTIM}-profile.cfg"),
    ] {
        let r = stranger.get(&path);
        assert_eq!(r.status, 200, "the phone must still boot: {path}");
        no_secret_in(&r.text());
        // Outside a window nothing of the device's own: at most the account's credential,
        // the one the stranger already holds (Auto-Sync's, which a phone not yet enrolled
        // must follow).
        assert!(
            !r.text().contains(&format!("device.prov.user=\"{VICTIM}\"")),
            "no own credential outside a window: {}",
            r.text()
        );
        for (name, value) in sim::files::params(r.text().as_bytes()).expect("params") {
            if name == "device.prov.password" {
                assert_eq!(value, pass, "only the account's own password");
            }
        }
    }
    // The rest of the profile file still arrives.
    let profile = stranger.get(&format!("/{VICTIM}-profile.cfg")).text();
    assert!(profile.contains("up.welcomeSoundEnabled"), "{profile}");
    // Per-device files are the device's own.
    let r = stranger.get(&format!("/overrides/{VICTIM}-phone.cfg"));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = stranger.request("PUT", &format!("/overrides/{VICTIM}-phone.cfg"), b"<x/>");
    assert_eq!(r.status, 403, "{}", r.text());

    // The victim's simulated phone outside a window: configured, but no secrets.
    let mut sim_stranger = SimPhone::new(VICTIM, &addr, &user, &pass);
    let boot = sim_stranger.boot_until_stable(4);
    assert_eq!(boot, Boot::Configured);
    assert_eq!(
        sim_stranger.user(),
        user,
        "no credential of its own delivered"
    );
    for v in sim_stranger.config.values() {
        no_secret_in(v);
    }

    // The admin opens a window for the phone: it enrols, adopts its own credential
    // (user = MAC) in one reboot, and then gets its secrets.
    server.cli_ok(&["enrol", "open", "--minutes", "10", "--mac", PHONE]);
    let mut phone = SimPhone::new(PHONE, &addr, &user, &pass);
    match phone.boot() {
        Boot::Rebooted(adopted) => {
            assert!(adopted.contains(&sim::USER.to_string()), "{adopted:?}");
            assert!(adopted.contains(&sim::PASSWORD.to_string()), "{adopted:?}");
        }
        other => panic!("expected the phone to adopt its credential: {other:?}"),
    }
    for v in phone.config.values() {
        no_secret_in(v);
    }
    assert_eq!(phone.user(), PHONE);
    let own = phone.password().to_string();
    assert!(own.len() >= 32 && own != pass, "{own}");
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(LINE_SECRET),
        "the device's line comes first: {:?}",
        phone.config
    );
    // Its own files are its own: it may store and read them.
    let mut own_conn = Phone::new(server.device, PHONE, UA, PHONE, &own);
    let r = own_conn.request(
        "PUT",
        &format!("/overrides/{PHONE}-phone.cfg"),
        b"<PHONE_CONFIG/>",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        own_conn
            .get(&format!("/overrides/{PHONE}-phone.cfg"))
            .status,
        200
    );
    // A request naming no device (firmware, no serial tag in this User-Agent) from the
    // address the device just used is accepted with its own credential.
    let fw = own_conn.get("/firmware/5.9.7/sip.ld");
    assert_eq!(
        fw.status,
        404,
        "authenticated, then not found: {}",
        fw.text()
    );

    // Once enrolled, the account credential never hands its credential out again, even
    // inside the window, and gets no secrets for it.
    let mut copycat = Phone::new(server.device, PHONE, UA, &user, &pass);
    let r = copycat.get(&format!("/{PHONE}-device.cfg"));
    assert_eq!(r.status, 200);
    no_secret_in(&r.text());
    assert!(!r.text().contains(&own), "{}", r.text());

    // Stored sealed: the database holds no device password in clear.
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    let stored: String = db
        .query_row("SELECT password FROM device_credentials", [], |r| r.get(0))
        .expect("row");
    assert!(
        stored.starts_with("enc:v2:") && !stored.contains(&own),
        "{stored}"
    );
    // Its own credential is not an account credential generation (Auto-Sync's records).
    let generations: Vec<Option<i64>> = db
        .prepare("SELECT generation FROM device_sync")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("values");
    assert!(
        generations.iter().all(|g| g.is_none_or(|g| g > 0)),
        "{generations:?}"
    );

    // Rotation: delivered to the phone (it proves itself with the current one), the old
    // one accepted until the phone uses the new one.
    server.cli_ok(&["enrol", "rotate", PHONE, "--yes"]);
    assert!(matches!(phone.boot(), Boot::Rebooted(_)));
    let rotated = phone.password().to_string();
    assert_ne!(rotated, own);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    let mut old = SimPhone::new(PHONE, &addr, PHONE, &own);
    assert!(
        matches!(old.boot(), Boot::Refused { status: 401, .. }),
        "the old credential is retired once the new one is used"
    );

    // A replaced or factory-reset phone (account credential again) re-enrols after one
    // admin action.
    server.cli_ok(&["enrol", "reset", PHONE, "--minutes", "5", "--yes"]);
    let mut replaced = SimPhone::new(PHONE, &addr, &user, &pass);
    assert!(matches!(replaced.boot(), Boot::Rebooted(_)));
    assert_eq!(replaced.user(), PHONE);
    assert_ne!(replaced.password(), rotated);
    assert_eq!(replaced.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        replaced
            .config
            .get("reg.1.auth.password")
            .map(String::as_str),
        Some(LINE_SECRET)
    );

    // Recorded: withheld requests counted in /metrics and in the access log.
    let mut admin = Conn::open(server.admin);
    let metrics = admin.request("GET", "/metrics", &[], b"").text();
    let withheld = metrics
        .lines()
        .find(|l| l.starts_with("zerotouch_secrets_withheld_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("withheld counter");
    assert!(withheld > 0, "{metrics}");
    assert!(eventually(Duration::from_secs(5), || {
        server
            .cli_ok(&["device", "show", VICTIM])
            .contains("withheld")
    }));
}

#[test]
fn every_account_withholds_secrets_and_bad_enrolment_input_is_named() {
    let server = ZServer::start();
    server.cli_ok(&[
        "account",
        "add",
        "branch",
        "--name",
        "Branch office",
        "--user",
        "branchphones",
        "--password",
        "Branch-Passw0rd",
    ]);
    let list = |account: &str| -> serde_json::Value {
        let out = server.cli_ok(&["enrol", "list", "--json", "--account", account]);
        serde_json::from_str(&out).expect("json")
    };
    assert_eq!(list("branch")["device_secrets"], true);
    assert_eq!(
        list("default")["device_secrets"],
        true,
        "the default account too"
    );
    // Bad input names the field.
    let err = server.cli_err(&["enrol", "open", "--minutes", "0"]);
    assert!(err.contains("minutes"), "{err}");
    let err = server.cli_err(&["enrol", "open", "--minutes", "5", "--mac", "nope"]);
    assert!(err.contains("mac"), "{err}");
    let err = server.cli_err(&["enrol", "mode", "maybe"]);
    assert!(err.contains("mode"), "{err}");
}

#[test]
fn secrets_are_sealed_at_rest_and_survive_a_key_rotation() {
    let server = ZServer::start();
    let (user, pass) = withholding_server(&server);
    server.cli_ok(&["enrol", "mode", "off", "--yes"]);
    let db_path = server.data_dir().join("zerotouch.db");
    let column = |sql: &str| -> Vec<String> {
        let db = rusqlite::Connection::open(&db_path).expect("db");
        let mut stmt = db.prepare(sql).expect("sql");
        stmt.query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("values")
    };
    let sealed = |sql: &str| {
        let values = column(sql);
        assert!(!values.is_empty(), "{sql}");
        for v in values {
            assert!(v.starts_with("enc:v2:"), "{sql}: {v}");
            no_secret_in(&v);
            assert!(!v.contains(&pass), "{v}");
        }
    };
    sealed("SELECT auth_password FROM device_lines");
    sealed("SELECT device_password FROM accounts");
    sealed("SELECT password FROM account_credentials");
    let key_file = server.data_dir().join("secret.key");
    let old_key = std::fs::read_to_string(&key_file).expect("key");
    let before = column("SELECT auth_password FROM device_lines");

    // Rotation needs the server stopped (the data directory lock).
    let err = server.cli_err(&["secrets", "rotate-key"]);
    assert!(err.contains("running"), "{err}");
    let config = server.config.clone();
    let dir = server.stop_keep();
    let out = cli_with_config(&config, &["secrets", "rotate-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = std::fs::read_to_string(dir.path().join("data/secret.key")).expect("key");
    assert_ne!(old_key, new_key);
    let server = ZServer::start_in(dir, "");
    let after = column("SELECT auth_password FROM device_lines");
    assert_ne!(before, after, "re-encrypted under the new key");
    // Served as before.
    let mut phone = SimPhone::new(PHONE, &server.device.to_string(), &user, &pass);
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.config.get("reg.1.auth.password").map(String::as_str),
        Some(LINE_SECRET)
    );
}
