//! Actions on many devices at once — a ticked selection or every device a filter matches —
//! shared by the console's device list, the API and the CLI: move to a site, add to or
//! remove from a group, change profile, re-admit, delete. (Apply-now and export have their
//! own actions, `actions::sip` and `actions::inventory`, and take the same selections.)
//!
//! Invariants (tested by `tests/it/bulk.rs`):
//! - nothing changes before the admin has seen the count: the console and the API show
//!   `preview` first, and `run` refuses (`NeedsConfirmation`) when `expected` differs from
//!   the selection's size now — a filter's matches may have changed since;
//! - a bulk action is all or nothing: one transaction, and a device that cannot take it
//!   (another account's MAC, an unassociated device for a profile change) fails the whole
//!   action with that MAC named, leaving every device as it was;
//! - phones the action would strand (deleted, or sent to another provisioning server) are
//!   counted and named with why, and need `confirm`, as for one device (I5);
//! - each device's change is audited as the single-device action audits it;
//! - the permission is the single-device action's, checked here for every caller;
//! - a watcher (`actions::Watch`, a background job's) is told the devices gone through
//!   (never more than the selection) and writes the outcome inside the same transaction,
//!   so a job says "done" exactly when the changes committed.

use rusqlite::Connection;

use super::accounts::{self, Readmission};
use super::{Actor, Impact, Watch};
use crate::db;
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, Result};

/// What to do with the selected devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bulk {
    /// Set the site (`None`: no site).
    SetSite(Option<String>),
    AddToGroup(String),
    RemoveFromGroup(String),
    SetProfile(String),
    Readmit,
    Delete,
}

impl Bulk {
    /// Parses an action name and its value (`site`, `group-add`, `group-remove`,
    /// `profile`, `readmit`, `delete`); the error names the field.
    pub fn parse(action: &str, value: &str) -> Result<Bulk> {
        let value = value.trim();
        let need = |what: &str| -> Result<String> {
            if value.is_empty() {
                Err(Error::invalid("value", format!("choose the {what}")))
            } else {
                Ok(value.to_string())
            }
        };
        Ok(match action {
            "site" => Bulk::SetSite(Some(value).filter(|v| !v.is_empty()).map(String::from)),
            "group-add" => Bulk::AddToGroup(need("group")?),
            "group-remove" => Bulk::RemoveFromGroup(need("group")?),
            "profile" => Bulk::SetProfile(need("profile")?),
            "readmit" => Bulk::Readmit,
            "delete" => Bulk::Delete,
            other => {
                return Err(Error::invalid(
                    "action",
                    format!(
                        "`{other}` is not one of site, group-add, group-remove, profile, readmit, delete"
                    ),
                ));
            }
        })
    }

    /// What it does, in words, for `n` devices ("Move 12 devices to site hq").
    pub fn describe(&self, n: usize) -> String {
        let devices = if n == 1 {
            "1 device".to_string()
        } else {
            format!("{n} devices")
        };
        match self {
            Bulk::SetSite(Some(s)) => format!("Move {devices} to site {s}"),
            Bulk::SetSite(None) => format!("Take {devices} out of their site"),
            Bulk::AddToGroup(g) => format!("Add {devices} to group {g}"),
            Bulk::RemoveFromGroup(g) => format!("Remove {devices} from group {g}"),
            Bulk::SetProfile(p) => format!("Give {devices} the profile {p}"),
            Bulk::Readmit => format!("Re-admit {devices}"),
            Bulk::Delete => format!("Delete {devices}"),
        }
    }

    /// What a run that changed `n` devices did, in words (the console's result page, a
    /// job's outcome).
    pub fn outcome(&self, n: usize) -> String {
        format!("Done: {}.", self.describe(n))
    }

    /// The permission of the single-device action.
    pub fn permission(&self) -> Action {
        match self {
            Bulk::SetSite(_) | Bulk::AddToGroup(_) | Bulk::RemoveFromGroup(_) => {
                Action::ManagePolicies
            }
            Bulk::SetProfile(_) | Bulk::Delete => Action::Associate,
            Bulk::Readmit => Action::ManageAccounts,
        }
    }
}

/// What an action would do: the count, and the phones it would strand, each with why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub description: String,
    pub count: usize,
    pub impact: Impact,
}

/// The devices of the actor's account a selection names, checked: a MAC of no device of
/// the account is an error naming it.
fn own(conn: &Connection, actor: &Actor<'_>, macs: &[Mac]) -> Result<()> {
    for mac in macs {
        let ok = db::devices::find_device_by_mac(conn, mac)?
            .is_some_and(|d| d.account_id == actor.account.id.0);
        if !ok {
            return Err(Error::not_found(format!(
                "device {mac} in account `{}`",
                actor.account.slug
            )));
        }
    }
    Ok(())
}

/// The count and the phones `bulk` would strand, without changing anything.
pub fn preview(
    conn: &mut Connection,
    actor: &Actor<'_>,
    bulk: &Bulk,
    macs: &[Mac],
) -> Result<Preview> {
    actor.user.require(bulk.permission())?;
    own(conn, actor, macs)?;
    let impact = match bulk {
        Bulk::Delete => delete_impact(conn, actor, macs)?,
        // Judged on the result: applied in a transaction that is always rolled back.
        Bulk::SetProfile(p) => {
            let tx = conn.transaction()?;
            let moved = set_profile(&tx, actor, p, macs, &mut |_| {})?;
            tx.rollback()?;
            Impact::of(moved)
        }
        _ => Impact::default(),
    };
    Ok(Preview {
        description: bulk.describe(macs.len()),
        count: macs.len(),
        impact,
    })
}

