//! Desired and confirmed provisioning state (docs/design.md §6): the one mechanism through which
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
//! their level of docs/design.md §5.

use std::collections::BTreeMap;

use super::account::Account;
use super::device::Device;
use super::policy::{CredentialLayer, Layers};
use super::polycom::models::Family;
use super::polycom::params::{self, Key};
use super::precedence::{self, Layer, Level};
use super::profile::Profile;
use super::provserver::ServerUrl;
use super::regress::{self, Defect};

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

/// The `device.*` names of the trust parameters zerotouch renders (the profile's CA list is
/// left at the phone's default, see `params`).
fn trust_names() -> [String; 2] {
    [Key::PlatformCaCert, Key::ProvTlsProfile]
        .map(|k| params::name(Family::Vvx, k, 1).unwrap_or_default())
}

/// Whether a trust change (the CA) is pending among `pending` parameter names.
pub fn trust_pending<'a>(mut pending: impl Iterator<Item = &'a str>) -> bool {
    let names = trust_names();
    pending.any(|p| names.iter().any(|n| n == p))
}

/// Where a value comes from, in precedence order (highest first, docs/design.md §5).
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
    /// The device's own credential (per-device credentials, docs/design.md §6.4).
    DeviceCredential,
    /// An override file the phone uploaded (settings made on the phone; never served).
    PhoneOverride,
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
            Source::PhoneOverride => "override on the phone",
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
    /// How often `delivered` was delivered.
    pub deliveries: i64,
    /// How `confirmed` is known: `proof`, `request`, `reboot` or `admin`.
    pub confirmed_by: String,
    /// `delivered` was delivered `machine::GIVE_UP_AFTER` times without being seen applied:
    /// no longer sent (reported).
    pub gave_up: bool,
}

/// Whether `name` is the user-name parameter of a family.
fn is_user(name: &str) -> bool {
    [Family::Vvx, Family::PolyOs]
        .iter()
        .any(|f| params::name(*f, Key::ProvUser, 1).as_deref() == Some(name))
}

/// The credential parameter names (every family): their pending state is decided by the
/// credentials a request carries, never stored (`pending`).
pub fn is_credential(name: &str) -> bool {
    [Family::Vvx, Family::PolyOs].iter().any(|f| {
        [Key::ProvUser, Key::ProvPassword]
            .iter()
            .any(|k| params::name(*f, *k, 1).as_deref() == Some(name))
    })
}

/// The parameters that say where and how the device finds its server (every family): the
/// credentials ride along whenever one of them is delivered, because a phone may hold its
/// credentials only inside the DHCP-supplied URL those parameters stop it using.
fn is_address(name: &str) -> bool {
    [Family::Vvx, Family::PolyOs].iter().any(|f| {
        [
            Key::ProvServerName,
            Key::ProvServerType,
            Key::DhcpBootSrvUseOpt,
        ]
        .iter()
        .any(|k| params::name(*f, *k, 1).as_deref() == Some(name))
    })
}

/// Whether the device is proved to trust the CA delivered to phones: it fetched its probe
/// over HTTPS with its own credential or certificate. A fetch with the account credential
/// proves nothing (anyone can fetch the probe with `curl -k`), and a false "trusts" would
/// switch a phone to a scheme it cannot use (I9).
pub fn ca_confirmed(state: &BTreeMap<String, ParamState>, trust: Option<&PhoneTrust>) -> bool {
    let Some(t) = trust else { return false };
    let name = params::name(Family::Vvx, Key::PlatformCaCert, 1).unwrap_or_default();
    state.get(&name).is_some_and(|s| {
        s.confirmed.as_deref() == Some(t.ca_pem.as_str()) && s.confirmed_by == "proof"
    })
}

/// The Auto-Sync values of a device (docs/design.md §6.3; the Lens Auto-Sync page), first among the desired values.
/// UCS: server type (HTTPS once the device trusts our CA or already reaches us over HTTPS),
/// boot server `Static`, server address, user, password. Poly OS: server address, user,
/// password (names from the Poly OS table; *verify*).
fn autosync_values(
    account: &Account,
    reach: &Reach,
    state: &BTreeMap<String, ParamState>,
    trust: Option<&PhoneTrust>,
    layers: &Layers,
    out: &mut Layer,
) {
    let Some(sync) = &layers.sync else { return };
    let family = if layers.is_poly_os() {
        Family::PolyOs
    } else {
        sync.family
    };
    address_values(account, reach, state, trust, family, Source::AutoSync, out);
    let mut put = |key: Key, value: String| {
        if let Some(name) = params::name(family, key, 1) {
            out.push(name, value, Source::AutoSync, "");
        }
    };
    put(Key::ProvUser, sync.user.clone());
    put(Key::ProvPassword, sync.password.clone());
}

