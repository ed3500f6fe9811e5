//! The command line. Each command turns its arguments into validated inputs and calls the
//! same domain operations the admin UI and the API call; output is plain text a person can
//! read (and `--json` where a script wants it).

mod console;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use argh::FromArgs;

use crate::config::Config;
use crate::db::{self, devices, profiles};
use crate::domain::account::Account;
use crate::domain::audit::Actor;
use crate::domain::device::{DeviceInput, Line, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::ops::{self, OwnAddresses};
use crate::domain::profile::{Polling, ProfileFields};
use crate::domain::provisioning::mask;
use crate::domain::provstate::Reach;

mod accounts;
mod assets;
mod autosync;
mod diag;
mod enrol;
mod firmware;
mod inventory;
mod overrides;
mod policy;
mod templates;
mod tls;
mod transfer;

/// zerotouch: on-premise provisioning server for Polycom/Poly phones.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(Serve),
    CheckConfig(CheckConfig),
    Account(accounts::AccountCmd),
    Autosync(autosync::AutosyncCmd),
    Profile(ProfileCmd),
    Device(DeviceCmd),
    Site(policy::SiteCmd),
    Group(policy::GroupCmd),
    Policy(policy::PolicyCmd),
    Inventory(inventory::InventoryCmd),
    Audit(inventory::AuditCmd),
    Transfer(transfer::TransferCmd),
    Render(Render),
    Preview(templates::Preview),
    Settings(templates::SettingsCmd),
    Variable(templates::VariableCmd),
    Generate(templates::Export),
    Migrate(Migrate),
    User(console::UserCmd),
    Import(console::Import),
    Find(console::Find),
    Export(console::Export),
    Diagnose(diag::DiagnoseCmd),
    Lint(diag::LintCmd),
    Tls(tls::TlsCmd),
    Firmware(firmware::FirmwareCmd),
    Assets(assets::AssetsCmd),
    Overrides(overrides::OverridesCmd),
    Enrol(enrol::EnrolCmd),
    Secrets(enrol::SecretsCmd),
    Backup(Backup),
    Restore(Restore),
}

/// write a complete backup (database, TLS keys, secrets key, uploads, assets, firmware)
/// while the server runs
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct Backup {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the archive to write (.tar.gz)
    #[argh(positional)]
    pub file: PathBuf,
}

/// restore a backup (the server must be stopped); what it replaces is kept aside
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restore")]
pub struct Restore {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the archive to restore
    #[argh(positional)]
    pub file: PathBuf,
}

/// run the server (embedded default configuration unless --config is given)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// log at debug level
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// check a configuration file and report every problem with its key path
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-config")]
pub struct CheckConfig {
    /// the file to check
    #[argh(positional)]
    pub file: PathBuf,
}

/// apply pending database migrations and exit
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "migrate")]
pub struct Migrate {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// manage profiles
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "profile")]
pub struct ProfileCmd {
    #[argh(subcommand)]
    pub action: ProfileAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ProfileAction {
    Add(ProfileAdd),
    List(ProfileList),
    Show(ProfileShow),
    Delete(ProfileDelete),
}

/// create a profile
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct ProfileAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name (2-50 letters, digits, _ and .)
    #[argh(positional)]
    pub name: String,
    /// a configuration file (repeat for several, in CONFIG_FILES order)
    #[argh(option)]
    pub file: Vec<PathBuf>,
    /// vendor model: Polycom_UCS_Device (default) or "Polycom Video Endpoint"
    #[argh(option, default = "String::from(\"Polycom_UCS_Device\")")]
    pub vendor_model: String,
    /// provisioning server address (may embed user:pass@ and a port)
    #[argh(option, default = "String::new()")]
    pub prov_server: String,
    /// provisioning server user
    #[argh(option, default = "String::new()")]
    pub prov_user: String,
    /// provisioning server password
    #[argh(option, default = "String::new()")]
    pub prov_password: String,
    /// polling: none (default), enable or disable
    #[argh(option, default = "String::from(\"none\")")]
    pub polling: String,
    /// boot server DHCP option: Default, Custom, Static or CustomAndDefault
    #[argh(option, default = "String::new()")]
    pub boot_server_option: String,
    /// DHCP option 60 type: ASCII or Binary
    #[argh(option, default = "String::new()")]
    pub option60_type: String,
    /// quick setup: enable or disable
    #[argh(option, default = "String::new()")]
    pub quick_setup: String,
    /// language, e.g. English_United_States
    #[argh(option, default = "String::new()")]
    pub language: String,
    /// software version per model family, e.g. VVX=5.9.8.1234 (repeatable)
    #[argh(option)]
    pub software: Vec<String>,
}

