//! Group commit for the small writes device requests must make before they answer: what a
//! device showed it holds (credential generation, address, family), the `device.*` values
//! delivered to it and their confirmations, its own credential.
//!
//! Each of those writes is still synchronous for the request that makes it — `run` returns
//! only after the write committed — but the writes of every request waiting at that moment
//! commit together, in one transaction on one connection, each in its own savepoint (one
//! failing write is rolled back alone and reported to its own request). A boot storm of
//! phones seen for the first time used to queue thousands of one-row transactions on
//! SQLite's single writer, with request threads sleeping in the busy handler between tries.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

type Work = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>> + Send>;

struct Job {
    work: Work,
    done: SyncSender<Result<Box<dyn Any + Send>>>,
}

/// Most writes committed together.
const BATCH_MAX: usize = 512;

/// Handle to the writer thread; the thread ends when every handle is dropped.
pub struct GroupWriter {
    tx: Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer on its own connection to the database at `path`. If the thread or
    /// its connection cannot be made, every `run` answers the error.
    pub fn start(path: &Path, busy_timeout: Duration) -> GroupWriter {
        let (tx, rx) = mpsc::channel::<Job>();
        let path = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("group-writer".into())
            .spawn(move || match super::open(&path, busy_timeout) {
                Ok(conn) => writer(conn, rx),
                Err(e) => {
                    log::error!("group writer: {e}");
                    let msg = e.to_string();
                    while let Ok(j) = rx.recv() {
                        let _ = j
                            .done
                            .send(Err(Error::Schema(format!("group write: {msg}"))));
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the group writer thread: {e}");
        }
        GroupWriter { tx }
    }

    /// Runs `f` inside the next group transaction and returns its result once that
    /// transaction committed (or the error that stopped it).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (done, wait) = mpsc::sync_channel(1);
        let work: Work = Box::new(move |c| f(c).map(|v| Box::new(v) as Box<dyn Any + Send>));
        self.tx.send(Job { work, done }).map_err(|_| stopped())?;
        let value = wait.recv().map_err(|_| stopped())??;
        value
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::Schema("group writer: unexpected result type".into()))
    }
}

fn stopped() -> Error {
    Error::io("the group writer", std::io::Error::other("it has stopped"))
}

fn writer(mut conn: Connection, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, jobs);
    }
}

/// One transaction for `jobs`, each in a savepoint; every job's sender gets its outcome
/// after the commit.
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for j in jobs {
                let _ = j
                    .done
                    .send(Err(Error::Schema(format!("group write: {msg}"))));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for j in jobs {
        let result = run_one(&tx, j.work);
        outcomes.push((j.done, result));
    }
    match tx.commit() {
        Ok(()) => {
            for (done, r) in outcomes {
                let _ = done.send(r);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for (done, _) in outcomes {
                let _ = done.send(Err(Error::Schema(format!("group write: {msg}"))));
            }
        }
    }
}

fn run_one(conn: &Connection, work: Work) -> Result<Box<dyn Any + Send>> {
    conn.execute_batch("SAVEPOINT zt_group_job")?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
        Err(Error::io(
            "a group write",
            std::io::Error::other("it panicked"),
        ))
    });
    match &result {
        Ok(_) => conn.execute_batch("RELEASE zt_group_job")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK TO zt_group_job; RELEASE zt_group_job");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn setup() -> (tempfile::TempDir, Arc<GroupWriter>, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("z.db");
        let c = super::super::open(&path, Duration::from_secs(1)).expect("db");
        c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .expect("table");
        let w = Arc::new(GroupWriter::start(&path, Duration::from_secs(1)));
        (dir, w, path)
    }

    #[test]
    fn writes_from_many_threads_commit_and_return_their_results() {
        let (_dir, w, path) = setup();
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    w.run(move |c| {
                        c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [i])?;
                        Ok(i * 2)
                    })
                    .expect("write")
                })
            })
            .collect();
        let got: Vec<i64> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        assert_eq!(got, (0..32).map(|i| i * 2).collect::<Vec<_>>());
        // Committed when run returned: visible to another connection.
        let c = super::super::open(&path, Duration::from_secs(1)).expect("db");
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 32);
    }

    #[test]
    fn a_failing_or_panicking_write_is_rolled_back_alone() {
        let (_dir, w, path) = setup();
        w.run(|c| {
            c.execute("INSERT INTO t (k, v) VALUES (1, 'kept')", [])?;
            Ok(())
        })
        .expect("first");
        let err = w
            .run(|c| {
                c.execute("INSERT INTO t (k, v) VALUES (2, 'half')", [])?;
                c.execute("INSERT INTO t (k, v) VALUES (1, 'duplicate')", [])?;
                Ok(())
            })
            .expect_err("constraint");
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        let panicked = w.run(|_c| -> Result<()> { panic!("boom") });
        assert!(panicked.is_err());
        // The writer goes on.
        w.run(|c| {
            c.execute("INSERT INTO t (k, v) VALUES (3, 'after')", [])?;
            Ok(())
        })
        .expect("after");
        let c = super::super::open(&path, Duration::from_secs(1)).expect("db");
        let keys: Vec<i64> = c
            .prepare("SELECT k FROM t ORDER BY k")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(keys, [1, 3]);
    }
}
