//! Export and import of an account's devices, sites, groups and policies (the Lens Auto-Sync page's
//! "Export (Advanced Tools)"), as JSON or CSV, without loss: exporting, wiping and importing
//! gives every device the same effective settings.
//!
//! Secrets (device provisioning and SIP passwords, policies on secret parameters) are
//! exported only when asked for. An import without them keeps the secrets already stored;
//! a policy whose secret value is missing is left as it is.
//!
//! CSV is one table of four columns, `record,target,field,value`, one value per row, so it
//! needs no fixed column set and keeps every value (the `csv` crate quotes what needs it):
//! `site,hq,description,...`, `group,lobby,priority,10`, `device,<mac>,profile,office`,
//! `device,<mac>,group,lobby` (repeated), `device,<mac>,line.2.label,...`,
//! `policy,site:hq,lcl.ml.lang,German_Germany`.
//!
//! Import checks everything first and reports every problem with the row (`devices[3].mac`
//! in JSON, `line 17` in CSV) and field; only a clean file is applied, in one transaction.
//! Import adds and updates; it deletes nothing except a listed device's group memberships
//! and site, which become what the file says.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::policies::{self, ScopeKind};
use crate::db::{devices, profiles};
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::device::{DeviceInput, DeviceVars, Line, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::policy::{self, Target};
use crate::domain::polycom::params;
use crate::error::{Error, FieldError, Result};

/// The format name written into every export.
pub const FORMAT: &str = "zerotouch-export";
/// The version of the format: 2 added profiles with their files, custom variables,
/// deliberate names, account settings, device template values and sealed secrets. Version
/// 1 files are still read.
pub const VERSION: u32 = 2;

/// An account's profiles, devices, sites, groups and policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub version: u32,
    /// The account it was taken from: its slug (an installation import creates it when
    /// missing; an account import reads it as information).
    #[serde(default)]
    pub account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_name: String,
    #[serde(default)]
    pub secrets_included: bool,
    /// Present when the secrets are sealed with a passphrase (`seal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_variables: Vec<VariableRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliberate: Vec<DeliberateRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ProfileRec>,
    #[serde(default)]
    pub sites: Vec<SiteRec>,
    #[serde(default)]
    pub groups: Vec<GroupRec>,
    #[serde(default)]
    pub devices: Vec<DeviceRec>,
    #[serde(default)]
    pub policies: Vec<PolicyRec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the record is in the file, for errors.
    #[serde(skip)]
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRec {
    pub name: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub description: String,
    #[serde(skip)]
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRec {
    pub mac: String,
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub vendor_model: String,
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub sip_server: String,
    #[serde(default)]
    pub outbound_proxy: String,
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
    pub lines: Vec<LineRec>,
    /// Template values (`${LABEL}`, `${TL_TIMEZONE}`, ...), absent when none are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<VarsRec>,
    /// The device's own credential (enrolment state), absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<EnrolmentRec>,
    #[serde(skip)]
    pub at: String,
}

/// A device's enrolment: its own credential (a secret, absent unless secrets are exported:
/// an import then keeps the stored one, or the device enrols again) and whether the device
/// has proved it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The device authenticated with its current password.
    #[serde(default)]
    pub confirmed: bool,
    /// The device authenticated with an own password.
    #[serde(default)]
    pub enrolled: bool,
}

/// A device's template values (`DeviceVars`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarsRec {
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub tl_timezone: String,
    #[serde(default)]
    pub tl_timezone_name: String,
    #[serde(default)]
    pub default_parkext: String,
    #[serde(default)]
    pub override_attrs: String,
}

impl VarsRec {
    fn from_vars(v: &DeviceVars) -> Option<VarsRec> {
        (*v != DeviceVars::default()).then(|| VarsRec {
            label: v.label.clone(),
            tl_timezone: v.tl_timezone.clone(),
            tl_timezone_name: v.tl_timezone_name.clone(),
            default_parkext: v.default_parkext.clone(),
            override_attrs: v.override_attrs.clone(),
        })
    }

