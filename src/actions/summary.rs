//! What needs the admin now: every count the console's home page, the API's summary
//! (`GET /api/v1/accounts/{slug}/summary`) and `zerotouch status` show, defined once here
//! for one account.
//!
//! Invariants (tested on a populated database by `tests/it/summary.rs`):
//! - every count is the length of a list an admin can open: a card's `filter` given to the
//!   inventory (`actions::inventory`) matches exactly `count` devices, and the console's
//!   card links there; the overrides count is the length of the account's Overrides list;
//! - the device states and flags are the inventory's one pass (`domain::inventory`), so the
//!   Auto-Sync counts are the state machine's (`domain::autosync::state`, as on the Auto-Sync
//!   page) and never-seen devices are never counted as synced;
//! - `devices = associated + unassociated` and `staged + provisioned-active + provisioned =
//!   associated`;
//! - enrolment counts are `actions::enrolment::counts`, as on the Enrolment page;
//! - nothing here writes.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::domain::account::Account;
use crate::domain::inventory::{CheckIns, Filter, FirmwareAdoption, Flag, Page, State};
use crate::error::Result;

/// Which inventory filter a card stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum CardFilter {
    State(State),
    Flag(Flag),
    /// Not an inventory filter: the list lives on its own page (`link`).
    Page,
}

impl CardFilter {
    /// The inventory filter, if the card has one.
    pub fn inventory(self) -> Option<Filter> {
        match self {
            CardFilter::State(s) => Some(Filter {
                state: Some(s),
                ..Default::default()
            }),
            CardFilter::Flag(f) => Some(Filter {
                flag: Some(f),
                ..Default::default()
            }),
            CardFilter::Page => None,
        }
    }
}

/// One number on the dashboard: what it counts, how many, where the list is and what
/// fixes it.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// Stable key (`locked-out`, `never-seen`, `waiting-to-enrol` …).
    pub key: &'static str,
    pub label: &'static str,
    pub count: usize,
    /// Whether a non-zero count needs the admin (shown first, marked).
    pub needs_action: bool,
    pub filter: CardFilter,
    /// What to do about it, in a few words.
    pub fix: &'static str,
}

/// One step of the first-run checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub key: &'static str,
    pub label: &'static str,
    pub done: bool,
}

/// Everything the dashboard shows for one account.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub account: String,
    pub account_name: String,
    /// Devices of the account, associated or only seen.
    pub devices: usize,
    pub associated: usize,
    pub unassociated: usize,
    pub profiles: usize,
    /// Associated devices online and offline (`domain::inventory::online`).
    pub online: usize,
    pub offline: usize,
    pub by_state: BTreeMap<&'static str, usize>,
    pub by_flag: BTreeMap<&'static str, usize>,
    pub waiting_to_enrol: usize,
    pub contested: usize,
    /// Devices with stored override files that set at least one parameter.
    pub overridden: usize,
    /// Cards in the order shown: what needs the admin first.
    pub cards: Vec<Card>,
    /// The first-run checklist; `complete` once every step is done.
    pub checklist: Vec<Step>,
    pub checklist_complete: bool,
    pub checkins: CheckIns,
    /// Auto-Sync's burn-down after a credential change within the last week.
    pub burn_down: Option<BurnDown>,
    /// Devices on their profile's firmware, per day.
    pub firmware_adoption: FirmwareAdoption,
}

/// How many associated devices had not yet taken the current credentials, at the end of
/// each period since the change made them current (at most 48 periods of whole hours).
#[derive(Debug, Clone, Serialize)]
pub struct BurnDown {
    pub generation: i64,
    /// When the generation became current (Unix seconds).
    pub since: i64,
    pub period_secs: i64,
    /// Associated devices now.
    pub devices: usize,
    /// Devices without the current generation at the end of each period, oldest first.
    pub pending: Vec<u32>,
}

impl BurnDown {
    /// The burn-down as an SVG bar chart.
    pub fn svg(&self) -> String {
        let labels: Vec<String> = (0..self.pending.len() as i64)
            .map(|i| {
                let h = (i + 1) * self.period_secs / 3600;
                format!("+{h} h")
            })
            .collect();
        crate::domain::chart::bars_svg(
            &format!(
                "Devices still without credential generation {}, per {} h since it was set",
                self.generation,
                self.period_secs / 3600
            ),
            &self.pending,
            &labels,
        )
    }
}

/// The burn-down of the current generation, if it replaced another within the last 7 days.
/// A device counts as done from the time it confirmed the generation (`device_sync`), or
/// all along when it uses its own credential; at the last period the count is the devices
/// the state machine does not call synced, among those it has seen.
pub fn burn_down(conn: &Connection, account: &Account, now: i64) -> Result<Option<BurnDown>> {
    let history = crate::db::credentials::load_history(conn, account.id)?;
    let Some(current) = history.generations.last() else {
        return Ok(None);
    };
    if history.generations.len() < 2 || now - current.created_at > 7 * 86_400 {
        return Ok(None);
    }
    let since = current.created_at;
    let span = (now - since).max(1) as u64;
    let period_secs = span.div_ceil(48).div_ceil(3600) * 3600;
    let periods = span.div_ceil(period_secs) as usize;
    let period_secs = period_secs as i64;
    let held = crate::db::inventory::held_generations(conn, account.id.0)?;
    let devices = held.len();
    let mut pending = vec![devices as u32; periods];
    for (generation, at) in held {
        // A device on its own credential does not use the account's: done all along.
        let at = match generation {
            Some(crate::domain::autosync::OWN_CREDENTIAL) => since,
            Some(g) if g == current.generation => at.unwrap_or(since).max(since),
            _ => continue,
        };
        let first = ((at - since) / period_secs) as usize;
        for p in pending.iter_mut().skip(first) {
            *p -= 1;
        }
    }
    Ok(Some(BurnDown {
        generation: current.generation,
        since,
        period_secs,
        devices,
        pending,
    }))
}

