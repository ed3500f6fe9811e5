//! Commands for provisioning settings, custom variables, device template values and lines,
//! the preview and External mode's generation: `settings show|set`, `variable
//! list|set|delete`, `device set-vars|set-line|delete-line`, `preview`, `export`. Each calls
//! `actions::templating` (the actions the console and the API call too).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use argh::FromArgs;

use super::open;
use crate::actions::templating::{self, DeviceVarsChange, MASK};
use crate::domain::device::Line;
use crate::domain::mac::Mac;
use crate::domain::provstate::Reach;
use crate::domain::settings::{FIELDS, Mode, ProvSettings, TransportKind};
use crate::external;

/// The note shown wherever External mode is on (docs/design.md §9: say so).
pub fn external_note(s: &ProvSettings, dir: &std::path::Path) -> String {
    format!(
        "External mode: configuration files are generated to {}/<model>/ for the DMS at \
         {}://{}{}; phones download them from the DMS, so device requests, the access log and \
         Auto-Sync do not apply to them.",
        dir.display(),
        s.external_protocol,
        s.external_server,
        s.external_path
    )
}

/// show and change the provisioning settings (servers, protocols, credentials, Local or
/// External mode, file transport)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "settings")]
pub struct SettingsCmd {
    #[argh(subcommand)]
    pub action: SettingsAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum SettingsAction {
    Show(SettingsShow),
    Set(SettingsSet),
}

/// show every provisioning setting (secrets masked)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct SettingsShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// also print passwords and the S3 secret key
    #[argh(switch)]
    pub secrets: bool,
}

/// change provisioning settings: FIELD=VALUE ... (all checked together; nothing is saved
/// unless every one is valid; with the S3 transport the bucket is checked first)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set")]
pub struct SettingsSet {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// also read FIELD=VALUE lines from standard input (for secrets: command lines are
    /// visible to other users)
    #[argh(switch)]
    pub stdin: bool,
    /// FIELD=VALUE pairs (an empty VALUE restores the default)
    #[argh(positional)]
    pub pairs: Vec<String>,
}

/// manage custom template variables (${NAME} in every profile file)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "variable")]
pub struct VariableCmd {
    #[argh(subcommand)]
    pub action: VariableAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum VariableAction {
    List(VariableList),
    Set(VariableSet),
    Delete(VariableDelete),
}

/// list custom variables
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct VariableList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// create or change a custom variable (NAME: upper-case letters, digits, _)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set")]
pub struct VariableSet {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// variable name, e.g. SYSLOG_SERVER
    #[argh(positional)]
    pub name: String,
    /// its value
    #[argh(positional)]
    pub value: String,
}

/// delete a custom variable (refused while a profile file uses it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct VariableDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// variable name
    #[argh(positional)]
    pub name: String,
}

/// set a device's template values (an empty value clears one)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set-vars")]
pub struct DeviceSetVars {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// device description (${LABEL})
    #[argh(option)]
    pub label: Option<String>,
    /// time zone value (${TL_TIMEZONE})
    #[argh(option)]
    pub timezone: Option<String>,
    /// time zone display name (${TL_TIMEZONE_NAME})
    #[argh(option)]
    pub timezone_name: Option<String>,
    /// default call park extension (${DEFAULT_PARKEXT})
    #[argh(option)]
    pub park_ext: Option<String>,
    /// name="value" attributes inserted as written by ${OVERRIDE}
    #[argh(option, long = "override")]
    pub override_attrs: Option<String>,
}

/// create or change a SIP line of a device (fields not given keep their value)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set-line")]
pub struct DeviceSetLine {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// line number (1-64)
    #[argh(option)]
    pub line: u32,
    /// SIP authentication user ID (${USERID})
    #[argh(option)]
    pub sip_user: Option<String>,
    /// SIP password (${PASSWORD}); prefer --sip-password-stdin
    #[argh(option)]
    pub sip_password: Option<String>,
    /// read the SIP password from the first line of standard input
    #[argh(switch)]
    pub sip_password_stdin: bool,
    /// line label (${LINE_LABEL})
    #[argh(option)]
    pub label: Option<String>,
    /// caller ID display name (${DISPLAY_NAME})
    #[argh(option)]
    pub display_name: Option<String>,
    /// extension (${EXTENSION}; default: the SIP user ID)
    #[argh(option)]
    pub extension: Option<String>,
    /// first name (${FIRST_NAME})
    #[argh(option)]
    pub first_name: Option<String>,
    /// last name (${LAST_NAME})
    #[argh(option)]
    pub last_name: Option<String>,
}

