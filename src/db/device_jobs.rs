//! Queries on `device_jobs`: long actions on many devices (a bulk action, apply-now) run in
//! the background, their start and their outcome (`actions::device_jobs` runs them; their
//! progress while running is kept in memory there).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::error::Result;

/// A job as its page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceJob {
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub username: String,
    /// `bulk` or `apply-now`.
    pub kind: String,
    /// What it does ("Move 300 devices to site hq").
    pub description: String,
    pub total: i64,
    /// Devices processed: the final count once finished (the page adds the live count of a
    /// running job from memory).
    pub done: i64,
    /// `queued`, `running`, `done`, `failed` or `interrupted`.
    pub state: String,
    /// What it did, or why not.
    pub outcome: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl DeviceJob {
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

const COLUMNS: &str = "id, account_id, username, kind, description, total, done, state, outcome, \
     created_at, started_at, finished_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<DeviceJob> {
    Ok(DeviceJob {
        id: r.get(0)?,
        account_id: r.get(1)?,
        username: r.get(2)?,
        kind: r.get(3)?,
        description: r.get(4)?,
        total: r.get(5)?,
        done: r.get(6)?,
        state: r.get(7)?,
        outcome: r.get(8)?,
        created_at: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
    })
}

/// Creates a queued job run by this process.
pub fn insert(
    conn: &Connection,
    account_id: i64,
    username: &str,
    kind: &str,
    description: &str,
    total: usize,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO device_jobs (account_id, username, kind, description, total, created_at, runner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            account_id,
            username,
            kind,
            description,
            total as i64,
            now_secs(),
            crate::host::process_token()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Marks a queued job running.
pub fn start(conn: &Connection, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE device_jobs SET state = 'running', started_at = ?2
         WHERE id = ?1 AND finished_at IS NULL",
        params![id, now_secs()],
    )?;
    Ok(())
}

/// Ends a job: `done` or `failed` with its outcome and the devices it processed (at most
/// its total). Returns whether the row was still unfinished (a job ends once).
pub fn finish(conn: &Connection, id: i64, state: &str, done: usize, outcome: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE device_jobs SET state = ?2, done = min(?3, total), outcome = ?4, finished_at = ?5
         WHERE id = ?1 AND finished_at IS NULL",
        params![id, state, done as i64, outcome, now_secs()],
    )?;
    Ok(n > 0)
}

/// The job `id` of `account` (jobs whose runner has gone marked interrupted first).
pub fn find(conn: &Connection, account_id: i64, id: i64) -> Result<Option<DeviceJob>> {
    mark_orphaned(conn);
    let sql = format!("SELECT {COLUMNS} FROM device_jobs WHERE id = ?1 AND account_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id, account_id], from_row)
        .optional()?)
}

/// The outcome of a job whose runner stopped before it finished. A bulk action commits its
/// changes with its job's outcome, so none of them was applied; apply-now may have sent
/// check-sync to some phones.
fn interrupted(kind: &str, pid: &str) -> String {
    let what = if kind == "apply-now" {
        "some phones may have been sent check-sync; none was audited, apply now again to be sure"
    } else {
        "nothing was changed; start it again"
    };
    format!("interrupted: the server (pid {pid}) stopped before the job finished; {what}")
}

/// Marks unfinished jobs whose runner no longer runs (a stopped or crashed server)
/// `interrupted`. Run at start, by housekeeping and before a job is shown.
pub fn fail_orphaned(conn: &Connection) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, runner FROM device_jobs WHERE finished_at IS NULL AND runner IS NOT NULL",
    )?;
    let running: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for (id, kind, runner) in running {
        if crate::host::process_running(&runner) {
            continue;
        }
        let pid = runner.split(':').next().unwrap_or("");
        n += conn.execute(
            "UPDATE device_jobs SET state = 'interrupted', finished_at = ?2, outcome = ?3
             WHERE id = ?1 AND finished_at IS NULL",
            params![id, now_secs(), interrupted(&kind, pid)],
        )?;
    }
    Ok(n)
}

/// `fail_orphaned`, logged; a failure (the database busy) only delays it.
pub fn mark_orphaned(conn: &Connection) {
    match fail_orphaned(conn) {
        Ok(n) if n > 0 => log::warn!(
            "{n} device job(s) marked interrupted: the server running them stopped before they \
             finished"
        ),
        Ok(_) => {}
        Err(e) => log::debug!("marking interrupted device jobs: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_ends_once_and_never_counts_past_its_total() {
        let conn = crate::db::open_in_memory().expect("db");
        let a = crate::db::accounts::ensure_default(&conn)
            .expect("account")
            .0
            .id
            .0;
        let id = insert(&conn, a, "admin", "bulk", "Move 3 devices to site hq", 3).expect("insert");
        start(&conn, id).expect("start");
        let j = find(&conn, a, id).expect("find").expect("job");
        assert_eq!((j.state.as_str(), j.is_finished()), ("running", false));
        assert!(
            find(&conn, a + 1, id).expect("find").is_none(),
            "another account's"
        );
        assert!(finish(&conn, id, "done", 7, "Done.").expect("finish"));
        assert!(!finish(&conn, id, "failed", 0, "late").expect("again"));
        let j = find(&conn, a, id).expect("find").expect("job");
        assert_eq!(
            (j.state.as_str(), j.done, j.outcome.as_str()),
            ("done", 3, "Done.")
        );
    }

    #[test]
    fn a_job_whose_runner_is_gone_is_interrupted() {
        let conn = crate::db::open_in_memory().expect("db");
        let a = crate::db::accounts::ensure_default(&conn)
            .expect("account")
            .0
            .id
            .0;
        let id = insert(&conn, a, "admin", "bulk", "Delete 2 devices", 2).expect("insert");
        conn.execute(
            "UPDATE device_jobs SET runner = '999999999:1', state = 'running' WHERE id = ?1",
            [id],
        )
        .expect("runner");
        let j = find(&conn, a, id).expect("find").expect("job");
        assert_eq!(j.state, "interrupted");
        assert!(j.outcome.contains("nothing was changed"), "{}", j.outcome);
    }
}