/// list profiles
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ProfileList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// show a profile
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ProfileShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name
    #[argh(positional)]
    pub name: String,
}

/// delete a profile (refused while devices use it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct ProfileDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name
    #[argh(positional)]
    pub name: String,
}

/// manage devices (associations)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "device")]
pub struct DeviceCmd {
    #[argh(subcommand)]
    pub action: DeviceAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DeviceAction {
    Add(DeviceAdd),
    List(DeviceList),
    Show(DeviceShow),
    Delete(DeviceDelete),
    SetVars(templates::DeviceSetVars),
    SetLine(templates::DeviceSetLine),
    DeleteLine(templates::DeviceDeleteLine),
    Confirm(DeviceConfirm),
}

/// confirm a device the default-profile policy associated automatically (Auto-Sync then
/// applies to it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "confirm")]
pub struct DeviceConfirm {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
}

/// associate a device (MAC) with a profile
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct DeviceAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// MAC address (12 hex digits)
    #[argh(positional)]
    pub mac: String,
    /// profile name
    #[argh(option)]
    pub profile: String,
    /// serial number (default: the MAC in upper case)
    #[argh(option, default = "String::new()")]
    pub serial: String,
    /// vendor model (default Polycom_UCS_Device)
    #[argh(option, default = "String::new()")]
    pub vendor_model: String,
    /// SIP server address (vendor extension)
    #[argh(option, default = "String::new()")]
    pub sip_server: String,
    /// outbound proxy address (vendor extension)
    #[argh(option, default = "String::new()")]
    pub outbound_proxy: String,
    /// provisioning server address (vendor extension)
    #[argh(option, default = "String::new()")]
    pub prov_server: String,
    /// provisioning server user (vendor extension)
    #[argh(option, default = "String::new()")]
    pub prov_user: String,
    /// provisioning server password (vendor extension)
    #[argh(option, default = "String::new()")]
    pub prov_password: String,
    /// provisioning polling: 1, 0 or empty (vendor extension)
    #[argh(option, default = "String::new()")]
    pub polling: String,
    /// SIP authentication user ID of line 1
    #[argh(option, default = "String::new()")]
    pub sip_user: String,
    /// SIP authentication password of line 1
    #[argh(option, default = "String::new()")]
    pub sip_password: String,
    /// line label of line 1
    #[argh(option, default = "String::new()")]
    pub line_label: String,
    /// SIP display name of line 1
    #[argh(option, default = "String::new()")]
    pub display_name: String,
}

/// list devices
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct DeviceList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// only phones seen but not associated
    #[argh(switch)]
    pub unassociated: bool,
}

/// show a device, its activity and its last requests
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct DeviceShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
}

/// delete a device and what was recorded about it
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct DeviceDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
}

/// print the files a device would receive
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "render")]
pub struct Render {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// host (and port) the phone uses to reach the server, as in its Host header
    #[argh(option, default = "String::from(\"zerotouch\")")]
    pub host: String,
    /// only this file (e.g. 0004f2aabbcc-device.cfg)
    #[argh(option)]
    pub file: Option<String>,
    /// list every parameter the device gets with its value (secrets masked) and source
    #[argh(switch)]
    pub explain: bool,
    /// with --explain: print JSON
    #[argh(switch)]
    pub json: bool,
}

