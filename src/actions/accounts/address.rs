//! A new service address for an account, and the aliases that keep the former ones
//! answered until every device that used them has moved (docs/design.md §4.1).

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use super::{Impact, load, row_eligibility};
use crate::db;
use crate::db::credentials;
use crate::db::inventory::{self, DeviceRow};
use crate::domain::account::{Account, random_token};
use crate::domain::audit::{Actor, Change};
use crate::domain::autosync::Settings;
use crate::error::{Error, Result};

/// Whether the device's latest proven request (own credential or certificate) used the
/// account's current address (`/` counts for the default account).
pub fn proven_current(account: &Account, sync: &crate::db::credentials::DeviceSync) -> bool {
    match sync.proven_segment.as_deref() {
        Some("") => account.is_default,
        Some(s) => s == account.service_segment(),
        None => false,
    }
}

/// Devices whose last request came through `segment` and that Auto-Sync cannot move to the
/// current address.
fn stuck_on(rows: &[DeviceRow], account: &Account, settings: &Settings, segment: &str) -> Impact {
    let now = db::now_secs();
    Impact::of(
        rows.iter()
            .filter(|r| r.sync.base_segment == segment)
            .filter(|r| {
                let movable = settings.provisioning_enabled
                    && ((settings.enabled && row_eligibility(r, settings).is_ok())
                        || r.sync.readmit.is_some_and(|x| now < x.until));
                !movable || account.device_user.is_none()
            })
            .map(|r| {
                (
                    r.mac.clone(),
                    "Auto-Sync cannot move it: it stays on the old address".to_string(),
                )
            }),
    )
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
        crate::db::audit::record(
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
        Impact::of(
            inventory::list_device_rows(tx, account.id.0)?
                .into_iter()
                .filter(|r| r.profile.is_some())
                .filter_map(|r| {
                    if r.sync.base_segment == segment {
                        Some((r.mac, "its latest request used this address".to_string()))
                    } else if !proven_current(account, &r.sync) {
                        Some((
                            r.mac,
                            "not proven to use the current address (a request with the \
                             account credential proves nothing)"
                                .to_string(),
                        ))
                    } else {
                        None
                    }
                }),
        )
        .require(confirm, "retiring the alias")?;
        credentials::retire_alias(tx, segment)?;
        crate::db::audit::record(
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
