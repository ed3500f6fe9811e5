//! Actions on accounts (Lens "Device Provisioning", seeds 001 and 004), shared by the CLI,
//! the admin UI and the API: several accounts per installation, each with its service
//! address, provisioning on/off, device credentials in generations, Auto-Sync and its
//! settings, service-address regeneration with aliases, and re-admission of devices.
//!
//! Every action validates first, then writes in one `BEGIN IMMEDIATE` transaction together
//! with its audit entry. An action that would lock devices out computes how many with the
//! same rules that then decide requests (`autosync`), and without `confirm` returns
//! `Error::NeedsConfirmation` with that number; the `impact_*` functions give the count
//! without acting, for a UI to show before asking.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use super::account::{self, Account, AccountId, random_token};
use super::audit::{self, Actor, Change};
use super::autosync::{self, DAY, DeviceFacts, History, Readmit, Settings, SyncState};
use super::device::Device;
use super::mac::Mac;
use super::policy::SyncTarget;
use super::polycom::models::{Family, VIDEO_VENDOR_MODEL};
use super::profile::Profile;
use crate::db::credentials::{self, DeviceSync};
use crate::db::inventory::{self, DeviceRow};
use crate::db::{self, accounts, devices, profiles};
use crate::error::{Error, Result};

/// An account's Auto-Sync settings and credential history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSync {
    pub settings: Settings,
    pub history: History,
}

/// Every account's Auto-Sync settings and history (for the serving cache).
pub fn load_sync(conn: &Connection) -> Result<HashMap<AccountId, AccountSync>> {
    let mut histories = credentials::load_histories(conn)?;
    Ok(credentials::load_all_settings(conn)?
        .into_iter()
        .map(|(id, settings)| {
            let history = histories.remove(&id).unwrap_or_default();
            (id, AccountSync { settings, history })
        })
        .collect())
}

/// The account named by `slug`, or the default account (created on first use).
pub fn find_account(conn: &Connection, slug: Option<&str>) -> Result<Account> {
    match slug {
        None => Ok(accounts::ensure_default(conn)?.0),
        Some(s) => accounts::find_by_slug(conn, s)?
            .ok_or_else(|| Error::not_found(format!("account `{s}`"))),
    }
}

/// Whether a device may be synced, from the facts of a device row.
fn row_eligibility(row: &DeviceRow, settings: &Settings) -> Result<(), autosync::Ineligible> {
    autosync::eligibility(
        row.profile.is_some(),
        row.auto_associated,
        row.external_server,
        row.profile_vendor_model == VIDEO_VENDOR_MODEL || row.vendor_model == VIDEO_VENDOR_MODEL,
        row.sync.family,
        settings,
    )
}

/// The Auto-Sync facts of a device row.
pub fn facts_of(row: &DeviceRow, settings: &Settings) -> DeviceFacts {
    DeviceFacts {
        held: row.sync.generation,
        held_at: row.sync.generation_at,
        last_seen: row.last_seen,
        associated_at: row.associated_at,
        eligible: row_eligibility(row, settings),
        readmit: row.sync.readmit,
    }
}

/// The Auto-Sync facts of one device of `account`, read fresh; `None` when the MAC is not
/// an associated device of the account.
pub fn device_facts(
    conn: &Connection,
    account: &Account,
    settings: &Settings,
    mac: &Mac,
) -> Result<Option<DeviceFacts>> {
    let Some(device) = devices::find_device_by_mac(conn, mac)?
        .filter(|d| d.account_id == account.id.0 && d.is_associated())
    else {
        return Ok(None);
    };
    let profile = match device.profile_id {
        Some(id) => profiles::find_profile_by_id(conn, id)?,
        None => None,
    };
    let sync = credentials::find_sync(conn, device.id)?.unwrap_or_default();
    let activity = devices::find_activity(conn, device.id)?;
    let associated_at: Option<i64> = conn.query_row(
        "SELECT associated_at FROM devices WHERE id = ?1",
        [device.id],
        |r| r.get(0),
    )?;
    Ok(Some(DeviceFacts {
        held: sync.generation,
        held_at: sync.generation_at,
        last_seen: activity.map(|a| a.last_seen),
        associated_at,
        eligible: eligibility(&device, profile.as_ref(), &sync, settings),
        readmit: sync.readmit,
    }))
}

