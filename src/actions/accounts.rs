//! Actions on accounts (the Lens Device Provisioning and Auto-Sync pages), shared by the CLI,
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

use crate::db::credentials::{self, DeviceSync};
use crate::db::inventory::{self, DeviceRow};
use crate::db::{self, accounts, devices, profiles};
use crate::domain::account::{self, Account, AccountId, UnknownDevices};
use crate::domain::audit::{Actor, Change};
use crate::domain::autosync::{self, DeviceFacts, History, Settings};
use crate::domain::device::Device;
use crate::domain::mac::Mac;
use crate::domain::policy::SyncTarget;
use crate::domain::polycom::models::{Family, VIDEO_VENDOR_MODEL};
use crate::domain::profile::Profile;
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
        // Seen = authenticated: a request with wrong credentials proves nothing about the
        // device (anyone can send one with its MAC to keep it "seen").
        last_seen: row.last_auth_ok_at,
        associated_at: row.associated_at,
        floor: row.sync.floor,
        last_refused: row.sync.last_refused,
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
        last_seen: activity.and_then(|a| a.last_auth_ok_at),
        associated_at,
        floor: sync.floor,
        last_refused: sync.last_refused,
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

/// MACs of the account's Poly OS devices (`autosync::is_poly_os`), for the note that they
/// must use Basic authentication.
pub fn poly_os_devices(conn: &Connection, account: &Account) -> Result<Vec<String>> {
    Ok(devices::list_device_families(conn, account.id.0)?
        .into_iter()
        .filter(|(_, declared, seen, ua)| autosync::is_poly_os(declared, seen, ua))
        .map(|(mac, ..)| mac)
        .collect())
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

pub use super::Impact;

/// Associated devices locked out after a change of settings or history but not before.
fn lockouts(
    rows: &[DeviceRow],
    before: (&Settings, &History),
    after: (&Settings, &History),
    now: i64,
) -> Impact {
    let phones = rows.iter().filter(|r| r.profile.is_some()).filter_map(|r| {
        // Eligibility depends on the settings (Poly OS), so the facts are taken twice.
        let facts = facts_of(r, before.0);
        let (g, why) = autosync::refused_generation(
            (before.0, before.1, &facts),
            (after.0, after.1, &facts_of(r, after.0)),
            now,
        )?;
        Some((r.mac.clone(), held_reason(&facts, g, why)))
    });
    Impact::of(phones)
}

/// Why a device is counted: the generation it may hold, and why that one is refused.
fn held_reason(facts: &autosync::DeviceFacts, g: i64, why: autosync::Refusal) -> String {
    if g == autosync::OWN_CREDENTIAL {
        return why.explain().to_string();
    }
    match facts.held {
        Some(h) if h == g => format!("holds generation {g}: {}", why.explain()),
        Some(h) if h != autosync::OWN_CREDENTIAL => format!(
            "may still hold generation {g} (last seen with {h}; a request with the account \
             credential proves nothing about the phone): {}",
            why.explain()
        ),
        _ => format!("may hold generation {g}: {}", why.explain()),
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
        crate::db::audit::record(
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
    /// Secrets are withheld from the account credential until a device enrols.
    pub device_secrets: bool,
    /// The account credential is served over TFTP to its associated devices.
    pub tftp_credential: bool,
    /// Polycom's factory FTP login is accepted for its phones.
    pub ftp_factory_login: bool,
    /// SIP check-sync settings: request validation, apply after a change, online check.
    pub sip: crate::domain::account::AccountSip,
    /// Associated devices not yet enrolled (and not exempt), and those contested.
    pub not_enrolled: usize,
    pub contested: usize,
}

impl AccountSummary {
    /// What the account serves to the shared account credential, for people.
    pub fn secrets_text(&self) -> String {
        if !self.device_secrets {
            return "served to the account credential (DHCP option 160's): anyone holding it \
                    reads every SIP password"
                .to_string();
        }
        let mut out = "withheld until each device enrols its own credential".to_string();
        if self.not_enrolled > 0 {
            out.push_str(&format!(
                "; {} device(s) not yet enrolled",
                self.not_enrolled
            ));
        }
        if self.contested > 0 {
            out.push_str(&format!(
                "; {} contested (needs re-enrolment)",
                self.contested
            ));
        }
        out
    }
}

pub fn summarize(conn: &Connection, a: &Account) -> Result<AccountSummary> {
    let (not_enrolled, contested) = super::enrolment::counts(conn, a)?;
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
        device_secrets: a.device_secrets,
        tftp_credential: a.tftp_credential,
        ftp_factory_login: a.ftp_factory_login,
        sip: a.sip,
        not_enrolled,
        contested,
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

/// Every associated device a rotation at `now` changes, with why: devices refused from now
/// (not seen within `seen_days` before it — `seen_days` is measured here, at the rotation —
/// or every one not yet on the new credentials when they leaked), and every other device,
/// sent the new credentials at its next request (it reboots to apply them) while the
/// current ones stay accepted until the date shown. A device last seen with its own
/// credential is left out: the account's credentials are not what it uses. Also returns
/// the floors to store.
fn rotation_impact(
    rows: &[DeviceRow],
    settings: &Settings,
    history: &History,
    next: &History,
    now: i64,
) -> (Impact, Vec<(i64, i64)>) {
    let new = next.current();
    let grace_end = next
        .get(history.current())
        .and_then(|g| g.accept_until)
        .unwrap_or(now);
    let mut floors = Vec::new();
    let own = |r: &&DeviceRow| r.sync.generation == Some(autosync::OWN_CREDENTIAL);
    let phones = rows
        .iter()
        .filter(|r| r.profile.is_some() && !own(r))
        .map(|r| {
            let facts = facts_of(r, settings);
            let before = autosync::admits_any(settings, history, &facts, now);
            let mut after = facts.clone();
            if let Some(floor) = autosync::floor_after_rotation(settings, &facts, new, now) {
                after.floor = Some(floor);
                floors.push((r.id, floor));
            }
            let lost =
                autosync::refused_after((settings, history, &facts), (settings, next, &after), now);
            let reason = match (before, lost) {
                (Ok(()), Some(why)) => format!("refused from now: {}", why.explain()),
                (Err(why), _) => format!("refused already: {}", why.explain()),
                (Ok(()), None) => format!(
                    "sent the new credentials at its next request (it reboots); its current \
                     ones are accepted until {}",
                    crate::domain::time::format_time(grace_end)
                ),
            };
            (r.mac.clone(), reason)
        });
    (Impact::of(phones), floors)
}

/// Every device new credentials would change now, with why (`rotation_impact`).
pub fn impact_set_credentials(
    conn: &Connection,
    account: &Account,
    rotation: Rotation,
) -> Result<Impact> {
    let (settings, history, rows) = load(conn, account)?;
    let now = db::now_secs();
    let grace = rotation.grace_days.unwrap_or(settings.grace_days);
    let next = history.rotated(now, "-", "-", grace, rotation.compromised);
    Ok(rotation_impact(&rows, &settings, &history, &next, now).0)
}

/// Sets an account's device credentials: a new generation (only while provisioning is
/// enabled, as Lens does). With Auto-Sync on, devices keep being served with the old
/// generation (and are sent the new one) within the grace window; devices not seen within
/// `seen_days` now are refused the old ones from now. Every device it changes is counted
/// and shown first (`confirm`). Returns the new generation.
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
        let (impact, floors) = rotation_impact(&rows, &settings, &history, &next, now);
        impact.require(confirm, "changing the credentials")?;
        credentials::store_history(tx, account.id, &next)?;
        for (device_id, floor) in &floors {
            let row = rows.iter().find(|r| r.id == *device_id);
            let sync = DeviceSync {
                floor: Some(*floor),
                ..row.map(|r| r.sync.clone()).unwrap_or_default()
            };
            credentials::store_sync(tx, *device_id, &sync)?;
        }
        crate::db::audit::record(
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
                "devices": impact.locked_out,
                "refused_from_now": floors.len(),
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
    Ok(Impact::of(
        inventory::list_device_rows(conn, account.id.0)?
            .into_iter()
            .filter(|r| r.profile.is_some())
            .map(|r| (r.mac, "provisioning off: every file is refused".to_string())),
    ))
}

/// Turns Device Provisioning on or off. Off: every device endpoint of the account refuses
/// service, and Auto-Sync is turned off with it (the Lens Device Provisioning and Auto-Sync pages); turning it on again leaves
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
        crate::db::audit::record(
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
        crate::db::audit::record(
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
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "account.set-autosync-options", account.slug.clone())
                .before(json!({"grace_days": settings.grace_days, "seen_days": settings.seen_days, "poly_os": settings.poly_os}))
                .after(json!({"grace_days": after.grace_days, "seen_days": after.seen_days, "poly_os": after.poly_os})),
        )
    })
}

mod address;
mod dhcp;
mod recovery;

pub use address::{
    AliasState, Regenerated, impact_regenerate_address, list_aliases, regenerate_address,
    retire_alias,
};
pub use dhcp::{Option160, option160};
pub use recovery::{
    DeviceSyncRow, NotBack, Progress, Readmission, confirm_device, progress, readmit, readmit_in,
    report, sync_counts,
};

/// The default account, created on first use.
pub fn default_account(conn: &Connection) -> Result<Account> {
    Ok(accounts::ensure_default(conn)?.0)
}

/// The phones a new unknown-device policy changes: the account's devices seen but not
/// associated, each with what it is served from then on (`ztp`: ZTP off and no server
/// address, so it stops asking here; `reject`: refused).
pub fn impact_unknown_devices(
    conn: &Connection,
    account: &Account,
    policy: UnknownDevices,
) -> Result<Impact> {
    let reason = match policy {
        _ if policy == account.unknown_devices => return Ok(Impact::default()),
        UnknownDevices::Ztp => {
            "seen, not associated: served ZTP off and an empty server address, it stops asking \
             this server"
        }
        UnknownDevices::Reject => "seen, not associated: refused (404 for its master, 403 else)",
        UnknownDevices::Stage | UnknownDevices::DefaultProfile => return Ok(Impact::default()),
    };
    Ok(Impact::of(
        inventory::list_device_rows(conn, account.id.0)?
            .into_iter()
            .filter(|r| r.profile.is_none() && r.last_seen.or(r.first_seen).is_some())
            .map(|r| (r.mac, reason.to_string())),
    ))
}

/// Sets what an account does with unknown phones. The phones seen unassociated that the
/// new policy cuts off are counted and confirmed first (I5); `ztp` is always confirmed, as
/// it changes any phone that asks, including phones not seen yet and phones the account
/// may not own.
pub fn set_unknown_devices(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    policy: UnknownDevices,
    default_profile: Option<&str>,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let impact = impact_unknown_devices(tx, account, policy)?;
        if policy == UnknownDevices::Ztp && account.unknown_devices != policy && !confirm {
            return Err(impact.ask(
                "the ztp policy",
                "; it also turns ZTP off and clears the server address of every unknown phone \
                 that asks from now on, phones not seen yet and phones you may not own included",
            ));
        }
        impact.require(confirm, "changing the unknown-device policy")?;
        let profile_id = match (policy, default_profile) {
            (UnknownDevices::DefaultProfile, None) => {
                return Err(Error::invalid(
                    "default_profile",
                    "the default-profile policy needs a profile",
                ));
            }
            (_, Some(name)) => Some(
                profiles::find_profile_by_name(tx, account.id.0, name)?
                    .ok_or_else(|| {
                        Error::invalid("default_profile", format!("no profile named `{name}`"))
                    })?
                    .id,
            ),
            (_, None) => account.default_profile_id,
        };
        accounts::update_unknown_devices(tx, account.id, policy, profile_id)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.set-unknown-devices",
                account.slug.clone(),
            )
            .before(json!({"unknown_devices": account.unknown_devices.as_str()}))
            .after(json!({"unknown_devices": policy.as_str(), "default_profile": default_profile})),
        )
    })
}

