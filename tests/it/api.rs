//! The JSON API: every endpoint, its error envelope (401, 403, 404, 409, 422 with the field
//! named) and the confidentiality rule between installer companies.

use crate::common::*;

const PROFILE: &str = r#"{"name": "office", "polling": "enable", "software": {"VVX": "6.4.3.1234"},
    "files": [{"name": "site.cfg", "content": "<polycomConfig tcpIpApp.sntp.address=\"pool.ntp.org\"/>"}]}"#;

fn error_of(r: &Resp) -> (u64, String, Vec<String>) {
    let v = json(r);
    let e = &v["error"];
    let fields = e["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().unwrap_or("").to_string())
        .collect();
    (
        e["status"].as_u64().expect("status"),
        e["message"].as_str().expect("message").to_string(),
        fields,
    )
}

#[test]
fn the_api_needs_a_token_and_serves_its_openapi_document() {
    let server = ZServer::start();
    let r = api(&server, "GET", "/profiles", None, "");
    assert_eq!(r.status, 401);
    assert_eq!(error_of(&r).0, 401);
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    assert_eq!(
        api(&server, "GET", "/profiles", Some("zt_not-a-token"), "").status,
        401
    );
    let doc = api(&server, "GET", "/openapi.json", None, "");
    assert_eq!(doc.status, 200);
    let v = json(&doc);
    assert_eq!(v["openapi"], "3.0.3");
    for path in [
        "/profiles",
        "/profiles/{name}",
        "/subscribers",
        "/subscribers/{reference_id}",
        "/devices",
        "/devices/{mac}",
        "/devices/{mac}/copy",
        "/devices/{mac}/replace",
        "/imports",
        "/imports/{id}",
        "/imports/{id}/rejected",
        "/find",
        "/firmware",
        "/firmware/rollout",
        "/firmware/{version}",
        "/assets",
        "/assets/directory",
        "/assets/directory.csv",
        "/assets/files/{name}",
        "/assets/languages/{folder}",
        "/assets/languages/{folder}/{language}/{file}",
        "/devices/{mac}/overrides",
        "/overrides/clear",
    ] {
        assert!(v["paths"].get(path).is_some(), "{path} undocumented");
    }
    let token = user_with_token(&server, "bot", "admin", "");
    let r = api(&server, "GET", "/nowhere", Some(&token), "");
    assert_eq!((r.status, error_of(&r).0), (404, 404));
    let r = api(&server, "PATCH", "/profiles", Some(&token), "{}");
    assert_eq!(r.status, 405);
}

#[test]
fn profiles_are_created_read_modified_and_deleted() {
    let server = ZServer::start();
    import_release(&server, "6.4.3.1234", &["3111-48500-001.sip.ld"], &[]);
    let t = user_with_token(&server, "bot", "provider", "");
    let r = api(&server, "POST", "/profiles", Some(&t), PROFILE);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["name"].as_str(), v["files"][0]["name"].as_str()),
        (Some("office"), Some("site.cfg"))
    );
    assert_eq!(
        api(&server, "POST", "/profiles", Some(&t), PROFILE).status,
        409
    );
    let bad = api(
        &server,
        "POST",
        "/profiles",
        Some(&t),
        r#"{"name": "x", "files": [{"name": "b.cfg", "content": "<a>"}]}"#,
    );
    let (status, _, fields) = error_of(&bad);
    assert_eq!(status, 422);
    assert!(
        fields.contains(&"name".to_string()) && fields.contains(&"b.cfg".to_string()),
        "{fields:?}"
    );
    let unknown = api(
        &server,
        "POST",
        "/profiles",
        Some(&t),
        r#"{"name": "p2", "colour": "blue"}"#,
    );
    assert_eq!(unknown.status, 422);
    assert!(
        error_of(&unknown).1.contains("colour"),
        "{}",
        unknown.text()
    );
    let listed = json(&api(&server, "GET", "/profiles", Some(&t), ""));
    assert_eq!(listed["profiles"][0]["name"], "office");
    let r = api(
        &server,
        "PUT",
        "/profiles/office",
        Some(&t),
        r#"{"name": "office2", "polling": "disable"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r)["files"].as_array().map(Vec::len),
        Some(1),
        "files kept when absent"
    );
    assert_eq!(
        api(&server, "GET", "/profiles/office", Some(&t), "").status,
        404
    );
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "0004f2000001", "profile": "office2"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(&server, "DELETE", "/profiles/office2", Some(&t), "");
    assert_eq!(r.status, 409);
    assert!(error_of(&r).1.contains("used by 1 device"), "{}", r.text());
    assert_eq!(
        api(&server, "DELETE", "/devices/0004f2000001", Some(&t), "").status,
        204
    );
    assert_eq!(
        api(&server, "DELETE", "/profiles/office2", Some(&t), "").status,
        204
    );
}

