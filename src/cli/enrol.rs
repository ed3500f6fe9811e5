//! `zerotouch enrol ...` (per-device credentials: enrolment windows, re-enrolment of a
//! replaced or factory-reset device, rotation of a device's own credential, and the
//! account's withholding mode) and `zerotouch secrets rotate-key`. Calls
//! `domain::enrolment` as the OS user.

use std::path::PathBuf;

use argh::FromArgs;

use super::{format_time, load_config, open_account, print_json};
use crate::domain::audit::Actor;
use crate::domain::enrolment;
use crate::domain::mac::Mac;

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
}

fn parse_mac(s: &str) -> anyhow::Result<Mac> {
    Mac::parse_lenient(s).ok_or_else(|| anyhow::anyhow!("mac: `{s}` is not a MAC address"))
}

pub fn enrol(action: EnrolAction) -> anyhow::Result<()> {
    let actor = Actor::os_user();
    match action {
        EnrolAction::Open(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = a.mac.as_deref().map(parse_mac).transpose()?;
            let w = enrolment::open_window(&mut conn, &actor, &account, a.minutes, mac.as_ref())?;
            println!(
                "enrolment open for {} of account {} until {}",
                w.mac.as_deref().unwrap_or("every device"),
                account.slug,
                format_time(w.closes_at)
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
            let n = enrolment::close_windows(&mut conn, &actor, &account, mac.as_ref())?;
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
                        "{}\tuntil {}\topened by {}",
                        w.mac.as_deref().unwrap_or("every device"),
                        format_time(w.closes_at),
                        w.opened_by
                    );
                }
            }
        }
        EnrolAction::Reset(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            let w = enrolment::reset(&mut conn, &actor, &account, &mac, a.minutes)?;
            println!(
                "{mac}: credential forgotten; it enrols again with the account credential until {}",
                format_time(w.closes_at)
            );
        }
        EnrolAction::Rotate(a) => {
            let (_, mut conn, account) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mac = parse_mac(&a.mac)?;
            enrolment::rotate(&mut conn, &actor, &account, &mac)?;
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
            enrolment::set_device_secrets(&mut conn, &actor, &account, on)?;
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
            let config = load_config(a.config.as_deref())?;
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