    fn to_vars(&self) -> DeviceVars {
        DeviceVars {
            label: self.label.clone(),
            tl_timezone: self.tl_timezone.clone(),
            tl_timezone_name: self.tl_timezone_name.clone(),
            default_parkext: self.default_parkext.clone(),
            override_attrs: self.override_attrs.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRec {
    pub line: u32,
    #[serde(default)]
    pub auth_user_id: String,
    /// A secret: absent unless secrets are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extension: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRec {
    /// `account`, `site:NAME`, `group:NAME` or `device:MAC`.
    pub scope: String,
    pub parameter: String,
    /// Absent for a secret parameter when secrets are not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip)]
    pub at: String,
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(Error::invalid(
                "format",
                format!("`{s}` is not json or csv"),
            )),
        }
    }
}

/// Takes an account's profiles, associated devices, sites, groups, policies, deliberate
/// names and settings, and the installation's custom variables. With `include_secrets`
/// the secrets are in clear in the value returned: `seal` them before writing it out.
pub fn export(conn: &Connection, account: &Account, include_secrets: bool) -> Result<Export> {
    let secret = |s: &str| include_secrets.then(|| s.to_string());
    let sites = policies::list_sites(conn, account.id.0)?
        .into_iter()
        .map(|s| SiteRec {
            name: s.name,
            description: s.description,
            at: String::new(),
        })
        .collect();
    // Oldest first, so an import into an empty account gives them ids in the same order
    // (equal priorities are decided by id).
    let mut group_list = policies::list_groups(conn, account.id.0)?;
    group_list.sort_by_key(|g| g.id);
    let groups = group_list
        .into_iter()
        .map(|g| GroupRec {
            name: g.name,
            priority: g.priority,
            description: g.description,
            at: String::new(),
        })
        .collect();
    let mut device_recs = Vec::new();
    for row in devices::list_devices(conn, account.id.0, false)? {
        if row.profile.is_none() {
            continue;
        }
        let Some(mac) = Mac::from_bare(&row.mac) else {
            continue;
        };
        let Some(d) = devices::find_device_by_mac(conn, &mac)? else {
            continue;
        };
        let mut groups: Vec<_> = policies::device_groups(conn, d.id)?;
        groups.sort_by_key(|g| g.id);
        device_recs.push(DeviceRec {
            mac: d.mac.to_string(),
            serial: d.serial.clone(),
            vendor_model: d.vendor_model.clone(),
            profile: d.profile_name.clone().unwrap_or_default(),
            site: policies::device_site(conn, d.id)?.map(|s| s.name),
            groups: groups.into_iter().map(|g| g.name).collect(),
            sip_server: d.ext.sip_server.clone(),
            outbound_proxy: d.ext.outbound_proxy.clone(),
            prov_server: if include_secrets {
                d.ext.prov_server.clone()
            } else {
                crate::domain::provserver::strip_password(&d.ext.prov_server).into_owned()
            },
            prov_user: d.ext.prov_user.clone(),
            prov_password: secret(&d.ext.prov_password),
            polling: d.ext.polling.clone(),
            vars: VarsRec::from_vars(&d.vars),
            enrolment: crate::db::enrolment::find_device_credential(conn, d.id)?.map(|c| {
                EnrolmentRec {
                    password: secret(&c.password),
                    confirmed: c.confirmed_at.is_some(),
                    enrolled: c.enrolled_at.is_some(),
                }
            }),
            lines: d
                .lines
                .iter()
                .map(|l| LineRec {
                    line: l.line,
                    auth_user_id: l.auth_user_id.clone(),
                    auth_password: secret(&l.auth_password),
                    label: l.label.clone(),
                    display_name: l.display_name.clone(),
                    extension: l.extension.clone(),
                    first_name: l.first_name.clone(),
                    last_name: l.last_name.clone(),
                })
                .collect(),
            at: String::new(),
        });
    }
    let policies = policies::list_policies(conn, account.id.0)?
        .into_iter()
        .map(|p| PolicyRec {
            scope: match p.scope {
                ScopeKind::Account => "account".into(),
                k => format!("{}:{}", k.as_str(), p.target),
            },
            value: if params::is_secret(&p.parameter) && !include_secrets {
                None
            } else {
                Some(p.value)
            },
            parameter: p.parameter,
            at: String::new(),
        })
        .collect();
    Ok(Export {
        format: FORMAT.into(),
        version: VERSION,
        account: account.slug.clone(),
        account_name: account.name.clone(),
        secrets_included: include_secrets,
        sealed: None,
        settings: Some(profiles_rec::export_settings(conn, account)?),
        custom_variables: profiles_rec::export_variables(conn, include_secrets)?,
        deliberate: profiles_rec::export_deliberate(conn, account)?,
        profiles: profiles_rec::export_profiles(conn, account, include_secrets)?,
        sites,
        groups,
        devices: device_recs,
        policies,
    })
}

/// The export as pretty JSON.
pub fn to_json(e: &Export) -> Result<String> {
    serde_json::to_string_pretty(e)
        .map(|s| s + "\n")
        .map_err(|err| Error::invalid("export", err.to_string()))
}

/// Reads a JSON export; errors name the path of the bad value (`devices[2].lines[0].line`).
pub fn parse_json(text: &str) -> Result<Export> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let mut e: Export = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        Error::invalid(
            if path == "." { "file".into() } else { path },
            err.into_inner().to_string(),
        )
    })?;
    number(&mut e);
    Ok(e)
}

