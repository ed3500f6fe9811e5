//! Long actions on many devices run as jobs in the background — a bulk action
//! (`actions::bulk`) on a large selection, apply-now (`actions::sip`) — while a page (or
//! the API) shows their progress: the console starts one for a confirmed selection larger
//! than `console.bulk_job_threshold` and for every apply-now, the API when asked
//! (`"background": true`).
//!
//! Where things live: the job's row (`device_jobs`) is written when it is created and when
//! it ends; its progress while it runs lives in memory, in the server's `Registry`, because
//! a bulk action holds ONE write transaction from its first device to its last (all or
//! nothing) and progress written on that connection would roll back with it, while another
//! connection cannot write until it commits. A job page reads the row and adds the live
//! count of a running job from the registry.
//!
//! Invariants (tested by `tests/it/jobs.rs`):
//! - nothing is changed before confirmation: a job is only created for a confirmed action
//!   (the console's confirmed post, the API's call without `dry_run`), with the permission
//!   checked first;
//! - the job's final state matches what the database holds: a bulk action writes its job's
//!   `done` outcome inside its own transaction (`Watch::committing`), so the row says done
//!   exactly when the changes committed; a failed bulk action changed nothing and its row
//!   says `failed` with the error, naming the MAC and why; a row left running by a stopped
//!   server is marked `interrupted` (`db::device_jobs::fail_orphaned`) and, for a bulk
//!   action, nothing of it was applied. Apply-now sends check-sync as it goes: a failed or
//!   interrupted one may have reached some phones, and says so;
//! - progress never exceeds the total: the registry clamps it, the row's `done` too;
//! - each device is audited as when the action runs while the caller waits (the same
//!   `bulk::run` and `sip::apply_now_watched`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::bulk::{self, Bulk};
use super::sip::{self, Selection};
use super::{Actor, Watch};
use crate::config::SipConfig;
use crate::db::device_jobs::{self, DeviceJob};
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

/// How far a running job has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// The progress of the jobs this server runs, by job id (shared by the console, the API and
/// the jobs' threads).
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<i64, Progress>>>);

impl Registry {
    /// Records `done` of `total` (clamped: never more than the total).
    pub fn set(&self, id: i64, done: usize, total: usize) {
        let p = Progress {
            done: done.min(total),
            total,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, p);
    }

    pub fn get(&self, id: i64) -> Option<Progress> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }

    fn remove(&self, id: i64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// What a job does.
#[derive(Debug, Clone)]
pub enum Work {
    /// `bulk::run` on `macs`, with the count the admin confirmed.
    Bulk {
        bulk: Bulk,
        macs: Vec<Mac>,
        expected: usize,
        confirm: bool,
    },
    /// `sip::apply_now` on `macs`, confirmed.
    ApplyNow { cfg: SipConfig, macs: Vec<Mac> },
}

impl Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::Bulk { .. } => "bulk",
            Work::ApplyNow { .. } => "apply-now",
        }
    }

    fn total(&self) -> usize {
        match self {
            Work::Bulk { macs, .. } | Work::ApplyNow { macs, .. } => macs.len(),
        }
    }

    /// In words ("Move 300 devices to site hq").
    pub fn description(&self) -> String {
        match self {
            Work::Bulk { bulk, macs, .. } => bulk.describe(macs.len()),
            Work::ApplyNow { macs, .. } => format!("Apply now to {} device(s)", macs.len()),
        }
    }
}

/// Creates the job (queued) for confirmed `work`, after checking the actor may do it; the
/// caller then runs `run`, on a thread of its own.
pub fn create(conn: &Connection, actor: &Actor<'_>, work: &Work) -> Result<i64> {
    match work {
        Work::Bulk { bulk, .. } => actor.user.require(bulk.permission())?,
        // As `sip::apply_now` on MACs.
        Work::ApplyNow { .. } => actor
            .user
            .require(crate::domain::users::Action::Associate)?,
    }
    if work.total() == 0 {
        return Err(Error::invalid("mac", "tick at least one device"));
    }
    device_jobs::insert(
        conn,
        actor.account.id.0,
        &actor.user.username,
        work.kind(),
        &work.description(),
        work.total(),
    )
}