/// remove a SIP line of a device
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete-line")]
pub struct DeviceDeleteLine {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// line number
    #[argh(option)]
    pub line: u32,
}

/// show each profile file rendered for a device, with the value and source of every
/// variable it uses (secrets masked)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "preview")]
pub struct Preview {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// host (and port) the phone uses to reach the server (Local mode)
    #[argh(option, default = "String::from(\"zerotouch\")")]
    pub host: String,
    /// as the phone would get it over HTTPS (Local mode, protocol auto)
    #[argh(switch)]
    pub https: bool,
    /// show secrets
    #[argh(switch)]
    pub secrets: bool,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// External mode: generate every device's files now and push changed ones through the
/// file transport (the server does this by itself after every change)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "generate")]
pub struct Export {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// push every device, changed or not
    #[argh(switch)]
    pub all: bool,
    /// only generate; push nothing
    #[argh(switch)]
    pub no_push: bool,
}

fn upload_timeout(config: &crate::config::Config) -> Duration {
    Duration::from_secs(config.external.upload_timeout_secs)
}

pub fn settings(action: SettingsAction) -> anyhow::Result<()> {
    match action {
        SettingsAction::Show(s) => {
            let (config, conn, _) = open(s.config.as_deref())?;
            let settings = templating::load_settings(&conn)?;
            show(&settings, s.secrets, &config.external_dir());
        }
        SettingsAction::Set(s) => {
            let mut pairs = s.pairs.clone();
            if s.stdin {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                pairs.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(String::from),
                );
            }
            if pairs.is_empty() {
                bail!("give FIELD=VALUE pairs (`zerotouch settings show` lists the fields)");
            }
            let mut changes = Vec::new();
            for pair in &pairs {
                let Some((k, v)) = pair.split_once('=') else {
                    bail!(
                        "`{}` is not FIELD=VALUE",
                        pair.split(' ').next().unwrap_or("")
                    );
                };
                changes.push((k.trim().to_string(), v.to_string()));
            }
            let (config, mut conn, _) = open(s.config.as_deref())?;
            let timeout = Duration::from_secs(config.external.check_timeout_secs);
            let check = |s: &ProvSettings| external::check_settings(s, timeout);
            let new =
                templating::update_settings(&mut conn, &crate::cli::os_user(), &changes, &check)?;
            let names: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
            println!("provisioning settings saved: {}", names.join(", "));
            if new.transport == TransportKind::S3 {
                println!(
                    "S3: bucket `{}` at {} answered",
                    new.s3_bucket, new.s3_endpoint
                );
            }
            if new.is_external() {
                println!("{}", external_note(&new, &config.external_dir()));
            } else if new.transport != TransportKind::None {
                println!(
                    "note: the {} transport applies in External mode only (mode is local)",
                    new.transport.as_str()
                );
            }
        }
    }
    Ok(())
}

fn show(s: &ProvSettings, secrets: bool, dir: &std::path::Path) {
    let default = ProvSettings::default();
    for f in FIELDS {
        let value = s.display(f.name, secrets);
        let marker = if s.get(f.name) == default.get(f.name) {
            "  (default)"
        } else {
            ""
        };
        println!("{:<26} {:<32}{marker}", f.name, format!("{value}"));
    }
    println!();
    match s.mode {
        Mode::External => println!("{}", external_note(s, dir)),
        Mode::Local => println!(
            "Local mode: zerotouch serves phones itself; the file transport does not apply."
        ),
    }
}

