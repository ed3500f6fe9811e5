//! `zerotouch enrol ...` (per-device credentials: enrolment windows, re-enrolment of a
//! replaced or factory-reset device, rotation of a device's own credential, and the
//! account's withholding mode) and `zerotouch secrets rotate-key`. Calls
//! `domain::enrolment` as the OS user.

use std::path::PathBuf;

use argh::FromArgs;

use super::{format_time, open_account, print_json};
use crate::actions::enrolment;
use crate::domain::mac::Mac;
use crate::privilege::Keep;

/// per-device credentials: enrolment windows, re-enrolment, rotation, withholding
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "enrol")]
pub struct EnrolCmd {
    #[argh(subcommand)]
    pub action: EnrolAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum EnrolAction {
    Open(EnrolOpen),
    Close(EnrolClose),
    List(EnrolList),
    Reset(EnrolReset),
    Rotate(EnrolRotate),
    Mode(EnrolMode),
    Status(EnrolStatus),
    Reenrol(EnrolReenrol),
    Dismiss(EnrolDismiss),
    MaxAge(EnrolMaxAge),
}

/// each associated device's enrolment: waiting, delivered, enrolled, contested (with who
/// claimed it), and the counts
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct EnrolStatus {
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

/// re-enrol a contested or re-imaged device: a new credential for the next phone that
/// presents the account credential for it in a window (the current one stays accepted
/// until the new one is used)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reenrol")]
pub struct EnrolReenrol {
    #[argh(positional)]
    pub mac: String,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// how long the window stays open, in minutes (default 60)
    #[argh(option, default = "60")]
    pub minutes: u64,
    /// only a request from this address enrols (where the phone is)
    #[argh(option)]
    pub address: Option<std::net::IpAddr>,
    /// go ahead although phones are affected (the count and each phone's reason are shown
    /// otherwise)
    #[argh(switch)]
    pub yes: bool,
}

/// dismiss a contested device's claims (the phone holding its own credential is the right one)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "dismiss")]
pub struct EnrolDismiss {
    #[argh(positional)]
    pub mac: String,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// the maximum age of the windows association opens, in days (0, the default: until the
/// device enrols); applies to windows opened from now on
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "max-age")]
pub struct EnrolMaxAge {
    /// days (0: no maximum age)
    #[argh(positional)]
    pub days: u32,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// open an enrolment window: devices presenting the account credential get their own
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "open")]
pub struct EnrolOpen {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// how long the window stays open, in minutes (1 to 10080)
    #[argh(option)]
    pub minutes: u64,
    /// only this device (default: every device of the account)
    #[argh(option)]
    pub mac: Option<String>,
    /// only requests from this address enrol in it
    #[argh(option)]
    pub address: Option<std::net::IpAddr>,
}

/// close the account's open enrolment windows (or one device's)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "close")]
pub struct EnrolClose {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// only this device's windows
    #[argh(option)]
    pub mac: Option<String>,
    /// go ahead although phones are affected (the count and each phone's reason are shown
    /// otherwise)
    #[argh(switch)]
    pub yes: bool,
}