/// Runs a command and returns the process exit code.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.version {
        println!("zerotouch {}", crate::VERSION);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = args.command else {
        bail!("no command given; try `zerotouch serve` or `zerotouch --help`");
    };
    match command {
        Command::Serve(s) => {
            let config = load_config(s.config.as_deref())?;
            init_logging(&config, s.verbose);
            crate::server::run(config)?;
        }
        Command::CheckConfig(c) => return check_config(&c.file),
        Command::Migrate(m) => {
            let config = load_config(m.config.as_deref())?;
            crate::server::prepare_data_dir(&config.data_dir)?;
            let _lock = crate::backup::lock_data_dir(&config.data_dir)?;
            if let Some(copy) = crate::backup::before_migration(&config)? {
                println!("copied the database to {} first", copy.display());
            }
            let mut conn = db::open(&config.database_path(), std::time::Duration::from_secs(5))?;
            let before = db::schema_version(&conn)?;
            let n = db::migrate(&mut conn)?;
            println!(
                "schema version {before} -> {} ({n} migration(s) applied)",
                db::schema_version(&conn)?
            );
        }
        Command::Account(a) => accounts::account(a.action)?,
        Command::Autosync(a) => autosync::autosync(a.action)?,
        Command::Profile(p) => profile(p.action)?,
        Command::Device(d) => device(d.action)?,
        Command::Site(c) => policy::site(c.action)?,
        Command::Group(c) => policy::group(c.action)?,
        Command::Policy(c) => policy::policy_cmd(c.action)?,
        Command::Inventory(c) => inventory::inventory_cmd(c)?,
        Command::Audit(c) => inventory::audit_cmd(c)?,
        Command::Transfer(c) => transfer::run(c)?,
        Command::Render(r) => render(r)?,
        Command::Preview(p) => templates::preview(p)?,
        Command::Settings(s) => templates::settings(s.action)?,
        Command::Variable(v) => templates::variable(v.action)?,
        Command::Generate(e) => return templates::export(e),
        Command::Backup(b) => {
            let config = load_config(b.config.as_deref())?;
            let started = std::time::Instant::now();
            let report = crate::backup::backup(&config, &b.file)?;
            println!(
                "backup written to {}: {} files, {} bytes, {} devices, in {:.1} s",
                b.file.display(),
                report.files,
                report.bytes,
                report.devices,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Restore(r) => {
            let config = load_config(r.config.as_deref())?;
            let report = crate::backup::restore(&config, &r.file)?;
            println!(
                "restored {} files ({} bytes, {} devices) into {}",
                report.files,
                report.bytes,
                report.devices,
                config.data_dir.display()
            );
            if let Some(kept) = report.kept {
                println!("what was there before is kept in {}", kept.display());
            }
        }
        Command::Tls(t) => tls::run(t)?,
        Command::Firmware(f) => return firmware::run(f),
        Command::Assets(a) => assets::run(a)?,
        Command::Overrides(o) => overrides::run(o)?,
        Command::Enrol(e) => enrol::enrol(e.action)?,
        Command::Secrets(s) => enrol::secrets(s.action)?,
        Command::Diagnose(d) => return diag::diagnose(d.action),
        Command::Lint(l) => return diag::lint_cmd(l),
        Command::User(u) => console::user(u.action)?,
        Command::Import(i) => return console::import(i),
        Command::Find(f) => console::find(f)?,
        Command::Export(e) => console::export(e)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn init_logging(config: &Config, verbose: bool) {
    let level = if verbose {
        log::LevelFilter::Debug
    } else {
        config.log.level.parse().unwrap_or(log::LevelFilter::Info)
    };
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        cfg,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}

fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match Config::parse(&text) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                println!("{}: {}: {}", file.display(), p.field, p.message);
            }
            println!("{} problem(s)", problems.len());
            Ok(ExitCode::from(2))
        }
    }
}

/// Opens the database of the configuration, creating the default account if needed.
fn open(config: Option<&Path>) -> anyhow::Result<(Config, rusqlite::Connection, Account)> {
    open_account(config, None)
}

