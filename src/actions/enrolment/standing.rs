//! Enrolment per device: the window association opens, each device's state as the CLI, the
//! console and the API show it, and what an admin does about a contested device (re-enrol
//! or dismiss).
//!
//! Invariants (the model-based test `tests/it/machine` checks them with the others):
//! - **E-W** associating a MAC by hand, by CSV or through the API opens a window for it that
//!   stays open until the device first enrols (no window for a device the `default-profile`
//!   policy associated, until an admin confirms it; none where enrolment needs a device
//!   certificate);
//! - **E-D** delivery is not enrolment: until the device authenticates with its own
//!   credential, every request for it with the account credential in a window is sent the
//!   same pending credential (stored before it is sent, so it survives restarts), at most
//!   `GIVE_UP_AFTER` times;
//! - **E-C** a second address sent the pending credential, or any request with the account
//!   credential after enrolment, marks the device contested; the holder of its own
//!   credential keeps being served, the claimant gets no secret; only an admin clears it.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::enrolment::{self as q, Claim, Window};
use crate::db::{self, devices};
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::enrolment::{
    NO_MAXIMUM_AGE, adopts_own_credential, check_minutes, generate_password,
};
use crate::domain::mac::Mac;
use crate::domain::machine::GIVE_UP_AFTER;
use crate::error::{Error, Result};

/// Opens the window association gives a device (E-W): until it enrols, with the account's
/// maximum age if it set one. Nothing when the account does not withhold, the device already
/// has such a window, or it has enrolled.
pub fn open_until_enrolled(
    tx: &Connection,
    account: &Account,
    mac: &Mac,
    opened_by: &str,
) -> Result<()> {
    if !account.device_secrets || super::certificate_only() {
        return Ok(());
    }
    let now = db::now_secs();
    let enrolled: bool = tx
        .query_row(
            "SELECT c.enrolled_at IS NOT NULL OR c.confirmed_at IS NOT NULL
             FROM device_credentials c JOIN devices d ON d.id = c.device_id
             WHERE d.mac = ?1",
            [mac.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    let open: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM enrolment_windows
         WHERE account_id = ?1 AND mac = ?2 AND until_enrolled = 1 AND closes_at > ?3)",
        params![account.id.0, mac.as_str(), now],
        |r| r.get(0),
    )?;
    if enrolled || open {
        return Ok(());
    }
    let max_days: i64 = tx.query_row(
        "SELECT enrol_window_max_days FROM accounts WHERE id = ?1",
        [account.id.0],
        |r| r.get(0),
    )?;
    q::insert_window(
        tx,
        &Window {
            id: 0,
            account_id: account.id.0,
            mac: Some(mac.to_string()),
            opened_at: now,
            closes_at: if max_days > 0 {
                now + max_days * 86_400
            } else {
                NO_MAXIMUM_AGE
            },
            opened_by: opened_by.to_string(),
            until_enrolled: true,
            address: None,
        },
    )?;
    Ok(())
}

/// A replaced phone: the old one's credential is revoked, what it was known to hold and
/// who claimed it forgotten, and the new MAC gets a window until it enrols.
pub fn revoke_for_replacement(
    tx: &Connection,
    account: &Account,
    device_id: i64,
    new_mac: &Mac,
    opened_by: &str,
) -> Result<()> {
    q::delete_device_credential(tx, device_id)?;
    q::clear_claims(tx, device_id)?;
    tx.execute(
        "DELETE FROM device_prov_state WHERE device_id = ?1",
        [device_id],
    )?;
    // What the old phone held (its generation, floor, service address, re-admission) is not
    // what the new one holds: the new phone starts never seen.
    tx.execute("DELETE FROM device_sync WHERE device_id = ?1", [device_id])?;
    tx.execute(
        "UPDATE devices SET secrets_until_enrolled = 0 WHERE id = ?1",
        [device_id],
    )?;
    open_until_enrolled(tx, account, new_mac, opened_by)
}

