//! The Lens pages of the console over plain HTTP, part two: sites, groups and policies
//! reaching the effective settings page, the inventory filters, export/import with secrets
//! only when asked, and every console change in the audit log with secrets masked.

use std::time::Duration;

use crate::common::*;
use crate::lens::{FIRST, SEEN, STAGED, audit, post_file, rotate, session_as, setup};

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
    // Back to the parameter just saved (its name, never its value, in the address).
    assert_eq!(
        r.header("Location"),
        Some(&*format!(
            "/devices/{SEEN}/settings?q=&param=reg%2E1%2Eauth%2Epassword&done=policy-set#set-parameter"
        ))
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
    assert!(
        r.text().contains("<strong>Parameter</strong>"),
        "{}",
        r.text()
    );

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
    // The never-seen device may be pending too (associated before the rotation's second).
    assert!(rows("?flag=credentials-pending").0);
    assert_eq!(rows("?site=hq"), (false, true));
    assert_eq!(rows("?state=staged&site=hq"), (false, true));
    assert_eq!(rows("?flag=locked-out"), (false, false));
    let page = s.get("/accounts/default/inventory?state=staged").text();
    assert!(
        page.contains("Showing 1 of 1 matching · 2 devices"),
        "{page}"
    );
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
        &[
            ("format", "json"),
            ("include_secrets", "on"),
            ("passphrase", "a long enough passphrase"),
        ],
    );
    assert_eq!(with.status, 200, "{}", with.text());
    assert!(
        !with.text().contains("Line-Secret-3") && with.text().contains("\"sealed\""),
        "secrets leave only sealed: {}",
        with.text()
    );
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
    assert!(r.text().contains("Device 1, MAC"), "{}", r.text());
    let sealed = with.text();
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[("format", "auto")],
        ("back.json", &sealed),
    );
    assert_eq!(r.status, 422, "no passphrase: {}", r.text());
    let r = post_file(
        &s,
        "/accounts/default/import",
        &[
            ("format", "auto"),
            ("passphrase", "a long enough passphrase"),
        ],
        ("back.json", &sealed),
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
    assert_eq!(
        s.post("/users/kim/reset", &[("confirm", "yes")]).status,
        200
    );
    let tokens = s.post("/tokens", &[("name", "ci-script")]);
    let token = tokens
        .text()
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("token")
        .to_string();
    let id = server_token_id(&s);
    assert_eq!(
        s.post(&format!("/tokens/{id}/delete"), &[("confirm", "yes")])
            .status,
        303
    );
    assert_eq!(
        s.post("/users/kim/delete", &[("confirm", "yes")]).status,
        303
    );
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
    assert_eq!(r.status, 303, "{}", r.text());
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

/// The id of the newest API token, from the tokens page's revoke link.
fn server_token_id(s: &Session) -> String {
    let page = s.get("/tokens").text();
    page.split("href=\"/tokens/")
        .last()
        .and_then(|r| r.split('/').next())
        .expect("a token row")
        .to_string()
}
