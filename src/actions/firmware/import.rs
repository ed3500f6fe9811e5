//! Importing a UC Software release: a zip as Polycom ships it (split: part-numbered images
//! `<part>.sip.ld`; combined: one `sip.ld`; with `sip.ver`, configuration templates and
//! localization folders), or a folder holding the same.
//!
//! Every entry name is checked before anything is written (`package`): `..`, absolute
//! paths, backslashes, drive letters, symbolic links and odd characters refuse the whole
//! package (zip-slip). The version comes from `sip.ver` (or the admin), the families from the
//! part numbers of the images, from part numbers the package's own listing names (a text
//! or XML file at its top), and from the admin. Entries are streamed once, hashed on the
//! way, into a staging directory next to `firmware/<version>/`, which is renamed into
//! place in the transaction that records the release: a refused or failed import leaves
//! nothing behind, on disk or in the database.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::hex;
use super::package::{self, Entry, Package, RawEntry, is_noise, refused, strip_top_folder};
use crate::db::{self, firmware as q};
use crate::domain::firmware::{FileStatus, Layout, Release, ReleaseFile};
use crate::domain::polycom::models::Family;
use crate::domain::polycom::parts;
use crate::domain::profile::check_version;
use crate::error::{Error, FieldError, Result};

/// Largest listing file read for part numbers, and largest `sip.ver`.
const MAX_LISTING: u64 = 1024 * 1024;

/// What the admin adds to what the package says.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Families the release is for, besides those its part numbers name (a combined image
    /// names none).
    pub families: Vec<Family>,
    /// The version, when the package has no `sip.ver` (must match it when it has one).
    pub version: Option<String>,
    /// Shown in the catalogue: the uploaded file's name or the folder.
    pub source: String,
    pub imported_by: String,
    /// Most bytes the release may take once unpacked.
    pub max_bytes: u64,
}

