//! Importing a UC Software release: a zip as Polycom ships it (split: part-numbered images
//! `<part>.sip.ld`; combined: one `sip.ld`; with `sip.ver`, configuration templates and
//! localization folders), or a folder holding the same.
//!
//! Every entry name is checked before anything is written: `..`, absolute paths,
//! backslashes, drive letters, symbolic links and odd characters refuse the whole package
//! (zip-slip). The version comes from `sip.ver` (or the admin), the families from the
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

use super::{FileStatus, Layout, Release, ReleaseFile, hex};
use crate::db::{self, firmware as q};
use crate::domain::polycom::models::Family;
use crate::domain::polycom::parts;
use crate::domain::profile::check_version;
use crate::error::{Error, FieldError, Result};

/// Most entries a package may have.
const MAX_ENTRIES: usize = 20_000;
/// Most path segments of an entry.
const MAX_DEPTH: usize = 8;
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
    let name = source_name(zip_path, opts);
    let file = File::open(zip_path)
        .map_err(|e| Error::io(format!("opening {}", zip_path.display()), e))?;
    let archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
        Error::invalid(
            "file",
            format!("`{name}` is not a zip archive, or it is damaged ({e}); nothing was imported"),
        )
    })?;
    let mut pkg = ZipPackage { archive, name };
    import_package(conn, firmware_dir, &mut pkg, opts)
}

/// Imports a folder holding an unpacked release.
pub fn import_folder(
    conn: &mut Connection,
    firmware_dir: &Path,
    dir: &Path,
    opts: &ImportOptions,
) -> Result<Release> {
    let name = source_name(dir, opts);
    let mut entries = Vec::new();
    walk(dir, dir, 0, &mut entries)?;
    let mut pkg = FolderPackage {
        root: dir.to_path_buf(),
        entries,
        name,
    };
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

/// One file of a package, named as it is written in the package.
struct RawEntry {
    name: String,
    size: u64,
    index: usize,
}

/// A release package: a zip or a folder.
trait Package {
    fn name(&self) -> &str;
    /// The files (not directories), with names as written; refuses unsafe entries.
    fn entries(&mut self) -> Result<Vec<RawEntry>>;
    fn open(&mut self, index: usize) -> Result<Box<dyn Read + '_>>;
}

struct ZipPackage {
    archive: zip::ZipArchive<io::BufReader<File>>,
    name: String,
}

impl Package for ZipPackage {
    fn name(&self) -> &str {
        &self.name
    }

    fn entries(&mut self) -> Result<Vec<RawEntry>> {
        if self.archive.has_duplicate_names() {
            return Err(refused(&self.name, "lists the same entry twice"));
        }
        if self.archive.len() > MAX_ENTRIES {
            return Err(refused(
                &self.name,
                &format!("has more than {MAX_ENTRIES} entries"),
            ));
        }
        let mut out = Vec::new();
        for index in 0..self.archive.len() {
            let e = self.archive.by_index_data(index).map_err(|e| {
                refused(
                    &self.name,
                    &format!("entry {} cannot be read ({e})", index + 1),
                )
            })?;
            let name = e
                .name()
                .map_err(|_| refused(&self.name, "has an entry name that is not text"))?
                .into_owned();
            if e.is_symlink() {
                return Err(refused(
                    &self.name,
                    &format!("entry `{name}` is a symbolic link; links are refused"),
                ));
            }
            if e.encrypted() {
                return Err(refused(&self.name, &format!("entry `{name}` is encrypted")));
            }
            check_name(&self.name, &name)?;
            if e.is_dir() || name.ends_with('/') {
                continue;
            }
            out.push(RawEntry {
                name,
                size: e.size(),
                index,
            });
        }
        Ok(out)
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn Read + '_>> {
        let name = self.name.clone();
        let f = self.archive.by_index(index).map_err(|e| {
            refused(
                &name,
                &format!("entry {} cannot be unpacked ({e})", index + 1),
            )
        })?;
        Ok(Box::new(f))
    }
}

struct FolderPackage {
    root: PathBuf,
    entries: Vec<String>,
    name: String,
}

impl Package for FolderPackage {
    fn name(&self) -> &str {
        &self.name
    }

    fn entries(&mut self) -> Result<Vec<RawEntry>> {
        let mut out = Vec::new();
        for (index, name) in self.entries.iter().enumerate() {
            check_name(&self.name, name)?;
            let size = std::fs::metadata(self.root.join(name))
                .map(|m| m.len())
                .unwrap_or(0);
            out.push(RawEntry {
                name: name.clone(),
                size,
                index,
            });
        }
        Ok(out)
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn Read + '_>> {
        let path = self.root.join(&self.entries[index]);
        let f =
            File::open(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Ok(Box::new(f))
    }
}

/// Collects the files below `dir` as `/`-separated names; symbolic links are refused.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(refused(
            &root.display().to_string(),
            &format!("is nested deeper than {MAX_DEPTH} folders"),
        ));
    }
    let read =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    let mut names: Vec<_> = read.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if meta.file_type().is_symlink() {
            return Err(refused(
                &root.display().to_string(),
                &format!("`{rel}` is a symbolic link; links are refused"),
            ));
        }
        if meta.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if meta.is_file() {
            out.push(rel);
            if out.len() > MAX_ENTRIES {
                return Err(refused(
                    &root.display().to_string(),
                    &format!("has more than {MAX_ENTRIES} files"),
                ));
            }
        }
    }
    Ok(())
}

