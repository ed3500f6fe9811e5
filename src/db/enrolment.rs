//! Queries on `device_credentials` (a device's own credential, sealed at rest) and
//! `enrolment_windows` (when the account credential may hand a device its own).

use rusqlite::{Connection, OptionalExtension, params};

use super::secrets::{self, Credential};
pub use crate::domain::enrolment::{DeviceCredential, Window};
use crate::error::Result;

pub fn find_device_credential(
    conn: &Connection,
    device_id: i64,
) -> Result<Option<DeviceCredential>> {
    let row = conn
        .prepare_cached(
            "SELECT device_id, password, created_at, confirmed_at, enrolled_at, deliveries,
                    contested_at
             FROM device_credentials WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| {
            Ok(DeviceCredential {
                device_id: r.get(0)?,
                password: secrets::open_in_sql(Credential::Own(device_id), r.get(1)?)?,
                outstanding: Vec::new(),
                retired: Vec::new(),
                created_at: r.get(2)?,
                confirmed_at: r.get(3)?,
                enrolled_at: r.get(4)?,
                deliveries: r.get(5)?,
                contested_at: r.get(6)?,
            })
        })
        .optional()?;
    let Some(mut c) = row else { return Ok(None) };
    let mut stmt = conn.prepare_cached(
        "SELECT password, retired_at FROM device_credential_history
         WHERE device_id = ?1 ORDER BY id DESC",
    )?;
    for r in stmt.query_map([device_id], |r| {
        Ok((
            secrets::open_in_sql(Credential::Own(device_id), r.get(0)?)?,
            r.get::<_, Option<i64>>(1)?,
        ))
    })? {
        let (password, retired_at) = r?;
        if retired_at.is_some() {
            c.retired.push(password);
        } else {
            c.outstanding.push(password);
        }
    }
    Ok(Some(c))
}

/// Stores a new current password for a device. The one it replaces stays accepted
/// (outstanding) when `keep_previous` — it was delivered, so the device may hold it —
/// and is dropped otherwise (never sent: nobody holds it).
pub fn store_device_credential(
    conn: &Connection,
    device_id: i64,
    password: &str,
    keep_previous: bool,
    now: i64,
) -> Result<()> {
    if keep_previous {
        conn.execute(
            "INSERT INTO device_credential_history (device_id, password, created_at)
             SELECT device_id, password, created_at FROM device_credentials WHERE device_id = ?1",
            [device_id],
        )?;
    }
    conn.execute(
        "INSERT INTO device_credentials (device_id, password, previous, created_at, confirmed_at,
                                         deliveries)
         VALUES (?1, ?2, NULL, ?3, NULL, 0)
         ON CONFLICT (device_id) DO UPDATE SET password = excluded.password,
             created_at = excluded.created_at, confirmed_at = NULL, deliveries = 0",
        params![
            device_id,
            secrets::seal_in(Credential::Own(device_id), password),
            now
        ],
    )?;
    Ok(())
}

/// The device authenticated with its current password: confirmed (and enrolled), and every
/// older one it may have held is retired (it proved it moved on).
pub fn confirm_device_credential(conn: &Connection, device_id: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE device_credentials SET confirmed_at = coalesce(confirmed_at, ?2),
             enrolled_at = coalesce(enrolled_at, ?2)
         WHERE device_id = ?1 AND (confirmed_at IS NULL OR enrolled_at IS NULL)",
        params![device_id, now],
    )?;
    conn.execute(
        "UPDATE device_credential_history SET retired_at = ?2
         WHERE device_id = ?1 AND retired_at IS NULL",
        params![device_id, now],
    )?;
    close_until_enrolled(conn, device_id, now)
}

/// The windows that stay open until the device enrols close: it did.
fn close_until_enrolled(conn: &Connection, device_id: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE enrolment_windows SET closes_at = ?2
         WHERE until_enrolled = 1 AND closes_at > ?2
           AND mac = (SELECT mac FROM devices WHERE id = ?1)
           AND account_id = (SELECT account_id FROM devices WHERE id = ?1)",
        params![device_id, now],
    )?;
    conn.execute(
        "UPDATE devices SET secrets_until_enrolled = 0
         WHERE id = ?1 AND secrets_until_enrolled = 1",
        [device_id],
    )?;
    Ok(())
}

