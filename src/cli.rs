//! The command line: `Args` and the dispatch of every command, the helpers they share
//! (loading the configuration, opening the database and the account, acting as the
//! operator), and one module per command group. Each command turns its arguments into
//! validated inputs and calls the same actions the console and the API call; output is
//! plain text a person can read (and `--json` where a script wants it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use argh::FromArgs;

use crate::config::Config;
use crate::db;
use crate::domain::account::Account;
use crate::domain::audit::Actor;
use crate::domain::time::format_time;
use crate::privilege::Keep;

mod accounts;
mod applynow;
mod assets;
mod autosync;
mod console;
mod devices;
mod diag;
mod enrol;
mod firmware;
mod inventory;
mod migrate_tree;
mod overrides;
mod policy;
mod profiles;
mod render;
mod status;
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
    Profile(profiles::ProfileCmd),
    Device(devices::DeviceCmd),
    Site(policy::SiteCmd),
    Group(policy::GroupCmd),
    Policy(policy::PolicyCmd),
    Inventory(inventory::InventoryCmd),
    Status(status::StatusCmd),
    Audit(inventory::AuditCmd),
    Transfer(transfer::TransferCmd),
    Render(render::Render),
    Preview(templates::Preview),
    Settings(templates::SettingsCmd),
    Variable(templates::VariableCmd),
    Generate(templates::Export),
    Migrate(Migrate),
    MigrateTree(migrate_tree::MigrateTree),
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
    /// the archive to write (.tar.gz); without it, a new archive in `backup.dir` and the
    /// oldest there beyond `backup.keep` removed (what the daily timer runs)
    #[argh(positional)]
    pub file: Option<PathBuf>,
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
    /// go ahead although phones hold credentials the backup does not have
    #[argh(switch)]
    pub yes: bool,
}