/// Names every record by its place in a JSON file, for errors.
fn number(e: &mut Export) {
    for (i, s) in e.sites.iter_mut().enumerate() {
        s.at = format!("sites[{i}]");
    }
    for (i, g) in e.groups.iter_mut().enumerate() {
        g.at = format!("groups[{i}]");
    }
    for (i, d) in e.devices.iter_mut().enumerate() {
        d.at = format!("devices[{i}]");
    }
    for (i, p) in e.policies.iter_mut().enumerate() {
        p.at = format!("policies[{i}]");
    }
    for (i, p) in e.profiles.iter_mut().enumerate() {
        p.at = format!("profiles[{i}]");
    }
    for (i, v) in e.custom_variables.iter_mut().enumerate() {
        v.at = format!("custom_variables[{i}]");
    }
    for (i, d) in e.deliberate.iter_mut().enumerate() {
        d.at = format!("deliberate[{i}]");
    }
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub sites_created: usize,
    pub sites_updated: usize,
    pub groups_created: usize,
    pub groups_updated: usize,
    pub devices_created: usize,
    pub devices_updated: usize,
    pub policies_set: usize,
    pub profiles_created: usize,
    pub profiles_updated: usize,
    pub variables_set: usize,
    /// Accounts an installation import created.
    pub accounts_created: usize,
    /// Secrets the file did not carry, kept as stored.
    pub secrets_kept: usize,
}

fn push<T>(p: &mut Vec<FieldError>, at: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Invalid(list)) => {
            p.extend(
                list.into_iter()
                    .map(|f| FieldError::new(format!("{at}.{}", f.field), f.message)),
            );
            None
        }
        Err(e) => {
            p.push(FieldError::new(at, e.to_string()));
            None
        }
    }
}

/// The format and version an import reads (every version up to this one).
fn check_format(format: &str, version: u32, p: &mut Vec<FieldError>) {
    if format != FORMAT || !(1..=VERSION).contains(&version) {
        p.push(FieldError::new(
            "format",
            format!("expected {FORMAT} version 1 to {VERSION}, got {format} version {version}"),
        ));
    }
}

