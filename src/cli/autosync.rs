//! `zerotouch autosync ...`: Auto-Sync credentials — progress (devices per credential
//! generation, pending, locked out), on/off, options, re-admission, and the report of
//! phones that never came back after a change. Calls `actions::accounts` as the OS user.

use std::path::PathBuf;

use anyhow::bail;
use argh::FromArgs;

use super::{format_time, open_account, print_json};
use crate::actions::accounts::{self, AutoSyncOptions, Readmission};
use crate::domain::mac::Mac;

/// Auto-Sync credentials: status, on/off, options, re-admission, report
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "autosync")]
pub struct AutosyncCmd {
    #[argh(subcommand)]
    pub action: AutosyncAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum AutosyncAction {
    Status(AutosyncStatus),
    Enable(AutosyncEnable),
    Disable(AutosyncDisable),
    Set(AutosyncSet),
    Readmit(AutosyncReadmit),
    Report(AutosyncReport),
}

/// how many devices hold each credential generation, who is pending, who is locked out
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct AutosyncStatus {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// turn Auto-Sync on: devices whose grace window is still open resume syncing
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "enable")]
pub struct AutosyncEnable {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// turn Auto-Sync off: no rollback; devices still pending are locked out
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "disable")]
pub struct AutosyncDisable {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// go ahead although pending devices will be locked out
    #[argh(switch)]
    pub yes: bool,
}

/// change Auto-Sync options
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set")]
pub struct AutosyncSet {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// days old credentials stay accepted after a rotation (0-365; default 14)
    #[argh(option)]
    pub grace_days: Option<u32>,
    /// devices not seen for this many days get no old credentials (default 30)
    #[argh(option)]
    pub seen_days: Option<u32>,
    /// sync Poly OS devices too: on or off (parameter names not verified on a device)
    #[argh(option)]
    pub poly_os: Option<String>,
    /// go ahead although devices will be locked out
    #[argh(switch)]
    pub yes: bool,
}

/// re-admit devices: accept the credentials they hold once more, then sync them
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "readmit")]
pub struct AutosyncReadmit {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// every locked-out device of the account
    #[argh(switch)]
    pub all_locked_out: bool,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// phones that never came back after a credential or address change
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "report")]
pub struct AutosyncReport {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn autosync(action: AutosyncAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        AutosyncAction::Status(s) => {
            let (_c, conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let p = accounts::progress(&conn, &acc)?;
            if s.json {
                return print_json(&p);
            }
            println!(
                "account `{}`: Auto-Sync {}, current credential generation {}",
                acc.slug,
                if p.settings.enabled { "on" } else { "off" },
                p.current_generation
            );
            for (generation, n) in &p.by_generation {
                println!("  generation {generation:>3}: {n} device(s)");
            }
            println!("synced:      {}", p.synced);
            println!("pending:     {}", p.pending.len());
            println!("locked out:  {}", p.locked_out.len());
            for (title, rows) in [("pending", &p.pending), ("locked out", &p.locked_out)] {
                if rows.is_empty() {
                    continue;
                }
                println!("\n{title}:");
                for r in rows {
                    println!(
                        "  {}  generation {}  last seen {}{}",
                        r.mac,
                        r.generation,
                        r.last_seen.map(format_time).unwrap_or_else(|| "--".into()),
                        if r.why.is_empty() {
                            String::new()
                        } else {
                            format!("  ({})", r.why)
                        }
                    );
                }
            }
        }
        AutosyncAction::Enable(e) => {
            let (_c, mut conn, acc) = open_account(e.config.as_deref(), e.account.as_deref())?;
            accounts::set_autosync(&mut conn, &actor, &acc, true, false)?;
            println!("Auto-Sync on for `{}`", acc.slug);
        }
        AutosyncAction::Disable(d) => {
            let (_c, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            accounts::set_autosync(&mut conn, &actor, &acc, false, d.yes)?;
            println!("Auto-Sync off for `{}` (nothing is rolled back)", acc.slug);
        }
        AutosyncAction::Set(s) => {
            let poly_os = match s.poly_os.as_deref() {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(other) => bail!("--poly-os: `{other}` is not on or off"),
            };
            let (_c, mut conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let options = AutoSyncOptions {
                grace_days: s.grace_days,
                seen_days: s.seen_days,
                poly_os,
            };
            accounts::set_autosync_options(&mut conn, &actor, &acc, options, s.yes)?;
            println!("Auto-Sync options saved for `{}`", acc.slug);
        }
        AutosyncAction::Readmit(r) => {
            let which = match (r.all_locked_out, r.macs.is_empty()) {
                (true, true) => Readmission::AllLockedOut,
                (false, false) => Readmission::Devices(
                    r.macs
                        .iter()
                        .map(|m| m.parse::<Mac>())
                        .collect::<Result<_, _>>()?,
                ),
                _ => bail!("give MAC addresses or --all-locked-out (not both)"),
            };
            let (_c, mut conn, acc) = open_account(r.config.as_deref(), r.account.as_deref())?;
            let done = accounts::readmit(&mut conn, &actor, &acc, &which)?;
            println!("{} device(s) re-admitted", done.len());
            for mac in done {
                println!("  {mac}");
            }
        }
        AutosyncAction::Report(r) => {
            let (_c, conn, acc) = open_account(r.config.as_deref(), r.account.as_deref())?;
            let rows = accounts::report(&conn, &acc)?;
            if r.json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                println!("every device has come back since the last change");
                return Ok(());
            }
            println!(
                "{:<12}  {:<28} {:<24} {:<24} {:<10}  WHY",
                "MAC", "CHANGE", "CHANGED AT", "LAST SEEN", "STATE"
            );
            for n in rows {
                println!(
                    "{:<12}  {:<28} {:<24} {:<24} {:<10}  {}",
                    n.mac,
                    n.change,
                    format_time(n.changed_at),
                    n.last_seen.map(format_time).unwrap_or_else(|| "--".into()),
                    n.state,
                    n.why
                );
            }
        }
    }
    Ok(())
}
