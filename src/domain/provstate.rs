//! Desired and confirmed provisioning state (DESIGN §6): the one mechanism through which
//! every `device.*` parameter reaches a phone.
//!
//! Per device we know the platform parameters we want it to hold (desired, computed from
//! the profile, the vendor extensions and the address the phone uses) and those we have
//! evidence it holds (confirmed, stored). Only the difference is rendered, with
//! `device.set="1"`: a steady-state file carries no `device.set`, because platform changes
//! reboot the phone. A change is confirmed only on evidence:
//! - every change must first have been *delivered* (the phone fetched a generated file
//!   carrying it);
//! - then the phone asks for its master file again (it rebooted to apply it), and, for the
//!   server address and type, that request arrives at the desired address over the desired
//!   scheme, and for credentials, it authenticated with the desired ones;
//! - `device.prov.tagSerialNo=1` is confirmed by a User-Agent carrying `(SN:<mac>)`;
//! - the platform CA (and the TLS profile settings that make provisioning use it) is
//!   confirmed when the phone fetches its TLS probe file over HTTPS: the master lists the
//!   probe as an absolute `https://` URL while the CA is pending, and a phone can fetch it
//!   only once it trusts our certificate.
//!
//! Auto-Sync (`domain::autosync`) adds the account's credentials and service address to the
//! desired state of every device it may sync (`Layers::sync`): server type (HTTPS only once
//! the device is confirmed to trust our CA, or already reaches us over HTTPS), boot server
//! `Static`, server address, user and password. Policies on `device.*` parameters come in at
//! their level of DESIGN §5.

use std::collections::BTreeMap;

use super::account::Account;
use super::device::Device;
use super::policy::{CredentialLayer, Layers};
use super::polycom::models::Family;
use super::polycom::params::{self, Key};
use super::profile::Profile;
use super::provserver::ServerUrl;

/// How the phone reached us on this request: used when a profile asks for boot server
/// `Static` without naming a server (we then keep the phone on the address that worked).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reach {
    /// `Host` header as sent (host and optional port).
    pub host: String,
    /// Base path of the account, `/` or `/<slug>-<key>/`.
    pub base_path: String,
    pub secure: bool,
}

impl Reach {
    /// `device.prov.serverName` value for this address: host, port and base path.
    pub fn server_name(&self) -> String {
        let path = self.base_path.trim_end_matches('/');
        format!("{}{}", self.host, path)
    }

    /// The host without its port (`[v6]` keeps its brackets).
    pub fn bare_host(&self) -> &str {
        let host = &self.host;
        if let Some(end) = host.find(']') {
            &host[..=end]
        } else {
            host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
        }
    }

    /// The address a device of `account` should keep: this host, and the account's current
    /// service address when the phone came through a service address or one of its aliases
    /// (the default account's `/` stays `/`). With `https_port`, the host moves to that
    /// port (the switch from HTTP to HTTPS).
    pub fn canonical_server_name(&self, account: &Account, https_port: Option<u16>) -> String {
        let path = if self.base_path == "/" {
            String::new()
        } else {
            account.service_path().trim_end_matches('/').to_string()
        };
        let host = match https_port {
            Some(port) if !self.secure => match port {
                443 => self.bare_host().to_string(),
                p => format!("{}:{p}", self.bare_host()),
            },
            _ => self.host.clone(),
        };
        format!("{host}{path}")
    }

    pub fn server_type(&self) -> &'static str {
        if self.secure { "HTTPS" } else { "HTTP" }
    }
}

/// The CA zerotouch wants phones to trust for provisioning, and where they prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneTrust {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Port of the device HTTPS listener, for the probe URL.
    pub https_port: u16,
}

impl PhoneTrust {
    /// The absolute URL of a device's TLS probe, on the host the phone used.
    pub fn probe_url(&self, reach: &Reach, mac: &str) -> String {
        let bare = reach.bare_host();
        format!(
            "https://{bare}:{}{}{mac}-tls-probe.cfg",
            self.https_port, reach.base_path
        )
    }
}

/// The `device.*` names of the trust parameters.
fn trust_names() -> [String; 3] {
    [
        Key::PlatformCaCert,
        Key::PlatformCaList,
        Key::ProvTlsProfile,
    ]
    .map(|k| params::name(Family::Vvx, k, 1).unwrap_or_default())
}

/// Whether a trust change (the CA) is pending among `pending` parameter names.
pub fn trust_pending<'a>(mut pending: impl Iterator<Item = &'a str>) -> bool {
    let names = trust_names();
    pending.any(|p| names.iter().any(|n| n == p))
}