/// The device authenticated with an older own password it still holds: it is enrolled (it
/// proved an own credential), and the current one is still to be delivered.
pub fn note_enrolled(conn: &Connection, device_id: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE device_credentials SET enrolled_at = ?2
         WHERE device_id = ?1 AND enrolled_at IS NULL",
        params![device_id, now],
    )?;
    close_until_enrolled(conn, device_id, now)
}

/// Counts one delivery of the current password.
pub fn note_credential_delivered(conn: &Connection, device_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE device_credentials SET deliveries = deliveries + 1 WHERE device_id = ?1",
        [device_id],
    )?;
    Ok(())
}

/// Forgets a device's credential and every older one (re-enrolment). Returns whether it had
/// one.
pub fn delete_device_credential(conn: &Connection, device_id: i64) -> Result<bool> {
    conn.execute(
        "DELETE FROM device_credential_history WHERE device_id = ?1",
        [device_id],
    )?;
    Ok(conn.execute(
        "DELETE FROM device_credentials WHERE device_id = ?1",
        [device_id],
    )? > 0)
}

/// Stores a new window (its `id` is ignored); returns it with its id.
pub fn insert_window(conn: &Connection, w: &Window) -> Result<Window> {
    conn.execute(
        "INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at, opened_by,
                                        until_enrolled, address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            w.account_id,
            w.mac,
            w.opened_at,
            w.closes_at,
            w.opened_by,
            w.until_enrolled,
            w.address
        ],
    )?;
    Ok(Window {
        id: conn.last_insert_rowid(),
        ..w.clone()
    })
}

/// Closes every open window of an account (or only those for one MAC). Returns how many.
pub fn close_windows(
    conn: &Connection,
    account_id: i64,
    mac: Option<&str>,
    now: i64,
) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE enrolment_windows SET closes_at = ?3
         WHERE account_id = ?1 AND closes_at > ?3 AND (?2 IS NULL OR mac = ?2)",
        params![account_id, mac, now],
    )?)
}

/// Windows of an account still open at `now`.
pub fn list_open_windows(conn: &Connection, account_id: i64, now: i64) -> Result<Vec<Window>> {
    windows_where(
        conn,
        "SELECT id, account_id, mac, opened_at, closes_at, opened_by, until_enrolled, address
         FROM enrolment_windows
         WHERE account_id = ?1 AND closes_at > ?2 ORDER BY closes_at, id",
        params![account_id, now],
    )
}

/// The open windows that cover one device: its own and the account-wide ones, in the
/// order of `list_open_windows` (two index lookups, whatever the number of windows).
pub fn list_open_windows_for(
    conn: &Connection,
    account_id: i64,
    mac: &str,
    now: i64,
) -> Result<Vec<Window>> {
    windows_where(
        conn,
        "SELECT * FROM (
           SELECT id, account_id, mac, opened_at, closes_at, opened_by, until_enrolled, address
           FROM enrolment_windows WHERE mac = ?3 AND closes_at > ?2 AND account_id = ?1
           UNION ALL
           SELECT id, account_id, mac, opened_at, closes_at, opened_by, until_enrolled, address
           FROM enrolment_windows WHERE mac IS NULL AND closes_at > ?2 AND account_id = ?1)
         ORDER BY closes_at, id",
        params![account_id, now, mac],
    )
}