fn eligibility(
    device: &Device,
    profile: Option<&Profile>,
    sync: &DeviceSync,
    settings: &Settings,
) -> Result<(), autosync::Ineligible> {
    autosync::eligibility(
        profile.is_some(),
        device.auto_associated,
        !device.ext.prov_server.is_empty()
            || profile.is_some_and(|p| !p.fields.prov_server.is_empty()),
        profile.is_some_and(Profile::is_video_endpoint)
            || device.vendor_model == VIDEO_VENDOR_MODEL,
        sync.family,
        settings,
    )
}

/// What Auto-Sync (or a re-admission) sends a device: the account's current credentials,
/// when provisioning and Auto-Sync are on and the device may be synced, or when an admin
/// re-admitted it.
pub fn sync_target(
    account: &Account,
    settings: &Settings,
    device: &Device,
    profile: Option<&Profile>,
    sync: &DeviceSync,
    now: i64,
) -> Option<SyncTarget> {
    let (Some(user), Some(password)) = (&account.device_user, &account.device_password) else {
        return None;
    };
    let on = settings.provisioning_enabled
        && settings.enabled
        && eligibility(device, profile, sync, settings).is_ok();
    let readmitted = settings.provisioning_enabled
        && profile.is_some()
        && sync.readmit.is_some_and(|r| now < r.until);
    (on || readmitted).then(|| SyncTarget {
        user: user.clone(),
        password: password.clone(),
        family: match sync.family {
            Some(Family::PolyOs) => Family::PolyOs,
            _ => Family::Vvx,
        },
    })
}

/// How many devices an action would lock out, and which (for a UI to show before asking).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub locked_out: usize,
    pub macs: Vec<String>,
}

impl Impact {
    /// `Ok` when nothing is locked out or the admin confirmed; else the error to show.
    fn require(&self, confirm: bool, what: &str) -> Result<()> {
        if self.locked_out == 0 || confirm {
            return Ok(());
        }
        let shown: Vec<&str> = self.macs.iter().take(10).map(String::as_str).collect();
        let more = if self.macs.len() > shown.len() {
            format!(" and {} more", self.macs.len() - shown.len())
        } else {
            String::new()
        };
        Err(Error::NeedsConfirmation {
            devices: self.locked_out,
            message: format!(
                "{what}: {} device(s) will be locked out ({}{more}); confirm to go ahead",
                self.locked_out,
                shown.join(", ")
            ),
        })
    }
}

/// Associated devices locked out after a change of settings or history but not before.
fn lockouts(
    rows: &[DeviceRow],
    before: (&Settings, &History),
    after: (&Settings, &History),
    now: i64,
) -> Impact {
    let macs: Vec<String> = rows
        .iter()
        .filter(|r| r.profile.is_some())
        .filter(|r| {
            // Eligibility depends on the settings (Poly OS), so the facts are taken twice.
            !autosync::state(before.0, before.1, &facts_of(r, before.0), now).is_locked_out()
                && autosync::state(after.0, after.1, &facts_of(r, after.0), now).is_locked_out()
        })
        .map(|r| r.mac.clone())
        .collect();
    Impact {
        locked_out: macs.len(),
        macs,
    }
}

fn load(conn: &Connection, account: &Account) -> Result<(Settings, History, Vec<DeviceRow>)> {
    Ok((
        credentials::load_settings(conn, account.id)?,
        credentials::load_history(conn, account.id)?,
        inventory::list_device_rows(conn, account.id.0)?,
    ))
}

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub slug: String,
    pub user: String,
    pub password: String,
}

