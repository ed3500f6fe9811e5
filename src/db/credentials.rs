//! Queries on credential generations (`account_credentials`), Auto-Sync settings (columns of
//! `accounts`), service-address aliases (`account_aliases`) and what each device is known
//! to hold (`device_sync`).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::now_secs;
use crate::domain::account::AccountId;
use crate::domain::autosync::{Generation, History, Readmit, Settings};
use crate::domain::polycom::models::Family;
use crate::error::{Error, Result};

const GEN_COLUMNS: &str =
    "account_id, generation, user, password, created_at, retired_at, accept_until, compromised";

fn gen_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Generation)> {
    let account_id: i64 = r.get(0)?;
    let generation: i64 = r.get(1)?;
    Ok((
        account_id,
        Generation {
            generation,
            user: r.get(2)?,
            password: super::secrets::open_in_sql(
                super::secrets::Credential::Account {
                    account_id,
                    generation,
                },
                r.get(3)?,
            )?,
            created_at: r.get(4)?,
            retired_at: r.get(5)?,
            accept_until: r.get(6)?,
            compromised: r.get(7)?,
        },
    ))
}

/// Every account's credential history, oldest generation first.
pub fn load_histories(conn: &Connection) -> Result<HashMap<AccountId, History>> {
    let sql =
        format!("SELECT {GEN_COLUMNS} FROM account_credentials ORDER BY account_id, generation");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out: HashMap<AccountId, History> = HashMap::new();
    for row in stmt.query_map([], gen_from_row)? {
        let (account, g) = row?;
        out.entry(AccountId(account))
            .or_default()
            .generations
            .push(g);
    }
    Ok(out)
}

/// One account's credential history, oldest generation first.
pub fn load_history(conn: &Connection, account: AccountId) -> Result<History> {
    let sql = format!(
        "SELECT {GEN_COLUMNS} FROM account_credentials WHERE account_id = ?1 ORDER BY generation"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let generations = stmt
        .query_map([account.0], gen_from_row)?
        .map(|r| r.map(|(_, g)| g))
        .collect::<rusqlite::Result<_>>()?;
    Ok(History { generations })
}

/// Stores a history computed by `History::rotated` (or a first generation): updates the
/// windows of existing generations, inserts new ones, and makes the last one the account's
/// current credentials. Run inside a transaction.
pub fn store_history(conn: &Connection, account: AccountId, history: &History) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let current = history
            .generations
            .last()
            .ok_or_else(|| Error::invalid("credentials", "no credential generation to store"))?;
        let mut upsert = conn.prepare_cached(
            "INSERT INTO account_credentials (account_id, generation, user, password, created_at,
                                          retired_at, accept_until, compromised)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (account_id, generation) DO UPDATE SET retired_at = excluded.retired_at,
             accept_until = excluded.accept_until
         WHERE retired_at IS NOT excluded.retired_at OR accept_until IS NOT excluded.accept_until",
        )?;
        for g in &history.generations {
            upsert.execute(params![
                account.0,
                g.generation,
                g.user,
                super::secrets::seal_in(
                    super::secrets::Credential::Account {
                        account_id: account.0,
                        generation: g.generation,
                    },
                    &g.password,
                ),
                g.created_at,
                g.retired_at,
                g.accept_until,
                g.compromised
            ])?;
        }
        let n = conn.execute(
        "UPDATE accounts SET device_user = ?2, device_password = ?3, credential_generation = ?4,
                updated_at = ?5
         WHERE id = ?1",
        params![
            account.0,
            current.user,
            super::secrets::seal_in(
                super::secrets::Credential::Account {
                    account_id: account.0,
                    generation: current.generation,
                },
                &current.password,
            ),
            current.generation,
            now_secs()
        ],
    )?;
        if n == 0 {
            return Err(Error::not_found(format!("account {}", account.0)));
        }
        Ok(())
    })
}

const SETTINGS_COLUMNS: &str = "id, provisioning_enabled, autosync_enabled, autosync_grace_days, \
     autosync_seen_days, autosync_poly_os";

fn settings_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Settings)> {
    Ok((
        r.get(0)?,
        Settings {
            provisioning_enabled: r.get(1)?,
            enabled: r.get(2)?,
            grace_days: r.get(3)?,
            seen_days: r.get(4)?,
            poly_os: r.get(5)?,
        },
    ))
}