/// list the account's open enrolment windows and whether it withholds secrets
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct EnrolList {
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

/// re-enrol a replaced or factory-reset device: forget its credential, open a window for it
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reset")]
pub struct EnrolReset {
    #[argh(positional)]
    pub mac: String,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// how long the device's window stays open, in minutes (default 60)
    #[argh(option, default = "60")]
    pub minutes: u64,
    /// go ahead although phones are affected (the count and each phone's reason are shown
    /// otherwise)
    #[argh(switch)]
    pub yes: bool,
}

/// rotate a device's own credential (delivered at its next authenticated request)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rotate")]
pub struct EnrolRotate {
    #[argh(positional)]
    pub mac: String,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// go ahead although phones are affected (the count and each phone's reason are shown
    /// otherwise)
    #[argh(switch)]
    pub yes: bool,
}

/// withhold secrets until a device proves itself (on), or serve them to the account credential (off)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "mode")]
pub struct EnrolMode {
    /// on or off
    #[argh(positional)]
    pub mode: String,
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// go ahead although phones are affected (the count and each phone's reason are shown
    /// otherwise)
    #[argh(switch)]
    pub yes: bool,
}

fn parse_mac(s: &str) -> anyhow::Result<Mac> {
    Mac::parse_lenient(s).ok_or_else(|| anyhow::anyhow!("mac: `{s}` is not a MAC address"))
}

pub fn enrol(action: EnrolAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        EnrolAction::Open(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = a.mac.as_deref().map(parse_mac).transpose()?;
            let w = enrolment::open_window(
                &mut conn,
                &actor,
                &account,
                a.minutes,
                mac.as_ref(),
                a.address,
            )?;
            println!(
                "enrolment open for {} of account {} {}{}",
                w.mac.as_deref().unwrap_or("every device"),
                account.slug,
                w.closes_text(),
                w.address
                    .as_deref()
                    .map(|a| format!(", from {a} only"))
                    .unwrap_or_default()
            );
            if !account.device_secrets {
                println!(
                    "note: account {} does not withhold secrets; turn it on with `zerotouch enrol mode on`",
                    account.slug
                );
            }
        }
        EnrolAction::Close(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = a.mac.as_deref().map(parse_mac).transpose()?;
            let n = enrolment::close_windows(&mut conn, &actor, &account, mac.as_ref(), a.yes)?;
            println!("closed {n} enrolment window(s)");
        }
        EnrolAction::List(a) => {
            let (_, conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let windows = enrolment::list_windows(&conn, &account)?;
            if a.json {
                print_json(&serde_json::json!({
                    "account": account.slug,
                    "device_secrets": account.device_secrets,
                    "windows": windows,
                }))?;
            } else {
                println!(
                    "account {}: secrets {}",
                    account.slug,
                    if account.device_secrets {
                        "withheld until a device proves itself"
                    } else {
                        "served to the account credential"
                    }
                );
                for w in windows {
                    println!(
                        "{}\t{}\topened by {}{}",
                        w.mac.as_deref().unwrap_or("every device"),
                        w.closes_text(),
                        w.opened_by,
                        w.address
                            .as_deref()
                            .map(|a| format!("\tfrom {a} only"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        EnrolAction::Reset(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            match enrolment::reset(&mut conn, &actor, &account, &mac, a.minutes, a.yes)? {
                Some(w) => println!(
                    "{mac}: credential forgotten; it enrols again with the account credential \
                     until {}",
                    format_time(w.closes_at)
                ),
                None => println!(
                    "{mac}: credential forgotten; it enrols again with its certificate (devices \
                     enrol by certificate only: tls.client_auth)"
                ),
            }
        }
        EnrolAction::Status(a) => {
            let (_, conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let all = enrolment::status(&conn, &account)?;
            let (waiting, contested) = enrolment::counts(&conn, &account)?;
            if a.json {
                print_json(&serde_json::json!({
                    "account": account.slug,
                    "device_secrets": account.device_secrets,
                    "not_enrolled": waiting,
                    "contested": contested,
                    "devices": all,
                }))?;
                return Ok(());
            }
            println!(
                "account {}: {} device(s), {waiting} not yet enrolled, {contested} contested",
                account.slug,
                all.len()
            );
            if enrolment::certificate_only() {
                println!(
                    "devices enrol with their certificates (tls.client_auth with the device \
                     CA): no enrolment window opens"
                );
            }
            for d in &all {
                println!(
                    "{}\t{}{}",
                    d.mac,
                    d.state.label(),
                    d.window
                        .as_deref()
                        .map(|w| format!("\twindow open {w}"))
                        .unwrap_or_default()
                );
                for c in &d.claims {
                    println!(
                        "  claimant {} ({}){}{}, {} request(s)",
                        c.address,
                        if c.user_agent.is_empty() {
                            "no User-Agent"
                        } else {
                            &c.user_agent
                        },
                        c.delivered_at
                            .map(|t| format!(", sent the credential {}", format_time(t)))
                            .unwrap_or_default(),
                        c.after_enrolment_at
                            .map(|t| format!(", came after enrolment {}", format_time(t)))
                            .unwrap_or_default(),
                        c.requests
                    );
                }
                if d.state == enrolment::State::Contested {
                    println!(
                        "  SIP passwords served to it in its window must be treated as leaked: \
                         `zerotouch enrol reenrol {}` or `zerotouch enrol dismiss {}`",
                        d.mac, d.mac
                    );
                }
            }
        }
        EnrolAction::Reenrol(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            let w = enrolment::reenrol(
                &mut conn, &actor, &account, &mac, a.minutes, a.address, a.yes,
            )?;
            println!(
                "{mac}: re-enrolment open {}{}; the next phone presenting the account credential \
                 for it gets a new credential of its own",
                w.closes_text(),
                w.address
                    .as_deref()
                    .map(|a| format!(", from {a} only"))
                    .unwrap_or_default()
            );
        }
        EnrolAction::Dismiss(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            enrolment::dismiss(&mut conn, &actor, &account, &mac)?;
            println!("{mac}: claims dismissed; no longer contested");
        }
        EnrolAction::MaxAge(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            enrolment::set_window_max_days(&mut conn, &actor, &account, a.days)?;
            if a.days == 0 {
                println!(
                    "account {}: windows opened by association stay open until the device enrols",
                    account.slug
                );
            } else {
                println!(
                    "account {}: windows opened by association close after {} day(s) at the latest",
                    account.slug, a.days
                );
            }
        }
        EnrolAction::Rotate(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            enrolment::rotate(&mut conn, &actor, &account, &mac, a.yes)?;
            println!(
                "{mac}: new credential; delivered at its next request, the old one accepted until it uses it"
            );
        }
        EnrolAction::Mode(a) => {
            let on = match a.mode.as_str() {
                "on" => true,
                "off" => false,
                other => anyhow::bail!("mode: `{other}` is not on or off"),
            };
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            enrolment::set_device_secrets(&mut conn, &actor, &account, on, a.yes)?;
            println!(
                "account {}: secrets {}",
                account.slug,
                if on {
                    "withheld until a device proves itself"
                } else {
                    "served to the account credential"
                }
            );
        }
    }
    Ok(())
}

/// secrets at rest: key rotation
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "secrets")]
pub struct SecretsCmd {
    #[argh(subcommand)]
    pub action: SecretsAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum SecretsAction {
    RotateKey(RotateKey),
}

/// re-encrypt every stored device secret under a new key file (stop the server first)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rotate-key")]
pub struct RotateKey {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

pub fn secrets(action: SecretsAction) -> anyhow::Result<()> {
    match action {
        SecretsAction::RotateKey(a) => {
            let (config, _) = super::load_installed_as(a.config.as_deref(), Keep::SavedRoot)?;
            let n = crate::server::rotate_secrets_key(&config)?;
            println!(
                "re-encrypted {n} stored secret(s) under a new key; {} replaced (back it up: \
                 backups made before now need the old key)",
                crate::backup::key_path(&config).display()
            );
        }
    }
    Ok(())
}
