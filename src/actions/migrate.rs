//! `zerotouch migrate-tree`: reads an existing FTP/TFTP boot server's root (a directory, a
//! `.tar.gz` or a `.zip`), plans what becomes what (`domain::migrate`) and, when asked,
//! applies the plan in one transaction: profiles with their files, associations,
//! device-level values (secrets sealed like every policy value), and stored overrides.
//!
//! Nothing is written on a dry run, nor when any problem is found: every problem names its
//! file (and line) or MAC, and the database stays as it was. Override files are written
//! under temporary names first and moved into place only once the transaction committed.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::json;

use crate::datadir::DataDirs;
use crate::db::policies::{self, ScopeKind};
use crate::db::{devices, profiles};
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::device::DeviceInput;
use crate::domain::mac::Mac;
use crate::domain::migrate::{self, MAX_CONFIG_BYTES, Plan, Tree, TreeFile, is_config_name};
use crate::domain::policy::check_policy;
use crate::domain::polycom::models::UCS_VENDOR_MODEL;
use crate::domain::profile::ProfileFields;
use crate::error::{Error, FieldError, Result};

/// The most files a tree may hold.
pub const MAX_FILES: usize = 200_000;

/// What a run found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub applied: bool,
    /// `(name, files, devices)`.
    pub profiles: Vec<(String, Vec<String>, usize)>,
    pub devices: usize,
    pub values: usize,
    pub overrides: usize,
    pub ignored: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub firmware: Vec<(String, u64)>,
}

/// Reads a tree: a directory (symbolic links are listed, never followed) or an archive.
pub fn read_tree(path: &Path) -> Result<Tree> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut tree = Tree::new();
    if meta.is_dir() {
        walk(path, path, &mut tree)?;
        return Ok(tree);
    }
    let name = path.to_string_lossy().to_ascii_lowercase();
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if name.ends_with(".zip") {
        read_zip(path, file, &mut tree)?;
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        read_tar(path, file, &mut tree)?;
    } else {
        return Err(Error::invalid(
            "tree",
            format!("{}: not a directory, a .tar.gz or a .zip", path.display()),
        ));
    }
    Ok(tree)
}

/// The relative path an entry is kept under, or why it is not.
fn clean(rel: &str) -> std::result::Result<String, &'static str> {
    let rel = rel.trim_start_matches("./");
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || rel.starts_with('/') {
        return Err("a path leaving the tree");
    }
    if parts.is_empty() {
        return Err("an empty name");
    }
    Ok(parts.join("/"))
}

fn add(
    tree: &mut Tree,
    source: &Path,
    rel: String,
    size: u64,
    read: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> Result<()> {
    if tree.len() >= MAX_FILES {
        return Err(Error::invalid(
            "tree",
            format!("{}: more than {MAX_FILES} files", source.display()),
        ));
    }
    let bytes = if is_config_name(&rel) && size <= MAX_CONFIG_BYTES {
        Some(read().map_err(|e| Error::io(format!("reading {rel} in {}", source.display()), e))?)
    } else {
        None
    };
    tree.insert(rel, TreeFile { size, bytes });
    Ok(())
}

fn walk(root: &Path, dir: &Path, tree: &mut Tree) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    paths.sort();
    for p in paths {
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
        let rel = p
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if meta.is_dir() {
            walk(root, &p, tree)?;
        } else if meta.is_file() {
            add(tree, root, rel, meta.len(), || std::fs::read(&p))?;
        }
    }
    Ok(())
}

fn read_tar(source: &Path, file: std::fs::File, tree: &mut Tree) -> Result<()> {
    let bad = |e: std::io::Error| {
        Error::invalid(
            "tree",
            format!("{}: not a readable .tar.gz: {e}", source.display()),
        )
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Ok(rel) = clean(&name) else { continue };
        let size = entry.size();
        add(tree, source, rel, size, || {
            let mut b = Vec::new();
            entry.read_to_end(&mut b)?;
            Ok(b)
        })?;
    }
    Ok(())
}

fn read_zip(source: &Path, file: std::fs::File, tree: &mut Tree) -> Result<()> {
    let bad = |e: zip::result::ZipError| {
        Error::invalid(
            "tree",
            format!("{}: not a readable .zip: {e}", source.display()),
        )
    };
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().map_err(bad)?.into_owned();
        let Ok(rel) = clean(&name) else {
            continue;
        };
        let size = entry.size();
        add(tree, source, rel, size, || {
            let mut b = Vec::new();
            (&mut entry)
                .take(MAX_CONFIG_BYTES + 1)
                .read_to_end(&mut b)?;
            Ok(b)
        })?;
    }
    Ok(())
}

