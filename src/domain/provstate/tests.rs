use super::*;
use crate::domain::account::{AccountId, UnknownDevices};
use crate::domain::device::VendorExtensions;
use crate::domain::mac::Mac;
use crate::domain::profile::ProfileFields;

fn fixture() -> (Account, Device, Profile, Reach) {
    let account = Account {
        id: AccountId(1),
        name: "Default".into(),
        slug: "default".into(),
        service_key: "k".into(),
        is_default: true,
        provisioning_enabled: true,
        device_user: Some("prov".into()),
        device_password: Some("secretsecret".into()),
        credential_generation: 1,
        autosync_enabled: true,
        unknown_devices: UnknownDevices::Stage,
        default_profile_id: None,
        device_secrets: false,
        tftp_credential: false,
        ftp_factory_login: true,
        sip: Default::default(),
    };
    let device = Device {
        id: 1,
        account_id: 1,
        mac: Mac::from_bare("0004f2aabbcc").expect("mac"),
        serial: "0004F2AABBCC".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        profile_id: Some(1),
        profile_name: Some("p".into()),
        ext: VendorExtensions::default(),
        lines: vec![],
        auto_associated: false,
        vars: Default::default(),
    };
    let profile = Profile {
        id: 1,
        account_id: 1,
        fields: ProfileFields {
            name: "p".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            ..Default::default()
        },
        files: vec![],
    };
    let reach = Reach {
        host: "10.0.0.5:8080".into(),
        base_path: "/".into(),
        secure: false,
    };
    (account, device, profile, reach)
}

#[test]
fn static_without_a_server_keeps_the_phone_where_it_is() {
    let (a, d, mut p, r) = fixture();
    p.fields.boot_server_option = "Static".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    assert_eq!(want["device.prov.serverName"].value, "10.0.0.5:8080");
    assert_eq!(want["device.prov.serverType"].value, "HTTP");
    assert_eq!(want["device.prov.user"].value, "prov");
    assert_eq!(want["device.dhcp.bootSrvUseOpt"].value, "Static");
}

#[test]
fn static_is_not_sent_when_the_address_is_unknown() {
    let (a, d, mut p, _) = fixture();
    p.fields.boot_server_option = "Static".into();
    let r = Reach {
        host: String::new(),
        base_path: "/".into(),
        secure: false,
    };
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    assert!(!want.contains_key("device.dhcp.bootSrvUseOpt"));
    assert!(!want.contains_key("device.prov.serverName"));
}

#[test]
fn the_device_extension_beats_the_profile() {
    let (a, mut d, mut p, r) = fixture();
    p.fields.prov_server = "http://a:b@profile.example.com/".into();
    d.ext.prov_server = "https://device.example.com:8443/x".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    assert_eq!(
        want["device.prov.serverName"].value,
        "device.example.com:8443/x"
    );
    assert_eq!(want["device.prov.serverName"].source, Source::Device);
    assert_eq!(want["device.prov.serverType"].value, "HTTPS");
    assert!(
        !want.contains_key("device.prov.user"),
        "the device URL carries no user"
    );
}

/// An address stored before addresses had to name a protocol is sent with a server type:
/// the one the phone reaches this server with (without one, the phone would use its own,
/// FTP at the factory).
#[test]
fn a_stored_address_without_a_protocol_is_sent_with_a_server_type() {
    let (a, d, mut p, r) = fixture();
    p.fields.prov_server = "profile.example.com/cfg".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    assert_eq!(
        want["device.prov.serverName"].value,
        "profile.example.com/cfg"
    );
    assert_eq!(want["device.prov.serverType"].value, "HTTP");
    let secure = Reach { secure: true, ..r };
    let want = desired(
        &a,
        &d,
        &p,
        &secure,
        None,
        &BTreeMap::new(),
        &Layers::default(),
    );
    assert_eq!(want["device.prov.serverType"].value, "HTTPS");
}

