//! `zerotouch site|group|policy ...`: sites, device groups with priorities, and policy values
//! at account, site, group and device level (docs/design.md §5). Each command calls
//! `domain::policy` as the OS user (audited).

use std::path::PathBuf;

use argh::FromArgs;

use super::{as_operator, open_account, print_json};
use crate::actions::provisioning::mask;
use crate::db::policies;
use crate::domain::mac::Mac;
use crate::domain::policy::Target;

/// sites: add, list, delete, assign devices
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "site")]
pub struct SiteCmd {
    #[argh(subcommand)]
    pub action: SiteAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum SiteAction {
    Add(SiteAdd),
    List(SiteList),
    Delete(SiteDelete),
    Assign(SiteAssign),
}

/// create a site
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct SiteAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// site name (1-64 letters, digits, spaces, _ . -)
    #[argh(positional)]
    pub name: String,
    /// description
    #[argh(option, default = "String::new()")]
    pub description: String,
}

/// list sites
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct SiteList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// delete a site (its devices lose their site; its policies are removed)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct SiteDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// site name
    #[argh(positional)]
    pub name: String,
}

/// put devices at a site (`-` as the site name clears it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "assign")]
pub struct SiteAssign {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// site name, or `-` for none
    #[argh(positional)]
    pub name: String,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// device groups: add, list, priorities, members
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "group")]
pub struct GroupCmd {
    #[argh(subcommand)]
    pub action: GroupAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum GroupAction {
    Add(GroupAdd),
    List(GroupList),
    SetPriority(GroupSetPriority),
    Delete(GroupDelete),
    AddMember(GroupMembers),
    RemoveMember(GroupRemoveMembers),
}

/// create a device group
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct GroupAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// group name
    #[argh(positional)]
    pub name: String,
    /// priority: a higher one wins when a device is in several groups (default 0)
    #[argh(option, default = "0")]
    pub priority: i64,
    /// description
    #[argh(option, default = "String::new()")]
    pub description: String,
}

/// list groups in precedence order, with their members
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct GroupList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// change a group's priority
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set-priority")]
pub struct GroupSetPriority {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// group name
    #[argh(positional)]
    pub name: String,
    /// the new priority
    #[argh(positional)]
    pub priority: i64,
}

/// delete a group (its members leave it; its policies are removed)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct GroupDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// group name
    #[argh(positional)]
    pub name: String,
}

/// add devices to a group
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add-member")]
pub struct GroupMembers {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// group name
    #[argh(positional)]
    pub name: String,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// take devices out of a group
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "remove-member")]
pub struct GroupRemoveMembers {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// group name
    #[argh(positional)]
    pub name: String,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// policy values at account, site, group or device level
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "policy")]
pub struct PolicyCmd {
    #[argh(subcommand)]
    pub action: PolicyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum PolicyAction {
    Set(PolicySet),
    Unset(PolicyUnset),
    List(PolicyList),
    Deliberate(PolicyDeliberate),
    Undeliberate(PolicyUndeliberate),
    Deliberates(PolicyDeliberates),
}

/// mark a parameter name the dictionary does not know as deliberate, with a reason
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "deliberate")]
pub struct PolicyDeliberate {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// why the name is deliberate (shown wherever it is used)
    #[argh(option)]
    pub reason: String,
    /// the name, or a pattern with N for each index (acme.N.tweak)
    #[argh(positional)]
    pub name: String,
}

/// remove the deliberate mark of a parameter name
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "undeliberate")]
pub struct PolicyUndeliberate {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// the name as marked
    #[argh(positional)]
    pub name: String,
}

/// list the parameter names marked deliberate, with their reasons
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "deliberates")]
pub struct PolicyDeliberates {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// set a parameter: SCOPE is account, site:NAME, group:NAME or device:MAC
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "set")]
pub struct PolicySet {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// account, site:NAME, group:NAME or device:MAC
    #[argh(positional)]
    pub scope: String,
    /// parameter name, e.g. lcl.ml.lang
    #[argh(positional)]
    pub parameter: String,
    /// value
    #[argh(positional)]
    pub value: String,
}