/// Where a value comes from, in precedence order (highest first, DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A pending provisioning change (credentials, server, trust, scheme).
    Pending,
    /// Auto-Sync: the account's credentials and service address (a desired value; rendered
    /// as `Pending` while the device does not hold it).
    AutoSync,
    /// The device: its vendor extensions, lines and device-level policy.
    Device,
    /// A device group's policy (higher priority first; equal priorities oldest first).
    Group,
    /// The device's site's policy.
    Site,
    /// The account policy.
    Account,
    /// The profile's fields.
    Profile,
    /// One of the profile's files (served after the generated file).
    ProfileFile,
    /// zerotouch's own defaults (e.g. `device.prov.tagSerialNo`).
    Server,
    /// The device's own credential (per-device credentials, DESIGN §6).
    DeviceCredential,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Pending => "pending change",
            Source::AutoSync => "Auto-Sync",
            Source::Device => "device",
            Source::Group => "group",
            Source::Site => "site",
            Source::Account => "account policy",
            Source::Profile => "profile",
            Source::ProfileFile => "profile file",
            Source::Server => "zerotouch default",
            Source::DeviceCredential => "per-device credential",
        }
    }
}

/// A desired platform parameter value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub value: String,
    pub source: Source,
}

/// Stored knowledge about one platform parameter of one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamState {
    pub confirmed: Option<String>,
    pub delivered: Option<String>,
}

/// Whether the device is known to trust the CA delivered to phones.
pub fn ca_confirmed(state: &BTreeMap<String, ParamState>, trust: Option<&PhoneTrust>) -> bool {
    let Some(t) = trust else { return false };
    let name = params::name(Family::Vvx, Key::PlatformCaCert, 1).unwrap_or_default();
    state.get(&name).and_then(|s| s.confirmed.as_deref()) == Some(t.ca_pem.as_str())
}

/// The Auto-Sync values of a device (DESIGN §6, seed 004), first among the desired values.
/// UCS: server type (HTTPS once the device trusts our CA or already reaches us over HTTPS),
/// boot server `Static`, server address, user, password. Poly OS: server address, user,
/// password (names from the Poly OS table; *verify*).
fn autosync_values(
    account: &Account,
    reach: &Reach,
    state: &BTreeMap<String, ParamState>,
    trust: Option<&PhoneTrust>,
    layers: &Layers,
    out: &mut BTreeMap<String, Desired>,
) {
    let Some(sync) = &layers.sync else { return };
    let family = sync.family;
    let mut put = |key: Key, value: String| {
        if let Some(name) = params::name(family, key, 1) {
            out.entry(name).or_insert(Desired {
                value,
                source: Source::AutoSync,
            });
        }
    };
    // Without a Host header the address is unknown: send the credentials only, since
    // Static without a server would strand the phone.
    if !reach.host.is_empty() {
        let switch = if reach.secure {
            None
        } else {
            trust
                .filter(|_| ca_confirmed(state, trust))
                .map(|t| t.https_port)
        };
        let https = reach.secure || switch.is_some();
        if family.is_ucs() {
            put(
                Key::ProvServerType,
                if https { "HTTPS" } else { "HTTP" }.to_string(),
            );
            put(Key::DhcpBootSrvUseOpt, "Static".to_string());
        }
        put(
            Key::ProvServerName,
            reach.canonical_server_name(account, switch),
        );
    }
    put(Key::ProvUser, sync.user.clone());
    put(Key::ProvPassword, sync.password.clone());
}