#[test]
fn nothing_is_confirmed_before_delivery_and_a_reboot() {
    let (a, d, mut p, r) = fixture();
    p.fields.option60_type = "ASCII".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    let mut state = BTreeMap::new();
    let ev = Evidence {
        master_fetch: true,
        reach: &r,
        auth: Some(("prov", "secretsecret")),
        serial_tag: false,
        tls_probe: false,
        generation: None,
        family: None,
        proven: false,
        address: None,
    };
    assert!(confirmations(&want, &state, &ev).is_empty());
    state.insert(
        "device.dhcp.option60Type".to_string(),
        ParamState {
            confirmed: None,
            delivered: Some("ASCII".into()),
            ..Default::default()
        },
    );
    let not_master = Evidence {
        master_fetch: false,
        ..ev.clone()
    };
    assert!(confirmations(&want, &state, &not_master).is_empty());
    let got = confirmations(&want, &state, &ev);
    assert_eq!(
        got,
        vec![(
            "device.dhcp.option60Type".to_string(),
            "ASCII".to_string(),
            "reboot"
        )]
    );
}

#[test]
fn the_serial_tag_confirms_itself() {
    let (a, d, p, r) = fixture();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    let ev = Evidence {
        master_fetch: false,
        reach: &r,
        auth: None,
        serial_tag: true,
        tls_probe: false,
        generation: None,
        family: None,
        proven: false,
        address: None,
    };
    let got = confirmations(&want, &BTreeMap::new(), &ev);
    assert_eq!(
        got,
        vec![(
            "device.prov.tagSerialNo".to_string(),
            "1".to_string(),
            "request"
        )]
    );
    let mut state = BTreeMap::new();
    state.insert(
        "device.prov.tagSerialNo".into(),
        ParamState {
            confirmed: Some("1".into()),
            delivered: None,
            ..Default::default()
        },
    );
    assert!(pending(&want, &state, None).is_empty());
}

#[test]
fn credentials_ride_along_with_an_address_change_even_when_the_request_carried_them() {
    let d = |v: &str| Desired {
        value: v.into(),
        source: Source::AutoSync,
    };
    let mut want = BTreeMap::new();
    want.insert("device.prov.user".to_string(), d("phones"));
    want.insert("device.prov.password".to_string(), d("secret"));
    let held = Some(("phones", "secret"));
    assert!(
        pending(&want, &BTreeMap::new(), held).is_empty(),
        "it holds them"
    );
    want.insert("device.dhcp.bootSrvUseOpt".to_string(), d("Static"));
    let got: Vec<&str> = pending(&want, &BTreeMap::new(), held).into_keys().collect();
    assert_eq!(
        got,
        [
            "device.dhcp.bootSrvUseOpt",
            "device.prov.password",
            "device.prov.user"
        ],
        "the phone may hold them only in its DHCP URL, which Static stops it using"
    );
}

#[test]
fn the_ca_is_confirmed_only_by_the_probe_after_delivery() {
    let (a, d, p, r) = fixture();
    let trust = PhoneTrust {
        ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        https_port: 8443,
    };
    let want = desired(
        &a,
        &d,
        &p,
        &r,
        Some(&trust),
        &BTreeMap::new(),
        &Layers::default(),
    );
    let ca = "device.sec.TLS.customCaCert1";
    assert_eq!(want[ca].value, trust.ca_pem);
    assert!(trust_pending(
        pending(&want, &BTreeMap::new(), None).into_keys()
    ));
    assert_eq!(
        trust.probe_url(&r, "0004f2aabbcc"),
        "https://10.0.0.5:8443/0004f2aabbcc-tls-probe.cfg"
    );
    let mut state = BTreeMap::new();
    let master = Evidence {
        master_fetch: true,
        reach: &r,
        auth: None,
        serial_tag: false,
        tls_probe: false,
        generation: None,
        family: None,
        proven: false,
        address: None,
    };
    let probe = Evidence {
        master_fetch: false,
        tls_probe: true,
        ..master.clone()
    };
    assert!(
        confirmations(&want, &state, &probe).is_empty(),
        "not delivered yet"
    );
    for name in trust_names() {
        state.insert(
            name.clone(),
            ParamState {
                confirmed: None,
                delivered: Some(want[&name].value.clone()),
                ..Default::default()
            },
        );
    }
    assert!(
        confirmations(&want, &state, &master)
            .iter()
            .all(|(k, _, _)| !trust_names().contains(k)),
        "a master fetch over HTTP proves nothing about trust"
    );
    let got: Vec<String> = confirmations(&want, &state, &probe)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    // The CA and the profile selection; the profile's CA list is left at the phone's default.
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!want.contains_key("device.sec.TLS.profile.caCertList1"));
}

