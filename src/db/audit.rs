//! Queries on `audit_log`. Values arrive masked (`domain::audit::mask`); this file only
//! stores and reads them: the newest entries a `domain::audit::Filter` selects, a page of
//! them before or after an entry id (keyset paging: no OFFSET, so a page costs the same at
//! the millionth entry as at the first; indexes of migration 0020), and the action kinds
//! recorded.

use rusqlite::{Connection, params};
use serde_json::Value;

pub use crate::domain::audit::Entry;
use crate::domain::audit::{Actor, ActorKind, Change, Filter, mask};
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
    let filter = Filter {
        account_id,
        ..Filter::default()
    };
    list_filtered(conn, &filter, limit)
}

/// The newest `limit` entries a filter selects, newest first (the downloads).
pub fn list_filtered(conn: &Connection, filter: &Filter, limit: u32) -> Result<Vec<Entry>> {
    let many = ranged(filter) && count(conn, filter, None)? > MANY;
    select(conn, filter, None, limit, many)
}

/// Above this many selected entries, a page is read walking the ids rather than through
/// the actor or time index: the matches are dense enough that the walk stops soon, while
/// the index would hand over every match to be sorted by id first.
const MANY: u64 = 10_000;

/// Whether a filter has a range (actor prefix, days) an index could serve out of id order.
fn ranged(filter: &Filter) -> bool {
    filter.who.is_some() || filter.from.is_some() || filter.until.is_some()
}

/// Where a page starts: the newest entries, those older than an entry, or those newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Newest,
    /// Entries with an id below this one (the "Older" link).
    Before(i64),
    /// Entries with an id above this one (the "Newer" link).
    After(i64),
}

/// One page of entries, newest first, with where it sits among those the filter selects.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// How many selected entries are newer than the first shown.
    pub newer: u64,
    /// How many selected entries are older than the last shown.
    pub older: u64,
    /// How many entries the filter selects.
    pub total: u64,
}

/// A page of at most `per` entries from `cursor`.
pub fn page(conn: &Connection, filter: &Filter, cursor: Cursor, per: u32) -> Result<Page> {
    let total = count(conn, filter, None)?;
    let entries = select(
        conn,
        filter,
        Some(cursor),
        per,
        ranged(filter) && total > MANY,
    )?;
    let newer = match (entries.first(), cursor) {
        (Some(e), _) => count(conn, filter, Some(e.id))?,
        (None, Cursor::Newest | Cursor::After(_)) => 0,
        (None, Cursor::Before(_)) => total,
    };
    let older = total.saturating_sub(newer + entries.len() as u64);
    Ok(Page {
        entries,
        newer,
        older,
        total,
    })
}

