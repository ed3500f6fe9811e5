//! Console actions on associations, shared by the admin UI, the JSON API and the CLI:
//! reference IDs (subscribers), manual association of one or more devices, modify, copy,
//! replace and delete a device, all under the acting user's scope.
//!
//! Each action validates everything first and then writes in one transaction, so a refused
//! input leaves nothing half-written. The ZTP guide's confidentiality rule is applied here, not
//! in the pages: a device associated by another company is `Forbidden` to view or change,
//! and associating a MAC another company or account holds is a `Conflict`, "already
//! associated elsewhere", naming neither. A device or reference ID of an account the user
//! may not act in is not found, as one that exists nowhere (`actions::tenants`).
//! Every change is audited in its own transaction as `actor.who` (secrets masked there).

use rusqlite::Connection;
use serde_json::json;

use super::{Actor, Impact};
use crate::db::profiles;
use crate::db::{self, assoc, devices, subscribers};
use crate::domain::account::Account;
use crate::domain::device::{Device, DeviceInput, NewDevice};
use crate::domain::mac::Mac;
use crate::domain::provserver::OwnAddresses;
use crate::domain::subscriber::{Subscriber, SubscriberInput};
use crate::domain::users::Scope;
use crate::error::{Error, FieldError, Result};

/// The phone an action on one device affects: a device seen on the device endpoint (any
/// request naming it) is a phone out there, counted with what happens to it (`reason`,
/// given its inventory row; `None`: the action does not affect it). A device never seen
/// affects no phone.
fn phone_impact(
    conn: &Connection,
    actor: &Actor<'_>,
    mac: &Mac,
    reason: impl FnOnce(&db::inventory::DeviceRow) -> Option<String>,
) -> Result<Impact> {
    let row = db::inventory::device_row(conn, actor.account.id.0, mac.as_str())?;
    Ok(Impact::of(row.and_then(|r| {
        let seen = r.last_seen.or(r.first_seen)?;
        let why = reason(&r)?;
        Some((
            mac.to_string(),
            format!("seen {}: {why}", crate::domain::time::format_time(seen)),
        ))
    })))
}

/// The phone deleting the device affects (shown before the admin confirms).
pub fn impact_delete(conn: &Connection, actor: &Actor<'_>, mac: &Mac) -> Result<Impact> {
    phone_impact(conn, actor, mac, |_| {
        Some(
            "it loses its profile, its lines and its own credential (an unknown device at \
             its next request)"
                .to_string(),
        )
    })
}

/// Validates an association (fields, profile, addresses) without writing.
fn check_device(
    conn: &Connection,
    account: &Account,
    input: &DeviceInput,
    own: &OwnAddresses,
) -> Result<(NewDevice, i64)> {
    let (new, mut problems) = match input.validate() {
        Ok(d) => (Some(d), Vec::new()),
        Err(Error::Invalid(p)) => (None, p),
        Err(e) => return Err(e),
    };
    own.check_field("prov_server", input.ext.prov_server.trim(), &mut problems);
    let profile = profiles::find_profile_by_name(conn, account.id.0, input.profile.trim())?;
    if profile.is_none() && !problems.iter().any(|p| p.field == "profile") {
        problems.push(FieldError::new(
            "profile",
            format!("no profile named `{}`", input.profile.trim()),
        ));
    }
    match (new, profile) {
        (Some(d), Some(p)) if problems.is_empty() => Ok((d, p.id)),
        _ => Err(Error::Invalid(problems)),
    }
}

/// The audit view of a device: its fields, extensions and lines (secrets are masked when
/// recorded).
fn device_json(d: &crate::domain::device::Device) -> serde_json::Value {
    json!({
        "mac": d.mac.as_str(), "serial": d.serial, "vendor_model": d.vendor_model,
        "profile": d.profile_name, "ext": d.ext, "lines": d.lines,
    })
}

/// The audit view of a stored device, read in `tx`.
fn device_state(tx: &Connection, mac: &Mac) -> Result<serde_json::Value> {
    Ok(devices::find_device_by_mac(tx, mac)?
        .map(|d| device_json(&d))
        .unwrap_or(serde_json::Value::Null))
}

