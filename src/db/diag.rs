//! Queries for diagnostics: the stored runs of probes and their findings (`diag_runs`,
//! `diag_findings`), and the facts the findings read from what phones did (wrong
//! credentials in `access_log`, override files in `uploads`).

use rusqlite::{Connection, OptionalExtension, params};

use super::now_secs;
use crate::domain::finding::{Finding, Severity};
use crate::error::Result;

/// Runs kept per kind; older ones are deleted when a new one is stored.
pub const RUNS_KEPT: i64 = 20;

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub error: String,
    pub result: String,
}

/// Starts a run (status `running`) and returns its id.
pub fn insert_run(conn: &Connection, kind: &str, subject: &str) -> Result<i64> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        conn.execute(
        "INSERT INTO diag_runs (kind, subject, started_at, status) VALUES (?1, ?2, ?3, 'running')",
        params![kind, subject, now_secs()],
    )?;
        let id = conn.last_insert_rowid();
        conn.execute(
            "DELETE FROM diag_runs WHERE kind = ?1 AND id NOT IN (
             SELECT id FROM diag_runs WHERE kind = ?1 ORDER BY id DESC LIMIT ?2)",
            params![kind, RUNS_KEPT],
        )?;
        Ok(id)
    })
}

/// Finishes a run: its outcome, what it saw (JSON) and its findings.
pub fn finish_run(
    conn: &Connection,
    id: i64,
    error: Option<&str>,
    result_json: &str,
    findings: &[Finding],
) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        conn.execute(
        "UPDATE diag_runs SET finished_at = ?2, status = ?3, error = ?4, result = ?5 WHERE id = ?1",
        params![
            id,
            now_secs(),
            if error.is_some() { "failed" } else { "ok" },
            error.unwrap_or(""),
            result_json
        ],
    )?;
        conn.execute("DELETE FROM diag_findings WHERE run_id = ?1", [id])?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO diag_findings (run_id, position, severity, code, title, evidence, fix)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (i, f) in findings.iter().enumerate() {
            stmt.execute(params![
                id,
                i as i64,
                f.severity.as_str(),
                f.code,
                f.title,
                f.evidence,
                f.fix
            ])?;
        }
        Ok(())
    })
}

const RUN_COLUMNS: &str = "id, kind, subject, started_at, finished_at, status, error, result";

fn run_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        status: r.get(5)?,
        error: r.get(6)?,
        result: r.get(7)?,
    })
}

/// The newest run of a kind.
pub fn find_latest_run(conn: &Connection, kind: &str) -> Result<Option<RunRow>> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM diag_runs WHERE kind = ?1 ORDER BY id DESC LIMIT 1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([kind], run_from)
        .optional()?)
}

/// A run by id.
pub fn find_run(conn: &Connection, id: i64) -> Result<Option<RunRow>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM diag_runs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], run_from)
        .optional()?)
}