/// The action kinds recorded, in name order: one index step per kind (a skip scan of
/// `audit_log_action`), not a read of every entry. Action names are the product's own
/// words, not an account's data, so every kind is listed whoever reads.
pub fn list_actions(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE kinds(action) AS (
             SELECT min(action) FROM audit_log
             UNION ALL
             SELECT (SELECT min(action) FROM audit_log WHERE action > kinds.action)
             FROM kinds WHERE kinds.action IS NOT NULL
         )
         SELECT action FROM kinds WHERE action IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The conditions of a filter as SQL with its parameters; `by_id`: the actor and time
/// conditions written so that no index serves them (`+column`), for a walk in id order.
fn conditions(filter: &Filter, by_id: bool) -> (Vec<&'static str>, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = Vec::new();
    let mut args = Vec::new();
    if let Some(a) = filter.account_id {
        sql.push("account_id = ?");
        args.push(V::Integer(a));
    }
    if let Some(w) = &filter.who {
        // A prefix as a range, so the actor index serves it (`LIKE` would not: it folds
        // case and treats `%` and `_` as wildcards). U+10FFFF sorts after every character.
        sql.push(if by_id {
            "+actor >= ? AND +actor < ?"
        } else {
            "actor >= ? AND actor < ?"
        });
        args.push(V::Text(w.clone()));
        args.push(V::Text(format!("{w}\u{10FFFF}")));
    }
    if let Some(w) = &filter.what {
        sql.push("action = ?");
        args.push(V::Text(w.clone()));
    }
    if let Some(t) = &filter.target {
        sql.push("instr(lower(target), ?) > 0");
        args.push(V::Text(t.clone()));
    }
    if let Some(f) = filter.from {
        sql.push(if by_id { "+ts >= ?" } else { "ts >= ?" });
        args.push(V::Integer(f));
    }
    if let Some(u) = filter.until {
        sql.push(if by_id { "+ts < ?" } else { "ts < ?" });
        args.push(V::Integer(u));
    }
    (sql, args)
}

/// How many entries a filter selects, or how many of them are newer than entry `above`.
fn count(conn: &Connection, filter: &Filter, above: Option<i64>) -> Result<u64> {
    let (mut sql, mut args) = conditions(filter, false);
    if let Some(id) = above {
        sql.push("id > ?");
        args.push(rusqlite::types::Value::Integer(id));
    }
    let text = format!("SELECT count(*) FROM audit_log{}", where_of(&sql));
    let n: i64 = conn
        .prepare_cached(&text)?
        .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

fn where_of(sql: &[&str]) -> String {
    if sql.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", sql.join(" AND "))
    }
}

/// At most `limit` entries a filter selects from a cursor, newest first; `by_id`: walking
/// the ids (see `MANY`).
fn select(
    conn: &Connection,
    filter: &Filter,
    cursor: Option<Cursor>,
    limit: u32,
    by_id: bool,
) -> Result<Vec<Entry>> {
    let (mut sql, mut args) = conditions(filter, by_id);
    let mut ascending = false;
    match cursor {
        None | Some(Cursor::Newest) => {}
        Some(Cursor::Before(id)) => {
            sql.push("id < ?");
            args.push(rusqlite::types::Value::Integer(id));
        }
        Some(Cursor::After(id)) => {
            sql.push("id > ?");
            args.push(rusqlite::types::Value::Integer(id));
            ascending = true;
        }
    }
    args.push(rusqlite::types::Value::Integer(i64::from(limit)));
    let text = format!(
        "SELECT id, ts, actor, actor_kind, account_id, action, target, before, after
         FROM audit_log{} ORDER BY id {} LIMIT ?",
        where_of(&sql),
        if ascending { "ASC" } else { "DESC" }
    );
    let mut stmt = conn.prepare_cached(&text)?;
    let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
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
    let mut entries: Vec<Entry> = rows.collect::<rusqlite::Result<_>>()?;
    if ascending {
        entries.reverse();
    }
    Ok(entries)
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

    /// 120 entries by two actors on two days, one of them about a phone.
    fn filled() -> Connection {
        let conn = super::super::open_in_memory().expect("db");
        for i in 0..120_i64 {
            let actor = if i % 3 == 0 {
                Actor::person("bob")
            } else {
                Actor::token("alice (API token)")
            };
            let e = NewEntry {
                ts: 86_400 * (1 + i / 60) + i,
                actor: &actor,
                account_id: Some(1 + i % 2),
                action: if i % 4 == 0 {
                    "device.modify"
                } else {
                    "site.add"
                },
                target: &if i == 7 {
                    "0004f2aabbcc".to_string()
                } else {
                    format!("site {i}")
                },
                before: None,
                after: None,
            };
            insert_entry(&conn, &e).expect("insert");
        }
        conn
    }

    #[test]
    fn pages_follow_the_id_without_overlap_and_count_their_position() {
        let conn = filled();
        let all = Filter::default();
        let first = page(&conn, &all, Cursor::Newest, 50).expect("page");
        assert_eq!(
            (first.entries.len(), first.newer, first.older, first.total),
            (50, 0, 70, 120)
        );
        assert_eq!(first.entries[0].id, 120);
        let last_id = first.entries[49].id;
        let second = page(&conn, &all, Cursor::Before(last_id), 50).expect("page");
        assert_eq!(second.entries[0].id, last_id - 1);
        assert_eq!((second.newer, second.older), (50, 20));
        let third = page(&conn, &all, Cursor::Before(second.entries[49].id), 50).expect("page");
        assert_eq!(
            (third.entries.len(), third.newer, third.older),
            (20, 100, 0)
        );
        let back = page(&conn, &all, Cursor::After(third.entries[0].id), 50).expect("page");
        assert_eq!(
            back.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            second.entries.iter().map(|e| e.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn filters_select_by_actor_prefix_action_target_day_and_account() {
        let conn = filled();
        let n = |f: Filter| page(&conn, &f, Cursor::Newest, 500).expect("page").total;
        let who = |w: &str| Filter {
            who: Some(w.into()),
            ..Filter::default()
        };
        assert_eq!(n(who("bob")), 40);
        assert_eq!(n(who("alice")), 80);
        assert_eq!(n(who("alice (API token)")), 80);
        assert_eq!(n(who("ali%")), 0);
        assert_eq!(
            n(Filter {
                what: Some("device.modify".into()),
                ..Filter::default()
            }),
            30
        );
        assert_eq!(
            n(Filter {
                target: Some("f2aabb".into()),
                ..Filter::default()
            }),
            1
        );
        assert_eq!(
            n(Filter {
                from: Some(2 * 86_400),
                ..Filter::default()
            }),
            60
        );
        assert_eq!(
            n(Filter {
                until: Some(2 * 86_400),
                ..Filter::default()
            }),
            60
        );
        assert_eq!(
            n(Filter {
                account_id: Some(2),
                who: Some("bob".into()),
                ..Filter::default()
            }),
            20
        );
        let rows = list_filtered(&conn, &who("bob"), 10_000).expect("list");
        assert_eq!(rows.len(), 40);
        assert!(rows.iter().all(|e| e.actor == "bob"));
        // Walking the ids (a filter selecting many entries) gives what the indexes give.
        let days = Filter {
            from: Some(86_400),
            until: Some(2 * 86_400),
            ..who("alice")
        };
        for f in [who("bob"), days] {
            let ids = |by_id| {
                select(&conn, &f, Some(Cursor::Before(100)), 10, by_id)
                    .expect("select")
                    .iter()
                    .map(|e| e.id)
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(true), ids(false), "{f:?}");
            assert_eq!(ids(true).len(), 10, "{f:?}");
        }
        assert_eq!(
            list_actions(&conn).expect("kinds"),
            vec!["device.modify", "site.add"]
        );
    }
}
