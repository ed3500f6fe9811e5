//! `zerotouch device ...`: associations (add, list, show, delete, confirm) and, through
//! `templates`, a device's template values and lines. Changes go through
//! `actions::associations` and `actions::accounts` as the command line's operator, so a
//! device deleted here leaves its reference ID exactly as the console and the API would.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use argh::FromArgs;

use super::{as_operator, format_time, open, open_account, templates};
use crate::db::{self, devices};
use crate::domain::account::AccountId;
use crate::domain::device::{DeviceInput, Line, VendorExtensions};
use crate::domain::mac::Mac;

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
    Replace(DeviceReplace),
    SetVars(templates::DeviceSetVars),
    SetLine(templates::DeviceSetLine),
    DeleteLine(templates::DeviceDeleteLine),
    Confirm(DeviceConfirm),
    ApplyNow(super::applynow::ApplyNow),
    SipAddress(super::applynow::SipAddress),
    SipPing(super::applynow::SipPing),
    Bulk(DeviceBulk),
}

/// act on many devices at once: MACs given, or every device a filter matches (the count is
/// printed first; devices whose phones lose service need --yes)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "bulk")]
pub struct DeviceBulk {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// site, group-add, group-remove, profile, readmit or delete
    #[argh(positional)]
    pub action: String,
    /// the site (empty: no site), group or profile
    #[argh(option, default = "String::new()")]
    pub value: String,
    /// a device (repeat for more)
    #[argh(option)]
    pub mac: Vec<String>,
    /// every device matching the filter (--state, --flag, --site, --group, --search)
    #[argh(switch)]
    pub all: bool,
    /// filter: this state
    #[argh(option)]
    pub state: Option<String>,
    /// filter: this flag
    #[argh(option)]
    pub flag: Option<String>,
    /// filter: this site
    #[argh(option)]
    pub site: Option<String>,
    /// filter: this group
    #[argh(option)]
    pub group: Option<String>,
    /// filter: every word of this
    #[argh(option)]
    pub search: Option<String>,
    /// only print what would happen
    #[argh(switch)]
    pub dry_run: bool,
    /// go ahead although phones lose service or move to another server
    #[argh(switch)]
    pub yes: bool,
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
    /// provisioning server password (vendor extension); `-` reads it from standard input,
    /// `file:PATH` from a file
    #[argh(option, default = "String::new()")]
    pub prov_password: String,
    /// provisioning polling: 1, 0 or empty (vendor extension)
    #[argh(option, default = "String::new()")]
    pub polling: String,
    /// SIP authentication user ID of line 1
    #[argh(option, default = "String::new()")]
    pub sip_user: String,
    /// SIP authentication password of line 1; `-` reads it from standard input,
    /// `file:PATH` from a file
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
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
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
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// go ahead although the device was seen (its phone loses its service)
    #[argh(switch)]
    pub yes: bool,
}

/// replace a device's phone by another (a new MAC): the association, its lines, contacts and
/// call lists move to the new MAC; the old phone's own credential is revoked and the new
/// MAC enrols (a window opens for it until it does)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "replace")]
pub struct DeviceReplace {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// MAC address of the phone being replaced
    #[argh(positional)]
    pub mac: String,
    /// MAC address of the new phone
    #[argh(positional)]
    pub new_mac: String,
    /// serial number of the new phone (default: its MAC)
    #[argh(option, default = "String::new()")]
    pub serial: String,
    /// go ahead although the old phone was seen (it loses its service)
    #[argh(switch)]
    pub yes: bool,
}

/// Runs a `device` subcommand.
pub fn device(action: DeviceAction) -> anyhow::Result<()> {
    match action {
        DeviceAction::Add(a) => add(a),
        DeviceAction::List(l) => list(l),
        DeviceAction::Show(s) => show(s),
        DeviceAction::Delete(d) => delete(d),
        DeviceAction::Replace(r) => replace(r),
        DeviceAction::Confirm(c) => confirm(c),
        DeviceAction::ApplyNow(a) => super::applynow::apply_now(a),
        DeviceAction::SipAddress(s) => super::applynow::sip_address(s),
        DeviceAction::SipPing(p) => super::applynow::sip_ping(p),
        DeviceAction::Bulk(b) => bulk(b),
        DeviceAction::SetVars(a) => templates::set_vars(a),
        DeviceAction::SetLine(a) => templates::set_line(a),
        DeviceAction::DeleteLine(a) => templates::delete_line(a),
    }
}

/// `device add`: associates one device, as the operator.
fn add(a: DeviceAdd) -> anyhow::Result<()> {
    let mut secrets = crate::cli::Secrets::new();
    let prov_password = secrets.read("prov-password", a.prov_password)?;
    let sip_password = secrets.read("sip-password", a.sip_password)?;
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
            prov_password,
            polling: a.polling,
        },
        line1: Line {
            line: 1,
            auth_user_id: a.sip_user,
            auth_password: sip_password,
            label: a.line_label,
            display_name: a.display_name,
            ..Default::default()
        },
    };
    as_operator(&config, &acc, |actor| {
        crate::actions::associations::associate(&mut conn, actor, None, &[input])
    })?;
    println!("device {} associated", a.mac.to_ascii_lowercase());
    Ok(())
}

/// `device list`: the account's devices (or the unassociated ones) with their activity.
fn list(l: DeviceList) -> anyhow::Result<()> {
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
    Ok(())
}

