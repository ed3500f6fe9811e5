//! The Lens pages of the console over plain HTTP: accounts (Device Provisioning, server
//! credentials, Auto-Sync with its lock-out confirmation, re-admission), sites, groups and
//! policies, effective settings, the inventory, export/import and the audit log; every
//! page for an admin, 401/403 by role, 404, 409 with the device count and 422 with the
//! field named, and every console change in the audit log with secrets masked.

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

fn audit(s: &Session) -> Vec<Value> {
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
        assert!(
            r.header("Content-Security-Policy").is_some(),
            "{path}: no CSP"
        );
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
    assert!(r.text().contains("<code>user</code>") && r.text().contains("<code>password</code>"));
    let r = s.post(
        "/accounts/default/credentials",
        &[
            ("user", "phones2"),
            ("password", "Third-Passw0rd-3"),
            ("repeat_password", "Third-Passw0rd-3"),
            ("grace_days", "7"),
        ],
    );
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
        r.text()
            .contains("<strong>2</strong> devices will be locked out"),
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
        page.contains("Turning Auto-Sync off now would lock out"),
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
        text.contains("device will be locked out") || text.contains("devices will be locked out"),
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
        assert!(r.text().contains("will be locked out"));
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

#[test]
fn sites_groups_and_policies_reach_the_effective_settings_page() {
    let server = ZServer::start();
    setup(&server);
    let s = Session::admin(&server);
    assert_eq!(
        s.post(
            "/accounts/default/sites",
            &[("name", "hq"), ("description", "Head office")]
        )
        .status,
        303
    );
    assert_eq!(
        s.post("/accounts/default/sites", &[("name", "bad/name")])
            .status,
        422
    );
    assert_eq!(
        s.post("/accounts/default/sites", &[("name", "hq")]).status,
        409
    );
    assert_eq!(
        s.post(
            "/accounts/default/groups",
            &[("name", "lobby"), ("priority", "10")]
        )
        .status,
        303
    );
    assert_eq!(
        s.post(
            "/accounts/default/groups",
            &[("name", "x"), ("priority", "high")]
        )
        .status,
        422
    );
    assert_eq!(
        s.post(
            "/accounts/default/sites/hq/devices",
            &[("macs", &format!("{SEEN}, {STAGED}"))]
        )
        .status,
        303
    );
    assert_eq!(
        s.post("/accounts/default/groups/lobby/members", &[("macs", SEEN)])
            .status,
        303
    );
    let r = s.post(
        "/accounts/default/groups/lobby/members",
        &[("macs", "nonsense")],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("macs"));
    for (scope, value) in [
        ("account", "from_account"),
        ("site:hq", "from_site"),
        ("group:lobby", "from_group"),
    ] {
        let r = s.post(
            "/accounts/default/policies",
            &[
                ("scope", scope),
                ("parameter", "lcl.ml.lang"),
                ("value", value),
            ],
        );
        assert_eq!(r.status, 303, "{scope}: {}", r.text());
    }
    let r = s.post(
        "/accounts/default/policies",
        &[
            ("scope", &format!("device:{SEEN}")),
            ("parameter", "reg.1.auth.password"),
            ("value", "Sip-Secret-77"),
        ],
    );
    assert_eq!(
        r.header("Location"),
        Some(&*format!("/devices/{SEEN}/settings?done=policy-set"))
    );
    let r = s.post(
        "/accounts/default/policies",
        &[
            ("scope", "account"),
            ("parameter", "device.prov.password"),
            ("value", "x"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("<code>parameter</code>"), "{}", r.text());

    let page = s.get(&format!("/devices/{SEEN}/settings")).text();
    let row = page.split("lcl.ml.lang").nth(1).expect("lang row");
    assert!(
        row.contains("from_group") && row.contains("group") && row.contains("lobby (priority 10)"),
        "{row}"
    );
    assert!(
        !page.contains("Sip-Secret-77") && page.contains("reg.1.auth.password"),
        "secret masked"
    );
    let other = s.get(&format!("/devices/{STAGED}/settings")).text();
    assert!(
        other
            .split("lcl.ml.lang")
            .nth(1)
            .expect("row")
            .contains("from_site")
    );
    assert!(
        s.get(&format!("/devices/{SEEN}"))
            .text()
            .contains(&format!("/devices/{SEEN}/settings"))
    );

    // The device page's own controls: leave the group, drop the site.
    let r = s.post(
        "/accounts/default/groups/lobby/members",
        &[("macs", SEEN), ("remove", "yes"), ("back", "device")],
    );
    assert_eq!(
        r.header("Location"),
        Some(&*format!("/devices/{SEEN}/settings?done=members-saved"))
    );
    let r = s.post(
        &format!("/accounts/default/devices/{SEEN}/site"),
        &[("site", "")],
    );
    assert_eq!(r.status, 303);
    let page = s.get(&format!("/devices/{SEEN}/settings")).text();
    assert!(
        page.split("lcl.ml.lang")
            .nth(1)
            .expect("row")
            .contains("from_account"),
        "{page}"
    );
    assert_eq!(
        s.post(
            "/accounts/default/policies/unset",
            &[("scope", "account"), ("parameter", "lcl.ml.lang")]
        )
        .status,
        303
    );
    assert_eq!(
        s.post(
            "/accounts/default/policies/unset",
            &[("scope", "account"), ("parameter", "lcl.ml.lang")]
        )
        .status,
        404
    );
    assert_eq!(
        s.post("/accounts/default/groups/lobby/delete", &[]).status,
        303
    );
    assert_eq!(s.post("/accounts/default/sites/hq/delete", &[]).status, 303);
    let log = serde_json::to_string(&audit(&s)).expect("json");
    assert!(!log.contains("Sip-Secret-77"), "masked in the audit log");
    for a in [
        "site.add",
        "group.add",
        "group.add-member",
        "device.set-site",
        "policy.set",
        "policy.unset",
        "group.delete",
        "site.delete",
    ] {
        assert!(log.contains(&format!("\"{a}\"")), "{a} not audited");
    }
}

#[test]
fn the_inventory_filters_by_state_flag_site_and_group() {
    let server = ZServer::start();
    setup(&server);
    rotate(&server);
    server.cli_ok(&["site", "add", "hq"]);
    server.cli_ok(&["site", "assign", "hq", STAGED]);
    let s = Session::admin(&server);
    let rows = |q: &str| -> (bool, bool) {
        let t = s.get(&format!("/accounts/default/inventory{q}")).text();
        let table = t.split("<tbody>").nth(1).unwrap_or("").to_string();
        (table.contains(SEEN), table.contains(STAGED))
    };
    assert_eq!(rows(""), (true, true));
    assert_eq!(rows("?state=staged"), (false, true));
    assert_eq!(rows("?state=provisioned-active"), (true, false));
    assert_eq!(rows("?flag=credentials-pending"), (true, false));
    assert_eq!(rows("?site=hq"), (false, true));
    assert_eq!(rows("?state=staged&site=hq"), (false, true));
    assert_eq!(rows("?flag=locked-out"), (false, false));
    let page = s.get("/accounts/default/inventory?state=staged").text();
    assert!(page.contains("Showing 1 of 2 devices"), "{page}");
    assert!(
        page.contains("<option value=\"staged\" selected>"),
        "the filter is kept"
    );
}

#[test]
fn export_and_import_round_trip_from_the_console_with_secrets_only_when_asked() {
    let server = ZServer::start();
    setup(&server);
    server.cli_ok(&[
        "device",
        "add",
        "0004f2aa0003",
        "--profile",
        "office",
        "--sip-user",
        "1003",
        "--sip-password",
        "Line-Secret-3",
    ]);
    let s = Session::admin(&server);
    let r = s.post("/accounts/default/export", &[("format", "json")]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Disposition")
            .is_some_and(|d| d.contains("zerotouch-default.json"))
    );
    assert!(!r.text().contains("Line-Secret-3") && r.text().contains("0004f2aa0003"));
    let with = s.post(
        "/accounts/default/export",
        &[("format", "csv"), ("include_secrets", "on")],
    );
    assert!(with.text().contains("Line-Secret-3"), "{}", with.text());
    let viewer = session_as(&server, "vera", "viewer", "");
    assert_eq!(
        viewer
            .post("/accounts/default/export", &[("format", "json")])
            .status,
        200
    );
    assert_eq!(
        viewer
            .post(
                "/accounts/default/export",
                &[("format", "json"), ("include_secrets", "on")]
            )
            .status,
        403
    );

    // Import: a site and a device moved into it; a dry run first, then for real.
    let doc = r#"{"format": "zerotouch-export", "version": 1, "sites": [{"name": "annex"}],
        "devices": [{"mac": "0004f2aa0004", "profile": "office", "site": "annex"}]}"#;
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[("format", "auto"), ("dry_run", "on")],
        ("devices.json", doc),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Dry run") && r.text().contains("devices: 1 created"),
        "{}",
        r.text()
    );
    assert!(!server.cli_ok(&["device", "list"]).contains("0004f2aa0004"));
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[("format", "auto")],
        ("devices.json", doc),
    );
    assert!(r.text().contains("Imported."), "{}", r.text());
    assert!(server.cli_ok(&["device", "list"]).contains("0004f2aa0004"));
    let bad = r#"{"format": "zerotouch-export", "version": 1, "devices": [{"mac": "nope", "profile": "office"}]}"#;
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[("format", "json")],
        ("bad.json", bad),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("devices[0].mac"), "{}", r.text());
    let csv = with.text();
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[("format", "auto")],
        ("back.csv", &csv),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("devices: 0 created, 3 updated"),
        "{}",
        r.text()
    );
}