#[test]
fn a_server_change_is_confirmed_only_at_the_new_address() {
    let (a, mut d, p, r) = fixture();
    d.ext.prov_server = "http://new.example.com".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    let mut state = BTreeMap::new();
    state.insert(
        "device.prov.serverName".into(),
        ParamState {
            confirmed: None,
            delivered: Some("new.example.com".into()),
            ..Default::default()
        },
    );
    let ev = Evidence {
        master_fetch: true,
        reach: &r,
        auth: None,
        serial_tag: false,
        tls_probe: false,
        generation: None,
        family: None,
        proven: false,
        address: None,
    };
    assert!(
        confirmations(&want, &state, &ev)
            .iter()
            .all(|(k, _, _)| k != "device.prov.serverName")
    );
    let there = Reach {
        host: "new.example.com".into(),
        base_path: "/".into(),
        secure: false,
    };
    let ev = Evidence {
        reach: &there,
        ..ev
    };
    assert!(
        confirmations(&want, &state, &ev)
            .iter()
            .any(|(k, _, _)| k == "device.prov.serverName")
    );
}
fn synced() -> Layers {
    Layers {
        sync: Some(crate::domain::policy::SyncTarget {
            user: "prov".into(),
            password: "secretsecret".into(),
            family: Family::Vvx,
        }),
        policies: vec![],
        ..Default::default()
    }
}

#[test]
fn auto_sync_sets_static_the_address_and_the_credentials() {
    let (a, d, p, r) = fixture();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &synced());
    let value = |k: &str| want[k].value.as_str();
    assert_eq!(value("device.prov.serverType"), "HTTP");
    assert_eq!(value("device.dhcp.bootSrvUseOpt"), "Static");
    assert_eq!(value("device.prov.serverName"), "10.0.0.5:8080");
    assert_eq!(value("device.prov.user"), "prov");
    assert_eq!(value("device.prov.password"), "secretsecret");
    assert_eq!(want["device.prov.user"].source, Source::AutoSync);
    // Through an alias of another account, the current service address is desired.
    let mut other = a.clone();
    other.is_default = false;
    let alias = Reach {
        base_path: "/branch-oldkey/".into(),
        ..r.clone()
    };
    let want = desired(&other, &d, &p, &alias, None, &BTreeMap::new(), &synced());
    assert_eq!(
        want["device.prov.serverName"].value,
        format!(
            "10.0.0.5:8080{}",
            other.service_path().trim_end_matches('/')
        )
    );
}

#[test]
fn auto_sync_switches_to_https_only_once_the_ca_is_confirmed() {
    let (a, d, p, r) = fixture();
    let trust = PhoneTrust {
        ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        https_port: 8443,
    };
    let mut state = BTreeMap::new();
    let want = desired(&a, &d, &p, &r, Some(&trust), &state, &synced());
    assert_eq!(
        want["device.prov.serverType"].value, "HTTP",
        "CA not confirmed"
    );
    state.insert(
        "device.sec.TLS.customCaCert1".to_string(),
        ParamState {
            confirmed: Some(trust.ca_pem.clone()),
            delivered: Some(trust.ca_pem.clone()),
            confirmed_by: "request".into(),
            ..Default::default()
        },
    );
    let want = desired(&a, &d, &p, &r, Some(&trust), &state, &synced());
    assert_eq!(
        want["device.prov.serverType"].value, "HTTP",
        "a probe fetched with the account credential proves nothing (anyone can curl -k it)"
    );
    if let Some(s) = state.get_mut("device.sec.TLS.customCaCert1") {
        s.confirmed_by = "proof".into();
    }
    let want = desired(&a, &d, &p, &r, Some(&trust), &state, &synced());
    assert_eq!(want["device.prov.serverType"].value, "HTTPS");
    assert_eq!(want["device.prov.serverName"].value, "10.0.0.5:8443");
    // A phone that already reaches us over HTTPS keeps its address.
    let secure = Reach {
        host: "prov.example.com".into(),
        secure: true,
        ..r
    };
    let want = desired(&a, &d, &p, &secure, None, &BTreeMap::new(), &synced());
    assert_eq!(want["device.prov.serverType"].value, "HTTPS");
    assert_eq!(want["device.prov.serverName"].value, "prov.example.com");
}