/// Imports a zip file or a folder, whichever `path` is.
pub fn import_path(
    conn: &mut Connection,
    firmware_dir: &Path,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Release> {
    if path.is_dir() {
        import_folder(conn, firmware_dir, path, opts)
    } else {
        import_zip(conn, firmware_dir, path, opts)
    }
}

/// Imports a release zip.
pub fn import_zip(
    conn: &mut Connection,
    firmware_dir: &Path,
    zip_path: &Path,
    opts: &ImportOptions,
) -> Result<Release> {
    let mut pkg = package::open_zip(zip_path, source_name(zip_path, opts))?;
    import_package(conn, firmware_dir, &mut pkg, opts)
}

/// Imports a folder holding an unpacked release.
pub fn import_folder(
    conn: &mut Connection,
    firmware_dir: &Path,
    dir: &Path,
    opts: &ImportOptions,
) -> Result<Release> {
    let mut pkg = package::open_folder(dir, source_name(dir, opts))?;
    import_package(conn, firmware_dir, &mut pkg, opts)
}

fn source_name(path: &Path, opts: &ImportOptions) -> String {
    if opts.source.is_empty() {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    } else {
        opts.source.clone()
    }
}

/// Removes a staging directory unless the import completed.
struct Staging {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes what passes through and hashes it, refusing more than `left` bytes.
struct Sink<W: Write> {
    inner: W,
    hash: sha2::Sha256,
    written: u64,
    left: u64,
    /// Set when the release grew past the limit.
    over: bool,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.over = true;
            return Err(io::Error::other("the release is larger than allowed"));
        }
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        self.written += n as u64;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Imports an opened package: everything is checked first (size, version, the phones it
/// covers), then it is unpacked into a staging directory and installed.
fn import_package(
    conn: &mut Connection,
    firmware_dir: &Path,
    pkg: &mut dyn Package,
    opts: &ImportOptions,
) -> Result<Release> {
    let package = pkg.name().to_string();
    let raw: Vec<RawEntry> = pkg
        .entries()?
        .into_iter()
        .filter(|e| !is_noise(&e.name))
        .collect();
    let entries = strip_top_folder(raw);
    let declared: u64 = entries.iter().map(|e| e.size).sum();
    if opts.max_bytes > 0 && declared > opts.max_bytes {
        return Err(refused(
            &package,
            &format!(
                "unpacks to {declared} bytes, more than the {} allowed (limits.firmware_upload_bytes)",
                opts.max_bytes
            ),
        ));
    }
    let version = release_version(pkg, &entries, &package, opts)?;
    let mut problems = Vec::new();
    check_version("version", &version, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    ensure_new(conn, firmware_dir, &version)?;
    let (families, layout) = coverage(pkg, &entries, &package, opts)?;
    // Unpack once into a staging directory beside the final one (same file system).
    let staging = Staging {
        dir: firmware_dir.join(format!(
            ".staging-{}",
            crate::domain::account::random_token(12)
        )),
        keep: false,
    };
    std::fs::create_dir_all(&staging.dir)
        .map_err(|e| Error::io(format!("creating {}", staging.dir.display()), e))?;
    let mut files = unpack(pkg, &entries, &staging.dir, &package, opts)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let release = Release {
        version,
        families: families.into_iter().collect(),
        source: package,
        layout,
        imported_by: opts.imported_by.clone(),
        imported_at: db::now_secs(),
        files,
    };
    install(conn, firmware_dir, staging, &release)?;
    Ok(release)
}

/// The release's version: `sip.ver`'s first line, else what the admin named; both must
/// agree.
fn release_version(
    pkg: &mut dyn Package,
    entries: &[Entry],
    package: &str,
    opts: &ImportOptions,
) -> Result<String> {
    let sip_ver = match entries.iter().find(|e| e.path == "sip.ver") {
        Some(e) => {
            let mut text = String::new();
            pkg.open(e.index)?
                .take(MAX_LISTING)
                .read_to_string(&mut text)
                .map_err(|err| {
                    refused(
                        package,
                        &format!("has a `sip.ver` that cannot be read as text ({err})"),
                    )
                })?;
            let v = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            if v.is_empty() {
                return Err(refused(package, "has an empty `sip.ver`"));
            }
            Some(v)
        }
        None => None,
    };
    let named = opts
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let version = match (sip_ver, named) {
        (Some(v), Some(n)) if v != n => {
            return Err(Error::invalid(
                "version",
                format!("`{package}`'s sip.ver says {v}, not {n}; nothing was imported"),
            ));
        }
        (Some(v), _) => v,
        (None, Some(n)) => n.to_string(),
        (None, None) => {
            return Err(Error::invalid(
                "version",
                format!(
                    "`{package}` has no sip.ver, so its version is unknown: name it (e.g. 5.9.8.1234); nothing was imported"
                ),
            ));
        }
    };
    Ok(version)
}

/// What the images and the package's listing say about the phones covered, with the
/// families the admin named, and whether the images are split, combined or both.
fn coverage(
    pkg: &mut dyn Package,
    entries: &[Entry],
    package: &str,
    opts: &ImportOptions,
) -> Result<(BTreeSet<Family>, Layout)> {
    let images: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.path.contains('/') && e.path.ends_with(".ld"))
        .collect();
    if !images.iter().any(|e| e.path.ends_with("sip.ld")) {
        return Err(refused(
            package,
            "holds no UC Software image (`sip.ld` or `<part number>.sip.ld`)",
        ));
    }
    let mut families: BTreeSet<Family> = opts.families.iter().copied().collect();
    let prefixed = images
        .iter()
        .filter_map(|e| parts::split_prefixed(&e.path))
        .map(|(p, _)| p.to_string());
    let mut listed: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| {
        !e.path.contains('/')
            && (e.path.ends_with(".xml") || e.path.ends_with(".txt"))
            && !e.path.starts_with("000000000000")
            && e.size <= MAX_LISTING
    }) {
        let mut text = String::new();
        if pkg
            .open(e.index)?
            .take(MAX_LISTING)
            .read_to_string(&mut text)
            .is_ok()
        {
            listed.extend(parts::find_in_text(&text));
        }
    }
    for part in prefixed.chain(listed) {
        if let Some(p) = parts::lookup(&part) {
            families.insert(p.family);
        }
    }
    if families.is_empty() {
        return Err(Error::invalid(
            "family",
            format!(
                "`{package}` does not say which phones it is for (a combined sip.ld, or part numbers \
                 not in the part table): name the model family (e.g. VVX); nothing was imported"
            ),
        ));
    }
    let combined = images.iter().any(|e| e.path == "sip.ld");
    let split = images
        .iter()
        .any(|e| parts::split_prefixed(&e.path).is_some());
    let layout = match (split, combined) {
        (true, true) => Layout::Mixed,
        (false, true) => Layout::Combined,
        _ => Layout::Split,
    };
    Ok((families, layout))
}

/// Unpacks every entry once into `staging`, hashed on the way and synced, refusing a
/// release that grows past `opts.max_bytes`.
fn unpack(
    pkg: &mut dyn Package,
    entries: &[Entry],
    staging: &Path,
    package: &str,
    opts: &ImportOptions,
) -> Result<Vec<ReleaseFile>> {
    let mut files = Vec::with_capacity(entries.len());
    let mut left = if opts.max_bytes > 0 {
        opts.max_bytes
    } else {
        u64::MAX
    };
    for e in entries {
        let dest = staging.join(&e.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| Error::io(format!("creating {}", parent.display()), err))?;
        }
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|err| Error::io(format!("creating {}", dest.display()), err))?;
        let mut sink = Sink {
            inner: io::BufWriter::with_capacity(256 * 1024, out),
            hash: <sha2::Sha256 as sha2::Digest>::new(),
            written: 0,
            left,
            over: false,
        };
        let mut reader = pkg.open(e.index)?;
        if let Err(err) = io::copy(&mut reader, &mut sink) {
            return Err(if sink.over {
                refused(
                    package,
                    &format!(
                        "unpacks to more than the {} bytes allowed (limits.firmware_upload_bytes)",
                        opts.max_bytes
                    ),
                )
            } else {
                refused(
                    package,
                    &format!("is damaged: entry `{}` cannot be unpacked ({err})", e.path),
                )
            });
        }
        drop(reader);
        let Sink {
            inner,
            hash,
            written,
            left: rest,
            ..
        } = sink;
        left = rest;
        let file = inner
            .into_inner()
            .map_err(|err| Error::io(format!("writing {}", dest.display()), err.into_error()))?;
        // A release must survive a power cut once it is in the catalogue.
        file.sync_all()
            .map_err(|err| Error::io(format!("writing {}", dest.display()), err))?;
        let (part_number, model) = match parts::split_prefixed(&e.path) {
            Some((p, _)) if !e.path.contains('/') && e.path.ends_with(".ld") => (
                Some(p.to_string()),
                parts::lookup(p).map(|x| x.model.to_string()),
            ),
            _ => (None, None),
        };
        files.push(ReleaseFile {
            path: e.path.clone(),
            size: written,
            sha256: hex(&sha2::Digest::finalize(hash)),
            part_number,
            model,
            status: FileStatus::Ok,
        });
    }
    Ok(files)
}

