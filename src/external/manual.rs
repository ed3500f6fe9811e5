//! "Generate and push now": the console's and the API's way to regenerate every device's
//! files and push all of them through the file transport, changed or not (e.g. after the
//! DMS lost its copy). Generation runs in the request; the pushes run one after the other
//! on a thread of their own, so a slow script or bucket never holds a request, and only
//! one such run exists at a time. Its progress and outcome stay in memory for the pages.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::{Job, generate_all, push, s3};
use crate::actions::templating;
use crate::db::now_secs;
use crate::domain::settings::{ProvSettings, TransportKind};
use crate::error::{Error, Result};

/// One device the transport did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushFailure {
    pub mac: String,
    pub summary: String,
}

/// The state of the last manual run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushRun {
    /// Who started it (as the audit log names them).
    pub started_by: String,
    pub started_at: i64,
    /// `None` while the pushes are under way.
    pub finished_at: Option<i64>,
    pub transport: &'static str,
    /// Devices generated (and to push).
    pub devices: usize,
    /// Devices whose files changed when they were generated.
    pub changed: usize,
    /// Devices pushed so far without an error.
    pub pushed: usize,
    pub failures: Vec<PushFailure>,
    /// With S3: what the sync of shared assets and firmware did.
    pub assets: Option<String>,
}

/// Runs manual pushes, one at a time.
#[derive(Default)]
pub struct ManualPush {
    last: Arc<Mutex<Option<PushRun>>>,
}

impl ManualPush {
    /// The last run, under way or finished.
    pub fn last(&self) -> Option<PushRun> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Generates every device's files into `<data_dir>/external/` now and starts pushing
    /// all of them. Refused (`Conflict`) in Local mode and while a run is under way.
    /// Returns the run as it starts.
    pub fn start(
        &self,
        conn: &Connection,
        data_dir: &Path,
        timeout: Duration,
        started_by: &str,
    ) -> Result<PushRun> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = last.as_ref().filter(|r| r.finished_at.is_none()) {
            return Err(Error::Conflict(format!(
                "a push started by {} is still under way ({} of {} devices pushed)",
                run.started_by,
                run.pushed + run.failures.len(),
                run.devices
            )));
        }
        let ctx = templating::load_context(conn)?;
        if !ctx.settings.is_external() {
            return Err(Error::Conflict(
                "the provisioning settings are in Local mode: zerotouch serves phones itself \
                 and generates no files"
                    .into(),
            ));
        }
        let generated = generate_all(conn, &data_dir.join("external"), &ctx)?;
        let run = PushRun {
            started_by: started_by.to_string(),
            started_at: now_secs(),
            finished_at: None,
            transport: ctx.settings.transport.as_str(),
            devices: generated.len(),
            changed: generated.iter().filter(|g| g.changed).count(),
            pushed: 0,
            failures: Vec::new(),
            assets: None,
        };
        *last = Some(run.clone());
        drop(last);
        let jobs: Vec<Job> = generated.into_iter().map(|g| g.job).collect();
        let state = self.last.clone();
        let settings = ctx.settings.clone();
        let data_dir = data_dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("external-push".into())
            .spawn(move || run_pushes(&state, &settings, &jobs, &data_dir, timeout));
        if let Err(e) = spawned {
            self.finish(|r| r.assets = Some(format!("could not start the push: {e}")));
            return Err(Error::io("starting the push thread", e));
        }
        Ok(run)
    }

    fn finish(&self, f: impl FnOnce(&mut PushRun)) {
        update(&self.last, |r| {
            f(r);
            r.finished_at = Some(now_secs());
        });
    }
}

fn update(state: &Mutex<Option<PushRun>>, f: impl FnOnce(&mut PushRun)) {
    if let Some(run) = state.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        f(run);
    }
}

fn run_pushes(
    state: &Mutex<Option<PushRun>>,
    settings: &ProvSettings,
    jobs: &[Job],
    data_dir: &Path,
    timeout: Duration,
) {
    let transport = settings.transport.as_str();
    for job in jobs {
        let o = push(settings, job, timeout);
        if o.ok {
            log::info!(
                "external: {} ({transport}, pushed now): {}",
                job.mac,
                o.summary
            );
        } else {
            log::warn!(
                "external: {} ({transport}, pushed now) failed, files kept on disk: {}",
                job.mac,
                o.summary
            );
        }
        update(state, |r| {
            if o.ok {
                r.pushed += 1;
            } else {
                r.failures.push(PushFailure {
                    mac: job.mac.clone(),
                    summary: o.summary,
                });
            }
        });
    }
    let assets = (settings.transport == TransportKind::S3).then(|| {
        let manifest = data_dir.join("external").join(s3::MANIFEST);
        match s3::S3Target::new(settings, timeout).and_then(|t| t.sync_assets(data_dir, &manifest))
        {
            Ok((n, same)) => format!("shared assets and firmware: {n} uploaded, {same} unchanged"),
            Err(e) => {
                log::warn!("external: shared asset sync to S3 failed: {e}");
                format!("shared assets and firmware: failed: {e}")
            }
        }
    });
    update(state, |r| {
        r.assets = assets;
        r.finished_at = Some(now_secs());
    });
}
