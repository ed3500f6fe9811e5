//! Where one device stands, for the top of its device page: its site and groups, its
//! enrolment state (`enrolment::device_status`), the platform parameters delivered to it and
//! not confirmed since, and the state of its Auto-Sync credentials (`domain::autosync::state`,
//! as the inventory shows it). Reads only; the queries are those of the Enrolment,
//! inventory and Effective settings pages, for one device.

use rusqlite::Connection;

use super::enrolment::{self, DeviceEnrolment};
use crate::db::{self, accounts, credentials, devices, policies};
use crate::domain::account::{Account, AccountId};
use crate::domain::autosync::{self, SyncState};
use crate::domain::device::Device;
use crate::error::{Error, Result};

/// One device's standing. Enrolment and credentials are `None` for a device seen but not
/// associated.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The account the device belongs to.
    pub account: Account,
    pub site: Option<String>,
    /// Its groups in precedence order.
    pub groups: Vec<String>,
    pub enrolment: Option<DeviceEnrolment>,
    /// Platform parameters delivered and not confirmed by the device since, by name.
    pub unconfirmed: Vec<String>,
    /// Among `unconfirmed`, those delivered so often that they are no longer sent.
    pub given_up: Vec<String>,
    pub credentials: Option<SyncState>,
}

/// The standing of `device` (one the caller may see: `associations::device` checked it).
pub fn standing(conn: &Connection, device: &Device) -> Result<Standing> {
    let account = accounts::find_by_id(conn, AccountId(device.account_id))?
        .ok_or_else(|| Error::not_found(format!("account of device {}", device.mac)))?;
    let site = policies::device_site(conn, device.id)?.map(|s| s.name);
    let groups = policies::device_groups(conn, device.id)?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut unconfirmed = Vec::new();
    let mut given_up = Vec::new();
    for (param, s) in devices::load_prov_state(conn, device.id)? {
        if s.delivered.is_some() && s.delivered != s.confirmed {
            if s.gave_up {
                given_up.push(param.clone());
            }
            unconfirmed.push(param);
        }
    }
    let (enrolment, credentials) = if device.is_associated() {
        let settings = credentials::load_settings(conn, account.id)?;
        let history = credentials::load_history(conn, account.id)?;
        let facts = super::accounts::device_facts(conn, &account, &settings, &device.mac)?;
        (
            enrolment::device_status(conn, &account, &device.mac)?,
            facts.map(|f| autosync::state(&settings, &history, &f, db::now_secs())),
        )
    } else {
        (None, None)
    };
    Ok(Standing {
        account,
        site,
        groups,
        enrolment,
        unconfirmed,
        given_up,
        credentials,
    })
}
