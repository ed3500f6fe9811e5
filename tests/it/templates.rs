//! Templates through the real binary: the Polycom fixtures with variables inserted,
//! served to a phone and parsed; XML-hostile passwords; line blocks; settings served at
//! once; every bad input named by its field with nothing half-written.

use zerotouch::domain::xml::{FoundParam, parse_params};

use crate::common::{UA_VVX500_APP, ZServer, eventually, polycom_fixtures, write_file};

const MAC: &str = "0004f2aabbcc";
/// A password with every character XML attribute values must escape.
const HOSTILE: &str = r#"p&ss<w>"rd'"#;

fn value<'a>(params: &'a [FoundParam], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// Replaces the first `from` in `text`, which must be there.
fn insert(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture lacks {from}");
    text.replacen(from, to, 1)
}

/// The legacy per-phone fixture with its line 1 fields as variables, and its line 2
/// attributes turned into a line block of their own.
fn per_phone_template(fixture: &str) -> String {
    let mut t = insert(
        fixture,
        r#"reg.1.displayName="""#,
        r#"reg.1.displayName="${DISPLAY_NAME}""#,
    );
    t = insert(&t, r#"reg.1.address="""#, r#"reg.1.address="${USERID}""#);
    t = insert(&t, r#"reg.1.label="""#, r#"reg.1.label="${LINE_LABEL}""#);
    t = insert(
        &t,
        r#"reg.1.auth.userId="""#,
        r#"reg.1.auth.userId="${USERID}""#,
    );
    t = insert(
        &t,
        r#"reg.1.auth.password="""#,
        r#"reg.1.auth.password="${PASSWORD}""#,
    );
    t = insert(
        &t,
        r#"reg.1.server.1.address="""#,
        r#"reg.1.server.1.address="${REG_SERVER}""#,
    );
    t = insert(&t, r#"nat.ip="""#, r#"nat.ip="${SYSLOG_SERVER}""#);
    // Lines 2 and more: a block repeated per line, inside the root element.
    insert(
        &t,
        "   <call>",
        "   <!-- zerotouch:lines -->\n   <line reg.${LINE}.x.address=\"${USERID}\" \
         reg.${LINE}.x.auth.password=\"${PASSWORD}\" reg.${LINE}.x.label=\"${LABEL}\" \
         reg.${LINE}.x.displayName=\"${DISPLAY_NAME}\"/>\n   <!-- zerotouch:end-lines -->\n   <call>",
    )
}

#[test]
fn fixture_files_with_variables_render_to_well_formed_xml_with_hostile_values() {
    let fixtures = polycom_fixtures();
    let server = ZServer::start();
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    let dir = server.dir.path();
    let per_phone =
        std::fs::read_to_string(fixtures.join("perphone_nested_phone1.cfg")).expect("read");
    let common = std::fs::read_to_string(fixtures.join("site_flat_common.cfg")).expect("read");
    let shared =
        std::fs::read_to_string(fixtures.join("device_set_customizations.cfg")).expect("read");
    let common = insert(
        &common,
        "<polycomConfig\n",
        "<polycomConfig ${OVERRIDE}\ntcpIpApp.sntp.address=\"${NTP_SERVER}\"\n\
         voIpProt.server.1.address=\"${PROXY_SERVER}\"\nprov.x.user=\"${HTTP_USER}\"\n\
         prov.x.password=\"${HTTP_PASSWORD}\"\nprov.x.url=\"${PROTO_URL}\"\n\
         lcl.x.label=\"${LABEL}\" lcl.x.tz=\"${TL_TIMEZONE}\" lcl.x.mac=\"${MAC}\" \
         lcl.x.tenant=\"${TENANT}\" lcl.x.literal=\"$${MAC}\"\n",
    );
    let shared = insert(
        &shared,
        "device.set=\"1\"",
        "device.set=\"1\" x.y.ntp=\"${NTP_SERVER}\"",
    );
    // What only zerotouch may set (device.set, device.prov.*) is refused at upload (I6).
    let shared = String::from_utf8(zerotouch::domain::withhold::strip_owned(shared.as_bytes()).0)
        .expect("utf-8");
    let files = [
        write_file(dir, "phone1.cfg", per_phone_template(&per_phone).as_bytes()),
        write_file(dir, "common.cfg", common.as_bytes()),
        write_file(dir, "shared.cfg", shared.as_bytes()),
    ];
    server.cli_ok(&["variable", "set", "SYSLOG_SERVER", "10.0.0.9"]);
    // The line block's names are this test's own (`reg.N.x.*`), one edit from real ones:
    // marked deliberate, as an admin would, or the dictionary refuses them as typos.
    for name in ["address", "auth.password", "label", "displayName"] {
        server.cli_ok(&[
            "policy",
            "deliberate",
            "--reason",
            "the template test's own line block",
            &format!("reg.N.x.{name}"),
        ]);
    }
    let mut args = vec!["profile", "add", "fixtures"];
    for f in &files {
        args.extend(["--file", f.to_str().expect("utf-8")]);
    }
    server.cli_ok(&args);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "fixtures",
        "--sip-user",
        "100",
        "--sip-password",
        "pw1",
        "--line-label",
        "Front",
        "--display-name",
        "Front Desk",
    ]);
    server.cli_ok(&[
        "device",
        "set-line",
        MAC,
        "--line",
        "2",
        "--sip-user",
        "101",
        "--sip-password",
        HOSTILE,
        "--label",
        "Back <2>",
        "--first-name",
        "Bob",
        "--last-name",
        "O'Neil & Co",
    ]);
    server.cli_ok(&[
        "device",
        "set-vars",
        MAC,
        "--label",
        "Lobby \"A\"",
        "--timezone",
        "-18000",
        "--override",
        "feature.x.enabled=\"1\" up.x.mode='2'",
    ]);
    server.cli_ok(&[
        "settings",
        "set",
        "registrar=sip.example.com",
        "ntp_server=ntp.example.com",
        "http_user=prov&user",
    ]);
    let mut input = std::process::Command::new(crate::common::bin())
        .args(["settings", "set", "--stdin", "--config"])
        .arg(&server.config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = input.stdin.take().expect("stdin");
        writeln!(stdin, "http_password={HOSTILE}").expect("write");
    }
    let out = input.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(HOSTILE),
        "a secret in CLI output"
    );

    let mut phone = server.phone(MAC, UA_VVX500_APP);
    let master = phone.get(&format!("/{MAC}.cfg"));
    assert_eq!(master.status, 200);
    let mut rendered = Vec::new();
    for name in ["profile", "profile-2", "profile-3"] {
        let r = phone.get(&format!("/{MAC}-{name}.cfg"));
        assert_eq!(r.status, 200, "{name}");
        let params = parse_params(name, &r.body)
            .unwrap_or_else(|e| panic!("{name} is not well-formed: {e}\n{}", r.text()));
        rendered.push((r.text(), params));
    }
    let (text, p) = &rendered[0];
    assert_eq!(value(p, "reg.1.address"), Some("100"));
    assert_eq!(value(p, "reg.1.auth.password"), Some("pw1"));
    assert_eq!(value(p, "reg.1.displayName"), Some("Front Desk"));
    assert_eq!(value(p, "reg.1.label"), Some("Front"));
    assert_eq!(value(p, "reg.1.server.1.address"), Some("sip.example.com"));
    assert_eq!(value(p, "nat.ip"), Some("10.0.0.9"));
    // The line block: once per line, the hostile password intact after parsing.
    assert_eq!(value(p, "reg.1.x.address"), Some("100"));
    assert_eq!(value(p, "reg.2.x.address"), Some("101"));
    assert_eq!(value(p, "reg.2.x.auth.password"), Some(HOSTILE));
    assert_eq!(value(p, "reg.2.x.label"), Some("Back <2>"));
    assert_eq!(value(p, "reg.2.x.displayName"), Some("Bob O'Neil & Co"));
    assert!(
        text.contains("&amp;") && text.contains("&lt;"),
        "escaped: {text}"
    );
    // Untouched fixture attributes are still there.
    assert_eq!(value(p, "reg.3.type"), Some("private"));

    let (_, p) = &rendered[1];
    assert_eq!(value(p, "tcpIpApp.sntp.address"), Some("ntp.example.com"));
    assert_eq!(
        value(p, "voIpProt.server.1.address"),
        Some("sip.example.com")
    );
    assert_eq!(value(p, "prov.x.user"), Some("prov&user"));
    assert_eq!(value(p, "prov.x.password"), Some(HOSTILE));
    let url = value(p, "prov.x.url").expect("url");
    assert!(
        url.starts_with("http://prov%26user:p%26ss%3Cw%3E%22rd%27@"),
        "{url}"
    );
    assert_eq!(value(p, "lcl.x.label"), Some("Lobby \"A\""));
    assert_eq!(value(p, "lcl.x.tz"), Some("-18000"));
    assert_eq!(value(p, "lcl.x.mac"), Some("0004F2AABBCC"));
    assert_eq!(value(p, "lcl.x.tenant"), Some("Default"));
    assert_eq!(value(p, "lcl.x.literal"), Some("${MAC}"));
    assert_eq!(value(p, "feature.x.enabled"), Some("1"));
    assert_eq!(value(p, "up.x.mode"), Some("2"));
    assert_eq!(value(p, "apps.push.secureTunnelRequired"), Some("0"));

    let (_, p) = &rendered[2];
    assert_eq!(value(p, "x.y.ntp"), Some("ntp.example.com"));
    assert_eq!(
        value(p, "device.prov.tagSerialNo"),
        None,
        "an owned parameter never comes from a profile file"
    );

    // A settings change is served at once.
    server.cli_ok(&["settings", "set", "ntp_server=ntp2.example.com"]);
    let r = phone.get(&format!("/{MAC}-profile-2.cfg"));
    let p = parse_params("common", &r.body).expect("well-formed");
    assert_eq!(value(&p, "tcpIpApp.sntp.address"), Some("ntp2.example.com"));

    // The preview shows sources and masks secrets unless asked.
    let preview = server.cli_ok(&["preview", MAC]);
    assert!(preview.contains("settings.registrar"), "{preview}");
    assert!(preview.contains("device line 2 SIP password"), "{preview}");
    assert!(!preview.contains("p&amp;ss"), "{preview}");
    let with = server.cli_ok(&["preview", MAC, "--secrets"]);
    assert!(with.contains("p&amp;ss&lt;w&gt;&quot;rd&apos;"), "{with}");
    let shown = server.cli_ok(&["settings", "show"]);
    assert!(!shown.contains("p&ss"), "{shown}");
    assert!(
        server
            .cli_ok(&["settings", "show", "--secrets"])
            .contains(HOSTILE)
    );
}

