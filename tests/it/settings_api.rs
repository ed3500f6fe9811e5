//! The JSON API of issue 6: provisioning settings (secrets write-only, every bad field
//! named, the S3 check at save, generate and push now), custom variables, device template
//! values and lines, and the preview (secrets for admins only, audited); 401 and 403.

use std::time::Duration;

use crate::common::*;

const MAC: &str = "0004f2aabbcc";

fn fields_of(r: &Resp) -> Vec<String> {
    json(r)["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no error envelope: {}", r.text()))
        .iter()
        .map(|f| f["field"].as_str().unwrap_or("").to_string())
        .collect()
}

fn add_device(server: &ZServer, file: &str) {
    let f = write_file(server.dir.path(), "site.cfg", file.as_bytes());
    server.cli_ok(&["profile", "add", "p1", "--file", f.to_str().expect("utf-8")]);
    server.cli_ok(&["device", "add", MAC, "--profile", "p1"]);
}

#[test]
fn every_endpoint_needs_a_token_and_the_right_role() {
    let server = ZServer::start();
    add_device(&server, "<c/>");
    let admin = user_with_token(&server, "root", "admin", "");
    let provider = user_with_token(&server, "pat", "provider", "");
    let viewer = user_with_token(&server, "vic", "viewer", "");
    let installer = user_with_token(&server, "ann", "installer", "acme");
    let routes: &[(&str, String, &str)] = &[
        ("GET", "/settings".into(), ""),
        (
            "PUT",
            "/settings".into(),
            r#"{"registrar": "sip.example.com"}"#,
        ),
        ("GET", "/settings/push".into(), ""),
        ("POST", "/settings/push".into(), ""),
        ("GET", "/variables".into(), ""),
        (
            "PUT",
            "/variables/SYSLOG_SERVER".into(),
            r#"{"value": "10.0.0.9"}"#,
        ),
        ("DELETE", "/variables/SYSLOG_SERVER".into(), ""),
        ("GET", format!("/devices/{MAC}/values"), ""),
        (
            "PUT",
            format!("/devices/{MAC}/values"),
            r#"{"label": "Lobby"}"#,
        ),
        (
            "PUT",
            format!("/devices/{MAC}/lines/2"),
            r#"{"first_name": "Ann"}"#,
        ),
        ("DELETE", format!("/devices/{MAC}/lines/2"), ""),
        ("GET", format!("/devices/{MAC}/preview"), ""),
        ("GET", format!("/devices/{MAC}/preview?secrets=true"), ""),
    ];
    for (method, path, body) in routes {
        let r = api(&server, method, path, None, body);
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(json(&r)["error"]["status"], 401);
    }
    let forbidden = |token: &str, method: &str, path: &str, body: &str| {
        let r = api(&server, method, path, Some(token), body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
    };
    for t in [&provider, &viewer, &installer] {
        forbidden(t, "GET", "/settings", "");
        forbidden(t, "PUT", "/settings", r#"{"registrar": "x.example.com"}"#);
        forbidden(t, "POST", "/settings/push", "");
        forbidden(t, "PUT", "/variables/X1", r#"{"value": "1"}"#);
        forbidden(
            t,
            "GET",
            &format!("/devices/{MAC}/preview?secrets=true"),
            "",
        );
    }
    assert_eq!(
        api(&server, "GET", "/variables", Some(&provider), "").status,
        200
    );
    forbidden(&viewer, "GET", "/variables", "");
    forbidden(
        &viewer,
        "PUT",
        &format!("/devices/{MAC}/values"),
        r#"{"label": "x"}"#,
    );
    assert_eq!(
        api(
            &server,
            "GET",
            &format!("/devices/{MAC}/preview"),
            Some(&viewer),
            ""
        )
        .status,
        200
    );
    // The admin associated the device: another company's installer may not see it.
    forbidden(&installer, "GET", &format!("/devices/{MAC}/values"), "");
    forbidden(&installer, "GET", &format!("/devices/{MAC}/preview"), "");
    assert_eq!(
        api(&server, "GET", "/settings", Some(&admin), "").status,
        200
    );
    assert_eq!(
        api(&server, "PATCH", "/settings", Some(&admin), "{}").status,
        405
    );
    let doc = json(&api(&server, "GET", "/openapi.json", None, ""));
    for path in [
        "/settings",
        "/settings/push",
        "/variables",
        "/variables/{name}",
        "/devices/{mac}/values",
        "/devices/{mac}/lines/{line}",
        "/devices/{mac}/preview",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    assert!(
        !server
            .cli_ok(&["settings", "show"])
            .contains("x.example.com")
    );
}

#[test]
fn settings_are_read_and_changed_with_secrets_write_only() {
    let server = ZServer::start_with("external.check_timeout_secs = 3\n");
    let t = user_with_token(&server, "root", "admin", "");
    let r = api(&server, "GET", "/settings", Some(&t), "");
    let v = json(&r);
    assert_eq!(
        (v["mode"].as_str(), v["script_timeout_secs"].as_u64()),
        (Some("local"), Some(30))
    );
    assert_eq!(v["http_password_set"], false);
    assert!(v.get("http_password").is_none());

    let r = api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"registrar": "sip.example.com", "http_user": "u", "http_password": "Api-Secret-1", "script_timeout_secs": 45}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["registrar"].as_str(), v["http_password_set"].as_bool()),
        (Some("sip.example.com"), Some(true))
    );
    assert_eq!(v["script_timeout_secs"], 45);
    assert!(!r.text().contains("Api-Secret-1"));
    // Fields left out keep their value.
    let v = json(&api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"ntp_server": "ntp.example.com"}"#,
    ));
    assert_eq!(
        (v["registrar"].as_str(), v["http_password_set"].as_bool()),
        (Some("sip.example.com"), Some(true))
    );

    // Every bad field is named; nothing is saved.
    let r = api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"registrar": "not a host", "colour": "blue", "mode": "external", "sip_proxy": true}"#,
    );
    assert_eq!(r.status, 422);
    assert_eq!(fields_of(&r), ["sip_proxy"], "the types first");
    let r = api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"registrar": "not a host", "colour": "blue", "mode": "external"}"#,
    );
    assert_eq!(r.status, 422);
    let fields = fields_of(&r);
    for f in ["registrar", "colour", "external_server", "server_address"] {
        assert!(fields.iter().any(|x| x == f), "{f} not named: {fields:?}");
    }
    for bad in ["", "[]"] {
        let r = api(&server, "PUT", "/settings", Some(&t), bad);
        assert_eq!(
            (r.status, fields_of(&r).as_slice()),
            (422, &["body".to_string()][..]),
            "{bad}: {}",
            r.text()
        );
    }
    assert_eq!(
        api(&server, "PUT", "/settings", Some(&t), "{\"registrar\": ").status,
        422
    );
    // The S3 check at save names the field and saves nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let body = format!(
        r#"{{"transport": "s3", "s3_endpoint": "http://127.0.0.1:{closed}", "s3_bucket": "zt-configs", "s3_access_key": "k", "s3_secret_key": "Api-S3-Secret", "registrar": "other.example.com"}}"#
    );
    let r = api(&server, "PUT", "/settings", Some(&t), &body);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(fields_of(&r), ["s3_endpoint"]);
    assert!(
        json(&r)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach")
    );
    assert_eq!(
        json(&api(&server, "GET", "/settings", Some(&t), ""))["registrar"],
        "sip.example.com"
    );
    // An empty secret clears it.
    let v = json(&api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"http_user": "", "http_password": ""}"#,
    ));
    assert_eq!(v["http_password_set"], false);
    let audit = server.cli_ok(&["audit"]);
    assert!(
        audit.contains("token:root (API token)  settings.set"),
        "{audit}"
    );
    assert!(
        !audit.contains("Api-Secret-1") && !audit.contains("Api-S3-Secret"),
        "{audit}"
    );
}