/// `device show`: a device, its lines and template values, its activity and its last
/// requests.
fn show(s: DeviceShow) -> anyhow::Result<()> {
    let (_c, conn, _acc) = open(s.config.as_deref())?;
    let mac: Mac = s.mac.parse()?;
    account_of(&conn, &mac, s.account.as_deref())?;
    let d =
        devices::find_device_by_mac(&conn, &mac)?.with_context(|| format!("no device {mac}"))?;
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
        (
            "prov. server",
            &crate::domain::provserver::mask_password(&e.prov_server).into_owned(),
        ),
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
    Ok(())
}

/// `account_of`, or `default` for a MAC no device row has when no account was named.
pub(super) fn account_or(
    conn: &rusqlite::Connection,
    mac: &Mac,
    only: Option<&str>,
    default: crate::domain::account::Account,
) -> anyhow::Result<crate::domain::account::Account> {
    if only.is_none() && devices::find_device_by_mac(conn, mac)?.is_none() {
        return Ok(default);
    }
    account_of(conn, mac, only)
}

/// The account a device belongs to: the operator acts on every account, as the operator of
/// the device's own.
/// With `--account`, a device of another account is not found there.
pub(super) fn account_of(
    conn: &rusqlite::Connection,
    mac: &Mac,
    only: Option<&str>,
) -> anyhow::Result<crate::domain::account::Account> {
    let account = match devices::find_device_by_mac(conn, mac)? {
        Some(dev) => db::accounts::find_by_id(conn, AccountId(dev.account_id))?
            .with_context(|| format!("the account of device {mac} is missing"))?,
        None => anyhow::bail!("no device {mac}"),
    };
    match only {
        Some(slug) if slug != account.slug => {
            crate::actions::accounts::find_account(conn, Some(slug))?;
            anyhow::bail!("no device {mac} in account `{slug}`")
        }
        _ => Ok(account),
    }
}

/// `device delete`: deletes a device of any account, as the operator of that account.
fn delete(d: DeviceDelete) -> anyhow::Result<()> {
    let (config, mut conn, _default) = open(d.config.as_deref())?;
    let mac: Mac = d.mac.parse()?;
    let acc = account_of(&conn, &mac, d.account.as_deref())?;
    as_operator(&config, &acc, |actor| {
        crate::actions::associations::delete_device(&mut conn, actor, &mac, d.yes)
    })?;
    println!("device {mac} deleted");
    Ok(())
}

/// `device bulk`: the device list's bulk actions, as the operator. The selection is
/// resolved and counted here and run at once (the count printed is the one acted on).
fn bulk(b: DeviceBulk) -> anyhow::Result<()> {
    use crate::actions::bulk::{self, Bulk};
    let (config, mut conn, acc) = open_account(b.config.as_deref(), b.account.as_deref())?;
    let what = Bulk::parse(&b.action, &b.value)?;
    let macs: Vec<Mac> = if b.all {
        anyhow::ensure!(b.mac.is_empty(), "give --mac or --all, not both");
        let filter = crate::domain::inventory::Filter {
            state: b
                .state
                .as_deref()
                .map(crate::domain::inventory::State::parse)
                .transpose()?,
            flag: b
                .flag
                .as_deref()
                .map(crate::domain::inventory::Flag::parse)
                .transpose()?,
            site: b.site,
            group: b.group,
            search: b.search,
            ..Default::default()
        };
        crate::actions::inventory::matching_macs(&conn, &acc, &filter)?
    } else {
        anyhow::ensure!(
            !b.mac.is_empty(),
            "name devices with --mac, or --all with a filter"
        );
        b.mac
            .iter()
            .map(|m| m.parse::<Mac>())
            .collect::<Result<_, _>>()?
    };
    let p = as_operator(&config, &acc, |actor| {
        bulk::preview(&mut conn, actor, &what, &macs)
    })?;
    println!("{}", p.description);
    for a in &p.impact.phones {
        println!("  {}  {}", a.mac, a.reason);
    }
    if b.dry_run {
        return Ok(());
    }
    let n = as_operator(&config, &acc, |actor| {
        bulk::run(
            &mut conn,
            actor,
            &what,
            &macs,
            macs.len(),
            b.yes,
            &mut crate::actions::Unwatched,
        )
    })?;
    println!("done: {}", what.describe(n));
    Ok(())
}

/// `device replace`: the same action as the console's and the API's.
fn replace(r: DeviceReplace) -> anyhow::Result<()> {
    let (config, mut conn, _default) = open(r.config.as_deref())?;
    let mac: Mac = r.mac.parse()?;
    let acc = account_of(&conn, &mac, r.account.as_deref())?;
    let (new, moved) = as_operator(&config, &acc, |actor| {
        crate::actions::associations::replace_device(
            &mut conn, actor, &mac, &r.new_mac, &r.serial, r.yes,
        )
    })?;
    crate::actions::associations::move_upload_files(
        &config.data_dir.join("uploads"),
        &mac,
        &new,
        &moved,
    );
    println!(
        "device {mac} replaced by {new}: the old phone's own credential is revoked; the new one enrols"
    );
    Ok(())
}

/// `device confirm`: Auto-Sync then applies to a device the default-profile policy
/// associated.
fn confirm(c: DeviceConfirm) -> anyhow::Result<()> {
    let (_c, mut conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let mac: Mac = c.mac.parse()?;
    crate::actions::accounts::confirm_device(&mut conn, &crate::cli::os_user(), &acc, &mac)?;
    println!("device {mac} confirmed: Auto-Sync applies to it");
    Ok(())
}
