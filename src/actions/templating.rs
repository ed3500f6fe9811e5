//! Actions on provisioning settings, custom variables, device template values and lines,
//! and the renderings built on them (the files of a device in Local or External mode, the
//! preview), shared by the command line, the admin UI and the API.
//!
//! Like `ops`, every action validates everything first and then writes in one
//! transaction, so a refused input leaves nothing half-written. Network checks (the S3
//! connectivity check) run before the transaction, never inside it. Every change is
//! recorded in the audit log in the same transaction, secrets masked (`masked_settings`,
//! `preview::mask_override`, secret-named custom variables).

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::domain::account::{Account, AccountId};
use crate::domain::audit::{Actor, Change};
use crate::domain::device::{Device, DeviceVars, Line};
use crate::domain::mac::Mac;
use crate::domain::policy::Layers;
use crate::domain::polycom::render::{DeviceView, profile_file_name};
use crate::domain::profile::Profile;
use crate::domain::provstate::{ParamState, PhoneTrust, Reach};
use crate::domain::settings::{self, ProvSettings, ScriptFile};
use crate::domain::variables::{self, Context, DeviceVarSet, FIRMWARE_DIR, Subject};
use crate::domain::{devicevars, template, xml};

mod catalog;
mod preview;

use crate::db::{self, accounts, devices, profiles, templates};
use crate::error::{Error, FieldError, Result};
pub use catalog::{VarRow, VarTable, variable_table};
pub use preview::{
    MASK, Preview, PreviewFile, PreviewVar, mask_override, preview_device, reveal_preview,
};

/// The stored provisioning settings.
pub fn load_settings(conn: &Connection) -> Result<ProvSettings> {
    Ok(ProvSettings::from_stored(&templates::load_prov_settings(
        conn,
    )?))
}

/// Settings and custom variables: what every device's variables start from.
pub fn load_context(conn: &Connection) -> Result<Context> {
    Ok(Context {
        settings: load_settings(conn)?,
        custom: templates::list_custom_variables(conn)?,
        tftp_port: tftp_port(),
        ftp_port: ftp_port(),
    })
}

/// The TFTP listener's port (0: off), set once from the configuration by the server and by
/// every CLI command (`set_tftp_port`), so `${PROTO_URL}` names it for protocol `tftp`.
static TFTP_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records the TFTP listener's port from the configuration (`None`: TFTP is off).
pub fn set_tftp_port(port: Option<u16>) {
    TFTP_PORT.store(
        port.map_or(0, u32::from),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The TFTP listener's port, when TFTP is on.
pub fn tftp_port() -> Option<u16> {
    match TFTP_PORT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        p => u16::try_from(p).ok(),
    }
}

/// The FTP listener's port (0: off), set once from the configuration like TFTP's, so
/// `${PROTO_URL}` names it for protocols `ftp` and `ftps`.
static FTP_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records the FTP listener's port from the configuration (`None`: FTP is off).
pub fn set_ftp_port(port: Option<u16>) {
    FTP_PORT.store(
        port.map_or(0, u32::from),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The FTP listener's port, when FTP is on.
pub fn ftp_port() -> Option<u16> {
    match FTP_PORT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        p => u16::try_from(p).ok(),
    }
}

/// Variables known when checking uploaded files: the built-ins and the custom variables.
pub fn check_vars(conn: &Connection) -> Result<template::Vars> {
    let mut v = template::Vars::default();
    for (name, value) in templates::list_custom_variables(conn)? {
        v.set_custom(name, value);
    }
    Ok(v)
}

/// What the file system says of the script transport's path (`ProvSettings::validate`).
pub fn script_file(path: &std::path::Path) -> ScriptFile {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => ScriptFile::Executable,
        Ok(m) if m.is_file() => ScriptFile::NotExecutable,
        Ok(_) => ScriptFile::NotAFile,
        Err(e) => ScriptFile::Unreadable(e.to_string()),
    }
}

/// Applies `changes` (field, value) to the stored settings. Every problem is reported,
/// each naming its field; then `check` runs on the result (e.g. the S3 connectivity
/// check); only then is anything written, in one transaction. Returns the new settings.
pub fn update_settings(
    conn: &mut Connection,
    who: &Actor,
    changes: &[(String, String)],
    check: &dyn Fn(&ProvSettings) -> Result<()>,
) -> Result<ProvSettings> {
    let mut settings = load_settings(conn)?;
    let mut problems = Vec::new();
    for (field, value) in changes {
        if let Err(e) = settings.set(field, value) {
            problems.push(e);
        }
    }
    match settings.validate(&script_file) {
        Ok(()) => {}
        Err(Error::Invalid(p)) => problems.extend(p),
        Err(e) => return Err(e),
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    check(&settings)?;
    db::write_tx(conn, |tx| {
        let stored = ProvSettings::from_stored(&templates::load_prov_settings(tx)?);
        templates::replace_prov_settings(tx, &settings.to_stored())?;
        let (before, after) = masked_settings(&stored, &settings);
        if after.is_empty() {
            return Ok(());
        }
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "settings.set", "provisioning settings")
                .before(Value::Object(before))
                .after(Value::Object(after)),
        )
    })?;
    Ok(settings)
}