pub fn variable(action: VariableAction) -> anyhow::Result<()> {
    match action {
        VariableAction::List(l) => {
            let (_c, conn, _) = open(l.config.as_deref())?;
            let vars = crate::db::templates::list_custom_variables(&conn)?;
            println!("{:<32} VALUE", "NAME");
            for (name, value) in vars {
                let shown = if crate::domain::template::is_secret_name(&name) && !value.is_empty() {
                    MASK.to_string()
                } else {
                    value
                };
                println!("{name:<32} {shown}");
            }
        }
        VariableAction::Set(s) => {
            let (_c, mut conn, _) = open(s.config.as_deref())?;
            templating::set_custom_variable(&mut conn, &crate::cli::os_user(), &s.name, &s.value)?;
            println!("custom variable {} set", s.name);
        }
        VariableAction::Delete(d) => {
            let (_c, mut conn, _) = open(d.config.as_deref())?;
            templating::delete_custom_variable(&mut conn, &crate::cli::os_user(), &d.name)?;
            println!("custom variable {} deleted", d.name);
        }
    }
    Ok(())
}

pub fn set_vars(a: DeviceSetVars) -> anyhow::Result<()> {
    let (_c, mut conn, _) = open(a.config.as_deref())?;
    let mac: Mac = a.mac.parse()?;
    if a.account.is_some() {
        super::devices::account_of(&conn, &mac, a.account.as_deref())?;
    }
    let change = DeviceVarsChange {
        label: a.label,
        tl_timezone: a.timezone,
        tl_timezone_name: a.timezone_name,
        default_parkext: a.park_ext,
        override_attrs: a.override_attrs,
    };
    let v = templating::set_device_vars(&mut conn, &crate::cli::os_user(), &mac, &change)?;
    println!("device {mac}: template values saved");
    for (k, val) in [
        ("label", &v.label),
        ("timezone", &v.tl_timezone),
        ("timezone name", &v.tl_timezone_name),
        ("park extension", &v.default_parkext),
    ] {
        if !val.is_empty() {
            println!("  {k:<15} {val}");
        }
    }
    if !v.override_attrs.is_empty() {
        println!(
            "  {:<15} {} attribute(s)",
            "override",
            v.override_attrs.matches('=').count()
        );
    }
    Ok(())
}

pub fn set_line(a: DeviceSetLine) -> anyhow::Result<()> {
    let password = match (a.sip_password, a.sip_password_stdin) {
        (Some(_), true) => bail!("give at most one of --sip-password and --sip-password-stdin"),
        (Some(p), false) => Some(crate::cli::Secrets::new().read("sip-password", p)?),
        (None, false) => None,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Some(text.lines().next().unwrap_or("").to_string())
        }
    };
    let (config, mut conn, _) = open(a.config.as_deref())?;
    let mac: Mac = a.mac.parse()?;
    if a.account.is_some() {
        super::devices::account_of(&conn, &mac, a.account.as_deref())?;
    }
    let device = crate::db::devices::find_device_by_mac(&conn, &mac)?
        .with_context(|| format!("no device {mac}"))?;
    let mut line = device
        .lines
        .iter()
        .find(|l| l.line == a.line)
        .cloned()
        .unwrap_or(Line {
            line: a.line,
            ..Default::default()
        });
    let set = |field: &mut String, v: Option<String>| {
        if let Some(v) = v {
            *field = v.trim().to_string();
        }
    };
    set(&mut line.auth_user_id, a.sip_user);
    set(&mut line.auth_password, password);
    set(&mut line.label, a.label);
    set(&mut line.display_name, a.display_name);
    set(&mut line.extension, a.extension);
    set(&mut line.first_name, a.first_name);
    set(&mut line.last_name, a.last_name);
    templating::set_device_line(&mut conn, &crate::cli::os_user(), &mac, &line)?;
    println!("device {mac}: line {} saved", line.line);
    line_after_change(&config, &conn, &device)
}

pub fn delete_line(a: DeviceDeleteLine) -> anyhow::Result<()> {
    let (config, mut conn, _) = open(a.config.as_deref())?;
    let mac: Mac = a.mac.parse()?;
    if a.account.is_some() {
        super::devices::account_of(&conn, &mac, a.account.as_deref())?;
    }
    let device = crate::db::devices::find_device_by_mac(&conn, &mac)?
        .with_context(|| format!("no device {mac}"))?;
    templating::delete_device_line(&mut conn, &crate::cli::os_user(), &mac, a.line)?;
    println!("device {mac}: line {} removed", a.line);
    line_after_change(&config, &conn, &device)
}

