//! The Lens endpoints of the JSON API, part one: the OpenAPI document lists every route;
//! 401/403 by role, 404, 405; accounts with the confirmation protocol (409 with the device
//! count in the envelope, `"confirm": true` to go ahead), 422 with the field named, and
//! the changes audited as the token's owner with secrets masked.

use serde_json::{Value, json};

use crate::common::*;
use crate::lens::{FIRST, SEEN, rotate, setup};

/// Status and fields of an error envelope.
pub fn error_of(r: &Resp) -> (u64, Vec<String>) {
    let v = json(r);
    let fields = v["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().unwrap_or("").to_string())
        .collect();
    (v["error"]["status"].as_u64().expect("status"), fields)
}

/// The JSON body of a 2xx response.
pub fn ok(r: Resp) -> Value {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    json(&r)
}

#[test]
fn the_lens_routes_are_documented_and_need_a_token_of_the_right_role() {
    let server = ZServer::start();
    setup(&server);
    let doc = json(&api(&server, "GET", "/openapi.json", None, ""));
    for path in [
        "/accounts",
        "/accounts/{slug}",
        "/accounts/{slug}/provisioning",
        "/accounts/{slug}/credentials",
        "/accounts/{slug}/autosync",
        "/accounts/{slug}/autosync/options",
        "/accounts/{slug}/autosync/report",
        "/accounts/{slug}/readmit",
        "/accounts/{slug}/address",
        "/accounts/{slug}/aliases",
        "/accounts/{slug}/aliases/retire",
        "/accounts/{slug}/sites",
        "/accounts/{slug}/sites/{name}",
        "/accounts/{slug}/sites/{name}/devices",
        "/accounts/{slug}/groups",
        "/accounts/{slug}/groups/{name}",
        "/accounts/{slug}/groups/{name}/members",
        "/accounts/{slug}/policies",
        "/accounts/{slug}/inventory",
        "/accounts/{slug}/checkins",
        "/accounts/{slug}/export",
        "/accounts/{slug}/import",
        "/devices/{mac}/effective-settings",
        "/audit",
        "/export",
        "/import",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    assert_eq!(api(&server, "GET", "/accounts", None, "").status, 401);
    let viewer = user_with_token(&server, "vera", "viewer", "");
    let installer = user_with_token(&server, "ian", "installer", "acme");
    let provider = user_with_token(&server, "pia", "provider", "");
    assert_eq!(
        api(&server, "GET", "/accounts/default", Some(&viewer), "").status,
        200
    );
    assert_eq!(api(&server, "GET", "/audit", Some(&viewer), "").status, 200);
    for (method, path, body) in [
        ("PUT", "/accounts/default/autosync", r#"{"enabled": false}"#),
        (
            "PUT",
            "/accounts/default/provisioning",
            r#"{"enabled": false}"#,
        ),
        (
            "POST",
            "/accounts",
            r#"{"name": "b", "slug": "branch", "user": "b", "password": "Branch-Passw0rd"}"#,
        ),
        ("POST", "/accounts/default/sites", r#"{"name": "hq"}"#),
        ("GET", "/accounts/default/export?include_secrets=true", ""),
    ] {
        let r = api(&server, method, path, Some(&viewer), body);
        assert_eq!(error_of(&r).0, 403, "{method} {path}: {}", r.text());
    }
    for path in ["/accounts", "/accounts/default/inventory", "/audit"] {
        assert_eq!(
            api(&server, "GET", path, Some(&installer), "").status,
            403,
            "{path}"
        );
    }
    assert_eq!(
        api(
            &server,
            "POST",
            "/accounts/default/sites",
            Some(&provider),
            r#"{"name": "hq"}"#
        )
        .status,
        201
    );
    assert_eq!(
        api(
            &server,
            "PUT",
            "/accounts/default/autosync",
            Some(&provider),
            r#"{"enabled": false, "confirm": true}"#
        )
        .status,
        403
    );
    let admin = user_with_token(&server, "bot", "admin", "");
    assert_eq!(
        api(&server, "GET", "/accounts/nosuch", Some(&admin), "").status,
        404
    );
    assert_eq!(
        api(
            &server,
            "GET",
            "/accounts/default/nowhere",
            Some(&admin),
            ""
        )
        .status,
        404
    );
    assert_eq!(
        api(&server, "PATCH", "/accounts/default", Some(&admin), "{}").status,
        405
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/accounts/default/autosync",
            Some(&admin),
            ""
        )
        .status,
        405
    );
}

#[test]
fn accounts_change_through_the_api_with_the_confirmation_protocol() {
    let server = ZServer::start();
    setup(&server);
    rotate(&server);
    let t = user_with_token(&server, "bot", "admin", "");
    let list = ok(api(&server, "GET", "/accounts", Some(&t), ""));
    assert_eq!(list["accounts"][0]["slug"], "default");
    let a = ok(api(&server, "GET", "/accounts/default", Some(&t), ""));
    assert_eq!(
        (
            a["password_set"].as_bool(),
            a["settings"]["enabled"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(
        !a.to_string().contains("Second-Passw0rd-2"),
        "never the password"
    );

    // Auto-Sync off would lock the pending phone out: 409 with the count, nothing changed.
    let r = api(
        &server,
        "PUT",
        "/accounts/default/autosync",
        Some(&t),
        r#"{"enabled": false}"#,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let e = json(&r);
    assert!(
        e["error"]["devices"].as_u64().is_some_and(|n| n >= 1),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap_or("").contains(SEEN),
        "{e}"
    );
    let progress = ok(api(
        &server,
        "GET",
        "/accounts/default/autosync",
        Some(&t),
        "",
    ));
    // The never-seen device is pending too when it was associated before the rotation's
    // second; the phone that holds the old credentials always is.
    let row = progress["pending"]
        .as_array()
        .expect("pending")
        .iter()
        .find(|d| d["mac"] == SEEN)
        .expect("the phone on the old credentials is pending")
        .clone();
    assert_eq!(row["state"], "pending");
    let a = ok(api(
        &server,
        "PUT",
        "/accounts/default/autosync",
        Some(&t),
        r#"{"enabled": false, "confirm": true}"#,
    ));
    assert_eq!(a["settings"]["enabled"], false);
    let progress = ok(api(
        &server,
        "GET",
        "/accounts/default/autosync",
        Some(&t),
        "",
    ));
    assert!(
        progress["locked_out"]
            .as_array()
            .expect("list")
            .iter()
            .any(|d| d["mac"] == SEEN),
        "{progress}"
    );
    let report = ok(api(
        &server,
        "GET",
        "/accounts/default/autosync/report",
        Some(&t),
        "",
    ));
    assert!(
        report["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .any(|d| d["mac"] == SEEN && d["state"] == "locked-out"),
        "{report}"
    );
    let r = ok(api(
        &server,
        "POST",
        "/accounts/default/readmit",
        Some(&t),
        &json!({"macs": [SEEN]}).to_string(),
    ));
    assert_eq!(r["readmitted"], json!([SEEN]));
    let r = api(
        &server,
        "POST",
        "/accounts/default/readmit",
        Some(&t),
        r#"{"macs": ["zz"]}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["macs[0]".to_string()]));
    let r = api(
        &server,
        "POST",
        "/accounts/default/readmit",
        Some(&t),
        r#"{}"#,
    );
    assert_eq!(error_of(&r).0, 422);

    // Credentials: 422 names the field; unknown fields are refused.
    let r = api(
        &server,
        "PUT",
        "/accounts/default/credentials",
        Some(&t),
        r#"{"user": "phones", "password": "short"}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["password".to_string()]));
    let r = api(
        &server,
        "PUT",
        "/accounts/default/credentials",
        Some(&t),
        r#"{"user": "phones", "password": "Third-Passw0rd", "colour": 1}"#,
    );
    assert_eq!(error_of(&r).0, 422);
    let a = ok(api(
        &server,
        "PUT",
        "/accounts/default/credentials",
        Some(&t),
        r#"{"user": "phones3", "password": "Third-Passw0rd", "grace_days": 3, "confirm": true}"#,
    ));
    assert_eq!(a["device_user"], "phones3");
    let r = api(
        &server,
        "PUT",
        "/accounts/default/autosync/options",
        Some(&t),
        r#"{"seen_days": 0}"#,
    );
    assert_eq!(error_of(&r), (422, vec!["seen_days".to_string()]));
    let a = ok(api(
        &server,
        "PUT",
        "/accounts/default/autosync/options",
        Some(&t),
        r#"{"grace_days": 5, "poly_os": true, "confirm": true}"#,
    ));
    assert_eq!(
        (
            a["settings"]["grace_days"].as_u64(),
            a["settings"]["poly_os"].as_bool()
        ),
        (Some(5), Some(true))
    );

    // Provisioning off refuses both devices (409 with 2), then credentials are refused (409).
    let r = api(
        &server,
        "PUT",
        "/accounts/default/provisioning",
        Some(&t),
        r#"{"enabled": false}"#,
    );
    assert_eq!(
        (r.status, json(&r)["error"]["devices"].as_u64()),
        (409, Some(2))
    );
    ok(api(
        &server,
        "PUT",
        "/accounts/default/provisioning",
        Some(&t),
        r#"{"enabled": false, "confirm": true}"#,
    ));
    let r = api(
        &server,
        "PUT",
        "/accounts/default/credentials",
        Some(&t),
        r#"{"user": "phones", "password": "Fourth-Passw0rd", "confirm": true}"#,
    );
    assert_eq!(error_of(&r).0, 409);
    let a = ok(api(
        &server,
        "PUT",
        "/accounts/default/provisioning",
        Some(&t),
        r#"{"enabled": true}"#,
    ));
    assert_eq!(
        (
            a["settings"]["provisioning_enabled"].as_bool(),
            a["settings"]["enabled"].as_bool()
        ),
        (Some(true), Some(false))
    );

    // A new account, a new address, its alias.
    let b = api(
        &server,
        "POST",
        "/accounts",
        Some(&t),
        r#"{"name": "Branch", "slug": "branch", "user": "branch", "password": "Branch-Passw0rd"}"#,
    );
    assert_eq!(b.status, 201, "{}", b.text());
    assert_eq!(api(&server, "POST", "/accounts", Some(&t), r#"{"name": "Branch", "slug": "branch", "user": "branch", "password": "Branch-Passw0rd"}"#).status, 409);
    let r = api(
        &server,
        "POST",
        "/accounts",
        Some(&t),
        r#"{"name": "", "slug": "B!", "user": "x", "password": "Branch-Passw0rd"}"#,
    );
    let (status, fields) = error_of(&r);
    assert!(
        status == 422
            && fields.contains(&"slug".to_string())
            && fields.contains(&"name".to_string()),
        "{fields:?}"
    );
    let old = json(&b)["service_address"]
        .as_str()
        .expect("address")
        .to_string();
    let g = ok(api(
        &server,
        "POST",
        "/accounts/branch/address",
        Some(&t),
        r#"{"confirm": false}"#,
    ));
    assert_eq!(g["old"], old.as_str());
    assert_eq!(
        ok(api(
            &server,
            "GET",
            "/accounts/branch/aliases",
            Some(&t),
            ""
        ))["aliases"],
        json!([]),
        "no phone used it"
    );
    let r = api(
        &server,
        "POST",
        "/accounts/branch/aliases/retire",
        Some(&t),
        &json!({"address": old}).to_string(),
    );
    assert_eq!(r.status, 404);

    let log = ok(api(&server, "GET", "/audit?account=default", Some(&t), ""));
    let text = log.to_string();
    assert!(
        !text.contains("Third-Passw0rd") && !text.contains(FIRST),
        "masked: {text}"
    );
    let entry = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "account.set-credentials")
        .expect("audited");
    assert_eq!(
        (entry["actor"].as_str(), entry["actor_kind"].as_str()),
        (Some("bot (API token)"), Some("token"))
    );
    assert_eq!(entry["after"]["password"], "********");
}