#[test]
fn generate_and_push_now_runs_once_in_external_mode() {
    let server = ZServer::start();
    add_device(&server, "<c/>");
    let t = user_with_token(&server, "root", "admin", "");
    let r = api(&server, "POST", "/settings/push", Some(&t), "");
    assert_eq!(r.status, 409, "Local mode: {}", r.text());
    assert_eq!(
        json(&api(&server, "GET", "/settings/push", Some(&t), ""))["last"],
        serde_json::Value::Null
    );
    let r = api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"mode": "external", "server_address": "pbx.example.com", "external_server": "dms.example.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api(&server, "POST", "/settings/push", Some(&t), "");
    assert_eq!(r.status, 202, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["devices"].as_u64(), v["transport"].as_str()),
        (Some(1), Some("none"))
    );
    assert!(eventually(Duration::from_secs(10), || {
        let v = json(&api(&server, "GET", "/settings/push", Some(&t), ""));
        v["last"]["finished_at"].is_i64() && v["last"]["pushed"] == 1
    }));
    assert!(
        server
            .data_dir()
            .join("external/Polycom_UCS_Device")
            .join(format!("{MAC}.cfg"))
            .is_file()
    );
}

#[test]
fn custom_variables_are_created_replaced_and_deleted_unless_used() {
    let server = ZServer::start();
    let t = user_with_token(&server, "root", "admin", "");
    let r = api(
        &server,
        "PUT",
        "/variables/SYSLOG_SERVER",
        Some(&t),
        r#"{"value": "10.0.0.9"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(
        &server,
        "PUT",
        "/variables/SYSLOG_SERVER",
        Some(&t),
        r#"{"value": "10.0.0.10"}"#,
    );
    assert_eq!(
        (r.status, json(&r)["value"].as_str()),
        (200, Some("10.0.0.10"))
    );
    let r = api(
        &server,
        "PUT",
        "/variables/API_KEY",
        Some(&t),
        r#"{"value": "Var-Api-Secret"}"#,
    );
    assert_eq!(
        (json(&r)["value"].as_str(), json(&r)["secret"].as_bool()),
        (Some("********"), Some(true))
    );
    for (name, body, field) in [
        ("lower", r#"{"value": "x"}"#, "name"),
        ("MAC", r#"{"value": "x"}"#, "name"),
        ("OK_NAME", r#"{"value": "a\nb"}"#, "value"),
        ("OK_NAME", r#"{"valu": "x"}"#, "valu"),
    ] {
        let r = api(
            &server,
            "PUT",
            &format!("/variables/{name}"),
            Some(&t),
            body,
        );
        assert_eq!(r.status, 422, "{name} {body}");
        assert_eq!(fields_of(&r), [field], "{name} {body}");
    }
    let r = api(&server, "GET", "/variables", Some(&t), "");
    let v = json(&r);
    assert!(!r.text().contains("Var-Api-Secret"));
    assert_eq!(v["mac"], serde_json::Value::Null);
    let reg = v["builtin"]
        .as_array()
        .expect("builtin")
        .iter()
        .find(|x| x["name"] == "NTP_SERVER")
        .expect("NTP_SERVER")
        .clone();
    assert!(
        reg["source"]
            .as_str()
            .unwrap_or("")
            .starts_with("default: management server"),
        "{reg}"
    );
    assert_eq!(v["custom"].as_array().expect("custom").len(), 2);

    add_device(&server, "<c s.x=\"${SYSLOG_SERVER}\"/>");
    let r = api(&server, "DELETE", "/variables/SYSLOG_SERVER", Some(&t), "");
    assert_eq!(r.status, 409);
    assert!(
        json(&r)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("profile p1 file site.cfg line 1"),
        "{}",
        r.text()
    );
    assert_eq!(
        api(&server, "DELETE", "/variables/API_KEY", Some(&t), "").status,
        204
    );
    assert_eq!(
        api(&server, "DELETE", "/variables/API_KEY", Some(&t), "").status,
        404
    );
    let v = json(&api(
        &server,
        "GET",
        &format!("/variables?mac={MAC}"),
        Some(&t),
        "",
    ));
    assert_eq!(v["mac"], MAC);
    assert_eq!(
        api(&server, "GET", "/variables?mac=zz", Some(&t), "").status,
        422
    );
    assert!(!server.cli_ok(&["audit"]).contains("Var-Api-Secret"));
}

#[test]
fn device_values_lines_and_the_preview() {
    let server = ZServer::start();
    add_device(
        &server,
        "<c l.x=\"${LABEL}\" ${OVERRIDE}>\n<!-- zerotouch:lines -->\n<r reg.${LINE}.ext=\"${EXTENSION}\" reg.${LINE}.auth.password=\"${PASSWORD}\"/>\n<!-- zerotouch:end-lines -->\n</c>",
    );
    let t = user_with_token(&server, "root", "admin", "");
    let p = user_with_token(&server, "pat", "provider", "");
    let values = format!("/devices/{MAC}/values");
    let r = api(
        &server,
        "PUT",
        &values,
        Some(&t),
        r#"{"default_parkext": "70 0", "override": "oops"}"#,
    );
    assert_eq!(r.status, 422);
    assert_eq!(fields_of(&r), ["default_parkext", "override"]);
    let r = api(
        &server,
        "PUT",
        &values,
        Some(&t),
        r#"{"label": "Lobby", "override": "reg.1.auth.password=\"Api-Override-Secret\""}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["label"].as_str(), v["override"].as_str()),
        (Some("Lobby"), Some("reg.1.auth.password=\"********\""))
    );
    // Sending back what was read keeps the secret.
    let r = api(
        &server,
        "PUT",
        &values,
        Some(&t),
        r#"{"override": "reg.1.auth.password=\"********\""}"#,
    );
    assert_eq!(r.status, 200);
    let r = api(
        &server,
        "PUT",
        &format!("/devices/{MAC}/lines/2"),
        Some(&t),
        r#"{"extension": "2002", "sip_password": "Api-Line-Secret"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let line = json(&r)["lines"][0].clone();
    assert_eq!(
        (
            line["line"].as_u64(),
            line["extension"].as_str(),
            line["sip_password_set"].as_bool()
        ),
        (Some(2), Some("2002"), Some(true))
    );
    assert_eq!(
        api(
            &server,
            "PUT",
            &format!("/devices/{MAC}/lines/65"),
            Some(&t),
            "{}"
        )
        .status,
        422
    );
    assert_eq!(
        api(
            &server,
            "PUT",
            &format!("/devices/{MAC}/lines/x"),
            Some(&t),
            "{}"
        )
        .status,
        404
    );
    assert_eq!(
        api(&server, "GET", "/devices/0004f2999999/values", Some(&t), "").status,
        404
    );

    let preview = format!("/devices/{MAC}/preview");
    let r = api(&server, "GET", &preview, Some(&p), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("Api-Line-Secret") && !r.text().contains("Api-Override-Secret"));
    let f = &json(&r)["files"][0];
    assert!(
        f["text"]
            .as_str()
            .unwrap_or("")
            .contains("reg.2.ext=\"2002\""),
        "{f}"
    );
    let ext = f["vars"]
        .as_array()
        .expect("vars")
        .iter()
        .find(|v| v["name"] == "EXTENSION")
        .expect("EXTENSION")
        .clone();
    assert_eq!(
        (ext["device_line"].as_u64(), ext["source"].as_str()),
        (Some(2), Some("device line 2 extension"))
    );
    let r = api(
        &server,
        "GET",
        &format!("{preview}?secrets=true"),
        Some(&t),
        "",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Api-Line-Secret") && r.text().contains("Api-Override-Secret"));
    assert_eq!(
        api(
            &server,
            "GET",
            &format!("{preview}?secrets=maybe"),
            Some(&t),
            ""
        )
        .status,
        422
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            &format!("/devices/{MAC}/lines/2"),
            Some(&t),
            ""
        )
        .status,
        204
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            &format!("/devices/{MAC}/lines/2"),
            Some(&t),
            ""
        )
        .status,
        404
    );
    // A phone seen but not associated has nothing to preview.
    server
        .phone("0004f2000009", UA_VVX500_APP)
        .get("/0004f2000009.cfg");
    assert!(eventually(Duration::from_secs(10), || api(
        &server,
        "GET",
        "/devices/0004f2000009/preview",
        Some(&t),
        ""
    )
    .status
        == 409));
    let audit = server.cli_ok(&["audit"]);
    assert!(
        audit.contains(&format!(
            "token:root (API token)  device.preview-secrets  {MAC}"
        )),
        "{audit}"
    );
    for secret in ["Api-Line-Secret", "Api-Override-Secret"] {
        assert!(!audit.contains(secret), "{secret} in {audit}");
    }
}