/// The fields that differ between two settings, before and after, for the audit log:
/// secrets show as `MASK` when set and `""` when empty, never their value.
fn masked_settings(
    old: &ProvSettings,
    new: &ProvSettings,
) -> (Map<String, Value>, Map<String, Value>) {
    let shown = |s: &ProvSettings, name: &str| -> Value {
        let v = s.get(name).unwrap_or_default();
        if settings::is_secret_field(name) && !v.is_empty() {
            Value::String(MASK.into())
        } else {
            Value::String(v)
        }
    };
    let (mut before, mut after) = (Map::new(), Map::new());
    for f in settings::FIELDS {
        if old.get(f.name) != new.get(f.name) {
            before.insert(f.name.into(), shown(old, f.name));
            after.insert(f.name.into(), shown(new, f.name));
        }
    }
    (before, after)
}

/// A custom variable's value as the audit log keeps it.
fn logged_value(name: &str, value: &str) -> Value {
    if template::is_secret_name(name) && !value.is_empty() {
        json!({ "value": MASK })
    } else {
        json!({ "value": value })
    }
}

/// Creates or changes a custom variable.
pub fn set_custom_variable(
    conn: &mut Connection,
    who: &Actor,
    name: &str,
    value: &str,
) -> Result<()> {
    devicevars::validate_custom_variable(name, value)?;
    db::write_tx(conn, |tx| {
        let old = templates::list_custom_variables(tx)?.remove(name);
        templates::upsert_custom_variable(tx, name, value)?;
        let mut change = Change::new(None, "variable.set", name).after(logged_value(name, value));
        if let Some(old) = old {
            change = change.before(logged_value(name, &old));
        }
        crate::db::audit::record(tx, who, change)
    })
}

/// Where stored profile files use `${name}`: "profile P file F line N".
fn uses_of(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let needle = format!("${{{name}}}");
    let mut out = Vec::new();
    for (profile, file, content) in templates::list_files_mentioning(conn, &needle)? {
        let text = String::from_utf8_lossy(&content);
        for (i, line) in text.lines().enumerate() {
            // `$${NAME}` is a literal, not a use.
            let real = line
                .match_indices(&needle)
                .any(|(pos, _)| pos == 0 || line.as_bytes()[pos - 1] != b'$');
            if real {
                out.push(format!("profile {profile} file {file} line {}", i + 1));
            }
        }
    }
    Ok(out)
}

/// Deletes a custom variable; refused while a stored profile file uses it (the file would
/// then name an unknown variable).
pub fn delete_custom_variable(conn: &mut Connection, who: &Actor, name: &str) -> Result<()> {
    db::write_tx(conn, |tx| {
        let uses = uses_of(tx, name)?;
        if !uses.is_empty() {
            return Err(Error::Conflict(format!(
                "custom variable {name} is used by {}; change those files first",
                uses.join(", ")
            )));
        }
        let Some(old) = templates::list_custom_variables(tx)?.remove(name) else {
            return Err(Error::not_found(format!("custom variable {name}")));
        };
        templates::delete_custom_variable(tx, name)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "variable.delete", name).before(logged_value(name, &old)),
        )
    })
}