/// The desired `device.*` parameters of a device: Auto-Sync first, then the device's vendor
/// extensions, device-level policies on `device.*`, group, site and account policies, the
/// profile's fields, and zerotouch's own (the serial tag, the CA).
pub fn desired(
    account: &Account,
    device: &Device,
    profile: &Profile,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
    state: &BTreeMap<String, ParamState>,
    layers: &Layers,
) -> BTreeMap<String, Desired> {
    let family = Family::Vvx; // every UCS family shares one table
    let mut out: BTreeMap<String, Desired> = BTreeMap::new();
    if let CredentialLayer::Device {
        user,
        password,
        family: own_family,
    } = &layers.credentials
    {
        let own_family = if own_family.is_ucs() {
            family
        } else {
            *own_family
        };
        for (key, value) in [(Key::ProvUser, user), (Key::ProvPassword, password)] {
            if let Some(name) = params::name(own_family, key, 1) {
                out.insert(
                    name,
                    Desired {
                        value: value.clone(),
                        source: Source::DeviceCredential,
                    },
                );
            }
        }
    }
    autosync_values(account, reach, state, trust, layers, &mut out);
    let mut put = |key: Key, value: String, source: Source| {
        if let Some(name) = params::name(family, key, 1) {
            out.entry(name).or_insert(Desired { value, source });
        }
    };

    // The provisioning server: vendor extension first, then the profile.
    let ext = &device.ext;
    let pf = &profile.fields;
    let (server, server_source) = if !ext.prov_server.is_empty() {
        (Some(&ext.prov_server), Source::Device)
    } else if !pf.prov_server.is_empty() {
        (Some(&pf.prov_server), Source::Profile)
    } else {
        (None, Source::Profile)
    };
    let parsed = server.and_then(|s| ServerUrl::parse(s).ok());
    let user_override = [
        (&ext.prov_user, Source::Device),
        (&pf.prov_user, Source::Profile),
    ]
    .into_iter()
    .find(|(v, _)| !v.is_empty());
    let pass_override = [
        (&ext.prov_password, Source::Device),
        (&pf.prov_password, Source::Profile),
    ]
    .into_iter()
    .find(|(v, _)| !v.is_empty());
    if let Some(url) = &parsed {
        put(Key::ProvServerName, url.server_name(), server_source);
        if let Some(t) = url.server_type {
            put(Key::ProvServerType, t.to_string(), server_source);
        }
        if !url.user.is_empty() {
            put(Key::ProvUser, url.user.clone(), server_source);
        }
        if !url.password.is_empty() {
            put(Key::ProvPassword, url.password.clone(), server_source);
        }
    }
    if let Some((user, source)) = user_override {
        put(Key::ProvUser, user.clone(), source);
    }
    if let Some((pass, source)) = pass_override {
        put(Key::ProvPassword, pass.clone(), source);
    }
    // Policies on other platform parameters, in precedence order (their parameters never
    // overlap the provisioning server fields above: `policy` refuses those).
    for p in layers
        .policies
        .iter()
        .filter(|p| params::is_device_param(&p.parameter))
    {
        out.entry(p.parameter.clone()).or_insert(Desired {
            value: p.value.clone(),
            source: p.source,
        });
    }
    let mut put = |key: Key, value: String, source: Source| {
        if let Some(name) = params::name(family, key, 1) {
            out.entry(name).or_insert(Desired { value, source });
        }
    };
    // Static without a server would strand the phone: keep it on the address it used, with
    // the credentials it authenticated with. Without a Host header that address is unknown,
    // so the boot-server setting is not sent at all.
    let static_unknown =
        pf.boot_server_option == "Static" && parsed.is_none() && reach.host.is_empty();
    if !pf.boot_server_option.is_empty() && !static_unknown {
        put(
            Key::DhcpBootSrvUseOpt,
            pf.boot_server_option.clone(),
            Source::Profile,
        );
        if pf.boot_server_option == "Static" && parsed.is_none() {
            put(
                Key::ProvServerName,
                reach.canonical_server_name(account, None),
                Source::Server,
            );
            put(
                Key::ProvServerType,
                reach.server_type().to_string(),
                Source::Server,
            );
            if let (Some(u), Some(p)) = (&account.device_user, &account.device_password) {
                put(Key::ProvUser, u.clone(), Source::Server);
                put(Key::ProvPassword, p.clone(), Source::Server);
            }
        }
    }
    if !pf.option60_type.is_empty() {
        put(
            Key::DhcpOption60Type,
            pf.option60_type.clone(),
            Source::Profile,
        );
    }
    // Requests that name no MAC (firmware) are attributed through the serial tag.
    put(Key::ProvTagSerialNo, "1".into(), Source::Server);
    if let Some(t) = trust {
        put(Key::PlatformCaCert, t.ca_pem.clone(), Source::Server);
        put(
            Key::PlatformCaList,
            params::PLATFORM_CA_LIST.into(),
            Source::Server,
        );
        put(
            Key::ProvTlsProfile,
            params::PROV_TLS_PROFILE.into(),
            Source::Server,
        );
    }
    if layers.credentials == CredentialLayer::Withheld {
        for key in [Key::ProvUser, Key::ProvPassword] {
            if let Some(name) = params::name(family, key, 1) {
                out.remove(&name);
            }
        }
    }
    out
}