impl Summary {
    /// The card with this key.
    pub fn card(&self, key: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.key == key)
    }
}

/// The summary of `account`. `uploads_dir` holds the phones' stored override files.
pub fn summary(
    conn: &Connection,
    account: &Account,
    uploads_dir: &std::path::Path,
) -> Result<Summary> {
    let inv = super::inventory::inventory(
        conn,
        account,
        &Filter::default(),
        Page { number: 1, size: 0 },
    )?;
    let (waiting, contested) = super::enrolment::counts(conn, account)?;
    let overridden =
        super::overrides::list_overridden(conn, uploads_dir, Some(account.id.0))?.len();
    let one = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [account.id.0], |r| r.get(0))?) };
    let profiles = one("SELECT count(*) FROM profiles WHERE account_id = ?1")? as usize;
    // Probes look at the network, not at one account.
    let probes: i64 = conn.query_row(
        "SELECT count(*) FROM diag_runs WHERE status = 'ok'",
        [],
        |r| r.get(0),
    )?;
    let st = |s: State| inv.by_state.get(s.as_str()).copied().unwrap_or(0);
    let fl = |f: Flag| inv.by_flag.get(f.as_str()).copied().unwrap_or(0);
    let unassociated = st(State::Unassociated);
    let associated = inv.total - unassociated;
    let flag_card = |f: Flag, needs_action: bool, fix: &'static str| Card {
        key: f.as_str(),
        label: f.label(),
        count: fl(f),
        needs_action,
        filter: CardFilter::Flag(f),
        fix,
    };
    let state_card = |s: State, label: &'static str, needs_action: bool, fix: &'static str| Card {
        key: s.as_str(),
        label,
        count: st(s),
        needs_action,
        filter: CardFilter::State(s),
        fix,
    };
    let cards = vec![
        flag_card(
            Flag::LockedOut,
            true,
            "re-admit them on the Auto-Sync page, or reset them",
        ),
        Card {
            key: "contested",
            label: "contested (two phones claim one MAC)",
            count: contested,
            needs_action: true,
            filter: CardFilter::Page,
            fix: "decide which phone is genuine on the Enrolment page",
        },
        flag_card(
            Flag::AuthFailing,
            true,
            "check the credentials in DHCP option 160 and on the phones",
        ),
        Card {
            key: "waiting-to-enrol",
            label: "waiting to enrol",
            count: waiting,
            needs_action: false,
            filter: CardFilter::Page,
            fix: "they enrol at their next request; see the Enrolment page",
        },
        flag_card(
            Flag::CredentialsPending,
            false,
            "they take the new credentials at their next poll",
        ),
        flag_card(
            Flag::ChangePending,
            false,
            "apply now, or wait for their next poll",
        ),
        flag_card(
            Flag::NeverSeen,
            false,
            "check DHCP option 66/160 and that the phones are plugged in",
        ),
        flag_card(
            Flag::FirmwareBehind,
            false,
            "they update at their next reboot or poll",
        ),
        flag_card(
            Flag::DowngradePending,
            false,
            "check the profile's firmware version is the one you want",
        ),
        Card {
            key: "overridden",
            label: "overrides made on the phone",
            count: overridden,
            needs_action: false,
            filter: CardFilter::Page,
            fix: "clear them so the server's values apply",
        },
        state_card(
            State::Unassociated,
            "seen, not associated",
            false,
            "associate them with a profile",
        ),
        state_card(
            State::ProvisionedActive,
            "active (signed in within 24 h)",
            false,
            "nothing to do",
        ),
        state_card(
            State::Provisioned,
            "provisioned, quiet for 24 h",
            false,
            "nothing to do unless they should poll daily",
        ),
        state_card(
            State::Staged,
            "staged (associated, not yet provisioned)",
            false,
            "they provision at their next request",
        ),
    ];
    let checklist = vec![
        Step {
            key: "credentials",
            label: "Set the account's provisioning credentials",
            done: account.device_user.is_some() && account.device_password.is_some(),
        },
        Step {
            key: "profile",
            label: "Create a profile",
            done: profiles > 0,
        },
        Step {
            key: "device",
            label: "Associate a device (or upload a bulk CSV)",
            done: associated > 0,
        },
        Step {
            key: "dhcp",
            label: "Point DHCP option 66/160 at this server (done when a phone has asked)",
            done: inv.total > fl(Flag::NeverSeen),
        },
        Step {
            key: "probe",
            label: "Run a DHCP or DNS probe on the Diagnostics page",
            done: probes > 0,
        },
    ];
    let checklist_complete = checklist.iter().all(|s| s.done);
    Ok(Summary {
        account: account.slug.clone(),
        account_name: account.name.clone(),
        devices: inv.total,
        associated,
        unassociated,
        profiles,
        online: inv.online,
        offline: inv.offline,
        waiting_to_enrol: waiting,
        contested,
        overridden,
        cards,
        checklist,
        checklist_complete,
        checkins: super::inventory::checkins(conn, account)?,
        burn_down: burn_down(conn, account, crate::db::now_secs())?,
        by_state: inv.by_state,
        by_flag: inv.by_flag,
        firmware_adoption: inv.adoption,
    })
}