/// Opens the database and finds the account `--account` names (default: the default
/// account, created if needed).
fn open_account(
    config: Option<&Path>,
    account: Option<&str>,
) -> anyhow::Result<(Config, rusqlite::Connection, Account)> {
    let config = load_config(config)?;
    crate::server::prepare_data_dir(&config.data_dir)?;
    let mut conn = db::open(
        &config.database_path(),
        std::time::Duration::from_millis(config.database.busy_timeout_ms),
    )?;
    db::migrate(&mut conn)?;
    // Device secrets are sealed with the key file: every command reads and writes them
    // the way the server does.
    let key = crate::server::secrets_key(&config)?;
    let key = crate::server::finish_key_rotation(&config, &conn)?.unwrap_or(key);
    crate::db::secrets::install(&key);
    ops::default_account(&conn)?;
    let account = crate::domain::accounts::find_account(&conn, account)?;
    Ok((config, conn, account))
}

/// Turns a "needs confirmation" refusal into an error that says how to confirm.
fn confirmed<T>(result: crate::Result<T>) -> anyhow::Result<T> {
    result.map_err(|e| match e {
        crate::Error::NeedsConfirmation { message, .. } => {
            anyhow::anyhow!("{message}: run again with --yes")
        }
        other => other.into(),
    })
}

/// Prints a value as pretty JSON.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn profile(action: ProfileAction) -> anyhow::Result<()> {
    match action {
        ProfileAction::Add(a) => {
            let (config, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mut files = Vec::new();
            for path in &a.file {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, bytes));
            }
            let fields = ProfileFields {
                name: a.name.clone(),
                vendor_model: a.vendor_model,
                prov_server: a.prov_server,
                prov_user: a.prov_user,
                prov_password: a.prov_password,
                polling: Polling::parse(&a.polling)?,
                boot_server_option: a.boot_server_option,
                option60_type: a.option60_type,
                quick_setup: a.quick_setup,
                language: a.language,
                software: ops::parse_software(&a.software)?,
            };
            let transport = if config.device_http_addr().is_some() {
                crate::diag::lint::Transport::PlainHttp
            } else {
                crate::diag::lint::Transport::HttpsOnly
            };
            let (_, warnings) = ops::add_profile_checked(
                &mut conn,
                &Actor::os_user(),
                &acc,
                &fields,
                files,
                &OwnAddresses::from_config(&config),
                transport,
            )?;
            println!("profile `{}` created", a.name);
            for w in warnings {
                println!("lint: {w}");
            }
        }
        ProfileAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            let rows = profiles::list_profiles(&conn, acc.id.0)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<30} {:<24} {:>5} {:>8}",
                "NAME", "VENDOR MODEL", "FILES", "DEVICES"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<30} {:<24} {:>5} {:>8}",
                    r.name, r.vendor_model, r.files, r.devices
                )?;
            }
        }
        ProfileAction::Show(s) => {
            let (_c, conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let p = profiles::find_profile_by_name(&conn, acc.id.0, &s.name)?
                .with_context(|| format!("no profile named `{}`", s.name))?;
            let f = &p.fields;
            println!("name:               {}", f.name);
            println!("vendor model:       {}", f.vendor_model);
            println!("prov. server:       {}", f.prov_server);
            println!("prov. user:         {}", f.prov_user);
            println!(
                "prov. password:     {}",
                if f.prov_password.is_empty() {
                    ""
                } else {
                    "(set)"
                }
            );
            println!("polling:            {}", f.polling.as_str());
            println!("boot server option: {}", f.boot_server_option);
            println!("option 60 type:     {}", f.option60_type);
            println!("quick setup:        {}", f.quick_setup);
            println!("language:           {}", f.language);
            for (family, version) in &f.software {
                println!("software {family:<9} {version}");
            }
            for (i, file) in p.files.iter().enumerate() {
                println!(
                    "file {}:             {} ({} bytes, sha256 {})",
                    i + 1,
                    file.file_name,
                    file.content.len(),
                    &file.sha256[..16]
                );
            }
            println!(
                "devices:            {}",
                profiles::count_profile_devices(&conn, p.id)?
            );
        }
        ProfileAction::Delete(d) => {
            let (_c, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            ops::delete_profile(&mut conn, &Actor::os_user(), &acc, &d.name)?;
            println!("profile `{}` deleted", d.name);
        }
    }
    Ok(())
}