/// Every account's Auto-Sync settings.
pub fn load_all_settings(conn: &Connection) -> Result<HashMap<AccountId, Settings>> {
    let sql = format!("SELECT {SETTINGS_COLUMNS} FROM accounts");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], settings_from_row)?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, s) = row?;
        out.insert(AccountId(id), s);
    }
    Ok(out)
}

/// One account's Auto-Sync settings.
pub fn load_settings(conn: &Connection, account: AccountId) -> Result<Settings> {
    let sql = format!("SELECT {SETTINGS_COLUMNS} FROM accounts WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([account.0], settings_from_row)
        .optional()?
        .map(|(_, s)| s)
        .ok_or_else(|| Error::not_found(format!("account {}", account.0)))
}

/// Stores an account's provisioning and Auto-Sync settings.
pub fn store_settings(conn: &Connection, account: AccountId, s: &Settings) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET provisioning_enabled = ?2, autosync_enabled = ?3,
                autosync_grace_days = ?4, autosync_seen_days = ?5, autosync_poly_os = ?6,
                updated_at = ?7
         WHERE id = ?1",
        params![
            account.0,
            s.provisioning_enabled,
            s.enabled,
            s.grace_days,
            s.seen_days,
            s.poly_os,
            now_secs()
        ],
    )?;
    Ok(())
}

/// A former service address still answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    /// `<slug>-<key>`
    pub segment: String,
    pub account_id: i64,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Every alias (retired ones too), oldest first.
pub fn list_aliases(conn: &Connection, account: Option<AccountId>) -> Result<Vec<Alias>> {
    let mut stmt = conn.prepare_cached(
        "SELECT segment, account_id, created_at, retired_at FROM account_aliases
         WHERE ?1 IS NULL OR account_id = ?1 ORDER BY created_at, segment",
    )?;
    let rows = stmt.query_map([account.map(|a| a.0)], |r| {
        Ok(Alias {
            segment: r.get(0)?,
            account_id: r.get(1)?,
            created_at: r.get(2)?,
            retired_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn insert_alias(conn: &Connection, account: AccountId, segment: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO account_aliases (segment, account_id, created_at) VALUES (?1, ?2, ?3)",
        params![segment, account.0, now_secs()],
    )?;
    Ok(())
}

/// Retires an alias; returns whether it was active.
pub fn retire_alias(conn: &Connection, segment: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE account_aliases SET retired_at = ?2 WHERE segment = ?1 AND retired_at IS NULL",
        params![segment, now_secs()],
    )? == 1)
}

/// Devices whose last request came through `segment`.
pub fn count_segment_holders(conn: &Connection, segment: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM device_sync WHERE base_segment = ?1")?
        .query_row([segment], |r| r.get(0))?)
}

/// Replaces an account's service key.
pub fn update_service_key(conn: &Connection, account: AccountId, key: &str) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET service_key = ?2, updated_at = ?3 WHERE id = ?1",
        params![account.0, key, now_secs()],
    )?;
    Ok(())
}

/// What a device's requests showed, and the admins' decisions about it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeviceSync {
    /// The generation of the latest recognised request naming the device (-1: its own
    /// credential), for reports; it decides nothing.
    pub generation: Option<i64>,
    pub generation_at: Option<i64>,
    /// Service-address segment of its last request; empty for `/`.
    pub base_segment: String,
    pub family: Option<Family>,
    pub readmit: Option<Readmit>,
    /// Older generations are refused (not seen within `seen_days` before a rotation).
    pub floor: Option<i64>,
    /// The latest recognised request naming it was refused.
    pub last_refused: bool,
    /// Service-address segment of its latest proven request (own credential or certificate).
    pub proven_segment: Option<String>,
    pub proven_at: Option<i64>,
}

pub fn find_sync(conn: &Connection, device_id: i64) -> Result<Option<DeviceSync>> {
    Ok(conn
        .prepare_cached(
            "SELECT generation, generation_at, base_segment, family, readmit_generation,
                    readmit_until, floor_generation, last_refused, proven_segment, proven_at
             FROM device_sync WHERE device_id = ?1",
        )?
        .query_row([device_id], sync_from_row)
        .optional()?)
}

/// A `DeviceSync` from the ten columns `find_sync` selects, starting at column 0.
pub fn sync_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceSync> {
    sync_from_row_at(r, 0)
}

