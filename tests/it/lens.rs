//! The Lens pages of the console over plain HTTP, part one: every page for an admin, 403
//! by role, 404 and 422 with the field named; accounts (Device Provisioning, server
//! credentials entered twice, Auto-Sync with its lock-out confirmation and the device count,
//! re-admission, options, a new address). Shared set-up for `lens_records`, `lens_api` and
//! the browser tests.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub const SEEN: &str = "0004f2aa0001";
pub const STAGED: &str = "0004f2aa0002";
pub const FIRST: &str = "First-Passw0rd-1";

/// Credentials, a profile, two devices; `SEEN` fetches its files once with the current
/// credentials (so it holds that generation), `STAGED` never calls.
pub fn setup(server: &ZServer) {
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    server.cli_ok(&["profile", "add", "office", "--language", "English_US"]);
    for mac in [SEEN, STAGED] {
        server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    }
    let mut phone = Phone::new(server.device, SEEN, UA_VVX500_APP, "phones", FIRST);
    assert_eq!(phone.get(&format!("/{SEEN}.cfg")).status, 200);
    let seen = eventually(Duration::from_secs(5), || {
        server
            .cli_ok(&["inventory", "--state", "provisioned-active"])
            .contains(SEEN)
    });
    assert!(seen, "the recorder wrote the phone's activity");
}

/// A second generation: `SEEN` now holds an older one and is pending.
pub fn rotate(server: &ZServer) {
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        "Second-Passw0rd-2",
        "--yes",
    ]);
}

/// A user with a known password, signed in.
pub fn session_as(server: &ZServer, name: &str, role: &str, company: &str) -> Session {
    user_with_token(server, name, role, company);
    Session::sign_in(server, name, "a-long-test-password")
}

/// A multipart form with one file, as a browser sends it.
pub fn post_file(s: &Session, path: &str, fields: &[(&str, &str)], file: (&str, &str)) -> Resp {
    let boundary = "zt-test-boundary-7d1";
    let mut body = String::new();
    for (k, v) in [("csrf", s.csrf.as_str())].iter().chain(fields) {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
        file.0, file.1
    ));
    let kind = format!("multipart/form-data; boundary={boundary}");
    Conn::open(s.addr).request(
        "POST",
        path,
        &[
            ("Content-Type", kind.as_str()),
            ("Cookie", s.cookie.as_str()),
            ("Connection", "close"),
        ],
        body.as_bytes(),
    )
}

/// The audit log as the console's JSON download gives it.
pub fn audit(s: &Session) -> Vec<Value> {
    let r = s.get("/audit.json?limit=500");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    v["entries"].as_array().expect("entries").clone()
}

#[test]
fn every_lens_page_answers_and_unknown_things_are_404_or_422() {
    let server = ZServer::start();
    setup(&server);
    server.cli_ok(&["site", "add", "hq"]);
    server.cli_ok(&["group", "add", "lobby", "--priority", "5"]);
    let s = Session::admin(&server);
    for path in [
        "/accounts",
        "/accounts/default",
        "/accounts/default/autosync",
        "/accounts/default/policies",
        "/accounts/default/sites/hq",
        "/accounts/default/groups/lobby",
        "/accounts/default/inventory",
        "/accounts/default/inventory?state=staged&flag=&site=hq&group=lobby",
        "/accounts/default/transfer",
        "/audit",
        "/audit?account=default&limit=5",
        "/audit.csv",
        "/audit.json",
        &format!("/devices/{SEEN}/settings"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_security_headers(&r, path);
        assert!(
            !r.text().contains(FIRST),
            "{path} shows the server password"
        );
    }
    let r = s.get("/inventory?flag=locked-out");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("Location"),
        Some("/accounts/default/inventory?flag=locked-out")
    );
    for path in [
        "/accounts/nosuch",
        "/accounts/default/sites/nosuch",
        "/accounts/default/groups/nosuch",
        "/accounts/default/nowhere",
        "/devices/0004f2ffffff/settings",
        "/audit?account=nosuch",
    ] {
        assert_eq!(s.get(path).status, 404, "{path}");
    }
    let bad = s.get("/accounts/default/inventory?state=sleepy");
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("state"), "{}", bad.text());
    assert_eq!(s.get("/audit?limit=0").status, 422);
    let js =
        Conn::open(server.admin).request("GET", "/assets/copy.js", &[("Connection", "close")], b"");
    assert_eq!(js.status, 200);
    assert!(
        js.header("Content-Type")
            .is_some_and(|t| t.contains("javascript"))
    );
    // The account page: its address with copy buttons, option 160 without the password.
    let page = s.get("/accounts/default").text();
    assert!(
        page.contains("data-copy=\"service-url\"") && page.contains("/default-"),
        "{page}"
    );
    assert!(page.contains("http://phones:PASSWORD@"), "{page}");
    // The inventory draws both charts inline.
    let inv = s.get("/accounts/default/inventory").text();
    assert_eq!(inv.matches("<svg").count(), 2, "{inv}");
    assert!(inv.contains("Check-ins per hour") && inv.contains("Check-ins per day"));
}