/// Creates an account (provisioning and Auto-Sync on, as Lens does for new accounts).
pub fn add_account(conn: &mut Connection, actor: &Actor, input: &NewAccount) -> Result<Account> {
    let mut problems = Vec::new();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        problems.push(crate::error::FieldError::new(
            "name",
            "must be 1 to 64 characters without control characters",
        ));
    }
    for r in [
        account::validate_slug(&input.slug),
        account::validate_credentials(&input.user, &input.password),
    ] {
        if let Err(Error::Invalid(p)) = r {
            problems.extend(p);
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    db::write_tx(conn, |tx| {
        let a =
            accounts::insert_account(tx, name, &input.slug, false, &input.user, &input.password)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(a.id.0), "account.add", a.slug.clone()).after(json!({
                "name": a.name, "slug": a.slug, "user": input.user, "password": input.password,
                "service_address": a.service_path(),
            })),
        )?;
        Ok(a)
    })
}

/// An account with its settings, for lists and the account page.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub is_default: bool,
    /// `/<slug>-<key>/`
    pub service_address: String,
    pub settings: Settings,
    pub device_user: Option<String>,
    pub credential_generation: i64,
    pub devices: i64,
    /// Former service addresses still answered.
    pub aliases: Vec<String>,
}

pub fn summarize(conn: &Connection, a: &Account) -> Result<AccountSummary> {
    Ok(AccountSummary {
        id: a.id.0,
        name: a.name.clone(),
        slug: a.slug.clone(),
        is_default: a.is_default,
        service_address: a.service_path(),
        settings: credentials::load_settings(conn, a.id)?,
        device_user: a.device_user.clone(),
        credential_generation: a.credential_generation,
        devices: conn.query_row(
            "SELECT count(*) FROM devices WHERE account_id = ?1 AND profile_id IS NOT NULL",
            [a.id.0],
            |r| r.get(0),
        )?,
        aliases: credentials::list_aliases(conn, Some(a.id))?
            .into_iter()
            .filter(|al| al.retired_at.is_none())
            .map(|al| format!("/{}/", al.segment))
            .collect(),
    })
}

/// Every account with its settings.
pub fn list_accounts(conn: &Connection) -> Result<Vec<AccountSummary>> {
    accounts::list_accounts(conn)?
        .iter()
        .map(|a| summarize(conn, a))
        .collect()
}

/// How a credential change is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Grace window for the old credentials; `None`: the account's setting.
    pub grace_days: Option<u32>,
    /// The old credentials leaked: no grace window at all.
    pub compromised: bool,
}

fn require_enabled(settings: &Settings, what: &str) -> Result<()> {
    if settings.provisioning_enabled {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "provisioning is disabled on this account: enable it before {what}"
        )))
    }
}

/// How many devices new credentials would lock out now.
pub fn impact_set_credentials(
    conn: &Connection,
    account: &Account,
    rotation: Rotation,
) -> Result<Impact> {
    let (settings, history, rows) = load(conn, account)?;
    let now = db::now_secs();
    let grace = rotation.grace_days.unwrap_or(settings.grace_days);
    let next = history.rotated(now, "-", "-", grace, rotation.compromised);
    Ok(lockouts(
        &rows,
        (&settings, &history),
        (&settings, &next),
        now,
    ))
}

/// Sets an account's device credentials: a new generation (seed 001: only while
/// provisioning is enabled). With Auto-Sync on, devices holding the old generation keep
/// being served (and are sent the new one) within the grace window. Returns the new
/// generation.
pub fn set_credentials(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    user: &str,
    password: &str,
    rotation: Rotation,
    confirm: bool,
) -> Result<i64> {
    account::validate_credentials(user, password)?;
    if rotation.grace_days.is_some_and(|d| d > 365) {
        return Err(Error::invalid("grace_days", "must be 0 to 365"));
    }
    db::write_tx(conn, |tx| {
        let (settings, history, rows) = load(tx, account)?;
        require_enabled(&settings, "editing the server credentials")?;
        let now = db::now_secs();
        let grace = rotation.grace_days.unwrap_or(settings.grace_days);
        let next = history.rotated(now, user, password, grace, rotation.compromised);
        lockouts(&rows, (&settings, &history), (&settings, &next), now)
            .require(confirm, "changing the credentials")?;
        credentials::store_history(tx, account.id, &next)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.set-credentials",
                account.slug.clone(),
            )
            .before(json!({"user": account.device_user, "generation": history.current()}))
            .after(json!({
                "user": user, "password": password, "generation": next.current(),
                "grace_days": if rotation.compromised { 0 } else { grace },
                "compromised": rotation.compromised,
            })),
        )?;
        Ok(next.current())
    })
}

