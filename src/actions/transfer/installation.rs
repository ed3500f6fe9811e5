//! The export of a whole installation: every account's export (`super::export`) with the
//! account itself (name, slug, device user; its device password and service key are
//! secrets), and the installation-wide provisioning settings and custom variables. An
//! import creates the accounts it does not find (by slug) and applies every account in ONE
//! transaction: a bad record anywhere writes nothing anywhere. JSON only.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::definitions::{VariableRec, export_variables};
use super::seal::{self, Sealing};
use super::{Export, FORMAT, ImportReport, VERSION};
use crate::db::secrets::SECRET_SETTINGS;
use crate::db::{accounts, templates};
use crate::domain::account::{self, Account};
use crate::domain::audit::{Actor, Change};
use crate::domain::settings::ProvSettings;
use crate::error::{Error, FieldError, Result};

/// A whole installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installation {
    pub format: String,
    pub version: u32,
    /// Always `installation` (an account's export has no such field).
    pub scope: String,
    #[serde(default)]
    pub secrets_included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealing>,
    /// The provisioning settings as stored (secret ones only with secrets).
    #[serde(default)]
    pub prov_settings: BTreeMap<String, String>,
    #[serde(default)]
    pub custom_variables: Vec<VariableRec>,
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
}

/// One account and its export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub device_user: String,
    /// Secrets: absent unless secrets are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_key: Option<String>,
    pub export: Export,
}

/// Whether a JSON text is an installation export (it has `"scope": "installation"`).
pub fn is_installation(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("scope").and_then(|s| s.as_str()).map(str::to_string))
        .is_some_and(|s| s == "installation")
}

/// Takes every account and the installation-wide settings.
pub fn export(conn: &Connection, include_secrets: bool) -> Result<Installation> {
    let mut entries = Vec::new();
    for a in accounts::list_accounts(conn)? {
        let mut e = super::export(conn, &a, include_secrets)?;
        // Installation-wide: once, at the top.
        e.custom_variables.clear();
        entries.push(AccountEntry {
            slug: a.slug.clone(),
            name: a.name.clone(),
            is_default: a.is_default,
            device_user: a.device_user.clone().unwrap_or_default(),
            device_password: include_secrets.then(|| a.device_password.clone().unwrap_or_default()),
            service_key: include_secrets.then(|| a.service_key.clone()),
            export: e,
        });
    }
    let prov_settings = templates::load_prov_settings(conn)?
        .into_iter()
        .filter(|(k, _)| include_secrets || !SECRET_SETTINGS.contains(&k.as_str()))
        .collect();
    Ok(Installation {
        format: FORMAT.into(),
        version: VERSION,
        scope: "installation".into(),
        secrets_included: include_secrets,
        sealed: None,
        prov_settings,
        custom_variables: export_variables(conn, include_secrets)?,
        accounts: entries,
    })
}

/// Visits every secret outside the account exports.
fn each_top_secret(i: &mut Installation, f: &mut dyn FnMut(&str, &str, &mut String)) {
    for (k, v) in i.prov_settings.iter_mut() {
        if SECRET_SETTINGS.contains(&k.as_str()) {
            f("setting", k, v);
        }
    }
    for v in &mut i.custom_variables {
        if crate::domain::template::is_secret_name(&v.name)
            && let Some(value) = &mut v.value
        {
            f("variable.value", &v.name.clone(), value);
        }
    }
    for a in &mut i.accounts {
        if let Some(p) = &mut a.device_password {
            f("account.device_password", &a.slug.clone(), p);
        }
        if let Some(k) = &mut a.service_key {
            f("account.service_key", &a.slug.clone(), k);
        }
    }
}

fn place<'a>(kind: &'a str, row: &'a str) -> crate::db::secrets::Place<'a> {
    crate::db::secrets::Place {
        table: "zerotouch-export",
        column: kind,
        row,
    }
}