/// run the server (configuration: --config, else $ZEROTOUCH_CONFIG, else
/// /etc/zerotouch/config.toml when it exists, else the embedded default)
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
            let (config, source, path) = find_config(s.config.as_deref())?;
            init_logging(&config, s.verbose);
            log::info!("configuration: {source}");
            crate::server::run(config, path, s.verbose)?;
        }
        Command::CheckConfig(c) => return check_config(&c.file),
        Command::Migrate(m) => {
            let config = load_config(m.config.as_deref())?;
            crate::privilege::adopt_data_dir_owner(&config.data_dir, Keep::Nothing)?;
            crate::datadir::prepare_data_dir(&config.data_dir)?;
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
            // What the migrations left in clear is sealed now, not at the next start.
            let key = crate::server::secrets_key(&config)?;
            let key = crate::server::finish_key_rotation(&config, &conn)?.unwrap_or(key);
            crate::db::secrets::install(&key);
            let sealed = crate::db::secrets::seal_plaintext(&mut conn)?;
            if sealed > 0 {
                println!("sealed {sealed} stored secret(s) with the secrets key");
            }
        }
        Command::Account(a) => accounts::account(a.action)?,
        Command::Autosync(a) => autosync::autosync(a.action)?,
        Command::Profile(p) => profiles::profile(p.action)?,
        Command::Device(d) => devices::device(d.action)?,
        Command::Site(c) => policy::site(c.action)?,
        Command::Group(c) => policy::group(c.action)?,
        Command::Policy(c) => policy::policy_cmd(c.action)?,
        Command::Inventory(c) => inventory::inventory_cmd(c)?,
        Command::Status(c) => status::run(c)?,
        Command::Audit(c) => inventory::audit_cmd(c)?,
        Command::Transfer(c) => transfer::run(c)?,
        Command::MigrateTree(c) => migrate_tree::run(c)?,
        Command::Render(r) => render::render(r)?,
        Command::Preview(p) => templates::preview(p)?,
        Command::Settings(s) => templates::settings(s.action)?,
        Command::Variable(v) => templates::variable(v.action)?,
        Command::Generate(e) => return templates::export(e),
        Command::Backup(b) => {
            let (config, path) = load_installed_as(b.config.as_deref(), Keep::SavedRoot)?;
            let started = std::time::Instant::now();
            let (report, file, removed) = match &b.file {
                Some(file) => (
                    crate::backup::backup(&config, file, path.as_deref())?,
                    file.clone(),
                    Vec::new(),
                ),
                None => crate::backup::scheduled(&config, path.as_deref())?,
            };
            println!(
                "backup written to {}: {} files, {} bytes, {} devices, in {:.1} s",
                file.display(),
                report.files,
                report.bytes,
                report.devices,
                started.elapsed().as_secs_f64()
            );
            for old in removed {
                println!(
                    "removed {} (backup.keep = {})",
                    old.display(),
                    config.backup.keep
                );
            }
        }
        Command::Restore(r) => {
            let (config, _, path) = find_config(r.config.as_deref())?;
            crate::privilege::adopt_data_dir_owner(&config.data_dir, Keep::SavedRoot)?;
            let report = crate::backup::restore(&config, &r.file, r.yes, path.as_deref())?;
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
            if let Some(other) = report.config_from_backup {
                println!(
                    "the backup's configuration differs from the one in use, which was left as \
                     it is; the backup's is in {} to compare",
                    other.display()
                );
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

/// The environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "ZEROTOUCH_CONFIG";

/// The installed configuration (the Debian package's), used when neither `--config` nor
/// `$ZEROTOUCH_CONFIG` names one and it exists.
pub const SYSTEM_CONFIG: &str = "/etc/zerotouch/config.toml";

/// Finds the configuration: `--config`, else `$ZEROTOUCH_CONFIG`, else
/// `/etc/zerotouch/config.toml` when it exists, else the embedded default. Returns it with
/// where it came from, for messages, and its file (none for the embedded default).
fn find_config(path: Option<&Path>) -> anyhow::Result<(Config, String, Option<PathBuf>)> {
    if let Some(p) = path {
        return Ok((
            Config::load(p)?,
            format!("the configuration {} (--config)", p.display()),
            Some(p.to_path_buf()),
        ));
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        let config = Config::load(&p).with_context(|| format!("${CONFIG_ENV}"))?;
        return Ok((
            config,
            format!("the configuration {} (${CONFIG_ENV})", p.display()),
            Some(p),
        ));
    }
    let system = Path::new(SYSTEM_CONFIG);
    if system.exists() {
        return Ok((
            Config::load(system)?,
            format!("the configuration {SYSTEM_CONFIG}"),
            Some(system.to_path_buf()),
        ));
    }
    Ok((
        Config::default(),
        format!(
            "the embedded default configuration (no --config given, ${CONFIG_ENV} not set, \
             no {SYSTEM_CONFIG})"
        ),
        None,
    ))
}

/// The configuration, for the commands that may create a data directory (`serve`,
/// `migrate`, `restore`) or need none.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(find_config(path)?.0)
}

/// The configuration of an existing installation: every command but `serve`, `migrate` and
/// `restore` stops here, creating nothing, when the data directory does not exist (a
/// command run in the wrong directory, or without the installation's `--config`, would
/// otherwise start a new installation with new credentials). Run as root on a data directory
/// another user owns, the command becomes that user first (`privilege`).
fn load_installed(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(load_installed_as(path, Keep::Nothing)?.0)
}

/// `load_installed`, keeping root saved where `keep` says (commands that write outside the
/// data directory); also returns the configuration's file.
fn load_installed_as(path: Option<&Path>, keep: Keep) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let (config, source, file) = find_config(path)?;
    if !config.data_dir.is_dir() {
        bail!(
            "no data directory {}, as {source} says; nothing was created. Name the \
             installation's configuration with --config FILE or ${CONFIG_ENV}, or create \
             the data directory with `zerotouch migrate` or by starting the server \
             (`zerotouch serve`)",
            config.data_dir.display()
        );
    }
    crate::privilege::adopt_data_dir_owner(&config.data_dir, keep)?;
    Ok((config, file))
}