/// How many devices turning provisioning on or off would lock out (off: every associated
/// device stops getting its configuration).
pub fn impact_provisioning(conn: &Connection, account: &Account, enabled: bool) -> Result<Impact> {
    if enabled {
        return Ok(Impact::default());
    }
    let macs: Vec<String> = inventory::list_device_rows(conn, account.id.0)?
        .into_iter()
        .filter(|r| r.profile.is_some())
        .map(|r| r.mac)
        .collect();
    Ok(Impact {
        locked_out: macs.len(),
        macs,
    })
}

/// Turns Device Provisioning on or off. Off: every device endpoint of the account refuses
/// service, and Auto-Sync is turned off with it (seeds 001, 004); turning it on again leaves
/// Auto-Sync off until an admin turns it on.
pub fn set_provisioning(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    enabled: bool,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let before = credentials::load_settings(tx, account.id)?;
        if before.provisioning_enabled == enabled {
            return Ok(());
        }
        impact_provisioning(tx, account, enabled)?.require(confirm, "disabling provisioning")?;
        let after = Settings {
            provisioning_enabled: enabled,
            enabled: before.enabled && enabled,
            ..before
        };
        credentials::store_settings(tx, account.id, &after)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                if enabled {
                    "account.enable"
                } else {
                    "account.disable"
                },
                account.slug.clone(),
            )
            .before(
                json!({"provisioning": before.provisioning_enabled, "autosync": before.enabled}),
            )
            .after(json!({"provisioning": after.provisioning_enabled, "autosync": after.enabled})),
        )
    })
}

/// How many devices turning Auto-Sync on or off would lock out (off: the pending ones).
pub fn impact_autosync(conn: &Connection, account: &Account, enabled: bool) -> Result<Impact> {
    let (settings, history, rows) = load(conn, account)?;
    let after = Settings {
        enabled,
        ..settings
    };
    Ok(lockouts(
        &rows,
        (&settings, &history),
        (&after, &history),
        db::now_secs(),
    ))
}

/// Turns Auto-Sync on or off. Off: no rollback; devices still pending are no longer served
/// their old credentials (they are locked out: confirm). On: devices whose window is still
/// open resume.
pub fn set_autosync(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    enabled: bool,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let (settings, history, rows) = load(tx, account)?;
        if settings.enabled == enabled {
            return Ok(());
        }
        if enabled {
            require_enabled(&settings, "turning Auto-Sync on")?;
        }
        let after = Settings {
            enabled,
            ..settings
        };
        lockouts(
            &rows,
            (&settings, &history),
            (&after, &history),
            db::now_secs(),
        )
        .require(confirm, "turning Auto-Sync off")?;
        credentials::store_settings(tx, account.id, &after)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.set-autosync",
                account.slug.clone(),
            )
            .before(json!({"autosync": settings.enabled}))
            .after(json!({"autosync": enabled})),
        )
    })
}

/// Auto-Sync options; `None` leaves a value as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutoSyncOptions {
    pub grace_days: Option<u32>,
    pub seen_days: Option<u32>,
    pub poly_os: Option<bool>,
}