/// Whether a scope may see a stored association.
pub fn visible(scope: &Scope, owner: &assoc::Owner) -> bool {
    match scope {
        Scope::All => true,
        Scope::Company(c) => owner.owner_company == *c,
        Scope::Provider(c) => owner.owner_company == *c || owner.profile_created_by == *c,
    }
}

fn subscriber_visible(scope: &Scope, s: &Subscriber) -> bool {
    match scope {
        Scope::All => true,
        Scope::Company(c) | Scope::Provider(c) => s.owner_company == *c,
    }
}

/// The subscriber with this reference ID, if the actor may see it.
pub fn subscriber(conn: &Connection, actor: &Actor<'_>, reference_id: &str) -> Result<Subscriber> {
    let s = subscribers::find_subscriber(conn, reference_id)?
        .filter(|s| {
            subscribers::account_of(conn, s.id)
                .ok()
                .flatten()
                .is_some_and(|a| actor.user.may_act_in(a))
        })
        .ok_or_else(|| Error::not_found(format!("reference ID `{reference_id}`")))?;
    if !subscriber_visible(&actor.user.scope(), &s) {
        return Err(Error::Forbidden(format!(
            "reference ID `{reference_id}` was created by another company"
        )));
    }
    Ok(s)
}

/// Creates a reference ID with its contact; without devices it is a partial association.
pub fn create_subscriber(
    conn: &mut Connection,
    actor: &Actor<'_>,
    input: &SubscriberInput,
) -> Result<i64> {
    let input = input.trimmed();
    input.validate()?;
    db::write_tx(conn, |tx| {
        let id = subscribers::insert_subscriber(
            tx,
            actor.account.id.0,
            &input,
            actor.user.owner_company(),
            actor.expires_at(),
        )?;
        actor.record(
            tx,
            actor
                .change("subscriber.add", &input.reference_id)
                .after(json!(input)),
        )?;
        Ok(id)
    })
}

/// Changes the contact fields of a reference ID.
pub fn update_subscriber(
    conn: &mut Connection,
    actor: &Actor<'_>,
    reference_id: &str,
    input: &SubscriberInput,
) -> Result<()> {
    let input = input.trimmed();
    input.validate()?;
    db::write_tx(conn, |tx| {
        let s = subscriber(tx, actor, reference_id)?;
        subscribers::update_subscriber(tx, s.id, &input)?;
        actor.record(
            tx,
            actor
                .change("subscriber.modify", reference_id)
                .before(json!(s.fields))
                .after(json!(input)),
        )
    })
}

/// Deletes a reference ID that has no devices left.
pub fn delete_subscriber(
    conn: &mut Connection,
    actor: &Actor<'_>,
    reference_id: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let s = subscriber(tx, actor, reference_id)?;
        subscribers::delete_subscriber(tx, s.id)?;
        actor.record(
            tx,
            actor
                .change("subscriber.delete", reference_id)
                .before(json!(s.fields)),
        )
    })
}

/// Refuses a MAC the actor may not associate: held by another account or company, or
/// associated already.
pub fn check_mac_free(conn: &Connection, actor: &Actor<'_>, mac: &Mac) -> Result<()> {
    let Some(owner) = assoc::find_owner(conn, mac.as_str())? else {
        return Ok(());
    };
    // Another account's or company's MAC: the same words for both, naming neither.
    if owner.account_id != actor.account.id.0
        || (owner.associated && !visible(&actor.user.scope(), &owner))
    {
        return Err(Error::Conflict(format!(
            "MAC {mac} is already associated elsewhere"
        )));
    }
    if owner.associated {
        return Err(Error::Conflict(match owner.reference_id {
            Some(r) => {
                format!("MAC {mac} is already associated (reference ID {r}); modify it instead")
            }
            None => format!("MAC {mac} is already associated; modify it instead"),
        }));
    }
    Ok(())
}

/// Validates one association for the actor without writing.
pub fn check_association(
    conn: &Connection,
    actor: &Actor<'_>,
    input: &DeviceInput,
) -> Result<(NewDevice, i64)> {
    let (new, profile_id) = check_device(conn, actor.account, input, actor.own)?;
    check_mac_free(conn, actor, &new.mac)?;
    Ok((new, profile_id))
}

