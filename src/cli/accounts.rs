//! `zerotouch account ...`: accounts, their service addresses, Device Provisioning on/off,
//! device credentials and the unknown-device policy.
//!
//! Every command calls `actions::accounts` (the same functions the console and the API
//! call) as the OS user, so each change is audited. Commands that would lock devices out
//! stop with the count and the first MACs, and go ahead only with `--yes`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::bail;
use argh::FromArgs;

use super::{format_time, open, open_account, print_json};
use crate::actions::accounts::{self, NewAccount, Rotation};

use crate::actions::provisioning::mask;
use crate::domain::account::UnknownDevices;

/// accounts: service addresses, provisioning, device credentials, unknown-device policy
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "account")]
pub struct AccountCmd {
    #[argh(subcommand)]
    pub action: AccountAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum AccountAction {
    List(AccountList),
    Add(AccountAdd),
    Show(AccountShow),
    SetCredentials(SetCredentials),
    Enable(AccountEnable),
    Disable(AccountDisable),
    RegenerateAddress(RegenerateAddress),
    Aliases(AccountAliases),
    RetireAlias(RetireAlias),
    SetPolicy(SetPolicy),
    TftpCredential(TftpCredential),
    FtpFactoryLogin(FtpFactoryLogin),
    Sip(AccountSipCmd),
}

/// list accounts with their service addresses and settings
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct AccountList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// create an account (provisioning and Auto-Sync on)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AccountAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account's slug: 2-32 lowercase letters, digits and `-` (part of its address)
    #[argh(positional)]
    pub slug: String,
    /// display name (default: the slug)
    #[argh(option)]
    pub name: Option<String>,
    /// device user name phones send
    #[argh(option)]
    pub user: String,
    /// device password (prefer --password-stdin: command lines are visible to other users)
    #[argh(option)]
    pub password: Option<String>,
    /// read the device password from the first line of standard input
    #[argh(switch)]
    pub password_stdin: bool,
}

/// show an account: service address, DHCP option 160 value, credentials, Auto-Sync
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct AccountShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// also print the device password
    #[argh(switch)]
    pub secrets: bool,
    /// print JSON (without the password)
    #[argh(switch)]
    pub json: bool,
}

/// set the device credentials phones use: a new credential generation (provisioning must be
/// enabled); with Auto-Sync on, devices are sent them at their next poll
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set-credentials")]
pub struct SetCredentials {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// user name phones send
    #[argh(option)]
    pub user: String,
    /// password (prefer --password-stdin: command lines are visible to other users)
    #[argh(option)]
    pub password: Option<String>,
    /// read the password from the first line of standard input
    #[argh(switch)]
    pub password_stdin: bool,
    /// the old credentials leaked: accept them from no device any more (no grace window)
    #[argh(switch)]
    pub compromised: bool,
    /// days the old credentials stay accepted from devices that hold them (default: the
    /// account's Auto-Sync grace window)
    #[argh(option)]
    pub grace_days: Option<u32>,
    /// go ahead even though devices will be locked out
    #[argh(switch)]
    pub yes: bool,
}

/// enable Device Provisioning (Auto-Sync stays as it is: off after a disable)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "enable")]
pub struct AccountEnable {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// disable Device Provisioning: every device request of the account is refused, and
/// Auto-Sync is turned off
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "disable")]
pub struct AccountDisable {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// go ahead although devices will be refused
    #[argh(switch)]
    pub yes: bool,
}

/// give the account a new service address; the old one stays an alias until every device
/// that used it has moved
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "regenerate-address")]
pub struct RegenerateAddress {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// go ahead although some devices cannot be moved
    #[argh(switch)]
    pub yes: bool,
}

/// list the account's former service addresses and the devices still using them
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "aliases")]
pub struct AccountAliases {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// stop answering a former service address now
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "retire-alias")]
pub struct RetireAlias {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// the alias, e.g. /branch-AbC123/
    #[argh(positional)]
    pub address: String,
    /// go ahead although devices still use it
    #[argh(switch)]
    pub yes: bool,
}

