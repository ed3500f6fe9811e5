//! The catalogue of template variables for the admin UI and the API: every built-in with
//! the value and source it has for one device (or for an example device when none is
//! named), and the custom variables. Secrets are always masked here; only the audited
//! preview shows them.

use rusqlite::Connection;
use serde::Serialize;

use super::preview::{MASK, mask_override};
use super::{load_context, load_device, var_set};

use crate::db::templates;
use crate::domain::device::{Device, DeviceVars, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::polycom::models::UCS_VENDOR_MODEL;
use crate::domain::profile::{Profile, ProfileFields};
use crate::domain::provstate::Reach;
use crate::domain::template::{self, Vars};
use crate::domain::variables;
use crate::error::Result;

/// One variable with its value (secrets masked) and where the value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarRow {
    pub name: String,
    pub value: String,
    pub source: String,
    pub secret: bool,
    /// Takes each line's value inside a line block (the value shown is line 1's).
    pub per_line: bool,
}

/// The variables as one device sees them.
#[derive(Debug, Clone, Serialize)]
pub struct VarTable {
    /// The device the values are for; `None`: an example device (no lines, no vendor
    /// extensions, no reported model, a profile without software versions).
    pub mac: Option<String>,
    pub builtin: Vec<VarRow>,
    pub custom: Vec<VarRow>,
}

fn shown(name: &str, value: &str) -> (String, bool) {
    let secret = template::is_secret_name(name);
    let value = if name == "OVERRIDE" {
        mask_override(value)
    } else if secret && !value.is_empty() {
        MASK.to_string()
    } else {
        value.to_string()
    };
    (value, secret)
}

fn builtin_rows(v: &Vars) -> Vec<VarRow> {
    template::BUILTINS
        .iter()
        .map(|name| {
            let (value, secret) = shown(name, v.get(name).unwrap_or_default());
            VarRow {
                name: (*name).to_string(),
                value,
                source: v.source(name).unwrap_or_default(),
                secret,
                per_line: template::LINE_VARIABLES.contains(name),
            }
        })
        .collect()
}

/// An associated-looking device with nothing of its own, for the values that do not
/// depend on a device.
fn example(conn: &Connection, local: &Reach) -> Result<Vec<VarRow>> {
    let ctx = load_context(conn)?;
    let account = crate::actions::accounts::default_account(conn)?;
    let device = Device {
        id: 0,
        account_id: account.id.0,
        mac: Mac::from_bare("0004f2000000").expect("a valid MAC"),
        serial: String::new(),
        vendor_model: UCS_VENDOR_MODEL.into(),
        profile_id: None,
        profile_name: None,
        ext: VendorExtensions::default(),
        lines: Vec::new(),
        auto_associated: false,
        vars: DeviceVars::default(),
    };
    let profile = Profile {
        id: 0,
        account_id: account.id.0,
        fields: ProfileFields {
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        },
        files: Vec::new(),
    };
    let reach = if ctx.settings.is_external() {
        let segment = variables::model_segment("", UCS_VENDOR_MODEL);
        variables::external_reach(&ctx.settings, &segment)
    } else {
        local.clone()
    };
    let set = var_set(&ctx, &account, &device, &profile, &reach, "");
    Ok(builtin_rows(&set.device))
}

/// Every built-in variable with its value and source for `mac` (an associated device) or
/// for an example device, and every custom variable. `local` is how phones reach this
/// server (Local mode).
pub fn variable_table(conn: &Connection, local: &Reach, mac: Option<&Mac>) -> Result<VarTable> {
    let builtin = match mac {
        Some(mac) => {
            let loaded = load_device(conn, mac)?;
            let ctx = load_context(conn)?;
            builtin_rows(&loaded.vars(&ctx, local).device)
        }
        None => example(conn, local)?,
    };
    let custom = templates::list_custom_variables(conn)?
        .into_iter()
        .map(|(name, value)| {
            let (value, secret) = shown(&name, &value);
            VarRow {
                name,
                value,
                source: "custom variable".into(),
                secret,
                per_line: false,
            }
        })
        .collect();
    Ok(VarTable {
        mac: mac.map(Mac::to_string),
        builtin,
        custom,
    })
}