fn init_logging(config: &Config, verbose: bool) {
    let level = if verbose {
        log::LevelFilter::Debug
    } else {
        config.log.level.parse().unwrap_or(log::LevelFilter::Info)
    };
    crate::logging::init(level);
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
    let config = load_installed(config)?;
    crate::datadir::prepare_data_dir(&config.data_dir)?;
    let mut conn = db::open(
        &config.database_path(),
        std::time::Duration::from_millis(config.database.busy_timeout_ms),
    )?;
    // A command that finds an older schema migrates it as `migrate` does: with the data
    // directory to itself (never under a running server of another version) and a copy
    // of the database first.
    let _lock = if db::schema_version(&conn)? < db::SCHEMA_VERSION {
        let lock = crate::backup::lock_data_dir(&config.data_dir).with_context(|| {
            format!(
                "the database in {} needs migrating and a server holds it: upgrade and \
                 restart the server (or stop it and run `zerotouch migrate`) first",
                config.data_dir.display()
            )
        })?;
        if let Some(copy) = crate::backup::before_migration(&config)? {
            eprintln!(
                "copied the database to {} before migrating it",
                copy.display()
            );
        }
        Some(lock)
    } else {
        None
    };
    let migrated = db::migrate(&mut conn)?;
    // Device secrets are sealed with the key file: every command reads and writes them
    // the way the server does.
    let key = crate::server::secrets_key(&config)?;
    let key = crate::server::finish_key_rotation(&config, &conn)?.unwrap_or(key);
    crate::db::secrets::install(&key);
    crate::actions::enrolment::set_certificate_only(
        config.tls.client_auth != crate::config::ClientAuth::Off,
    );
    crate::actions::templating::set_tftp_port(config.tftp.addr().map(|a| a.port()));
    crate::actions::templating::set_ftp_port(config.ftp.addr().map(|a| a.port()));
    if migrated > 0 {
        // A migration may leave clear values for the key to seal (0009).
        crate::db::secrets::seal_plaintext(&mut conn)?;
    }
    crate::actions::accounts::default_account(&conn)?;
    let account = crate::actions::accounts::find_account(&conn, account)?;
    Ok((config, conn, account))
}

/// Secrets given on the command line show in `ps` and shell history; every secret option
/// also takes `-` (the first line of standard input) or `file:PATH` (the first line of a
/// file). At most one option of a command may read standard input.
pub(crate) struct Secrets {
    stdin_taken: Option<&'static str>,
}

impl Secrets {
    pub(crate) fn new() -> Secrets {
        Secrets { stdin_taken: None }
    }

    /// The value of the secret option `--<option>`: as given, or read as it says.
    pub(crate) fn read(&mut self, option: &'static str, value: String) -> anyhow::Result<String> {
        if value == "-" {
            if let Some(first) = self.stdin_taken {
                bail!("--{option}: standard input is already read for --{first}; use file:PATH");
            }
            self.stdin_taken = Some(option);
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .with_context(|| format!("--{option}: reading standard input"))?;
            return Ok(line.trim_end_matches(['\r', '\n']).to_string());
        }
        if let Some(path) = value.strip_prefix("file:") {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--{option}: reading {path}"))?;
            return Ok(text.lines().next().unwrap_or("").to_string());
        }
        Ok(value)
    }
}

/// Prints a value as pretty JSON.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The operating-system user running the command line, as the audit log names it: `$USER`,
/// `$LOGNAME`, else the numeric uid.
pub fn os_user() -> Actor {
    let name = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .to_string();
            Some(format!("uid {uid}"))
        })
        .unwrap_or_else(|| "unknown".into());
    Actor::cli(name)
}

/// Runs `f` as the command line's operator (`actions::operator`, full scope, named after the
/// operating-system user) on `account`: the CLI goes through the same actions as the console
/// and the API.
pub fn as_operator<T>(
    config: &Config,
    account: &Account,
    f: impl FnOnce(&crate::actions::Actor<'_>) -> T,
) -> T {
    let who = os_user();
    let user = crate::actions::operator(&who.name);
    let own = crate::actions::own_addresses(config);
    let actor = crate::actions::Actor {
        user: &user,
        account,
        own: &own,
        partial_expiry_secs: (config.console.partial_expiry_hours * 3600) as i64,
        who,
    };
    f(&actor)
}