fn device(action: DeviceAction) -> anyhow::Result<()> {
    match action {
        DeviceAction::Add(a) => {
            let (config, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let input = DeviceInput {
                mac: a.mac.clone(),
                serial: a.serial,
                vendor_model: a.vendor_model,
                profile: a.profile,
                ext: VendorExtensions {
                    sip_server: a.sip_server,
                    outbound_proxy: a.outbound_proxy,
                    prov_server: a.prov_server,
                    prov_user: a.prov_user,
                    prov_password: a.prov_password,
                    polling: a.polling,
                },
                line1: Line {
                    line: 1,
                    auth_user_id: a.sip_user,
                    auth_password: a.sip_password,
                    label: a.line_label,
                    display_name: a.display_name,
                    ..Default::default()
                },
            };
            ops::add_device(
                &mut conn,
                &Actor::os_user(),
                &acc,
                &input,
                &OwnAddresses::from_config(&config),
            )?;
            println!("device {} associated", a.mac.to_ascii_lowercase());
        }
        DeviceAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            let rows = devices::list_devices(&conn, acc.id.0, l.unassociated)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<12}  {:<20} {:<14} {:<16} {:>6}  {:<20}",
                "MAC", "PROFILE", "MODEL", "FIRMWARE", "COUNT", "LAST ACCESS"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<12}  {:<20} {:<14} {:<16} {:>6}  {:<20}",
                    r.mac,
                    r.profile.as_deref().unwrap_or("(unassociated)"),
                    r.model,
                    r.firmware,
                    r.access_count,
                    r.last_seen.map(format_time).unwrap_or_else(|| "--".into())
                )?;
            }
        }
        DeviceAction::Show(s) => {
            let (_c, conn, _acc) = open(s.config.as_deref())?;
            let mac: Mac = s.mac.parse()?;
            let d = devices::find_device_by_mac(&conn, &mac)?
                .with_context(|| format!("no device {mac}"))?;
            println!("mac:           {}", d.mac);
            println!("serial:        {}", d.serial);
            println!("vendor model:  {}", d.vendor_model);
            println!(
                "profile:       {}",
                d.profile_name.as_deref().unwrap_or("(not associated)")
            );
            let e = &d.ext;
            for (k, v) in [
                ("sip server", &e.sip_server),
                ("outbound proxy", &e.outbound_proxy),
                ("prov. server", &e.prov_server),
                ("prov. user", &e.prov_user),
                ("polling", &e.polling),
            ] {
                if !v.is_empty() {
                    println!("{:<14} {v}", format!("{k}:"));
                }
            }
            for l in &d.lines {
                println!(
                    "line {}:        user {} label {} display name {} password {}",
                    l.line,
                    l.auth_user_id,
                    l.label,
                    l.display_name,
                    if l.auth_password.is_empty() {
                        "(none)"
                    } else {
                        "(set)"
                    }
                );
                if !(l.extension.is_empty() && l.first_name.is_empty() && l.last_name.is_empty()) {
                    println!(
                        "               extension {} name {} {}",
                        l.extension, l.first_name, l.last_name
                    );
                }
            }
            let v = &d.vars;
            for (k, val) in [
                ("label", &v.label),
                ("timezone", &v.tl_timezone),
                ("timezone name", &v.tl_timezone_name),
                ("park ext.", &v.default_parkext),
            ] {
                if !val.is_empty() {
                    println!("{:<14} {val}", format!("{k}:"));
                }
            }
            if !v.override_attrs.is_empty() {
                println!(
                    "override:      {} attribute(s) (zerotouch preview shows them)",
                    v.override_attrs.matches('=').count()
                );
            }
            match devices::find_activity(&conn, d.id)? {
                Some(a) => {
                    println!(
                        "last access:   {} from {}",
                        format_time(a.last_seen),
                        a.last_ip
                    );
                    println!("access count:  {}", a.access_count);
                    println!("model:         {} {}", a.ua_family, a.ua_model);
                    println!("firmware:      {}", a.firmware);
                    println!(
                        "last sync:     {}",
                        a.last_sync_at
                            .map(format_time)
                            .unwrap_or_else(|| "--".into())
                    );
                }
                None => println!("last access:   --"),
            }
            let log = db::access::list_access_for_mac(&conn, mac.as_str(), 20)?;
            if !log.is_empty() {
                println!("recent requests:");
                for r in log {
                    println!(
                        "  {}  {:<5} {:<45} {} {:>7}  {}",
                        format_time(r.ts_ms / 1000),
                        r.method,
                        r.path,
                        r.status,
                        r.bytes,
                        r.auth
                    );
                }
            }
        }
        DeviceAction::Delete(d) => {
            let (_c, mut conn, _acc) = open(d.config.as_deref())?;
            let mac: Mac = d.mac.parse()?;
            ops::delete_device(&mut conn, &Actor::os_user(), &mac)?;
            println!("device {mac} deleted");
        }
        DeviceAction::Confirm(c) => {
            let (_c, mut conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
            let mac: Mac = c.mac.parse()?;
            crate::domain::accounts::confirm_device(&mut conn, &Actor::os_user(), &acc, &mac)?;
            println!("device {mac} confirmed: Auto-Sync applies to it");
        }
        DeviceAction::SetVars(a) => templates::set_vars(a)?,
        DeviceAction::SetLine(a) => templates::set_line(a)?,
        DeviceAction::DeleteLine(a) => templates::delete_line(a)?,
    }
    Ok(())
}