/// Changes to a device's template values; `None` leaves a value as it is, `Some("")`
/// clears it.
#[derive(Debug, Clone, Default)]
pub struct DeviceVarsChange {
    pub label: Option<String>,
    pub tl_timezone: Option<String>,
    pub tl_timezone_name: Option<String>,
    pub default_parkext: Option<String>,
    pub override_attrs: Option<String>,
}

/// Sets a device's template values. An override is also tried in every profile file of
/// the device that uses `${OVERRIDE}`: one that would make a file ill-formed (e.g. an
/// attribute the file already sets in that element) is refused, naming the file. An
/// override equal to the stored one as `mask_override` shows it (secrets masked) keeps
/// the stored one: pages and the API never show the secrets, so sending back what they
/// showed changes nothing.
pub fn set_device_vars(
    conn: &mut Connection,
    who: &Actor,
    mac: &Mac,
    change: &DeviceVarsChange,
) -> Result<DeviceVars> {
    db::write_tx(conn, |tx| {
        let mut device = find_device(tx, mac)?;
        let device_before = device.vars.clone();
        let mut v = device.vars.clone();
        let apply = |field: &mut String, new: &Option<String>| {
            if let Some(n) = new {
                *field = n.clone();
            }
        };
        apply(&mut v.label, &change.label);
        apply(&mut v.tl_timezone, &change.tl_timezone);
        apply(&mut v.tl_timezone_name, &change.tl_timezone_name);
        apply(&mut v.default_parkext, &change.default_parkext);
        let shown = mask_override(&device.vars.override_attrs);
        if change.override_attrs.as_deref().map(str::trim) != Some(shown.as_str()) {
            apply(&mut v.override_attrs, &change.override_attrs);
        }
        let v = devicevars::validate_device_vars(&v)?;
        if !v.override_attrs.is_empty()
            && let Some(profile_id) = device.profile_id
            && let Some(profile) = profiles::find_profile_by_id(tx, profile_id)?
        {
            device.vars = v.clone();
            check_override_fits(tx, &device, &profile)?;
        }
        devices::upsert_device_vars(tx, device.id, &v)?;
        let old = &device_before;
        if *old != v {
            crate::db::audit::record(
                tx,
                who,
                Change::new(Some(device.account_id), "device.set-vars", mac.to_string())
                    .before(logged_vars(old))
                    .after(logged_vars(&v)),
            )?;
        }
        Ok(v)
    })
}

/// A device's template values as the audit log keeps them: secret parameters inside the
/// override masked.
fn logged_vars(v: &DeviceVars) -> Value {
    json!({
        "label": v.label,
        "tl_timezone": v.tl_timezone,
        "tl_timezone_name": v.tl_timezone_name,
        "default_parkext": v.default_parkext,
        "override": preview::mask_override(&v.override_attrs),
    })
}

