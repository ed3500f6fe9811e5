//! The preview: each profile file of a device rendered for it, with the value and source
//! of every variable used, secrets masked unless asked for. Asking for secrets from the
//! console or the API is a `reveal_preview`, recorded in the audit log.

use rusqlite::Connection;
use serde::Serialize;

use super::{load_context, load_device};
use crate::db;
use crate::domain::audit::{Actor, Change};
use crate::domain::mac::Mac;
use crate::domain::polycom::render::profile_file_name;
use crate::domain::provstate::Reach;
use crate::domain::variables::DeviceVarSet;
use crate::domain::{template, xml};
use crate::error::Result;

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

/// Masks secret attributes inside an `${OVERRIDE}` fragment (it may carry passwords); an
/// empty fragment stays empty.
pub fn mask_override(fragment: &str) -> String {
    let doc = format!("<x {fragment}/>");
    let Ok(parsed) = roxmltree::Document::parse(&doc) else {
        return MASK.into();
    };
    parsed
        .root_element()
        .attributes()
        .map(|a| {
            let value =
                if crate::domain::polycom::params::is_secret(a.name()) && !a.value().is_empty() {
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
            // The file itself may set secrets: masked like the variables unless asked.
            text: if secrets {
                e.text
            } else {
                crate::domain::withhold::mask_secret_values(&e.text, MASK)
            },
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

/// The preview with secrets in clear, for someone allowed to see them: recorded in the
/// audit log (who looked at which device's secrets) before anything is shown.
pub fn reveal_preview(
    conn: &mut Connection,
    who: &Actor,
    mac: &Mac,
    local: &Reach,
) -> Result<Preview> {
    let preview = preview_device(conn, mac, local, true)?;
    let account = load_device(conn, mac)?.account.id.0;
    db::write_tx(conn, |tx| {
        crate::db::audit::record(
            tx,
            who,
            Change::new(Some(account), "device.preview-secrets", mac.to_string()),
        )
    })?;
    Ok(preview)
}