/// Where the device finds this server, sent with any credential: UCS server type, boot
/// server `Static` (credentials inside a DHCP-supplied URL win over `device.prov.user` and
/// `password`, so a phone must stop using that URL to use what it is sent) and the address
/// without credentials; Poly OS the address as a full URL.
fn address_values(
    account: &Account,
    reach: &Reach,
    state: &BTreeMap<String, ParamState>,
    trust: Option<&PhoneTrust>,
    family: Family,
    source: Source,
    out: &mut Layer,
) {
    let mut put = |key: Key, value: String| {
        if let Some(name) = params::name(family, key, 1) {
            out.push(name, value, source, "");
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
        let name = reach.canonical_server_name(account, switch);
        put(
            Key::ProvServerName,
            if family.is_ucs() {
                name
            } else {
                // Poly OS has no server type: its address is a full URL (docs/design.md §2).
                format!("{}://{name}", if https { "https" } else { "http" })
            },
        );
    }
}

/// The provisioning-server fields of one level (a vendor extension or a profile's fields):
/// the server URL's name, type and embedded credentials, then the separate user and
/// password fields.
/// `unnamed_type`: the server type for an address stored without a protocol (accepted
/// before addresses had to name one): the protocol the phone reaches this server with, never
/// none — without a type the phone would use its own, FTP at the factory.
#[allow(clippy::too_many_arguments)]
fn server_fields(
    layer: &mut Layer,
    url: Option<&ServerUrl>,
    user: &str,
    password: &str,
    source: Source,
    unnamed_type: &str,
    family: Family,
) {
    let mut put = |key: Key, value: &str| {
        if let Some(name) = params::name(family, key, 1) {
            layer.push_set(name, value, source, "");
        }
    };
    // Credentials for another server only: without a server named they would be credentials
    // for this one, which accepts only its account's and the device's own (I9).
    if let Some(url) = url {
        let server_type = url.server_type.unwrap_or(unnamed_type);
        put(
            Key::ProvServerName,
            &if family.is_ucs() {
                url.server_name()
            } else {
                full_url(server_type, &url.server_name())
            },
        );
        put(Key::ProvServerType, server_type);
        put(Key::ProvUser, &url.user);
        put(Key::ProvPassword, &url.password);
        put(Key::ProvUser, user);
        put(Key::ProvPassword, password);
    }
}

/// A Poly OS address: Poly OS has no server type, so the protocol goes into the URL
/// (`HTTPS` → `https://…`).
fn full_url(server_type: &str, name: &str) -> String {
    format!("{}://{name}", server_type.to_ascii_lowercase())
}

/// The pending level: the device's own credential (above everything, under its family's
/// names) and Auto-Sync's values.
fn pending_layer(
    account: &Account,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
    state: &BTreeMap<String, ParamState>,
    layers: &Layers,
) -> Layer {
    let mut pending = Layer::new(Level::Pending);
    if let CredentialLayer::Device {
        user,
        password,
        family: own_family,
    } = &layers.credentials
    {
        // Every UCS family shares one table.
        let own_family = if layers.is_poly_os() {
            Family::PolyOs
        } else if own_family.is_ucs() {
            Family::Vvx
        } else {
            *own_family
        };
        for (key, value) in [(Key::ProvUser, user), (Key::ProvPassword, password)] {
            if let Some(n) = params::name(own_family, key, 1) {
                pending.push(n, value.clone(), Source::DeviceCredential, "");
            }
        }
        // Its own credential always comes with where to use it (Auto-Sync sends the same
        // values when it is on).
        if layers.sync.is_none() {
            address_values(
                account,
                reach,
                state,
                trust,
                own_family,
                Source::DeviceCredential,
                &mut pending,
            );
        }
    }
    autosync_values(account, reach, state, trust, layers, &mut pending);
    pending
}

/// Policies on other platform parameters, one layer each in precedence order (their
/// parameters never overlap the provisioning server fields: `policy` refuses those).
fn policy_layers(layers: &Layers) -> impl Iterator<Item = Layer> + '_ {
    layers
        .policies
        .iter()
        .filter(|p| params::is_device_param(&p.parameter) && !super::machine::owned(&p.parameter))
        .map(|p| {
            let level = match p.source {
                Source::Group => Level::Group,
                Source::Site => Level::Site,
                Source::Account => Level::Account,
                _ => Level::Device,
            };
            let mut l = Layer::new(level);
            l.push(
                p.parameter.clone(),
                p.value.clone(),
                p.source,
                p.detail.clone(),
            );
            l
        })
}