/// Seals every secret with a passphrase.
pub fn seal(i: &mut Installation, passphrase: &str) -> Result<()> {
    let (key, sealing) = seal::new_key(passphrase)?;
    for a in &mut i.accounts {
        seal::seal_values(&mut a.export, &key)?;
    }
    each_top_secret(i, &mut |kind, row, v| {
        if !v.is_empty() {
            *v = key.seal_at(&place(kind, row), v);
        }
    });
    i.sealed = Some(sealing);
    Ok(())
}

/// Opens a sealed installation export.
pub fn open(i: &mut Installation, passphrase: Option<&str>) -> Result<()> {
    let Some(sealing) = &i.sealed else {
        return Ok(());
    };
    let key = seal::key_of(sealing, passphrase)?;
    i.sealed = None;
    for a in &mut i.accounts {
        seal::open_values(&mut a.export, &key)?;
    }
    let mut bad = Vec::new();
    each_top_secret(i, &mut |kind, row, v| {
        if v.starts_with(crate::db::secrets::BOUND_PREFIX) {
            match key.open_at(&place(kind, row), v) {
                Ok(plain) => *v = plain,
                Err(_) => bad.push(FieldError::new(format!("{kind} of {row}"), "does not open")),
            }
        }
    });
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(bad))
    }
}

/// The export as pretty JSON; secrets leave only sealed.
pub fn to_json(i: &Installation) -> Result<String> {
    if i.secrets_included && i.sealed.is_none() {
        return Err(Error::invalid(
            "secrets",
            "secrets leave only sealed with a passphrase",
        ));
    }
    serde_json::to_string_pretty(i)
        .map(|s| s + "\n")
        .map_err(|err| Error::invalid("export", err.to_string()))
}

/// Reads an installation export; errors name the path of the bad value.
pub fn parse_json(text: &str) -> Result<Installation> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let mut i: Installation = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        Error::invalid(
            if path == "." { "file".into() } else { path },
            err.into_inner().to_string(),
        )
    })?;
    for (n, a) in i.accounts.iter_mut().enumerate() {
        super::number(&mut a.export);
        prefix(&mut a.export, &format!("accounts[{n}].export."));
    }
    for (n, v) in i.custom_variables.iter_mut().enumerate() {
        v.at = format!("custom_variables[{n}]");
    }
    Ok(i)
}

fn prefix(e: &mut Export, p: &str) {
    let add = |at: &mut String| *at = format!("{p}{at}");
    e.sites.iter_mut().for_each(|x| add(&mut x.at));
    e.groups.iter_mut().for_each(|x| add(&mut x.at));
    e.devices.iter_mut().for_each(|x| add(&mut x.at));
    e.policies.iter_mut().for_each(|x| add(&mut x.at));
    e.profiles.iter_mut().for_each(|x| add(&mut x.at));
    e.deliberate.iter_mut().for_each(|x| add(&mut x.at));
}

