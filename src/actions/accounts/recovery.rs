//! Recovery and progress after a credential change: re-admitting locked-out devices,
//! confirming automatically associated ones, how many devices hold each generation, and the
//! phones that never came back.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use super::{facts_of, load, require_enabled};
use crate::db;
use crate::db::credentials::{self, DeviceSync};
use crate::db::inventory::DeviceRow;
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::autosync::{self, DAY, Readmit, Settings, SyncState};
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

/// Which devices to re-admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readmission {
    Devices(Vec<Mac>),
    /// Every locked-out device of the account.
    AllLockedOut,
}

/// Re-admits devices: until the re-admission closes (the grace window from now, at least a
/// day: the date is returned with each), each may use any generation of the account's
/// history and its own older passwords, whatever Auto-Sync says, and is sent the current
/// credentials. Any MAC an admin names may be re-admitted: its latest request proves
/// nothing about what the phone holds (`domain::machine`). Returns the MACs re-admitted.
pub fn readmit(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    which: &Readmission,
) -> Result<Vec<String>> {
    db::write_tx(conn, |tx| {
        readmit_in(tx, actor, account, which, &mut |_| {})
    })
}

/// `readmit` in the caller's transaction, telling `progress` how many devices it has gone
/// through.
pub fn readmit_in(
    tx: &Connection,
    actor: &Actor,
    account: &Account,
    which: &Readmission,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<String>> {
    let (settings, history, rows) = load(tx, account)?;
    require_enabled(&settings, "re-admitting devices")?;
    let now = db::now_secs();
    let chosen: Vec<&DeviceRow> = match which {
        Readmission::AllLockedOut => rows
            .iter()
            .filter(|r| r.profile.is_some())
            .filter(|r| {
                autosync::state(&settings, &history, &facts_of(r, &settings), now).is_locked_out()
            })
            .collect(),
        Readmission::Devices(macs) => {
            let mut out = Vec::new();
            for mac in macs {
                let row = rows
                    .iter()
                    .find(|r| r.mac == mac.as_str() && r.profile.is_some())
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "associated device {mac} in account `{}`",
                            account.slug
                        ))
                    })?;
                out.push(row);
            }
            out
        }
    };
    let until = now + i64::from(settings.grace_days.max(1)) * DAY;
    let mut done = Vec::new();
    for row in chosen {
        let generation = autosync::expected(&history, &facts_of(row, &settings));
        let sync = DeviceSync {
            readmit: Some(Readmit { generation, until }),
            ..row.sync.clone()
        };
        credentials::store_sync(tx, row.id, &sync)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "autosync.readmit", row.mac.clone())
                .after(json!({"generation": generation, "until": until})),
        )?;
        done.push(row.mac.clone());
        progress(done.len());
    }
    if !done.is_empty() {
        credentials::bump_revision(tx)?;
    }
    Ok(done)
}

/// Confirms a device the `default-profile` policy associated automatically, so Auto-Sync
/// applies to it.
pub fn confirm_device(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: &Mac,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let n = tx.execute(
            "UPDATE devices SET auto_associated = 0, updated_at = ?3
             WHERE mac = ?1 AND account_id = ?2 AND auto_associated = 1",
            rusqlite::params![mac.as_str(), account.id.0, db::now_secs()],
        )?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "automatically associated device {mac} in account `{}`",
                account.slug
            )));
        }
        crate::actions::enrolment::open_until_enrolled(tx, account, mac, &actor.name)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "device.confirm", mac.as_str())
                .before(json!({"auto_associated": true}))
                .after(json!({"auto_associated": false})),
        )
    })
}

/// One device in a progress list or report.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSyncRow {
    pub mac: String,
    /// The generation it holds (or is expected to).
    pub generation: i64,
    pub last_seen: Option<i64>,
    #[serde(flatten)]
    pub state: SyncState,
    /// Why it is locked out, in words.
    pub why: String,
}

/// Auto-Sync progress of an account.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub current_generation: i64,
    pub settings: Settings,
    /// How many associated devices hold each generation (never-seen ones: the generation
    /// they are expected to hold), newest first.
    pub by_generation: Vec<(i64, usize)>,
    /// Devices whose latest recognised request used the current generation (or their own
    /// credential): never those never seen, nor one refused on its latest request.
    pub synced: usize,
    pub pending: Vec<DeviceSyncRow>,
    pub locked_out: Vec<DeviceSyncRow>,
    /// Associated devices no recognised request has named yet.
    pub never_seen: Vec<DeviceSyncRow>,
}

