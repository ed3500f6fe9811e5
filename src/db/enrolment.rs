//! Queries on `device_credentials` (a device's own credential, sealed at rest) and
//! `enrolment_windows` (when the account credential may hand a device its own).

use rusqlite::{Connection, OptionalExtension, params};

use super::secrets;
use crate::error::Result;

/// A device's own credential (user = its MAC), opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    pub device_id: i64,
    pub password: String,
    /// The password before a rotation, accepted until the device uses the new one.
    pub previous: Option<String>,
    pub created_at: i64,
    /// When the device first authenticated with `password`.
    pub confirmed_at: Option<i64>,
}

/// An enrolment window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub id: i64,
    pub account_id: i64,
    /// One MAC, or every device of the account.
    pub mac: Option<String>,
    pub opened_at: i64,
    pub closes_at: i64,
    pub opened_by: String,
}

pub fn find_device_credential(
    conn: &Connection,
    device_id: i64,
) -> Result<Option<DeviceCredential>> {
    let row = conn
        .prepare_cached(
            "SELECT device_id, password, previous, created_at, confirmed_at
             FROM device_credentials WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| {
            Ok(DeviceCredential {
                device_id: r.get(0)?,
                password: secrets::open_sql(r.get(1)?)?,
                previous: r
                    .get::<_, Option<String>>(2)?
                    .map(secrets::open_sql)
                    .transpose()?,
                created_at: r.get(3)?,
                confirmed_at: r.get(4)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// Stores a new credential for a device, keeping the current one as `previous` when
/// `keep_previous` (a rotation of a confirmed credential) and dropping it otherwise.
pub fn store_device_credential(
    conn: &Connection,
    device_id: i64,
    password: &str,
    keep_previous: bool,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO device_credentials (device_id, password, previous, created_at, confirmed_at)
         VALUES (?1, ?2, NULL, ?3, NULL)
         ON CONFLICT (device_id) DO UPDATE SET
             previous = CASE WHEN ?4 THEN device_credentials.password ELSE NULL END,
             password = excluded.password, created_at = excluded.created_at,
             confirmed_at = NULL",
        params![device_id, secrets::seal(password), now, keep_previous],
    )?;
    Ok(())
}

/// The device authenticated with its current password: confirmed, and the previous one
/// is no longer accepted.
pub fn confirm_device_credential(conn: &Connection, device_id: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE device_credentials SET confirmed_at = ?2, previous = NULL
         WHERE device_id = ?1 AND (confirmed_at IS NULL OR previous IS NOT NULL)",
        params![device_id, now],
    )?;
    Ok(())
}

/// Forgets a device's credential (re-enrolment). Returns whether it had one.
pub fn delete_device_credential(conn: &Connection, device_id: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM device_credentials WHERE device_id = ?1",
        [device_id],
    )? > 0)
}

pub fn insert_window(
    conn: &Connection,
    account_id: i64,
    mac: Option<&str>,
    opened_at: i64,
    closes_at: i64,
    opened_by: &str,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at, opened_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, mac, opened_at, closes_at, opened_by],
    )?;
    Ok(conn.last_insert_rowid())
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, account_id, mac, opened_at, closes_at, opened_by FROM enrolment_windows
         WHERE account_id = ?1 AND closes_at > ?2 ORDER BY closes_at",
    )?;
    let rows = stmt.query_map(params![account_id, now], |r| {
        Ok(Window {
            id: r.get(0)?,
            account_id: r.get(1)?,
            mac: r.get(2)?,
            opened_at: r.get(3)?,
            closes_at: r.get(4)?,
            opened_by: r.get(5)?,
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