/// A `DeviceSync` from the ten columns of `find_sync`, starting at column `at`.
pub fn sync_from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<DeviceSync> {
    let family: Option<String> = r.get(at + 3)?;
    let readmit = match (
        r.get::<_, Option<i64>>(at + 4)?,
        r.get::<_, Option<i64>>(at + 5)?,
    ) {
        (generation, Some(until)) => Some(Readmit {
            generation: generation.unwrap_or(0),
            until,
        }),
        _ => None,
    };
    Ok(DeviceSync {
        generation: r.get(at)?,
        generation_at: r.get(at + 1)?,
        base_segment: r.get::<_, Option<String>>(at + 2)?.unwrap_or_default(),
        family: family.as_deref().and_then(Family::from_name),
        readmit,
        floor: r.get(at + 6)?,
        last_refused: r.get::<_, Option<bool>>(at + 7)?.unwrap_or(false),
        proven_segment: r.get(at + 8)?,
        proven_at: r.get(at + 9)?,
    })
}

/// Stores what a device's requests showed (the server's evidence; no revision bump).
pub fn store_sync(conn: &Connection, device_id: i64, s: &DeviceSync) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_sync (device_id, generation, generation_at, base_segment, family,
                                  readmit_generation, readmit_until, floor_generation,
                                  last_refused, proven_segment, proven_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (device_id) DO UPDATE SET generation = excluded.generation,
             generation_at = excluded.generation_at, base_segment = excluded.base_segment,
             family = excluded.family, readmit_generation = excluded.readmit_generation,
             readmit_until = excluded.readmit_until, floor_generation = excluded.floor_generation,
             last_refused = excluded.last_refused, proven_segment = excluded.proven_segment,
             proven_at = excluded.proven_at",
    )?
    .execute(params![
        device_id,
        s.generation,
        s.generation_at,
        s.base_segment,
        s.family.map(|f| f.name()).unwrap_or(""),
        s.readmit.map(|r| r.generation),
        s.readmit.map(|r| r.until),
        s.floor,
        s.last_refused,
        s.proven_segment,
        s.proven_at,
    ])?;
    Ok(())
}

/// Bumps the configuration revision, for admin changes to tables without triggers
/// (`device_sync`), so every process reloads what it cached.
pub fn bump_revision(conn: &Connection) -> Result<()> {
    conn.execute("UPDATE config_revision SET value = value + 1", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of schema 2 with an account, a device that authenticated through the
    /// account's service address, and one that never did.
    #[test]
    fn a_populated_schema_2_database_upgrades_with_generations_and_what_devices_hold() {
        let mut conn = Connection::open_in_memory().expect("db");
        for (_, sql) in &crate::db::MIGRATIONS[..2] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO accounts (id, name, slug, service_key, is_default, device_user,
                                   device_password, credential_generation, created_at, updated_at)
             VALUES (1, 'Default', 'default', 'KEY', 1, 'phones', 'old-password', 3, 100, 200);
             INSERT INTO devices (id, account_id, mac, created_at, updated_at)
             VALUES (1, 1, '0004f2000001', 100, 100), (2, 1, '0004f2000002', 100, 100);
             INSERT INTO device_activity (device_id, first_seen, last_seen, last_auth_ok_at)
             VALUES (1, 150, 190, 190);
             INSERT INTO access_log (ts_ms, account_id, mac, ip, method, path, status, bytes,
                                     duration_us, auth)
             VALUES (190000, 1, '0004f2000001', '10.0.0.1', 'GET', '/default-KEY/0004f2000001.cfg',
                     200, 10, 10, 'ok');",
        )
        .expect("populate");
        crate::db::migrate(&mut conn).expect("migrate");
        let id = AccountId(1);
        let history = load_history(&conn, id).expect("history");
        assert_eq!(history.current(), 3);
        assert_eq!(history.generations[0].password, "old-password");
        let settings = load_settings(&conn, id).expect("settings");
        assert!(
            !settings.enabled,
            "Auto-Sync is off for accounts that existed before it"
        );
        assert_eq!((settings.grace_days, settings.seen_days), (14, 30));
        let seen = find_sync(&conn, 1).expect("sync").expect("seeded");
        assert_eq!(seen.generation, Some(3));
        assert_eq!(seen.base_segment, "default-KEY");
        assert_eq!(
            find_sync(&conn, 2).expect("sync"),
            None,
            "never authenticated"
        );
        // A new account after the upgrade gets its first generation from the trigger.
        let b = crate::db::accounts::insert_account(&conn, "B", "branch", false, "u", "password1")
            .expect("account");
        assert_eq!(load_history(&conn, b.id).expect("history").current(), 1);
        assert!(load_settings(&conn, b.id).expect("settings").enabled);
    }
}
