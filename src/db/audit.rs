//! Queries on `audit_log`. Values arrive masked (`domain::audit::mask`); this file only
//! stores and reads them.

use rusqlite::{Connection, params};
use serde_json::Value;

pub use crate::domain::audit::Entry;
use crate::domain::audit::{Actor, ActorKind, Change, mask};
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

/// Records a change, masked (`domain::audit::mask`), in the caller's transaction: every
/// action records its entry in the transaction of its change.
pub fn record(conn: &Connection, actor: &Actor, change: Change) -> Result<()> {
    insert_entry(
        conn,
        &NewEntry {
            ts: super::now_secs(),
            actor,
            account_id: change.account_id,
            action: &change.action,
            target: &change.target,
            before: change.before.as_ref().map(mask),
            after: change.after.as_ref().map(mask),
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Actor, ActorKind, Change};
    use serde_json::json;

    #[test]
    fn entries_are_written_masked_and_listed_newest_first() {
        let conn = super::super::open_in_memory().expect("db");
        let actor = Actor::person("alice");
        record(
            &conn,
            &actor,
            Change::new(Some(1), "account.set-credentials", "default")
                .before(json!({"user": "a", "password": "old-secret"}))
                .after(json!({"user": "b", "password": "new-secret"})),
        )
        .expect("record");
        record(
            &conn,
            &Actor::cli("root"),
            Change::new(None, "site.add", "hq"),
        )
        .expect("record");
        let rows = list_entries(&conn, None, 10).expect("list");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].action, "site.add");
        assert_eq!(rows[0].actor_kind, ActorKind::Cli);
        let first = &rows[1];
        assert_eq!(first.actor, "alice");
        let text = format!("{:?}{:?}", first.before, first.after);
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(list_entries(&conn, Some(1), 10).expect("list").len(), 1);
        let csv = crate::domain::audit::to_csv(&rows).expect("csv");
        assert!(csv.starts_with("id,time,actor_kind,actor,"), "{csv}");
        assert!(
            csv.contains(",person,alice,1,account.set-credentials,default,"),
            "{csv}"
        );
        assert!(
            !csv.contains("old-secret") && csv.contains("********"),
            "{csv}"
        );
        assert_eq!(
            crate::domain::audit::iso_time(86_400 + 61),
            "1970-01-02T00:01:01Z"
        );
    }
}
