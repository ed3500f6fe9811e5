//! The SQLite database: opening connections with the pragmas every connection needs,
//! applying the numbered migrations, and a small pool of connections for handler threads.
//!
//! Migrations are append-only: a released migration is never edited, only followed by a
//! new one. A database whose schema is newer than this binary is refused, because an older
//! binary would misread it. Query functions live in one file per table group and take a
//! `&Connection`, so callers choose the transaction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

pub mod access;
pub mod accounts;
pub mod assoc;
pub mod audit;
pub mod credentials;
pub mod deliberate;
pub mod device_jobs;
pub mod devices;
pub mod diag;
pub mod enrolment;
pub mod find;
pub mod findrows;
pub mod firmware;
pub mod groupwrite;
pub mod inventory;
pub mod jobs;
pub mod policies;
pub mod profiles;
pub mod secrets;
pub mod sip;
pub mod subscribers;
pub mod templates;
pub mod users;

/// The migrations, in order; the schema version is the number of migrations applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial", include_str!("migrations/0001_initial.sql")),
    (
        "0002_diagnostics",
        include_str!("migrations/0002_diagnostics.sql"),
    ),
    ("0003_console", include_str!("migrations/0003_console.sql")),
    (
        "0004_accounts",
        include_str!("migrations/0004_accounts.sql"),
    ),
    (
        "0005_templates",
        include_str!("migrations/0005_templates.sql"),
    ),
    (
        "0006_firmware",
        include_str!("migrations/0006_firmware.sql"),
    ),
    (
        "0007_hardening",
        include_str!("migrations/0007_hardening.sql"),
    ),
    (
        "0008_state_machine",
        include_str!("migrations/0008_state_machine.sql"),
    ),
    (
        "0009_secure_default",
        include_str!("migrations/0009_secure_default.sql"),
    ),
    (
        "0010_sealed_everywhere",
        include_str!("migrations/0010_sealed_everywhere.sql"),
    ),
    (
        "0011_deliberate_parameters",
        include_str!("migrations/0011_deliberate_parameters.sql"),
    ),
    ("0012_tftp", include_str!("migrations/0012_tftp.sql")),
    ("0013_sip", include_str!("migrations/0013_sip.sql")),
    ("0014_sync_ms", include_str!("migrations/0014_sync_ms.sql")),
    (
        "0015_directory_totp",
        include_str!("migrations/0015_directory_totp.sql"),
    ),
    (
        "0016_sip_account",
        include_str!("migrations/0016_sip_account.sql"),
    ),
    (
        "0017_user_accounts",
        include_str!("migrations/0017_user_accounts.sql"),
    ),
    ("0018_ftp", include_str!("migrations/0018_ftp.sql")),
    (
        "0019_job_runner",
        include_str!("migrations/0019_job_runner.sql"),
    ),
    (
        "0020_audit_paging",
        include_str!("migrations/0020_audit_paging.sql"),
    ),
    (
        "0021_window_lookup",
        include_str!("migrations/0021_window_lookup.sql"),
    ),
    (
        "0022_device_jobs",
        include_str!("migrations/0022_device_jobs.sql"),
    ),
    (
        "0023_checkin_counts",
        include_str!("migrations/0023_checkin_counts.sql"),
    ),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Milliseconds since the Unix epoch; the database stores times as integers.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        + test_clock::offset_ms()
}

/// Simulated time for tests: in debug builds only, `ZEROTOUCH_TEST_CLOCK_FILE` names a file
/// holding a number of seconds added to the clock, read on every call, so an integration test
/// moves the server and the CLI days ahead (grace windows, "seen in the last N days") without
/// sleeping. Release builds ignore the variable.
mod test_clock {
    /// The environment variable naming the offset file.
    #[cfg(debug_assertions)]
    const VAR: &str = "ZEROTOUCH_TEST_CLOCK_FILE";

    #[cfg(debug_assertions)]
    pub fn offset_ms() -> i64 {
        static FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
        let Some(path) = FILE.get_or_init(|| std::env::var_os(VAR).map(Into::into)) else {
            return 0;
        };
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(0, |secs| secs.saturating_mul(1000))
    }

    #[cfg(not(debug_assertions))]
    pub fn offset_ms() -> i64 {
        0
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Opens a connection and sets the pragmas every connection needs.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| Error::Schema(format!("cannot open {}: {e}", path.display())))?;
    configure(&mut conn, busy_timeout)?;
    Ok(conn)
}

