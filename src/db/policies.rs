//! Queries on `sites`, `device_groups`, `device_sites`, `device_group_members` and
//! `policies`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
pub use crate::domain::policy::{Group, Policy, ScopeKind, Site};
use crate::error::{Error, Result};

fn site_from_row(r: &Row<'_>) -> rusqlite::Result<Site> {
    Ok(Site {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
    })
}

fn group_from_row(r: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        priority: r.get(3)?,
        description: r.get(4)?,
    })
}

fn conflict_on_unique(e: rusqlite::Error, what: String) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::Conflict(format!("{what} exists already"))
        }
        other => other.into(),
    }
}

pub fn insert_site(
    conn: &Connection,
    account_id: i64,
    name: &str,
    description: &str,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO sites (account_id, name, description, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, name, description, now_secs()],
    )
    .map_err(|e| conflict_on_unique(e, format!("site `{name}`")))?;
    Ok(conn.last_insert_rowid())
}

pub fn update_site(conn: &Connection, id: i64, description: &str) -> Result<()> {
    conn.execute(
        "UPDATE sites SET description = ?2 WHERE id = ?1",
        params![id, description],
    )?;
    Ok(())
}

pub fn find_site(conn: &Connection, account_id: i64, name: &str) -> Result<Option<Site>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, account_id, name, description FROM sites WHERE account_id = ?1 AND name = ?2",
        )?
        .query_row(params![account_id, name], site_from_row)
        .optional()?)
}

pub fn list_sites(conn: &Connection, account_id: i64) -> Result<Vec<Site>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, account_id, name, description FROM sites WHERE account_id = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([account_id], site_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes a site; its devices lose their site and its policies go with it.
pub fn delete_site(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM sites WHERE id = ?1", [id])?;
    Ok(())
}

pub fn insert_group(
    conn: &Connection,
    account_id: i64,
    name: &str,
    priority: i64,
    description: &str,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO device_groups (account_id, name, priority, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, name, priority, description, now_secs()],
    )
    .map_err(|e| conflict_on_unique(e, format!("group `{name}`")))?;
    Ok(conn.last_insert_rowid())
}

pub fn update_group(conn: &Connection, id: i64, priority: i64, description: &str) -> Result<()> {
    conn.execute(
        "UPDATE device_groups SET priority = ?2, description = ?3 WHERE id = ?1",
        params![id, priority, description],
    )?;
    Ok(())
}

pub fn find_group(conn: &Connection, account_id: i64, name: &str) -> Result<Option<Group>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, account_id, name, priority, description FROM device_groups
             WHERE account_id = ?1 AND name = ?2",
        )?
        .query_row(params![account_id, name], group_from_row)
        .optional()?)
}

/// Groups in precedence order: higher priority first, equal priorities oldest (lowest id)
/// first.
pub fn list_groups(conn: &Connection, account_id: i64) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, account_id, name, priority, description FROM device_groups
         WHERE account_id = ?1 ORDER BY priority DESC, id",
    )?;
    let rows = stmt.query_map([account_id], group_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_group(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM device_groups WHERE id = ?1", [id])?;
    Ok(())
}

/// Sets (or clears) a device's site.
pub fn set_device_site(conn: &Connection, device_id: i64, site_id: Option<i64>) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        match site_id {
            Some(site) => conn.execute(
                "INSERT INTO device_sites (device_id, site_id) VALUES (?1, ?2)
             ON CONFLICT (device_id) DO UPDATE SET site_id = excluded.site_id
             WHERE site_id IS NOT excluded.site_id",
                params![device_id, site],
            )?,
            None => conn.execute("DELETE FROM device_sites WHERE device_id = ?1", [device_id])?,
        };
        Ok(())
    })
}

/// A device's site.
pub fn device_site(conn: &Connection, device_id: i64) -> Result<Option<Site>> {
    Ok(conn
        .prepare_cached(
            "SELECT s.id, s.account_id, s.name, s.description FROM device_sites ds
             JOIN sites s ON s.id = ds.site_id WHERE ds.device_id = ?1",
        )?
        .query_row([device_id], site_from_row)
        .optional()?)
}

/// A device's groups in precedence order.
pub fn device_groups(conn: &Connection, device_id: i64) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.account_id, g.name, g.priority, g.description FROM device_group_members m
         JOIN device_groups g ON g.id = m.group_id WHERE m.device_id = ?1
         ORDER BY g.priority DESC, g.id",
    )?;
    let rows = stmt.query_map([device_id], group_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a device to a group; returns false if it was a member already.
pub fn add_member(conn: &Connection, group_id: i64, device_id: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO device_group_members (group_id, device_id) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
        params![group_id, device_id],
    )? == 1)
}

/// Removes a device from a group; returns false if it was not a member.
pub fn remove_member(conn: &Connection, group_id: i64, device_id: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM device_group_members WHERE group_id = ?1 AND device_id = ?2",
        params![group_id, device_id],
    )? == 1)
}

/// MACs of the devices at a site.
pub fn list_site_devices(conn: &Connection, site_id: i64) -> Result<Vec<String>> {
    macs(
        conn,
        "SELECT d.mac FROM device_sites ds JOIN devices d ON d.id = ds.device_id
         WHERE ds.site_id = ?1 ORDER BY d.mac",
        site_id,
    )
}

