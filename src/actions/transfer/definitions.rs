//! What an export carries besides devices, sites, groups and policies, and what devices and
//! policies need to exist first: an account's profiles with their files, its deliberate
//! parameter names and its Auto-Sync settings, and the installation's custom variables.
//! Each is checked with the rule its own entry path uses (`ProfileFields::validate`, the
//! firmware catalogue, `profile::check_file`, the lint's near misses,
//! `validate_custom_variable`), then written inside the import's transaction before the
//! devices and policies are checked, so they see the file's profiles and names.

use std::collections::BTreeMap;

use base64::Engine;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::db::{deliberate, profiles, templates};
use crate::domain::account::Account;
use crate::domain::autosync::Settings;
use crate::domain::polycom::models::Family;
use crate::domain::profile::{Polling, ProfileFields};
use crate::error::{Error, FieldError, Result};

/// A profile with its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRec {
    pub name: String,
    pub vendor_model: String,
    #[serde(default)]
    pub prov_server: String,
    #[serde(default)]
    pub prov_user: String,
    /// A secret: absent unless secrets are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prov_password: Option<String>,
    #[serde(default)]
    pub polling: String,
    #[serde(default)]
    pub boot_server_option: String,
    #[serde(default)]
    pub option60_type: String,
    #[serde(default)]
    pub quick_setup: String,
    #[serde(default)]
    pub language: String,
    /// Software version by model family name.
    #[serde(default)]
    pub software: BTreeMap<String, String>,
    /// In the profile's order.
    #[serde(default)]
    pub files: Vec<FileRec>,
    #[serde(skip)]
    pub at: String,
}

/// One configuration file of a profile. `content` is base64; a file that holds a secret
/// (`secrets::holds_secret`) is absent unless secrets are exported, and an import then keeps
/// the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// A custom template variable (installation-wide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableRec {
    pub name: String,
    /// Absent for a secret variable (`template::is_secret_name`) unless secrets are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip)]
    pub at: String,
}

/// A parameter name marked deliberate, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliberateRec {
    pub name: String,
    #[serde(default)]
    pub reason: String,
    #[serde(skip)]
    pub at: String,
}

/// An account's provisioning and Auto-Sync settings, what it does with unknown devices,
/// whether it withholds secrets until a device enrols, and TFTP's use of its credential.
/// The last four are absent from files of earlier releases (an import then leaves them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsRec {
    pub provisioning_enabled: bool,
    pub autosync_enabled: bool,
    pub grace_days: u32,
    pub seen_days: u32,
    pub poly_os: bool,
    /// `stage`, `ztp`, `default-profile` or `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_devices: Option<String>,
    /// The profile unknown devices get with `default-profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_secrets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftp_credential: Option<bool>,
    /// Whether Polycom's factory FTP login is accepted (`Account::ftp_factory_login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftp_factory_login: Option<bool>,
    /// Request validation, apply after a change, online check (`Account::sip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<crate::domain::account::AccountSip>,
}

impl From<Settings> for SettingsRec {
    fn from(s: Settings) -> Self {
        SettingsRec {
            provisioning_enabled: s.provisioning_enabled,
            autosync_enabled: s.enabled,
            grace_days: s.grace_days,
            seen_days: s.seen_days,
            poly_os: s.poly_os,
            unknown_devices: None,
            default_profile: None,
            device_secrets: None,
            tftp_credential: None,
            ftp_factory_login: None,
            sip: None,
        }
    }
}

impl From<&SettingsRec> for Settings {
    fn from(s: &SettingsRec) -> Self {
        Settings {
            provisioning_enabled: s.provisioning_enabled,
            enabled: s.autosync_enabled,
            grace_days: s.grace_days,
            seen_days: s.seen_days,
            poly_os: s.poly_os,
        }
    }
}