/// The desired `device.*` parameters of a device, decided by the one precedence rule
/// (`domain::precedence`): pending-level values first — the device's own credential, then
/// Auto-Sync — then the device's vendor extensions and its `device.*` policies, its groups',
/// site's and account's, the profile's fields, and zerotouch's own (the serial tag, the CA).
pub fn desired(
    account: &Account,
    device: &Device,
    profile: &Profile,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
    state: &BTreeMap<String, ParamState>,
    layers: &Layers,
) -> BTreeMap<String, Desired> {
    // Every UCS family shares one table; Poly OS has its own names and full URLs.
    let family = if layers.is_poly_os() {
        Family::PolyOs
    } else {
        Family::Vvx
    };
    let name = |key: Key| params::name(family, key, 1);
    let mut out: Vec<Layer> = Vec::new();

    out.push(pending_layer(account, reach, trust, state, layers));

    // The provisioning server: a vendor extension that names a server replaces the
    // profile's server entirely.
    let ext = &device.ext;
    let pf = &profile.fields;
    let ext_url = (!ext.prov_server.is_empty())
        .then(|| ServerUrl::parse(&ext.prov_server).ok())
        .flatten();
    let profile_url = (ext.prov_server.is_empty() && !pf.prov_server.is_empty())
        .then(|| ServerUrl::parse(&pf.prov_server).ok())
        .flatten();
    let unnamed_type = if reach.secure { "HTTPS" } else { "HTTP" };
    let mut dev = Layer::new(Level::Device);
    server_fields(
        &mut dev,
        ext_url.as_ref(),
        &ext.prov_user,
        &ext.prov_password,
        Source::Device,
        unnamed_type,
        family,
    );
    out.push(dev);
    out.extend(policy_layers(layers));

    let mut prof = Layer::new(Level::Profile);
    server_fields(
        &mut prof,
        profile_url.as_ref(),
        &pf.prov_user,
        &pf.prov_password,
        Source::Profile,
        unnamed_type,
        family,
    );
    let parsed = ext_url.is_some() || profile_url.is_some();
    // Static without a server would strand the phone: keep it on the address it used, with
    // the credentials it authenticated with. Without a Host header that address is unknown,
    // so the boot-server setting is not sent at all.
    let static_unknown = pf.boot_server_option == "Static" && !parsed && reach.host.is_empty();
    let mut server = Layer::new(Level::Server);
    if !pf.boot_server_option.is_empty() && !static_unknown {
        if let Some(n) = name(Key::DhcpBootSrvUseOpt) {
            prof.push(n, pf.boot_server_option.clone(), Source::Profile, "");
        }
        if pf.boot_server_option == "Static" && !parsed {
            let mut put = |key: Key, value: String| {
                if let Some(n) = name(key) {
                    server.push(n, value, Source::Server, "");
                }
            };
            let server = reach.canonical_server_name(account, None);
            put(
                Key::ProvServerName,
                if family.is_ucs() {
                    server
                } else {
                    full_url(reach.server_type(), &server)
                },
            );
            put(Key::ProvServerType, reach.server_type().to_string());
            if let (Some(u), Some(p)) = (&account.device_user, &account.device_password) {
                put(Key::ProvUser, u.clone());
                put(Key::ProvPassword, p.clone());
            }
        }
    }
    if let Some(n) = name(Key::DhcpOption60Type) {
        prof.push_set(n, &pf.option60_type, Source::Profile, "");
    }
    out.push(prof);
    // Requests that name no MAC (firmware) are attributed through the serial tag.
    let mut put = |key: Key, value: String| {
        if let Some(n) = name(key) {
            server.push(n, value, Source::Server, "");
        }
    };
    put(Key::ProvTagSerialNo, "1".into());
    if let Some(t) = trust {
        put(Key::PlatformCaCert, t.ca_pem.clone());
        put(Key::ProvTlsProfile, params::PROV_TLS_PROFILE.into());
    }
    out.push(server);

    precedence::resolve(out)
        .into_winners()
        .map(|(n, c)| {
            (
                n,
                Desired {
                    value: c.value,
                    source: c.source,
                },
            )
        })
        .collect()
}