#[test]
fn subscribers_and_device_operations() {
    let server = ZServer::start();
    import_release(&server, "6.4.3.1234", &["3111-48500-001.sip.ld"], &[]);
    let t = user_with_token(&server, "bot", "admin", "");
    assert_eq!(
        api(&server, "POST", "/profiles", Some(&t), PROFILE).status,
        201
    );
    let r = api(
        &server,
        "POST",
        "/subscribers",
        Some(&t),
        r#"{"reference_id": "REF001", "first_name": "Karl", "city": "Vienna"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(json(&r)["status"], "partial");
    let bad = api(
        &server,
        "POST",
        "/subscribers",
        Some(&t),
        r#"{"reference_id": "R-1"}"#,
    );
    assert_eq!(error_of(&bad).2, vec!["reference_id"]);
    assert_eq!(
        api(
            &server,
            "POST",
            "/subscribers",
            Some(&t),
            r#"{"reference_id": "ref001"}"#
        )
        .status,
        409
    );
    let body = r#"{"id": "0004F2000001", "profile": "office", "reference_id": "REF001", "sip_server": "sip.example.com",
                   "sip_auth_user_id": "1001", "sip_auth_password": "s3cret", "line_label": "Desk", "display_name": "Karl"}"#;
    let r = api(&server, "POST", "/devices", Some(&t), body);
    assert_eq!(r.status, 201, "{}", r.text());
    let d = json(&r);
    assert_eq!(
        (d["id"].as_str(), d["sip_auth_password_set"].as_bool()),
        (Some("0004f2000001"), Some(true))
    );
    assert_eq!(
        json(&api(&server, "GET", "/subscribers/REF001", Some(&t), ""))["status"],
        "complete"
    );
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "0004f200000", "profile": "office"}"#,
    );
    assert_eq!(error_of(&r).2, vec!["mac"]);
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "0004f2000009", "profile": "nope"}"#,
    );
    assert_eq!(error_of(&r).2, vec!["profile"]);
    let r = api(
        &server,
        "PUT",
        "/devices/0004f2000001",
        Some(&t),
        r#"{"profile": "office", "sip_server": "sip2.example.com", "sip_auth_user_id": "1001"}"#,
    );
    assert_eq!(
        (r.status, json(&r)["sip_server"].as_str()),
        (200, Some("sip2.example.com"))
    );
    let r = api(
        &server,
        "POST",
        "/devices/0004f2000001/copy",
        Some(&t),
        r#"{"new_mac": "0004f2000002"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let c = json(&r);
    assert_eq!(
        (c["reference_id"].as_str(), c["sip_server"].as_str()),
        (Some("REF001"), Some("sip2.example.com"))
    );
    assert_eq!(
        (c["sip_auth_user_id"].as_str(), c["display_name"].as_str()),
        (Some(""), Some("")),
        "line 1 is not copied"
    );
    let r = api(
        &server,
        "POST",
        "/devices/0004f2000001/replace",
        Some(&t),
        r#"{"new_mac": "0004f2000003"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = json(&r);
    assert_eq!(
        (
            n["id"].as_str(),
            n["sip_auth_user_id"].as_str(),
            n["serial"].as_str()
        ),
        (Some("0004f2000003"), Some("1001"), Some("0004F2000003"))
    );
    assert_eq!(
        api(&server, "GET", "/devices/0004f2000001", Some(&t), "").status,
        404
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/devices/0004f2000003/replace",
            Some(&t),
            r#"{"new_mac": "0004f2000002"}"#
        )
        .status,
        409
    );
    assert_eq!(
        api(&server, "DELETE", "/subscribers/REF001", Some(&t), "").status,
        409
    );
    assert_eq!(
        api(&server, "DELETE", "/devices/0004f2000002", Some(&t), "").status,
        204
    );
    assert_eq!(
        api(&server, "DELETE", "/devices/0004f2000003", Some(&t), "").status,
        204
    );
    assert_eq!(
        json(&api(&server, "GET", "/subscribers/REF001", Some(&t), ""))["status"],
        "partial"
    );
    assert_eq!(
        api(&server, "DELETE", "/subscribers/REF001", Some(&t), "").status,
        204
    );
    assert_eq!(
        api(&server, "GET", "/subscribers/REF001", Some(&t), "").status,
        404
    );
    let r = api(
        &server,
        "PUT",
        "/subscribers/REF001",
        Some(&t),
        r#"{"reference_id": "REF001"}"#,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn installers_see_and_change_only_their_company_devices() {
    let server = ZServer::start();
    import_release(&server, "6.4.3.1234", &["3111-48500-001.sip.ld"], &[]);
    let admin = user_with_token(&server, "root", "admin", "");
    assert_eq!(
        api(&server, "POST", "/profiles", Some(&admin), PROFILE).status,
        201
    );
    let acme = user_with_token(&server, "ann", "installer", "acme");
    let globex = user_with_token(&server, "gus", "installer", "globex");
    let viewer = user_with_token(&server, "vic", "viewer", "");
    assert_eq!(
        api(
            &server,
            "POST",
            "/devices",
            Some(&acme),
            r#"{"id": "0004f2000001", "profile": "office"}"#
        )
        .status,
        201
    );
    let r = api(&server, "GET", "/devices/0004f2000001", Some(&globex), "");
    assert_eq!((r.status, error_of(&r).0), (403, 403));
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/devices/0004f2000001",
            Some(&globex),
            ""
        )
        .status,
        403
    );
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&globex),
        r#"{"id": "0004f2000001", "profile": "office"}"#,
    );
    assert_eq!(r.status, 409);
    assert!(
        error_of(&r).1.contains("already associated elsewhere"),
        "{}",
        r.text()
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/profiles",
            Some(&acme),
            r#"{"name": "mine"}"#
        )
        .status,
        403,
        "installers do not manage profiles"
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/devices",
            Some(&viewer),
            r#"{"id": "0004f2000002", "profile": "office"}"#
        )
        .status,
        403
    );
    assert_eq!(
        api(&server, "GET", "/devices/0004f2000001", Some(&viewer), "").status,
        200
    );
    let found = json(&api(
        &server,
        "GET",
        "/find?view=device&mac=0004f2%25",
        Some(&globex),
        "",
    ));
    assert_eq!(found["total"], 0, "other companies' devices are not found");
    let found = json(&api(
        &server,
        "GET",
        "/find?view=device&mac=0004f2%25",
        Some(&acme),
        "",
    ));
    assert_eq!(found["total"], 1);
}