/// Where one device stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Its declared family does not adopt its own credential: not withheld.
    Exempt,
    /// Proved its own credential; nobody else claimed it.
    Enrolled,
    /// Enrolled or being enrolled, and claimed by another client (E-C).
    Contested,
    /// Sent its pending credential, not used yet.
    Delivered,
    /// Sent its pending credential `GIVE_UP_AFTER` times and never used: no longer sent.
    GivenUp,
    /// Served secrets before withholding became the default: keeps them until it enrols.
    ServedBefore,
    /// A window is open for it; nothing sent yet.
    Waiting,
    /// Not enrolled and no window: the account credential gets no secret and no credential.
    NoWindow,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Exempt => "not withheld (its family cannot enrol)",
            State::Enrolled => "enrolled",
            State::Contested => "contested: needs re-enrolment",
            State::Delivered => "delivered, not used yet",
            State::GivenUp => "given up: delivered and never used",
            State::ServedBefore => "served as before, until it enrols",
            State::Waiting => "waiting for the phone",
            State::NoWindow => "not enrolled, no window",
        }
    }

    /// Counted as "not yet enrolled" on the account page and the dashboard.
    pub fn not_enrolled(self) -> bool {
        !matches!(self, State::Exempt | State::Enrolled | State::Contested)
    }
}

/// One device's enrolment, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceEnrolment {
    pub mac: String,
    pub state: State,
    pub deliveries: i64,
    pub enrolled_at: Option<i64>,
    pub contested_at: Option<i64>,
    /// When its window closes, for people, if one is open.
    pub window: Option<String>,
    /// Who presented the account credential for it around its enrolment.
    pub claims: Vec<Claim>,
}

/// Every associated device of the account with its enrolment state, by MAC.
pub fn status(conn: &Connection, account: &Account) -> Result<Vec<DeviceEnrolment>> {
    status_where(conn, account, None)
}

/// One device's enrolment state (the device page), `None` when the MAC is not an associated
/// device of the account.
pub fn device_status(
    conn: &Connection,
    account: &Account,
    mac: &Mac,
) -> Result<Option<DeviceEnrolment>> {
    Ok(status_where(conn, account, Some(mac))?.into_iter().next())
}