fn check_override_fits(conn: &Connection, device: &Device, profile: &Profile) -> Result<()> {
    let account = find_account(conn, device.account_id)?;
    let ctx = load_context(conn)?;
    let reach = Reach {
        host: "zerotouch".into(),
        base_path: "/".into(),
        secure: false,
    };
    let set = var_set(&ctx, &account, device, profile, &reach, "");
    let state = BTreeMap::new();
    let layers = Layers::default();
    let view = view(&account, device, profile, &state, &reach, &layers);
    let mut problems = Vec::new();
    for (i, file) in profile.files.iter().enumerate() {
        if !file.content.windows(11).any(|w| w == b"${OVERRIDE}") {
            continue;
        }
        if let Some(bytes) = view.profile_file_with(i, &set)
            && let Err(Error::Invalid(p)) = xml::check_well_formed(&file.file_name, &bytes)
        {
            problems.extend(p.into_iter().map(|e| {
                FieldError::new(
                    "override",
                    format!(
                        "makes profile {} file {} ill-formed: {}",
                        profile.fields.name, e.field, e.message
                    ),
                )
            }));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Creates or replaces one SIP line of a device.
pub fn set_device_line(conn: &mut Connection, who: &Actor, mac: &Mac, line: &Line) -> Result<()> {
    devicevars::validate_line(line)?;
    db::write_tx(conn, |tx| {
        let device = find_device(tx, mac)?;
        let old = device.lines.iter().find(|l| l.line == line.line);
        devices::upsert_line(tx, device.id, line)?;
        // `auth_password` is masked by name (`audit::mask`).
        let mut change = Change::new(
            Some(device.account_id),
            "device.set-line",
            format!("{mac} line {}", line.line),
        )
        .after(json!(line));
        if let Some(old) = old {
            change = change.before(json!(old));
        }
        crate::db::audit::record(tx, who, change)
    })
}

/// Removes one SIP line of a device.
pub fn delete_device_line(conn: &mut Connection, who: &Actor, mac: &Mac, line: u32) -> Result<()> {
    db::write_tx(conn, |tx| {
        let device = find_device(tx, mac)?;
        let Some(old) = device.lines.iter().find(|l| l.line == line) else {
            return Err(Error::not_found(format!("line {line} of device {mac}")));
        };
        devices::delete_line(tx, device.id, line)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(
                Some(device.account_id),
                "device.delete-line",
                format!("{mac} line {line}"),
            )
            .before(json!(old)),
        )
    })
}

/// Records that someone generated External mode's files and pushed every device now
/// (from the console or the API), with how many devices.
pub fn note_push(conn: &mut Connection, who: &Actor, devices: usize) -> Result<()> {
    db::write_tx(conn, |tx| {
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "external.push", "every device").after(json!({ "devices": devices })),
        )
    })
}

fn find_device(conn: &Connection, mac: &Mac) -> Result<Device> {
    devices::find_device_by_mac(conn, mac)?.ok_or_else(|| Error::not_found(format!("device {mac}")))
}

fn find_account(conn: &Connection, id: i64) -> Result<Account> {
    accounts::find_by_id(conn, AccountId(id))?.ok_or_else(|| Error::not_found("account"))
}

/// Variables of a device.
pub fn var_set(
    ctx: &Context,
    account: &Account,
    device: &Device,
    profile: &Profile,
    reach: &Reach,
    model: &str,
) -> DeviceVarSet {
    variables::for_device(
        ctx,
        &Subject {
            account,
            device,
            profile,
            reach,
            model,
        },
    )
}

fn view<'a>(
    account: &'a Account,
    device: &'a Device,
    profile: &'a Profile,
    state: &'a BTreeMap<String, ParamState>,
    reach: &'a Reach,
    layers: &'a Layers,
) -> DeviceView<'a> {
    DeviceView {
        account,
        device,
        profile,
        state,
        reach,
        trust: None,
        layers,
        held: None,
    }
}

/// An associated device with everything its files are rendered from.
pub struct Loaded {
    pub account: Account,
    pub device: Device,
    pub profile: Profile,
    pub state: BTreeMap<String, ParamState>,
    /// Auto-Sync and the policies that apply to the device.
    pub layers: Layers,
    /// The model the device reported, or empty.
    pub model: String,
    /// The same, as the device endpoint renders from (Local mode).
    pub data: crate::actions::render::DeviceData,
}

/// Loads an associated device.
pub fn load_device(conn: &Connection, mac: &Mac) -> Result<Loaded> {
    let (account, data) = crate::actions::render::load(conn, mac)?;
    let profile = data
        .profile
        .as_deref()
        .cloned()
        .ok_or_else(|| crate::Error::not_found(format!("the profile of {mac}")))?;
    Ok(Loaded {
        account,
        device: data.device.clone(),
        profile,
        state: data.state.clone(),
        layers: data.layers.clone(),
        model: data.model.clone(),
        data,
    })
}

/// The files of one device, as served (Local) or as generated to disk (External).
#[derive(Debug, Clone)]
pub struct DeviceFiles {
    pub mac: Mac,
    pub tenant: String,
    /// External mode: the per-model path segment; empty in Local mode.
    pub segment: String,
    pub files: Vec<(String, Vec<u8>)>,
}

impl Loaded {
    /// The address phones use: `local` in Local mode, the DMS in External mode.
    pub fn reach(&self, ctx: &Context, local: &Reach) -> Reach {
        if ctx.settings.is_external() {
            variables::external_reach(&ctx.settings, &self.segment(ctx))
        } else {
            local.clone()
        }
    }

