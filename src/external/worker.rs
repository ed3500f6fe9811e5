//! The server's External-mode worker: notices configuration changes, generates files,
//! and pushes changed devices through the file transport — debounced per device, with at
//! most `external.workers` pushes at once, on threads of its own.
//!
//! It reads the database through a connection of its own (never the handlers' pool), and
//! only when `PRAGMA data_version` and then `config_revision` say something changed, so a
//! quiet server costs one cheap query per `scan_interval_ms`. A device whose files changed is
//! pushed once they have been stable for `debounce_ms` (at the latest ten times that after
//! its first change); a device already being pushed waits for that push to finish. With the
//! S3 transport, shared assets and firmware are synced every `asset_sync_secs`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Job, generate_all, push, s3};
use crate::actions::templating;
use crate::config::ExternalConfig;
use crate::db;
use crate::domain::settings::{ProvSettings, TransportKind};
use crate::error::Result;

/// The in-flight key of the asset sync.
const ASSETS: &str = "(shared assets)";

enum Task {
    Device(Job),
    Assets,
}

/// A running worker; `stop` ends it.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    config: ExternalConfig,
    db_path: PathBuf,
    busy_timeout: Duration,
    data_dir: PathBuf,
    conn: Option<Connection>,
    data_version: Option<i64>,
    revision: i64,
    settings: Arc<ProvSettings>,
    /// MAC -> (job, first change, last change).
    pending: HashMap<String, (Job, Instant, Instant)>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    last_asset_sync: Option<Instant>,
}

impl Worker {
    /// Starts the worker thread and its pool of push threads.
    pub fn start(
        db_path: PathBuf,
        busy_timeout: Duration,
        data_dir: PathBuf,
        config: ExternalConfig,
    ) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let (tx, rx) = mpsc::channel::<(Task, Arc<ProvSettings>)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.workers.max(1) {
            let rx = rx.clone();
            let in_flight = in_flight.clone();
            let data_dir = data_dir.clone();
            let timeout = Duration::from_secs(config.upload_timeout_secs);
            std::thread::spawn(move || pusher(&rx, &in_flight, &data_dir, timeout));
        }
        let mut state = State {
            config,
            db_path,
            busy_timeout,
            data_dir,
            conn: None,
            data_version: None,
            revision: -1,
            settings: Arc::new(ProvSettings::default()),
            pending: HashMap::new(),
            in_flight,
            last_asset_sync: None,
        };
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let interval = Duration::from_millis(state.config.scan_interval_ms);
            while !flag.load(Ordering::Relaxed) {
                if let Err(e) = state.scan() {
                    log::error!("external: {e}");
                    // Reopen next time: the connection may be the problem.
                    state.conn = None;
                    state.data_version = None;
                }
                state.dispatch(&tx);
                std::thread::sleep(interval);
            }
            // Dropping `tx` ends the push threads once they finish their task.
        });
        Worker {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops scanning (pushes under way finish on their own threads).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl State {
    /// Regenerates files after a configuration change and queues changed devices.
    fn scan(&mut self) -> Result<()> {
        if self.conn.is_none() {
            self.conn = Some(db::open(&self.db_path, self.busy_timeout)?);
        }
        let conn = self.conn.as_ref().expect("opened above");
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version == Some(version) {
            return Ok(());
        }
        self.data_version = Some(version);
        let revision = db::accounts::config_revision(conn)?;
        if revision == self.revision {
            return Ok(());
        }
        let ctx = templating::load_context(conn)?;
        self.settings = Arc::new(ctx.settings.clone());
        if !ctx.settings.is_external() {
            self.pending.clear();
            self.revision = revision;
            return Ok(());
        }
        let dir = self.data_dir.join("external");
        let started = Instant::now();
        let generated = generate_all(conn, &dir, &ctx)?;
        self.revision = revision;
        let now = Instant::now();
        let mut changed = 0;
        for g in generated.into_iter().filter(|g| g.changed) {
            changed += 1;
            let first = self
                .pending
                .get(&g.job.mac)
                .map(|(_, first, _)| *first)
                .unwrap_or(now);
            self.pending.insert(g.job.mac.clone(), (g.job, first, now));
        }
        if changed > 0 {
            log::info!(
                "external: {changed} device(s) with new files in {} ({} ms)",
                dir.display(),
                started.elapsed().as_millis()
            );
        }
        Ok(())
    }

    /// Hands due work to the push threads, never more than `workers` at once.
    fn dispatch(&mut self, tx: &Sender<(Task, Arc<ProvSettings>)>) {
        let debounce = Duration::from_millis(self.config.debounce_ms);
        let now = Instant::now();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let workers = self.config.workers.max(1);
        let s = &self.settings;
        if s.is_external()
            && s.transport == TransportKind::S3
            && self.last_asset_sync.is_none_or(|t| {
                now.duration_since(t) >= Duration::from_secs(self.config.asset_sync_secs)
            })
            && in_flight.len() < workers
            && in_flight.insert(ASSETS.to_string())
        {
            self.last_asset_sync = Some(now);
            let _ = tx.send((Task::Assets, s.clone()));
        }
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(mac, (_, first, last))| {
                !in_flight.contains(*mac)
                    && (now.duration_since(*last) >= debounce
                        || now.duration_since(*first) >= debounce * 10)
            })
            .map(|(mac, _)| mac.clone())
            .collect();
        for mac in due {
            if in_flight.len() >= workers {
                break;
            }
            if let Some((job, _, _)) = self.pending.remove(&mac) {
                in_flight.insert(mac);
                let _ = tx.send((Task::Device(job), s.clone()));
            }
        }
    }
}

/// A push thread: runs tasks until the worker stops.
fn pusher(
    rx: &Mutex<Receiver<(Task, Arc<ProvSettings>)>>,
    in_flight: &Mutex<HashSet<String>>,
    data_dir: &std::path::Path,
    timeout: Duration,
) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((task, settings)) = next else {
            return;
        };
        let key = match &task {
            Task::Device(job) => {
                let o = push(&settings, job, timeout);
                if o.ok {
                    log::info!(
                        "external: {} ({}): {}",
                        job.mac,
                        settings.transport.as_str(),
                        o.summary
                    );
                } else {
                    log::warn!(
                        "external: {} ({}) failed, files kept on disk: {}",
                        job.mac,
                        settings.transport.as_str(),
                        o.summary
                    );
                }
                job.mac.clone()
            }
            Task::Assets => {
                let manifest = data_dir.join("external").join(s3::MANIFEST);
                match s3::S3Target::new(&settings, timeout)
                    .and_then(|t| t.sync_assets(data_dir, &manifest))
                {
                    Ok((0, _)) => {}
                    Ok((n, same)) => log::info!(
                        "external: synced shared assets and firmware to S3: {n} uploaded, {same} unchanged"
                    ),
                    Err(e) => log::warn!("external: shared asset sync to S3 failed: {e}"),
                }
                ASSETS.to_string()
            }
        };
        in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }
}