/// Associates one or more devices, linked to a reference ID if given. All or nothing:
/// the error names every problem as `devices[i].field`.
pub fn associate(
    conn: &mut Connection,
    actor: &Actor<'_>,
    reference_id: Option<&str>,
    inputs: &[DeviceInput],
) -> Result<Vec<Mac>> {
    if inputs.is_empty() {
        return Err(Error::invalid("devices", "give at least one device"));
    }
    db::write_tx(conn, |tx| {
        let sub = match reference_id {
            Some(r) if !r.trim().is_empty() => Some(subscriber(tx, actor, r.trim())?),
            _ => None,
        };
        let mut checked = Vec::new();
        let mut problems = Vec::new();
        let mut conflict = None;
        let mut seen = std::collections::HashSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let prefix = |f: &str| {
                if inputs.len() == 1 {
                    f.to_string()
                } else {
                    format!("devices[{i}].{f}")
                }
            };
            match check_association(tx, actor, input) {
                Ok((new, pid)) => {
                    if !seen.insert(new.mac) {
                        problems.push(FieldError::new(
                            prefix("mac"),
                            format!("{} is given twice", new.mac),
                        ));
                    }
                    checked.push((new, pid));
                }
                Err(Error::Invalid(p)) => problems.extend(
                    p.into_iter()
                        .map(|e| FieldError::new(prefix(&e.field), e.message)),
                ),
                Err(Error::Conflict(m)) => conflict = Some(m),
                Err(e) => return Err(e),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        if let Some(m) = conflict {
            return Err(Error::Conflict(m));
        }
        let mut macs = Vec::new();
        for (new, pid) in &checked {
            assoc::insert_association(
                tx,
                actor.account.id.0,
                new,
                *pid,
                sub.as_ref().map(|s| s.id),
                actor.user.owner_company(),
            )?;
            super::enrolment::open_until_enrolled(tx, actor.account, &new.mac, &actor.who.name)?;
            actor.record(
                tx,
                actor
                    .change("device.associate", new.mac.as_str())
                    .after(json!({
                        "reference_id": sub.as_ref().map(|s| s.fields.reference_id.clone()),
                        "device": device_state(tx, &new.mac)?,
                    })),
            )?;
            macs.push(new.mac);
        }
        if let Some(s) = &sub {
            subscribers::refresh_status(tx, s.id, actor.expires_at())?;
        }
        Ok(macs)
    })
}

/// The device with this MAC, if the actor may see it.
pub fn device(conn: &Connection, actor: &Actor<'_>, mac: &Mac) -> Result<Device> {
    let owner = assoc::find_owner(conn, mac.as_str())?
        .filter(|o| actor.user.may_act_in(o.account_id))
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    if owner.associated && !visible(&actor.user.scope(), &owner) {
        return Err(Error::Forbidden(format!(
            "device {mac} was associated by another company"
        )));
    }
    // Phones seen but not associated belong to no company yet: any role may claim them.
    devices::find_device_by_mac(conn, mac)?.ok_or_else(|| Error::not_found(format!("device {mac}")))
}

/// Phones seen but not associated that the actor may claim, most recently seen first, and
/// how many there are: an installation-wide user's of every account (as before accounts
/// were tenants), a scoped user's of the account they act in.
pub fn unassociated(
    conn: &Connection,
    actor: &Actor<'_>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<assoc::DeviceRow>)> {
    let only = (!actor.user.installation_wide()).then_some(actor.account.id.0);
    Ok((
        assoc::count_unassociated(conn, only)?,
        assoc::list_unassociated(conn, only, limit, offset)?,
    ))
}

/// The reference ID a device is linked to, if any.
pub fn device_subscriber(conn: &Connection, mac: &Mac) -> Result<Option<String>> {
    Ok(assoc::find_owner(conn, mac.as_str())?.and_then(|o| o.reference_id))
}

/// Modifies an association: serial, vendor model, profile, extensions and line 1. A change
/// that sends a seen phone to another provisioning server (its profile's or its own
/// `prov_server`) is counted and confirmed first (I5).
pub fn modify_device(
    conn: &mut Connection,
    actor: &Actor<'_>,
    mac: &Mac,
    input: &DeviceInput,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        if let Some(moved) = modify_in(tx, actor, mac, input)? {
            Impact::of([moved]).require(confirm, "moving the device to another server")?;
        }
        Ok(())
    })
}

