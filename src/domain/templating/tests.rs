//! Settings, custom variables, device values and previews on an in-memory database.

use super::*;
use crate::domain::device::DeviceInput;
use crate::domain::ops::{self, OwnAddresses};
use crate::domain::polycom::models::UCS_VENDOR_MODEL;
use crate::domain::profile::ProfileFields;

const MAC: &str = "0004f2aabbcc";

fn setup(files: &[(&str, &str)]) -> Connection {
    let mut conn = db::open_in_memory().expect("db");
    let account = ops::default_account(&conn).expect("account");
    let fields = ProfileFields {
        name: "p1".into(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        ..Default::default()
    };
    let files = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
        .collect();
    ops::add_profile(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &fields,
        files,
        &OwnAddresses::default(),
    )
    .expect("profile");
    let input = DeviceInput {
        mac: MAC.into(),
        profile: "p1".into(),
        ..Default::default()
    };
    ops::add_device(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &input,
        &OwnAddresses::default(),
    )
    .expect("device");
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
    let err = update_settings(&mut conn, &changes(&[("registrar", "sip1")]), &refuse)
        .expect_err("refused");
    assert!(err.to_string().starts_with("s3_endpoint:"), "{err}");
    assert_eq!(load_settings(&conn).expect("load").registrar, "");
    let s = update_settings(&mut conn, &changes(&[("registrar", "sip1")]), &ok).expect("saved");
    assert_eq!(s.registrar, "sip1");
    assert_eq!(load_settings(&conn).expect("load").registrar, "sip1");
}

#[test]
fn custom_variables_are_known_to_uploads_and_cannot_vanish_while_used() {
    let mut conn = db::open_in_memory().expect("db");
    let account = ops::default_account(&conn).expect("account");
    let fields = ProfileFields {
        name: "p1".into(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        ..Default::default()
    };
    let file = vec![(
        "site.cfg".to_string(),
        b"<c\n a.b=\"${SYSLOG_SERVER}\" c.d=\"$${LITERAL}\"/>".to_vec(),
    )];
    let err = ops::add_profile(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &fields,
        file.clone(),
        &OwnAddresses::default(),
    )
    .expect_err("unknown variable");
    assert!(
        err.to_string()
            .contains("site.cfg: line 2: unknown variable `${SYSLOG_SERVER}`"),
        "{err}"
    );
    set_custom_variable(&mut conn, "SYSLOG_SERVER", "10.0.0.9").expect("set");
    ops::add_profile(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &fields,
        file,
        &OwnAddresses::default(),
    )
    .expect("now known");
    let err = delete_custom_variable(&mut conn, "SYSLOG_SERVER").expect_err("in use");
    assert!(
        err.to_string()
            .contains("used by profile p1 file site.cfg line 2"),
        "{err}"
    );
    // A literal `$${NAME}` is not a use.
    set_custom_variable(&mut conn, "LITERAL", "x").expect("set");
    delete_custom_variable(&mut conn, "LITERAL").expect("not used");
    let err = set_custom_variable(&mut conn, "MAC", "x").expect_err("built-in");
    assert!(err.to_string().starts_with("name:"), "{err}");
}

#[test]
fn an_override_that_breaks_a_file_is_refused_naming_the_file() {
    let mut conn = setup(&[("site.cfg", "<c a.b=\"1\" ${OVERRIDE}/>")]);
    let change = DeviceVarsChange {
        override_attrs: Some(r#"a.b="2""#.into()),
        ..Default::default()
    };
    let err = set_device_vars(&mut conn, &mac(), &change).expect_err("duplicate attribute");
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
    set_device_vars(&mut conn, &mac(), &change).expect("fits");
    let files = ops::render_device(&conn, &mac(), &reach(), None).expect("render");
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
        set_device_line(&mut conn, &mac(), &line).expect("line");
    }
    update_settings(
        &mut conn,
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
    let account = ops::default_account(&conn).expect("account");
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
    ops::add_profile(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &fields,
        vec![],
        &OwnAddresses::default(),
    )
    .expect("p2");
    let input = DeviceInput {
        mac: "0004f2000002".into(),
        profile: "p2".into(),
        ..Default::default()
    };
    ops::add_device(
        &mut conn,
        &crate::domain::audit::Actor::system(),
        &account,
        &input,
        &OwnAddresses::default(),
    )
    .expect("device");
    let local = ops::render_device(
        &conn,
        &Mac::from_bare("0004f2000002").expect("mac"),
        &reach(),
        None,
    )
    .expect("local");
    assert!(String::from_utf8_lossy(&local[1].1).contains("device.set"));
    update_settings(
        &mut conn,
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
    let external = ops::render_device(
        &conn,
        &Mac::from_bare("0004f2000002").expect("mac"),
        &reach(),
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
    let site = ops::render_device(&conn, &mac(), &reach(), None).expect("render");
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
    set_device_line(&mut conn, &mac(), &line).expect("set");
    let d = devices::find_device_by_mac(&conn, &mac())
        .expect("find")
        .expect("present");
    assert_eq!(d.lines, vec![line]);
    delete_device_line(&mut conn, &mac(), 3).expect("delete");
    assert!(delete_device_line(&mut conn, &mac(), 3).is_err());
    let bad = Line {
        line: 0,
        ..Default::default()
    };
    assert!(set_device_line(&mut conn, &mac(), &bad).is_err());
}