/// An in-memory database with migrations applied, for tests.
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    configure(&mut conn, Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Milliseconds a connection waits for another writer (`database.busy_timeout_ms`).
static BUSY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(5000);

/// Waits for a lock held by another writer with a fine-grained backoff (50 µs doubling to
/// 2 ms). SQLite's own handler sleeps 1, 2, 5, 10… 100 ms, which turns a few microseconds of
/// contention between our own writers (a phone's first sighting, the recorder's batch) into
/// tens of milliseconds of latency during a boot storm.
fn busy_handler(attempt: i32) -> bool {
    let attempt = attempt.max(0) as u64;
    let limit = 6 + BUSY_TIMEOUT_MS.load(Ordering::Relaxed) / 2;
    if attempt > limit {
        return false;
    }
    std::thread::sleep(Duration::from_micros((50u64 << attempt.min(6)).min(2000)));
    true
}

fn configure(conn: &mut Connection, busy_timeout: Duration) -> Result<()> {
    BUSY_TIMEOUT_MS.store(busy_timeout.as_millis() as u64, Ordering::Relaxed);
    conn.busy_handler(Some(busy_handler))?;
    // Query-planner stability: plans do not depend on bound values. Without it SQLite
    // re-prepares many cached statements (joins, ORDER BY on an index) on every execution
    // with new values (measured: every `find_device_by_mac`, 18-28 µs instead of a few).
    // Find turns it off for its LIKE/GLOB searches (`BoundValuePlans`).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // journal_mode returns a row, so it is read rather than executed.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    // Reads map the database file instead of copying each page through a system call into
    // a page cache of 2 MB per connection: a pass over 100,000 devices spent an eighth of
    // its time in `pread`. Address space, not memory: the pages are the kernel's file cache.
    // (An in-memory database answers no row: run as a batch, which reads none.)
    conn.execute_batch("PRAGMA mmap_size = 4294967296;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// While alive, the query planner may use bound values (QPSG off): a `LIKE ?` prefix search
/// can then use an index. For the searches of Find only; everything else keeps stable plans.
pub struct BoundValuePlans<'a> {
    conn: &'a Connection,
}

impl<'a> BoundValuePlans<'a> {
    pub fn new(conn: &'a Connection) -> Result<BoundValuePlans<'a>> {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            false,
        )?;
        Ok(BoundValuePlans { conn })
    }
}

impl Drop for BoundValuePlans<'_> {
    fn drop(&mut self) {
        let _ = self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        );
    }
}

/// The schema version recorded in the database.
pub fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Applies every migration the database lacks, each in its own transaction. Returns how
/// many were applied. Refuses a database newer than this binary.
pub fn migrate(conn: &mut Connection) -> Result<usize> {
    let current = schema_version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(Error::Schema(format!(
            "the database has schema version {current}, but this zerotouch ({}) understands \
             only up to {SCHEMA_VERSION}; it was written by a newer release. Install that \
             release again, or restore a backup taken before the upgrade",
            crate::VERSION
        )));
    }
    let mut applied = 0;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|e| Error::Schema(format!("migration {name}: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        log::info!("database: applied migration {name}");
        applied += 1;
    }
    Ok(applied)
}

/// Sets this connection's page cache size in KiB (bulk work that touches many pages).
pub fn set_cache_kib(conn: &Connection, kib: i64) -> Result<()> {
    conn.pragma_update(None, "cache_size", -kib)?;
    Ok(())
}

/// Runs `f` inside one `BEGIN IMMEDIATE` transaction, committing on success.
pub fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Runs `f` inside a savepoint: all of its statements or none. Unlike `write_tx` it works on
/// a shared connection and nests inside a transaction the caller may already hold (then it
/// commits with that transaction).
pub fn atomic<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT zt_atomic")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE zt_atomic")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO zt_atomic; RELEASE zt_atomic");
            Err(e)
        }
    }
}

/// A small pool of connections. Handlers take one for the length of a request; a panic
/// in a handler drops its connection rather than poisoning a shared one.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    available: Condvar,
    size: usize,
    open_count: Mutex<usize>,
}

