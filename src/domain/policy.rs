//! Sites, device groups and policies (docs/design.md §3, §5): parameter values an admin sets on the
//! account, a site, a group or one device, and the layers they form for each device.
//!
//! Precedence, highest first: the device (its vendor extensions and lines, then its own
//! policy), its groups (higher priority first; equal priorities by group id, oldest first),
//! its site, the account policy, the profile's fields, the profile's files. The merge itself
//! happens in `polycom::render` (and, for `device.*`, in `provstate`), which takes the
//! `Layers` built here.
//!
//! Parameters that the desired/confirmed mechanism owns (provisioning server, type,
//! credentials, boot server, the CA and its profile, `device.set` and every `.set`) cannot be
//! set by a policy: a wrong value there locks phones out, and Auto-Sync and the account's
//! credentials already set them.

use serde::Serialize;

use super::mac::Mac;
use super::polycom::models::Family;
use super::polycom::params::{self, Key};
use super::provstate::Source;
use crate::error::{Error, FieldError, Result};

/// Credentials and family Auto-Sync (or a re-admission) sends a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTarget {
    pub user: String,
    pub password: String,
    /// Which parameter table: a UCS family or Poly OS.
    pub family: Family,
}

/// A policy value as it applies to one device, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyValue {
    pub parameter: String,
    pub value: String,
    pub source: Source,
    /// e.g. `group lobby (priority 10)`, `site hq`.
    pub detail: String,
}

/// What applies to one device beyond its own row and its profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    /// Credentials to sync, when Auto-Sync (or a re-admission) applies to the device.
    pub sync: Option<SyncTarget>,
    /// Policy values in precedence order (device, groups, site, account).
    pub policies: Vec<PolicyValue>,
    /// Which provisioning credentials the device should hold (per-device credentials,
    /// docs/design.md §6); set per request by the provisioning cache.
    pub credentials: CredentialLayer,
    /// The device's family when known (its User-Agent or vendor model): a Poly OS device
    /// gets the Poly OS parameter names, full URLs and no `.set` switches.
    pub family: Option<Family>,
}

impl Layers {
    /// Whether the device is a Poly OS (VideoOS) one, by any evidence the layers carry.
    pub fn is_poly_os(&self) -> bool {
        self.family == Some(Family::PolyOs)
            || self
                .sync
                .as_ref()
                .is_some_and(|s| s.family == Family::PolyOs)
            || matches!(
                self.credentials,
                CredentialLayer::Device {
                    family: Family::PolyOs,
                    ..
                }
            )
    }
}

/// The provisioning credentials a device's desired state carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CredentialLayer {
    /// Today's rules: Auto-Sync's account credentials, profile and vendor-extension values.
    #[default]
    Account,
    /// The device's own credential (user = its MAC), above every other source, under the
    /// parameter names of the device's family (UCS, or Poly OS).
    Device {
        user: String,
        password: String,
        family: Family,
    },
}

/// A site of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub description: String,
}

/// A device group of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub priority: i64,
    pub description: String,
}

/// Where a policy value is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    Account,
    Site,
    Group,
    Device,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Account => "account",
            ScopeKind::Site => "site",
            ScopeKind::Group => "group",
            ScopeKind::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeKind> {
        [
            ScopeKind::Account,
            ScopeKind::Site,
            ScopeKind::Group,
            ScopeKind::Device,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A stored policy value, with the name of what it is set on (site or group name, MAC;
/// empty for the account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub scope: ScopeKind,
    pub scope_id: i64,
    pub target: String,
    pub parameter: String,
    pub value: String,
}

/// Where a policy is set, as an admin names it: `account`, `site:NAME`, `group:NAME`,
/// `device:MAC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Account,
    Site(String),
    Group(String),
    Device(Mac),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        let bad = || {
            Error::invalid(
                "scope",
                format!("`{s}` is not account, site:NAME, group:NAME or device:MAC"),
            )
        };
        if s == "account" {
            return Ok(Target::Account);
        }
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "site" if !name.is_empty() => Ok(Target::Site(name.into())),
            "group" if !name.is_empty() => Ok(Target::Group(name.into())),
            "device" => Mac::parse_lenient(name)
                .map(Target::Device)
                .ok_or_else(|| Error::invalid("scope", format!("`{name}` is not a MAC address"))),
            _ => Err(bad()),
        }
    }

    pub fn kind(&self) -> ScopeKind {
        match self {
            Target::Account => ScopeKind::Account,
            Target::Site(_) => ScopeKind::Site,
            Target::Group(_) => ScopeKind::Group,
            Target::Device(_) => ScopeKind::Device,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Account => f.write_str("account"),
            Target::Site(n) => write!(f, "site:{n}"),
            Target::Group(n) => write!(f, "group:{n}"),
            Target::Device(m) => write!(f, "device:{m}"),
        }
    }
}