/// The phones deleting `macs` strands (seen ones), each with why.
fn delete_impact(conn: &Connection, actor: &Actor<'_>, macs: &[Mac]) -> Result<Impact> {
    let mut phones = Vec::new();
    for mac in macs {
        phones.extend(super::associations::impact_delete(conn, actor, mac)?.phones);
    }
    Ok(Impact::of(phones.into_iter().map(|p| (p.mac, p.reason))))
}

fn set_profile(
    tx: &Connection,
    actor: &Actor<'_>,
    profile: &str,
    macs: &[Mac],
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<(String, String)>> {
    let mut moved = Vec::new();
    for (i, mac) in macs.iter().enumerate() {
        let d = super::associations::device(tx, actor, mac)?;
        if !d.is_associated() {
            return Err(Error::Conflict(format!(
                "device {mac} is not associated; associate it first"
            )));
        }
        let mut input = d.input();
        input.profile = profile.to_string();
        match super::associations::modify_in(tx, actor, mac, &input) {
            Ok(m) => moved.extend(m),
            // The profile is the same for every device: say it once, by its field.
            Err(Error::Invalid(p)) => {
                let text: Vec<String> = p
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect();
                return Err(Error::invalid(
                    "value",
                    format!("device {mac}: {}", text.join("; ")),
                ));
            }
            Err(e) => return Err(e),
        }
        progress(i + 1);
    }
    Ok(moved)
}

/// What `run` refuses before it starts: the permission, a count that is not the one shown,
/// an empty selection.
fn refusal(actor: &Actor<'_>, bulk: &Bulk, macs: &[Mac], expected: usize) -> Result<()> {
    actor.user.require(bulk.permission())?;
    if macs.len() != expected {
        return Err(Error::Conflict(format!(
            "the selection changed: it holds {} device(s) now, not the {expected} shown; \
             nothing was changed — look again and confirm",
            macs.len()
        )));
    }
    if macs.is_empty() {
        return Err(Error::invalid("mac", "tick at least one device"));
    }
    Ok(())
}

/// What `run` would refuse at once — the permission, a stale count, an empty selection, a
/// MAC of no device of the account, phones stranded without `confirm` — checked without
/// changing anything, so a background job starts only for an action that can go ahead.
pub fn check(
    conn: &mut Connection,
    actor: &Actor<'_>,
    bulk: &Bulk,
    macs: &[Mac],
    expected: usize,
    confirm: bool,
) -> Result<()> {
    refusal(actor, bulk, macs, expected)?;
    if confirm {
        return own(conn, actor, macs);
    }
    let p = preview(conn, actor, bulk, macs)?;
    let what = match bulk {
        Bulk::Delete => "deleting the devices",
        _ => "moving devices to another server",
    };
    p.impact.require(confirm, what)
}

/// Applies `bulk` to every device of `macs`, all or nothing, in one transaction. `expected`
/// is the count the admin was shown: a different count now refuses, naming both. Phones the
/// action strands need `confirm`. `watch` is told the devices gone through and, just before
/// the commit, the outcome (`Bulk::outcome`). Returns how many devices changed.
pub fn run(
    conn: &mut Connection,
    actor: &Actor<'_>,
    bulk: &Bulk,
    macs: &[Mac],
    expected: usize,
    confirm: bool,
    watch: &mut dyn Watch,
) -> Result<usize> {
    refusal(actor, bulk, macs, expected)?;
    let account = actor.account;
    let total = macs.len();
    watch.progress(0, total);
    db::write_tx(conn, |tx| {
        let mut step = |done: usize| watch.progress(done.min(total), total);
        let changed = match bulk {
            Bulk::SetSite(site) => {
                own(tx, actor, macs)?;
                super::policy::assign_site_in(
                    tx,
                    &actor.who,
                    account,
                    site.as_deref(),
                    macs,
                    &mut step,
                )?;
                total
            }
            Bulk::AddToGroup(g) | Bulk::RemoveFromGroup(g) => {
                let add = matches!(bulk, Bulk::AddToGroup(_));
                super::policy::set_membership_in(tx, &actor.who, account, g, macs, add, &mut step)?
            }
            Bulk::Readmit => {
                own(tx, actor, macs)?;
                accounts::readmit_in(
                    tx,
                    &actor.who,
                    account,
                    &Readmission::Devices(macs.to_vec()),
                    &mut step,
                )?
                .len()
            }
            Bulk::SetProfile(p) => {
                let moved = set_profile(tx, actor, p, macs, &mut step)?;
                Impact::of(moved).require(confirm, "moving devices to another server")?;
                total
            }
            Bulk::Delete => {
                delete_impact(tx, actor, macs)?.require(confirm, "deleting the devices")?;
                for (i, mac) in macs.iter().enumerate() {
                    super::associations::delete_in(tx, actor, mac)?;
                    step(i + 1);
                }
                total
            }
        };
        watch.committing(tx, total, &bulk.outcome(changed))?;
        Ok(changed)
    })
}
