//! `zerotouch profile add|list|show|delete`: profiles and their configuration files. Adding
//! and deleting go through `actions::profiles` as the command line's operator, exactly as
//! the console and the API do (a profile still in use is not deleted; lint findings of an
//! upload are printed as warnings).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use argh::FromArgs;

use super::{as_operator, open_account};
use crate::db::profiles;
use crate::domain::profile::{Polling, ProfileFields};

/// manage profiles
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "profile")]
pub struct ProfileCmd {
    #[argh(subcommand)]
    pub action: ProfileAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ProfileAction {
    Add(ProfileAdd),
    List(ProfileList),
    Show(ProfileShow),
    Delete(ProfileDelete),
}

/// create a profile
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct ProfileAdd {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name (2-50 letters, digits, _ and .)
    #[argh(positional)]
    pub name: String,
    /// a configuration file (repeat for several, in CONFIG_FILES order)
    #[argh(option)]
    pub file: Vec<PathBuf>,
    /// vendor model: Polycom_UCS_Device (default) or "Polycom Video Endpoint"
    #[argh(option, default = "String::from(\"Polycom_UCS_Device\")")]
    pub vendor_model: String,
    /// provisioning server address (may embed user:pass@ and a port)
    #[argh(option, default = "String::new()")]
    pub prov_server: String,
    /// provisioning server user
    #[argh(option, default = "String::new()")]
    pub prov_user: String,
    /// provisioning server password; `-` reads it from standard input, `file:PATH` from a
    /// file
    #[argh(option, default = "String::new()")]
    pub prov_password: String,
    /// polling: none (default), enable or disable
    #[argh(option, default = "String::from(\"none\")")]
    pub polling: String,
    /// boot server DHCP option: Default, Custom, Static or CustomAndDefault
    #[argh(option, default = "String::new()")]
    pub boot_server_option: String,
    /// DHCP option 60 type: ASCII or Binary
    #[argh(option, default = "String::new()")]
    pub option60_type: String,
    /// quick setup: enable or disable
    #[argh(option, default = "String::new()")]
    pub quick_setup: String,
    /// language, e.g. English_United_States
    #[argh(option, default = "String::new()")]
    pub language: String,
    /// software version per model family, e.g. VVX=5.9.8.1234 (repeatable)
    #[argh(option)]
    pub software: Vec<String>,
}

/// list profiles
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ProfileList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
}

/// show a profile
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ProfileShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name
    #[argh(positional)]
    pub name: String,
}

/// delete a profile (refused while devices use it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct ProfileDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// profile name
    #[argh(positional)]
    pub name: String,
}

pub fn profile(action: ProfileAction) -> anyhow::Result<()> {
    match action {
        ProfileAction::Add(a) => {
            let (config, mut conn, acc) = open_account(a.config.as_deref(), a.account.as_deref())?;
            let mut files = Vec::new();
            for path in &a.file {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, bytes));
            }
            let fields = ProfileFields {
                name: a.name.clone(),
                vendor_model: a.vendor_model,
                prov_server: a.prov_server,
                prov_user: a.prov_user,
                prov_password: crate::cli::Secrets::new().read("prov-password", a.prov_password)?,
                polling: Polling::parse(&a.polling)?,
                boot_server_option: a.boot_server_option,
                option60_type: a.option60_type,
                quick_setup: a.quick_setup,
                language: a.language,
                software: crate::domain::profile::parse_software(&a.software)?,
            };
            let transport = crate::actions::profiles::transport(&config);
            let (_, warnings) = as_operator(&config, &acc, |actor| {
                crate::actions::profiles::create_profile(
                    &mut conn, actor, &fields, files, transport,
                )
            })?;
            println!("profile `{}` created", a.name);
            for w in warnings {
                println!("lint: {w}");
            }
        }
        ProfileAction::List(l) => {
            let (_c, conn, acc) = open_account(l.config.as_deref(), l.account.as_deref())?;
            let rows = profiles::list_profiles(&conn, acc.id.0)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<30} {:<24} {:>5} {:>8}",
                "NAME", "VENDOR MODEL", "FILES", "DEVICES"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<30} {:<24} {:>5} {:>8}",
                    r.name, r.vendor_model, r.files, r.devices
                )?;
            }
        }
        ProfileAction::Show(s) => {
            let (_c, conn, acc) = open_account(s.config.as_deref(), s.account.as_deref())?;
            let p = profiles::find_profile_by_name(&conn, acc.id.0, &s.name)?
                .with_context(|| format!("no profile named `{}`", s.name))?;
            let f = &p.fields;
            println!("name:               {}", f.name);
            println!("vendor model:       {}", f.vendor_model);
            println!(
                "prov. server:       {}",
                crate::domain::provserver::mask_password(&f.prov_server)
            );
            println!("prov. user:         {}", f.prov_user);
            println!(
                "prov. password:     {}",
                if f.prov_password.is_empty() {
                    ""
                } else {
                    "(set)"
                }
            );
            println!("polling:            {}", f.polling.as_str());
            println!("boot server option: {}", f.boot_server_option);
            println!("option 60 type:     {}", f.option60_type);
            println!("quick setup:        {}", f.quick_setup);
            println!("language:           {}", f.language);
            for (family, version) in &f.software {
                println!("software {family:<9} {version}");
            }
            for (i, file) in p.files.iter().enumerate() {
                println!(
                    "file {}:             {} ({} bytes, sha256 {})",
                    i + 1,
                    file.file_name,
                    file.content.len(),
                    &file.sha256[..16]
                );
            }
            println!(
                "devices:            {}",
                profiles::count_profile_devices(&conn, p.id)?
            );
        }
        ProfileAction::Delete(d) => {
            let (config, mut conn, acc) = open_account(d.config.as_deref(), d.account.as_deref())?;
            as_operator(&config, &acc, |actor| {
                crate::actions::profiles::delete_profile(&mut conn, actor, &d.name)
            })?;
            println!("profile `{}` deleted", d.name);
        }
    }
    Ok(())
}
