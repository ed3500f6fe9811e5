//! `zerotouch transfer export` and `zerotouch transfer import`: an account (or with `--all`
//! the whole installation) as the JSON archive, or an account's devices, sites, groups and
//! policies as CSV (`actions::transfer`), round trip without loss. Secrets only with
//! `--with-secrets`, sealed with a passphrase read from a file or standard input. (`zerotouch import`/`export` are the ZTP bulk
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

/// export an account (or with --all the whole installation): profiles and their files,
/// devices, lines, sites, groups, policies, variables, settings (JSON; CSV: devices, sites,
/// groups and policies)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct ExportCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// every account and the installation-wide settings (JSON only)
    #[argh(switch)]
    pub all: bool,
    /// json (default) or csv
    #[argh(option, default = "String::from(\"json\")")]
    pub format: String,
    /// include secrets (device, SIP and account passwords, secret policy values, variables
    /// and files), sealed with the passphrase of --passphrase-file or --passphrase-stdin
    #[argh(switch)]
    pub with_secrets: bool,
    /// read the passphrase from the first line of this file
    #[argh(option)]
    pub passphrase_file: Option<PathBuf>,
    /// read the passphrase from the first line of standard input
    #[argh(switch)]
    pub passphrase_stdin: bool,
    /// write to this file (mode 0600 with secrets) instead of standard output
    #[argh(option)]
    pub out: Option<PathBuf>,
}

/// import an export (of an account, or of a whole installation) after checking all of it:
/// everything or nothing
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct ImportCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the account the file names, else the default account);
    /// not for an installation export
    #[argh(option)]
    pub account: Option<String>,
    /// json or csv (default: from the file's extension)
    #[argh(option)]
    pub format: Option<String>,
    /// check and count without writing
    #[argh(switch)]
    pub dry_run: bool,
    /// the passphrase of sealed secrets, from the first line of this file
    #[argh(option)]
    pub passphrase_file: Option<PathBuf>,
    /// the passphrase of sealed secrets, from the first line of standard input
    #[argh(switch)]
    pub passphrase_stdin: bool,
    /// the file
    #[argh(positional)]
    pub file: PathBuf,
}

/// The passphrase from a file or standard input (never from the command line).
fn passphrase(file: Option<&std::path::Path>, stdin: bool) -> anyhow::Result<Option<String>> {
    let text = match (file, stdin) {
        (Some(_), true) => {
            anyhow::bail!("give at most one of --passphrase-file and --passphrase-stdin")
        }
        (Some(f), false) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the passphrase from {}", f.display()))?,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
        (None, false) => return Ok(None),
    };
    Ok(Some(transfer::seal::passphrase_from(&text)?))
}

pub fn export_cmd(c: ExportCmd) -> anyhow::Result<()> {
    let format = Format::parse(&c.format)?;
    let pass = passphrase(c.passphrase_file.as_deref(), c.passphrase_stdin)?;
    if c.with_secrets && pass.is_none() {
        anyhow::bail!(
            "--with-secrets seals the secrets with a passphrase: give --passphrase-file or \
             --passphrase-stdin"
        );
    }
    if c.all && c.account.is_some() {
        anyhow::bail!("give --account or --all, not both");
    }
    let (_cfg, conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let (text, summary) = if c.all {
        if format != Format::Json {
            anyhow::bail!("the export of the whole installation is JSON only");
        }
        let mut i = transfer::installation::export(&conn, c.with_secrets)?;
        if let (true, Some(p)) = (c.with_secrets, &pass) {
            transfer::installation::seal(&mut i, p)?;
        }
        let summary = format!("{} account(s)", i.accounts.len());
        (transfer::installation::to_json(&i)?, summary)
    } else {
        let mut e = transfer::export(&conn, &acc, c.with_secrets)?;
        if let (true, Some(p)) = (c.with_secrets, &pass) {
            transfer::seal::seal(&mut e, p)?;
        }
        let summary = format!(
            "account {}: {} profile(s), {} device(s), {} site(s), {} group(s), {} policy value(s)",
            e.account,
            e.profiles.len(),
            e.devices.len(),
            e.sites.len(),
            e.groups.len(),
            e.policies.len()
        );
        (transfer::write(format, &e)?, summary)
    };
    match c.out {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(if c.with_secrets { 0o600 } else { 0o644 })
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "exported {summary} to {}{}",
                path.display(),
                if c.with_secrets {
                    " (secrets sealed)"
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
    let pass = passphrase(c.passphrase_file.as_deref(), c.passphrase_stdin)?;
    let text = std::fs::read_to_string(&c.file)
        .with_context(|| format!("reading {}", c.file.display()))?;
    let at = || format!("{}", c.file.display());
    let r = if format == Format::Json && transfer::installation::is_installation(&text) {
        if c.account.is_some() {
            anyhow::bail!(
                "{} is the export of a whole installation: no --account",
                at()
            );
        }
        let mut i = transfer::installation::parse_json(&text).with_context(at)?;
        transfer::installation::open(&mut i, pass.as_deref()).with_context(at)?;
        let (_cfg, mut conn, _acc) = open_account(c.config.as_deref(), None)?;
        transfer::installation::import(&mut conn, &crate::cli::os_user(), &i, c.dry_run)
            .with_context(at)?
    } else {
        let mut e = transfer::parse(format, &text).with_context(at)?;
        transfer::seal::open(&mut e, pass.as_deref()).with_context(at)?;
        // An account's archive goes back to the account it names unless told otherwise.
        let target = c
            .account
            .clone()
            .or_else(|| Some(e.account.clone()).filter(|a| !a.is_empty()));
        let (_cfg, mut conn, acc) = open_account(c.config.as_deref(), target.as_deref())
            .with_context(|| match (&c.account, &target) {
                (None, Some(a)) => format!(
                    "{} is account `{a}`'s: create it first (`zerotouch account add {a} ...`) \
                     or name the target with --account",
                    at()
                ),
                _ => at(),
            })?;
        transfer::import(&mut conn, &crate::cli::os_user(), &acc, &e, c.dry_run).with_context(at)?
    };
    println!(
        "{}accounts {} created; profiles {} created, {} updated; {} variable(s) set; sites {} \
         created, {} updated; groups {} created, {} updated; devices {} created, {} updated; {} \
         policy value(s) set; {} stored secret(s) kept",
        if r.dry_run {
            "dry run, nothing written: "
        } else {
            ""
        },
        r.accounts_created,
        r.profiles_created,
        r.profiles_updated,
        r.variables_set,
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
