//! `zerotouch migrate-tree`: move an existing FTP/TFTP boot server's files in
//! (`actions::migrate`). A dry run unless `--apply`.

use std::path::PathBuf;

use anyhow::Context;
use argh::FromArgs;

use super::open_account;
use crate::actions::migrate;

/// move an FTP/TFTP server's Polycom files in: profiles, associations, per-phone values and
/// overrides (a dry run unless --apply)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "migrate-tree")]
pub struct MigrateTree {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account (slug; default: the default account)
    #[argh(option)]
    pub account: Option<String>,
    /// the new profiles are named PREFIX_1, PREFIX_2, ... (default: migrated)
    #[argh(option, default = "String::from(\"migrated\")")]
    pub prefix: String,
    /// write what the dry run shows (one transaction)
    #[argh(switch)]
    pub apply: bool,
    /// the old server's root: a directory, a .tar.gz or a .zip
    #[argh(positional)]
    pub tree: PathBuf,
}

pub fn run(c: MigrateTree) -> anyhow::Result<()> {
    let tree = migrate::read_tree(&c.tree).with_context(|| format!("{}", c.tree.display()))?;
    let (cfg, mut conn, acc) = open_account(c.config.as_deref(), c.account.as_deref())?;
    let dirs = crate::datadir::DataDirs::under(&cfg.data_dir);
    let r = migrate::migrate(
        &mut conn,
        &crate::cli::os_user(),
        &acc,
        &dirs,
        &tree,
        &c.prefix,
        c.apply,
    )
    .with_context(|| format!("{}", c.tree.display()))?;
    println!("{} files read from {}", tree.len(), c.tree.display());
    for (name, files, devices) in &r.profiles {
        println!(
            "profile {name}: {devices} device(s), files: {}",
            if files.is_empty() {
                "none".to_string()
            } else {
                files.join(", ")
            }
        );
    }
    println!(
        "{} device(s) associated, {} device-level value(s), {} override file(s)",
        r.devices, r.values, r.overrides
    );
    for (path, size) in &r.firmware {
        println!(
            "firmware {path} ({size} bytes): not moved; import the release with `zerotouch firmware import`"
        );
    }
    for (path, param) in &r.secrets {
        println!("secret {param} in {path}: sealed when stored");
    }
    for (what, why) in &r.ignored {
        println!("left out {what}: {why}");
    }
    if r.applied {
        println!("applied");
    } else {
        println!("dry run, nothing written: run again with --apply");
    }
    Ok(())
}
