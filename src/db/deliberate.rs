//! Queries on `deliberate_parameters`: parameter names an admin marked deliberate.

use rusqlite::{Connection, OptionalExtension, params};

use super::now_secs;
use crate::error::Result;

/// One deliberate name with its reason, who marked it and when (seconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliberateName {
    pub name: String,
    pub reason: String,
    pub marked_by: String,
    pub marked_at: i64,
}

/// The deliberate names of an account, by name.
pub fn list_deliberate(conn: &Connection, account_id: i64) -> Result<Vec<DeliberateName>> {
    let mut st = conn.prepare(
        "SELECT name, reason, marked_by, marked_at FROM deliberate_parameters
         WHERE account_id = ?1 ORDER BY name",
    )?;
    let rows = st.query_map([account_id], |r| {
        Ok(DeliberateName {
            name: r.get(0)?,
            reason: r.get(1)?,
            marked_by: r.get(2)?,
            marked_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks a name deliberate (or changes its reason); returns the reason it had before.
pub fn upsert_deliberate(
    conn: &Connection,
    account_id: i64,
    name: &str,
    reason: &str,
    by: &str,
) -> Result<Option<String>> {
    let before: Option<String> = conn
        .query_row(
            "SELECT reason FROM deliberate_parameters WHERE account_id = ?1 AND name = ?2",
            params![account_id, name],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute(
        "INSERT INTO deliberate_parameters (account_id, name, reason, marked_by, marked_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account_id, name) DO UPDATE SET reason = excluded.reason,
             marked_by = excluded.marked_by, marked_at = excluded.marked_at",
        params![account_id, name, reason, by, now_secs()],
    )?;
    Ok(before)
}

/// Removes a deliberate name; returns its reason if it was there.
pub fn delete_deliberate(conn: &Connection, account_id: i64, name: &str) -> Result<Option<String>> {
    let reason: Option<String> = conn
        .query_row(
            "DELETE FROM deliberate_parameters WHERE account_id = ?1 AND name = ?2 RETURNING reason",
            params![account_id, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliberate_names_are_kept_per_account_and_replaced_and_removed() {
        let conn = crate::db::open_in_memory().expect("db");
        let id = crate::db::accounts::ensure_default(&conn)
            .expect("default account")
            .0
            .id
            .0;
        assert_eq!(
            upsert_deliberate(&conn, id, "acme.N.x", "plug-in", "ops").expect("add"),
            None
        );
        assert_eq!(
            upsert_deliberate(&conn, id, "acme.N.x", "our plug-in", "ops").expect("again"),
            Some("plug-in".into())
        );
        let rows = list_deliberate(&conn, id).expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].reason, "our plug-in");
        assert_eq!(
            delete_deliberate(&conn, id, "acme.N.x").expect("delete"),
            Some("our plug-in".into())
        );
        assert_eq!(
            delete_deliberate(&conn, id, "acme.N.x").expect("again"),
            None
        );
    }
}
