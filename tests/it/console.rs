//! The console over plain HTTP: every page answers for a signed-in admin, the session
//! cookie's flags, security headers, the sign-in rate limit, CSRF and role refusals, and the
//! console commands (`user`, `import` with the ZTP guide's examples and Table 3's rules, `find`,
//! `export`).

use crate::common::*;

#[test]
fn every_console_page_answers_with_security_headers() {
    let server = ZServer::start();
    import_release(&server, "5.9.8.1234", &["3111-46162-001.sip.ld"], &[]);
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "office"]);
    let s = Session::admin(&server);
    assert_eq!(
        s.post(
            "/associations",
            &[
                ("reference_id", "REF001"),
                ("last_name", "Kraus"),
                ("mode", "manual")
            ]
        )
        .status,
        303
    );
    let job = s.post(
        "/subscribers/REF001/devices",
        &[
            ("count", "1"),
            ("devices[0].mac", "0004f2000002"),
            ("devices[0].profile", "office"),
        ],
    );
    assert_eq!(job.status, 303, "{}", job.text());
    for path in [
        "/",
        "/health",
        "/find",
        "/find?view=device&mac=%25",
        "/find?download=1",
        "/profiles",
        "/profiles/new",
        "/profiles/office",
        "/profiles/office/delete",
        "/associations/new",
        "/subscribers/REF001",
        "/subscribers/REF001/devices/new",
        "/devices/new?mac=0004f2000009",
        "/import",
        "/unassociated",
        "/users",
        "/tokens",
        "/password",
        "/devices/0004f2000001",
        "/devices/0004f2000001/edit",
        "/devices/0004f2000001/copy",
        "/devices/0004f2000001/replace",
        "/devices/0004f2000001/delete",
        "/firmware",
        "/firmware/rollout",
        "/firmware/5.9.8.1234",
        "/firmware/5.9.8.1234/delete",
        "/files",
        "/files/directory",
        "/files/directory.csv",
        "/overrides",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_security_headers(&r, path);
    }
    assert_eq!(s.get("/nowhere").status, 404);
    assert_eq!(s.get("/devices/zzz").status, 404);
    let css = Conn::open(server.admin).request(
        "GET",
        "/assets/admin.css",
        &[("Connection", "close")],
        b"",
    );
    assert_eq!(css.status, 200);
}

#[test]
fn the_session_cookie_is_http_only_and_strict_and_pages_need_it() {
    let server = ZServer::start();
    let pw = admin_password(&server);
    let r = post_raw(
        server.admin,
        "/login",
        "",
        &form_body(&[("username", "admin"), ("password", &pw)]),
    );
    let cookie = r.header("Set-Cookie").expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP");
    assert_eq!(
        r.header("Location"),
        Some("/password"),
        "one-time password: change first"
    );
    let anon = Conn::open(server.admin).request("GET", "/find", &[("Connection", "close")], b"");
    assert_eq!(
        (anon.status, anon.header("Location")),
        (303, Some("/login"))
    );
    let anon_post = post_raw(server.admin, "/profiles", "", "name=x");
    assert_eq!(anon_post.status, 403);
    let s = Session::sign_in(&server, "admin", &pw);
    assert_eq!(
        s.get("/find").header("Location"),
        Some("/password"),
        "forced change"
    );
    let no_csrf = post_raw(server.admin, "/logout", &s.cookie, "");
    assert_eq!(no_csrf.status, 403);
    assert!(
        no_csrf.text().contains("security token"),
        "{}",
        no_csrf.text()
    );
    assert_eq!(s.post("/logout", &[]).status, 303);
    assert_eq!(s.get("/password").status, 303, "signed out");
}

#[test]
fn wrong_passwords_are_rate_limited_but_the_right_one_works_after_the_pause() {
    let server =
        ZServer::start_with("console.login_failures_per_user = 3\nconsole.login_block_secs = 2\n");
    let pw = admin_password(&server);
    for _ in 0..3 {
        let r = post_raw(
            server.admin,
            "/login",
            "",
            &form_body(&[("username", "admin"), ("password", "wrong")]),
        );
        assert_eq!(r.status, 401);
        assert!(r.text().contains("Wrong user name or password"));
    }
    let blocked = post_raw(
        server.admin,
        "/login",
        "",
        &form_body(&[("username", "admin"), ("password", &pw)]),
    );
    assert_eq!(blocked.status, 429);
    assert!(blocked.header("Retry-After").is_some());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let ok = post_raw(
        server.admin,
        "/login",
        "",
        &form_body(&[("username", "admin"), ("password", &pw)]),
    );
    assert_eq!(ok.status, 303, "never locked out for good");
}