/// Changes Auto-Sync options. Shorter "seen" periods and turning Poly OS off can lock
/// devices out (confirm); the grace window applies to the next rotation.
pub fn set_autosync_options(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    options: AutoSyncOptions,
    confirm: bool,
) -> Result<()> {
    if options.grace_days.is_some_and(|d| d > 365) {
        return Err(Error::invalid("grace_days", "must be 0 to 365"));
    }
    if options.seen_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(Error::invalid("seen_days", "must be 1 to 3650"));
    }
    db::write_tx(conn, |tx| {
        let (settings, history, rows) = load(tx, account)?;
        let after = Settings {
            grace_days: options.grace_days.unwrap_or(settings.grace_days),
            seen_days: options.seen_days.unwrap_or(settings.seen_days),
            poly_os: options.poly_os.unwrap_or(settings.poly_os),
            ..settings
        };
        lockouts(
            &rows,
            (&settings, &history),
            (&after, &history),
            db::now_secs(),
        )
        .require(confirm, "changing the Auto-Sync options")?;
        credentials::store_settings(tx, account.id, &after)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "account.set-autosync-options", account.slug.clone())
                .before(json!({"grace_days": settings.grace_days, "seen_days": settings.seen_days, "poly_os": settings.poly_os}))
                .after(json!({"grace_days": after.grace_days, "seen_days": after.seen_days, "poly_os": after.poly_os})),
        )
    })
}

/// Devices whose last request came through `segment` and that Auto-Sync cannot move to the
/// current address.
fn stuck_on(rows: &[DeviceRow], account: &Account, settings: &Settings, segment: &str) -> Impact {
    let now = db::now_secs();
    let macs: Vec<String> = rows
        .iter()
        .filter(|r| r.sync.base_segment == segment)
        .filter(|r| {
            let movable = settings.provisioning_enabled
                && ((settings.enabled && row_eligibility(r, settings).is_ok())
                    || r.sync.readmit.is_some_and(|x| now < x.until));
            !movable || account.device_user.is_none()
        })
        .map(|r| r.mac.clone())
        .collect();
    Impact {
        locked_out: macs.len(),
        macs,
    }
}

/// How many devices a new service address would leave stranded on the old one (they keep
/// using it as an alias, and are locked out when it is retired).
pub fn impact_regenerate_address(conn: &Connection, account: &Account) -> Result<Impact> {
    let (settings, _, rows) = load(conn, account)?;
    Ok(stuck_on(
        &rows,
        account,
        &settings,
        &account.service_segment(),
    ))
}

/// The result of a new service address.
#[derive(Debug, Clone, Serialize)]
pub struct Regenerated {
    pub old: String,
    pub new: String,
    /// Devices that used the old address: it stays an alias until each has moved.
    pub holders: i64,
}

/// Gives an account a new service address. The old one stays an alias while devices use
/// it; Auto-Sync moves them (they confirm by arriving at the new one), and the alias is
/// retired when the last one has moved.
pub fn regenerate_address(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    confirm: bool,
) -> Result<Regenerated> {
    db::write_tx(conn, |tx| {
        let (settings, _, rows) = load(tx, account)?;
        let old = account.service_segment();
        stuck_on(&rows, account, &settings, &old).require(
            confirm,
            "regenerating the service address (devices Auto-Sync cannot move stay on the old \
             address, an alias, until it is retired)",
        )?;
        let key = random_token(16);
        credentials::update_service_key(tx, account.id, &key)?;
        let new = format!("{}-{key}", account.slug);
        let holders = credentials::count_segment_holders(tx, &old)?;
        if holders > 0 {
            credentials::insert_alias(tx, account.id, &old)?;
        }
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.regenerate-address",
                account.slug.clone(),
            )
            .before(json!({"service_address": format!("/{old}/")}))
            .after(json!({"service_address": format!("/{new}/"), "alias_kept_for": holders})),
        )?;
        Ok(Regenerated {
            old: format!("/{old}/"),
            new: format!("/{new}/"),
            holders,
        })
    })
}

/// An alias with the devices still on it.
#[derive(Debug, Clone, Serialize)]
pub struct AliasState {
    pub address: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub holders: i64,
}