/// Moves the staged release into place and records it in the catalogue, together: the
/// directory is renamed inside the transaction that inserts the rows, and moved back when
/// that transaction does not commit.
fn install(
    conn: &mut Connection,
    firmware_dir: &Path,
    mut staging: Staging,
    release: &Release,
) -> Result<()> {
    let version = &release.version;
    let final_dir = firmware_dir.join(version);
    db::write_tx(conn, |tx| {
        if q::find_release(tx, version)?.is_some() || final_dir.exists() {
            return Err(duplicate(version, tx)?);
        }
        std::fs::rename(&staging.dir, &final_dir)
            .map_err(|e| Error::io(format!("moving the release to {}", final_dir.display()), e))?;
        if let Err(e) = q::insert_release(tx, release) {
            let _ = std::fs::rename(&final_dir, &staging.dir);
            return Err(e);
        }
        Ok(())
    })
    .inspect_err(|_| {
        // The transaction did not commit: the release must not stay in place.
        if final_dir.exists()
            && !staging.dir.exists()
            && q::find_release(conn, version).ok().flatten().is_none()
        {
            let _ = std::fs::rename(&final_dir, &staging.dir);
        }
    })?;
    staging.keep = true;
    if let Ok(d) = File::open(firmware_dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Refuses a version that is already in the catalogue or on the disk.
fn ensure_new(conn: &Connection, firmware_dir: &Path, version: &str) -> Result<()> {
    if q::find_release(conn, version)?.is_some() || firmware_dir.join(version).exists() {
        return Err(duplicate(version, conn)?);
    }
    Ok(())
}

fn duplicate(version: &str, conn: &Connection) -> Result<Error> {
    Ok(match q::find_release(conn, version)? {
        Some(r) => Error::Conflict(format!(
            "firmware {version} is already in the catalogue (imported from `{}`); delete it \
             first to import it again; nothing was imported",
            r.source
        )),
        None => Error::Conflict(format!(
            "firmware/{version} already exists on the disk but not in the catalogue (copied \
             there by hand?); move it away, then import the release; nothing was imported"
        )),
    })
}

/// Parses family names given by the admin (`VVX`, `trio`).
pub fn parse_families(names: &[String]) -> Result<Vec<Family>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for n in names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        match Family::from_name(n) {
            Some(f) => out.push(f),
            None => problems.push(FieldError::new(
                "family",
                format!(
                    "`{n}` is not a model family ({})",
                    Family::ALL.map(|f| f.name()).join(", ")
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(problems))
    }
}
