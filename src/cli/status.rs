//! `zerotouch status`: what needs the admin now in one account, the same counts as the
//! console's home page and the API's summary (`actions::summary`).

use std::path::PathBuf;

use argh::FromArgs;

use crate::datadir::DataDirs;

/// what needs you now: devices by state, locked out, failing sign-in, pending, never seen,
/// firmware behind, overrides, enrolment, and the first-run checklist
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct StatusCmd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// print JSON (the API's summary)
    #[argh(switch)]
    pub json: bool,
}

pub fn run(c: StatusCmd) -> anyhow::Result<()> {
    let (config, conn, account) = super::open_account(c.config.as_deref(), c.account.as_deref())?;
    let s = crate::actions::summary::summary(
        &conn,
        &account,
        &DataDirs::under(&config.data_dir).uploads,
    )?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "account {} ({}): {} devices, {} associated, {} seen but not associated, {} online, {} offline, {} profiles",
        s.account_name,
        s.account,
        s.devices,
        s.associated,
        s.unassociated,
        s.online,
        s.offline,
        s.profiles
    );
    for card in &s.cards {
        let mark = if card.needs_action && card.count > 0 {
            "!"
        } else {
            " "
        };
        let fix = if card.count > 0 { card.fix } else { "" };
        println!("{mark} {:>7}  {:<42} {fix}", card.count, card.label);
    }
    let fa = &s.firmware_adoption;
    if fa.eligible > 0 {
        println!(
            "firmware: {} of {} devices run their profile's version",
            fa.current, fa.eligible
        );
    }
    if !s.checklist_complete {
        println!("getting started:");
        for step in &s.checklist {
            println!("  [{}] {}", if step.done { "x" } else { " " }, step.label);
        }
    }
    Ok(())
}