/// Checks a site or group name: 1 to 64 letters, digits, spaces, `_`, `.`, `-`, no spaces at
/// either end.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c))
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("`{name}` must be 1 to 64 letters, digits, spaces, `_`, `.` or `-`"),
        ))
    }
}

/// Whether a parameter belongs to the desired/confirmed mechanism and may not be set by a
/// policy.
pub fn is_reserved(parameter: &str) -> bool {
    if parameter.ends_with(".set") || super::machine::owned(parameter) {
        return true;
    }
    [
        Key::ProvServerName,
        Key::ProvServerType,
        Key::ProvUser,
        Key::ProvPassword,
        Key::DhcpBootSrvUseOpt,
        Key::PlatformCaCert,
        Key::PlatformCaList,
        Key::ProvTlsProfile,
        Key::ProvTagSerialNo,
    ]
    .into_iter()
    .flat_map(|k| {
        [
            params::name(Family::Vvx, k, 1),
            params::name(Family::PolyOs, k, 1),
        ]
    })
    .flatten()
    .any(|n| n == parameter)
}

/// Checks a policy parameter and value; the errors name the field.
pub fn check_policy(parameter: &str, value: &str) -> Result<()> {
    let mut p = Vec::new();
    let name_ok = (3..=128).contains(&parameter.len())
        && parameter.contains('.')
        && !parameter.starts_with('.')
        && !parameter.ends_with('.')
        && !parameter.contains("..")
        && parameter
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        p.push(FieldError::new(
            "parameter",
            format!(
                "`{parameter}` is not a parameter name (dotted, letters, digits, `_`, `-`; e.g. lcl.ml.lang)"
            ),
        ));
    } else if is_reserved(parameter) {
        p.push(FieldError::new(
            "parameter",
            format!(
                "`{parameter}` is set by zerotouch itself (Auto-Sync, the account's credentials and \
                 service address, the CA delivery); change those instead of a policy"
            ),
        ));
    }
    if value.chars().count() > 2048 {
        p.push(FieldError::new("value", "must be at most 2048 characters"));
    } else if value.chars().any(|c| c.is_control() && c != '\t') {
        p.push(FieldError::new(
            "value",
            "must not contain control characters",
        ));
    } else if value.contains("${") {
        p.push(FieldError::new(
            "value",
            "`${` variables are not expanded in policy values (set the value itself)",
        ));
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_name_the_bad_part() {
        assert_eq!(Target::parse("account").expect("account"), Target::Account);
        assert_eq!(
            Target::parse("site:hq").expect("site"),
            Target::Site("hq".into())
        );
        assert!(matches!(
            Target::parse("device:0004F2000001").expect("device"),
            Target::Device(_)
        ));
        let err = Target::parse("device:nope")
            .expect_err("bad mac")
            .to_string();
        assert!(err.starts_with("scope:"), "{err}");
        assert!(Target::parse("room:1").is_err());
    }

    #[test]
    fn parameters_owned_by_the_provisioning_state_are_refused() {
        for reserved in [
            "device.prov.serverName",
            "device.prov.password",
            "device.dhcp.bootSrvUseOpt",
            "device.set",
            "reg.1.address.set",
            "device.sec.TLS.customCaCert1",
        ] {
            let err = check_policy(reserved, "x").expect_err(reserved).to_string();
            assert!(err.starts_with("parameter:"), "{err}");
        }
        check_policy("lcl.ml.lang", "German_Germany").expect("ordinary");
        check_policy("device.sntp.serverName", "ntp.example.com").expect("other device.*");
        assert!(check_policy("nodot", "x").is_err());
        assert!(check_policy("a.b", "line\nbreak").is_err());
        assert!(check_policy("a.b", "${MAC}").is_err());
    }
}
