//! Queries on `import_jobs` and `import_job_errors`: the bulk association jobs, their
//! progress and their rejected lines.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::csvimport::Rejected;
use crate::error::Result;

/// A bulk association job as the status page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    pub id: i64,
    /// The account the job imports into.
    #[serde(skip)]
    pub account_id: i64,
    pub username: String,
    pub owner_company: String,
    pub file_name: String,
    pub reference_id: String,
    pub dry_run: bool,
    /// `Queued`, `Processing`, `Completed`, `Completed with Errors` or `Failed`.
    pub status: String,
    pub total_rows: i64,
    pub processed_rows: i64,
    pub applied_rows: i64,
    pub rejected_rows: i64,
    pub message: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl Job {
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

const COLUMNS: &str = "id, username, owner_company, file_name, reference_id, dry_run, status, \
     total_rows, processed_rows, applied_rows, rejected_rows, message, created_at, finished_at, \
     account_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        username: r.get(1)?,
        owner_company: r.get(2)?,
        file_name: r.get(3)?,
        reference_id: r.get(4)?,
        dry_run: r.get(5)?,
        status: r.get(6)?,
        total_rows: r.get(7)?,
        processed_rows: r.get(8)?,
        applied_rows: r.get(9)?,
        rejected_rows: r.get(10)?,
        message: r.get(11)?,
        created_at: r.get(12)?,
        finished_at: r.get(13)?,
        account_id: r.get(14)?,
    })
}

/// Creates a queued job.
pub fn insert_job(
    conn: &Connection,
    account_id: i64,
    username: &str,
    owner_company: &str,
    file_name: &str,
    reference_id: &str,
    dry_run: bool,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO import_jobs (account_id, username, owner_company, file_name, reference_id,
                                  dry_run, created_at, runner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            account_id,
            username,
            owner_company,
            file_name,
            reference_id,
            dry_run,
            now_secs(),
            crate::host::process_token()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// One job; jobs whose runner has gone are marked interrupted first (`fail_orphaned`).
pub fn find_job(conn: &Connection, id: i64) -> Result<Option<Job>> {
    mark_orphaned(conn);
    let sql = format!("SELECT {COLUMNS} FROM import_jobs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// Jobs, newest first (runners gone marked first); `company` limits them to one owner
/// company.
pub fn list_jobs(
    conn: &Connection,
    company: Option<&str>,
    reference_id: Option<&str>,
    account: Option<i64>,
    limit: i64,
) -> Result<Vec<Job>> {
    mark_orphaned(conn);
    let sql = format!(
        "SELECT {COLUMNS} FROM import_jobs
         WHERE (?1 IS NULL OR owner_company = ?1) AND (?2 IS NULL OR reference_id = ?2 COLLATE NOCASE)
           AND (?4 IS NULL OR account_id = ?4)
         ORDER BY id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![company, reference_id, limit, account], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records progress of a running job.
pub fn update_progress(
    conn: &Connection,
    id: i64,
    status: &str,
    total: i64,
    processed: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE import_jobs SET status = ?2, total_rows = ?3, processed_rows = ?4 WHERE id = ?1",
        params![id, status, total, processed],
    )?;
    Ok(())
}

/// Stores the outcome of a job and its rejected lines.
pub fn finish_job(
    conn: &Connection,
    id: i64,
    status: &str,
    applied: i64,
    rejected: &[Rejected],
    message: &str,
) -> Result<()> {
    super::atomic(conn, |conn| {
        conn.execute("DELETE FROM import_job_errors WHERE job_id = ?1", [id])?;
        let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO import_job_errors (job_id, line, content, reason) VALUES (?1, ?2, ?3, ?4)",
    )?;
        for r in rejected {
            stmt.execute(params![id, r.line as i64, r.content, r.reason])?;
        }
        conn.execute(
        "UPDATE import_jobs SET status = ?2, applied_rows = ?3, rejected_rows = ?4, message = ?5,
                processed_rows = total_rows, finished_at = ?6
         WHERE id = ?1",
        params![
            id,
            status,
            applied,
            rejected.len() as i64,
            message,
            now_secs()
        ],
    )?;
        Ok(())
    })
}

/// The rejected lines of a job, by line number.
pub fn list_job_errors(conn: &Connection, id: i64) -> Result<Vec<Rejected>> {
    let mut stmt = conn.prepare_cached(
        "SELECT line, content, reason FROM import_job_errors WHERE job_id = ?1 ORDER BY line",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Rejected {
            line: r.get::<_, i64>(0)? as u64,
            content: r.get(1)?,
            reason: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The message of a job a stop interrupted (its status is `Failed`).
pub const INTERRUPTED: &str = "interrupted: the server stopped before the job finished; nothing was applied, upload the file again";

/// Marks jobs left running by a stopped server (or a crash) as interrupted: nothing of them
/// was applied, since the lines and the job's outcome commit in one transaction at the end.
pub fn fail_interrupted(conn: &Connection) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE import_jobs SET status = 'Failed', finished_at = ?1,
                message = 'interrupted: the server stopped before the job finished; nothing was applied, upload the file again'
         WHERE finished_at IS NULL",
        [now_secs()],
    )?)
}

/// Marks unfinished jobs whose runner (the process that created them: the server, or a CLI
/// `import`) no longer runs as interrupted, naming the process; nothing of them was applied.
/// Run by the server's housekeeping and before jobs are shown, so a killed CLI import does
/// not stay `Processing` until the next restart. Jobs without a runner (made before it was
/// recorded) are left to the restart.
pub fn fail_orphaned(conn: &Connection) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, runner FROM import_jobs WHERE finished_at IS NULL AND runner IS NOT NULL",
    )?;
    let running: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for (id, runner) in running {
        if crate::host::process_running(&runner) {
            continue;
        }
        let pid = runner.split(':').next().unwrap_or("");
        let message = format!(
            "interrupted: the process that ran it (pid {pid}) stopped before the job finished; \
             nothing was applied, upload the file again"
        );
        n += conn.execute(
            "UPDATE import_jobs SET status = 'Failed', finished_at = ?2, message = ?3
             WHERE id = ?1 AND finished_at IS NULL",
            params![id, now_secs(), message],
        )?;
    }
    Ok(n)
}

/// `fail_orphaned`, logged: before jobs are shown, and by the server's housekeeping every
/// minute. A failure (the database busy) only delays it.
pub fn mark_orphaned(conn: &Connection) {
    match fail_orphaned(conn) {
        Ok(n) if n > 0 => log::warn!(
            "{n} bulk import job(s) marked interrupted: the process running them (a CLI \
             import?) stopped before they finished"
        ),
        Ok(_) => {}
        Err(e) => log::debug!("marking interrupted import jobs: {e}"),
    }
}
