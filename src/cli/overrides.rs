//! `zerotouch overrides`: settings made on phones (their uploaded `-phone.cfg`, `-web.cfg`,
//! `-system.cfg`): list the devices that have some, show one device's with the server
//! values they hide, and clear them for one device or many.

use std::path::PathBuf;

use argh::FromArgs;

use crate::datadir::DataDirs;
use crate::domain::mac::Mac;
use crate::domain::overrides::RESET_ON_PHONE;
use crate::domain::provstate::Reach;

/// overrides made on phones: list, show, clear
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "overrides")]
pub struct OverridesCmd {
    #[argh(subcommand)]
    pub action: OverridesAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum OverridesAction {
    List(OvList),
    Show(OvShow),
    Clear(OvClear),
}

/// list devices whose stored override files set parameters
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct OvList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// only the devices of this account (its slug; default: every account)
    #[argh(option)]
    pub account: Option<String>,
}

/// show a device's overrides and the server values they hide
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct OvShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
}

/// clear the overrides of one or more devices (each gets an empty override file)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "clear")]
pub struct OvClear {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC addresses
    #[argh(positional)]
    pub macs: Vec<String>,
}

/// Runs an overrides command.
pub fn run(cmd: OverridesCmd) -> anyhow::Result<()> {
    match cmd.action {
        OverridesAction::List(l) => {
            let (config, conn, acc) =
                super::open_account(l.config.as_deref(), l.account.as_deref())?;
            let rows = crate::actions::overrides::list_overridden(
                &conn,
                &DataDirs::under(&config.data_dir).uploads,
                l.account.is_some().then_some(acc.id.0),
            )?;
            if rows.is_empty() {
                println!("no device has overrides");
            }
            for (mac, files, n) in rows {
                println!("{mac}  {n:>4} parameter(s)  {}", files.join(", "));
            }
        }
        OverridesAction::Show(s) => {
            let (config, conn, default) = super::open(s.config.as_deref())?;
            let mac: Mac = s.mac.parse()?;
            let acc = super::devices::account_or(&conn, &mac, s.account.as_deref(), default)?;
            let reach = Reach {
                host: "zerotouch".into(),
                base_path: if acc.is_default {
                    "/".into()
                } else {
                    acc.service_path()
                },
                secure: false,
            };
            let trust = crate::tls::phone_trust(&config, None);
            let uploads = DataDirs::under(&config.data_dir).uploads;
            let found = crate::actions::overrides::device_overrides(
                &conn,
                &uploads,
                &mac,
                &reach,
                trust.as_ref(),
            )?;
            if found.files.is_empty() {
                println!("{mac} has stored no override file");
            }
            for f in &found.files {
                println!("{} ({}, {} bytes)", f.file, f.written_by, f.size);
                if let Some(e) = &f.error {
                    println!("  cannot be read: {e}");
                }
                for p in &f.params {
                    let hidden = match &p.server {
                        Some(sv) => format!("hides `{}` from {}", sv.value, sv.source),
                        None => "the server sets nothing".into(),
                    };
                    println!(
                        "  {:<40} {:<28} {hidden}{}",
                        p.name,
                        format!("\"{}\"", p.value),
                        if p.redirect.is_some() {
                            "  [redirect]"
                        } else {
                            ""
                        }
                    );
                }
                if let Ok(params) = crate::actions::overrides::read_params(&uploads, &mac, &f.file)
                {
                    let server = |name: &str| found.server_value(name).map(|s| s.value.clone());
                    let findings = crate::diag::findings::override_findings(
                        mac.as_str(),
                        &f.file,
                        &params,
                        &server,
                    );
                    let mut out = std::io::stdout().lock();
                    if !findings.is_empty() {
                        crate::diag::write_findings(&mut out, &findings)?;
                    }
                }
            }
        }
        OverridesAction::Clear(c) => {
            let (config, conn, _) = super::open(c.config.as_deref())?;
            anyhow::ensure!(!c.macs.is_empty(), "name at least one MAC address");
            let mut macs = Vec::new();
            for m in &c.macs {
                let mac: Mac = m.parse()?;
                anyhow::ensure!(
                    crate::db::devices::find_device_by_mac(&conn, &mac)?.is_some(),
                    "no device {mac}; nothing was cleared"
                );
                macs.push(mac);
            }
            let uploads = DataDirs::under(&config.data_dir).uploads;
            for mac in macs {
                let files = crate::actions::overrides::clear(&conn, &uploads, &mac)?;
                if files.is_empty() {
                    println!("{mac}: no override file stored");
                } else {
                    println!("{mac}: cleared {}", files.join(", "));
                }
            }
            for line in RESET_ON_PHONE {
                println!("{line}");
            }
        }
    }
    Ok(())
}