/// set what happens to phones that are not associated: stage, ztp, default-profile, reject
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set-policy")]
pub struct SetPolicy {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// the policy: stage, ztp, default-profile or reject
    #[argh(option)]
    pub unknown_devices: String,
    /// profile for the default-profile policy
    #[argh(option)]
    pub default_profile: Option<String>,
    /// go ahead although phones are affected (ztp always asks: it changes phones you may
    /// not own)
    #[argh(switch)]
    pub yes: bool,
}

/// allow or stop serving the account credential over TFTP (off by default): on, a phone
/// booting over TFTP gets its files without secrets but with the move to HTTP(S) and the
/// account credential, which anyone on the networks TFTP answers can then read, as from
/// DHCP option 160
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "tftp-credential")]
pub struct TftpCredential {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// on or off
    #[argh(positional)]
    pub state: String,
}

/// accept or refuse Polycom's factory FTP login (`PlcmSpIp`/`PlcmSpIp`, on by default):
/// on, a phone at factory settings logging in over FTP gets what an unknown device gets
/// and, when associated, its files without SIP secrets with the move to HTTP(S)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ftp-factory-login")]
pub struct FtpFactoryLogin {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// on or off
    #[argh(positional)]
    pub state: String,
}

/// the account's SIP check-sync settings (each off by default; an option left out keeps
/// its value): request validation rendered to phones, apply-now after a change that affects
/// devices, and the background online check
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sip")]
pub struct AccountSipCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// on: phones accept check-sync only with a Digest answer from their line's
    /// credentials (the PBX must then authenticate too; phones with no registered line
    /// cannot be reached); off: from any host (the phones' default)
    #[argh(option)]
    pub validation: Option<String>,
    /// after a change that affects devices: `now` (send check-sync to them at once; phones
    /// the change restarts still wait) or `wait` (their next poll)
    #[argh(option)]
    pub apply_after_change: Option<String>,
    /// on: a background OPTIONS check keeps the devices' online state current
    #[argh(option)]
    pub online_check: Option<String>,
}

fn read_password(password: Option<String>, stdin: bool) -> anyhow::Result<String> {
    match (password, stdin) {
        (Some(p), false) => crate::cli::Secrets::new().read("password", p),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_to_string(&mut line)?;
            Ok(line.lines().next().unwrap_or("").to_string())
        }
        _ => bail!("give exactly one of --password and --password-stdin"),
    }
}

