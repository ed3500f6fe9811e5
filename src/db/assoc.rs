//! Queries of the console's device operations: associations with their subscriber and
//! owner company, modifying, copying and replacing devices, and the lists of a reference ID
//! and of phones seen but not associated. Every function runs inside the caller's
//! transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::now_secs;
use crate::domain::device::NewDevice;
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

/// Who a stored MAC belongs to, for the conflict checks of an association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub device_id: i64,
    pub account_id: i64,
    pub associated: bool,
    pub owner_company: String,
    pub profile_created_by: String,
    pub reference_id: Option<String>,
}

/// The owner of a MAC, if the installation knows it.
pub fn find_owner(conn: &Connection, mac: &str) -> Result<Option<Owner>> {
    Ok(conn
        // Subqueries rather than LEFT JOINs: SQLite re-prepares a cached statement with
        // these LEFT JOINs on every use (10x slower in a bulk import's per-line check).
        .prepare_cached(
            "SELECT d.id, d.account_id, d.profile_id IS NOT NULL, d.owner_company,
                    coalesce((SELECT created_by FROM profiles WHERE id = d.profile_id), ''),
                    (SELECT reference_id FROM subscribers WHERE id = d.subscriber_id)
             FROM devices d WHERE d.mac = ?1",
        )?
        .query_row([mac], |r| {
            Ok(Owner {
                device_id: r.get(0)?,
                account_id: r.get(1)?,
                associated: r.get(2)?,
                owner_company: r.get(3)?,
                profile_created_by: r.get(4)?,
                reference_id: r.get(5)?,
            })
        })
        .optional()?)
}

/// Stores a new association (or associates a MAC only seen so far). The caller has checked
/// ownership; a MAC associated meanwhile is still a conflict, and nothing is written then.
pub fn insert_association(
    conn: &Connection,
    account_id: i64,
    d: &NewDevice,
    profile_id: i64,
    subscriber_id: Option<i64>,
    owner_company: &str,
) -> Result<i64> {
    let now = now_secs();
    let existing: Option<(i64, i64, bool)> = conn
        .prepare_cached(
            "SELECT id, account_id, profile_id IS NOT NULL FROM devices WHERE mac = ?1",
        )?
        .query_row([d.mac.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let id = match existing {
        Some((_, other, _)) if other != account_id => {
            return Err(Error::Conflict(format!(
                "MAC {} is already associated elsewhere",
                d.mac
            )));
        }
        Some((_, _, true)) => {
            return Err(Error::Conflict(format!(
                "MAC {} is already associated",
                d.mac
            )));
        }
        Some((id, _, false)) => {
            // A phone seen before: the row (and its recorded activity) stays.
            conn.prepare_cached(
                "UPDATE devices SET serial = ?2, vendor_model = ?3, profile_id = ?4,
                        subscriber_id = ?5, sip_server = ?6, outbound_proxy = ?7, prov_server = ?8,
                        prov_user = ?9, prov_password = ?10, polling = ?11, owner_company = ?12,
                        associated_at = ?13, updated_at = ?13
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                d.serial,
                d.vendor_model,
                profile_id,
                subscriber_id,
                d.ext.sip_server,
                d.ext.outbound_proxy,
                super::secrets::seal_in(
                    super::secrets::Credential::DeviceServer(id),
                    &d.ext.prov_server
                ),
                d.ext.prov_user,
                super::secrets::seal_in(
                    super::secrets::Credential::DevicePassword(id),
                    &d.ext.prov_password
                ),
                d.ext.polling,
                owner_company,
                now
            ])?;
            id
        }
        None => insert_row(
            conn,
            account_id,
            d,
            profile_id,
            subscriber_id,
            owner_company,
            now,
        )?,
    };
    if !d.line1.is_empty() {
        super::devices::upsert_line(conn, id, &d.line1)?;
    }
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
fn insert_row(
    conn: &Connection,
    account_id: i64,
    d: &NewDevice,
    profile_id: i64,
    subscriber_id: Option<i64>,
    owner_company: &str,
    now: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO devices (account_id, mac, serial, vendor_model, profile_id, subscriber_id,
                sip_server, outbound_proxy, prov_server, prov_user, prov_password, polling,
                owner_company, associated_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?14)",
    )?
    .execute(params![
        account_id,
        d.mac.as_str(),
        d.serial,
        d.vendor_model,
        profile_id,
        subscriber_id,
        d.ext.sip_server,
        d.ext.outbound_proxy,
        super::secrets::seal_unbound(
            super::secrets::Credential::DeviceServer(0),
            &d.ext.prov_server
        ),
        d.ext.prov_user,
        super::secrets::seal_unbound(
            super::secrets::Credential::DevicePassword(0),
            &d.ext.prov_password
        ),
        d.ext.polling,
        owner_company,
        now
    ])?;
    let id = conn.last_insert_rowid();
    if has_device_secret(d) {
        super::secrets::bind_inserted(conn, "devices", id)?;
    }
    Ok(id)
}

/// Whether a new device row holds a secret to bind once its id is known (most do not: the
/// bulk import's path then costs nothing more).
pub(super) fn has_device_secret(d: &NewDevice) -> bool {
    !d.ext.prov_password.is_empty() || d.ext.prov_server.contains('@')
}

/// Changes an association's fields (the MAC stays). Line 1 is replaced by the new values.
pub fn update_association(
    conn: &Connection,
    device_id: i64,
    d: &NewDevice,
    profile_id: i64,
) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let found = super::devices::update_device(conn, device_id, d, profile_id)?;
        if !found {
            return Err(Error::not_found(format!("device {}", d.mac)));
        }
        conn.execute(
            "DELETE FROM device_lines WHERE device_id = ?1 AND line = 1",
            [device_id],
        )?;
        if !d.line1.is_empty() {
            super::devices::upsert_line(conn, device_id, &d.line1)?;
        }
        Ok(())
    })
}