/// The associated devices of the account (only `mac`, if given) with their enrolment state.
fn status_where(
    conn: &Connection,
    account: &Account,
    mac: Option<&Mac>,
) -> Result<Vec<DeviceEnrolment>> {
    let now = db::now_secs();
    let windows = q::list_open_windows(conn, account.id.0, now)?;
    let mut stmt = conn.prepare(
        "SELECT d.id, d.mac, d.vendor_model, coalesce(p.vendor_model, ''),
                d.secrets_until_enrolled, c.device_id IS NOT NULL, c.enrolled_at,
                c.confirmed_at, coalesce(c.deliveries, 0), c.contested_at
         FROM devices d
         LEFT JOIN profiles p ON p.id = d.profile_id
         LEFT JOIN device_credentials c ON c.device_id = d.id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL
           AND (?2 IS NULL OR d.mac = ?2) ORDER BY d.mac",
    )?;
    let rows = stmt
        .query_map(params![account.id.0, mac.map(Mac::as_str)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut first_for_mac: std::collections::HashMap<&str, (usize, &Window)> =
        std::collections::HashMap::new();
    for (i, w) in windows.iter().enumerate() {
        if let Some(m) = w.mac.as_deref() {
            first_for_mac.entry(m).or_insert((i, w));
        }
    }
    let first_for_all = windows.iter().enumerate().find(|(_, w)| w.mac.is_none());
    let mut out = Vec::with_capacity(rows.len());
    for (
        id,
        mac,
        model,
        profile_model,
        served,
        has,
        enrolled_at,
        confirmed_at,
        deliveries,
        contested,
    ) in rows
    {
        let model = if model.is_empty() {
            profile_model
        } else {
            model
        };
        // The first open window (in the list's order) for this MAC or for every device:
        // looked up, not searched, as every associated device may have its own window.
        let window = match (first_for_mac.get(mac.as_str()), first_for_all) {
            (Some(a), Some(b)) => Some(if a.0 < b.0 { a.1 } else { b.1 }),
            (Some(a), None) => Some(a.1),
            (None, b) => b.map(|b| b.1),
        }
        .map(Window::closes_text);
        let state = decide(
            account,
            &model,
            Facts {
                served,
                has,
                enrolled_at,
                confirmed_at,
                deliveries,
                contested: contested.is_some(),
                window: window.is_some(),
            },
        );
        let claims = if contested.is_some() {
            q::list_claims(conn, id)?
        } else {
            Vec::new()
        };
        out.push(DeviceEnrolment {
            mac,
            state,
            deliveries,
            enrolled_at: enrolled_at.or(confirmed_at),
            contested_at: contested,
            window,
            claims,
        });
    }
    Ok(out)
}

/// What decides a device's enrolment state besides its account and model.
struct Facts {
    /// Its secrets are served before it enrols (`secrets_until_enrolled`).
    served: bool,
    /// It has an own credential (`device_credentials`).
    has: bool,
    enrolled_at: Option<i64>,
    confirmed_at: Option<i64>,
    deliveries: i64,
    contested: bool,
    /// An enrolment window is open for it.
    window: bool,
}

/// A device's enrolment state (the rules of the module's `//!`), shared by the list and
/// the counts.
fn decide(account: &Account, model: &str, f: Facts) -> State {
    decide_adopting(account, adopts_own_credential(model), f)
}

/// `decide`, given whether the device's model adopts an own credential.
fn decide_adopting(account: &Account, adopts: bool, f: Facts) -> State {
    if !account.device_secrets || !adopts {
        State::Exempt
    } else if f.contested {
        State::Contested
    } else if crate::domain::enrolment::enrolled(f.enrolled_at, f.confirmed_at) {
        State::Enrolled
    } else if f.has && f.deliveries >= GIVE_UP_AFTER {
        State::GivenUp
    } else if f.served {
        State::ServedBefore
    } else if f.has && f.deliveries > 0 {
        State::Delivered
    } else if f.window {
        State::Waiting
    } else {
        State::NoWindow
    }
}

/// How many devices of the account are not yet enrolled, and how many are contested: the
/// states of `status`, decided the same way, without building each device's report (the
/// dashboard reads this for 100,000 devices).
pub fn counts(conn: &Connection, account: &Account) -> Result<(usize, usize)> {
    // Every device is exempt while the account serves secrets to its credential.
    if !account.device_secrets {
        return Ok((0, 0));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.vendor_model, coalesce(p.vendor_model, ''),
                d.secrets_until_enrolled, c.device_id IS NOT NULL, c.enrolled_at,
                c.confirmed_at, coalesce(c.deliveries, 0), c.contested_at IS NOT NULL
         FROM devices d NOT INDEXED
         LEFT JOIN profiles p ON p.id = d.profile_id
         LEFT JOIN device_credentials c ON c.device_id = d.id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL",
    )?;
    let mut rows = stmt.query([account.id.0])?;
    let (mut waiting, mut contested) = (0, 0);
    // A fleet has a few models: each is judged once.
    let mut adopts: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    while let Some(r) = rows.next()? {
        let text =
            |i| -> Result<&str> { Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?) };
        let model = match text(0)? {
            "" => text(1)?,
            m => m,
        };
        let adopting = match adopts.get(model) {
            Some(a) => *a,
            None => *adopts
                .entry(model.to_string())
                .or_insert_with(|| adopts_own_credential(model)),
        };
        let state = decide_adopting(
            account,
            adopting,
            Facts {
                served: r.get(2)?,
                has: r.get(3)?,
                enrolled_at: r.get(4)?,
                confirmed_at: r.get(5)?,
                deliveries: r.get(6)?,
                contested: r.get(7)?,
                // An open window only tells waiting from no window: both not enrolled, so
                // the counts need no window lookup.
                window: false,
            },
        );
        waiting += usize::from(state.not_enrolled());
        contested += usize::from(state == State::Contested);
    }
    Ok((waiting, contested))
}

fn associated(
    conn: &Connection,
    account: &Account,
    mac: &Mac,
) -> Result<crate::domain::device::Device> {
    devices::find_device_by_mac(conn, mac)?
        .filter(|d| d.account_id == account.id.0 && d.is_associated())
        .ok_or_else(|| {
            Error::not_found(format!(
                "associated device {mac} in account {}",
                account.slug
            ))
        })
}

/// Dismisses a contested device's claims: the admin decided the device is the one holding
/// its own credential. Refused when it is not contested.
pub fn dismiss(conn: &mut Connection, actor: &Actor, account: &Account, mac: &Mac) -> Result<()> {
    db::write_tx(conn, |tx| {
        let d = associated(tx, account, mac)?;
        if !q::clear_claims(tx, d.id)? {
            return Err(Error::Conflict(format!("{mac} is not contested")));
        }
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.dismiss", mac.to_string())
                .before(serde_json::json!({"contested": true}))
                .after(serde_json::json!({"contested": false})),
        )
    })
}

