//! `zerotouch transfer export` and `zerotouch transfer import`: an account's devices,
//! sites, groups and policies as JSON or CSV (`actions::transfer`), round trip without loss.
//! Secrets only with `--include-secrets`. (`zerotouch import`/`export` are the ZTP bulk
//! association CSV of the console.)

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use argh::FromArgs;

use super::open_account;
use crate::actions::transfer::{self, Format};

/// move devices, sites, groups and policies between installations (JSON or CSV)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "transfer")]
pub struct TransferCmd {
    #[argh(subcommand)]
    pub action: TransferAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TransferAction {
    Export(ExportCmd),
    Import(ImportCmd),
}

/// Runs `zerotouch transfer ...`.
pub fn run(c: TransferCmd) -> anyhow::Result<()> {
    match c.action {
        TransferAction::Export(e) => export_cmd(e),
        TransferAction::Import(i) => import_cmd(i),
    }
}

/// export devices, sites, groups and policies (JSON or CSV)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct ExportCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// json (default) or csv
    #[argh(option, default = "String::from(\"json\")")]
    pub format: String,
    /// include secrets (device and SIP passwords, secret policy values) in clear
    #[argh(switch)]
    pub include_secrets: bool,
    /// write to this file (mode 0600 with secrets) instead of standard output
    #[argh(option)]
    pub out: Option<PathBuf>,
}

/// import devices, sites, groups and policies from an export (JSON or CSV)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct ImportCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// json or csv (default: from the file's extension)
    #[argh(option)]
    pub format: Option<String>,
    /// check and count without writing
    #[argh(switch)]
    pub dry_run: bool,
    /// the file
    #[argh(positional)]
    pub file: PathBuf,
}

pub fn export_cmd(c: ExportCmd) -> anyhow::Result<()> {
    let format = Format::parse(&c.format)?;
    let (_cfg, conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let e = transfer::export(&conn, &acc, c.include_secrets)?;
    let text = transfer::write(format, &e)?;
    match c.out {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(if c.include_secrets { 0o600 } else { 0o644 })
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "exported {} device(s), {} site(s), {} group(s), {} policy value(s) to {}{}",
                e.devices.len(),
                e.sites.len(),
                e.groups.len(),
                e.policies.len(),
                path.display(),
                if c.include_secrets {
                    " (with secrets)"
                } else {
                    ""
                }
            );
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

pub fn import_cmd(c: ImportCmd) -> anyhow::Result<()> {
    let format = match c.format.as_deref() {
        Some(f) => Format::parse(f)?,
        None if c.file.extension().is_some_and(|e| e == "csv") => Format::Csv,
        None => Format::Json,
    };
    let text = std::fs::read_to_string(&c.file)
        .with_context(|| format!("reading {}", c.file.display()))?;
    let e = transfer::parse(format, &text).with_context(|| format!("{}", c.file.display()))?;
    let (_cfg, mut conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let r = transfer::import(&mut conn, &crate::cli::os_user(), &acc, &e, c.dry_run)
        .with_context(|| format!("{}", c.file.display()))?;
    println!(
        "{}sites {} created, {} updated; groups {} created, {} updated; devices {} created, {} \
         updated; {} policy value(s) set; {} stored secret(s) kept",
        if r.dry_run {
            "dry run, nothing written: "
        } else {
            ""
        },
        r.sites_created,
        r.sites_updated,
        r.groups_created,
        r.groups_updated,
        r.devices_created,
        r.devices_updated,
        r.policies_set,
        r.secrets_kept
    );
    Ok(())
}
