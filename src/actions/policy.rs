//! Sites, device groups and policy values (`domain::policy` has the rules): creating and
//! deleting them, memberships, and the policy layers that apply to one device, read in
//! precedence order.

use rusqlite::Connection;
use serde_json::json;

use crate::db::{self, devices, policies};
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::device::Device;
use crate::domain::lint::LintFinding;
use crate::domain::mac::Mac;
use crate::domain::policy::{
    Group, PolicyValue, ScopeKind, Site, Target, check_name, check_policy,
};
use crate::domain::provstate::Source;
use crate::error::{Error, FieldError, Result};

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
        crate::db::audit::record(
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
        crate::db::audit::record(
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
        crate::db::audit::record(
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
        crate::db::audit::record(
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
        crate::db::audit::record(
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
        set_membership_in(tx, actor, account, group, macs, add, &mut |_| {})
    })
}

/// `set_membership` in the caller's transaction, telling `progress` how many devices it
/// has gone through.
pub fn set_membership_in(
    tx: &Connection,
    actor: &Actor,
    account: &Account,
    group: &str,
    macs: &[Mac],
    add: bool,
    progress: &mut dyn FnMut(usize),
) -> Result<usize> {
    let g = group_named(tx, account, group)?;
    let mut changed = 0;
    for (i, mac) in macs.iter().enumerate() {
        let d = own_device(tx, account, mac)?;
        let did = if add {
            policies::add_member(tx, g.id, d.id)?
        } else {
            policies::remove_member(tx, g.id, d.id)?
        };
        if did {
            changed += 1;
            crate::db::audit::record(
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
        progress(i + 1);
    }
    Ok(changed)
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
        assign_site_in(tx, actor, account, site, macs, &mut |_| {})
    })
}

/// `assign_site` in the caller's transaction, telling `progress` how many devices it has
/// gone through.
pub fn assign_site_in(
    tx: &Connection,
    actor: &Actor,
    account: &Account,
    site: Option<&str>,
    macs: &[Mac],
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let site = site.map(|n| site_named(tx, account, n)).transpose()?;
    for (i, mac) in macs.iter().enumerate() {
        let d = own_device(tx, account, mac)?;
        let before = policies::device_site(tx, d.id)?;
        policies::set_device_site(tx, d.id, site.as_ref().map(|s| s.id))?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "device.set-site", mac.as_str())
                .before(json!({"site": before.map(|s| s.name)}))
                .after(json!({"site": site.as_ref().map(|s| s.name.clone())})),
        )?;
        progress(i + 1);
    }
    Ok(())
}

/// Sets a policy value at a target. The parameter is checked against the dictionary
/// (`actions::params::check_policy_param`): a near miss is refused, the other findings
/// come back as warnings for the caller to show.
pub fn set_policy(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    target: &Target,
    parameter: &str,
    value: &str,
) -> Result<Vec<LintFinding>> {
    let warnings = checked(conn, account, target, parameter, value)?;
    write_policy(conn, actor, account, target, parameter, value)?;
    Ok(warnings)
}

/// The checks every entry path runs on a policy value: the name and value rules, then the
/// dictionary (a near miss refused; the other findings returned as warnings).
fn checked(
    conn: &Connection,
    account: &Account,
    target: &Target,
    parameter: &str,
    value: &str,
) -> Result<Vec<LintFinding>> {
    check_policy(parameter, value)?;
    super::params::check_policy_param(conn, account, &format!("policy {target}"), parameter, value)
}

/// Stores a checked policy value and its audit entry.
fn write_policy(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    target: &Target,
    parameter: &str,
    value: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let (kind, id) = resolve(tx, account, target)?;
        let before = policies::upsert_policy(tx, account.id.0, kind, id, parameter, value)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "policy.set", target.to_string())
                .before(json!({"parameter": parameter, "value": before}))
                .after(json!({"parameter": parameter, "value": value})),
        )
    })
}

/// Sets a policy value chosen from the dictionary (the console's typed editor): the same
/// check as `set_policy`, but a value the parameter's type refuses (out of its range, not
/// among its allowed values) and an index out of its range are refused, naming the field,
/// instead of coming back as warnings. The form's control already limits what a browser
/// sends; this is what holds when it does not.
pub fn set_typed_policy(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    target: &Target,
    parameter: &str,
    value: &str,
) -> Result<Vec<LintFinding>> {
    let findings = checked(conn, account, target, parameter, value)?;
    let refused: Vec<FieldError> = findings
        .iter()
        .filter_map(|f| {
            let field = match f.code.as_str() {
                "param.bad-value" => "value",
                "param.bad-index" => "parameter",
                _ => return None,
            };
            Some(FieldError::new(
                field,
                format!("{}: {}", f.param, f.message),
            ))
        })
        .collect();
    if !refused.is_empty() {
        return Err(Error::Invalid(refused));
    }
    write_policy(conn, actor, account, target, parameter, value)?;
    Ok(findings)
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
        crate::db::audit::record(
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