pub fn list_aliases(conn: &Connection, account: &Account) -> Result<Vec<AliasState>> {
    credentials::list_aliases(conn, Some(account.id))?
        .into_iter()
        .map(|a| {
            Ok(AliasState {
                address: format!("/{}/", a.segment),
                holders: credentials::count_segment_holders(conn, &a.segment)?,
                created_at: a.created_at,
                retired_at: a.retired_at,
            })
        })
        .collect()
}

/// Retires an alias now: the devices still on it are locked out (confirm).
pub fn retire_alias(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    address: &str,
    confirm: bool,
) -> Result<()> {
    let segment = address.trim_matches('/');
    db::write_tx(conn, |tx| {
        let known = credentials::list_aliases(tx, Some(account.id))?
            .into_iter()
            .any(|a| a.segment == segment && a.retired_at.is_none());
        if !known {
            return Err(Error::not_found(format!(
                "alias `{address}` of account `{}`",
                account.slug
            )));
        }
        let macs: Vec<String> = inventory::list_device_rows(tx, account.id.0)?
            .into_iter()
            .filter(|r| r.sync.base_segment == segment)
            .map(|r| r.mac)
            .collect();
        Impact {
            locked_out: macs.len(),
            macs,
        }
        .require(confirm, "retiring the alias")?;
        credentials::retire_alias(tx, segment)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.retire-alias",
                format!("/{segment}/"),
            )
            .before(json!({"alias": format!("/{segment}/")})),
        )
    })
}

/// Which devices to re-admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readmission {
    Devices(Vec<Mac>),
    /// Every locked-out device of the account.
    AllLockedOut,
}