/// Checks every record against the file and the database; every problem names its row.
fn check(conn: &Connection, account: &Account, e: &Export) -> Result<()> {
    let mut p = Vec::new();
    check_format(&e.format, e.version, &mut p);
    let mut site_names = BTreeSet::new();
    for s in &e.sites {
        push(&mut p, &s.at, policy::check_name("name", &s.name));
        if !site_names.insert(s.name.as_str()) {
            p.push(FieldError::new(
                &s.at,
                format!("site `{}` is listed twice", s.name),
            ));
        }
    }
    let mut group_names = BTreeSet::new();
    for g in &e.groups {
        push(&mut p, &g.at, policy::check_name("name", &g.name));
        if !group_names.insert(g.name.as_str()) {
            p.push(FieldError::new(
                &g.at,
                format!("group `{}` is listed twice", g.name),
            ));
        }
    }
    let site_known = |n: &str| -> Result<bool> {
        Ok(site_names.contains(n) || policies::find_site(conn, account.id.0, n)?.is_some())
    };
    let group_known = |n: &str| -> Result<bool> {
        Ok(group_names.contains(n) || policies::find_group(conn, account.id.0, n)?.is_some())
    };
    let mut macs = BTreeMap::new();
    for d in &e.devices {
        let input = device_input(d, None);
        if let Some(new) = push(&mut p, &d.at, input.validate()) {
            if let Some(first) = macs.insert(new.mac, d.at.clone()) {
                p.push(FieldError::new(
                    &d.at,
                    format!("device {} is listed twice (also {first})", new.mac),
                ));
            }
            if let Some(existing) = devices::find_device_by_mac(conn, &new.mac)?
                && existing.account_id != account.id.0
            {
                p.push(FieldError::new(
                    format!("{}.mac", d.at),
                    format!("{} is already associated elsewhere", new.mac),
                ));
            }
        }
        if profiles::find_profile_by_name(conn, account.id.0, d.profile.trim())?.is_none() {
            p.push(FieldError::new(
                format!("{}.profile", d.at),
                format!("no profile named `{}`", d.profile),
            ));
        }
        if let Some(s) = &d.site
            && !site_known(s)?
        {
            p.push(FieldError::new(
                format!("{}.site", d.at),
                format!("no site named `{s}`"),
            ));
        }
        for g in &d.groups {
            if !group_known(g)? {
                p.push(FieldError::new(
                    format!("{}.groups", d.at),
                    format!("no group named `{g}`"),
                ));
            }
        }
        if let Some(v) = &d.vars
            && let Err(Error::Invalid(list)) =
                crate::domain::devicevars::validate_device_vars(&v.to_vars())
        {
            p.extend(
                list.into_iter()
                    .map(|f| FieldError::new(format!("{}.vars.{}", d.at, f.field), f.message)),
            );
        }
        let mut numbers = BTreeSet::new();
        for l in &d.lines {
            if !(1..=64).contains(&l.line) || !numbers.insert(l.line) {
                p.push(FieldError::new(
                    format!("{}.lines", d.at),
                    format!("line {} is out of range (1 to 64) or listed twice", l.line),
                ));
            }
            // The line rule of `set-line` (`device::check_line_text`): what it accepts, the
            // import of its export accepts.
            let mut lp = Vec::new();
            for (field, value) in [
                ("auth_user_id", l.auth_user_id.as_str()),
                ("auth_password", l.auth_password.as_deref().unwrap_or("")),
                ("label", l.label.as_str()),
                ("display_name", l.display_name.as_str()),
                ("extension", l.extension.as_str()),
                ("first_name", l.first_name.as_str()),
                ("last_name", l.last_name.as_str()),
            ] {
                crate::domain::device::check_line_text(field, value, &mut lp);
            }
            let at = format!("{}.lines[{}]", d.at, l.line);
            p.extend(
                lp.into_iter()
                    .map(|f| FieldError::new(format!("{at}.{}", f.field), f.message)),
            );
        }
    }
    let mut seen_policies = BTreeSet::new();
    for pr in &e.policies {
        let target = push(&mut p, &pr.at, Target::parse(&pr.scope));
        if let Some(v) = &pr.value {
            push(&mut p, &pr.at, policy::check_policy(&pr.parameter, v));
        }
        // A near miss of a known parameter name is refused here as everywhere; the other
        // dictionary findings are warnings the policy pages show.
        let place = format!("policy {}", pr.scope);
        let value = pr.value.as_deref().unwrap_or("");
        push(
            &mut p,
            &pr.at,
            super::params::check_policy_param(conn, account, &place, &pr.parameter, value),
        );
        if !seen_policies.insert((pr.scope.as_str(), pr.parameter.as_str())) {
            p.push(FieldError::new(
                &pr.at,
                format!("{} on {} is listed twice", pr.parameter, pr.scope),
            ));
        }
        let known = match &target {
            None | Some(Target::Account) => true,
            Some(Target::Site(n)) => site_known(n)?,
            Some(Target::Group(n)) => group_known(n)?,
            Some(Target::Device(m)) => {
                macs.contains_key(m)
                    || devices::find_device_by_mac(conn, m)?
                        .is_some_and(|d| d.account_id == account.id.0 && d.is_associated())
            }
        };
        if !known {
            p.push(FieldError::new(
                format!("{}.scope", pr.at),
                format!("`{}` names nothing in this account or file", pr.scope),
            ));
        }
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

/// The device input of a record; secrets missing from the file come from `stored`.
fn device_input(d: &DeviceRec, stored: Option<&crate::domain::device::Device>) -> DeviceInput {
    DeviceInput {
        mac: d.mac.clone(),
        serial: d.serial.clone(),
        vendor_model: d.vendor_model.clone(),
        profile: d.profile.clone(),
        ext: VendorExtensions {
            sip_server: d.sip_server.clone(),
            outbound_proxy: d.outbound_proxy.clone(),
            prov_server: d.prov_server.clone(),
            prov_user: d.prov_user.clone(),
            prov_password: d
                .prov_password
                .clone()
                .or_else(|| stored.map(|s| s.ext.prov_password.clone()))
                .unwrap_or_default(),
            polling: d.polling.clone(),
        },
        line1: Line::default(),
    }
}

/// Imports an export into `account`: checks everything, then writes in one transaction
/// (nothing when `dry_run`, nor when anything is wrong), with one audit entry. A sealed
/// export is opened first (`seal::open`).
pub fn import(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    e: &Export,
    dry_run: bool,
) -> Result<ImportReport> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut report = ImportReport {
        dry_run,
        ..Default::default()
    };
    import_in(&tx, actor, account, e, &mut report)?;
    if dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(report)
}

/// Imports one account's export inside the caller's transaction, adding to `report`. On an
/// error the caller drops the transaction: nothing is written.
fn import_in(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    account: &Account,
    e: &Export,
    report: &mut ImportReport,
) -> Result<()> {
    if e.sealed.is_some() {
        return Err(Error::invalid(
            "sealed",
            "the file's secrets are sealed: give the passphrase they were exported with",
        ));
    }
    let mut p = Vec::new();
    check_format(&e.format, e.version, &mut p);
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    // Variables, deliberate names and profiles first: the devices and policies are checked
    // against them. All of it is in the transaction, so a bad device still writes nothing.
    let (vars, created, updated, kept) = profiles_rec::apply(
        tx,
        account,
        &e.custom_variables,
        &e.deliberate,
        &e.profiles,
        &actor.name,
    )?;
    report.variables_set += vars;
    report.profiles_created += created;
    report.profiles_updated += updated;
    report.secrets_kept += kept;
    check(tx, account, e)?;
    if let Some(s) = &e.settings {
        profiles_rec::import_settings(tx, account, s)?;
    }
    let tx: &Connection = tx;
    let aid = account.id.0;
    for s in &e.sites {
        match policies::find_site(tx, aid, &s.name)? {
            Some(old) => {
                if old.description != s.description {
                    policies::update_site(tx, old.id, &s.description)?;
                    report.sites_updated += 1;
                }
            }
            None => {
                policies::insert_site(tx, aid, &s.name, &s.description)?;
                report.sites_created += 1;
            }
        }
    }
    for g in &e.groups {
        match policies::find_group(tx, aid, &g.name)? {
            Some(old) => {
                if (old.priority, &old.description) != (g.priority, &g.description) {
                    policies::update_group(tx, old.id, g.priority, &g.description)?;
                    report.groups_updated += 1;
                }
            }
            None => {
                policies::insert_group(tx, aid, &g.name, g.priority, &g.description)?;
                report.groups_created += 1;
            }
        }
    }
    // The account as this import left it (it may have set secret withholding).
    let account_now =
        crate::db::accounts::find_by_id(tx, account.id)?.unwrap_or_else(|| account.clone());
    for d in &e.devices {
        let mac = Mac::parse_lenient(&d.mac)
            .ok_or_else(|| Error::invalid(format!("{}.mac", d.at), "not a MAC address"))?;
        let stored = devices::find_device_by_mac(tx, &mac)?;
        let new = device_input(d, stored.as_ref()).validate()?;
        let profile = profiles::find_profile_by_name(tx, aid, new.profile.as_str())?
            .ok_or_else(|| Error::invalid(format!("{}.profile", d.at), "no such profile"))?;
        if d.prov_password.is_none()
            && stored
                .as_ref()
                .is_some_and(|s| !s.ext.prov_password.is_empty())
        {
            report.secrets_kept += 1;
        }
        let (id, created) = match stored.as_ref().filter(|s| s.is_associated()) {
            Some(s) => {
                devices::update_device(tx, s.id, &new, profile.id)?;
                report.devices_updated += 1;
                (s.id, false)
            }
            None => {
                report.devices_created += 1;
                (
                    devices::insert_device(tx, aid, &new, profile.id, false)?,
                    true,
                )
            }
        };
        let lines: Vec<Line> = d
            .lines
            .iter()
            .map(|l| {
                let kept = stored
                    .as_ref()
                    .and_then(|s| s.lines.iter().find(|x| x.line == l.line))
                    .map(|x| x.auth_password.clone());
                if l.auth_password.is_none() && kept.as_ref().is_some_and(|k| !k.is_empty()) {
                    report.secrets_kept += 1;
                }
                Line {
                    line: l.line,
                    auth_user_id: l.auth_user_id.clone(),
                    auth_password: l.auth_password.clone().or(kept).unwrap_or_default(),
                    label: l.label.clone(),
                    display_name: l.display_name.clone(),
                    extension: l.extension.clone(),
                    first_name: l.first_name.clone(),
                    last_name: l.last_name.clone(),
                }
            })
            .collect();
        devices::replace_lines(tx, id, &lines)?;
        match &d.vars {
            Some(v) => devices::upsert_device_vars(
                tx,
                id,
                &crate::domain::devicevars::validate_device_vars(&v.to_vars())?,
            )?,
            // From version 2 on, a device without template values has none.
            None if e.version >= 2 => devices::upsert_device_vars(tx, id, &DeviceVars::default())?,
            None => {}
        }
        if let Some(en) = &d.enrolment {
            let now = crate::db::now_secs();
            match en.password.as_deref().filter(|p| !p.is_empty()) {
                Some(pw) => {
                    use crate::db::enrolment as enrol;
                    let current = enrol::find_device_credential(tx, id)?;
                    if current.as_ref().map(|c| c.password.as_str()) != Some(pw) {
                        enrol::store_device_credential(tx, id, pw, false, now)?;
                    }
                    if en.confirmed {
                        enrol::confirm_device_credential(tx, id, now)?;
                    } else if en.enrolled {
                        enrol::note_enrolled(tx, id, now)?;
                    }
                }
                None => report.secrets_kept += 1,
            }
        }
        // A device this import associates gets the window any association opens: until it
        // enrols its own credential (without one it would never be served a secret). A device
        // associated before keeps the windows it has.
        if created {
            super::enrolment::open_until_enrolled(tx, &account_now, &mac, &actor.name)?;
        }
        let site = match &d.site {
            Some(n) => policies::find_site(tx, aid, n)?.map(|s| s.id),
            None => None,
        };
        policies::set_device_site(tx, id, site)?;
        let wanted: BTreeSet<i64> = d
            .groups
            .iter()
            .map(|n| policies::find_group(tx, aid, n).map(|g| g.map(|g| g.id)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for g in policies::device_groups(tx, id)? {
            if !wanted.contains(&g.id) {
                policies::remove_member(tx, g.id, id)?;
            }
        }
        for g in wanted {
            policies::add_member(tx, g, id)?;
        }
    }
    for pr in &e.policies {
        let Some(value) = &pr.value else {
            report.secrets_kept += 1;
            continue;
        };
        let target = Target::parse(&pr.scope)?;
        let (kind, id) = crate::actions::policy::resolve(tx, account, &target)?;
        let before = policies::upsert_policy(tx, aid, kind, id, &pr.parameter, value)?;
        if before.as_deref() != Some(value.as_str()) {
            report.policies_set += 1;
        }
    }
    crate::db::audit::record(
        tx,
        actor,
        Change::new(Some(aid), "import", account.slug.clone()).after(json!({
            "report": report, "secrets_included": e.secrets_included,
            "devices": e.devices.len(), "policies": e.policies.len(),
            "profiles": e.profiles.len(),
        })),
    )?;
    Ok(())
}

/// Parses a file in the given format.
pub fn parse(format: Format, text: &str) -> Result<Export> {
    match format {
        Format::Json => parse_json(text),
        Format::Csv => parse_csv(text),
    }
}

/// Serializes an export in the given format. Secrets leave only sealed, and only in JSON.
pub fn write(format: Format, e: &Export) -> Result<String> {
    if e.secrets_included && e.sealed.is_none() {
        return Err(Error::invalid(
            "secrets",
            "secrets leave only sealed with a passphrase",
        ));
    }
    match format {
        Format::Json => to_json(e),
        Format::Csv if e.secrets_included => Err(Error::invalid(
            "format",
            "secrets travel only in the JSON archive; export them with --format json",
        )),
        Format::Csv => to_csv(e),
    }
}

mod csv;
mod definitions;
pub mod installation;
pub mod seal;
pub use self::csv::{parse_csv, to_csv};
use self::definitions as profiles_rec;
pub use self::definitions::{DeliberateRec, FileRec, ProfileRec, SettingsRec, VariableRec};
pub use self::seal::Sealing;

#[cfg(test)]
mod tests;