/// `modify_device` inside a transaction: writes the change and its audit entry, and
/// returns the phone it sends to another provisioning server, with why, for the caller to
/// have confirmed (and roll back otherwise).
pub(crate) fn modify_in(
    tx: &Connection,
    actor: &Actor<'_>,
    mac: &Mac,
    input: &DeviceInput,
) -> Result<Option<(String, String)>> {
    let d = device(tx, actor, mac)?;
    let elsewhere = |tx: &Connection| crate::db::devices::external_server(tx, d.id);
    let was_elsewhere = elsewhere(tx)?;
    let mut input = input.clone();
    input.mac = mac.to_string();
    // An address sent back as shown (its password masked) keeps the stored one.
    if crate::domain::provserver::is_masked_form_of(&input.ext.prov_server, &d.ext.prov_server) {
        input.ext.prov_server = d.ext.prov_server.clone();
    }
    let (new, pid) = check_device(tx, actor.account, &input, actor.own)?;
    if d.profile_id.is_none() {
        return Err(Error::Conflict(format!(
            "device {mac} is not associated; associate it first"
        )));
    }
    assoc::update_association(tx, d.id, &new, pid)?;
    // Judged on the stored result, then rolled back if not confirmed.
    let mut moved = None;
    if !was_elsewhere && elsewhere(tx)? {
        moved = phone_impact(tx, actor, mac, |r| {
            Some(format!(
                "moved to another provisioning server (profile {}): this server sends it \
                 there and no longer provides its configuration",
                r.profile.as_deref().unwrap_or("--")
            ))
        })?
        .phones
        .into_iter()
        .next()
        .map(|p| (p.mac, p.reason));
    }
    actor.record(
        tx,
        actor
            .change("device.modify", mac.as_str())
            .before(device_json(&d))
            .after(device_state(tx, mac)?),
    )?;
    Ok(moved)
}

/// Copies an association to another MAC: profile, reference ID and vendor extensions, but
/// not line 1's SIP user ID, password, label or display name (they belong to one phone).
pub fn copy_device(
    conn: &mut Connection,
    actor: &Actor<'_>,
    from: &Mac,
    to: &str,
    serial: &str,
) -> Result<Mac> {
    db::write_tx(conn, |tx| {
        let d = device(tx, actor, from)?;
        let profile = d.profile_name.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "device {from} is not associated; there is nothing to copy"
            ))
        })?;
        let input = DeviceInput {
            mac: to.trim().to_string(),
            serial: serial.trim().to_string(),
            vendor_model: d.vendor_model.clone(),
            profile,
            ext: d.ext.clone(),
            line1: Default::default(),
        };
        let (new, pid) = check_association(tx, actor, &input)?;
        let sub = assoc::find_owner(tx, from.as_str())?.and_then(|o| o.reference_id);
        let sub_id = match sub {
            Some(r) => subscribers::find_subscriber(tx, &r)?.map(|s| s.id),
            None => None,
        };
        assoc::insert_association(
            tx,
            actor.account.id.0,
            &new,
            pid,
            sub_id,
            actor.user.owner_company(),
        )?;
        super::enrolment::open_until_enrolled(tx, actor.account, &new.mac, &actor.who.name)?;
        actor.record(
            tx,
            actor
                .change("device.copy", new.mac.as_str())
                .after(json!({"from": from.as_str(), "device": device_state(tx, &new.mac)?})),
        )?;
        Ok(new.mac)
    })
}