/// Imports a whole installation in one transaction (nothing when `dry_run`).
pub fn import(
    conn: &mut Connection,
    actor: &Actor,
    i: &Installation,
    dry_run: bool,
) -> Result<ImportReport> {
    if i.sealed.is_some() {
        return Err(Error::invalid(
            "sealed",
            "the file's secrets are sealed: give the passphrase they were exported with",
        ));
    }
    let mut p = Vec::new();
    super::check_format(&i.format, i.version, &mut p);
    if i.scope != "installation" {
        p.push(FieldError::new("scope", "must be `installation`"));
    }
    // The settings are checked as the settings page checks them; secret ones the file
    // does not carry keep their stored value.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut stored = templates::load_prov_settings(&tx)?;
    for k in stored.clone().keys() {
        if !SECRET_SETTINGS.contains(&k.as_str()) || i.prov_settings.contains_key(k) {
            stored.remove(k);
        }
    }
    stored.extend(i.prov_settings.clone());
    let settings = ProvSettings::from_stored(&stored);
    if let Err(Error::Invalid(list)) = settings.validate(&crate::actions::templating::script_file) {
        p.extend(
            list.into_iter()
                .map(|f| FieldError::new(format!("prov_settings.{}", f.field), f.message)),
        );
    }
    for (n, a) in i.accounts.iter().enumerate() {
        if let Err(Error::Invalid(list)) = account::validate_slug(&a.slug) {
            p.extend(
                list.into_iter()
                    .map(|f| FieldError::new(format!("accounts[{n}].slug"), f.message)),
            );
        }
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let mut report = ImportReport {
        dry_run,
        ..Default::default()
    };
    templates::replace_prov_settings(&tx, &settings.to_stored())?;
    super::definitions::apply(
        &tx,
        &dummy_scope(&tx)?,
        &i.custom_variables,
        &[],
        &[],
        &actor.name,
    )
    .map(|(set, _, _, kept)| {
        report.variables_set += set;
        report.secrets_kept += kept;
    })?;
    for (n, a) in i.accounts.iter().enumerate() {
        let target = match accounts::find_by_slug(&tx, &a.slug)? {
            Some(t) => carry_account(&tx, t, a)?,
            None => {
                let t = create_account(&tx, n, a)?;
                report.accounts_created += 1;
                t
            }
        };
        super::import_in(&tx, actor, &target, &a.export, &mut report)?;
    }
    crate::db::audit::record(
        &tx,
        actor,
        Change::new(None, "import.installation", "installation").after(serde_json::json!({
            "report": report, "accounts": i.accounts.len(),
            "secrets_included": i.secrets_included,
        })),
    )?;
    if dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(report)
}

/// Custom variables belong to no account; `apply` only needs one for deliberate names and
/// profiles, which the installation's top level does not carry.
fn dummy_scope(conn: &Connection) -> Result<Account> {
    Ok(accounts::ensure_default(conn)?.0)
}

/// Gives an account that exists the device credentials and service key the file carries
/// (with secrets), as a move between servers needs: a new credential generation (the old
/// one stays accepted for the grace days) and the old address kept as an alias while
/// devices hold it, as `regenerate-address` does.
fn carry_account(conn: &Connection, t: Account, a: &AccountEntry) -> Result<Account> {
    if let Some(password) = a.device_password.as_deref().filter(|p| !p.is_empty()) {
        let user = if a.device_user.is_empty() {
            t.device_user.clone().unwrap_or_default()
        } else {
            a.device_user.clone()
        };
        if t.device_user.as_deref() != Some(user.as_str())
            || t.device_password.as_deref() != Some(password)
        {
            account::validate_credentials(&user, password)?;
            accounts::update_credentials(conn, t.id, &user, password)?;
        }
    }
    if let Some(key) = a.service_key.as_deref().filter(|k| !k.is_empty())
        && key != t.service_key
    {
        let old = t.service_segment();
        crate::db::credentials::update_service_key(conn, t.id, key)?;
        if crate::db::credentials::count_segment_holders(conn, &old)? > 0 {
            crate::db::credentials::insert_alias(conn, t.id, &old)?;
        }
    }
    accounts::find_by_id(conn, t.id)?.ok_or_else(|| Error::Schema("account vanished".into()))
}

/// Creates an account of the file, with its device credentials (a random password when the
/// file carries none) and, when the file carries it, its service key, so phones keep their
/// service address.
fn create_account(conn: &Connection, n: usize, a: &AccountEntry) -> Result<Account> {
    let password = match &a.device_password {
        Some(p) if !p.is_empty() => p.clone(),
        _ => account::random_token(20),
    };
    let user = if a.device_user.is_empty() {
        "provision".to_string()
    } else {
        a.device_user.clone()
    };
    let name = a.name.trim();
    let mut p = Vec::new();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        p.push(FieldError::new(
            format!("accounts[{n}].name"),
            "must be 1 to 64 characters without control characters",
        ));
    }
    if let Err(Error::Invalid(list)) = account::validate_credentials(&user, &password) {
        p.extend(
            list.into_iter()
                .map(|f| FieldError::new(format!("accounts[{n}].device_{}", f.field), f.message)),
        );
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let created = accounts::insert_account(conn, name, &a.slug, false, &user, &password)?;
    if let Some(key) = a.service_key.as_deref().filter(|k| !k.is_empty()) {
        crate::db::credentials::update_service_key(conn, created.id, key)?;
    }
    accounts::find_by_id(conn, created.id)?
        .ok_or_else(|| Error::Schema("new account vanished".into()))
}