fn sync_row(row: &DeviceRow, st: SyncState) -> DeviceSyncRow {
    DeviceSyncRow {
        mac: row.mac.clone(),
        generation: st.generation(),
        last_seen: row.last_seen,
        why: match st {
            SyncState::LockedOut { why, .. } => why.explain().to_string(),
            _ => String::new(),
        },
        state: st,
    }
}

/// How many devices hold each generation, who is pending, who is locked out.
pub fn progress(conn: &Connection, account: &Account) -> Result<Progress> {
    let (settings, history, rows) = load(conn, account)?;
    let now = db::now_secs();
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    let (mut synced, mut pending, mut locked, mut never_seen) =
        (0, Vec::new(), Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| r.profile.is_some()) {
        let st = autosync::state(&settings, &history, &facts_of(row, &settings), now);
        *counts.entry(st.generation()).or_default() += 1;
        match st {
            SyncState::Synced { .. } => synced += 1,
            SyncState::Pending { .. } => pending.push(sync_row(row, st)),
            SyncState::LockedOut { .. } => locked.push(sync_row(row, st)),
            SyncState::NeverSeen { .. } => never_seen.push(sync_row(row, st)),
        }
    }
    Ok(Progress {
        current_generation: history.current(),
        settings,
        by_generation: counts.into_iter().rev().collect(),
        synced,
        pending,
        locked_out: locked,
        never_seen,
    })
}

/// Per account (by slug), how many of its associated devices are synced, pending, locked
/// out and never seen: the counts `autosync status` shows, for `/metrics`.
pub fn sync_counts(conn: &Connection) -> Result<Vec<(String, [usize; 4])>> {
    let mut out = Vec::new();
    for account in db::accounts::list_accounts(conn)? {
        let p = progress(conn, &account)?;
        out.push((
            account.slug.clone(),
            [
                p.synced,
                p.pending.len(),
                p.locked_out.len(),
                p.never_seen.len(),
            ],
        ));
    }
    Ok(out)
}

/// A device that has not come back since a change.
#[derive(Debug, Clone, Serialize)]
pub struct NotBack {
    pub mac: String,
    /// What changed: `credentials (generation N)` or `service address`.
    pub change: String,
    pub changed_at: i64,
    pub last_seen: Option<i64>,
    /// `pending` (it will sync at its next poll) or `locked-out` (with why).
    pub state: String,
    pub why: String,
}

/// Phones that never came back after a change: devices that still hold an older credential
/// generation, or still use a former service address.
pub fn report(conn: &Connection, account: &Account) -> Result<Vec<NotBack>> {
    let (settings, history, rows) = load(conn, account)?;
    let aliases = credentials::list_aliases(conn, Some(account.id))?;
    let now = db::now_secs();
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.profile.is_some()) {
        let st = autosync::state(&settings, &history, &facts_of(row, &settings), now);
        let (state, why) = match st {
            SyncState::Synced { .. } | SyncState::NeverSeen { .. } => (None, String::new()),
            SyncState::Pending { .. } => (Some("pending"), String::new()),
            SyncState::LockedOut { why, .. } => (Some("locked-out"), why.explain().to_string()),
        };
        if let Some(state) = state {
            let next = history
                .generations
                .iter()
                .find(|g| g.generation > st.generation());
            out.push(NotBack {
                mac: row.mac.clone(),
                change: format!(
                    "credentials (generation {})",
                    next.map_or(history.current(), |g| g.generation)
                ),
                changed_at: next.map_or(0, |g| g.created_at),
                last_seen: row.last_seen,
                state: state.into(),
                why,
            });
        }
        if let Some(alias) = aliases
            .iter()
            .find(|a| !row.sync.base_segment.is_empty() && a.segment == row.sync.base_segment)
        {
            out.push(NotBack {
                mac: row.mac.clone(),
                change: "service address".into(),
                changed_at: alias.created_at,
                last_seen: row.last_seen,
                state: if alias.retired_at.is_some() {
                    "locked-out"
                } else {
                    "pending"
                }
                .into(),
                why: if alias.retired_at.is_some() {
                    "its address was retired".into()
                } else {
                    String::new()
                },
            });
        }
    }
    out.sort_by(|a, b| (a.changed_at, &a.mac).cmp(&(b.changed_at, &b.mac)));
    Ok(out)
}