/// The desired parameters the phone is not known to hold.
pub fn pending<'a>(
    desired: &'a BTreeMap<String, Desired>,
    state: &BTreeMap<String, ParamState>,
) -> BTreeMap<&'a str, &'a Desired> {
    desired
        .iter()
        .filter(|(name, d)| {
            state.get(*name).and_then(|s| s.confirmed.as_deref()) != Some(d.value.as_str())
        })
        .map(|(n, d)| (n.as_str(), d))
        .collect()
}

/// Evidence carried by one request of a device.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The request is for the device's master file (`<mac>.cfg`).
    pub master_fetch: bool,
    pub reach: &'a Reach,
    /// Credentials the request authenticated with.
    pub auth: Option<(&'a str, &'a str)>,
    /// The User-Agent carried `(SN:<this mac>)`.
    pub serial_tag: bool,
    /// The request fetched the device's TLS probe file over HTTPS.
    pub tls_probe: bool,
    /// The credential generation the request authenticated with (Auto-Sync's evidence).
    pub generation: Option<i64>,
    /// The family the User-Agent names.
    pub family: Option<Family>,
}

/// Which pending parameters this request confirms, with the confirmed value.
pub fn confirmations(
    desired: &BTreeMap<String, Desired>,
    state: &BTreeMap<String, ParamState>,
    ev: &Evidence<'_>,
) -> Vec<(String, String)> {
    let name = |k| params::name(Family::Vvx, k, 1).unwrap_or_default();
    let (server_name, server_type, user, password, tag) = (
        name(Key::ProvServerName),
        name(Key::ProvServerType),
        name(Key::ProvUser),
        name(Key::ProvPassword),
        name(Key::ProvTagSerialNo),
    );
    let trust = trust_names();
    let mut out = Vec::new();
    for (param, d) in pending(desired, state) {
        let delivered =
            state.get(param).and_then(|s| s.delivered.as_deref()) == Some(d.value.as_str());
        let ok = if param == tag {
            ev.serial_tag && d.value == "1"
        } else if trust.iter().any(|t| t == param) {
            // Only a phone that trusts our certificate can fetch the probe over HTTPS.
            delivered && ev.tls_probe
        } else if !(delivered && ev.master_fetch) {
            false
        } else if param == server_name {
            d.value.eq_ignore_ascii_case(&ev.reach.server_name())
        } else if param == server_type {
            d.value.eq_ignore_ascii_case(ev.reach.server_type())
        } else if param == user {
            ev.auth.is_some_and(|(u, _)| u == d.value)
        } else if param == password {
            ev.auth.is_some_and(|(_, p)| p == d.value)
        } else {
            true
        };
        if ok {
            out.push((param.to_string(), d.value.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        };
        assert!(confirmations(&want, &state, &ev).is_empty());
        state.insert(
            "device.dhcp.option60Type".to_string(),
            ParamState {
                confirmed: None,
                delivered: Some("ASCII".into()),
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
            vec![("device.dhcp.option60Type".to_string(), "ASCII".to_string())]
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
        };
        let got = confirmations(&want, &BTreeMap::new(), &ev);
        assert_eq!(
            got,
            vec![("device.prov.tagSerialNo".to_string(), "1".to_string())]
        );
        let mut state = BTreeMap::new();
        state.insert(
            "device.prov.tagSerialNo".into(),
            ParamState {
                confirmed: Some("1".into()),
                delivered: None,
            },
        );
        assert!(pending(&want, &state).is_empty());
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
        assert!(trust_pending(pending(&want, &BTreeMap::new()).into_keys()));
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
                },
            );
        }
        assert!(
            confirmations(&want, &state, &master)
                .iter()
                .all(|(k, _)| !trust_names().contains(k)),
            "a master fetch over HTTP proves nothing about trust"
        );
        let got: Vec<String> = confirmations(&want, &state, &probe)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
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
        };
        assert!(
            confirmations(&want, &state, &ev)
                .iter()
                .all(|(k, _)| k != "device.prov.serverName")
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
                .any(|(k, _)| k == "device.prov.serverName")
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
            },
        );
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
    fn the_devices_own_credential_comes_first_and_withheld_means_no_credential_at_all() {
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
        layers.credentials = CredentialLayer::Withheld;
        let want = desired(&a, &d, &p, &r, None, &BTreeMap::new(), &layers);
        assert!(!want.contains_key("device.prov.user"), "{want:?}");
        assert!(!want.contains_key("device.prov.password"), "{want:?}");
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
}