/// MACs of a group's members.
pub fn list_members(conn: &Connection, group_id: i64) -> Result<Vec<String>> {
    macs(
        conn,
        "SELECT d.mac FROM device_group_members m JOIN devices d ON d.id = m.device_id
         WHERE m.group_id = ?1 ORDER BY d.mac",
        group_id,
    )
}

/// The single column of `sql` (one `?1` parameter) as strings.
fn macs(conn: &Connection, sql: &str, id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a policy value; returns the previous value.
pub fn upsert_policy(
    conn: &Connection,
    account_id: i64,
    scope: ScopeKind,
    scope_id: i64,
    parameter: &str,
    value: &str,
) -> Result<Option<String>> {
    let before = find_policy(conn, scope, scope_id, parameter)?;
    if before.as_deref() == Some(value) {
        // Unchanged (compared in clear: sealed values differ on every write).
        return Ok(before);
    }
    let now = now_secs();
    let stored = seal(scope, scope_id, parameter, value);
    conn.execute(
        "INSERT INTO policies (account_id, scope, scope_id, parameter, value, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (scope, scope_id, parameter) DO UPDATE SET value = excluded.value,
             updated_at = excluded.updated_at",
        params![account_id, scope.as_str(), scope_id, parameter, stored, now],
    )?;
    Ok(before)
}

/// A policy value as stored: sealed and bound to its row when the parameter is a secret.
fn seal(scope: ScopeKind, scope_id: i64, parameter: &str, value: &str) -> String {
    if !crate::domain::polycom::params::is_secret(parameter) {
        return value.to_string();
    }
    let row = super::secrets::policy_row(scope.as_str(), scope_id, parameter);
    super::secrets::seal_at(&place(&row), value)
}

fn place(row: &str) -> super::secrets::Place<'_> {
    super::secrets::Place {
        table: "policies",
        column: "value",
        row,
    }
}

/// A stored policy value in clear (`seal`'s inverse).
fn open(scope: &str, scope_id: i64, parameter: &str, stored: String) -> rusqlite::Result<String> {
    if !super::secrets::is_sealed(&stored) {
        return Ok(stored);
    }
    let row = super::secrets::policy_row(scope, scope_id, parameter);
    super::secrets::open_at_sql(&place(&row), stored)
}

pub fn find_policy(
    conn: &Connection,
    scope: ScopeKind,
    scope_id: i64,
    parameter: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT value FROM policies WHERE scope = ?1 AND scope_id = ?2 AND parameter = ?3",
        )?
        .query_row(params![scope.as_str(), scope_id, parameter], |r| {
            open(scope.as_str(), scope_id, parameter, r.get(0)?)
        })
        .optional()?)
}

/// Removes a policy value; returns the value it had.
pub fn delete_policy(
    conn: &Connection,
    scope: ScopeKind,
    scope_id: i64,
    parameter: &str,
) -> Result<Option<String>> {
    let before = find_policy(conn, scope, scope_id, parameter)?;
    conn.execute(
        "DELETE FROM policies WHERE scope = ?1 AND scope_id = ?2 AND parameter = ?3",
        params![scope.as_str(), scope_id, parameter],
    )?;
    Ok(before)
}

/// The SQL naming a policy's target.
const TARGET: &str = "CASE p.scope
        WHEN 'account' THEN ''
        WHEN 'site' THEN (SELECT name FROM sites WHERE id = p.scope_id)
        WHEN 'group' THEN (SELECT name FROM device_groups WHERE id = p.scope_id)
        ELSE (SELECT mac FROM devices WHERE id = p.scope_id) END";

fn policy_from_row(r: &Row<'_>) -> rusqlite::Result<Policy> {
    let scope: String = r.get(0)?;
    let scope_id: i64 = r.get(1)?;
    let parameter: String = r.get(3)?;
    let value = open(&scope, scope_id, &parameter, r.get(4)?)?;
    Ok(Policy {
        // The CHECK constraint admits only the four scopes.
        scope: ScopeKind::parse(&scope).unwrap_or(ScopeKind::Account),
        scope_id,
        target: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        parameter,
        value,
    })
}

/// Every policy of an account, by scope, target and parameter.
pub fn list_policies(conn: &Connection, account_id: i64) -> Result<Vec<Policy>> {
    let sql = format!(
        "SELECT p.scope, p.scope_id, {TARGET}, p.parameter, p.value FROM policies p
         WHERE p.account_id = ?1
         ORDER BY CASE p.scope WHEN 'account' THEN 0 WHEN 'site' THEN 1 WHEN 'group' THEN 2 ELSE 3 END,
                  3, p.parameter"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([account_id], policy_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The policies of one scope.
pub fn scope_policies(conn: &Connection, scope: ScopeKind, scope_id: i64) -> Result<Vec<Policy>> {
    let sql = format!(
        "SELECT p.scope, p.scope_id, {TARGET}, p.parameter, p.value FROM policies p
         WHERE p.scope = ?1 AND p.scope_id = ?2 ORDER BY p.parameter"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![scope.as_str(), scope_id], policy_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
