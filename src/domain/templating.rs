//! Actions on provisioning settings, custom variables, device template values and lines,
//! and the renderings built on them (the files of a device in Local or External mode, the
//! preview), shared by the command line, the admin UI and the API.
//!
//! Like `ops`, every action validates everything first and then writes in one
//! transaction, so a refused input leaves nothing half-written. Network checks (the S3
//! connectivity check) run before the transaction, never inside it.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use super::account::{Account, AccountId};
use super::device::{Device, DeviceVars, Line};
use super::mac::Mac;
use super::policy::Layers;
use super::polycom::render::{DeviceView, profile_file_name};
use super::profile::Profile;
use super::provstate::{ParamState, PhoneTrust, Reach};
use super::settings::ProvSettings;
use super::variables::{self, Context, DeviceVarSet, FIRMWARE_DIR, Subject};
use super::{devicevars, template, xml};
use crate::db::{self, accounts, devices, profiles, templates};
use crate::error::{Error, FieldError, Result};

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
    })
}

/// Variables known when checking uploaded files: the built-ins and the custom variables.
pub fn check_vars(conn: &Connection) -> Result<template::Vars> {
    let mut v = template::Vars::default();
    for (name, value) in templates::list_custom_variables(conn)? {
        v.set_custom(name, value);
    }
    Ok(v)
}