fn fails(server: &ZServer, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_templates_settings_and_values_are_named_and_nothing_is_half_written() {
    let server = ZServer::start();
    let dir = server.dir.path();
    let bad = write_file(
        dir,
        "bad.cfg",
        b"<c\n a.b=\"${MAC}\"\n c.d=\"${NOPE}\" e.f=\"${ALSO_NOPE}\"/>",
    );
    let good = write_file(dir, "good.cfg", b"<c a.b=\"${OVERRIDE}\"/>");
    let err = fails(
        &server,
        &[
            "profile",
            "add",
            "p1",
            "--file",
            good.to_str().expect("p"),
            "--file",
            bad.to_str().expect("p"),
        ],
    );
    assert!(
        err.contains("bad.cfg: line 3: unknown variable `${NOPE}`"),
        "{err}"
    );
    assert!(
        err.contains("bad.cfg: line 3: unknown variable `${ALSO_NOPE}`"),
        "{err}"
    );
    assert!(!server.cli_ok(&["profile", "list"]).contains("p1"));
    let block = write_file(
        dir,
        "block.cfg",
        b"<c>\n<!-- zerotouch:lines -->\n<r a.b=\"${USERID}\"/>\n</c>",
    );
    let err = fails(
        &server,
        &["profile", "add", "p2", "--file", block.to_str().expect("p")],
    );
    assert!(
        err.contains("block.cfg: line 2: the line block is not closed"),
        "{err}"
    );

    for (name, field) in [("lower", "name:"), ("MAC", "name:"), ("A-B", "name:")] {
        let err = fails(&server, &["variable", "set", name, "x"]);
        assert!(err.contains(field), "{name}: {err}");
    }
    assert_eq!(server.cli_ok(&["variable", "list"]).lines().count(), 1);

    let err = fails(
        &server,
        &[
            "settings",
            "set",
            "mode=external",
            "registrar=not a host",
            "default_protocol=gopher",
            "external_path=../x",
            "transport=script",
            "script_path=/nonexistent/push.sh",
            "script_timeout_secs=0",
            "colour=blue",
        ],
    );
    for field in [
        "registrar:",
        "default_protocol:",
        "external_path:",
        "external_server:",
        "server_address:",
        "script_path:",
        "script_timeout_secs:",
        "colour:",
    ] {
        assert!(err.contains(field), "{field} missing: {err}");
    }
    let err = fails(&server, &["settings", "set", "registrar"]);
    assert!(err.contains("not FIELD=VALUE"), "{err}");
    let shown = server.cli_ok(&["settings", "show"]);
    assert!(shown.contains("Local mode"), "nothing saved: {shown}");
    assert!(!shown.contains("not a host"), "{shown}");

    let ok = write_file(dir, "ok.cfg", b"<c a.b=\"1\" ${OVERRIDE}/>");
    server.cli_ok(&["profile", "add", "p3", "--file", ok.to_str().expect("p")]);
    server.cli_ok(&["device", "add", MAC, "--profile", "p3"]);
    for (args, field) in [
        (
            vec!["--override", "a.b=\"2\""],
            "override: makes profile p3 file ok.cfg ill-formed",
        ),
        (
            vec!["--override", "device.prov.serverName=\"x\""],
            "override: `device.prov.serverName`",
        ),
        (vec!["--override", "x=1"], "override:"),
        (vec!["--park-ext", "7 0"], "default_parkext:"),
    ] {
        let mut full = vec!["device", "set-vars", MAC];
        full.extend(args);
        let err = fails(&server, &full);
        assert!(err.contains(field), "{field}: {err}");
    }
    assert!(
        !server
            .cli_ok(&["device", "show", MAC])
            .contains("override:")
    );
    let err = fails(&server, &["device", "set-line", MAC, "--line", "0"]);
    assert!(err.contains("line:"), "{err}");
    let err = fails(
        &server,
        &["device", "set-vars", "0004f2000009", "--label", "x"],
    );
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_custom_variable_in_use_cannot_be_deleted_and_changes_are_served_at_once() {
    let server = ZServer::start();
    server.cli_ok(&["variable", "set", "SYSLOG_SERVER", "10.0.0.9"]);
    let f = write_file(
        server.dir.path(),
        "s.cfg",
        b"<c log.x=\"${SYSLOG_SERVER}\"/>",
    );
    server.cli_ok(&["profile", "add", "p1", "--file", f.to_str().expect("p")]);
    server.cli_ok(&["device", "add", MAC, "--profile", "p1"]);
    let err = fails(&server, &["variable", "delete", "SYSLOG_SERVER"]);
    assert!(
        err.contains("used by profile p1 file s.cfg line 1"),
        "{err}"
    );
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert!(
        phone
            .get(&format!("/{MAC}-profile.cfg"))
            .text()
            .contains("10.0.0.9")
    );
    server.cli_ok(&["variable", "set", "SYSLOG_SERVER", "10.0.0.10"]);
    assert!(eventually(std::time::Duration::from_secs(5), || {
        phone
            .get(&format!("/{MAC}-profile.cfg"))
            .text()
            .contains("10.0.0.10")
    }));
}
