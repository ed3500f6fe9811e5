//! `zerotouch firmware`: import a UC Software release (zip or folder), list the catalogue
//! per model family, show a release, delete one (refused while profiles use it), check
//! every file against its checksum, and the rollout of versions over the devices. The
//! same actions as the Firmware page and the API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

use crate::actions::firmware::{import, rollout};
use crate::datadir::DataDirs;
use crate::domain::firmware::Release;

/// manage the firmware catalogue (UC Software releases)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "firmware")]
pub struct FirmwareCmd {
    #[argh(subcommand)]
    pub action: FirmwareAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum FirmwareAction {
    Import(FwImport),
    List(FwList),
    Show(FwShow),
    Delete(FwDelete),
    Verify(FwVerify),
    Rollout(FwRollout),
}

/// import a UC Software release: a zip as Polycom ships it (split or combined) or a folder
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct FwImport {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the release zip or folder
    #[argh(positional)]
    pub file: PathBuf,
    /// model family the release is for, when its images do not say (a combined sip.ld);
    /// repeatable: VVX, Trio, CCX, Edge, SoundPoint, SoundStation
    #[argh(option)]
    pub family: Vec<String>,
    /// the version, when the release has no sip.ver
    #[argh(option)]
    pub version: Option<String>,
}

/// list the catalogue: versions per model family
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct FwList {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// show a release: families, models, part numbers, files and checksums
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct FwShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the version
    #[argh(positional)]
    pub version: String,
}

/// delete a release (refused while profiles use it)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct FwDelete {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the version
    #[argh(positional)]
    pub version: String,
}

/// check every catalogued file against its checksum (exit code 1 when one differs)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify")]
pub struct FwVerify {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
}

/// how many devices of each model run which version, against their profiles' versions
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rollout")]
pub struct FwRollout {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// Runs a firmware command.
pub fn run(cmd: FirmwareCmd) -> anyhow::Result<ExitCode> {
    match cmd.action {
        FirmwareAction::Import(i) => {
            let (config, mut conn, _) = super::open(i.config.as_deref())?;
            let opts = import::ImportOptions {
                families: import::parse_families(&i.family)?,
                version: i.version,
                source: String::new(),
                imported_by: "cli".into(),
                max_bytes: config.limits.firmware_upload_bytes,
            };
            let dirs = DataDirs::under(&config.data_dir);
            let r = import::import_path(&mut conn, &dirs.firmware, &i.file, &opts)?;
            println!(
                "imported firmware {} ({}; {}) from {}: {} files, {} bytes",
                r.version,
                r.layout.as_str(),
                families(&r),
                r.source,
                r.files.len(),
                r.bytes()
            );
            print_models(&r);
        }
        FirmwareAction::List(l) => list(l)?,
        FirmwareAction::Show(s) => show(s)?,
        FirmwareAction::Delete(d) => {
            let (config, mut conn, _) = super::open(d.config.as_deref())?;
            crate::actions::firmware::delete(
                &mut conn,
                &DataDirs::under(&config.data_dir).firmware,
                &d.version,
            )?;
            println!("firmware {} deleted", d.version);
        }
        FirmwareAction::Verify(v) => {
            let (config, conn, _) = super::open(v.config.as_deref())?;
            let report = crate::actions::firmware::verify(
                &conn,
                &DataDirs::under(&config.data_dir).firmware,
            )?;
            for p in &report.problems {
                println!("{p}");
            }
            println!(
                "{} file(s) checked, {} damaged or missing",
                report.files,
                report.problems.len()
            );
            if !report.problems.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        FirmwareAction::Rollout(r) => {
            let (_c, conn, _) = super::open(r.config.as_deref())?;
            let rows = rollout::rollout(&conn)?;
            if r.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<12} {:<14} {:>7} {:>7} {:>7} {:>9} {:>8}  {:<20} VERSIONS RUNNING",
                "FAMILY",
                "MODEL",
                "DEVICES",
                "CURRENT",
                "BEHIND",
                "DOWNGRADE",
                "NO IMAGE",
                "PROFILE VERSION"
            );
            for row in rows {
                let running: Vec<String> = row
                    .versions
                    .iter()
                    .map(|(v, n)| format!("{v} ×{n}"))
                    .collect();
                println!(
                    "{:<12} {:<14} {:>7} {:>7} {:>7} {:>9} {:>8}  {:<20} {}",
                    row.family,
                    row.model,
                    row.devices,
                    row.current,
                    row.behind,
                    row.downgrade,
                    row.no_image,
                    if row.targets.is_empty() {
                        "--".to_string()
                    } else {
                        row.targets.join(", ")
                    },
                    running.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `firmware list`: the versions per model family, then every release.
fn list(l: FwList) -> anyhow::Result<()> {
    let (_c, conn, _) = super::open(l.config.as_deref())?;
    let releases = crate::actions::firmware::list(&conn)?;
    let by_family = crate::actions::firmware::versions_by_family(&conn)?;
    if releases.is_empty() {
        println!("the catalogue is empty; import a release with `zerotouch firmware import FILE`");
    }
    for (family, versions) in &by_family {
        println!("{family}: {}", versions.join(", "));
    }
    if !releases.is_empty() {
        println!();
        println!(
            "{:<16} {:<9} {:<22} {:>6} {:>12}  SOURCE",
            "VERSION", "LAYOUT", "FAMILIES", "FILES", "BYTES"
        );
    }
    for r in &releases {
        println!(
            "{:<16} {:<9} {:<22} {:>6} {:>12}  {}{}",
            r.version,
            r.layout.as_str(),
            families(r),
            r.files.len(),
            r.bytes(),
            r.source,
            if r.damaged().is_empty() {
                String::new()
            } else {
                format!("  ({} damaged)", r.damaged().len())
            }
        );
    }
    Ok(())
}

/// `firmware show`: a release, its models, the profiles that use it and its files.
fn show(s: FwShow) -> anyhow::Result<()> {
    let (_c, conn, _) = super::open(s.config.as_deref())?;
    let r = crate::actions::firmware::release(&conn, &s.version)?;
    println!("version:     {}", r.version);
    println!("layout:      {}", r.layout.as_str());
    println!("families:    {}", families(&r));
    println!("source:      {}", r.source);
    println!(
        "imported:    {} by {}",
        crate::domain::time::format_time(r.imported_at),
        r.imported_by
    );
    print_models(&r);
    let users = crate::db::firmware::list_profiles_using(&conn, &r.version)?;
    if !users.is_empty() {
        let list: Vec<String> = users.iter().map(|(p, f)| format!("{p} ({f})")).collect();
        println!("profiles:    {}", list.join(", "));
    }
    let mut out = std::io::stdout().lock();
    for f in &r.files {
        writeln!(
            out,
            "  {:<9} {:>12}  {}  {}",
            f.status.as_str(),
            f.size,
            &f.sha256[..16.min(f.sha256.len())],
            f.path
        )?;
    }
    Ok(())
}

fn families(r: &Release) -> String {
    r.families
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_models(r: &Release) {
    for (family, models) in r.models() {
        println!("  {family}: {}", models.join(", "));
    }
    if r.has_combined_image() {
        println!(
            "  sip.ld: combined image for every model of {}",
            families(r)
        );
    }
    let unknown = r.unknown_parts();
    if !unknown.is_empty() {
        println!(
            "  unknown part numbers: {} (not in the part table; served to phones that ask for them)",
            unknown.join(", ")
        );
    }
}