/// Allows or stops serving the account credential over TFTP to the account's associated
/// devices (`Account::tftp_credential`): on, a phone booting over TFTP gets its files
/// without secrets but with Auto-Sync's move to HTTP(S) and the account credential, which
/// anyone on the networks TFTP answers can then read, as from DHCP option 160. Audited.
pub fn set_tftp_credential(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    on: bool,
) -> Result<()> {
    set_switch(
        conn,
        actor,
        account,
        on,
        ("tftp_credential", "account.set-tftp-credential"),
        |a| a.tftp_credential,
        accounts::update_tftp_credential,
    )
}

/// Accepts or refuses Polycom's factory FTP login for the account's phones
/// (`Account::ftp_factory_login`). Audited.
pub fn set_ftp_factory_login(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    on: bool,
) -> Result<()> {
    set_switch(
        conn,
        actor,
        account,
        on,
        ("ftp_factory_login", "account.set-ftp-factory-login"),
        |a| a.ftp_factory_login,
        accounts::update_ftp_factory_login,
    )
}

/// Turns one on/off setting of an account (`field`, audited as `action`): nothing when it
/// is already so; else the change and its audit entry in one transaction.
fn set_switch(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    on: bool,
    (field, action): (&str, &str),
    get: impl Fn(&Account) -> bool,
    update: impl Fn(&Connection, AccountId, bool) -> Result<()>,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let current = accounts::find_by_id(tx, account.id)?
            .ok_or_else(|| Error::not_found(format!("account {}", account.slug)))?;
        if get(&current) == on {
            return Ok(());
        }
        update(tx, account.id, on)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), action, account.slug.clone())
                .before(json!({ field: get(&current) }))
                .after(json!({ field: on })),
        )
    })
}

/// Changes the account's SIP settings (`Account::sip`): request validation rendered to
/// its phones (check-sync then needs Digest, from zerotouch or the PBX), apply-now after a
/// change that affects devices, and the background online check. Audited.
pub fn set_sip(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    sip: crate::domain::account::AccountSip,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let current = accounts::find_by_id(tx, account.id)?
            .ok_or_else(|| Error::not_found(format!("account {}", account.slug)))?;
        if current.sip == sip {
            return Ok(());
        }
        accounts::update_sip(tx, account.id, sip)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "account.set-sip", account.slug.clone())
                .before(json!({"sip": current.sip}))
                .after(json!({"sip": sip})),
        )
    })
}

#[cfg(test)]
mod tests;
