//! The console pages of issue 6 over plain HTTP: provisioning settings (secrets kept and
//! never shown, every bad field named, External mode with a script transport, generate and
//! push now), template variables, a device's template values and lines, and the preview
//! with its audited "show secrets"; who may use each page, and the audit log.

use std::time::Duration;

use crate::common::*;

mod forms;

pub use forms::{error_near, form_of, post_fields, save_settings, script, with};

const MAC: &str = "0004f2aabbcc";

fn add_device(server: &ZServer, file: &str) {
    let f = write_file(server.dir.path(), "site.cfg", file.as_bytes());
    server.cli_ok(&["profile", "add", "p1", "--file", f.to_str().expect("utf-8")]);
    server.cli_ok(&["device", "add", MAC, "--profile", "p1"]);
}

#[test]
fn the_settings_page_keeps_secrets_names_bad_fields_and_saves_nothing_half() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let page = s.get("/settings");
    assert_eq!(page.status, 200);
    let text = page.text();
    for part in [
        "Management server address",
        "HTTP/HTTPS/TFTP password",
        "DMS server",
        "Backup registrar",
        "NTP server",
        "S3 endpoint",
        "Script timeout (seconds)",
        "device requests, the access log and Auto-Sync do not apply",
    ] {
        assert!(text.contains(part), "{part} missing");
    }

    let r = save_settings(
        &s,
        &[
            ("registrar", "sip.example.com"),
            ("http_user", "phones"),
            ("http_password", "Page-Secret-1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/settings?done=settings-saved"));
    let page = s.get("/settings?done=settings-saved").text();
    assert!(page.contains("Provisioning settings saved."));
    assert!(
        !page.contains("Page-Secret-1"),
        "a secret was sent to the browser"
    );
    assert!(page.contains("leave empty to keep"));
    // Saving the page as shown (password empty) keeps the password.
    assert_eq!(
        save_settings(&s, &[("ntp_server", "ntp.example.com")]).status,
        303
    );
    let shown = server.cli_ok(&["settings", "show", "--secrets"]);
    assert!(
        shown.contains("Page-Secret-1") && shown.contains("ntp.example.com"),
        "{shown}"
    );

    // Every bad field is named at its input; nothing is saved.
    let r = save_settings(
        &s,
        &[
            ("registrar", "not a host"),
            ("script_timeout_secs", "0"),
            ("http_password", "Typed-Secret-2"),
        ],
    );
    assert_eq!(r.status, 422);
    let html = r.text();
    assert!(error_near(&html, "registrar"), "{html}");
    assert!(error_near(&html, "script_timeout_secs"), "{html}");
    assert!(
        html.contains("value=\"not a host\""),
        "what was typed stays"
    );
    assert!(
        !html.contains("Typed-Secret-2"),
        "a typed secret is not echoed"
    );
    let shown = server.cli_ok(&["settings", "show", "--secrets"]);
    assert!(
        shown.contains("sip.example.com") && shown.contains("Page-Secret-1"),
        "{shown}"
    );
    let r = save_settings(&s, &[("mode", "external")]);
    assert_eq!(r.status, 422);
    assert!(error_near(&r.text(), "external_server"), "{}", r.text());
    assert!(error_near(&r.text(), "server_address"));

    // Clear removes a secret.
    let r = save_settings(&s, &[("http_user", ""), ("clear_http_password", "on")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        !server
            .cli_ok(&["settings", "show", "--secrets"])
            .contains("Page-Secret-1")
    );

    // The audit log names the fields and the person, never the secret.
    let audit = server.cli_ok(&["audit"]);
    assert!(audit.contains("person:admin  settings.set"), "{audit}");
    assert!(audit.contains("http_password"), "{audit}");
    assert!(!audit.contains("Page-Secret-1") && !audit.contains("Typed-Secret-2"));
}

#[test]
fn external_mode_with_a_script_pushes_every_device_now() {
    let server = ZServer::start_with("external.scan_interval_ms = 100\n");
    add_device(&server, "<c l.x=\"${LABEL}\"/>");
    let runs = server.dir.path().join("runs");
    std::fs::create_dir_all(&runs).expect("mkdir");
    let push = script(
        server.dir.path(),
        "push.sh",
        &format!(
            "echo \"$PROV_MAC $*\" > {}/run-$(date +%s%N)",
            runs.display()
        ),
    );
    let s = Session::admin(&server);
    // Local mode: nothing to push.
    assert_eq!(s.post("/settings/push", &[]).status, 409);
    let r = save_settings(
        &s,
        &[
            ("mode", "external"),
            ("server_address", "pbx.example.com"),
            ("external_server", "dms.example.com"),
            ("external_password", "Dms-Secret-3"),
            ("transport", "script"),
            ("script_path", "/nonexistent/push.sh"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(error_near(&r.text(), "script_path"), "{}", r.text());
    let r = save_settings(
        &s,
        &[
            ("mode", "external"),
            ("server_address", "pbx.example.com"),
            ("external_server", "dms.example.com"),
            ("external_password", "Dms-Secret-3"),
            ("transport", "script"),
            ("script_path", push.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get("/settings").text();
    assert!(
        page.contains("External mode.")
            && page.contains("device requests, the access log and Auto-Sync do not apply to them"),
        "{page}"
    );
    assert!(page.contains("Generate and push now"));
    assert!(!page.contains("Dms-Secret-3"));

    // The worker pushes by itself; the button pushes every device again, changed or not.
    assert!(eventually(Duration::from_secs(15), || std::fs::read_dir(
        &runs
    )
    .map(|d| d.count() >= 1)
    .unwrap_or(false)));
    let before = std::fs::read_dir(&runs).expect("runs").count();
    let r = s.post("/settings/push", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/settings?done=push-started"));
    assert!(
        eventually(Duration::from_secs(15), || s
            .get("/settings")
            .text()
            .contains("1 pushed, 0 failed")),
        "{}",
        s.get("/settings").text()
    );
    assert!(std::fs::read_dir(&runs).expect("runs").count() > before);
    let audit = server.cli_ok(&["audit"]);
    assert!(audit.contains("external.push"), "{audit}");
    assert!(!audit.contains("Dms-Secret-3"), "{audit}");
}

#[test]
fn an_unreachable_s3_endpoint_is_refused_at_save_naming_the_field() {
    let server = ZServer::start_with("external.check_timeout_secs = 3\n");
    let s = Session::admin(&server);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{closed}");
    let r = save_settings(
        &s,
        &[
            ("registrar", "sip.example.com"),
            ("transport", "s3"),
            ("s3_endpoint", &endpoint),
            ("s3_bucket", "zt-configs"),
            ("s3_access_key", "testing"),
            ("s3_secret_key", "S3-Secret-4"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let html = r.text();
    assert!(error_near(&html, "s3_endpoint"), "{html}");
    assert!(html.contains("cannot reach"), "{html}");
    assert!(!html.contains("S3-Secret-4"));
    let shown = server.cli_ok(&["settings", "show", "--secrets"]);
    assert!(
        !shown.contains("sip.example.com") && !shown.contains("S3-Secret-4"),
        "nothing half-written: {shown}"
    );
    assert!(!server.cli_ok(&["audit"]).contains("settings.set"));
}

#[test]
fn custom_variables_are_added_named_when_bad_and_kept_while_used() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let page = s.get("/variables").text();
    for part in [
        "${REG_SERVER}",
        "${PROXY_SERVER}",
        "= REG_SERVER",
        "${PASSWORD}",
        "per line",
        "No custom variables yet.",
    ] {
        assert!(page.contains(part), "{part} missing: {page}");
    }
    let r = s.post(
        "/variables",
        &[("name", "SYSLOG_SERVER"), ("value", "10.0.0.9")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    for (name, why) in [("syslog", "not a variable name"), ("MAC", "built-in")] {
        let r = s.post("/variables", &[("name", name), ("value", "x")]);
        assert_eq!(r.status, 422);
        assert!(
            error_near(&r.text(), "name") && r.text().contains(why),
            "{}",
            r.text()
        );
    }
    // A secret-named variable is masked; saving it empty keeps it.
    assert_eq!(
        s.post(
            "/variables",
            &[("name", "DB_PASSWORD"), ("value", "Var-Secret-5")]
        )
        .status,
        303
    );
    let page = s.get("/variables?edit=DB_PASSWORD").text();
    assert!(
        !page.contains("Var-Secret-5") && page.contains("********"),
        "{page}"
    );
    assert_eq!(
        s.post("/variables", &[("name", "DB_PASSWORD"), ("value", "")])
            .header("Location"),
        Some("/variables?done=variable-kept")
    );
    assert!(server.cli_ok(&["variable", "list"]).contains("DB_PASSWORD"));

    // In use by a profile file: refused with the profile, file and line.
    add_device(&server, "<c\n s.x=\"${SYSLOG_SERVER}\"/>");
    let r = s.post("/variables/SYSLOG_SERVER/delete", &[]);
    assert_eq!(r.status, 409);
    assert!(
        r.text().contains("profile p1 file site.cfg line 2"),
        "{}",
        r.text()
    );
    assert_eq!(s.post("/variables/DB_PASSWORD/delete", &[]).status, 303);
    assert_eq!(s.post("/variables/DB_PASSWORD/delete", &[]).status, 404);
    // The values for a device.
    let page = s.get(&format!("/variables?mac={MAC}")).text();
    assert!(
        page.contains("0004F2AABBCC") && page.contains("As computed for device"),
        "{page}"
    );
    assert_eq!(s.get("/variables?mac=nonsense").status, 422);
    let audit = server.cli_ok(&["audit"]);
    assert!(
        audit.contains("variable.set  SYSLOG_SERVER")
            && audit.contains("variable.delete  DB_PASSWORD"),
        "{audit}"
    );
    assert!(!audit.contains("Var-Secret-5"));
}

#[test]
fn device_values_and_lines_are_saved_with_errors_at_their_fields() {
    let server = ZServer::start();
    add_device(
        &server,
        "<c l.x=\"${LABEL}\" ${OVERRIDE}>\n<!-- zerotouch:lines -->\n<r reg.${LINE}.ext=\"${EXTENSION}\" reg.${LINE}.name=\"${DISPLAY_NAME}\" reg.${LINE}.auth.password=\"${PASSWORD}\"/>\n<!-- zerotouch:end-lines -->\n</c>",
    );
    let s = Session::admin(&server);
    let path = format!("/devices/{MAC}/values");
    assert!(s.get(&format!("/devices/{MAC}")).text().contains(&path));
    let page = s.get(&path);
    assert_eq!(page.status, 200);
    let r = s.post(
        &path,
        &[
            ("label", "Lobby"),
            ("default_parkext", "70 0"),
            ("override", "oops"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(
        error_near(&r.text(), "default_parkext") && error_near(&r.text(), "override"),
        "{}",
        r.text()
    );
    let r = s.post(
        &path,
        &[
            ("label", "Lobby"),
            ("tl_timezone", "-5"),
            ("default_parkext", "700"),
            ("override", "reg.1.auth.password=\"Override-Secret-6\""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get(&path).text();
    assert!(
        page.contains("value=\"Lobby\"") && !page.contains("Override-Secret-6"),
        "{page}"
    );
    // Sending the page back as shown keeps the override's secret.
    let form = form_of(&page, &path);
    assert_eq!(
        post_fields(&s, &path, &with(&form, &[("label", "Lobby 2")])).status,
        303
    );

    // Lines: added, changed (the password kept when left empty), refused when bad.
    let r = s.post(
        &format!("/devices/{MAC}/lines"),
        &[
            ("new.line", "2"),
            ("new.extension", "2002"),
            ("new.first_name", "Ann"),
            ("new.last_name", "Lee"),
            ("new.sip_password", "Line-Secret-7"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = s.post(&format!("/devices/{MAC}/lines"), &[("new.line", "2")]);
    assert_eq!(r.status, 422, "line 2 exists");
    let r = s.post(&format!("/devices/{MAC}/lines"), &[("new.line", "65")]);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("must be 1 to 64"), "{}", r.text());
    let r = s.post(
        &format!("/devices/{MAC}/lines/2"),
        &[
            ("l2.extension", "2003"),
            ("l2.first_name", "Ann"),
            ("l2.last_name", "a\u{7}"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(error_near(&r.text(), "l2.last_name"), "{}", r.text());
    let r = s.post(
        &format!("/devices/{MAC}/lines/2"),
        &[
            ("l2.extension", "2003"),
            ("l2.first_name", "Ann"),
            ("l2.last_name", "Lee"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let shown = s.get(&path).text();
    assert!(
        !shown.contains("Line-Secret-7") && shown.contains("value=\"2003\""),
        "{shown}"
    );
    let files = server.cli_ok(&["preview", MAC, "--secrets"]);
    assert!(
        files.contains(
            "reg.2.ext=\"2003\" reg.2.name=\"Ann Lee\" reg.2.auth.password=\"Line-Secret-7\""
        ) && files.contains("l.x=\"Lobby 2\" reg.1.auth.password=\"Override-Secret-6\""),
        "{files}"
    );
    assert_eq!(
        s.post(&format!("/devices/{MAC}/lines/2/delete"), &[])
            .status,
        303
    );
    assert_eq!(
        s.post(&format!("/devices/{MAC}/lines/2/delete"), &[])
            .status,
        404
    );
    let audit = server.cli_ok(&["audit"]);
    for action in ["device.set-vars", "device.set-line", "device.delete-line"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(
        !audit.contains("Override-Secret-6") && !audit.contains("Line-Secret-7"),
        "{audit}"
    );
}

#[test]
fn the_preview_masks_secrets_and_an_admin_may_show_them_on_the_record() {
    let server = ZServer::start();
    add_device(
        &server,
        "<c r.x=\"${REG_SERVER}\" p.x=\"${PROV_PASSWORD}\"/>",
    );
    server.set_credentials();
    let s = Session::admin(&server);
    assert_eq!(s.get("/preview").status, 200);
    let r = s.get("/preview?mac=nonsense");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("is not a MAC address"));
    assert_eq!(s.get("/preview?mac=0004f2999999").status, 404);
    let page = s.get(&format!("/preview?mac={MAC}")).text();
    assert!(
        page.contains(&format!("{MAC}-profile.cfg")) && page.contains("site.cfg"),
        "{page}"
    );
    assert!(
        page.contains("${REG_SERVER}") && page.contains("default: management server"),
        "{page}"
    );
    assert!(
        !page.contains("Test-Passw0rd-42") && page.contains("********"),
        "{page}"
    );
    let r = s.post("/preview", &[("mac", MAC), ("secrets", "on")]);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("p.x=&quot;Test-Passw0rd-42&quot;")
            || r.text().contains("Test-Passw0rd-42"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("recorded in the audit log"));
    let audit = server.cli_ok(&["audit"]);
    assert!(
        audit.contains(&format!("person:admin  device.preview-secrets  {MAC}")),
        "{audit}"
    );
}

#[test]
fn each_page_answers_only_the_roles_it_is_for() {
    let server = ZServer::start();
    add_device(&server, "<c/>");
    for (name, role, company) in [
        ("pat", "provider", ""),
        ("vic", "viewer", ""),
        ("ann", "installer", "acme"),
    ] {
        let _ = user_with_token(&server, name, role, company);
    }
    let pat = Session::sign_in(&server, "pat", "a-long-test-password");
    let vic = Session::sign_in(&server, "vic", "a-long-test-password");
    let ann = Session::sign_in(&server, "ann", "a-long-test-password");
    for who in [&pat, &vic, &ann] {
        assert_eq!(who.get("/settings").status, 403);
        assert_eq!(
            who.post("/settings", &[("registrar", "x.example.com")])
                .status,
            403
        );
        assert_eq!(who.post("/settings/push", &[]).status, 403);
        assert_eq!(
            who.post("/variables", &[("name", "X"), ("value", "1")])
                .status,
            403
        );
        assert_eq!(
            who.post("/preview", &[("mac", MAC), ("secrets", "on")])
                .status,
            403
        );
    }
    assert_eq!(pat.get("/variables").status, 200, "providers write files");
    assert!(!pat.get("/variables").text().contains("Save variable"));
    assert_eq!(vic.get("/variables").status, 403);
    assert_eq!(vic.get(&format!("/devices/{MAC}/values")).status, 403);
    assert_eq!(vic.get(&format!("/preview?mac={MAC}")).status, 200);
    assert!(
        !vic.get(&format!("/preview?mac={MAC}"))
            .text()
            .contains("Show secrets")
    );
    // The device was associated by the admin: an installer's company does not own it.
    assert_eq!(ann.get(&format!("/devices/{MAC}/values")).status, 403);
    assert_eq!(ann.get(&format!("/preview?mac={MAC}")).status, 403);
    // Signed out: pages send to the sign-in, forms are refused; a forged token too.
    let anon =
        Conn::open(server.admin).request("GET", "/settings", &[("Connection", "close")], b"");
    assert_eq!(
        (anon.status, anon.header("Location")),
        (303, Some("/login"))
    );
    assert_eq!(
        post_raw(server.admin, "/settings", "", "registrar=x").status,
        403
    );
    let admin = Session::admin(&server);
    let forged = post_raw(
        server.admin,
        "/settings",
        &admin.cookie,
        "csrf=forged&registrar=x.example.com",
    );
    assert_eq!(forged.status, 403);
    assert!(
        !server
            .cli_ok(&["settings", "show"])
            .contains("x.example.com")
    );
}
