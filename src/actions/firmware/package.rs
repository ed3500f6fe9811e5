//! Reading a release package — a zip or a folder — as a list of files, refusing every
//! entry that could leave the release directory before anything is written: `..`,
//! absolute or Windows paths, drive letters, symbolic links, encrypted entries, duplicate
//! names and characters outside a plain set (zip-slip). Packaging noise (`__MACOSX/`,
//! hidden files) is skipped and a single folder holding everything is removed.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Most entries a package may have.
const MAX_ENTRIES: usize = 20_000;
/// Most path segments of an entry.
const MAX_DEPTH: usize = 8;

/// Opens a zip, refusing anything that is not one.
pub(super) fn open_zip(zip_path: &Path, name: String) -> Result<ZipPackage> {
    let file = File::open(zip_path)
        .map_err(|e| Error::io(format!("opening {}", zip_path.display()), e))?;
    let archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
        Error::invalid(
            "file",
            format!("`{name}` is not a zip archive, or it is damaged ({e}); nothing was imported"),
        )
    })?;
    Ok(ZipPackage { archive, name })
}

/// Lists a folder's files.
pub(super) fn open_folder(dir: &Path, name: String) -> Result<FolderPackage> {
    let mut entries = Vec::new();
    walk(dir, dir, 0, &mut entries)?;
    Ok(FolderPackage {
        root: dir.to_path_buf(),
        entries,
        name,
    })
}

/// One file of a package, named as it is written in the package.
pub(super) struct RawEntry {
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) index: usize,
}

/// A release package: a zip or a folder.
pub(super) trait Package {
    fn name(&self) -> &str;
    /// The files (not directories), with names as written; refuses unsafe entries.
    fn entries(&mut self) -> Result<Vec<RawEntry>>;
    fn open(&mut self, index: usize) -> Result<Box<dyn Read + '_>>;
}

pub(super) struct ZipPackage {
    archive: zip::ZipArchive<io::BufReader<File>>,
    pub(super) name: String,
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

pub(super) struct FolderPackage {
    root: PathBuf,
    entries: Vec<String>,
    pub(super) name: String,
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

pub(super) fn refused(package: &str, why: &str) -> Error {
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
pub(super) fn is_noise(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.split('/').any(|s| s.starts_with('.'))
}

/// An entry with its path inside the release (a common top folder removed).
pub(super) struct Entry {
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) index: usize,
}

/// Removes a single folder that holds everything (`Polycom_UC_Software_x/…`), when the
/// release files (`sip.ver`, images) are inside it.
pub(super) fn strip_top_folder(raw: Vec<RawEntry>) -> Vec<Entry> {
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
