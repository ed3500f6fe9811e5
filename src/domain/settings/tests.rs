//! Settings: defaults, round trips, validation by field, masking.

use super::*;

#[test]
fn the_defaults_are_valid_and_stored_as_nothing() {
    let s = ProvSettings::default();
    s.validate(&|_| ScriptFile::Executable).expect("valid");
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
    let text = s
        .validate(&|_| ScriptFile::Executable)
        .expect_err("invalid")
        .to_string();
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
fn a_script_must_be_an_executable_file_at_an_absolute_path() {
    let mut s = ProvSettings {
        transport: TransportKind::Script,
        script_path: "/usr/local/bin/push.sh".into(),
        ..Default::default()
    };
    let err = s
        .validate(&|_| ScriptFile::NotExecutable)
        .expect_err("not executable")
        .to_string();
    assert!(
        err.contains("script_path: ") && err.contains("not executable"),
        "{err}"
    );
    s.validate(&|_| ScriptFile::Executable).expect("executable");
    assert!(s.validate(&|_| ScriptFile::NotAFile).is_err());
    s.script_path = "relative.sh".into();
    assert!(s.validate(&|_| ScriptFile::Executable).is_err());
    s.script_path = String::new();
    assert!(
        s.validate(&|_| ScriptFile::Executable)
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