/// Plans `tree` into `account` and, with `apply`, writes the plan; `prefix` names the new
/// profiles (`<prefix>_1`, …).
pub fn migrate(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    dirs: &DataDirs,
    tree: &Tree,
    prefix: &str,
    apply: bool,
) -> Result<Report> {
    let plan = migrate::plan(tree, prefix);
    let mut report = Report {
        applied: false,
        profiles: plan
            .profiles
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.files.iter().map(|(n, _)| n.clone()).collect(),
                    p.macs.len(),
                )
            })
            .collect(),
        devices: plan.devices.len(),
        values: plan.devices.iter().map(|d| d.values.len()).sum(),
        overrides: plan.devices.iter().map(|d| d.overrides.len()).sum(),
        ignored: plan.ignored.clone(),
        secrets: plan.secrets.clone(),
        firmware: plan.firmware.clone(),
    };
    if !plan.problems.is_empty() {
        return Err(Error::Invalid(plan.problems));
    }
    let vars = super::templating::check_vars(conn)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // A dry run stages no file (it leaves nothing behind, not even a directory).
    let staged = write_plan(&tx, actor, account, &plan, &vars, apply.then_some(dirs))?;
    crate::db::audit::record(
        &tx,
        actor,
        Change::new(Some(account.id.0), "migrate-tree", account.slug.clone()).after(json!({
            "profiles": report.profiles.iter().map(|p| &p.0).collect::<Vec<_>>(),
            "devices": report.devices,
            "values": report.values,
            "overrides": report.overrides,
            "applied": apply,
        })),
    )?;
    if !apply {
        drop(tx);
        staged.discard();
        return Ok(report);
    }
    if let Err(e) = tx.commit() {
        staged.discard();
        return Err(e.into());
    }
    staged.place()?;
    report.applied = true;
    log::info!(
        "migrate-tree into `{}`: {} profile(s), {} device(s), {} value(s), {} override file(s)",
        account.slug,
        report.profiles.len(),
        report.devices,
        report.values,
        report.overrides
    );
    Ok(report)
}

/// Override files written under temporary names, moved into place after the commit.
struct Staged(Vec<(PathBuf, PathBuf)>);

impl Staged {
    fn discard(self) {
        for (temp, _) in &self.0 {
            let _ = std::fs::remove_file(temp);
        }
    }

    fn place(self) -> Result<()> {
        for (temp, dest) in &self.0 {
            std::fs::rename(temp, dest)
                .map_err(|e| Error::io(format!("storing {}", dest.display()), e))?;
        }
        Ok(())
    }
}

/// Every write of the plan inside `tx`; the problems found are returned together.
fn write_plan(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    account: &Account,
    plan: &Plan,
    vars: &crate::domain::template::Vars,
    dirs: Option<&DataDirs>,
) -> Result<Staged> {
    let aid = account.id.0;
    let mut problems: Vec<FieldError> = Vec::new();
    for p in &plan.profiles {
        let fields = ProfileFields {
            name: p.name.clone(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        };
        if let Err(Error::Invalid(mut e)) = fields.validate() {
            problems.append(&mut e);
            continue;
        }
        let files = match super::profiles::check_files_with(p.files.clone(), vars) {
            Ok(f) => f,
            Err(Error::Invalid(mut e)) => {
                problems.append(&mut e);
                continue;
            }
            Err(e) => return Err(e),
        };
        match profiles::insert_profile(tx, aid, &fields, &files) {
            Ok(_) => {}
            Err(Error::Conflict(why)) => problems.push(FieldError::new(
                "prefix",
                format!("{why}: choose another --prefix"),
            )),
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let mut staged = Staged(Vec::new());
    for d in &plan.devices {
        let at = d.mac.to_string();
        if devices::find_device_by_mac(tx, &d.mac)?.is_some_and(|x| x.is_associated()) {
            problems.push(FieldError::new(
                at.clone(),
                "associated already: delete it first or leave it out of the tree",
            ));
            continue;
        }
        let new = match (DeviceInput {
            mac: at.clone(),
            profile: d.profile.clone(),
            ..Default::default()
        })
        .validate()
        {
            Ok(n) => n,
            Err(Error::Invalid(e)) => {
                problems.extend(
                    e.into_iter()
                        .map(|f| FieldError::new(format!("{at}: {}", f.field), f.message)),
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        let profile = profiles::find_profile_by_name(tx, aid, &d.profile)?
            .ok_or_else(|| Error::not_found(format!("profile `{}`", d.profile)))?;
        let id = match devices::insert_device(tx, aid, &new, profile.id, false) {
            Ok(id) => id,
            Err(Error::Conflict(why)) => {
                problems.push(FieldError::new(at.clone(), why));
                continue;
            }
            Err(e) => return Err(e),
        };
        // As any association: the device may enrol its own credential until it has.
        super::enrolment::open_until_enrolled(tx, account, &d.mac, &actor.name)?;
        for (param, value) in &d.values {
            match check_policy(param, value) {
                Ok(()) => {
                    policies::upsert_policy(tx, aid, ScopeKind::Device, id, param, value)?;
                }
                Err(Error::Invalid(e)) => problems
                    .extend(e.into_iter().map(|f| {
                        FieldError::new(format!("{at}: {param}: {}", f.field), f.message)
                    })),
                Err(e) => return Err(e),
            }
        }
        for (name, bytes) in &d.overrides {
            crate::db::access::upsert_upload(
                tx,
                d.mac.as_str(),
                "overrides",
                name,
                bytes.len() as u64,
                &crate::domain::sha256_hex(bytes),
            )?;
            if let Some(dirs) = dirs {
                match stage(dirs, &d.mac, name, bytes) {
                    Ok(s) => staged.0.push(s),
                    Err(e) => {
                        staged.discard();
                        return Err(e);
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        staged.discard();
        return Err(Error::Invalid(problems));
    }
    Ok(staged)
}

/// Writes an override file under a temporary name next to where it goes.
fn stage(dirs: &DataDirs, mac: &Mac, name: &str, bytes: &[u8]) -> Result<(PathBuf, PathBuf)> {
    let dest = super::overrides::path(&dirs.uploads, mac, name);
    let dir = dest.parent().unwrap_or(&dirs.uploads).to_path_buf();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let temp = dir.join(format!(
        ".migrate-{}",
        crate::domain::account::random_token(12)
    ));
    std::fs::write(&temp, bytes)
        .map_err(|e| Error::io(format!("writing {}", temp.display()), e))?;
    Ok((temp, dest))
}