/// The phone re-enrolling `mac` affects (counted and confirmed first): the one holding its
/// current own credential keeps it until a phone proves the new one, then it is refused.
pub fn impact_reenrol(
    conn: &Connection,
    account: &Account,
    mac: &Mac,
) -> Result<super::super::Impact> {
    let d = associated(conn, account, mac)?;
    Ok(super::super::Impact::of(
        q::find_device_credential(conn, d.id)?
            .filter(|c| c.enrolled() || c.deliveries > 0)
            .map(|_| {
                (
                    mac.to_string(),
                    "a new credential of its own is sent to the next phone that presents the \
                     account credential for it in the window; the phone on its current one \
                     keeps being served until then, and is refused once the new one is used"
                        .to_string(),
                )
            }),
    ))
}

/// Re-enrols a device (a contested one, or a re-imaged phone back with the account
/// credential): a new pending credential and a window of `minutes` for its MAC, bound to
/// `address` if given; the current credential stays accepted until the new one is used
/// (I9). Its claims are cleared.
pub fn reenrol(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: &Mac,
    minutes: u64,
    address: Option<std::net::IpAddr>,
    confirm: bool,
) -> Result<Window> {
    check_minutes(minutes)?;
    if !account.device_secrets {
        return Err(Error::Conflict(format!(
            "account {} does not withhold secrets: there is nothing to re-enrol",
            account.slug
        )));
    }
    super::refuse_window_if_certificate_only()?;
    db::write_tx(conn, |tx| {
        impact_reenrol(tx, account, mac)?.require(confirm, "re-enrolling the device")?;
        let d = associated(tx, account, mac)?;
        let now = db::now_secs();
        if let Some(c) = q::find_device_credential(tx, d.id)? {
            let keep = c.enrolled() || c.deliveries > 0;
            q::store_device_credential(tx, d.id, &generate_password(), keep, now)?;
            tx.execute(
                "UPDATE device_credentials SET enrolled_at = NULL WHERE device_id = ?1",
                [d.id],
            )?;
        }
        q::clear_claims(tx, d.id)?;
        let w = q::insert_window(
            tx,
            &super::timed_window(account, Some(mac), minutes, actor, address),
        )?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.reenrol", mac.to_string())
                .after(serde_json::json!({"window_minutes": minutes, "address": w.address})),
        )?;
        Ok(w)
    })
}

/// Sets the account's maximum age of the windows association opens (0: none, the default).
/// Applies to windows opened from now on.
pub fn set_window_max_days(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    days: u32,
) -> Result<()> {
    if days > 3650 {
        return Err(Error::invalid(
            "max_days",
            "at most 3650 days (0: no maximum age)",
        ));
    }
    db::write_tx(conn, |tx| {
        tx.execute(
            "UPDATE accounts SET enrol_window_max_days = ?2 WHERE id = ?1",
            params![account.id.0, days],
        )?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "enrolment.max-age",
                account.slug.clone(),
            )
            .after(serde_json::json!({"max_days": days})),
        )
    })
}
