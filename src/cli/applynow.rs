//! `zerotouch device apply-now` and `device sip-address`: SIP check-sync to devices now,
//! through `actions::sip` as the command line's operator (the same action as the console's
//! button and the API's route).

use std::path::PathBuf;

use argh::FromArgs;

use super::{as_operator, open_account};
use crate::actions::sip::{self, Selection};
use crate::domain::mac::Mac;

/// make changes reach phones now: SIP NOTIFY check-sync to each device's proven address
/// (phones that will restart are counted first: confirm with --yes)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "apply-now")]
pub struct ApplyNow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account); alone, every device of it
    #[argh(option)]
    pub account: Option<String>,
    /// every device of this group
    #[argh(option)]
    pub group: Option<String>,
    /// every device of this site
    #[argh(option)]
    pub site: Option<String>,
    /// go ahead although phones will restart
    #[argh(switch)]
    pub yes: bool,
    /// print the report as JSON
    #[argh(switch)]
    pub json: bool,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// is each device reachable: SIP OPTIONS to its proven address (the answer is kept as
/// online evidence)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sip-ping")]
pub struct SipPing {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// print the report as JSON
    #[argh(switch)]
    pub json: bool,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// set or clear the address check-sync goes to while a device has proved none (a fallback)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sip-address")]
pub struct SipAddress {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// IP address or IP:port (omit to clear)
    #[argh(positional)]
    pub address: Option<String>,
}

pub fn apply_now(a: ApplyNow) -> anyhow::Result<()> {
    let ways = [a.group.is_some(), a.site.is_some(), !a.macs.is_empty()];
    if ways.iter().filter(|w| **w).count() > 1 {
        anyhow::bail!("name devices one way: MACs, --group or --site");
    }
    let selection = match (&a.group, &a.site) {
        (Some(g), _) => Selection::Group(g.clone()),
        (_, Some(s)) => Selection::Site(s.clone()),
        _ if !a.macs.is_empty() => Selection::Macs(a.macs.clone()),
        _ if a.account.is_some() => Selection::Account,
        _ => anyhow::bail!(
            "name devices: MACs, --group, --site, or --account for every device of an account"
        ),
    };
    let (config, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
    let report = as_operator(&config, &acc, |actor| {
        sip::apply_now(&mut conn, actor, &config.sip, &selection, a.yes)
    })?;
    print_report(&report, a.json)
}

pub fn sip_ping(p: SipPing) -> anyhow::Result<()> {
    let (config, mut conn, acc) = open_account(p.config.as_deref(), p.account.as_deref())?;
    let selection = Selection::Macs(p.macs.clone());
    let report = as_operator(&config, &acc, |actor| {
        sip::ping(&mut conn, actor, &config.sip, &selection)
    })?;
    print_report(&report, p.json)
}

fn print_report(report: &sip::Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "{} sent ({} through the PBX), {} answered, {} unreachable, {} not sent, {} restarting in {} wave(s), {} re-polled",
        report.sent,
        report.via_pbx,
        report.answered,
        report.unreachable,
        report.not_sent,
        report.restarts,
        report.waves,
        report.repolled
    );
    for d in &report.devices {
        let status = d.status.map(|s| format!(" {s}")).unwrap_or_default();
        let to = d
            .target
            .as_deref()
            .map(|t| format!(" to {t} ({})", d.origin.unwrap_or("")))
            .unwrap_or_default();
        println!("{}  {}{status}{to}: {}", d.mac, d.result, d.detail);
        for c in &d.changes {
            println!("    {}: {}", c.change, c.state);
        }
    }
    Ok(())
}

pub fn sip_address(s: SipAddress) -> anyhow::Result<()> {
    let (config, mut conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
    let mac: Mac = s.mac.parse()?;
    as_operator(&config, &acc, |actor| {
        sip::set_override(&mut conn, actor, &config.sip, &mac, s.address.as_deref())
    })?;
    match s.address {
        Some(a) => {
            println!("{mac}: check-sync falls back to {a} while the device has proved no address")
        }
        None => println!("{mac}: fallback address cleared"),
    }
    Ok(())
}