fn render(r: Render) -> anyhow::Result<()> {
    let (config, conn, _default) = open(r.config.as_deref())?;
    let mac: Mac = r.mac.parse()?;
    let device =
        devices::find_device_by_mac(&conn, &mac)?.with_context(|| format!("no device {mac}"))?;
    let acc =
        db::accounts::find_by_id(&conn, crate::domain::account::AccountId(device.account_id))?
            .with_context(|| format!("the account of {mac} is gone"))?;
    let trust = crate::tls::phone_trust(&config, None);
    let reach = Reach {
        host: r.host.clone(),
        base_path: if acc.is_default {
            "/".into()
        } else {
            acc.service_path()
        },
        secure: false,
    };
    if r.explain {
        let mut params = ops::explain_device(&conn, &mac, &reach, trust.as_ref())?;
        for p in &mut params {
            p.value = if p.value.contains("BEGIN CERTIFICATE") {
                format!("(CA certificate, {} bytes)", p.value.len())
            } else {
                mask(&p.name, &p.value)
            };
        }
        if r.json {
            return print_json(&params);
        }
        println!("{:<40} {:<30} SOURCE", "PARAMETER", "VALUE");
        for p in params {
            let source = if p.detail.is_empty() {
                p.source.label().to_string()
            } else {
                format!("{} ({})", p.source.label(), p.detail)
            };
            println!("{:<40} {:<30} {source}", p.name, p.value);
        }
        return Ok(());
    }
    let files = ops::render_device(&conn, &mac, &reach, trust.as_ref())?;
    let mut out = std::io::stdout().lock();
    let mut found = false;
    for (name, bytes) in files {
        if r.file.as_deref().is_some_and(|f| f != name) {
            continue;
        }
        found = true;
        if r.file.is_none() {
            writeln!(out, "==> {name} <==")?;
        }
        out.write_all(&bytes)?;
        if r.file.is_none() && !bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
    }
    if !found {
        bail!(
            "device {mac} receives no file named `{}`",
            r.file.unwrap_or_default()
        );
    }
    Ok(())
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let s = httpdate::fmt_http_date(t);
    s.trim_end_matches(" GMT").to_string() + " UTC"
}