#[test]
fn console_changes_are_audited_with_secrets_masked() {
    let server = ZServer::start();
    setup(&server);
    let s = Session::admin(&server);
    // Users and tokens.
    assert_eq!(
        s.post(
            "/users",
            &[("username", "kim"), ("role", "viewer"), ("company", "")]
        )
        .status,
        200
    );
    assert_eq!(s.post("/users/kim/reset", &[]).status, 200);
    let tokens = s.post("/tokens", &[("name", "ci-script")]);
    let token = tokens
        .text()
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("token")
        .to_string();
    let id = server_token_id(&s);
    assert_eq!(s.post(&format!("/tokens/{id}/delete"), &[]).status, 303);
    assert_eq!(s.post("/users/kim/delete", &[]).status, 303);
    // Profiles, reference IDs and associations.
    assert_eq!(
        s.post(
            "/profiles",
            &[
                ("name", "lab"),
                ("vendor_model", "Polycom_UCS_Device"),
                ("prov_password", "Prof-Secret-1"),
                ("polling", "none")
            ]
        )
        .status,
        303
    );
    let r = s.post(
        "/profiles/lab",
        &[
            ("name", "lab"),
            ("vendor_model", "Polycom_UCS_Device"),
            ("polling", "enable"),
            ("language", "German_Germany"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        s.post(
            "/associations",
            &[
                ("reference_id", "REF0001"),
                ("last_name", "Kraus"),
                ("mode", "manual")
            ]
        )
        .status,
        303
    );
    assert_eq!(
        s.post(
            "/subscribers/REF0001",
            &[("reference_id", "REF0001"), ("last_name", "Krauss")]
        )
        .status,
        303
    );
    let r = s.post(
        "/subscribers/REF0001/devices",
        &[
            ("count", "1"),
            ("devices[0].mac", "0004f2bb0001"),
            ("devices[0].profile", "lab"),
            ("devices[0].sip_auth_password", "Sip-Secret-9"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = s.post(
        "/devices/0004f2bb0001/edit",
        &[
            ("devices[0].profile", "lab"),
            ("devices[0].sip_auth_password", "Sip-Secret-10"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        s.post("/devices/0004f2bb0001/copy", &[("new_mac", "0004f2bb0002")])
            .status,
        303
    );
    assert_eq!(
        s.post(
            "/devices/0004f2bb0002/replace",
            &[("new_mac", "0004f2bb0003")]
        )
        .status,
        303
    );
    assert_eq!(s.post("/devices/0004f2bb0003/delete", &[]).status, 303);
    let r = post_file(
        &s,
        "/import",
        &[("reference_id", "")],
        ("bulk.csv", "0004f2bb0009,,,lab\n0004f2bb000x,,,lab\n"),
    );
    assert!(r.status == 303 || r.status == 200, "{}", r.text());
    assert!(eventually(Duration::from_secs(10), || audit(&s)
        .iter()
        .any(|e| e["action"] == "import.job")));

    let log = audit(&s);
    let text = serde_json::to_string(&log).expect("json");
    for secret in [
        "Prof-Secret-1",
        "Sip-Secret-9",
        "Sip-Secret-10",
        &token[3..],
        FIRST,
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    let by_admin: Vec<&str> = log
        .iter()
        .filter(|e| e["actor"] == "admin" && e["actor_kind"] == "person")
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    for a in [
        "user.change-password",
        "user.add",
        "user.reset-password",
        "token.create",
        "token.revoke",
        "user.delete",
        "profile.add",
        "profile.modify",
        "subscriber.add",
        "subscriber.modify",
        "device.associate",
        "device.modify",
        "device.copy",
        "device.replace",
        "device.delete",
        "import.job",
    ] {
        assert!(
            by_admin.contains(&a),
            "{a} not audited as admin: {by_admin:?}"
        );
    }
    let job = log
        .iter()
        .find(|e| e["action"] == "import.job")
        .expect("job");
    assert_eq!(
        (
            job["after"]["applied"].as_u64(),
            job["after"]["rejected"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let page = s.get("/audit").text();
    assert!(
        page.contains("device.replace") && page.contains("********"),
        "the page shows masked values"
    );
    let csv = s.get("/audit.csv?account=default").text();
    assert!(
        csv.starts_with("id,time,actor_kind,actor,account_id,action,target,before,after"),
        "{csv}"
    );
    assert!(
        csv.contains("device.copy") && !csv.contains("Sip-Secret"),
        "{csv}"
    );
}

/// The id of the newest API token, from the tokens page's revoke form.
fn server_token_id(s: &Session) -> String {
    let page = s.get("/tokens").text();
    page.split("action=\"/tokens/")
        .last()
        .and_then(|r| r.split('/').next())
        .expect("a token row")
        .to_string()
}