/// The account's settings.
pub fn export_settings(conn: &Connection, account: &Account) -> Result<SettingsRec> {
    let mut s: SettingsRec = crate::db::credentials::load_settings(conn, account.id)?.into();
    s.unknown_devices = Some(account.unknown_devices.as_str().into());
    s.default_profile = match account.default_profile_id {
        Some(id) => profiles::find_profile_by_id(conn, id)?.map(|p| p.fields.name),
        None => None,
    };
    s.device_secrets = Some(account.device_secrets);
    s.tftp_credential = Some(account.tftp_credential);
    s.ftp_factory_login = Some(account.ftp_factory_login);
    s.sip = Some(account.sip);
    Ok(s)
}

/// Stores an account's settings (inside the import's transaction, after its profiles).
pub fn import_settings(conn: &Connection, account: &Account, s: &SettingsRec) -> Result<()> {
    crate::db::credentials::store_settings(conn, account.id, &s.into())?;
    if let Some(u) = &s.unknown_devices {
        let policy = crate::domain::account::UnknownDevices::parse(u).map_err(|_| {
            Error::invalid(
                "settings.unknown_devices",
                format!("`{u}` is not one of stage, ztp, default-profile, reject"),
            )
        })?;
        let profile = match &s.default_profile {
            Some(n) => Some(
                profiles::find_profile_by_name(conn, account.id.0, n)?
                    .ok_or_else(|| {
                        Error::invalid(
                            "settings.default_profile",
                            format!("no profile named `{n}`"),
                        )
                    })?
                    .id,
            ),
            None => None,
        };
        crate::db::accounts::update_unknown_devices(conn, account.id, policy, profile)?;
    }
    if let Some(on) = s.device_secrets {
        crate::db::enrolment::set_device_secrets(conn, account.id.0, on)?;
    }
    if let Some(on) = s.tftp_credential {
        crate::db::accounts::update_tftp_credential(conn, account.id, on)?;
    }
    if let Some(on) = s.ftp_factory_login {
        crate::db::accounts::update_ftp_factory_login(conn, account.id, on)?;
    }
    if let Some(sip) = s.sip {
        crate::db::accounts::update_sip(conn, account.id, sip)?;
    }
    Ok(())
}

/// The account's profiles, files in order.
pub fn export_profiles(
    conn: &Connection,
    account: &Account,
    include_secrets: bool,
) -> Result<Vec<ProfileRec>> {
    let mut out = Vec::new();
    for summary in profiles::list_profiles(conn, account.id.0)? {
        let Some(p) = profiles::find_profile_by_name(conn, account.id.0, &summary.name)? else {
            continue;
        };
        let f = &p.fields;
        out.push(ProfileRec {
            name: f.name.clone(),
            vendor_model: f.vendor_model.clone(),
            prov_server: if include_secrets {
                f.prov_server.clone()
            } else {
                crate::domain::provserver::strip_password(&f.prov_server).into_owned()
            },
            prov_user: f.prov_user.clone(),
            prov_password: include_secrets.then(|| f.prov_password.clone()),
            polling: f.polling.as_str().into(),
            boot_server_option: f.boot_server_option.clone(),
            option60_type: f.option60_type.clone(),
            quick_setup: f.quick_setup.clone(),
            language: f.language.clone(),
            software: f
                .software
                .iter()
                .map(|(k, v)| (k.name().to_string(), v.clone()))
                .collect(),
            files: p
                .files
                .iter()
                .map(|file| FileRec {
                    name: file.file_name.clone(),
                    content: (include_secrets
                        || !crate::db::secrets::holds_secret(&file.file_name, &file.content))
                    .then(|| base64::engine::general_purpose::STANDARD.encode(&file.content)),
                })
                .collect(),
            at: String::new(),
        });
    }
    Ok(out)
}

