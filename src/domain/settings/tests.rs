//! Settings: defaults, round trips, validation by field, masking.

use super::*;

#[test]
fn the_defaults_are_valid_and_stored_as_nothing() {
    let s = ProvSettings::default();
    s.validate().expect("valid");
    assert!(s.to_stored().is_empty());
    assert_eq!(ProvSettings::from_stored(&BTreeMap::new()), s);
}

#[test]
fn every_field_round_trips_through_set_and_get() {
    let mut s = ProvSettings::default();
    for f in FIELDS {
        let value = match f.name {
            "mode" => "external",
            "transport" => "s3",
            "script_timeout_secs" => "12",
            "default_protocol" => "ftp",
            "external_protocol" => "http",
            _ => "value",
        };
        s.set(f.name, value).expect(f.name);
        assert_eq!(s.get(f.name).as_deref(), Some(value), "{}", f.name);
    }
    let stored = s.to_stored();
    assert_eq!(stored.len(), FIELDS.len());
    assert_eq!(ProvSettings::from_stored(&stored), s);
}

#[test]
fn every_bad_field_is_named() {
    let mut s = ProvSettings::default();
    for (k, v) in [
        ("mode", "external"),
        ("server_address", "http://pbx/"),
        ("default_protocol", "gopher"),
        ("external_protocol", "ftp"),
        ("external_path", "provisioning/../x"),
        ("registrar", "sip server"),
        ("ntp_server", "ntp:99999"),
        ("ftp_password", "a\u{7}b"),
        ("script_timeout_secs", "0"),
        ("transport", "s3"),
        ("s3_endpoint", "s3.example.com"),
        ("s3_bucket", "Bad_Bucket"),
        ("s3_region", "us east"),
        ("s3_prefix", "/abs"),
    ] {
        s.set(k, v).expect(k);
    }
    let text = s.validate().expect_err("invalid").to_string();
    for field in [
        "server_address:",
        "default_protocol:",
        "external_protocol:",
        "external_path:",
        "external_server: is required",
        "registrar:",
        "ntp_server:",
        "ftp_password:",
        "script_timeout_secs:",
        "s3_endpoint:",
        "s3_bucket:",
        "s3_access_key: is required",
        "s3_secret_key: is required",
        "s3_region:",
        "s3_prefix:",
    ] {
        assert!(text.contains(field), "{field} missing in {text}");
    }
}

#[test]
fn unknown_fields_and_bad_choices_name_the_field() {
    let mut s = ProvSettings::default();
    assert_eq!(
        s.set("colour", "blue").expect_err("unknown").field,
        "colour"
    );
    assert_eq!(s.set("mode", "remote").expect_err("bad").field, "mode");
    assert_eq!(
        s.set("transport", "ftp").expect_err("bad").field,
        "transport"
    );
    assert_eq!(
        s.set("script_timeout_secs", "soon").expect_err("bad").field,
        "script_timeout_secs"
    );
}

#[test]
fn hosts_accept_names_ips_and_ports() {
    for ok in [
        "pbx",
        "pbx.example.com",
        "10.0.0.5",
        "10.0.0.5:5060",
        "[::1]:5060",
        "::1",
    ] {
        let mut p = Vec::new();
        host(&mut p, "h", ok);
        assert!(p.is_empty(), "{ok}: {p:?}");
    }
    for bad in ["http://x", "x/y", "x:0", "a b", "[::1", "x:port"] {
        let mut p = Vec::new();
        host(&mut p, "h", bad);
        assert!(!p.is_empty(), "{bad}");
    }
}

#[test]
fn a_script_must_exist_and_be_executable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("push.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    let mut s = ProvSettings {
        transport: TransportKind::Script,
        script_path: script.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let err = s.validate().expect_err("not executable").to_string();
    assert!(
        err.contains("script_path: ") && err.contains("not executable"),
        "{err}"
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.validate().expect("executable");
    s.script_path = "relative.sh".into();
    assert!(s.validate().is_err());
    s.script_path = String::new();
    assert!(
        s.validate()
            .expect_err("empty")
            .to_string()
            .contains("script_path: is required")
    );
}

#[test]
fn secrets_are_masked_unless_asked_for() {
    let s = ProvSettings {
        s3_secret_key: "hunter2".into(),
        ..Default::default()
    };
    assert!(!s.display("s3_secret_key", false).contains("hunter2"));
    assert_eq!(s.display("s3_secret_key", true), "hunter2");
    assert_eq!(s.display("http_password", false), "");
}

#[test]
fn the_key_prefix_ends_with_one_slash() {
    let mut s = ProvSettings::default();
    assert_eq!(s.s3_key_prefix(), "");
    s.s3_prefix = "configs".into();
    assert_eq!(s.s3_key_prefix(), "configs/");
    s.s3_prefix = "a/b/".into();
    assert_eq!(s.s3_key_prefix(), "a/b/");
}

#[test]
fn the_secret_fields_are_the_ones_sealed_at_rest() {
    let secret: Vec<&str> = FIELDS.iter().filter(|f| f.secret).map(|f| f.name).collect();
    assert_eq!(secret, crate::db::secrets::SECRET_SETTINGS);
}
