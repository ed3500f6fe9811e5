//! Queries on `audit_log`. Values arrive masked (`domain::audit::mask`); this file only
//! stores and reads them.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use crate::domain::audit::{Actor, ActorKind};
use crate::error::Result;

/// An entry to write.
pub struct NewEntry<'a> {
    pub ts: i64,
    pub actor: &'a Actor,
    pub account_id: Option<i64>,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub actor_kind: ActorKind,
    pub account_id: Option<i64>,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub fn insert_entry(conn: &Connection, e: &NewEntry<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (ts, actor, actor_kind, account_id, action, target, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.ts,
        e.actor.name,
        e.actor.kind.as_str(),
        e.account_id,
        e.action,
        e.target,
        e.before.as_ref().map(Value::to_string),
        e.after.as_ref().map(Value::to_string),
    ])?;
    Ok(())
}

/// The newest `limit` entries, newest first, optionally of one account.
pub fn list_entries(conn: &Connection, account_id: Option<i64>, limit: u32) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts, actor, actor_kind, account_id, action, target, before, after
         FROM audit_log WHERE ?1 IS NULL OR account_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    let rows = stmt.query_map(params![account_id, limit], |r| {
        let kind: String = r.get(3)?;
        Ok(Entry {
            id: r.get(0)?,
            ts: r.get(1)?,
            actor: r.get(2)?,
            actor_kind: ActorKind::parse(&kind),
            account_id: r.get(4)?,
            action: r.get(5)?,
            target: r.get(6)?,
            before: parse(r.get(7)?),
            after: parse(r.get(8)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