/// The installation's custom variables, secret ones only when asked for.
pub fn export_variables(conn: &Connection, include_secrets: bool) -> Result<Vec<VariableRec>> {
    Ok(templates::list_custom_variables(conn)?
        .into_iter()
        .map(|(name, value)| VariableRec {
            value: (include_secrets || !crate::domain::template::is_secret_name(&name))
                .then_some(value),
            name,
            at: String::new(),
        })
        .collect())
}

/// The account's deliberate names.
pub fn export_deliberate(conn: &Connection, account: &Account) -> Result<Vec<DeliberateRec>> {
    Ok(deliberate::list_deliberate(conn, account.id.0)?
        .into_iter()
        .map(|d| DeliberateRec {
            name: d.name,
            reason: d.reason,
            at: String::new(),
        })
        .collect())
}

/// The fields of a profile record; a missing secret comes from `stored`.
fn fields_of(r: &ProfileRec, stored: Option<&ProfileFields>) -> Result<ProfileFields> {
    let mut p = Vec::new();
    let mut software = BTreeMap::new();
    for (family, version) in &r.software {
        match Family::from_name(family) {
            Some(f) => {
                software.insert(f, version.clone());
            }
            None => p.push(FieldError::new(
                format!("software.{family}"),
                "is not a model family",
            )),
        }
    }
    let polling = match Polling::parse(&r.polling) {
        Ok(x) => x,
        Err(Error::Invalid(list)) => {
            p.extend(list);
            Polling::None
        }
        Err(e) => return Err(e),
    };
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let mut prov_server = r.prov_server.clone();
    if let Some(s) = stored
        && crate::domain::provserver::is_masked_form_of(&prov_server, &s.prov_server)
    {
        prov_server = s.prov_server.clone();
    }
    Ok(ProfileFields {
        name: r.name.clone(),
        vendor_model: r.vendor_model.clone(),
        prov_server,
        prov_user: r.prov_user.clone(),
        prov_password: r
            .prov_password
            .clone()
            .or_else(|| stored.map(|s| s.prov_password.clone()))
            .unwrap_or_default(),
        polling,
        boot_server_option: r.boot_server_option.clone(),
        option60_type: r.option60_type.clone(),
        quick_setup: r.quick_setup.clone(),
        language: r.language.clone(),
        software,
    })
}

/// The files of a profile record; a missing (secret) file comes from `stored`, and is
/// refused when there is none.
fn files_of(
    r: &ProfileRec,
    stored: Option<&crate::domain::profile::Profile>,
    p: &mut Vec<FieldError>,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, f) in r.files.iter().enumerate() {
        let at = format!("files[{i}]");
        match &f.content {
            Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                Ok(bytes) => out.push((f.name.clone(), bytes)),
                Err(e) => p.push(FieldError::new(
                    format!("{at}.content"),
                    format!("is not base64: {e}"),
                )),
            },
            None => match stored.and_then(|s| s.files.iter().find(|x| x.file_name == f.name)) {
                Some(kept) => out.push((f.name.clone(), kept.content.clone())),
                None => p.push(FieldError::new(
                    format!("{at}.content"),
                    format!(
                        "{} holds a secret and the file carries none (export with secrets)",
                        f.name
                    ),
                )),
            },
        }
    }
    out
}

/// Prefixes each problem's field with `at`.
fn under(at: &str, list: Vec<FieldError>) -> impl Iterator<Item = FieldError> + '_ {
    list.into_iter()
        .map(move |f| FieldError::new(format!("{at}.{}", f.field), f.message))
}

