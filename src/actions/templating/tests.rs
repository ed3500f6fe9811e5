//! Settings, custom variables, device values and previews on an in-memory database.

use super::*;
use crate::domain::device::DeviceInput;
use crate::domain::polycom::models::UCS_VENDOR_MODEL;
use crate::domain::profile::ProfileFields;

fn sys() -> crate::domain::audit::Actor {
    crate::domain::audit::Actor::system()
}

const MAC: &str = "0004f2aabbcc";

fn setup(files: &[(&str, &str)]) -> Connection {
    let mut conn = db::open_in_memory().expect("db");
    let account = crate::actions::accounts::default_account(&conn).expect("account");
    let fields = ProfileFields {
        name: "p1".into(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        ..Default::default()
    };
    let files = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
        .collect();
    crate::actions::testing::add_profile(&mut conn, &account, &fields, files).expect("profile");
    let input = DeviceInput {
        mac: MAC.into(),
        profile: "p1".into(),
        ..Default::default()
    };
    crate::actions::testing::add_device(&mut conn, &account, &input).expect("device");
    conn
}

fn mac() -> Mac {
    Mac::from_bare(MAC).expect("mac")
}

fn reach() -> Reach {
    Reach {
        host: "10.0.0.5:8080".into(),
        base_path: "/".into(),
        secure: false,
    }
}

fn ok(_: &ProvSettings) -> Result<()> {
    Ok(())
}

fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_refused_settings_change_names_every_field_and_writes_nothing() {
    let mut conn = setup(&[]);
    let err = update_settings(
        &mut conn,
        &sys(),
        &changes(&[
            ("mode", "external"),
            ("registrar", "not a host"),
            ("colour", "blue"),
            ("transport", "carrier-pigeon"),
        ]),
        &ok,
    )
    .expect_err("refused")
    .to_string();
    for field in [
        "registrar:",
        "colour:",
        "transport:",
        "external_server:",
        "server_address:",
    ] {
        assert!(err.contains(field), "{field} missing in {err}");
    }
    assert_eq!(load_settings(&conn).expect("load"), ProvSettings::default());
}

#[test]
fn a_failed_connectivity_check_writes_nothing() {
    let mut conn = setup(&[]);
    let refuse =
        |_: &ProvSettings| -> Result<()> { Err(Error::invalid("s3_endpoint", "cannot reach it")) };
    let err = update_settings(
        &mut conn,
        &sys(),
        &changes(&[("registrar", "sip1")]),
        &refuse,
    )
    .expect_err("refused");
    assert!(err.to_string().starts_with("s3_endpoint:"), "{err}");
    assert_eq!(load_settings(&conn).expect("load").registrar, "");
    let s =
        update_settings(&mut conn, &sys(), &changes(&[("registrar", "sip1")]), &ok).expect("saved");
    assert_eq!(s.registrar, "sip1");
    assert_eq!(load_settings(&conn).expect("load").registrar, "sip1");
}

#[test]
fn custom_variables_are_known_to_uploads_and_cannot_vanish_while_used() {
    let mut conn = db::open_in_memory().expect("db");
    let account = crate::actions::accounts::default_account(&conn).expect("account");
    let fields = ProfileFields {
        name: "p1".into(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        ..Default::default()
    };
    let file = vec![(
        "site.cfg".to_string(),
        b"<c\n a.b=\"${SYSLOG_SERVER}\" c.d=\"$${LITERAL}\"/>".to_vec(),
    )];
    let err = crate::actions::testing::add_profile(&mut conn, &account, &fields, file.clone())
        .expect_err("unknown variable");
    assert!(
        err.to_string()
            .contains("site.cfg: line 2: unknown variable `${SYSLOG_SERVER}`"),
        "{err}"
    );
    set_custom_variable(&mut conn, &sys(), "SYSLOG_SERVER", "10.0.0.9").expect("set");
    crate::actions::testing::add_profile(&mut conn, &account, &fields, file).expect("now known");
    let err = delete_custom_variable(&mut conn, &sys(), "SYSLOG_SERVER").expect_err("in use");
    assert!(
        err.to_string()
            .contains("used by profile p1 file site.cfg line 2"),
        "{err}"
    );
    // A literal `$${NAME}` is not a use.
    set_custom_variable(&mut conn, &sys(), "LITERAL", "x").expect("set");
    delete_custom_variable(&mut conn, &sys(), "LITERAL").expect("not used");
    let err = set_custom_variable(&mut conn, &sys(), "MAC", "x").expect_err("built-in");
    assert!(err.to_string().starts_with("name:"), "{err}");
}

#[test]
fn an_override_that_breaks_a_file_is_refused_naming_the_file() {
    let mut conn = setup(&[("site.cfg", "<c a.b=\"1\" ${OVERRIDE}/>")]);
    let change = DeviceVarsChange {
        override_attrs: Some(r#"a.b="2""#.into()),
        ..Default::default()
    };
    let err = set_device_vars(&mut conn, &sys(), &mac(), &change).expect_err("duplicate attribute");
    let text = err.to_string();
    assert!(
        text.starts_with("override: makes profile p1 file site.cfg ill-formed"),
        "{text}"
    );
    assert_eq!(
        devices::find_device_by_mac(&conn, &mac())
            .expect("find")
            .expect("present")
            .vars,
        DeviceVars::default(),
        "nothing written"
    );
    let change = DeviceVarsChange {
        label: Some("Lobby".into()),
        override_attrs: Some(r#"c.d="2""#.into()),
        ..Default::default()
    };
    set_device_vars(&mut conn, &sys(), &mac(), &change).expect("fits");
    let files = crate::actions::render::render_device(
        &conn,
        &mac(),
        &reach(),
        crate::actions::render::As::Device,
        None,
    )
    .expect("render");
    let profile = &files[2].1;
    assert_eq!(String::from_utf8_lossy(profile), "<c a.b=\"1\" c.d=\"2\"/>");
}

#[test]
fn the_preview_lists_values_and_sources_and_masks_secrets() {
    let mut conn = setup(&[(
        "lines.cfg",
        "<c s.x=\"${REG_SERVER}\" p.x=\"${PROV_PASSWORD}\">\n<!-- zerotouch:lines -->\n\
         <r reg.${LINE}.auth.password=\"${PASSWORD}\" reg.${LINE}.label=\"${LINE_LABEL}\"/>\n\
         <!-- zerotouch:end-lines -->\n</c>",
    )]);
    for (n, pw, label) in [(1, "pw-one", "Front"), (2, r#"p&w<"2"#, "Back")] {
        let line = Line {
            line: n,
            auth_user_id: format!("10{n}"),
            auth_password: pw.into(),
            label: label.into(),
            ..Default::default()
        };
        set_device_line(&mut conn, &sys(), &mac(), &line).expect("line");
    }
    update_settings(
        &mut conn,
        &sys(),
        &changes(&[("registrar", "sip.example.com")]),
        &ok,
    )
    .expect("settings");
    let p = preview_device(&conn, &mac(), &reach(), false).expect("preview");
    assert_eq!(p.mode, "local");
    let f = &p.files[0];
    assert_eq!(f.name, "0004f2aabbcc-profile.cfg");
    assert!(f.well_formed);
    let reg = f
        .vars
        .iter()
        .find(|v| v.name == "REG_SERVER")
        .expect("used");
    assert_eq!(
        (
            reg.value.as_str(),
            reg.source.as_str(),
            reg.template_lines.as_slice()
        ),
        ("sip.example.com", "settings.registrar", &[1][..])
    );
    let passwords: Vec<_> = f
        .vars
        .iter()
        .filter(|v| v.name == "PASSWORD")
        .map(|v| (v.device_line, v.value.as_str(), v.secret))
        .collect();
    assert_eq!(passwords, [(Some(1), MASK, true), (Some(2), MASK, true)]);
    assert!(!f.text.contains("pw-one"), "{}", f.text);
    let prov = f
        .vars
        .iter()
        .find(|v| v.name == "PROV_PASSWORD")
        .expect("used");
    assert_eq!(prov.value, MASK);

    let p = preview_device(&conn, &mac(), &reach(), true).expect("preview");
    let text = &p.files[0].text;
    assert!(
        text.contains("reg.2.auth.password=\"p&amp;w&lt;&quot;2\""),
        "{text}"
    );
    let params = xml::parse_params("x", text.as_bytes()).expect("well-formed");
    let pw2 = params
        .iter()
        .find(|p| p.name == "reg.2.auth.password")
        .expect("line 2");
    assert_eq!(pw2.value, r#"p&w<"2"#);
}

#[test]
fn external_mode_files_carry_no_device_changes_and_absolute_firmware() {
    let mut conn = setup(&[("site.cfg", "<c u.x=\"${PROTO_URL}\"/>")]);
    let account = crate::actions::accounts::default_account(&conn).expect("account");
    // A profile whose server field would normally be a pending device.* change.
    let fields = ProfileFields {
        name: "p2".into(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        prov_server: "https://old.example.com/".into(),
        software: [(
            crate::domain::polycom::models::Family::Vvx,
            "5.9.8.1234".to_string(),
        )]
        .into(),
        ..Default::default()
    };
    // Versions in a profile must be in the firmware catalogue.
    conn.execute(
        "INSERT INTO firmware_releases (version, families, layout, imported_at)
         VALUES ('5.9.8.1234', 'VVX', 'combined', 0)",
        [],
    )
    .expect("release");
    crate::actions::testing::add_profile(&mut conn, &account, &fields, vec![]).expect("p2");
    let input = DeviceInput {
        mac: "0004f2000002".into(),
        profile: "p2".into(),
        ..Default::default()
    };
    crate::actions::testing::add_device(&mut conn, &account, &input).expect("device");
    let local = crate::actions::render::render_device(
        &conn,
        &Mac::from_bare("0004f2000002").expect("mac"),
        &reach(),
        crate::actions::render::As::Device,
        None,
    )
    .expect("local");
    assert!(String::from_utf8_lossy(&local[1].1).contains("device.set"));
    update_settings(
        &mut conn,
        &sys(),
        &changes(&[
            ("mode", "external"),
            ("server_address", "pbx.example.com"),
            ("external_server", "dms.example.com"),
            ("external_user", "u"),
            ("external_password", "p"),
        ]),
        &ok,
    )
    .expect("external");
    let external = crate::actions::render::render_device(
        &conn,
        &Mac::from_bare("0004f2000002").expect("mac"),
        &reach(),
        crate::actions::render::As::Device,
        None,
    )
    .expect("external");
    let device_file = String::from_utf8_lossy(&external[1].1);
    assert!(!device_file.contains("device."), "{device_file}");
    let master = String::from_utf8_lossy(&external[0].1);
    assert!(
        master.contains(
            "APP_FILE_PATH_VVX500=\"https://dms.example.com/provisioning/firmware/5.9.8.1234/sip.ld\""
        ),
        "{master}"
    );
    let site = crate::actions::render::render_device(
        &conn,
        &mac(),
        &reach(),
        crate::actions::render::As::Device,
        None,
    )
    .expect("render");
    assert_eq!(
        String::from_utf8_lossy(&site[2].1),
        "<c u.x=\"https://u:p@dms.example.com/provisioning/Polycom_UCS_Device/\"/>"
    );
}

#[test]
fn lines_are_set_and_removed() {
    let mut conn = setup(&[]);
    let line = Line {
        line: 3,
        auth_user_id: "103".into(),
        extension: "3103".into(),
        first_name: "Cy".into(),
        last_name: "Doe".into(),
        ..Default::default()
    };
    set_device_line(&mut conn, &sys(), &mac(), &line).expect("set");
    let d = devices::find_device_by_mac(&conn, &mac())
        .expect("find")
        .expect("present");
    assert_eq!(d.lines, vec![line]);
    delete_device_line(&mut conn, &sys(), &mac(), 3).expect("delete");
    assert!(delete_device_line(&mut conn, &sys(), &mac(), 3).is_err());
    let bad = Line {
        line: 0,
        ..Default::default()
    };
    assert!(set_device_line(&mut conn, &sys(), &mac(), &bad).is_err());
}

/// Every audit entry, oldest first, as text (before and after included).
fn audit_text(conn: &Connection) -> Vec<String> {
    let mut rows = crate::db::audit::list_entries(conn, None, 100).expect("audit");
    rows.reverse();
    rows.iter()
        .map(|e| format!("{} {} {:?} {:?}", e.action, e.target, e.before, e.after))
        .collect()
}

#[test]
fn every_change_is_audited_with_its_fields_and_no_secret() {
    let mut conn = setup(&[("site.cfg", "<c ${OVERRIDE}/>")]);
    let who = crate::domain::audit::Actor::person("alice");
    update_settings(
        &mut conn,
        &who,
        &changes(&[
            ("registrar", "sip.example.com"),
            ("http_user", "phones"),
            ("http_password", "settings-secret-1"),
        ]),
        &ok,
    )
    .expect("settings");
    // Saving the same values again changes nothing and records nothing.
    update_settings(
        &mut conn,
        &who,
        &changes(&[("registrar", "sip.example.com")]),
        &ok,
    )
    .expect("same");
    set_custom_variable(&mut conn, &who, "SYSLOG_SERVER", "10.0.0.9").expect("var");
    set_custom_variable(&mut conn, &who, "API_SECRET", "custom-secret-2").expect("var");
    delete_custom_variable(&mut conn, &who, "API_SECRET").expect("delete");
    let change = DeviceVarsChange {
        label: Some("Lobby".into()),
        override_attrs: Some(r#"reg.1.auth.password="override-secret-3""#.into()),
        ..Default::default()
    };
    set_device_vars(&mut conn, &who, &mac(), &change).expect("vars");
    let line = Line {
        line: 2,
        auth_user_id: "102".into(),
        auth_password: "line-secret-4".into(),
        first_name: "Ann".into(),
        ..Default::default()
    };
    set_device_line(&mut conn, &who, &mac(), &line).expect("line");
    delete_device_line(&mut conn, &who, &mac(), 2).expect("line gone");
    reveal_preview(&mut conn, &who, &mac(), &reach()).expect("preview");
    note_push(&mut conn, &who, 3).expect("push");

    // What `setup` did is not this test's.
    let mut entries = audit_text(&conn);
    entries.retain(|e| !e.starts_with("profile.add") && !e.starts_with("device.associate"));
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "settings.set",
            "variable.set",
            "variable.set",
            "variable.delete",
            "device.set-vars",
            "device.set-line",
            "device.delete-line",
            "device.preview-secrets",
            "external.push",
        ],
        "{entries:#?}"
    );
    let all = entries.join("\n");
    for secret in [
        "settings-secret-1",
        "custom-secret-2",
        "override-secret-3",
        "line-secret-4",
    ] {
        assert!(!all.contains(secret), "{secret} in the audit log:\n{all}");
    }
    for kept in [
        "sip.example.com",
        "http_password",
        "10.0.0.9",
        "Lobby",
        "Ann",
        "0004f2aabbcc",
    ] {
        assert!(all.contains(kept), "{kept} missing:\n{all}");
    }
    let rows = crate::db::audit::list_entries(&conn, None, 100).expect("audit");
    assert!(
        rows.iter()
            .filter(|r| !r.action.ends_with(".add") && r.action != "device.associate")
            .all(|r| r.actor == "alice")
    );
}

#[test]
fn an_override_sent_back_masked_keeps_its_secret() {
    let mut conn = setup(&[("site.cfg", "<c ${OVERRIDE}/>")]);
    let secret = r#"reg.1.auth.password="s3cret" a.b="1""#;
    let change = DeviceVarsChange {
        override_attrs: Some(secret.into()),
        ..Default::default()
    };
    set_device_vars(&mut conn, &sys(), &mac(), &change).expect("set");
    let shown = mask_override(secret);
    assert_eq!(shown, r#"reg.1.auth.password="********" a.b="1""#);
    let back = DeviceVarsChange {
        label: Some("Desk".into()),
        override_attrs: Some(shown),
        ..Default::default()
    };
    let v = set_device_vars(&mut conn, &sys(), &mac(), &back).expect("kept");
    assert_eq!(
        (v.label.as_str(), v.override_attrs.as_str()),
        ("Desk", secret)
    );
    let cleared = DeviceVarsChange {
        override_attrs: Some(String::new()),
        ..Default::default()
    };
    let v = set_device_vars(&mut conn, &sys(), &mac(), &cleared).expect("cleared");
    assert_eq!(v.override_attrs, "");
}

#[test]
fn the_variable_table_shows_every_builtin_with_its_source_and_masks_secrets() {
    let mut conn = setup(&[]);
    update_settings(
        &mut conn,
        &sys(),
        &changes(&[
            ("ntp_server", "ntp.example.com"),
            ("http_user", "u"),
            ("http_password", "table-secret"),
        ]),
        &ok,
    )
    .expect("settings");
    set_custom_variable(&mut conn, &sys(), "SYSLOG_SERVER", "10.0.0.9").expect("var");
    set_custom_variable(&mut conn, &sys(), "DB_PASSWORD", "custom-secret").expect("var");
    let example = variable_table(&conn, &reach(), None).expect("example");
    assert_eq!(example.mac, None);
    assert_eq!(example.builtin.len(), template::BUILTINS.len());
    let row = |t: &VarTable, name: &str| {
        t.builtin
            .iter()
            .chain(&t.custom)
            .find(|r| r.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let ntp = row(&example, "NTP_SERVER");
    assert_eq!(
        (ntp.value.as_str(), ntp.source.as_str()),
        ("ntp.example.com", "settings.ntp_server")
    );
    assert_eq!(
        row(&example, "REG_SERVER").value,
        "10.0.0.5",
        "the host phones use, no port"
    );
    assert_eq!(row(&example, "HTTP_PASSWORD").value, MASK);
    assert!(row(&example, "PROTO_URL").secret);
    assert!(row(&example, "EXTENSION").per_line);
    assert_eq!(row(&example, "DB_PASSWORD").value, MASK);
    assert_eq!(row(&example, "SYSLOG_SERVER").value, "10.0.0.9");
    let text = format!("{example:?}");
    assert!(
        !text.contains("table-secret") && !text.contains("custom-secret"),
        "{text}"
    );

    let line = Line {
        line: 1,
        auth_user_id: "101".into(),
        ..Default::default()
    };
    set_device_line(&mut conn, &sys(), &mac(), &line).expect("line");
    let device = variable_table(&conn, &reach(), Some(&mac())).expect("device");
    assert_eq!(device.mac.as_deref(), Some(MAC));
    assert_eq!(row(&device, "MAC").value, "0004F2AABBCC");
    assert_eq!(row(&device, "EXTENSION").value, "101");
}

#[test]
fn the_script_path_is_checked_on_disk() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("push.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    let mut s = crate::domain::settings::ProvSettings {
        transport: crate::domain::settings::TransportKind::Script,
        script_path: script.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let err = s
        .validate(&script_file)
        .expect_err("not executable")
        .to_string();
    assert!(
        err.contains("script_path: ") && err.contains("not executable"),
        "{err}"
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.validate(&script_file).expect("executable");
    s.script_path = "relative.sh".into();
    assert!(s.validate(&script_file).is_err());
    s.script_path = String::new();
    assert!(
        s.validate(&script_file)
            .expect_err("empty")
            .to_string()
            .contains("script_path: is required")
    );
}