#[test]
fn bulk_imports_report_rejected_lines_and_find_searches_both_views() {
    let server = ZServer::start();
    let t = user_with_token(&server, "bot", "admin", "");
    assert_eq!(
        api(
            &server,
            "POST",
            "/profiles",
            Some(&t),
            r#"{"name": "profile1"}"#
        )
        .status,
        201
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/subscribers",
            Some(&t),
            r#"{"reference_id": "BULK01", "last_name": "Kraus"}"#
        )
        .status,
        201
    );
    let csv = "0000cafebabe,,,profile1\n0000cafebab,,,profile1\n0000cafe1234,0000CAFE1234,Polycom_UCS_Device,profile1,192.168.1.178,192.168.1.171\n";
    let r = api(
        &server,
        "POST",
        "/imports?reference_id=BULK01&dry_run=true",
        Some(&t),
        csv,
    );
    assert_eq!(
        (r.status, json(&r)["applied_rows"].as_u64()),
        (201, Some(2))
    );
    assert_eq!(
        json(&api(&server, "GET", "/find?view=device", Some(&t), ""))["total"],
        0,
        "dry run wrote nothing"
    );
    let r = api(
        &server,
        "POST",
        "/imports?reference_id=BULK01",
        Some(&t),
        csv,
    );
    let job = json(&r);
    assert_eq!(job["status"], "Completed with Errors");
    let id = job["id"].as_u64().expect("id");
    assert_eq!(
        json(&api(
            &server,
            "GET",
            &format!("/imports/{id}"),
            Some(&t),
            ""
        ))["rejected_rows"],
        1
    );
    let rej = json(&api(
        &server,
        "GET",
        &format!("/imports/{id}/rejected"),
        Some(&t),
        "",
    ));
    assert_eq!(rej["rejected"][0]["line"], 2);
    let mut conn = Conn::open(server.admin);
    let auth = format!("Bearer {t}");
    let file = conn.request(
        "GET",
        &format!("/api/v1/imports/{id}/rejected"),
        &[("Authorization", &auth), ("Accept", "text/csv")],
        b"",
    );
    assert!(
        file.text().contains("# line 2: column 1 (MAC Address)"),
        "{}",
        file.text()
    );
    assert_eq!(
        api(&server, "GET", "/imports/999", Some(&t), "").status,
        404
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/imports?reference_id=NOPE1",
            Some(&t),
            csv
        )
        .status,
        404
    );
    let by_ref = json(&api(&server, "GET", "/find?last_name=kr%25", Some(&t), ""));
    assert_eq!(
        (
            by_ref["view"].as_str(),
            by_ref["rows"][0]["devices"].as_u64()
        ),
        (Some("reference"), Some(2))
    );
    let by_dev = json(&api(
        &server,
        "GET",
        "/find?view=device&mac=%25babe&sort=mac&dir=desc",
        Some(&t),
        "",
    ));
    assert_eq!(by_dev["rows"][0]["mac"], "0000cafebabe");
    let r = api(&server, "GET", "/find?sort=colour&page=x", Some(&t), "");
    let (status, _, fields) = error_of(&r);
    assert_eq!(
        (status, fields),
        (422, vec!["sort".to_string(), "page".to_string()])
    );
}