#[test]
fn roles_decide_who_reads_and_who_changes_accounts_and_policies() {
    let server = ZServer::start();
    setup(&server);
    let viewer = session_as(&server, "vera", "viewer", "");
    assert_eq!(viewer.get("/accounts/default").status, 200);
    assert_eq!(viewer.get("/audit").status, 200);
    assert!(
        !viewer
            .get("/accounts/default")
            .text()
            .contains("Edit server credentials"),
        "no forms for a viewer"
    );
    for (path, fields) in [
        ("/accounts/default/autosync", vec![]),
        ("/accounts/default/provisioning", vec![("enabled", "off")]),
        ("/accounts/default/sites", vec![("name", "hq")]),
        ("/accounts", vec![("slug", "branch")]),
    ] {
        let r = viewer.post(path, &fields);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    let installer = session_as(&server, "ian", "installer", "acme");
    for path in [
        "/accounts",
        "/accounts/default/inventory",
        "/audit",
        "/audit.csv",
    ] {
        assert_eq!(installer.get(path).status, 403, "{path}");
    }
    assert!(
        !installer.get("/find").text().contains("href=\"/accounts\""),
        "no Accounts section for an installer"
    );
    let provider = session_as(&server, "pia", "provider", "");
    assert_eq!(
        provider
            .post("/accounts/default/sites", &[("name", "hq")])
            .status,
        303,
        "a provider of every company manages policies"
    );
    assert_eq!(
        provider.post("/accounts/default/autosync", &[]).status,
        403,
        "but not Auto-Sync"
    );
    // Signed out: pages send to the sign-in page, forms are refused.
    let r = Conn::open(server.admin).request("GET", "/accounts", &[("Connection", "close")], b"");
    assert_eq!((r.status, r.header("Location")), (303, Some("/login")));
    assert_eq!(
        post_raw(server.admin, "/accounts/default/autosync", "", "csrf=x").status,
        403
    );
}

#[test]
fn credentials_are_entered_twice_never_shown_again_and_edited_only_while_enabled() {
    let server = ZServer::start();
    setup(&server);
    let s = Session::admin(&server);
    let r = s.post(
        "/accounts/default/credentials",
        &[
            ("user", "phones"),
            ("password", "Third-Passw0rd-3"),
            ("repeat_password", "Third-Passw0rd-X"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("repeat_password"), "{}", r.text());
    let r = s.post(
        "/accounts/default/credentials",
        &[
            ("user", "ph ones"),
            ("password", "short"),
            ("repeat_password", "short"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("<strong>User</strong>")
            && r.text().contains("<strong>Password</strong>")
    );
    let fields = [
        ("user", "phones2"),
        ("password", "Third-Passw0rd-3"),
        ("repeat_password", "Third-Passw0rd-3"),
        ("grace_days", "7"),
    ];
    // A rotation changes every phone: each is listed with what happens to it, and the
    // admin confirms.
    let r = s.post("/accounts/default/credentials", &fields);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("phones affected") && r.text().contains("accepted until"),
        "{}",
        r.text()
    );
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "yes"));
    let r = s.post("/accounts/default/credentials", &confirmed);
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get("/accounts/default?done=credentials-saved").text();
    assert!(page.contains("Server credentials updated") && page.contains("phones2"));
    assert!(
        !page.contains("Third-Passw0rd-3"),
        "the password is never shown"
    );
    assert_eq!(
        server.credentials(),
        ("phones2".into(), "Third-Passw0rd-3".into())
    );

    // Disabling refuses every device: the page says how many and asks again.
    let r = s.post("/accounts/default/provisioning", &[("enabled", "off")]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("<strong>2</strong> phones affected"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("name=\"confirm\" value=\"yes\""));
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("provisioning:     enabled")
    );
    let r = s.post(
        "/accounts/default/provisioning",
        &[("enabled", "off"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 303);
    let shown = server.cli_ok(&["account", "show"]);
    assert!(
        shown.contains("provisioning:     disabled")
            && shown.contains("auto-sync:        disabled"),
        "{shown}"
    );
    let page = s.get("/accounts/default").text();
    assert!(
        page.contains("<fieldset disabled>"),
        "credentials locked while disabled"
    );
    let r = s.post(
        "/accounts/default/credentials",
        &[
            ("user", "phones"),
            ("password", "Fourth-Passw0rd"),
            ("repeat_password", "Fourth-Passw0rd"),
        ],
    );
    assert_eq!(r.status, 409);
    assert!(r.text().contains("enable it before"), "{}", r.text());
    assert_eq!(
        s.post("/accounts/default/provisioning", &[("enabled", "on")])
            .status,
        303
    );
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("provisioning:     enabled")
    );

    // A second account, created in the console with its own address.
    let r = s.post(
        "/accounts",
        &[
            ("name", "Branch office"),
            ("slug", "branch"),
            ("user", "branch"),
            ("password", "Branch-Passw0rd"),
            ("repeat_password", "Branch-Passw0rd"),
        ],
    );
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/accounts/branch?done=account-created"))
    );
    let r = s.post(
        "/accounts",
        &[
            ("name", "Again"),
            ("slug", "branch"),
            ("user", "x"),
            ("password", "Branch-Passw0rd"),
            ("repeat_password", "Branch-Passw0rd"),
        ],
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(s.get("/accounts").text().contains("Branch office"));
}

#[test]
fn turning_autosync_off_asks_to_confirm_the_lockout_and_devices_can_be_readmitted() {
    let server = ZServer::start();
    setup(&server);
    rotate(&server);
    let s = Session::admin(&server);
    let page = s.get("/accounts/default").text();
    assert!(
        page.contains("Turning Auto-Sync off now would affect"),
        "{page}"
    );
    let progress = s.get("/accounts/default/autosync").text();
    assert!(
        progress.contains(SEEN) && progress.contains("Pending"),
        "{progress}"
    );

    // The switch unticked: nothing changes until the lock-out is confirmed.
    let r = s.post("/accounts/default/autosync", &[]);
    assert_eq!(r.status, 409, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("phone affected") || text.contains("phones affected"),
        "{text}"
    );
    assert!(text.contains(SEEN), "the message names the device: {text}");
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("auto-sync:        enabled")
    );
    let r = s.post(
        "/accounts/default/autosync",
        &[("enabled", "off"), ("confirm", "yes")],
    );
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/accounts/default?done=autosync-off"))
    );
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("auto-sync:        disabled")
    );

    let progress = s.get("/accounts/default/autosync").text();
    assert!(progress.contains("Re-admit all"), "{progress}");
    let report = progress.split("never came back").nth(1).expect("report");
    assert!(
        report.contains(SEEN) && report.contains("locked-out"),
        "{report}"
    );
    let r = s.post("/accounts/default/readmit", &[("mac", SEEN)]);
    assert_eq!(r.status, 303, "{}", r.text());
    let after = s.get("/accounts/default/autosync?done=readmitted").text();
    assert!(after.contains("Re-admitted"), "{after}");
    let locked = after.split("Locked out").nth(1).expect("section");
    assert!(
        !locked
            .split("never came back")
            .next()
            .unwrap_or("")
            .contains(SEEN),
        "{after}"
    );
    assert_eq!(s.post("/accounts/default/readmit", &[]).status, 422);
    assert_eq!(
        s.post("/accounts/default/readmit", &[("mac", "0004f2ffffff")])
            .status,
        404
    );

    // Options and a new address, each confirmed when it strands phones.
    let r = s.post(
        "/accounts/default/autosync/options",
        &[("grace_days", "400"), ("seen_days", "30")],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("grace_days"));
    assert_eq!(
        s.post(
            "/accounts/default/autosync/options",
            &[("grace_days", "10"), ("seen_days", "20"), ("poly_os", "on")]
        )
        .status,
        303
    );
    assert!(
        server
            .cli_ok(&["account", "show"])
            .contains("grace 10 days, seen within 20 days, Poly OS on")
    );
    let before = server.cli_ok(&["account", "show"]);
    let r = s.post("/accounts/default/address", &[]);
    let r = if r.status == 409 {
        assert!(r.text().contains("affected"));
        s.post("/accounts/default/address", &[("confirm", "yes")])
    } else {
        r
    };
    assert_eq!(r.status, 303, "{}", r.text());
    assert_ne!(before, server.cli_ok(&["account", "show"]), "a new address");
    let actions: Vec<String> = audit(&s)
        .iter()
        .filter(|e| e["actor"] == "admin")
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    for a in [
        "account.set-autosync",
        "autosync.readmit",
        "account.set-autosync-options",
        "account.regenerate-address",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}