/// The desired parameters the phone is not known to hold: for credentials, those that
/// differ from the ones the request carries (`held`: what the phone evidently holds — a
/// request with the account credential proves nothing more, I2), and both whenever the
/// server's address, type or boot-server option is delivered (a phone may hold its
/// credentials only inside the DHCP URL those stop it using: I1); for every other
/// parameter, those not confirmed, leaving out a value given up after too many deliveries
/// (I7).
pub fn pending<'a>(
    desired: &'a BTreeMap<String, Desired>,
    state: &BTreeMap<String, ParamState>,
    held: Option<(&str, &str)>,
) -> BTreeMap<&'a str, &'a Desired> {
    let mut out: BTreeMap<&'a str, &'a Desired> = desired
        .iter()
        .filter(|(name, d)| {
            if is_credential(name) {
                return false;
            }
            let s = state.get(*name);
            let confirmed = s.and_then(|s| s.confirmed.as_deref()) == Some(d.value.as_str());
            let given_up = s
                .is_some_and(|s| s.gave_up && s.delivered.as_deref() == Some(d.value.as_str()))
                && !regress::on(Defect::TagForever);
            !confirmed && !given_up
        })
        .map(|(n, d)| (n.as_str(), d))
        .collect();
    // Credentials: judged by what the request carries; sent along with any address change
    // (credentials that came inside a DHCP URL stop being used once the phone takes them).
    let moves = out.keys().any(|n| is_address(n));
    for (name, d) in desired.iter().filter(|(n, _)| is_credential(n)) {
        let held_value = held.map(|(u, p)| if is_user(name) { u } else { p });
        if moves || held_value != Some(d.value.as_str()) {
            out.insert(name.as_str(), d);
        }
    }
    out
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
    /// The request carried the device's own credential or a verified certificate.
    pub proven: bool,
    /// The request's source address (kept, for SIP check-sync, only when `proven`).
    pub address: Option<std::net::IpAddr>,
}

/// Which pending parameters this request confirms, with the confirmed value and how it is
/// known (`proof` from a request with the device's own credential or certificate, else
/// `request`, or `reboot` when the phone fetched its master file again after a delivery).
/// Credentials are never confirmed here: `pending` judges them by the request itself.
pub fn confirmations(
    desired: &BTreeMap<String, Desired>,
    state: &BTreeMap<String, ParamState>,
    ev: &Evidence<'_>,
) -> Vec<(String, String, &'static str)> {
    let name = |k| params::name(Family::Vvx, k, 1).unwrap_or_default();
    let (server_name, server_type, tag) = (
        name(Key::ProvServerName),
        name(Key::ProvServerType),
        name(Key::ProvTagSerialNo),
    );
    let by = if ev.proven { "proof" } else { "request" };
    let trust = trust_names();
    let mut out = Vec::new();
    for (param, d) in pending(desired, state, None) {
        if is_credential(param) {
            continue;
        }
        let delivered =
            state.get(param).and_then(|s| s.delivered.as_deref()) == Some(d.value.as_str());
        let how = if param == tag {
            if ev.serial_tag && d.value == "1" {
                Some(by)
            } else if delivered && ev.master_fetch && !regress::on(Defect::TagForever) {
                // It rebooted after the delivery and still sends no serial tag: it applied
                // what it could (I7: never pending forever).
                Some("reboot")
            } else {
                None
            }
        } else if trust.iter().any(|t| t == param) {
            // Only a phone that trusts our certificate can fetch the probe over HTTPS.
            (delivered && ev.tls_probe).then_some(by)
        } else if !(delivered && ev.master_fetch) {
            None
        } else if param == server_name {
            // A full URL (Poly OS) names the scheme the device must come back with too.
            let (scheme, name) = match d.value.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, d.value.as_str()),
            };
            (scheme.is_none_or(|s| s.eq_ignore_ascii_case(ev.reach.server_type()))
                && name.eq_ignore_ascii_case(&ev.reach.server_name()))
            .then_some(by)
        } else if param == server_type {
            d.value
                .eq_ignore_ascii_case(ev.reach.server_type())
                .then_some(by)
        } else {
            Some("reboot")
        };
        if let Some(how) = how {
            out.push((param.to_string(), d.value.clone(), how));
        }
    }
    out
}

#[cfg(test)]
mod tests;
