//! `zerotouch inventory` and `zerotouch audit`: the device inventory with states, flags,
//! filters and counts (and check-ins as data), and the audit log.

use std::path::PathBuf;

use argh::FromArgs;

use super::{format_time, open, open_account, print_json};
use crate::domain::autosync::SyncState;
use crate::domain::inventory::{self, Filter, Flag, State};

/// the device inventory: state, flags, last sync, model, firmware, site, groups
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "inventory")]
pub struct InventoryCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// only this state: staged, provisioned-active, provisioned, unassociated
    #[argh(option)]
    pub state: Option<String>,
    /// only devices with this flag: auth-failing, credentials-pending, locked-out,
    /// firmware-behind, downgrade-pending, never-seen, change-pending
    #[argh(option)]
    pub flag: Option<String>,
    /// only devices at this site
    #[argh(option)]
    pub site: Option<String>,
    /// only devices in this group
    #[argh(option)]
    pub group: Option<String>,
    /// only devices whose MAC, serial, profile, model, firmware, site, groups, line name,
    /// SIP user or person contain every word of this
    #[argh(option)]
    pub search: Option<String>,
    /// order: mac (default), name, state, last-seen, last-sync, model, firmware, profile,
    /// site
    #[argh(option)]
    pub sort: Option<String>,
    /// the order reversed
    #[argh(switch)]
    pub desc: bool,
    /// print JSON (rows, counts, and check-ins per hour and per day)
    #[argh(switch)]
    pub json: bool,
}

/// the audit log: who changed what, when (secrets masked)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "audit")]
pub struct AuditCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// only this account's entries (slug)
    #[argh(option)]
    pub account: Option<String>,
    /// how many entries, newest first (default 100)
    #[argh(option, default = "100")]
    pub limit: u32,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn inventory_cmd(c: InventoryCmd) -> anyhow::Result<()> {
    let filter = Filter {
        state: c.state.as_deref().map(State::parse).transpose()?,
        flag: c.flag.as_deref().map(Flag::parse).transpose()?,
        site: c.site,
        group: c.group,
        search: c.search,
        sort: c
            .sort
            .as_deref()
            .map(inventory::Sort::parse)
            .transpose()?
            .unwrap_or_default(),
        descending: c.desc,
    };
    let (_cfg, conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let inv = crate::actions::inventory::inventory(&conn, &acc, &filter, inventory::Page::ALL)?;
    if c.json {
        let checkins = crate::actions::inventory::checkins(&conn, &acc)?;
        return print_json(&serde_json::json!({
            "account": acc.slug,
            "total": inv.total,
            "matched": inv.matched,
            "by_state": inv.by_state,
            "by_flag": inv.by_flag,
            "online": inv.online,
            "offline": inv.offline,
            "devices": inv.rows,
            "checkins": checkins,
        }));
    }
    println!(
        "{:<12}  {:<18} {:<16} {:<14} {:<14} {:<12} {:<20} {:<6} {:<24} {:<8} {:<40} FLAGS",
        "MAC",
        "STATE",
        "PROFILE",
        "MODEL",
        "FIRMWARE",
        "SITE",
        "GROUPS",
        "GEN",
        "LAST SYNC",
        "ONLINE",
        "EVIDENCE"
    );
    for r in &inv.rows {
        let generation = match r.credentials {
            Some(SyncState::Synced { generation }) => generation.to_string(),
            Some(SyncState::NeverSeen { .. }) => "never".into(),
            Some(SyncState::Pending { generation })
            | Some(SyncState::LockedOut { generation, .. }) => {
                format!("{generation}*")
            }
            None => "-".into(),
        };
        println!(
            "{:<12}  {:<18} {:<16} {:<14} {:<14} {:<12} {:<20} {:<6} {:<24} {:<8} {:<40} {}",
            r.mac,
            r.state.as_str(),
            r.profile.as_deref().unwrap_or("-"),
            r.model,
            r.firmware,
            r.site.as_deref().unwrap_or("-"),
            r.groups.join(","),
            generation,
            r.last_sync.map(format_time).unwrap_or_else(|| "--".into()),
            if r.online.online { "online" } else { "offline" },
            r.online.evidence,
            r.flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    println!("\n{} of {} device(s) shown.", inv.rows.len(), inv.total);
    let counts = |m: &std::collections::BTreeMap<&str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("states: {}", counts(&inv.by_state));
    println!("flags:  {}", counts(&inv.by_flag));
    println!("online: {} online, {} offline", inv.online, inv.offline);
    Ok(())
}

pub fn audit_cmd(c: AuditCmd) -> anyhow::Result<()> {
    let (_cfg, conn, _default) = open(c.config.as_deref())?;
    let account = match &c.account {
        Some(slug) => Some(
            crate::actions::accounts::find_account(&conn, Some(slug))?
                .id
                .0,
        ),
        None => None,
    };
    let entries = crate::db::audit::list_entries(&conn, account, c.limit)?;
    if c.json {
        return print_json(&entries);
    }
    for e in entries {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{}  {}:{}  {}  {}  before {}  after {}",
            format_time(e.ts),
            e.actor_kind.as_str(),
            e.actor,
            e.action,
            e.target,
            show(&e.before),
            show(&e.after)
        );
    }
    Ok(())
}