/// Moves an association to a new MAC: the row keeps profile, subscriber, extensions and
/// lines; what the old phone did (activity, confirmed state) is forgotten, so the new MAC
/// starts `staged`.
pub fn change_mac(conn: &Connection, device_id: i64, new_mac: &Mac, serial: &str) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        conn.execute(
        "UPDATE devices SET mac = ?2, serial = ?3, associated_at = ?4, updated_at = ?4 WHERE id = ?1",
        params![device_id, new_mac.as_str(), serial, now_secs()],
    )?;
        conn.execute(
            "DELETE FROM device_activity WHERE device_id = ?1",
            [device_id],
        )?;
        conn.execute(
            "DELETE FROM device_prov_state WHERE device_id = ?1",
            [device_id],
        )?;
        Ok(())
    })
}

/// Moves the upload rows of some kinds from one MAC to another and deletes the others.
pub fn move_uploads(
    conn: &Connection,
    old: &Mac,
    new: &Mac,
    keep_kinds: &[&str],
) -> Result<Vec<(String, String)>> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let mut stmt = conn.prepare("SELECT kind, file_name FROM uploads WHERE mac = ?1")?;
        let rows: Vec<(String, String)> = stmt
            .query_map([old.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut moved = Vec::new();
        for (kind, name) in rows {
            if keep_kinds.contains(&kind.as_str()) {
                let new_name = name.replace(old.as_str(), new.as_str());
                conn.execute(
                "UPDATE OR REPLACE uploads SET mac = ?3, file_name = ?4 WHERE mac = ?1 AND kind = ?2 AND file_name = ?5",
                params![old.as_str(), kind, new.as_str(), new_name, name],
            )?;
                moved.push((kind, name));
            } else {
                conn.execute(
                    "DELETE FROM uploads WHERE mac = ?1 AND kind = ?2 AND file_name = ?3",
                    params![old.as_str(), kind, name],
                )?;
            }
        }
        Ok(moved)
    })
}

/// A device of a reference ID, or of the unassociated list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRow {
    pub mac: String,
    pub serial: String,
    pub vendor_model: String,
    pub profile: Option<String>,
    pub last_seen: Option<i64>,
    pub access_count: i64,
    pub model: String,
    pub firmware: String,
    pub last_ip: String,
}

fn device_rows(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<DeviceRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| {
        Ok(DeviceRow {
            mac: r.get(0)?,
            serial: r.get(1)?,
            vendor_model: r.get(2)?,
            profile: r.get(3)?,
            last_seen: r.get(4)?,
            access_count: r.get(5)?,
            model: r.get(6)?,
            firmware: r.get(7)?,
            last_ip: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const DEVICE_ROW: &str = "SELECT d.mac, d.serial, d.vendor_model, p.name, a.last_seen,
        coalesce(a.access_count, 0), coalesce(a.ua_model, ''), coalesce(a.firmware, ''),
        coalesce(a.last_ip, '')
     FROM devices d LEFT JOIN profiles p ON p.id = d.profile_id
     LEFT JOIN device_activity a ON a.device_id = d.id";

/// The devices linked to a subscriber, by MAC.
pub fn list_subscriber_devices(conn: &Connection, subscriber_id: i64) -> Result<Vec<DeviceRow>> {
    device_rows(
        conn,
        &format!("{DEVICE_ROW} WHERE d.subscriber_id = ?1 ORDER BY d.mac"),
        [subscriber_id],
    )
}

/// Phones seen but not associated, most recently seen first; of one account, or of every
/// account (`None`).
pub fn list_unassociated(
    conn: &Connection,
    account: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<DeviceRow>> {
    device_rows(
        conn,
        &format!(
            "{DEVICE_ROW} WHERE d.profile_id IS NULL AND (?3 IS NULL OR d.account_id = ?3)
             ORDER BY coalesce(a.last_seen, 0) DESC, d.mac LIMIT ?1 OFFSET ?2"
        ),
        params![limit, offset, account],
    )
}

/// How many phones `list_unassociated` lists in all.
pub fn count_unassociated(conn: &Connection, account: Option<i64>) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM devices WHERE profile_id IS NULL AND (?1 IS NULL OR account_id = ?1)",
        [account],
        |r| r.get(0),
    )?)
}
