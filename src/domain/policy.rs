//! Sites, device groups and policies (DESIGN §3, §5): parameter values an admin sets on the
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

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use super::account::Account;
use super::audit::{self, Actor, Change};
use super::device::Device;
use super::mac::Mac;
use super::polycom::models::Family;
use super::polycom::params::{self, Key};
use super::provstate::Source;
use crate::db::policies::{Group, ScopeKind, Site};
use crate::db::{self, devices, policies};
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
    /// DESIGN §6); set per request by the provisioning cache.
    pub credentials: CredentialLayer,
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
    /// None at all: the request has not proved it is the device, so no credential change
    /// is delivered (a user without its password would lock the phone out).
    Withheld,
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
            "device" => Mac::from_bare(name)
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
    if parameter.ends_with(".set") || parameter == "device.set" {
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

/// A device of this account, by MAC.
fn own_device(conn: &Connection, account: &Account, mac: &Mac) -> Result<Device> {
    devices::find_device_by_mac(conn, mac)?
        .filter(|d| d.account_id == account.id.0)
        .ok_or_else(|| Error::not_found(format!("device {mac} in account `{}`", account.slug)))
}

fn site_named(conn: &Connection, account: &Account, name: &str) -> Result<Site> {
    policies::find_site(conn, account.id.0, name)?
        .ok_or_else(|| Error::not_found(format!("site `{name}`")))
}

fn group_named(conn: &Connection, account: &Account, name: &str) -> Result<Group> {
    policies::find_group(conn, account.id.0, name)?
        .ok_or_else(|| Error::not_found(format!("group `{name}`")))
}

/// The scope kind and id a target names in this account.
pub fn resolve(conn: &Connection, account: &Account, target: &Target) -> Result<(ScopeKind, i64)> {
    Ok(match target {
        Target::Account => (ScopeKind::Account, account.id.0),
        Target::Site(n) => (ScopeKind::Site, site_named(conn, account, n)?.id),
        Target::Group(n) => (ScopeKind::Group, group_named(conn, account, n)?.id),
        Target::Device(m) => (ScopeKind::Device, own_device(conn, account, m)?.id),
    })
}

/// Creates a site.
pub fn add_site(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
    description: &str,
) -> Result<i64> {
    check_name("name", name)?;
    db::write_tx(conn, |tx| {
        let id = policies::insert_site(tx, account.id.0, name, description)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "site.add", format!("site {name}"))
                .after(json!({"name": name, "description": description})),
        )?;
        Ok(id)
    })
}

/// Deletes a site: its devices lose their site, its policies go with it.
pub fn delete_site(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let site = site_named(tx, account, name)?;
        let before = policies::scope_policies(tx, ScopeKind::Site, site.id)?;
        policies::delete_site(tx, site.id)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "site.delete", format!("site {name}"))
                .before(json!({"name": name, "policies": before})),
        )
    })
}

/// Creates a device group.
pub fn add_group(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
    priority: i64,
    description: &str,
) -> Result<i64> {
    check_name("name", name)?;
    db::write_tx(conn, |tx| {
        let id = policies::insert_group(tx, account.id.0, name, priority, description)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "group.add", format!("group {name}"))
                .after(json!({"name": name, "priority": priority})),
        )?;
        Ok(id)
    })
}

/// Changes a group's priority.
pub fn set_group_priority(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
    priority: i64,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let g = group_named(tx, account, name)?;
        policies::update_group(tx, g.id, priority, &g.description)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "group.set-priority",
                format!("group {name}"),
            )
            .before(json!({"priority": g.priority}))
            .after(json!({"priority": priority})),
        )
    })
}

/// Deletes a group: its members leave it, its policies go with it.
pub fn delete_group(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let g = group_named(tx, account, name)?;
        let before = policies::scope_policies(tx, ScopeKind::Group, g.id)?;
        let members = policies::list_members(tx, g.id)?;
        policies::delete_group(tx, g.id)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "group.delete", format!("group {name}")).before(
                json!({"name": name, "priority": g.priority, "members": members, "policies": before}),
            ),
        )
    })
}

