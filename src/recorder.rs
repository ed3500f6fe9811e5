//! The request recorder: a bounded queue and one writer thread that stores access-log rows
//! and per-device activity in batches.
//!
//! Serving never waits for it: when the queue is full, events are dropped and counted
//! (the count is shown on the health page and in metrics). State changes that other rules
//! depend on — confirmations, deliveries — do not go through here; they are written
//! synchronously by the provisioning layer. First sightings of unknown MACs have their own
//! writer that never drops one (`actions::sightings`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::RecordingConfig;
use crate::db::{self, access::AccessRecord};
use crate::domain::mac::Mac;
use crate::error::Result;

/// Largest batch written in one transaction.
const BATCH_MAX: usize = 10_000;
/// How often the devices written to since the last round are queued for pruning.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Devices pruned per transaction, and the most time one round between batches may take:
/// pruning never holds the writer long enough for the queue to overflow.
const PRUNE_CHUNK: usize = 200;
const PRUNE_SLICE: Duration = Duration::from_millis(20);

enum Msg {
    Record(Box<AccessRecord>),
    /// Write everything queued so far, then signal.
    Flush(SyncSender<()>),
    /// Write everything queued so far, then end the writer.
    Stop,
}

/// Counters of the recorder, shared with the health page.
#[derive(Default)]
pub struct RecorderStats {
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// Handle to the recorder; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: SyncSender<Msg>,
    pub stats: Arc<RecorderStats>,
}

/// The writer thread, joined on shutdown.
pub struct RecorderThread {
    handle: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the writer thread on its own connection to the database at `path`.
    pub fn start(
        path: &Path,
        busy_timeout: Duration,
        config: &RecordingConfig,
    ) -> Result<(Recorder, RecorderThread)> {
        let conn = db::open(path, busy_timeout)?;
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity);
        let stats = Arc::new(RecorderStats::default());
        let cfg = config.clone();
        let s = stats.clone();
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer(conn, rx, &cfg, &s))
            .map_err(|e| crate::Error::io("starting the recorder thread", e))?;
        Ok((
            Recorder { tx, stats },
            RecorderThread {
                handle: Some(handle),
            },
        ))
    }

    /// Queues a record; drops it (and counts) if the queue is full.
    pub fn record(&self, rec: AccessRecord) {
        match self.tx.try_send(Msg::Record(Box::new(rec))) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until everything queued before this call is written (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }

    /// Events waiting to be written.
    pub fn depth(&self) -> u64 {
        let s = &self.stats;
        s.queued
            .load(Ordering::Relaxed)
            .saturating_sub(s.written.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed))
    }
}

impl RecorderThread {
    /// Ends the writer after it has written everything queued before this call.
    pub fn stop(mut self, recorder: &Recorder) {
        let _ = recorder.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn writer(
    mut conn: rusqlite::Connection,
    rx: Receiver<Msg>,
    cfg: &RecordingConfig,
    stats: &RecorderStats,
) {
    let interval = Duration::from_millis(cfg.flush_interval_ms);
    let mut batch: Vec<AccessRecord> = Vec::with_capacity(BATCH_MAX);
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    let mut last_prune = Instant::now();
    // Devices written to since the last round, and those of earlier rounds not pruned yet.
    // Devices not written to since a restart keep their rows until their next request:
    // their logs do not grow meanwhile.
    let mut touched: HashSet<Mac> = HashSet::new();
    let mut pending: Vec<Mac> = Vec::new();
    let mut open = true;
    while open {
        // Collect for up to one interval, or until the batch is full.
        let deadline = Instant::now() + interval;
        while batch.len() < BATCH_MAX {
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Record(r)) => batch.push(*r),
                Ok(Msg::Flush(w)) => {
                    waiters.push(w);
                    break;
                }
                Ok(Msg::Stop) => {
                    open = false;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            touched.extend(
                batch
                    .iter()
                    .filter_map(|r| r.mac.as_deref().and_then(Mac::from_bare)),
            );
            match write_with_retry(&mut conn, &batch) {
                Ok(()) => stats.written.fetch_add(n, Ordering::Relaxed),
                Err(e) => {
                    log::error!("recorder: could not write {n} access records: {e}");
                    stats.failed.fetch_add(n, Ordering::Relaxed)
                }
            };
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.try_send(());
        }
        if last_prune.elapsed() >= PRUNE_EVERY || !open {
            let already: HashSet<Mac> = pending.iter().copied().collect();
            pending.extend(touched.drain().filter(|m| !already.contains(m)));
            if let Err(e) = db::access::prune_anonymous(&conn, cfg.access_log_anonymous) {
                log::warn!("recorder: pruning the anonymous access log failed: {e}");
            }
            last_prune = Instant::now();
        }
        // A slice of pruning between batches; everything when stopping.
        let slice_end = Instant::now() + PRUNE_SLICE;
        while !pending.is_empty() && (!open || Instant::now() < slice_end) {
            let chunk = pending.split_off(pending.len().saturating_sub(PRUNE_CHUNK));
            if let Err(e) = db::access::prune_devices(&conn, &chunk, cfg.access_log_per_device) {
                log::warn!("recorder: pruning the access log failed: {e}");
                break;
            }
        }
    }
}

fn write_with_retry(conn: &mut rusqlite::Connection, batch: &[AccessRecord]) -> Result<()> {
    match db::access::write_batch(conn, batch) {
        Ok(()) => Ok(()),
        Err(_) => {
            // A busy database (a long CLI transaction) gets one more chance.
            std::thread::sleep(Duration::from_millis(200));
            db::access::write_batch(conn, batch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn the_writer_prunes_the_devices_it_wrote_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zt.db");
        let pool = db::Pool::open(&path, 1, Duration::from_secs(5)).expect("pool");
        let cfg = RecordingConfig {
            flush_interval_ms: 10,
            access_log_per_device: 3,
            access_log_anonymous: 2,
            ..RecordingConfig::default()
        };
        let (recorder, thread) =
            Recorder::start(&path, Duration::from_secs(5), &cfg).expect("recorder");
        let rec = |i: i64, mac: Option<&str>| AccessRecord {
            ts_ms: 1_000_000 + i,
            mac: mac.map(String::from),
            ip: "10.0.0.9".into(),
            method: "GET".into(),
            path: "/x.cfg".into(),
            status: 200,
            auth: "ok",
            ..Default::default()
        };
        for i in 0..10 {
            recorder.record(rec(i, Some("0004f2000001")));
            recorder.record(rec(i, Some("0004f2000002")));
            recorder.record(rec(i, None));
        }
        // Written, not pruned yet: pruning waits for its round (or the end).
        assert!(recorder.flush(Duration::from_secs(5)));
        let conn = pool.get().expect("conn");
        assert_eq!(count(&conn, "SELECT count(*) FROM access_log"), 30);
        thread.stop(&recorder);
        for mac in ["0004f2000001", "0004f2000002"] {
            let sql =
                format!("SELECT count(*) FROM access_log WHERE mac = '{mac}' AND ts_ms >= 1000007");
            assert_eq!(count(&conn, &sql), 3, "the newest three of {mac} stay");
        }
        assert_eq!(
            count(&conn, "SELECT count(*) FROM access_log WHERE mac IS NULL"),
            2
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM access_log"), 8);
        assert_eq!(recorder.stats.dropped.load(Ordering::Relaxed), 0);
    }
}
