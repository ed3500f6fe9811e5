//! `zerotouch assets`: the shared files phones read — list them, store a licence,
//! wallpaper, ring tone or directory file, store language files, delete, and import or
//! export the site directory as CSV. The same actions as the Phone Files page.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use argh::FromArgs;

use crate::datadir::DataDirs;
use crate::domain::{assets, directory};

/// manage the shared files phones read (directory, licences, language files, wallpapers, ring tones)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "assets")]
pub struct AssetsCmd {
    #[argh(subcommand)]
    pub action: AssetsAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum AssetsAction {
    List(AssetsList),
    Put(AssetsPut),
    PutLanguage(AssetsPutLanguage),
    Delete(AssetsDelete),
    Directory(DirectoryCmd),
}

/// list the shared files
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct AssetsList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
}

/// store a licence, wallpaper, ring tone or the directory file (replacing one of that name)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "put")]
pub struct AssetsPut {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
    /// the file
    #[argh(positional)]
    pub file: PathBuf,
    /// the name phones fetch (default: the file's own name)
    #[argh(option)]
    pub name: Option<String>,
}

/// store language files as FOLDER/LANGUAGE/<file>.xml
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "put-language")]
pub struct AssetsPutLanguage {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
    /// folder and language, e.g. VVXLocalization/German_Germany
    #[argh(positional)]
    pub place: String,
    /// the .xml files
    #[argh(positional)]
    pub files: Vec<PathBuf>,
}

/// delete a shared file, or a language folder (FOLDER or FOLDER/LANGUAGE)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct AssetsDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
    /// the name (or folder)
    #[argh(positional)]
    pub name: String,
}

/// the site directory (000000000000-directory.xml) as CSV
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "directory")]
pub struct DirectoryCmd {
    #[argh(subcommand)]
    pub action: DirectoryAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DirectoryAction {
    Export(DirectoryExport),
    Import(DirectoryImport),
}

/// print the site directory as CSV
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct DirectoryExport {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
}

/// replace (or with --append, extend) the site directory from a CSV file
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct DirectoryImport {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the account whose own files these are (its slug; served to its phones before the
    /// installation's of the same name); default: the installation's
    #[argh(option)]
    pub account: Option<String>,
    /// the CSV file (a header line naming the columns; `contact` required)
    #[argh(positional)]
    pub file: PathBuf,
    /// add the contacts to the directory instead of replacing it
    #[argh(switch)]
    pub append: bool,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs an assets command.
pub fn run(cmd: AssetsCmd) -> anyhow::Result<()> {
    let config_of = |c: &Option<PathBuf>, account: &Option<String>| -> anyhow::Result<PathBuf> {
        let Some(slug) = account else {
            let config = super::load_installed(c.as_deref())?;
            crate::datadir::prepare_data_dir(&config.data_dir)?;
            return Ok(DataDirs::under(&config.data_dir).assets);
        };
        // The account must exist; its directory is made when first used.
        let (config, _conn, account) = super::open_account(c.as_deref(), Some(slug))?;
        let dir = DataDirs::under(&config.data_dir).assets_of(&account.slug);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    };
    match cmd.action {
        AssetsAction::List(l) => {
            let dir = config_of(&l.config, &l.account)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<16} {:>9}  {:<20}  PATH",
                "KIND", "BYTES", "CHANGED"
            )?;
            for f in crate::actions::assets::list(&dir)? {
                writeln!(
                    out,
                    "{:<16} {:>9}  {:<20}  {}",
                    f.kind.as_str(),
                    f.size,
                    crate::domain::time::format_time(f.modified),
                    f.path
                )?;
            }
        }
        AssetsAction::Put(p) => {
            let dir = config_of(&p.config, &p.account)?;
            let name = match p.name {
                Some(n) => n,
                None => p
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let f = crate::actions::assets::put(&dir, &name, &read(&p.file)?)?;
            println!("stored {} ({}, {} bytes)", f.path, f.kind.label(), f.size);
        }
        AssetsAction::PutLanguage(p) => {
            let dir = config_of(&p.config, &p.account)?;
            let (folder, language) = p.place.split_once('/').context(
                "give the place as FOLDER/LANGUAGE, e.g. VVXLocalization/German_Germany",
            )?;
            // Every file is checked before any is written.
            let mut files = Vec::new();
            for path in &p.files {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = read(path)?;
                let place = assets::language_path(folder, language, &name)?;
                crate::domain::xml::check_well_formed(&place, &bytes)?;
                files.push((name, bytes));
            }
            for (name, bytes) in files {
                let f =
                    crate::actions::assets::put_language(&dir, folder, language, &name, &bytes)?;
                println!("stored {} ({} bytes)", f.path, f.size);
            }
        }
        AssetsAction::Delete(d) => {
            let dir = config_of(&d.config, &d.account)?;
            crate::actions::assets::delete(&dir, &d.name)?;
            println!("deleted {}", d.name);
        }
        AssetsAction::Directory(d) => match d.action {
            DirectoryAction::Export(e) => {
                let dir = config_of(&e.config, &e.account)?;
                std::io::stdout().lock().write_all(&directory::to_csv(
                    &crate::actions::assets::read_directory(&dir)?,
                ))?;
            }
            DirectoryAction::Import(i) => {
                let dir = config_of(&i.config, &i.account)?;
                let mut contacts = directory::from_csv(&read(&i.file)?)?;
                if i.append {
                    let mut all = crate::actions::assets::read_directory(&dir)?;
                    all.append(&mut contacts);
                    contacts = all;
                }
                crate::actions::assets::write_directory(&dir, &contacts, |n| {
                    format!("contact {}", n + 1)
                })?;
                println!("site directory: {} contact(s)", contacts.len());
            }
        },
    }
    Ok(())
}