fn windows_where(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Window>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| {
        Ok(Window {
            id: r.get(0)?,
            account_id: r.get(1)?,
            mac: r.get(2)?,
            opened_at: r.get(3)?,
            closes_at: r.get(4)?,
            opened_by: r.get(5)?,
            until_enrolled: r.get(6)?,
            address: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether a window open at `now` lets `mac` of the account enrol.
pub fn window_open_for(conn: &Connection, account_id: i64, mac: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM enrolment_windows
             WHERE account_id = ?1 AND closes_at > ?3 AND opened_at <= ?3 AND (mac IS NULL OR mac = ?2)
             LIMIT 1",
        )?
        .query_row(params![account_id, mac, now], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Turns withholding on or off for an account.
pub fn set_device_secrets(conn: &Connection, account_id: i64, on: bool) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE accounts SET device_secrets = ?2, updated_at = ?3 WHERE id = ?1",
        params![account_id, on, super::now_secs()],
    )? > 0)
}

/// One client that presented the account credential for a device around its enrolment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claim {
    pub address: String,
    pub user_agent: String,
    /// When it was first sent the device's pending credential.
    pub delivered_at: Option<i64>,
    /// When it first came with the account credential after the device enrolled.
    pub after_enrolment_at: Option<i64>,
    pub last_at: i64,
    pub requests: i64,
}

/// Most claims kept per device (a flood from many addresses adds to the last one's count).
const MAX_CLAIMS: i64 = 32;

/// Records a claim: `delivered` (it was sent the pending credential) or a request with the
/// account credential after the device enrolled. The device is contested from the second
/// address the pending credential went to, or from any claim after enrolment. Returns
/// whether it is contested now.
pub fn record_claim(
    conn: &Connection,
    device_id: i64,
    address: &str,
    user_agent: &str,
    delivered: bool,
    now: i64,
) -> Result<bool> {
    let known: i64 = conn.query_row(
        "SELECT count(*) FROM enrolment_claims WHERE device_id = ?1",
        [device_id],
        |r| r.get(0),
    )?;
    let (address, user_agent) = if known >= MAX_CLAIMS {
        ("(more addresses)", "")
    } else {
        (address, user_agent)
    };
    let (d, a) = if delivered {
        (Some(now), None)
    } else {
        (None, Some(now))
    };
    conn.execute(
        "INSERT INTO enrolment_claims (device_id, address, user_agent, delivered_at,
                                       after_enrolment_at, last_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (device_id, address, user_agent) DO UPDATE SET
             delivered_at = coalesce(delivered_at, excluded.delivered_at),
             after_enrolment_at = coalesce(after_enrolment_at, excluded.after_enrolment_at),
             last_at = excluded.last_at, requests = requests + 1",
        params![device_id, address, truncate(user_agent), d, a, now],
    )?;
    let addresses: i64 = conn.query_row(
        "SELECT count(DISTINCT address) FROM enrolment_claims
         WHERE device_id = ?1 AND delivered_at IS NOT NULL",
        [device_id],
        |r| r.get(0),
    )?;
    let contested = !delivered || addresses > 1;
    if contested {
        conn.execute(
            "UPDATE device_credentials SET contested_at = coalesce(contested_at, ?2)
             WHERE device_id = ?1",
            params![device_id, now],
        )?;
    }
    Ok(contested)
}

fn truncate(ua: &str) -> &str {
    match ua.char_indices().nth(200) {
        Some((i, _)) => &ua[..i],
        None => ua,
    }
}

/// The claims recorded for a device, oldest first.
pub fn list_claims(conn: &Connection, device_id: i64) -> Result<Vec<Claim>> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, user_agent, delivered_at, after_enrolment_at, last_at, requests
         FROM enrolment_claims WHERE device_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([device_id], |r| {
        Ok(Claim {
            address: r.get(0)?,
            user_agent: r.get(1)?,
            delivered_at: r.get(2)?,
            after_enrolment_at: r.get(3)?,
            last_at: r.get(4)?,
            requests: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forgets a device's claims and its contested mark (dismissed, or re-enrolled).
pub fn clear_claims(conn: &Connection, device_id: i64) -> Result<bool> {
    conn.execute(
        "DELETE FROM enrolment_claims WHERE device_id = ?1",
        [device_id],
    )?;
    Ok(conn.execute(
        "UPDATE device_credentials SET contested_at = NULL
         WHERE device_id = ?1 AND contested_at IS NOT NULL",
        [device_id],
    )? > 0)
}

/// Whether the device keeps the secrets it was served before withholding became the
/// default (until it first enrols).
pub fn served_before(conn: &Connection, device_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT secrets_until_enrolled FROM devices WHERE id = ?1")?
        .query_row([device_id], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}