/// remove a parameter from a scope
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "unset")]
pub struct PolicyUnset {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// account, site:NAME, group:NAME or device:MAC
    #[argh(positional)]
    pub scope: String,
    /// parameter name
    #[argh(positional)]
    pub parameter: String,
}

/// list every policy value of the account (secrets masked)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct PolicyList {
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

fn macs(list: &[String]) -> anyhow::Result<Vec<Mac>> {
    if list.is_empty() {
        anyhow::bail!("give at least one MAC address");
    }
    Ok(list.iter().map(|m| m.parse()).collect::<Result<_, _>>()?)
}

pub fn site(action: SiteAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        SiteAction::Add(a) => {
            let (_c, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            crate::actions::policy::add_site(&mut conn, &actor, &acc, &a.name, &a.description)?;
            println!("site `{}` created", a.name);
        }
        SiteAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            for s in policies::list_sites(&conn, acc.id.0)? {
                println!("{:<30} {}", s.name, s.description);
            }
        }
        SiteAction::Delete(d) => {
            let (_c, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            crate::actions::policy::delete_site(&mut conn, &actor, &acc, &d.name)?;
            println!("site `{}` deleted", d.name);
        }
        SiteAction::Assign(a) => {
            let list = macs(&a.macs)?;
            let (_c, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let site = (a.name != "-").then_some(a.name.as_str());
            crate::actions::policy::assign_site(&mut conn, &actor, &acc, site, &list)?;
            println!(
                "{} device(s) now at {}",
                list.len(),
                site.unwrap_or("no site")
            );
        }
    }
    Ok(())
}

pub fn group(action: GroupAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        GroupAction::Add(a) => {
            let (_c, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            crate::actions::policy::add_group(
                &mut conn,
                &actor,
                &acc,
                &a.name,
                a.priority,
                &a.description,
            )?;
            println!("group `{}` created (priority {})", a.name, a.priority);
        }
        GroupAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            println!("{:<30} {:>8}  MEMBERS", "GROUP", "PRIORITY");
            for g in policies::list_groups(&conn, acc.id.0)? {
                let members = policies::list_members(&conn, g.id)?;
                println!("{:<30} {:>8}  {}", g.name, g.priority, members.join(" "));
            }
        }
        GroupAction::SetPriority(s) => {
            let (_c, mut conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            crate::actions::policy::set_group_priority(
                &mut conn, &actor, &acc, &s.name, s.priority,
            )?;
            println!("group `{}`: priority {}", s.name, s.priority);
        }
        GroupAction::Delete(d) => {
            let (_c, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            crate::actions::policy::delete_group(&mut conn, &actor, &acc, &d.name)?;
            println!("group `{}` deleted", d.name);
        }
        GroupAction::AddMember(m) => {
            let list = macs(&m.macs)?;
            let (_c, mut conn, acc) = open_account(m.config.as_deref(), m.account.as_deref())?;
            let n = crate::actions::policy::set_membership(
                &mut conn, &actor, &acc, &m.name, &list, true,
            )?;
            println!("{n} device(s) added to `{}`", m.name);
        }
        GroupAction::RemoveMember(m) => {
            let list = macs(&m.macs)?;
            let (_c, mut conn, acc) = open_account(m.config.as_deref(), m.account.as_deref())?;
            let n = crate::actions::policy::set_membership(
                &mut conn, &actor, &acc, &m.name, &list, false,
            )?;
            println!("{n} device(s) removed from `{}`", m.name);
        }
    }
    Ok(())
}

/// After a policy change: with the account's "apply now" setting, check-sync to the
/// devices of `target` the change does not restart (`actions::sip::after_change`). The
/// command waits for its sends (a background thread would end with the process) and says
/// which phones wait for their next poll.
fn apply_after_change(
    config: &crate::config::Config,
    conn: &rusqlite::Connection,
    acc: &crate::domain::account::Account,
    target: &Target,
) -> anyhow::Result<()> {
    if !acc.sip.apply_after_change {
        return Ok(());
    }
    let macs = crate::actions::sip::affected_by_target(conn, acc, target)?;
    apply_macs_after_change(config, conn, acc, macs)
}

/// The same for a change that affects `macs` of `acc` (a device's line).
pub(crate) fn apply_macs_after_change(
    config: &crate::config::Config,
    conn: &rusqlite::Connection,
    acc: &crate::domain::account::Account,
    macs: Vec<String>,
) -> anyhow::Result<()> {
    if !acc.sip.apply_after_change {
        return Ok(());
    }
    let db = crate::actions::sip::DbAt {
        path: config.database_path(),
        busy_timeout: std::time::Duration::from_millis(config.database.busy_timeout_ms),
    };
    let (after, handle) = crate::cli::as_operator(config, acc, |a| {
        crate::actions::sip::after_change(conn, a, &config.sip, &db, macs)
    });
    println!("after the change: {} ({})", after.mode, after.detail);
    for m in &after.restarting {
        println!("  {m}: the change restarts it; waits for its next poll");
    }
    if let Some(h) = handle {
        let _ = h.join();
    }
    Ok(())
}

pub fn policy_cmd(action: PolicyAction) -> anyhow::Result<()> {
    let actor = crate::cli::os_user();
    match action {
        PolicyAction::Set(s) => {
            let target = Target::parse(&s.scope)?;
            let (config, mut conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let warnings = crate::actions::policy::set_policy(
                &mut conn,
                &actor,
                &acc,
                &target,
                &s.parameter,
                &s.value,
            )?;
            for w in &warnings {
                eprintln!("{w}");
            }
            println!("{target}: {} set", s.parameter);
            apply_after_change(&config, &conn, &acc, &target)?;
        }
        PolicyAction::Deliberate(d) => {
            let (config, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            as_operator(&config, &acc, |a| {
                crate::actions::params::mark_deliberate(&mut conn, a, &d.name, &d.reason)
            })?;
            println!("{}: marked deliberate ({})", d.name.trim(), d.reason.trim());
        }
        PolicyAction::Undeliberate(d) => {
            let (config, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            as_operator(&config, &acc, |a| {
                crate::actions::params::unmark_deliberate(&mut conn, a, &d.name)
            })?;
            println!("{}: no longer deliberate", d.name.trim());
        }
        PolicyAction::Deliberates(d) => {
            let (config, conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            let rows = as_operator(&config, &acc, |a| {
                crate::actions::params::list_deliberate(&conn, a)
            })?;
            for r in rows {
                println!("{:<40} {} (by {})", r.name, r.reason, r.marked_by);
            }
        }
        PolicyAction::Unset(u) => {
            let target = Target::parse(&u.scope)?;
            let (config, mut conn, acc) = open_account(u.config.as_deref(), u.account.as_deref())?;
            crate::actions::policy::unset_policy(&mut conn, &actor, &acc, &target, &u.parameter)?;
            println!("{target}: {} removed", u.parameter);
            apply_after_change(&config, &conn, &acc, &target)?;
        }
        PolicyAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            let mut rows = policies::list_policies(&conn, acc.id.0)?;
            for p in &mut rows {
                p.value = mask(&p.parameter, &p.value);
            }
            if l.json {
                return print_json(&rows);
            }
            println!("{:<26} {:<40} VALUE", "SCOPE", "PARAMETER");
            for p in rows {
                let scope = match p.scope {
                    policies::ScopeKind::Account => "account".to_string(),
                    k => format!("{}:{}", k.as_str(), p.target),
                };
                println!("{scope:<26} {:<40} {}", p.parameter, p.value);
            }
        }
    }
    Ok(())
}