/// Puts devices into a group (`add`) or takes them out; every MAC is checked first.
pub fn set_membership(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    group: &str,
    macs: &[Mac],
    add: bool,
) -> Result<usize> {
    db::write_tx(conn, |tx| {
        let g = group_named(tx, account, group)?;
        let mut changed = 0;
        for mac in macs {
            let d = own_device(tx, account, mac)?;
            let did = if add {
                policies::add_member(tx, g.id, d.id)?
            } else {
                policies::remove_member(tx, g.id, d.id)?
            };
            if did {
                changed += 1;
                audit::record(
                    tx,
                    actor,
                    Change::new(
                        Some(account.id.0),
                        if add {
                            "group.add-member"
                        } else {
                            "group.remove-member"
                        },
                        format!("group {group}"),
                    )
                    .after(json!({"mac": mac.as_str()})),
                )?;
            }
        }
        Ok(changed)
    })
}

/// Sets (or, with `None`, clears) the site of devices.
pub fn assign_site(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    site: Option<&str>,
    macs: &[Mac],
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let site = site.map(|n| site_named(tx, account, n)).transpose()?;
        for mac in macs {
            let d = own_device(tx, account, mac)?;
            let before = policies::device_site(tx, d.id)?;
            policies::set_device_site(tx, d.id, site.as_ref().map(|s| s.id))?;
            audit::record(
                tx,
                actor,
                Change::new(Some(account.id.0), "device.set-site", mac.as_str())
                    .before(json!({"site": before.map(|s| s.name)}))
                    .after(json!({"site": site.as_ref().map(|s| s.name.clone())})),
            )?;
        }
        Ok(())
    })
}

/// Sets a policy value at a target.
pub fn set_policy(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    target: &Target,
    parameter: &str,
    value: &str,
) -> Result<()> {
    check_policy(parameter, value)?;
    db::write_tx(conn, |tx| {
        let (kind, id) = resolve(tx, account, target)?;
        let before = policies::upsert_policy(tx, account.id.0, kind, id, parameter, value)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "policy.set", target.to_string())
                .before(json!({"parameter": parameter, "value": before}))
                .after(json!({"parameter": parameter, "value": value})),
        )
    })
}

/// Removes a policy value from a target.
pub fn unset_policy(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    target: &Target,
    parameter: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let (kind, id) = resolve(tx, account, target)?;
        let Some(before) = policies::delete_policy(tx, kind, id, parameter)? else {
            return Err(Error::not_found(format!("policy {parameter} on {target}")));
        };
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "policy.unset", target.to_string())
                .before(json!({"parameter": parameter, "value": before})),
        )
    })
}

/// The policy values that apply to a device, in precedence order.
pub fn device_policies(conn: &Connection, device: &Device) -> Result<Vec<PolicyValue>> {
    let mut out = Vec::new();
    let mut push = |rows: Vec<policies::Policy>, source: Source, detail: String| {
        out.extend(rows.into_iter().map(|p| PolicyValue {
            parameter: p.parameter,
            value: p.value,
            source,
            detail: detail.clone(),
        }));
    };
    push(
        policies::scope_policies(conn, ScopeKind::Device, device.id)?,
        Source::Device,
        "device policy".into(),
    );
    for g in policies::device_groups(conn, device.id)? {
        push(
            policies::scope_policies(conn, ScopeKind::Group, g.id)?,
            Source::Group,
            format!("group {} (priority {})", g.name, g.priority),
        );
    }
    if let Some(site) = policies::device_site(conn, device.id)? {
        push(
            policies::scope_policies(conn, ScopeKind::Site, site.id)?,
            Source::Site,
            format!("site {}", site.name),
        );
    }
    push(
        policies::scope_policies(conn, ScopeKind::Account, device.account_id)?,
        Source::Account,
        "account policy".into(),
    );
    Ok(out)
}

#[cfg(test)]
mod precedence_tests;

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
