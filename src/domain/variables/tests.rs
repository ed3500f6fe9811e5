//! Every variable and its default.

use super::*;
use crate::domain::account::{AccountId, UnknownDevices};
use crate::domain::device::{DeviceVars, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::profile::ProfileFields;
use crate::domain::template::BUILTINS;

fn account() -> Account {
    Account {
        id: AccountId(7),
        name: "Acme".into(),
        slug: "acme".into(),
        service_key: "k".into(),
        is_default: true,
        provisioning_enabled: true,
        device_user: Some("phones".into()),
        device_password: Some("fleet-pw".into()),
        credential_generation: 1,
        autosync_enabled: true,
        unknown_devices: UnknownDevices::Stage,
        default_profile_id: None,
        device_secrets: false,
        tftp_credential: false,
        ftp_factory_login: true,
        sip: Default::default(),
    }
}

fn device() -> Device {
    Device {
        id: 1,
        account_id: 7,
        mac: Mac::from_bare("0004f2aabbcc").expect("mac"),
        serial: "0004F2AABBCC".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        profile_id: Some(1),
        profile_name: Some("p".into()),
        ext: VendorExtensions::default(),
        lines: vec![],
        auto_associated: false,
        vars: DeviceVars::default(),
    }
}

fn profile() -> Profile {
    Profile {
        id: 1,
        account_id: 7,
        fields: ProfileFields {
            name: "p".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            ..Default::default()
        },
        files: vec![],
    }
}

fn reach() -> Reach {
    Reach {
        host: "10.0.0.5:8080".into(),
        base_path: "/".into(),
        secure: false,
    }
}

/// Variables for a device under `settings`, as `(value, source)` by name.
fn vars_with(
    settings: ProvSettings,
    d: &Device,
    p: &Profile,
    model: &str,
) -> (DeviceVarSet, impl Fn(&str) -> (String, String) + use<>) {
    let ctx = Context {
        settings: settings.clone(),
        custom: BTreeMap::new(),
        tftp_port: None,
        ftp_port: None,
    };
    let a = account();
    let r = if settings.mode == Mode::External {
        external_reach(&settings, &model_segment(model, &d.vendor_model))
    } else {
        reach()
    };
    let set = for_device(
        &ctx,
        &Subject {
            account: &a,
            device: d,
            profile: p,
            reach: &r,
            model,
        },
    );
    let v = set.device.clone();
    (set, move |name: &str| {
        (
            v.get(name).unwrap_or("<unknown>").to_string(),
            v.source(name).unwrap_or_default(),
        )
    })
}

fn local(settings: ProvSettings) -> impl Fn(&str) -> (String, String) + use<> {
    vars_with(settings, &device(), &profile(), "").1
}

#[test]
fn every_builtin_gets_a_value_and_a_source() {
    let (set, _) = vars_with(ProvSettings::default(), &device(), &profile(), "");
    for name in BUILTINS {
        let source = set.device.source(name).expect("known");
        assert!(
            !source.starts_with("not set"),
            "{name} has no source: {source}"
        );
    }
}

#[test]
fn servers_default_to_the_management_server() {
    let v = local(ProvSettings::default());
    // No server_address: the host phones use, without the port.
    assert_eq!(v("REG_SERVER").0, "10.0.0.5");
    assert!(v("REG_SERVER").1.contains("management server"));
    assert_eq!(
        v("SERVER"),
        ("10.0.0.5".into(), "= REG_SERVER (legacy alias)".into())
    );
    assert_eq!(v("NTP_SERVER").0, "10.0.0.5");
    assert_eq!(
        v("REG_SERVER_BACKUP"),
        (String::new(), "default: empty".into())
    );
    assert_eq!(
        v("PROXY_SERVER"),
        ("10.0.0.5".into(), "default: = REG_SERVER".into())
    );
    assert_eq!(v("PROXY_SERVER_BACKUP").0, "");
    assert_eq!(v("PROXY_SERVER_BACKUP").1, "default: = REG_SERVER_BACKUP");

    let v = local(ProvSettings {
        server_address: "pbx.example.com".into(),
        ..Default::default()
    });
    assert_eq!(v("REG_SERVER").0, "pbx.example.com");
    assert!(v("REG_SERVER").1.contains("settings.server_address"));
    assert_eq!(v("NTP_SERVER").0, "pbx.example.com");
}

#[test]
fn configured_servers_win_and_proxies_follow_registrars() {
    let v = local(ProvSettings {
        server_address: "pbx".into(),
        registrar: "reg1".into(),
        registrar_backup: "reg2".into(),
        ntp_server: "ntp1".into(),
        ..Default::default()
    });
    assert_eq!(
        v("REG_SERVER"),
        ("reg1".into(), "settings.registrar".into())
    );
    assert_eq!(v("SERVER").0, "reg1");
    assert_eq!(
        v("REG_SERVER_BACKUP"),
        ("reg2".into(), "settings.registrar_backup".into())
    );
    assert_eq!(v("PROXY_SERVER").0, "reg1");
    assert_eq!(v("PROXY_SERVER_BACKUP").0, "reg2");
    assert_eq!(
        v("NTP_SERVER"),
        ("ntp1".into(), "settings.ntp_server".into())
    );

    let v = local(ProvSettings {
        registrar: "reg1".into(),
        registrar_backup: "reg2".into(),
        sip_proxy: "proxy1".into(),
        sip_proxy_backup: "proxy2".into(),
        ..Default::default()
    });
    assert_eq!(
        v("PROXY_SERVER"),
        ("proxy1".into(), "settings.sip_proxy".into())
    );
    assert_eq!(
        v("PROXY_SERVER_BACKUP"),
        ("proxy2".into(), "settings.sip_proxy_backup".into())
    );
}

#[test]
fn device_vendor_extensions_beat_the_settings() {
    let mut d = device();
    d.ext.sip_server = "sip.device".into();
    d.ext.outbound_proxy = "obp.device".into();
    let (_, v) = vars_with(
        ProvSettings {
            registrar: "reg1".into(),
            sip_proxy: "proxy1".into(),
            ..Default::default()
        },
        &d,
        &profile(),
        "",
    );
    assert_eq!(v("REG_SERVER").0, "sip.device");
    assert_eq!(v("SERVER").0, "sip.device");
    assert_eq!(v("PROXY_SERVER").0, "obp.device");
    assert!(v("PROXY_SERVER").1.contains("outbound_proxy"));
}

#[test]
fn local_mode_protocol_server_and_path_come_from_the_request() {
    let v = local(ProvSettings::default());
    assert_eq!(v("PROTO").0, "http");
    assert!(v("PROTO").1.contains("scheme the phone used"));
    assert_eq!(v("PROV_SERVER").0, "10.0.0.5:8080");
    assert_eq!(v("PROV_PATH").0, "/");
    assert_eq!(v("PROV_MODEL_SEGMENT").0, "");
    assert_eq!(
        v("FIRMWARE_SERVER"),
        ("10.0.0.5:8080".into(), "default: = PROV_SERVER".into())
    );
    assert_eq!(v("FIRMWARE_PATH").0, "/firmware/");
    assert_eq!(v("FIRMWARE").0, "");
    assert_eq!(v("FIRMWARE_URL").0, "");
    let v = local(ProvSettings {
        default_protocol: "https".into(),
        ..Default::default()
    });
    assert_eq!(
        v("PROTO"),
        ("https".into(), "settings.default_protocol".into())
    );
}

#[test]
fn credentials_follow_the_protocol() {
    // HTTP credentials default to the account's device credentials.
    let v = local(ProvSettings::default());
    assert_eq!(v("HTTP_USER").0, "phones");
    assert_eq!(v("HTTP_PASSWORD").0, "fleet-pw");
    assert!(v("HTTP_USER").1.contains("account's device credentials"));
    assert_eq!(v("PROV_USER").0, "phones");
    assert_eq!(v("PROV_PASSWORD").0, "fleet-pw");
    assert_eq!(v("PROTO_URL").0, "http://phones:fleet-pw@10.0.0.5:8080/");

    let creds = ProvSettings {
        http_user: "hu".into(),
        http_password: "hp".into(),
        ftp_user: "fu".into(),
        ftp_password: "f@p:/".into(),
        ..Default::default()
    };
    for (proto, user, pass) in [
        ("http", "hu", "hp"),
        ("https", "hu", "hp"),
        ("tftp", "hu", "hp"),
        ("ftp", "fu", "f@p:/"),
        ("ftps", "fu", "f@p:/"),
    ] {
        let v = local(ProvSettings {
            default_protocol: proto.into(),
            ..creds.clone()
        });
        assert_eq!(v("PROTO").0, proto);
        assert_eq!(
            (v("PROV_USER").0, v("PROV_PASSWORD").0),
            (user.into(), pass.into()),
            "{proto}"
        );
        assert_eq!(v("HTTP_USER").0, "hu");
        assert_eq!(v("FTP_USER").0, "fu");
        assert_eq!(v("FTP_PASSWORD").0, "f@p:/");
    }
    let v = local(ProvSettings {
        default_protocol: "ftp".into(),
        ..creds
    });
    // Credentials are percent-encoded inside the URL; FTP's port, never HTTP's (21 here:
    // no FTP listener in this context, so the standard port, left out).
    assert_eq!(v("PROTO_URL").0, "ftp://fu:f%40p%3A%2F@10.0.0.5/");
}

fn external() -> ProvSettings {
    ProvSettings {
        mode: Mode::External,
        server_address: "pbx.example.com".into(),
        external_server: "dms.example.com".into(),
        external_protocol: "https".into(),
        external_path: "/provisioning".into(),
        external_user: "dmsuser".into(),
        external_password: "dms pw".into(),
        ..Default::default()
    }
}

#[test]
fn external_mode_uses_the_dms_and_the_model_segment() {
    let (_, v) = vars_with(external(), &device(), &profile(), "VVX_500");
    assert_eq!(v("PROTO").0, "https");
    assert_eq!(v("PROV_SERVER").0, "dms.example.com");
    assert_eq!(v("PROV_MODEL_SEGMENT").0, "VVX_500");
    assert_eq!(v("PROV_PATH").0, "/provisioning/VVX_500/");
    assert_eq!(v("PROV_USER").0, "dmsuser");
    assert_eq!(v("PROV_PASSWORD").0, "dms pw");
    assert_eq!(
        v("PROTO_URL").0,
        "https://dmsuser:dms%20pw@dms.example.com/provisioning/VVX_500/"
    );
    assert_eq!(v("FIRMWARE_SERVER").0, "dms.example.com");
    assert_eq!(v("FIRMWARE_PATH").0, "/provisioning/firmware/");
    // The management server is still the PBX.
    assert_eq!(v("REG_SERVER").0, "pbx.example.com");
    assert_eq!(v("NTP_SERVER").0, "pbx.example.com");

    let (_, v) = vars_with(
        ProvSettings {
            external_firmware_server: "cdn.example.com".into(),
            ..external()
        },
        &device(),
        &profile(),
        "",
    );
    assert_eq!(
        v("FIRMWARE_SERVER"),
        (
            "cdn.example.com".into(),
            "settings.external_firmware_server".into()
        )
    );
    // No reported model: the vendor model is the segment.
    assert_eq!(v("PROV_MODEL_SEGMENT").0, "Polycom_UCS_Device");
}

#[test]
fn model_segments_are_sanitised() {
    assert_eq!(model_segment("VVX_500", "x"), "VVX_500");
    assert_eq!(
        model_segment("", "Polycom Video Endpoint"),
        "Polycom_Video_Endpoint"
    );
    assert_eq!(model_segment("../../etc", "x"), ".._.._etc");
    assert_eq!(model_segment("..", "x"), "unknown");
    assert_eq!(model_segment("a/b\\c\0", "x"), "a_b_c_");
    assert_eq!(model_segment(&"m".repeat(100), "x").len(), 64);
}

#[test]
fn firmware_variables_name_the_profiles_version() {
    let mut p = profile();
    p.fields.software.insert(Family::Vvx, "5.9.8.1234".into());
    p.fields.software.insert(Family::Trio, "7.2.2.1094".into());
    let (_, v) = vars_with(ProvSettings::default(), &device(), &p, "VVX_500");
    assert_eq!(v("FIRMWARE").0, "sip.ld");
    assert_eq!(v("FIRMWARE_PATH").0, "/firmware/5.9.8.1234/");
    assert_eq!(
        v("FIRMWARE_URL").0,
        "http://10.0.0.5:8080/firmware/5.9.8.1234/sip.ld"
    );
    let (_, v) = vars_with(ProvSettings::default(), &device(), &p, "Trio_8800");
    assert_eq!(v("FIRMWARE_PATH").0, "/firmware/7.2.2.1094/");
    // Two versions and no model: no way to choose.
    let (_, v) = vars_with(ProvSettings::default(), &device(), &p, "");
    assert_eq!(v("FIRMWARE").0, "");
    // One version: it applies whatever the model.
    p.fields.software.remove(&Family::Trio);
    let (_, v) = vars_with(ProvSettings::default(), &device(), &p, "");
    assert_eq!(v("FIRMWARE_PATH").0, "/firmware/5.9.8.1234/");
}

#[test]
fn device_and_tenant_variables() {
    let mut d = device();
    d.vars = DeviceVars {
        label: "Lobby".into(),
        tl_timezone: "-18000".into(),
        tl_timezone_name: "US/Eastern".into(),
        default_parkext: "700".into(),
        override_attrs: r#"a.b="1""#.into(),
    };
    let (_, v) = vars_with(ProvSettings::default(), &d, &profile(), "");
    assert_eq!(v("MAC").0, "0004F2AABBCC");
    assert_eq!(v("mac").0, "0004f2aabbcc");
    assert_eq!(v("TENANT").0, "Acme");
    assert_eq!(v("TENANT_ID").0, "7");
    assert_eq!(v("LABEL"), ("Lobby".into(), "device label".into()));
    assert_eq!(v("TL_TIMEZONE").0, "-18000");
    assert_eq!(v("TL_TIMEZONE_NAME").0, "US/Eastern");
    assert_eq!(v("DEFAULT_PARKEXT").0, "700");
    assert_eq!(v("OVERRIDE").0, r#"a.b="1""#);
}

#[test]
fn line_variables_and_their_defaults() {
    let mut d = device();
    d.vars.label = "Lobby".into();
    d.lines = vec![
        Line {
            line: 1,
            auth_user_id: "100".into(),
            auth_password: "pw1".into(),
            label: "Front".into(),
            display_name: "Front Desk".into(),
            extension: "1100".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
        },
        Line {
            line: 2,
            auth_user_id: "101".into(),
            first_name: "Bob".into(),
            last_name: "Ray".into(),
            ..Default::default()
        },
    ];
    let (set, v) = vars_with(ProvSettings::default(), &d, &profile(), "");
    // Outside a block: line 1, but LABEL stays the device's.
    assert_eq!(v("LINE").0, "1");
    assert_eq!(v("LINE_ZERO_BASED").0, "0");
    assert_eq!(v("USERID").0, "100");
    assert_eq!(v("PASSWORD").0, "pw1");
    assert_eq!(
        v("EXTENSION"),
        ("1100".into(), "device line 1 extension".into())
    );
    assert_eq!(v("DISPLAY_NAME").0, "Front Desk");
    assert_eq!(v("FIRST_NAME").0, "Ann");
    assert_eq!(v("LAST_NAME").0, "Lee");
    assert_eq!(v("LINE_LABEL").0, "Front");
    assert_eq!(v("LABEL").0, "Lobby");
    assert_eq!(set.lines.len(), 2);
    let (n, l2) = &set.lines[1];
    assert_eq!(*n, 2);
    assert_eq!(l2.get("LINE"), Some("2"));
    assert_eq!(l2.get("LINE_ZERO_BASED"), Some("1"));
    assert_eq!(l2.get("EXTENSION"), Some("101"), "defaults to USERID");
    assert!(
        l2.source("EXTENSION")
            .unwrap_or_default()
            .contains("= USERID")
    );
    assert_eq!(
        l2.get("DISPLAY_NAME"),
        Some("Bob Ray"),
        "defaults to the names"
    );
    assert_eq!(
        l2.get("LABEL"),
        Some(""),
        "inside a block LABEL is the line label"
    );
    assert_eq!(set.lines[0].1.get("LABEL"), Some("Front"));
    // Device-level values are there inside blocks too.
    assert_eq!(l2.get("MAC"), Some("0004F2AABBCC"));
}

#[test]
fn a_device_without_lines_has_empty_line_variables() {
    let v = local(ProvSettings::default());
    assert_eq!(v("LINE").0, "1");
    assert_eq!(v("USERID").0, "");
    assert_eq!(v("PASSWORD").0, "");
    assert_eq!(v("DISPLAY_NAME").0, "");
}

#[test]
fn custom_variables_are_available_below_the_builtins() {
    let ctx = Context {
        settings: ProvSettings::default(),
        custom: [("SYSLOG_SERVER".to_string(), "10.0.0.9".to_string())].into(),
        tftp_port: None,
        ftp_port: None,
    };
    let (a, d, p, r) = (account(), device(), profile(), reach());
    let set = for_device(
        &ctx,
        &Subject {
            account: &a,
            device: &d,
            profile: &p,
            reach: &r,
            model: "",
        },
    );
    assert_eq!(set.device.get("SYSLOG_SERVER"), Some("10.0.0.9"));
    assert_eq!(
        set.device.source("SYSLOG_SERVER").as_deref(),
        Some("custom variable SYSLOG_SERVER")
    );
}

#[test]
fn ports_are_stripped_from_hosts() {
    assert_eq!(strip_port("10.0.0.5:8080"), "10.0.0.5");
    assert_eq!(strip_port("pbx"), "pbx");
    assert_eq!(strip_port("[::1]:8080"), "[::1]");
    assert_eq!(strip_port("::1"), "::1");
}

#[test]
fn tftp_names_the_tftp_port_and_no_credentials() {
    let settings = ProvSettings {
        default_protocol: "tftp".into(),
        ..Default::default()
    };
    let (a, d, p, r) = (account(), device(), profile(), reach());
    for (port, server) in [
        (None, "10.0.0.5"),
        (Some(69), "10.0.0.5"),
        (Some(6969), "10.0.0.5:6969"),
    ] {
        let ctx = Context {
            settings: settings.clone(),
            custom: BTreeMap::new(),
            tftp_port: port,
            ftp_port: None,
        };
        let set = for_device(
            &ctx,
            &Subject {
                account: &a,
                device: &d,
                profile: &p,
                reach: &r,
                model: "",
            },
        );
        let v = &set.device;
        assert_eq!(v.get("PROV_SERVER"), Some(server), "{port:?}");
        assert_eq!(
            v.get("PROTO_URL").map(String::from),
            Some(format!("tftp://{server}/")),
            "no HTTP port, no credentials in a tftp URL"
        );
        assert_eq!(v.get("FIRMWARE_SERVER"), Some(server));
    }
}

#[test]
fn ftp_names_the_ftp_port_not_the_http_port() {
    let (a, d, p, r) = (account(), device(), profile(), reach());
    for (proto, port, server) in [
        ("ftp", None, "10.0.0.5"),
        ("ftp", Some(21), "10.0.0.5"),
        ("ftp", Some(2121), "10.0.0.5:2121"),
        ("ftps", Some(2121), "10.0.0.5:2121"),
    ] {
        let ctx = Context {
            settings: ProvSettings {
                default_protocol: proto.into(),
                ..Default::default()
            },
            custom: BTreeMap::new(),
            tftp_port: None,
            ftp_port: port,
        };
        let set = for_device(
            &ctx,
            &Subject {
                account: &a,
                device: &d,
                profile: &p,
                reach: &r,
                model: "",
            },
        );
        let v = &set.device;
        assert_eq!(v.get("PROV_SERVER"), Some(server), "{proto} {port:?}");
        let url = v.get("PROTO_URL").unwrap_or_default();
        assert!(
            url.starts_with(&format!("{proto}://")) && url.ends_with(&format!("{server}/")),
            "{url}"
        );
    }
}