/// Checks and writes custom variables, deliberate names and profiles inside `tx` (the
/// import's transaction): every problem names its record and field, and nothing is
/// written unless all of them are good. Returns (variables set, profiles created,
/// profiles updated, secrets kept).
pub fn apply(
    tx: &Connection,
    account: &Account,
    variables: &[VariableRec],
    deliberate_names: &[DeliberateRec],
    profile_recs: &[ProfileRec],
    by: &str,
) -> Result<(usize, usize, usize, usize)> {
    let mut p = Vec::new();
    let mut kept = 0;
    let mut seen = std::collections::BTreeSet::new();
    for v in variables {
        if let Some(value) = &v.value
            && let Err(Error::Invalid(list)) =
                crate::domain::devicevars::validate_custom_variable(&v.name, value)
        {
            p.extend(under(&v.at, list));
        }
        if !seen.insert(v.name.as_str()) {
            p.push(FieldError::new(
                &v.at,
                format!("variable `{}` is listed twice", v.name),
            ));
        }
    }
    for d in deliberate_names {
        match crate::actions::params::check_deliberate(d.name.trim(), d.reason.trim()) {
            Ok(()) => {}
            Err(Error::Invalid(list)) => p.extend(under(&d.at, list)),
            Err(e) => return Err(e),
        }
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let mut set = 0;
    let stored_vars = templates::list_custom_variables(tx)?;
    for v in variables {
        match &v.value {
            Some(value) => {
                if stored_vars.get(&v.name) != Some(value) {
                    templates::upsert_custom_variable(tx, &v.name, value)?;
                    set += 1;
                }
            }
            None => kept += 1,
        }
    }
    for d in deliberate_names {
        deliberate::upsert_deliberate(tx, account.id.0, d.name.trim(), d.reason.trim(), by)?;
    }
    // The profiles' files are checked against the variables as they now are.
    let vars = crate::actions::templating::check_vars(tx)?;
    let mut checked = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for r in profile_recs {
        let stored = profiles::find_profile_by_name(tx, account.id.0, r.name.trim())?;
        let mut rp = Vec::new();
        if !names.insert(r.name.trim()) {
            rp.push(FieldError::new(
                "name",
                format!("profile `{}` is listed twice", r.name),
            ));
        }
        let fields = match fields_of(r, stored.as_ref().map(|s| &s.fields)) {
            Ok(f) => Some(f),
            Err(Error::Invalid(list)) => {
                rp.extend(list);
                None
            }
            Err(e) => return Err(e),
        };
        if r.prov_password.is_none()
            && stored
                .as_ref()
                .is_some_and(|s| !s.fields.prov_password.is_empty())
        {
            kept += 1;
        }
        kept += r.files.iter().filter(|f| f.content.is_none()).count();
        let upload = files_of(r, stored.as_ref(), &mut rp);
        if let Some(f) = &fields {
            if let Err(Error::Invalid(list)) = f.validate() {
                rp.extend(list);
            }
            crate::actions::firmware::check_software(tx, &f.software, &mut rp)?;
        }
        let lint = crate::actions::profiles::lint_files(
            tx,
            account,
            &upload,
            crate::domain::lint::Transport::PlainHttp,
        )?;
        rp.extend(crate::domain::lint::near_miss_problems(&lint));
        let files = match crate::actions::profiles::check_files_with(upload, &vars) {
            Ok(f) => Some(f),
            Err(Error::Invalid(list)) => {
                rp.extend(list);
                None
            }
            Err(e) => return Err(e),
        };
        if let (Some(f), Some(files)) = (&fields, &files)
            && f.vendor_model == crate::domain::polycom::models::VIDEO_VENDOR_MODEL
            && !files.is_empty()
        {
            rp.push(FieldError::new(
                "files",
                "Polycom Video Endpoint profiles take no configuration file",
            ));
        }
        match (fields, files) {
            (Some(f), Some(files)) if rp.is_empty() => checked.push((stored, f, files)),
            _ => p.extend(under(&r.at, rp)),
        }
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let (mut created, mut updated) = (0, 0);
    for (stored, fields, files) in checked {
        match stored {
            Some(s) => {
                if s.fields != fields || s.files != files {
                    profiles::update_profile(tx, s.id, &fields, Some(&files))?;
                    updated += 1;
                }
            }
            None => {
                profiles::insert_profile(tx, account.id.0, &fields, &files)?;
                created += 1;
            }
        }
    }
    Ok((set, created, updated, kept))
}