/// The findings of a run, in stored order.
pub fn list_findings(conn: &Connection, run_id: i64) -> Result<Vec<Finding>> {
    let mut stmt = conn.prepare_cached(
        "SELECT severity, code, title, evidence, fix FROM diag_findings WHERE run_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        let sev: String = r.get(0)?;
        Ok(Finding {
            // The CHECK constraint admits only the three names.
            severity: Severity::parse(&sev).unwrap_or(Severity::Info),
            code: r.get(1)?,
            title: r.get(2)?,
            evidence: r.get(3)?,
            fix: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Wrong credentials seen from one MAC (or, without a MAC, one IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAuth {
    pub mac: Option<String>,
    pub ip: String,
    pub count: i64,
    pub last_bad_ms: i64,
    /// The last request with right credentials from the same MAC and IP, if any.
    pub last_ok_ms: Option<i64>,
    pub user_agent: String,
}

/// Every MAC/IP that sent wrong credentials since `since_ms`, the most recent first.
pub fn list_bad_auth(conn: &Connection, since_ms: i64) -> Result<Vec<BadAuth>> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.mac, b.ip, count(*), max(b.ts_ms),
                (SELECT max(o.ts_ms) FROM access_log o
                  WHERE o.auth IN ('ok', 'enrol', 'withheld') AND o.ip = b.ip AND o.mac IS b.mac),
                (SELECT u.user_agent FROM access_log u
                  WHERE u.auth = 'bad' AND u.ip = b.ip AND u.mac IS b.mac ORDER BY u.id DESC LIMIT 1)
         FROM access_log b
         WHERE b.auth = 'bad' AND b.ts_ms >= ?1
         GROUP BY b.mac, b.ip
         ORDER BY max(b.ts_ms) DESC
         LIMIT 200",
    )?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok(BadAuth {
            mac: r.get(0)?,
            ip: r.get(1)?,
            count: r.get(2)?,
            last_bad_ms: r.get(3)?,
            last_ok_ms: r.get(4)?,
            user_agent: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A client address that read too many devices' files without proving it is them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyMacs {
    pub ip: String,
    /// Requests past the limit (`many-macs` in the access log; `mac-limit` from releases
    /// that refused them).
    pub refused: i64,
    /// Distinct MACs it asked for over the same period (refused or not).
    pub macs: i64,
    pub last_ms: i64,
    pub user_agent: String,
}

/// Every address past the limit of MACs read since `since_ms`, the most recent first.
pub fn list_many_macs(conn: &Connection, since_ms: i64) -> Result<Vec<ManyMacs>> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.ip, count(*), max(b.ts_ms),
                (SELECT count(DISTINCT o.mac) FROM access_log o
                  WHERE o.ip = b.ip AND o.ts_ms >= ?1 AND o.mac IS NOT NULL),
                (SELECT u.user_agent FROM access_log u
                  WHERE u.auth IN ('many-macs', 'mac-limit') AND u.ip = b.ip ORDER BY u.id DESC LIMIT 1)
         FROM access_log b
         WHERE b.auth IN ('many-macs', 'mac-limit') AND b.ts_ms >= ?1
         GROUP BY b.ip
         ORDER BY max(b.ts_ms) DESC
         LIMIT 100",
    )?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok(ManyMacs {
            ip: r.get(0)?,
            refused: r.get(1)?,
            last_ms: r.get(2)?,
            macs: r.get(3)?,
            user_agent: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stored override files (`<mac>-phone.cfg`, `-web.cfg`, `-system.cfg`): `(mac, file)`.
pub fn list_override_uploads(
    conn: &Connection,
    account_id: Option<i64>,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.mac, u.file_name FROM uploads u
         WHERE u.kind = 'overrides'
           AND (?1 IS NULL OR EXISTS (SELECT 1 FROM devices d
                                      WHERE d.mac = u.mac AND d.account_id = ?1))
         ORDER BY u.mac, u.file_name",
    )?;
    let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::access::{AccessRecord, write_batch};
    use crate::db::open_in_memory;
    use rusqlite::Connection;

    #[test]
    fn runs_keep_their_findings_and_old_runs_go() {
        let conn = open_in_memory().expect("db");
        let id = insert_run(&conn, "dns", "example.com").expect("insert");
        let f = Finding::new(Severity::Warning, "dns.rtcconfig", "t", "e", "f");
        finish_run(&conn, id, None, "{}", std::slice::from_ref(&f)).expect("finish");
        let run = find_latest_run(&conn, "dns").expect("find").expect("run");
        assert_eq!(
            (run.status.as_str(), run.subject.as_str()),
            ("ok", "example.com")
        );
        assert_eq!(list_findings(&conn, id).expect("list"), vec![f]);
        for _ in 0..RUNS_KEPT + 3 {
            insert_run(&conn, "dns", "x").expect("insert");
        }
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM diag_runs WHERE kind = 'dns'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, RUNS_KEPT);
        assert!(find_run(&conn, id).expect("find").is_none());
        let orphans: i64 = conn
            .query_row("SELECT count(*) FROM diag_findings", [], |r| r.get(0))
            .expect("count");
        assert_eq!(orphans, 0, "findings go with their run");
    }

    #[test]
    fn a_populated_database_of_the_first_schema_upgrades() {
        let mut conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(crate::db::MIGRATIONS[0].1)
            .expect("0001");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        // A row as the first release wrote it (the queries of today name later columns).
        conn.execute_batch(
            "INSERT INTO accounts (name, slug, service_key, is_default, device_user,
                                   device_password, created_at, updated_at)
             VALUES ('Default', 'default', 'KEY', 1, 'PlcmSpIp', 'secret-one', 1, 1);",
        )
        .expect("account");
        let applied = crate::db::migrate(&mut conn).expect("migrate");
        assert_eq!(applied as i64, crate::db::SCHEMA_VERSION - 1);
        let account = crate::db::accounts::find_default(&conn)
            .expect("find")
            .expect("existing rows survive");
        assert_eq!(
            (account.slug.as_str(), account.device_user.as_deref()),
            ("default", Some("PlcmSpIp"))
        );
        assert_eq!(account.device_password.as_deref(), Some("secret-one"));
        // 0003 turns Auto-Sync off on accounts that existed before it (the Lens Auto-Sync
        // page); 0009 withholds secrets in every account (devices served before keep them
        // until they enrol).
        assert!(!account.autosync_enabled);
        assert!(account.device_secrets);
        let id = insert_run(&conn, "phones", "x").expect("the new tables exist");
        assert!(id > 0);
    }

    #[test]
    fn wrong_credentials_are_grouped_per_mac_and_ip() {
        let mut conn = open_in_memory().expect("db");
        let rec = |ts: i64, mac: Option<&str>, ip: &str, auth: &'static str| AccessRecord {
            ts_ms: ts,
            mac: mac.map(String::from),
            ip: ip.into(),
            method: "GET".into(),
            path: "/x.cfg".into(),
            status: 401,
            auth,
            ..Default::default()
        };
        write_batch(
            &mut conn,
            &[
                rec(1000, Some("0004f2000001"), "10.0.0.1", "bad"),
                rec(2000, Some("0004f2000001"), "10.0.0.1", "bad"),
                rec(3000, Some("0004f2000002"), "10.0.0.2", "bad"),
                rec(4000, Some("0004f2000002"), "10.0.0.2", "ok"),
                rec(5000, None, "10.0.0.3", "bad"),
                rec(10, Some("0004f2000009"), "10.0.0.9", "bad"),
            ],
        )
        .expect("write");
        let rows = list_bad_auth(&conn, 500).expect("list");
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].mac.as_deref(), rows[0].count), (None, 1));
        let one = rows
            .iter()
            .find(|r| r.mac.as_deref() == Some("0004f2000001"))
            .expect("one");
        assert_eq!((one.count, one.last_ok_ms), (2, None));
        let two = rows
            .iter()
            .find(|r| r.mac.as_deref() == Some("0004f2000002"))
            .expect("two");
        assert_eq!(two.last_ok_ms, Some(4000));
    }
}