#[test]
fn roles_limit_what_each_user_may_do() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    let _ = user_with_token(&server, "ann", "installer", "acme");
    let _ = user_with_token(&server, "gus", "installer", "globex");
    let _ = user_with_token(&server, "vic", "viewer", "");
    let ann = Session::sign_in(&server, "ann", "a-long-test-password");
    let gus = Session::sign_in(&server, "gus", "a-long-test-password");
    let vic = Session::sign_in(&server, "vic", "a-long-test-password");
    let r = ann.post(
        "/devices",
        &[
            ("count", "1"),
            ("devices[0].mac", "0004f2000001"),
            ("devices[0].profile", "office"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(gus.get("/devices/0004f2000001").status, 403);
    assert!(
        !gus.get("/find?view=device&mac=%25")
            .text()
            .contains("0004f2000001")
    );
    assert!(
        ann.get("/find?view=device&mac=%25")
            .text()
            .contains("0004f2000001")
    );
    let r = gus.post(
        "/devices",
        &[
            ("count", "1"),
            ("devices[0].mac", "0004f2000001"),
            ("devices[0].profile", "office"),
        ],
    );
    assert_eq!(r.status, 409);
    assert!(r.text().contains("already associated elsewhere"));
    assert_eq!(
        ann.get("/profiles/new").status,
        403,
        "installers do not manage profiles"
    );
    assert_eq!(ann.get("/users").status, 403);
    assert_eq!(vic.get("/devices/0004f2000001").status, 200);
    assert_eq!(vic.post("/devices/0004f2000001/delete", &[]).status, 403);
}

#[test]
fn users_are_managed_from_the_command_line() {
    let server = ZServer::start();
    let out = server.cli_ok(&[
        "user",
        "add",
        "kim",
        "--role",
        "provider",
        "--company",
        "acme",
    ]);
    assert!(out.contains("one-time password: "), "{out}");
    let list = server.cli_ok(&["user", "list"]);
    assert!(
        list.contains("kim") && list.contains("provider") && list.contains("one-time"),
        "{list}"
    );
    let bad = server.cli(&["user", "add", "x y", "--role", "installer"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("username:") && err.contains("company:"),
        "{err}"
    );
    assert!(
        server
            .cli_ok(&["user", "passwd", "kim"])
            .contains("one-time password")
    );
    let last = server.cli(&["user", "delete", "admin"]);
    assert!(String::from_utf8_lossy(&last.stderr).contains("last admin"));
    server.cli_ok(&["user", "delete", "kim"]);
    assert!(!server.cli_ok(&["user", "list"]).contains("kim"));
}

#[test]
fn import_applies_the_seed_examples_and_reports_every_broken_rule_by_line() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "profile1"]);
    let dir = tempfile::tempdir().expect("dir");
    // The ZTP guide's examples, one file each: Four and Five are single lines the PDF wrapped.
    let examples = [
        ("0000cafebabe,,,profile1", "0000cafebabe"),
        (
            "0000cafe1234,0000CAFE1234,Polycom_UCS_Device,profile1,192.168.1.178,192.168.1.171",
            "0000cafe1234",
        ),
    ];
    for (i, (line, mac)) in examples.iter().enumerate() {
        let f = write_file(
            dir.path(),
            &format!("ex{i}.csv"),
            format!("{line}\n").as_bytes(),
        );
        let out = server.cli_ok(&["import", &f.to_string_lossy()]);
        assert!(out.contains("Completed (1 line(s), 1 applied"), "{out}");
        assert!(server.cli_ok(&["device", "show", mac]).contains("profile1"));
    }
    let show = server.cli_ok(&["device", "show", "0000cafe1234"]);
    assert!(
        show.contains("192.168.1.178") && show.contains("192.168.1.171"),
        "{show}"
    );
    // Example Two repeats Example One's MAC: now rejected as associated already.
    let two = write_file(
        dir.path(),
        "two.csv",
        b"0000cafebabe,, Polycom_UCS_Device ,profile1\n",
    );
    let out = server.cli(&["import", &two.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "completed with errors");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("two.csv:1: MAC 0000cafebabe is already associated")
    );
    // Every rule of Table 3 broken once, around good lines.
    let file = "0004f2000001,,,profile1\n\
                0004f200000,,,profile1\n\
                0004f2000002,SERIAL!,,profile1\n\
                0004f2000003,,Bad Model!,profile1\n\
                0004f2000004,,,p\n\
                0004f2000005,,,profile1,sip,server\n\
                0004f2000006,,,profile1,sip<server>\n\
                0004f2000007,,,profile1,,,,,,maybe\n\
                0004f2000008,,,profile1,,,,,,1,1001,pw,Desk,Ann\n";
    let f = write_file(dir.path(), "rules.csv", file.as_bytes());
    let rejected = dir.path().join("rejected.csv");
    let out = server.cli(&[
        "import",
        &f.to_string_lossy(),
        "--rejected",
        &rejected.to_string_lossy(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "rules.csv:2: column 1 (MAC Address)",
        "rules.csv:3: column 2 (Serial number)",
        "rules.csv:4: column 3 (Vendor Model)",
        "rules.csv:5: column 4 (Configuration Profile)",
        "rules.csv:7: column 5 (SIP Server Address)",
        "rules.csv:8: column 10 (Enable Provisioning Polling)",
    ] {
        assert!(err.contains(want), "{want} missing:\n{err}");
    }
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(9 line(s), 3 applied, 6 rejected)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let file = std::fs::read_to_string(&rejected).expect("rejected file");
    assert!(
        file.contains("# line 2:") && file.contains("\n0004f200000,,,profile1\n"),
        "{file}"
    );
    // A dry run writes nothing; an oversize file is refused whole.
    let dry = write_file(dir.path(), "dry.csv", b"0004f2000100,,,profile1\n");
    assert!(
        server
            .cli_ok(&["import", &dry.to_string_lossy(), "--dry-run"])
            .contains("1 would be applied")
    );
    assert!(
        !server
            .cli(&["device", "show", "0004f2000100"])
            .status
            .success()
    );
    // Find and export see the result.
    let found = server.cli_ok(&["find", "--device-view", "--mac", "0004f2%", "--csv"]);
    assert_eq!(found.lines().count(), 4, "{found}");
    let export = server.cli_ok(&["export"]);
    assert!(
        export.contains(
            "0004f2000008,0004F2000008,Polycom_UCS_Device,profile1,,,,,,1,1001,,Desk,Ann,default\n"
        ),
        "no secrets: {export}"
    );
    let with = server.cli_ok(&["export", "--include-secrets"]);
    assert!(with.contains(",1,1001,pw,Desk,Ann,default\n"), "{with}");
}

#[test]
fn an_oversize_file_is_refused_whole_and_nothing_is_written() {
    let server = ZServer::start_with("console.csv_max_rows = 2\n");
    server.cli_ok(&["profile", "add", "profile1"]);
    let dir = tempfile::tempdir().expect("dir");
    let f = write_file(
        dir.path(),
        "big.csv",
        b"0004f2000001,,,profile1\n0004f2000002,,,profile1\n0004f2000003,,,profile1\n",
    );
    let out = server.cli(&["import", &f.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        server.cli_ok(&["device", "list"]).lines().count() == 1,
        "nothing written"
    );
}

#[test]
fn every_console_form_does_what_it_says() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    let s = Session::admin(&server);
    // A phone that asks before it is associated is listed and associated in one step.
    let mut phone = server.phone("0004f2000077", UA_VVX500_APP);
    assert_eq!(phone.get("/0004f2000077.cfg").status, 404);
    assert!(eventually(std::time::Duration::from_secs(5), || s
        .get("/unassociated")
        .text()
        .contains("0004f2000077")));
    let r = s.post(
        "/unassociated",
        &[("mac", "0004f2000077"), ("profile", "office")],
    );
    assert_eq!(
        r.header("Location"),
        Some("/devices/0004f2000077?done=devices-added")
    );
    assert!(s.get("/devices/0004f2000077").text().contains("office"));
    // Contact: save, refuse a bad email naming it, delete when empty.
    assert_eq!(
        s.post(
            "/associations",
            &[("reference_id", "REF002"), ("mode", "manual")]
        )
        .status,
        303
    );
    let bad = s.post(
        "/subscribers/REF002",
        &[("reference_id", "REF002"), ("email", "nobody")],
    );
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("is not an email address"));
    assert_eq!(
        s.post(
            "/subscribers/REF002",
            &[("reference_id", "REF002"), ("city", "Graz")]
        )
        .status,
        303
    );
    assert!(s.get("/subscribers/REF002").text().contains("Graz"));
    let dup = s.post("/associations", &[("reference_id", "ref002")]);
    assert_eq!(dup.status, 409, "reference IDs are unique ignoring case");
    // Modify, copy and delete a device.
    let r = s.post(
        "/devices/0004f2000077/edit",
        &[
            ("devices[0].profile", "office"),
            ("devices[0].sip_server", "sip.example.com"),
            ("devices[0].display_name", "Ann"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let bad = s.post(
        "/devices/0004f2000077/edit",
        &[
            ("devices[0].profile", "office"),
            ("devices[0].polling", "maybe"),
        ],
    );
    assert_eq!(bad.status, 422);
    let r = s.post("/devices/0004f2000077/copy", &[("new_mac", "0004f2000078")]);
    assert_eq!(
        r.header("Location"),
        Some("/devices/0004f2000078?done=device-copied")
    );
    let copy = s.get("/devices/0004f2000078").text();
    assert!(
        copy.contains("sip.example.com") && !copy.contains("Ann"),
        "display name is not copied"
    );
    assert_eq!(
        s.post("/devices/0004f2000078/copy", &[("new_mac", "0004f2000077")])
            .status,
        422,
        "already associated"
    );
    assert_eq!(s.post("/devices/0004f2000078/delete", &[]).status, 303);
    assert_eq!(s.get("/devices/0004f2000078").status, 404);
    assert_eq!(s.post("/subscribers/REF002/delete", &[]).status, 303);
    assert_eq!(s.get("/subscribers/REF002").status, 404);
    // Users and tokens.
    let r = s.post(
        "/users",
        &[
            ("username", "kim"),
            ("role", "installer"),
            ("company", "acme"),
        ],
    );
    assert!(r.text().contains("One-time password"), "{}", r.text());
    assert!(
        s.post("/users/kim/reset", &[("confirm", "yes")])
            .text()
            .contains("One-time password")
    );
    assert_eq!(
        s.post("/users/kim/delete", &[("confirm", "yes")]).status,
        303
    );
    let r = s.post("/tokens", &[("name", "script")]);
    let token = r
        .text()
        .split("code class=\"secret\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("token shown once")
        .to_string();
    assert_eq!(
        api(&server, "GET", "/profiles", Some(&token), "").status,
        200
    );
    let id = s
        .get("/tokens")
        .text()
        .split("/tokens/")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .expect("token id")
        .to_string();
    assert_eq!(
        s.post(&format!("/tokens/{id}/delete"), &[("confirm", "yes")])
            .status,
        303
    );
    assert_eq!(
        api(&server, "GET", "/profiles", Some(&token), "").status,
        401,
        "revoked"
    );
}

#[test]
fn autosync_pages_say_poly_os_devices_must_use_basic_authentication() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "office"]);
    let s = Session::admin(&server);
    let note = "Poly OS devices must use Basic authentication";
    for page in ["/accounts/default", "/accounts/default/autosync"] {
        let text = s.get(page).text();
        assert!(!text.contains(note), "no Poly OS device yet: {page}");
    }
    // Declared with a Poly OS vendor model.
    server.cli_ok(&[
        "device",
        "add",
        "0004f2000002",
        "--profile",
        "office",
        "--vendor-model",
        "Poly_Studio_X50",
    ]);
    for page in ["/accounts/default", "/accounts/default/autosync"] {
        let text = s.get(page).text();
        assert!(text.contains(note), "{page}: {text}");
        assert!(
            text.contains("management.provisioning.authtype")
                && text.contains("web interface")
                && text.contains("REST API")
                && text.contains("0004f2000002")
                && !text.contains(">0004f2000001<"),
            "{page}: {text}"
        );
    }
    // Seen with a Poly OS User-Agent, declared as nothing in particular.
    server.cli_ok(&["device", "add", "0004f2000003", "--profile", "office"]);
    let mut phone = server.phone("0004f2000003", UA_STUDIO_X30);
    let _ = phone.get("/0004f2000003.cfg");
    assert!(eventually(std::time::Duration::from_secs(5), || {
        s.get("/accounts/default/autosync")
            .text()
            .contains("2 Poly OS devices")
    }));
}

#[test]
fn the_typed_policy_editor_shows_what_a_site_gives_its_devices_and_refuses_a_wrong_value() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000001", "--profile", "office"]);
    let s = Session::admin(&server);
    assert_eq!(
        s.post("/accounts/default/sites", &[("name", "hq")]).status,
        303
    );
    assert_eq!(
        s.post(
            "/accounts/default/sites/hq/devices",
            &[("macs", "0004f2000001")]
        )
        .status,
        303
    );
    let set = |value: &str| {
        s.post(
            "/accounts/default/policies",
            &[
                ("scope", "site:hq"),
                ("parameter", "up.backlight.idleIntensity"),
                ("value", value),
            ],
        )
    };
    // The select offers 0 to 3; the server refuses anything else, naming the field.
    let bad = set("7");
    assert_eq!(bad.status, 422);
    assert!(
        bad.text()
            .contains("up.backlight.idleIntensity: `7` is not allowed"),
        "{}",
        bad.text()
    );
    assert_eq!(set("3").status, 303);
    let page = s
        .get("/accounts/default/sites/hq?param=up.backlight.idleIntensity")
        .text();
    assert!(
        page.contains("<option value=\"3\" selected>3</option>"),
        "{page}"
    );
    assert!(
        page.contains("from <strong class=\"source\">site</strong>"),
        "{page}"
    );
    assert!(page.contains("site hq"), "{page}");
    // Found by words of the description, owned parameters left out.
    let found = s.get("/accounts/default/policies?q=backlight+idle").text();
    assert!(found.contains("up.backlight.idleIntensity"), "{found}");
    let owned = s
        .get("/accounts/default/policies?q=provisioning+server")
        .text();
    assert!(!owned.contains("device.prov.serverName"), "{owned}");
}
