//! The Lens endpoints of the JSON API, part two: sites, groups and policies, effective
//! settings, the inventory and check-ins, export/import, the audit log as JSON and CSV, and
//! API changes to associations audited as the token's owner with secrets masked.

use serde_json::{Value, json};

use crate::common::*;
use crate::lens::{SEEN, STAGED, rotate, setup};
use crate::lens_api::{error_of, ok};

#[test]
fn sites_groups_policies_and_effective_settings_through_the_api() {
    let server = ZServer::start();
    setup(&server);
    let t = user_with_token(&server, "bot", "admin", "");
    let base = "/accounts/default";
    assert_eq!(
        api(
            &server,
            "POST",
            &format!("{base}/sites"),
            Some(&t),
            r#"{"name": "hq", "description": "Head office"}"#
        )
        .status,
        201
    );
    assert_eq!(
        api(
            &server,
            "POST",
            &format!("{base}/sites"),
            Some(&t),
            r#"{"name": "hq"}"#
        )
        .status,
        409
    );
    let r = api(
        &server,
        "POST",
        &format!("{base}/sites"),
        Some(&t),
        r#"{"name": "a/b"}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["name".to_string()]));
    assert_eq!(
        ok(api(&server, "GET", &format!("{base}/sites"), Some(&t), ""))["sites"][0]["description"],
        "Head office"
    );
    let g = ok(api(
        &server,
        "POST",
        &format!("{base}/groups"),
        Some(&t),
        r#"{"name": "lobby", "priority": 10}"#,
    ));
    assert_eq!(g["priority"], 10);
    let r = api(
        &server,
        "PUT",
        &format!("{base}/sites/hq/devices"),
        Some(&t),
        &json!({"macs": [SEEN, STAGED]}).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        api(
            &server,
            "PUT",
            &format!("{base}/sites/nosuch/devices"),
            Some(&t),
            &json!({"macs": [SEEN]}).to_string()
        )
        .status,
        404
    );
    let g = ok(api(
        &server,
        "POST",
        &format!("{base}/groups/lobby/members"),
        Some(&t),
        &json!({"macs": [SEEN]}).to_string(),
    ));
    assert_eq!(g["members"], json!([SEEN]));
    let r = api(
        &server,
        "POST",
        &format!("{base}/groups/lobby/members"),
        Some(&t),
        &json!({"macs": ["0004f2ffffff"]}).to_string(),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let g = ok(api(
        &server,
        "PUT",
        &format!("{base}/groups/lobby"),
        Some(&t),
        r#"{"priority": 20}"#,
    ));
    assert_eq!(g["priority"], 20);
    assert_eq!(
        api(
            &server,
            "GET",
            &format!("{base}/groups/nosuch"),
            Some(&t),
            ""
        )
        .status,
        404
    );
    for (scope, value) in [
        ("account", "from_account"),
        ("site:hq", "from_site"),
        ("group:lobby", "from_group"),
    ] {
        let body = json!({"scope": scope, "parameter": "lcl.ml.lang", "value": value}).to_string();
        ok(api(
            &server,
            "PUT",
            &format!("{base}/policies"),
            Some(&t),
            &body,
        ));
    }
    let p = ok(api(&server, "PUT", &format!("{base}/policies"), Some(&t), &json!({"scope": format!("device:{SEEN}"), "parameter": "reg.1.auth.password", "value": "Sip-Secret-5"}).to_string()));
    assert_eq!(
        (p["value"].as_str(), p["secret"].as_bool()),
        (Some("********"), Some(true))
    );
    let r = api(
        &server,
        "PUT",
        &format!("{base}/policies"),
        Some(&t),
        r#"{"scope": "account", "parameter": "device.prov.user", "value": "x"}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["parameter".to_string()]));
    let r = api(
        &server,
        "PUT",
        &format!("{base}/policies"),
        Some(&t),
        r#"{"scope": "room:1", "parameter": "a.b", "value": "x"}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["scope".to_string()]));
    let r = api(
        &server,
        "PUT",
        &format!("{base}/policies"),
        Some(&t),
        r#"{"scope": "site:nosuch", "parameter": "a.b", "value": "x"}"#,
    );
    assert_eq!(r.status, 404);
    let list = ok(api(
        &server,
        "GET",
        &format!("{base}/policies"),
        Some(&t),
        "",
    ));
    assert_eq!(list["policies"].as_array().map(Vec::len), Some(4));
    assert!(!list.to_string().contains("Sip-Secret-5"));

    let eff = ok(api(
        &server,
        "GET",
        &format!("/devices/{SEEN}/effective-settings"),
        Some(&t),
        "",
    ));
    let lang = eff["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .find(|s| s["name"] == "lcl.ml.lang")
        .expect("lang");
    assert_eq!(
        (lang["value"].as_str(), lang["source"].as_str()),
        (Some("from_group"), Some("group"))
    );
    assert_eq!(lang["detail"], "group lobby (priority 20)");
    assert!(!eff.to_string().contains("Sip-Secret-5"), "{eff}");
    let staged = ok(api(
        &server,
        "GET",
        &format!("/devices/{STAGED}/effective-settings"),
        Some(&t),
        "",
    ));
    assert!(staged.to_string().contains("from_site"));
    assert_eq!(
        api(
            &server,
            "GET",
            "/devices/0004f2ffffff/effective-settings",
            Some(&t),
            ""
        )
        .status,
        404
    );
    let installer = user_with_token(&server, "ian", "installer", "acme");
    assert_eq!(
        api(
            &server,
            "GET",
            &format!("/devices/{SEEN}/effective-settings"),
            Some(&installer),
            ""
        )
        .status,
        403,
        "another company's device"
    );

    let r = api(
        &server,
        "DELETE",
        &format!("{base}/policies?scope=account&parameter=lcl.ml.lang"),
        Some(&t),
        "",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        api(
            &server,
            "DELETE",
            &format!("{base}/policies?scope=account&parameter=lcl.ml.lang"),
            Some(&t),
            ""
        )
        .status,
        404
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            &format!("{base}/groups/lobby"),
            Some(&t),
            ""
        )
        .status,
        204
    );
    assert_eq!(
        api(&server, "DELETE", &format!("{base}/sites/hq"), Some(&t), "").status,
        204
    );
    assert_eq!(
        api(&server, "DELETE", &format!("{base}/sites/hq"), Some(&t), "").status,
        404
    );
    let log = ok(api(&server, "GET", "/audit?limit=50", Some(&t), "")).to_string();
    assert!(
        log.contains("policy.set") && log.contains("group.delete") && !log.contains("Sip-Secret-5")
    );
}

#[test]
fn inventory_checkins_export_import_and_audit_through_the_api() {
    let server = ZServer::start();
    setup(&server);
    rotate(&server);
    let t = user_with_token(&server, "bot", "admin", "");
    let inv = ok(api(
        &server,
        "GET",
        "/accounts/default/inventory",
        Some(&t),
        "",
    ));
    assert_eq!(
        (inv["total"].as_u64(), inv["by_state"]["staged"].as_u64()),
        (Some(2), Some(1))
    );
    let pending = ok(api(
        &server,
        "GET",
        "/accounts/default/inventory?flag=credentials-pending",
        Some(&t),
        "",
    ));
    let row = pending["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["mac"] == SEEN)
        .expect("the phone on the old credentials is pending")
        .clone();
    assert_eq!(row["credentials"]["state"], "pending");
    let r = api(
        &server,
        "GET",
        "/accounts/default/inventory?state=sleepy",
        Some(&t),
        "",
    );
    assert_eq!(error_of(&r), (422, vec!["state".to_string()]));
    // A page at a time: the counts stay those of every device.
    let second = ok(api(
        &server,
        "GET",
        "/accounts/default/inventory?page=2&per_page=1",
        Some(&t),
        "",
    ));
    assert_eq!(
        (
            second["matched"].as_u64(),
            second["page"].as_u64(),
            second["devices"].as_array().map(Vec::len),
            second["by_state"]["staged"].as_u64()
        ),
        (Some(2), Some(2), Some(1), Some(1))
    );
    let r = api(
        &server,
        "GET",
        "/accounts/default/inventory?page=0&per_page=5000",
        Some(&t),
        "",
    );
    assert_eq!(
        error_of(&r),
        (422, vec!["page".to_string(), "per_page".to_string()])
    );
    let c = ok(api(
        &server,
        "GET",
        "/accounts/default/checkins",
        Some(&t),
        "",
    ));
    assert_eq!(
        (
            c["hourly"].as_array().map(Vec::len),
            c["daily"].as_array().map(Vec::len)
        ),
        (Some(24), Some(7))
    );
    let sum = |k: &str| -> u64 {
        c[k].as_array()
            .expect(k)
            .iter()
            .filter_map(Value::as_u64)
            .sum()
    };
    assert_eq!(
        (sum("hourly"), sum("daily")),
        (1, 1),
        "the one phone's check-in: {c}"
    );

    server.cli_ok(&[
        "device",
        "set-line",
        STAGED,
        "--line",
        "1",
        "--sip-user",
        "1002",
        "--sip-password",
        "Line-Secret-2",
    ]);
    let plain = api(&server, "GET", "/accounts/default/export", Some(&t), "");
    assert_eq!(plain.status, 200);
    assert!(!plain.text().contains("Line-Secret-2"));
    // Secrets leave only sealed with a passphrase (a header, never the URL), in JSON.
    let refused = api(
        &server,
        "GET",
        "/accounts/default/export?include_secrets=true",
        Some(&t),
        "",
    );
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        refused.text().contains("X-Export-Passphrase"),
        "{}",
        refused.text()
    );
    let pass = [("X-Export-Passphrase", "a long enough passphrase")];
    let csv = api_with(
        &server,
        "GET",
        "/accounts/default/export?format=csv&include_secrets=true",
        Some(&t),
        "",
        &pass,
    );
    assert_eq!(csv.status, 422, "{}", csv.text());
    let secret = api_with(
        &server,
        "GET",
        "/accounts/default/export?include_secrets=true",
        Some(&t),
        "",
        &pass,
    );
    assert_eq!(secret.status, 200, "{}", secret.text());
    assert!(
        !secret.text().contains("Line-Secret-2"),
        "{}",
        secret.text()
    );
    assert!(secret.text().contains("\"sealed\""), "{}", secret.text());
    assert_eq!(
        api(
            &server,
            "GET",
            "/accounts/default/export?format=xml",
            Some(&t),
            ""
        )
        .status,
        422
    );

    let doc = r#"{"format": "zerotouch-export", "version": 1, "groups": [{"name": "annex", "priority": 3}],
        "devices": [{"mac": "0004f2aa0005", "profile": "office", "groups": ["annex"]}]}"#;
    let dry = ok(api(
        &server,
        "POST",
        "/accounts/default/import?dry_run=true",
        Some(&t),
        doc,
    ));
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["devices_created"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(
        ok(api(
            &server,
            "GET",
            "/accounts/default/inventory",
            Some(&t),
            ""
        ))["total"],
        2,
        "a dry run writes nothing"
    );
    let done = ok(api(
        &server,
        "POST",
        "/accounts/default/import",
        Some(&t),
        doc,
    ));
    assert_eq!(done["groups_created"], 1);
    let r = api(
        &server,
        "POST",
        "/accounts/default/import",
        Some(&t),
        r#"{"format": "zerotouch-export", "version": 1, "devices": [{"mac": "0004f2aa0006", "profile": "nosuch"}]}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["devices[0].profile".to_string()]));
    // The sealed archive goes back with its passphrase, and only with it.
    let r = api(
        &server,
        "POST",
        "/accounts/default/import",
        Some(&t),
        &secret.text(),
    );
    assert_eq!(error_of(&r).0, 422, "{}", r.text());
    let r = api_with(
        &server,
        "POST",
        "/accounts/default/import",
        Some(&t),
        &secret.text(),
        &pass,
    );
    assert_eq!(ok(r)["devices_updated"], 2);

    let csv = api(&server, "GET", "/audit?format=csv&limit=20", Some(&t), "");
    assert!(
        csv.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    assert!(
        csv.text()
            .contains("token,bot (API token),1,import,default"),
        "{}",
        csv.text()
    );
    assert!(!csv.text().contains("Line-Secret-2"));
    assert_eq!(
        api(&server, "GET", "/audit?limit=0", Some(&t), "").status,
        422
    );
    assert_eq!(
        api(&server, "GET", "/audit?account=nosuch", Some(&t), "").status,
        404
    );
}

#[test]
fn api_changes_to_associations_are_audited_as_the_token_owner() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    let t = user_with_token(&server, "bot", "admin", "");
    ok(api(
        &server,
        "POST",
        "/subscribers",
        Some(&t),
        r#"{"reference_id": "REF0002", "last_name": "Kraus"}"#,
    ));
    ok(api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "0004f2cc0001", "profile": "office", "reference_id": "REF0002", "sip_auth_password": "Api-Secret-1"}"#,
    ));
    ok(api(
        &server,
        "PUT",
        "/devices/0004f2cc0001",
        Some(&t),
        r#"{"profile": "office", "prov_password": "Api-Secret-2"}"#,
    ));
    ok(api(
        &server,
        "POST",
        "/devices/0004f2cc0001/copy",
        Some(&t),
        r#"{"new_mac": "0004f2cc0002"}"#,
    ));
    ok(api(
        &server,
        "POST",
        "/devices/0004f2cc0002/replace",
        Some(&t),
        r#"{"new_mac": "0004f2cc0003"}"#,
    ));
    assert_eq!(
        api(&server, "DELETE", "/devices/0004f2cc0003", Some(&t), "").status,
        204
    );
    ok(api(
        &server,
        "PUT",
        "/profiles/office",
        Some(&t),
        r#"{"name": "office", "prov_password": "Api-Secret-3"}"#,
    ));
    let job = api(
        &server,
        "POST",
        "/imports",
        Some(&t),
        "0004f2cc0009,,,office\n",
    );
    assert_eq!(job.status, 201, "{}", job.text());
    let log = ok(api(&server, "GET", "/audit", Some(&t), ""));
    let text = log.to_string();
    for s in ["Api-Secret-1", "Api-Secret-2", "Api-Secret-3"] {
        assert!(!text.contains(s), "{s} in {text}");
    }
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor_kind"] == "token")
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    for a in [
        "subscriber.add",
        "device.associate",
        "device.modify",
        "device.copy",
        "device.replace",
        "device.delete",
        "profile.modify",
        "import.job",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}