#[test]
fn the_devices_own_credential_comes_first() {
    let (a, d, p, r) = fixture();
    let mut layers = synced();
    layers.credentials = CredentialLayer::Device {
        user: "0004f2000001".into(),
        password: "own-password".into(),
        family: Family::Vvx,
    };
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &layers);
    assert_eq!(want["device.prov.user"].value, "0004f2000001");
    assert_eq!(want["device.prov.password"].value, "own-password");
    assert_eq!(
        want["device.prov.password"].source,
        Source::DeviceCredential
    );
    // Auto-Sync's address still applies.
    assert!(want.contains_key("device.prov.serverName"));
}

#[test]
fn poly_os_gets_only_the_names_of_its_table() {
    let (a, d, p, r) = fixture();
    let mut layers = synced();
    if let Some(s) = layers.sync.as_mut() {
        s.family = Family::PolyOs;
    }
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &layers);
    assert_eq!(want["device.prov.user"].source, Source::AutoSync);
    assert!(!want.contains_key("device.dhcp.bootSrvUseOpt"));
    assert_eq!(
        want.get("device.prov.serverType").map(|d| d.source),
        None,
        "Poly OS has no server type parameter in its table"
    );
    assert!(
        want["device.prov.serverName"].value.starts_with("http://"),
        "without a server type, Poly OS needs a full URL: {want:?}"
    );
}

#[test]
fn a_device_policy_on_a_platform_parameter_is_desired_at_its_level() {
    let (a, d, mut p, r) = fixture();
    p.fields.option60_type = "ASCII".into();
    let layers = Layers {
        sync: None,
        policies: vec![crate::domain::policy::PolicyValue {
            parameter: "device.dhcp.option60Type".into(),
            value: "Binary".into(),
            source: Source::Site,
            detail: "site hq".into(),
        }],
        ..Default::default()
    };
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &layers);
    assert_eq!(want["device.dhcp.option60Type"].value, "Binary");
    assert_eq!(want["device.dhcp.option60Type"].source, Source::Site);
}

#[test]
fn a_poly_os_device_gets_full_urls_its_own_ca_name_and_no_server_type_from_every_source() {
    let (a, d, mut p, r) = fixture();
    let poly_os = Layers {
        family: Some(Family::PolyOs),
        ..Layers::default()
    };
    // Boot server Static, no server named: this server, as a full URL.
    p.fields.boot_server_option = "Static".into();
    let trust = PhoneTrust {
        ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        https_port: 8443,
    };
    let want = desired(&a, &d, &p, &r, Some(&trust), &BTreeMap::new(), &poly_os);
    assert_eq!(want["device.prov.serverName"].value, "http://10.0.0.5:8080");
    assert!(!want.contains_key("device.prov.serverType"), "{want:?}");
    assert!(!want.contains_key("device.dhcp.bootSrvUseOpt"), "{want:?}");
    // Its CA slot, not the UCS platform name, and no UCS TLS profile selection.
    assert_eq!(want["sec.TLS.customCaCert.1"].value, trust.ca_pem);
    assert!(
        !want.contains_key("device.sec.TLS.customCaCert1"),
        "{want:?}"
    );
    assert!(
        !want.contains_key("device.sec.TLS.profileSelection.provisioning"),
        "{want:?}"
    );
    // A profile that names another server (stored before addresses needed a protocol):
    // the protocol goes into the URL.
    p.fields.prov_server = "other.example.com/phones".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &poly_os);
    assert_eq!(
        want["device.prov.serverName"].value,
        "http://other.example.com/phones"
    );
    p.fields.prov_server = "https://other.example.com/phones".into();
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &poly_os);
    assert_eq!(
        want["device.prov.serverName"].value,
        "https://other.example.com/phones"
    );
    // The same profile for a UC Software phone: name and type apart, as before.
    let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &Layers::default());
    assert_eq!(
        want["device.prov.serverName"].value,
        "other.example.com/phones"
    );
    assert_eq!(want["device.prov.serverType"].value, "HTTPS");
    // UC Software profiles keep setting `sec.TLS.customCaCert.1` (their SIP CA).
    assert!(!crate::domain::machine::owned("sec.TLS.customCaCert.1"));
    assert!(crate::domain::machine::owned(
        "device.sec.TLS.customCaCert1"
    ));
}