    fn segment(&self, ctx: &Context) -> String {
        if ctx.settings.is_external() {
            variables::model_segment(&self.model, &self.device.vendor_model)
        } else {
            String::new()
        }
    }

    /// The device's variables.
    pub fn vars(&self, ctx: &Context, local: &Reach) -> DeviceVarSet {
        let reach = self.reach(ctx, local);
        var_set(
            ctx,
            &self.account,
            &self.device,
            &self.profile,
            &reach,
            &self.model,
        )
    }

    /// Renders every file of the device. In External mode no phone request confirms
    /// anything, so the generated file carries no pending `device.*` change (those need the
    /// desired/confirmed mechanism of Local mode), no CA is delivered, and firmware paths
    /// in the master are absolute URLs on the firmware server.
    pub fn files(&self, ctx: &Context, local: &Reach, trust: Option<&PhoneTrust>) -> DeviceFiles {
        let external = ctx.settings.is_external();
        if !external {
            // Local mode: exactly what the device endpoint serves the phone itself.
            return DeviceFiles {
                mac: self.device.mac,
                tenant: self.account.name.clone(),
                segment: String::new(),
                files: {
                    let (access, held) = crate::actions::render::access_as(
                        &self.account,
                        &self.data,
                        crate::actions::render::As::Device,
                    );
                    self.data.files(
                        &self.account,
                        local,
                        access,
                        crate::actions::render::pair(&held),
                        trust,
                        ctx,
                    )
                },
            };
        }
        let reach = self.reach(ctx, local);
        // External mode: no Auto-Sync (no phone request would ever confirm it); policies apply.
        let external_layers;
        let layers = if external {
            external_layers = Layers {
                sync: None,
                policies: self.layers.policies.clone(),
                family: self.layers.family,
                ..Default::default()
            };
            &external_layers
        } else {
            &self.layers
        };
        // No phone request confirms anything in External mode: every desired value counts
        // as held, credentials included.
        let desired = view(
            &self.account,
            &self.device,
            &self.profile,
            &self.state,
            &reach,
            layers,
        )
        .desired();
        let value = |key| {
            crate::domain::polycom::params::name(
                crate::domain::polycom::models::Family::Vvx,
                key,
                1,
            )
            .and_then(|n| desired.get(&n))
            .map(|d| d.value.clone())
            .unwrap_or_default()
        };
        let held_creds = (
            value(crate::domain::polycom::params::Key::ProvUser),
            value(crate::domain::polycom::params::Key::ProvPassword),
        );
        let all_confirmed: BTreeMap<String, ParamState> = desired
            .into_iter()
            .map(|(k, d)| {
                (
                    k,
                    ParamState {
                        confirmed: Some(d.value),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let state = &all_confirmed;
        let view = DeviceView {
            account: &self.account,
            device: &self.device,
            profile: &self.profile,
            state,
            reach: &reach,
            trust: None,
            layers,
            held: Some((held_creds.0.as_str(), held_creds.1.as_str())),
        };
        let mac = self.device.mac;
        let vars = self.vars(ctx, local);
        let master = if external {
            let firmware = format!(
                "{}://{}{}/{FIRMWARE_DIR}/",
                vars.device.get("PROTO").unwrap_or("https"),
                vars.device.get("FIRMWARE_SERVER").unwrap_or_default(),
                ctx.settings.external_path.trim_end_matches('/'),
            );
            view.master_file_at(&firmware)
        } else {
            view.master_file()
        };
        let mut files = vec![
            (format!("{mac}.cfg"), master),
            (format!("{mac}-device.cfg"), view.device_file().0),
        ];
        if !self.profile.is_video_endpoint() {
            for i in 0..self.profile.files.len() {
                if let Some(bytes) = view.profile_file_with(i, &vars) {
                    files.push((profile_file_name(mac.as_str(), i), bytes));
                }
            }
        }
        DeviceFiles {
            mac,
            tenant: self.account.name.clone(),
            segment: self.segment(ctx),
            files,
        }
    }
}

#[cfg(test)]
mod tests;