/// Tells the registry, and ends the row in the action's transaction.
struct JobWatch<'r> {
    id: i64,
    registry: &'r Registry,
    done: usize,
}

impl Watch for JobWatch<'_> {
    fn progress(&mut self, done: usize, total: usize) {
        self.done = done.min(total);
        self.registry.set(self.id, done, total);
        test_pause();
    }

    fn committing(&mut self, tx: &Connection, done: usize, outcome: &str) -> Result<()> {
        device_jobs::finish(tx, self.id, "done", done, outcome)?;
        Ok(())
    }
}

/// Debug builds only: `ZEROTOUCH_TEST_JOB_STEP_MS` (at most 1000) pauses a job at each step,
/// so an integration test sees it running and its page refreshing. Release builds ignore it.
fn test_pause() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("ZEROTOUCH_TEST_JOB_STEP_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(1000)));
    }
}

/// Runs job `id` to its end and returns its final state. The row always ends: `done` in the
/// action's own transaction, else `failed` with the reason.
pub fn run(
    conn: &mut Connection,
    actor: &Actor<'_>,
    id: i64,
    work: &Work,
    registry: &Registry,
) -> Result<DeviceJob> {
    device_jobs::start(conn, id)?;
    registry.set(id, 0, work.total());
    let mut watch = JobWatch {
        id,
        registry,
        done: 0,
    };
    let result = match work {
        Work::Bulk {
            bulk,
            macs,
            expected,
            confirm,
        } => bulk::run(conn, actor, bulk, macs, *expected, *confirm, &mut watch).map(|_| ()),
        Work::ApplyNow { cfg, macs } => sip::apply_now_watched(
            conn,
            actor,
            cfg,
            &Selection::Macs(macs.iter().map(Mac::to_string).collect()),
            true,
            &mut watch,
        )
        .map(|_| ()),
    };
    if let Err(e) = result {
        // A bulk action rolled back: nothing of it is applied, whatever it had gone through.
        let (done, after) = match work {
            Work::Bulk { .. } => (0, "nothing was changed"),
            Work::ApplyNow { .. } => (watch.done, "phones already sent check-sync keep it"),
        };
        let why = match &e {
            Error::Invalid(_)
            | Error::Conflict(_)
            | Error::NotFound { .. }
            | Error::Forbidden(_)
            | Error::NeedsConfirmation { .. }
            | Error::Unavailable(_) => e.to_string(),
            Error::Db(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                "the database stayed busy (another long action was writing); start it again"
                    .to_string()
            }
            _ => {
                log::error!("device job {id}: {e}");
                "internal error (the server log has the details)".to_string()
            }
        };
        device_jobs::finish(
            conn,
            id,
            "failed",
            done,
            &format!("Failed: {why}; {after}."),
        )?;
    }
    registry.remove(id);
    device_jobs::find(conn, actor.account.id.0, id)?
        .ok_or_else(|| Error::not_found(format!("job {id}")))
}

/// Ends a job whose thread stopped without ending it (a panic): `failed`, unless it ended.
pub fn abandon(conn: &Connection, registry: &Registry, id: i64) {
    registry.remove(id);
    if let Err(e) = device_jobs::finish(
        conn,
        id,
        "failed",
        0,
        "Failed: internal error (the server log has the details).",
    ) {
        log::error!("device job {id}: {e}");
    }
}

/// A job as its page and the API show it: the row, with the live count of a running job.
pub fn job_for(
    conn: &Connection,
    actor: &Actor<'_>,
    registry: &Registry,
    id: &str,
) -> Result<DeviceJob> {
    let not_found = || Error::not_found(format!("job `{id}` in account `{}`", actor.account.slug));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let mut job = device_jobs::find(conn, actor.account.id.0, n)?.ok_or_else(not_found)?;
    if !job.is_finished()
        && let Some(p) = registry.get(n)
    {
        job.done = (p.done as i64).min(job.total);
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_never_counts_past_the_total() {
        let r = Registry::default();
        r.set(7, 12, 10);
        assert_eq!(
            r.get(7),
            Some(Progress {
                done: 10,
                total: 10
            })
        );
        r.remove(7);
        assert_eq!(r.get(7), None);
    }
}