fn print_sip(sip: &crate::domain::account::AccountSip) {
    println!(
        "sip validation:   {}",
        if sip.validation {
            "on: phones accept check-sync only with Digest (the PBX must authenticate too; \
             phones with no registered line cannot be reached)"
        } else {
            "off: phones accept check-sync from any host"
        }
    );
    println!(
        "after a change:   {}",
        if sip.apply_after_change {
            "apply now (phones it restarts wait for their next poll)"
        } else {
            "wait for the next poll"
        }
    );
    println!("online check:     {}", on_off(sip.online_check));
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

pub fn account(action: AccountAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        AccountAction::List(l) => list(l)?,
        AccountAction::Add(a) => {
            let password = read_password(a.password, a.password_stdin)?;
            let (_c, mut conn, _) = open(a.config.as_deref())?;
            let input = NewAccount {
                name: a.name.unwrap_or_else(|| a.slug.clone()),
                slug: a.slug,
                user: a.user,
                password,
            };
            let acc = accounts::add_account(&mut conn, &actor, &input)?;
            println!(
                "account `{}` created; service address {}",
                acc.slug,
                acc.service_path()
            );
        }
        AccountAction::Show(a) => show(a)?,
        AccountAction::SetCredentials(s) => {
            let password = read_password(s.password, s.password_stdin)?;
            let (config, mut conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let rotation = Rotation {
                grace_days: s.grace_days,
                compromised: s.compromised,
            };
            let generation = accounts::set_credentials(
                &mut conn, &actor, &acc, &s.user, &password, rotation, s.yes,
            )?;
            println!("device credentials set (generation {generation})");
            let now = crate::db::accounts::find_by_id(&conn, acc.id)?.unwrap_or(acc);
            let o = accounts::option160(&conn, &config, &now)?;
            println!(
                "if DHCP option 160 gives phones their credentials, it must now hold: {}\n  \
                 (PASSWORD stands for the password just set; `zerotouch diagnose snippets \
                 --with-credentials` prints the whole value)",
                o.value
            );
            if let Some(w) = o.warning {
                eprintln!("zerotouch: warning: {w}");
            }
        }
        AccountAction::Enable(e) => {
            let (_c, mut conn, acc) = open_account(e.config.as_deref(), e.account.as_deref())?;
            accounts::set_provisioning(&mut conn, &actor, &acc, true, false)?;
            println!(
                "provisioning enabled for `{}` (Auto-Sync is unchanged)",
                acc.slug
            );
        }
        AccountAction::Disable(d) => {
            let (_c, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            accounts::set_provisioning(&mut conn, &actor, &acc, false, d.yes)?;
            println!(
                "provisioning disabled for `{}`: its devices are refused; Auto-Sync is off",
                acc.slug
            );
        }
        AccountAction::RegenerateAddress(r) => {
            let (_c, mut conn, acc) = open_account(r.config.as_deref(), r.account.as_deref())?;
            let done = accounts::regenerate_address(&mut conn, &actor, &acc, r.yes)?;
            println!("new service address: {}", done.new);
            if done.holders > 0 {
                println!(
                    "{} stays an alias while {} device(s) still use it",
                    done.old, done.holders
                );
            } else {
                println!("{} is no longer answered (no device used it)", done.old);
            }
        }
        AccountAction::Aliases(a) => {
            let (_c, conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            println!("{:<40} {:<24} {:>8}  STATE", "ALIAS", "SINCE", "DEVICES");
            for al in accounts::list_aliases(&conn, &acc)? {
                println!(
                    "{:<40} {:<24} {:>8}  {}",
                    al.address,
                    format_time(al.created_at),
                    al.holders,
                    al.retired_at
                        .map(|t| format!("retired {}", format_time(t)))
                        .unwrap_or_else(|| "answered".into())
                );
            }
        }
        AccountAction::RetireAlias(r) => {
            let (_c, mut conn, acc) = open_account(r.config.as_deref(), r.account.as_deref())?;
            accounts::retire_alias(&mut conn, &actor, &acc, &r.address, r.yes)?;
            println!("alias {} retired", r.address);
        }
        AccountAction::FtpFactoryLogin(t) => {
            let on = match t.state.as_str() {
                "on" => true,
                "off" => false,
                other => bail!("state: `{other}` is not `on` or `off`"),
            };
            let (_c, mut conn, acc) = open_account(t.config.as_deref(), t.account.as_deref())?;
            accounts::set_ftp_factory_login(&mut conn, &actor, &acc, on)?;
            println!(
                "the factory FTP login of `{}` is {}",
                acc.slug,
                if on { "accepted" } else { "refused" }
            );
        }
        AccountAction::TftpCredential(t) => {
            let on = match t.state.as_str() {
                "on" => true,
                "off" => false,
                other => bail!("state: `{other}` is not `on` or `off`"),
            };
            let (_c, mut conn, acc) = open_account(t.config.as_deref(), t.account.as_deref())?;
            accounts::set_tftp_credential(&mut conn, &actor, &acc, on)?;
            if on {
                println!(
                    "the account credential of `{}` is served over TFTP to its associated \
                     devices (no SIP secret, no device's own credential): TFTP has no \
                     authentication, so anyone on the networks of tftp.allow can read it, as \
                     from DHCP option 160",
                    acc.slug
                );
            } else {
                println!(
                    "the account credential of `{}` is no longer served over TFTP",
                    acc.slug
                );
            }
        }
        AccountAction::Sip(t) => {
            let switch = |name: &str, v: &Option<String>, was: bool| -> anyhow::Result<bool> {
                match v.as_deref() {
                    None => Ok(was),
                    Some("on") => Ok(true),
                    Some("off") => Ok(false),
                    Some(other) => bail!("{name}: `{other}` is not `on` or `off`"),
                }
            };
            let (_c, mut conn, acc) = open_account(t.config.as_deref(), t.account.as_deref())?;
            let sip = crate::domain::account::AccountSip {
                validation: switch("--validation", &t.validation, acc.sip.validation)?,
                apply_after_change: match t.apply_after_change.as_deref() {
                    None => acc.sip.apply_after_change,
                    Some("now") => true,
                    Some("wait") => false,
                    Some(other) => bail!("--apply-after-change: `{other}` is not `now` or `wait`"),
                },
                online_check: switch("--online-check", &t.online_check, acc.sip.online_check)?,
            };
            accounts::set_sip(&mut conn, &actor, &acc, sip)?;
            print_sip(&sip);
        }
        AccountAction::SetPolicy(p) => {
            let policy = UnknownDevices::parse(&p.unknown_devices)?;
            let (_config, mut conn, acc) = open_account(p.config.as_deref(), p.account.as_deref())?;
            crate::actions::accounts::set_unknown_devices(
                &mut conn,
                &actor,
                &acc,
                policy,
                p.default_profile.as_deref(),
                p.yes,
            )?;
            println!("unknown devices: {policy}");
        }
    }
    Ok(())
}

/// `account list`: every account with its address, switches and device count.
fn list(l: AccountList) -> anyhow::Result<()> {
    let (_c, conn, _) = open(l.config.as_deref())?;
    let list = accounts::list_accounts(&conn)?;
    if l.json {
        return print_json(&list);
    }
    println!(
        "{:<20} {:<40} {:<13} {:<9} {:>4} {:>8}",
        "SLUG", "SERVICE ADDRESS", "PROVISIONING", "AUTO-SYNC", "GEN", "DEVICES"
    );
    for a in list {
        println!(
            "{:<20} {:<40} {:<13} {:<9} {:>4} {:>8}{}",
            a.slug,
            a.service_address,
            on_off(a.settings.provisioning_enabled),
            if a.settings.enabled { "on" } else { "off" },
            a.credential_generation,
            a.devices,
            if a.is_default {
                "  (default, also at /)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `account show`: one account's address, credentials (masked unless `--secrets`),
/// Auto-Sync options, unknown-device policy and DHCP option 160 value.
fn show(a: AccountShow) -> anyhow::Result<()> {
    let (config, conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
    let summary = accounts::summarize(&conn, &acc)?;
    if a.json {
        return print_json(&summary);
    }
    let password = match (&acc.device_password, a.secrets) {
        (Some(p), true) => p.clone(),
        (Some(_), false) => "(set; --secrets shows it)".into(),
        (None, _) => "(not set)".into(),
    };
    let s = summary.settings;
    println!("account:          {} ({})", acc.name, acc.slug);
    println!("service address:  {}", acc.service_path());
    for alias in &summary.aliases {
        println!("  alias:          {alias} (until its devices have moved)");
    }
    println!("provisioning:     {}", on_off(s.provisioning_enabled));
    println!(
        "device user:      {}",
        acc.device_user.as_deref().unwrap_or("(not set)")
    );
    println!("device password:  {password}");
    println!("credential gen.:  {}", acc.credential_generation);
    println!(
        "auto-sync:        {} (grace {} days, seen within {} days, Poly OS {})",
        on_off(s.enabled),
        s.grace_days,
        s.seen_days,
        if s.poly_os { "on" } else { "off" }
    );
    println!("unknown devices:  {}", acc.unknown_devices);
    println!(
        "tftp credential:  {}",
        if acc.tftp_credential {
            "served over TFTP (as exposed as in DHCP option 160)"
        } else {
            "not served over TFTP"
        }
    );
    println!(
        "ftp factory login: {}",
        if acc.ftp_factory_login {
            "accepted (PlcmSpIp: what an unknown device gets, and the move to HTTP(S))"
        } else {
            "refused"
        }
    );
    print_sip(&acc.sip);
    println!("secrets:          {}", summary.secrets_text());
    if let Some(addr) = config.device_http_addr() {
        let shown = if a.secrets {
            acc.device_password.clone().unwrap_or_default()
        } else {
            mask(
                "device.prov.password",
                acc.device_password.as_deref().unwrap_or(""),
            )
        };
        println!(
            "DHCP option 160:  http://{}:{shown}@<this-host>:{}{}",
            acc.device_user.as_deref().unwrap_or("<user>"),
            addr.port(),
            acc.service_path()
        );
    }
    Ok(())
}