/// A line change reaches an associated phone now when its account says so, as the
/// console's and the API's do.
fn line_after_change(
    config: &crate::config::Config,
    conn: &rusqlite::Connection,
    device: &crate::domain::device::Device,
) -> anyhow::Result<()> {
    if device.profile_id.is_none() {
        return Ok(());
    }
    let Some(acc) = crate::db::accounts::find_by_id(
        conn,
        crate::domain::account::AccountId(device.account_id),
    )?
    else {
        return Ok(());
    };
    super::policy::apply_macs_after_change(config, conn, &acc, vec![device.mac.to_string()])
}

pub fn preview(p: Preview) -> anyhow::Result<()> {
    let (config, conn, default) = open(p.config.as_deref())?;
    let mac: Mac = p.mac.parse()?;
    // The device's own account: its service address is what its phone uses.
    let acc = super::devices::account_or(&conn, &mac, p.account.as_deref(), default)?;
    let reach = Reach {
        host: p.host.clone(),
        base_path: if acc.is_default {
            "/".into()
        } else {
            acc.service_path()
        },
        secure: p.https,
    };
    let preview = templating::preview_device(&conn, &mac, &reach, p.secrets)?;
    if p.json {
        println!("{}", serde_json::to_string_pretty(&preview)?);
        return Ok(());
    }
    println!(
        "device {} ({} mode{})",
        preview.mac,
        preview.mode,
        if preview.model.is_empty() {
            String::new()
        } else {
            format!(", model {}", preview.model)
        }
    );
    if preview.mode == "external" {
        let settings = templating::load_settings(&conn)?;
        println!("{}", external_note(&settings, &config.external_dir()));
        println!(
            "files: {}/{}/",
            config.external_dir().display(),
            preview.segment
        );
    }
    if preview.files.is_empty() {
        println!("the profile has no configuration files");
    }
    for f in &preview.files {
        println!();
        println!("==> {} (profile file {}) <==", f.name, f.profile_file);
        print!("{}", f.text);
        if !f.text.ends_with('\n') {
            println!();
        }
        if !f.well_formed {
            println!("WARNING: the rendered file is not well-formed XML");
        }
        if f.vars.is_empty() {
            println!("-- no variables");
            continue;
        }
        println!("-- variables:");
        println!(
            "   {:<22} {:<6} {:<8} {:<32} SOURCE",
            "VARIABLE", "LINES", "DEVICE", "VALUE"
        );
        for v in &f.vars {
            let lines: Vec<String> = v.template_lines.iter().map(u32::to_string).collect();
            println!(
                "   {:<22} {:<6} {:<8} {:<32} {}",
                format!("${{{}}}", v.name),
                lines.join(","),
                v.device_line
                    .map(|n| format!("line {n}"))
                    .unwrap_or_default(),
                v.value,
                v.source
            );
        }
    }
    Ok(())
}

pub fn export(e: Export) -> anyhow::Result<std::process::ExitCode> {
    let (config, conn, _) = open(e.config.as_deref())?;
    let ctx = templating::load_context(&conn)?;
    if !ctx.settings.is_external() {
        bail!(
            "the provisioning settings are in Local mode: zerotouch serves phones itself and \
             generates no files (zerotouch settings set mode=external ...)"
        );
    }
    let dir = config.external_dir();
    let generated = external::generate_all(&conn, &dir, &ctx)?;
    println!("{}", external_note(&ctx.settings, &dir));
    let changed = generated.iter().filter(|g| g.changed).count();
    println!(
        "{} device(s): {changed} with new or changed files",
        generated.len()
    );
    let mut failed = 0;
    if !e.no_push && ctx.settings.transport != TransportKind::None {
        let timeout = upload_timeout(&config);
        for g in generated.iter().filter(|g| g.changed || e.all) {
            let o = external::push(&ctx.settings, &g.job, timeout);
            println!(
                "{} {}: {}",
                g.job.mac,
                if o.ok { "pushed" } else { "FAILED" },
                o.summary
            );
            if !o.ok {
                failed += 1;
            }
        }
        if ctx.settings.transport == TransportKind::S3 {
            let target = external::s3::S3Target::new(&ctx.settings, timeout)?;
            match target.sync_assets(&config.data_dir, &dir.join(external::s3::MANIFEST)) {
                Ok((n, same)) => {
                    println!("shared assets and firmware: {n} uploaded, {same} unchanged")
                }
                Err(err) => {
                    println!("shared assets and firmware: FAILED: {err}");
                    failed += 1;
                }
            }
        }
    }
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