impl Pool {
    /// Opens the database at `path`, applies migrations, and returns a pool of up to `size`
    /// connections.
    pub fn open(path: &Path, size: usize, busy_timeout: Duration) -> Result<Pool> {
        let mut first = open(path, busy_timeout)?;
        migrate(&mut first)?;
        let pool = Pool {
            inner: Arc::new(PoolInner {
                path: path.to_path_buf(),
                busy_timeout,
                idle: Mutex::new(vec![first]),
                available: Condvar::new(),
                size: size.max(1),
                open_count: Mutex::new(1),
            }),
        };
        Ok(pool)
    }

    /// Takes a connection, opening a new one if the pool is not full, else waiting.
    pub fn get(&self) -> Result<PooledConn> {
        let inner = &self.inner;
        let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(PooledConn {
                    conn: Some(conn),
                    pool: self.clone(),
                });
            }
            {
                let mut open = inner.open_count.lock().unwrap_or_else(|p| p.into_inner());
                if *open < inner.size {
                    *open += 1;
                    drop(open);
                    drop(idle);
                    return match open_conn(inner) {
                        Ok(conn) => Ok(PooledConn {
                            conn: Some(conn),
                            pool: self.clone(),
                        }),
                        Err(e) => {
                            *inner.open_count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                            Err(e)
                        }
                    };
                }
            }
            idle = inner
                .available
                .wait(idle)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How long a connection of this pool waits for another writer.
    pub fn busy_timeout(&self) -> Duration {
        self.inner.busy_timeout
    }
}

fn open_conn(inner: &PoolInner) -> Result<Connection> {
    open(&inner.path, inner.busy_timeout)
}

/// A connection on loan from the pool; returned when dropped.
pub struct PooledConn {
    conn: Option<Connection>,
    pool: Pool,
}

impl std::ops::Deref for PooledConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let inner = &self.pool.inner;
        if std::thread::panicking() || !conn.is_autocommit() {
            // A connection left inside a transaction by a panic is closed, not reused.
            *inner.open_count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        } else {
            inner
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        inner.available.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_to_an_empty_database() {
        let conn = open_in_memory().expect("open");
        assert_eq!(schema_version(&conn).expect("version"), SCHEMA_VERSION);
        let rev: i64 = conn
            .query_row("SELECT value FROM config_revision", [], |r| r.get(0))
            .expect("revision row");
        assert_eq!(rev, 1);
    }

    #[test]
    fn a_newer_database_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("z.db");
        {
            let conn = open(&path, Duration::from_secs(1)).expect("open");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("set");
        }
        let err = Pool::open(&path, 2, Duration::from_secs(1))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains("newer release"), "{text}");
    }

    #[test]
    fn pool_hands_out_connections_and_takes_them_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::open(&dir.path().join("z.db"), 2, Duration::from_secs(1)).expect("pool");
        let a = pool.get().expect("a");
        let b = pool.get().expect("b");
        let pool2 = pool.clone();
        let waiter = std::thread::spawn(move || pool2.get().map(|_| ()).is_ok());
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        assert!(waiter.join().expect("join"));
        drop(b);
    }

    #[test]
    fn the_console_migration_upgrades_a_populated_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        configure(&mut conn, Duration::from_secs(1)).expect("pragmas");
        conn.execute_batch(MIGRATIONS[0].1).expect("0001");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO accounts (name, slug, service_key, is_default, created_at, updated_at)
                 VALUES ('Default', 'default', 'k', 1, 0, 0);
             INSERT INTO profiles (account_id, name, created_at, updated_at) VALUES (1, 'office', 0, 0);
             INSERT INTO subscribers (account_id, reference_id, last_name, created_at) VALUES (1, 'REF001', 'Kraus', 0);
             INSERT INTO devices (account_id, mac, profile_id, subscriber_id, created_at, updated_at)
                 VALUES (1, '0004f2000001', 1, 1, 0, 0);",
        )
        .expect("rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), MIGRATIONS.len() - 1);
        let q = crate::db::find::FindQuery {
            last_name: "kr%".into(),
            ignore_case: true,
            view: crate::db::find::View::Device,
            ..Default::default()
        };
        let page =
            crate::db::find::find_devices(&conn, &q, &crate::domain::users::Scope::All, 0, 10)
                .expect("find");
        assert_eq!(page.rows[0].mac, "0004f2000001");
        assert_eq!(crate::db::users::count_users(&conn).expect("users"), 0);
    }
}