/// Replaces a faulty device: the association (profile, extensions, lines, reference ID)
/// moves to the new MAC, which starts `staged`; the old phone's overrides and logs are
/// dropped, its contacts and call lists move along (rows here, files by the caller). The
/// old phone, if it was seen, loses its service: counted and confirmed first (I5).
pub fn replace_device(
    conn: &mut Connection,
    actor: &Actor<'_>,
    old: &Mac,
    new_mac: &str,
    serial: &str,
    confirm: bool,
) -> Result<(Mac, Vec<(String, String)>)> {
    let new: Mac = match Mac::from_bare(new_mac.trim()).or_else(|| Mac::parse_lenient(new_mac)) {
        Some(m) if !m.is_zero() => m,
        _ => {
            return Err(Error::invalid(
                "new_mac",
                format!("`{new_mac}` is not a MAC address (12 hex digits)"),
            ));
        }
    };
    let serial = serial.trim();
    let mut p = Vec::new();
    if !serial.is_empty() {
        crate::domain::device::check_serial(serial, &mut p);
    }
    if new == *old {
        p.push(FieldError::new("new_mac", "is the MAC being replaced"));
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    db::write_tx(conn, |tx| {
        let d = device(tx, actor, old)?;
        if d.profile_id.is_none() {
            return Err(Error::Conflict(format!("device {old} is not associated")));
        }
        check_mac_free(tx, actor, &new)?;
        phone_impact(tx, actor, old, |_| {
            Some(format!(
                "replaced by {new}: it loses its profile, its lines and its own credential"
            ))
        })?
        .require(confirm, "replacing the device")?;
        // A new phone seen before (unassociated) gives way to the association.
        if let Some(o) = assoc::find_owner(tx, new.as_str())? {
            tx.execute("DELETE FROM devices WHERE id = ?1", [o.device_id])?;
        }
        let serial = if serial.is_empty() {
            new.upper()
        } else {
            serial.to_string()
        };
        assoc::change_mac(tx, d.id, &new, &serial)?;
        super::enrolment::revoke_for_replacement(tx, actor.account, d.id, &new, &actor.who.name)?;
        let moved = assoc::move_uploads(tx, old, &new, &["contacts", "calllists"])?;
        actor.record(
            tx,
            actor
                .change("device.replace", old.as_str())
                .before(json!({"mac": old.as_str()}))
                .after(json!({"mac": new.as_str(), "serial": serial})),
        )?;
        Ok((new, moved))
    })
}

/// Moves the upload files `replace_device` moved in the database (contacts, call lists) to
/// the new MAC's directory under `uploads_root`, and removes the old MAC's directory. Run
/// after the transaction committed; a file that cannot be moved is logged.
pub fn move_upload_files(
    uploads_root: &std::path::Path,
    old: &Mac,
    new: &Mac,
    moved: &[(String, String)],
) {
    for (kind, name) in moved {
        let from = uploads_root.join(old.as_str()).join(kind).join(name);
        let to_dir = uploads_root.join(new.as_str()).join(kind);
        let to = to_dir.join(name.replace(old.as_str(), new.as_str()));
        if std::fs::create_dir_all(&to_dir)
            .and_then(|_| std::fs::rename(&from, &to))
            .is_err()
        {
            log::warn!("could not move {} to {}", from.display(), to.display());
        }
    }
    let _ = std::fs::remove_dir_all(uploads_root.join(old.as_str()));
}

/// Deletes a device (and what was recorded about it); its reference ID becomes partial if
/// it was the last one. A device seen on the device endpoint is a phone that loses its
/// service: counted and confirmed first (I5).
pub fn delete_device(
    conn: &mut Connection,
    actor: &Actor<'_>,
    mac: &Mac,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        impact_delete(tx, actor, mac)?.require(confirm, "deleting the device")?;
        delete_in(tx, actor, mac)
    })
}

/// `delete_device` inside a transaction, once its impact was confirmed.
pub(crate) fn delete_in(tx: &Connection, actor: &Actor<'_>, mac: &Mac) -> Result<()> {
    let d = device(tx, actor, mac)?;
    let sub = assoc::find_owner(tx, mac.as_str())?.and_then(|o| o.reference_id);
    devices::delete_device(tx, mac)?;
    actor.record(
        tx,
        actor
            .change("device.delete", mac.as_str())
            .before(json!({"reference_id": sub, "device": device_json(&d)})),
    )?;
    if let Some(r) = sub
        && let Some(s) = subscribers::find_subscriber(tx, &r)?
    {
        subscribers::refresh_status(tx, s.id, actor.expires_at())?;
    }
    Ok(())
}