/// Re-admits devices: each may use the credential generation it holds once more (until it
/// syncs, at most the grace window or a day), whatever Auto-Sync says, and is sent the
/// current credentials. Returns the MACs re-admitted.
pub fn readmit(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    which: &Readmission,
) -> Result<Vec<String>> {
    db::write_tx(conn, |tx| {
        let (settings, history, rows) = load(tx, account)?;
        require_enabled(&settings, "re-admitting devices")?;
        let now = db::now_secs();
        let chosen: Vec<&DeviceRow> = match which {
            Readmission::AllLockedOut => rows
                .iter()
                .filter(|r| r.profile.is_some())
                .filter(|r| {
                    autosync::state(&settings, &history, &facts_of(r, &settings), now)
                        .is_locked_out()
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
                    let st = autosync::state(&settings, &history, &facts_of(row, &settings), now);
                    if let SyncState::Synced { generation } = st {
                        return Err(Error::Conflict(format!(
                            "device {mac} already holds the current credentials (generation {generation})"
                        )));
                    }
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
            audit::record(
                tx,
                actor,
                Change::new(Some(account.id.0), "autosync.readmit", row.mac.clone())
                    .after(json!({"generation": generation, "until": until})),
            )?;
            done.push(row.mac.clone());
        }
        if !done.is_empty() {
            credentials::bump_revision(tx)?;
        }
        Ok(done)
    })
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
        audit::record(
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
    pub synced: usize,
    pub pending: Vec<DeviceSyncRow>,
    pub locked_out: Vec<DeviceSyncRow>,
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
    let (mut synced, mut pending, mut locked) = (0, Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| r.profile.is_some()) {
        let st = autosync::state(&settings, &history, &facts_of(row, &settings), now);
        *counts.entry(st.generation()).or_default() += 1;
        match st {
            SyncState::Synced { .. } => synced += 1,
            SyncState::Pending { .. } => pending.push(sync_row(row, st)),
            SyncState::LockedOut { .. } => locked.push(sync_row(row, st)),
        }
    }
    Ok(Progress {
        current_generation: history.current(),
        settings,
        by_generation: counts.into_iter().rev().collect(),
        synced,
        pending,
        locked_out: locked,
    })
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
            SyncState::Synced { .. } => (None, String::new()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device::DeviceInput;
    use crate::domain::profile::ProfileFields;

    fn setup() -> (Connection, Account, Actor) {
        let conn = db::open_in_memory().expect("db");
        let a = find_account(&conn, None).expect("default");
        let f = ProfileFields {
            name: "p1".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            ..Default::default()
        };
        let pid = profiles::insert_profile(&conn, a.id.0, &f, &[]).expect("profile");
        for i in 0..3 {
            let d = DeviceInput {
                mac: format!("0004f200000{i}"),
                profile: "p1".into(),
                ..Default::default()
            }
            .validate()
            .expect("valid");
            let id = devices::insert_device(&conn, a.id.0, &d, pid, false).expect("device");
            // Seen and holding generation 1.
            credentials::store_sync(
                &conn,
                id,
                &DeviceSync {
                    generation: Some(1),
                    generation_at: Some(db::now_secs()),
                    ..Default::default()
                },
            )
            .expect("sync");
        }
        (conn, a, Actor::person("admin"))
    }

    fn reload(conn: &Connection, a: &Account) -> Account {
        find_account(conn, Some(&a.slug)).expect("account")
    }

    #[test]
    fn a_rotation_with_auto_sync_on_locks_nobody_out_and_keeps_every_generation() {
        let (mut conn, a, actor) = setup();
        let g = set_credentials(
            &mut conn,
            &actor,
            &a,
            "phones",
            "new-password-1",
            Rotation::default(),
            false,
        )
        .expect("rotate");
        assert_eq!(g, 2);
        let h = credentials::load_history(&conn, a.id).expect("history");
        assert_eq!(h.generations.len(), 2);
        assert!(h.generations[0].accept_until.is_some());
        let p = progress(&conn, &reload(&conn, &a)).expect("progress");
        assert_eq!((p.synced, p.pending.len(), p.locked_out.len()), (0, 3, 0));
        assert_eq!(p.by_generation, vec![(1, 3)]);
    }

    #[test]
    fn turning_auto_sync_off_with_pending_devices_needs_confirmation() {
        let (mut conn, a, actor) = setup();
        set_credentials(
            &mut conn,
            &actor,
            &a,
            "phones",
            "new-password-1",
            Rotation::default(),
            false,
        )
        .expect("rotate");
        let a = reload(&conn, &a);
        assert_eq!(
            impact_autosync(&conn, &a, false)
                .expect("impact")
                .locked_out,
            3
        );
        let err = set_autosync(&mut conn, &actor, &a, false, false).expect_err("confirm");
        assert!(
            matches!(err, Error::NeedsConfirmation { devices: 3, .. }),
            "{err}"
        );
        assert!(
            credentials::load_settings(&conn, a.id).expect("s").enabled,
            "unchanged"
        );
        set_autosync(&mut conn, &actor, &a, false, true).expect("confirmed");
        let p = progress(&conn, &a).expect("progress");
        assert_eq!(p.locked_out.len(), 3);
        // Re-admit one: it is pending again although Auto-Sync stays off.
        let mac: Mac = "0004f2000001".parse().expect("mac");
        readmit(&mut conn, &actor, &a, &Readmission::Devices(vec![mac])).expect("readmit");
        let p = progress(&conn, &a).expect("progress");
        assert_eq!((p.pending.len(), p.locked_out.len()), (1, 2));
        let all = readmit(&mut conn, &actor, &a, &Readmission::AllLockedOut).expect("bulk");
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn credentials_cannot_change_while_provisioning_is_disabled_and_disabling_turns_auto_sync_off()
    {
        let (mut conn, a, actor) = setup();
        let err = set_provisioning(&mut conn, &actor, &a, false, false).expect_err("confirm");
        assert!(
            matches!(err, Error::NeedsConfirmation { devices: 3, .. }),
            "{err}"
        );
        set_provisioning(&mut conn, &actor, &a, false, true).expect("disable");
        let s = credentials::load_settings(&conn, a.id).expect("settings");
        assert!(!s.provisioning_enabled && !s.enabled);
        let err = set_credentials(
            &mut conn,
            &actor,
            &a,
            "phones",
            "new-password-1",
            Rotation::default(),
            true,
        )
        .expect_err("disabled");
        assert!(err.to_string().contains("enable it"), "{err}");
        assert_eq!(
            credentials::load_history(&conn, a.id).expect("h").current(),
            1,
            "nothing written"
        );
        set_provisioning(&mut conn, &actor, &a, true, false).expect("enable");
        assert!(
            !credentials::load_settings(&conn, a.id).expect("s").enabled,
            "Auto-Sync stays off"
        );
    }

    #[test]
    fn a_compromised_rotation_counts_every_device_holding_old_credentials() {
        let (mut conn, a, actor) = setup();
        let rotation = Rotation {
            compromised: true,
            ..Default::default()
        };
        assert_eq!(
            impact_set_credentials(&conn, &a, rotation)
                .expect("impact")
                .locked_out,
            3
        );
        let err = set_credentials(
            &mut conn,
            &actor,
            &a,
            "phones",
            "new-password-1",
            rotation,
            false,
        )
        .expect_err("confirm");
        assert!(
            err.to_string().contains("3 device(s) will be locked out"),
            "{err}"
        );
        set_credentials(
            &mut conn,
            &actor,
            &a,
            "phones",
            "new-password-1",
            rotation,
            true,
        )
        .expect("go");
        let entries = audit::list(&conn, Some(a.id.0), 10).expect("audit");
        let text = format!("{:?}", entries[0].after);
        assert!(
            !text.contains("new-password-1") && text.contains("compromised"),
            "{text}"
        );
    }

    #[test]
    fn a_new_service_address_keeps_the_old_one_as_an_alias_while_devices_use_it() {
        let (mut conn, a, actor) = setup();
        let id: i64 = conn
            .query_row(
                "SELECT id FROM devices WHERE mac = '0004f2000000'",
                [],
                |r| r.get(0),
            )
            .expect("id");
        credentials::store_sync(
            &conn,
            id,
            &DeviceSync {
                generation: Some(1),
                base_segment: a.service_segment(),
                ..Default::default()
            },
        )
        .expect("sync");
        let r = regenerate_address(&mut conn, &actor, &a, false).expect("regenerate");
        assert_eq!(r.holders, 1);
        let b = reload(&conn, &a);
        assert_ne!(b.service_key, a.service_key);
        let aliases = list_aliases(&conn, &b).expect("aliases");
        assert_eq!(aliases.len(), 1);
        assert_eq!(aliases[0].address, a.service_path());
        let err =
            retire_alias(&mut conn, &actor, &b, &a.service_path(), false).expect_err("holder");
        assert!(matches!(err, Error::NeedsConfirmation { devices: 1, .. }));
        // With Auto-Sync off, the device could not be moved: regenerating again needs a yes.
        set_autosync(&mut conn, &actor, &b, false, true).expect("off");
        credentials::store_sync(
            &conn,
            id,
            &DeviceSync {
                generation: Some(1),
                base_segment: b.service_segment(),
                ..Default::default()
            },
        )
        .expect("sync");
        let err = regenerate_address(&mut conn, &actor, &b, false).expect_err("stuck");
        assert!(
            matches!(err, Error::NeedsConfirmation { devices: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn new_accounts_have_auto_sync_on_and_bad_input_names_every_field() {
        let (mut conn, _, actor) = setup();
        let err = add_account(
            &mut conn,
            &actor,
            &NewAccount {
                name: "".into(),
                slug: "Bad Slug".into(),
                user: "a:b".into(),
                password: "short".into(),
            },
        )
        .expect_err("invalid")
        .to_string();
        for f in ["name:", "slug:", "user:", "password:"] {
            assert!(err.contains(f), "{f} missing: {err}");
        }
        let b = add_account(
            &mut conn,
            &actor,
            &NewAccount {
                name: "Branch".into(),
                slug: "branch".into(),
                user: "phones".into(),
                password: "branch-password".into(),
            },
        )
        .expect("add");
        let s = credentials::load_settings(&conn, b.id).expect("settings");
        assert!(s.enabled && s.provisioning_enabled);
        assert_eq!(list_accounts(&conn).expect("list").len(), 2);
    }
}