fn refused(package: &str, why: &str) -> Error {
    Error::invalid("file", format!("`{package}` {why}; nothing was imported"))
}

/// Refuses names that could leave the release directory or that no phone asks for.
fn check_name(package: &str, name: &str) -> Result<()> {
    let unsafe_entry = |why: &str| {
        Err(refused(
            package,
            &format!(
                "has an entry `{}` that {why} (zip-slip)",
                name.escape_default()
            ),
        ))
    };
    if name.starts_with('/') || name.contains('\\') {
        return unsafe_entry("is an absolute or Windows path");
    }
    if name.contains(':') {
        return unsafe_entry("names a drive or a stream");
    }
    let trimmed = name.trim_end_matches('/');
    if trimmed.split('/').any(|s| s == ".." || s == ".") {
        return unsafe_entry("points outside the package with `..`");
    }
    if trimmed.is_empty() || trimmed.split('/').any(str::is_empty) {
        return unsafe_entry("has an empty path segment");
    }
    if trimmed.split('/').count() > MAX_DEPTH {
        return Err(refused(
            package,
            &format!("has an entry `{name}` nested deeper than {MAX_DEPTH} folders"),
        ));
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-+~ ()/".contains(*c)))
    {
        return Err(refused(
            package,
            &format!(
                "has an entry `{}` with the character `{}`; names may hold letters, digits, \
                 spaces and . _ - + ~ ( )",
                name.escape_default(),
                c.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Packaging noise that is skipped, not stored: macOS resource forks and hidden files.
fn is_noise(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.split('/').any(|s| s.starts_with('.'))
}

/// An entry with its path inside the release (a common top folder removed).
struct Entry {
    path: String,
    size: u64,
    index: usize,
}

/// Removes a single folder that holds everything (`Polycom_UC_Software_x/…`), when the
/// release files (`sip.ver`, images) are inside it.
fn strip_top_folder(raw: Vec<RawEntry>) -> Vec<Entry> {
    let top = raw
        .first()
        .and_then(|e| e.name.split_once('/'))
        .map(|(t, _)| format!("{t}/"));
    let at_root = raw.iter().any(|e| !e.name.contains('/'));
    let strip = match &top {
        Some(t) if !at_root && raw.iter().all(|e| e.name.starts_with(t.as_str())) => t.len(),
        _ => 0,
    };
    raw.into_iter()
        .map(|e| Entry {
            path: e.name[strip..].to_string(),
            size: e.size,
            index: e.index,
        })
        .collect()
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

    // The version: sip.ver, else what the admin named; both must agree.
    let sip_ver = match entries.iter().find(|e| e.path == "sip.ver") {
        Some(e) => {
            let mut text = String::new();
            pkg.open(e.index)?
                .take(MAX_LISTING)
                .read_to_string(&mut text)
                .map_err(|err| {
                    refused(
                        &package,
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
                return Err(refused(&package, "has an empty `sip.ver`"));
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
    let mut problems = Vec::new();
    check_version("version", &version, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    ensure_new(conn, firmware_dir, &version)?;

    // What the images and the listing say about the phones covered.
    let images: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.path.contains('/') && e.path.ends_with(".ld"))
        .collect();
    if !images.iter().any(|e| e.path.ends_with("sip.ld")) {
        return Err(refused(
            &package,
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
    let mut files = Vec::with_capacity(entries.len());
    let mut left = if opts.max_bytes > 0 {
        opts.max_bytes
    } else {
        u64::MAX
    };
    for e in &entries {
        let dest = staging.dir.join(&e.path);
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
                    &package,
                    &format!(
                        "unpacks to more than the {} bytes allowed (limits.firmware_upload_bytes)",
                        opts.max_bytes
                    ),
                )
            } else {
                refused(
                    &package,
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
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let release = Release {
        version: version.clone(),
        families: families.into_iter().collect(),
        source: package,
        layout,
        imported_by: opts.imported_by.clone(),
        imported_at: db::now_secs(),
        files,
    };

    // Into place and into the catalogue together.
    let final_dir = firmware_dir.join(&version);
    let mut staging = staging;
    db::write_tx(conn, |tx| {
        if q::find_release(tx, &version)?.is_some() || final_dir.exists() {
            return Err(duplicate(&version, tx)?);
        }
        std::fs::rename(&staging.dir, &final_dir)
            .map_err(|e| Error::io(format!("moving the release to {}", final_dir.display()), e))?;
        if let Err(e) = q::insert_release(tx, &release) {
            let _ = std::fs::rename(&final_dir, &staging.dir);
            return Err(e);
        }
        Ok(())
    })
    .inspect_err(|_| {
        // The transaction did not commit: the release must not stay in place.
        if final_dir.exists()
            && !staging.dir.exists()
            && q::find_release(conn, &version).ok().flatten().is_none()
        {
            let _ = std::fs::rename(&final_dir, &staging.dir);
        }
    })?;
    staging.keep = true;
    if let Ok(d) = File::open(firmware_dir) {
        let _ = d.sync_all();
    }
    Ok(release)
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