/// Applies `changes` (field, value) to the stored settings. Every problem is reported,
/// each naming its field; then `check` runs on the result (e.g. the S3 connectivity
/// check); only then is anything written, in one transaction. Returns the new settings.
pub fn update_settings(
    conn: &mut Connection,
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
    match settings.validate() {
        Ok(()) => {}
        Err(Error::Invalid(p)) => problems.extend(p),
        Err(e) => return Err(e),
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    check(&settings)?;
    db::write_tx(conn, |tx| {
        templates::replace_prov_settings(tx, &settings.to_stored())
    })?;
    Ok(settings)
}

/// Creates or changes a custom variable.
pub fn set_custom_variable(conn: &mut Connection, name: &str, value: &str) -> Result<()> {
    devicevars::validate_custom_variable(name, value)?;
    db::write_tx(conn, |tx| {
        templates::upsert_custom_variable(tx, name, value)
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
pub fn delete_custom_variable(conn: &mut Connection, name: &str) -> Result<()> {
    db::write_tx(conn, |tx| {
        let uses = uses_of(tx, name)?;
        if !uses.is_empty() {
            return Err(Error::Conflict(format!(
                "custom variable {name} is used by {}; change those files first",
                uses.join(", ")
            )));
        }
        if !templates::delete_custom_variable(tx, name)? {
            return Err(Error::not_found(format!("custom variable {name}")));
        }
        Ok(())
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
/// attribute the file already sets in that element) is refused, naming the file.
pub fn set_device_vars(
    conn: &mut Connection,
    mac: &Mac,
    change: &DeviceVarsChange,
) -> Result<DeviceVars> {
    db::write_tx(conn, |tx| {
        let mut device = find_device(tx, mac)?;
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
        apply(&mut v.override_attrs, &change.override_attrs);
        let v = devicevars::validate_device_vars(&v)?;
        if !v.override_attrs.is_empty()
            && let Some(profile_id) = device.profile_id
            && let Some(profile) = profiles::find_profile_by_id(tx, profile_id)?
        {
            device.vars = v.clone();
            check_override_fits(tx, &device, &profile)?;
        }
        devices::upsert_device_vars(tx, device.id, &v)?;
        Ok(v)
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
pub fn set_device_line(conn: &mut Connection, mac: &Mac, line: &Line) -> Result<()> {
    devicevars::validate_line(line)?;
    db::write_tx(conn, |tx| {
        let device = find_device(tx, mac)?;
        devices::upsert_line(tx, device.id, line)
    })
}

/// Removes one SIP line of a device.
pub fn delete_device_line(conn: &mut Connection, mac: &Mac, line: u32) -> Result<()> {
    db::write_tx(conn, |tx| {
        let device = find_device(tx, mac)?;
        if !devices::delete_line(tx, device.id, line)? {
            return Err(Error::not_found(format!("line {line} of device {mac}")));
        }
        Ok(())
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
}

/// Loads an associated device.
pub fn load_device(conn: &Connection, mac: &Mac) -> Result<Loaded> {
    let parts = super::ops::ViewParts::load(conn, mac)?;
    let model = devices::find_activity(conn, parts.device.id)?
        .map(|a| a.ua_model)
        .unwrap_or_default();
    Ok(Loaded {
        account: parts.account,
        device: parts.device,
        profile: parts.profile,
        state: parts.state,
        layers: parts.layers,
        model,
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
        let reach = self.reach(ctx, local);
        // External mode: no Auto-Sync (no phone request would ever confirm it); policies apply.
        let external_layers;
        let layers = if external {
            external_layers = Layers {
                sync: None,
                policies: self.layers.policies.clone(),
                ..Default::default()
            };
            &external_layers
        } else {
            &self.layers
        };
        let all_confirmed;
        let state = if external {
            let view = view(
                &self.account,
                &self.device,
                &self.profile,
                &self.state,
                &reach,
                layers,
            );
            all_confirmed = view
                .desired()
                .into_iter()
                .map(|(k, d)| {
                    (
                        k,
                        ParamState {
                            confirmed: Some(d.value),
                            delivered: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>();
            &all_confirmed
        } else {
            &self.state
        };
        let view = DeviceView {
            account: &self.account,
            device: &self.device,
            profile: &self.profile,
            state,
            reach: &reach,
            trust: if external { None } else { trust },
            layers,
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

/// One variable a file used, for the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewVar {
    pub name: String,
    /// The value, or a mask for secrets unless asked for.
    pub value: String,
    pub source: String,
    /// Lines of the profile file that use it.
    pub template_lines: Vec<u32>,
    /// Inside a line block: the device line it was rendered for.
    pub device_line: Option<u32>,
    pub secret: bool,
}

/// One profile file rendered for a device.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewFile {
    /// As the device requests it (`<mac>-profile.cfg`).
    pub name: String,
    /// As uploaded to the profile.
    pub profile_file: String,
    /// The rendered text (secrets masked unless asked for).
    pub text: String,
    pub vars: Vec<PreviewVar>,
    /// Whether the rendered file is well-formed XML (it should always be).
    pub well_formed: bool,
}

/// A device's profile files rendered, with the value and source of every variable used.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub mac: String,
    pub mode: &'static str,
    pub model: String,
    /// External mode: where the files are generated, relative to `<data_dir>/external/`.
    pub segment: String,
    pub files: Vec<PreviewFile>,
}

/// The mask shown instead of a secret.
pub const MASK: &str = "********";

/// Masks secret attributes inside an `${OVERRIDE}` fragment (it may carry passwords).
fn mask_override(fragment: &str) -> String {
    let doc = format!("<x {fragment}/>");
    let Ok(parsed) = roxmltree::Document::parse(&doc) else {
        return MASK.into();
    };
    parsed
        .root_element()
        .attributes()
        .map(|a| {
            let value = if super::polycom::params::is_secret(a.name()) && !a.value().is_empty() {
                MASK.to_string()
            } else {
                xml::escape_attr(a.value())
            };
            format!("{}=\"{value}\"", a.name())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn masked(mut set: DeviceVarSet) -> DeviceVarSet {
    let mask_vars = |v: &mut template::Vars| {
        let names: Vec<&'static str> = template::BUILTINS
            .iter()
            .copied()
            .filter(|n| template::is_secret_name(n))
            .collect();
        for name in names {
            let value = v.get(name).unwrap_or_default().to_string();
            let source = v.source(name).unwrap_or_default();
            if !value.is_empty() {
                v.set_from(name, MASK, source);
            }
        }
        let source = v.source("OVERRIDE").unwrap_or_default();
        let over = mask_override(v.get("OVERRIDE").unwrap_or_default());
        v.set_from("OVERRIDE", over, source);
        let custom: Vec<(String, String)> = v
            .custom_names()
            .filter(|n| template::is_secret_name(n))
            .map(|n| (n.to_string(), v.get(n).unwrap_or_default().to_string()))
            .collect();
        for (name, value) in custom {
            if !value.is_empty() {
                v.set_custom(name, MASK);
            }
        }
    };
    mask_vars(&mut set.device);
    for (_, v) in &mut set.lines {
        mask_vars(v);
    }
    set
}

/// Renders each profile file of a device with the value and source of every variable it
/// uses. Secrets (passwords, `PROTO_URL`, secret parameters in `${OVERRIDE}`, custom
/// variables named like secrets) are masked in values and text unless `secrets`.
pub fn preview_device(
    conn: &Connection,
    mac: &Mac,
    local: &Reach,
    secrets: bool,
) -> Result<Preview> {
    let loaded = load_device(conn, mac)?;
    let ctx = load_context(conn)?;
    let vars = loaded.vars(&ctx, local);
    let vars = if secrets { vars } else { masked(vars) };
    let mut files = Vec::new();
    for (i, file) in loaded.profile.files.iter().enumerate() {
        let text = String::from_utf8_lossy(&file.content);
        let e = template::render(&text, &vars.device, &vars.lines);
        let mut used: Vec<PreviewVar> = Vec::new();
        for u in e.used {
            match used
                .iter_mut()
                .find(|p| p.name == u.name && p.device_line == u.device_line)
            {
                Some(p) => {
                    if !p.template_lines.contains(&u.line) {
                        p.template_lines.push(u.line);
                    }
                }
                None => used.push(PreviewVar {
                    secret: template::is_secret_name(&u.name),
                    name: u.name,
                    value: u.value,
                    source: u.source,
                    template_lines: vec![u.line],
                    device_line: u.device_line,
                }),
            }
        }
        let well_formed = xml::check_well_formed(&file.file_name, e.text.as_bytes()).is_ok();
        files.push(PreviewFile {
            name: profile_file_name(mac.as_str(), i),
            profile_file: file.file_name.clone(),
            text: e.text,
            vars: used,
            well_formed,
        });
    }
    Ok(Preview {
        mac: mac.to_string(),
        mode: ctx.settings.mode.as_str(),
        model: loaded.model.clone(),
        segment: loaded.segment(&ctx),
        files,
    })
}

#[cfg(test)]
mod tests;
