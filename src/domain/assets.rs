//! Shared phone assets under `<data_dir>/assets/`, which phones read at the base path
//! (DESIGN §4): the site directory (`000000000000-directory.xml`), site and per-device
//! licences (`000000000000-license.cfg`, `<mac>-license.cfg`), wallpapers, ring tones, and
//! language files in `<Folder>/<Language>/<file>.xml` folders (as UC Software ships them,
//! e.g. `VVXLocalization/German_Germany/VVX-dictionary.xml`).
//!
//! Only admins change them (the callers check); names are checked strictly against the
//! kind of file, and so are contents (well-formed XML, image and WAV signatures). Every
//! write goes to a temporary file in the same directory that is renamed over the old one,
//! so phones see the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::directory::{self, Contact};
use super::mac::Mac;
use crate::error::{Error, Result};

/// The site directory's file name.
pub const DIRECTORY: &str = "000000000000-directory.xml";
/// The site licence's file name.
pub const SITE_LICENCE: &str = "000000000000-license.cfg";

/// What a shared file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetKind {
    Directory,
    SiteLicence,
    DeviceLicence,
    Wallpaper,
    RingTone,
    Language,
}

impl AssetKind {
    pub fn label(self) -> &'static str {
        match self {
            AssetKind::Directory => "site directory",
            AssetKind::SiteLicence => "site licence",
            AssetKind::DeviceLicence => "device licence",
            AssetKind::Wallpaper => "wallpaper",
            AssetKind::RingTone => "ring tone",
            AssetKind::Language => "language file",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Directory => "directory",
            AssetKind::SiteLicence => "site-licence",
            AssetKind::DeviceLicence => "device-licence",
            AssetKind::Wallpaper => "wallpaper",
            AssetKind::RingTone => "ring-tone",
            AssetKind::Language => "language",
        }
    }
}

fn plain(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The kind of a file at the top of the assets directory, from its name; anything else is
/// refused with what names are allowed.
pub fn classify(name: &str) -> Result<AssetKind> {
    let lower = name.to_ascii_lowercase();
    if name == DIRECTORY {
        return Ok(AssetKind::Directory);
    }
    if name == SITE_LICENCE {
        return Ok(AssetKind::SiteLicence);
    }
    if let Some(m) = name.strip_suffix("-license.cfg") {
        return match Mac::from_bare(m) {
            Some(mac) if !mac.is_zero() && m == mac.as_str() => Ok(AssetKind::DeviceLicence),
            _ => Err(Error::invalid(
                "name",
                format!(
                    "`{name}`: a device licence is named <mac>-license.cfg with the MAC as 12 lowercase hex digits"
                ),
            )),
        };
    }
    if plain(name, 64) {
        if [".jpg", ".jpeg", ".png", ".bmp"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            return Ok(AssetKind::Wallpaper);
        }
        if lower.ends_with(".wav") {
            return Ok(AssetKind::RingTone);
        }
    }
    Err(Error::invalid(
        "name",
        format!(
            "`{}` is not a shared phone file: use {DIRECTORY}, {SITE_LICENCE}, <mac>-license.cfg, \
             a wallpaper (.jpg, .png, .bmp) or a ring tone (.wav), named with letters, digits, . _ -",
            name.escape_default()
        ),
    ))
}

/// Checks a language file's place, `<Folder>/<Language>/<file>.xml`, and returns the path.
pub fn language_path(folder: &str, language: &str, file: &str) -> Result<String> {
    let mut p = Vec::new();
    for (field, v) in [("folder", folder), ("language", language)] {
        if !plain(v, 64) || v.contains('.') {
            p.push(crate::error::FieldError::new(
                field,
                format!("`{}` must be 1-64 letters, digits, _ or - (e.g. VVXLocalization, German_Germany)", v.escape_default()),
            ));
        }
    }
    if !plain(file, 96) || !file.to_ascii_lowercase().ends_with(".xml") {
        p.push(crate::error::FieldError::new(
            "file",
            format!(
                "`{}` must be an .xml file named with letters, digits, . _ -",
                file.escape_default()
            ),
        ));
    }
    if p.is_empty() {
        Ok(format!("{folder}/{language}/{file}"))
    } else {
        Err(Error::Invalid(p))
    }
}

/// Checks that the bytes are what the kind says.
fn check_content(kind: AssetKind, name: &str, bytes: &[u8]) -> Result<()> {
    let bad = |what: &str| Err(Error::invalid(name, format!("is not {what}")));
    match kind {
        AssetKind::Directory => directory::from_xml(name, bytes).map(|_| ()),
        AssetKind::SiteLicence | AssetKind::DeviceLicence | AssetKind::Language => {
            crate::domain::xml::check_well_formed(name, bytes)
        }
        AssetKind::Wallpaper => {
            let ok = bytes.starts_with(&[0xff, 0xd8, 0xff])
                || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                || bytes.starts_with(b"BM");
            if ok {
                Ok(())
            } else {
                bad("a JPEG, PNG or BMP image")
            }
        }
        AssetKind::RingTone => {
            if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
                Ok(())
            } else {
                bad("a WAV sound")
            }
        }
    }
}

/// A shared file as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetFile {
    /// Path below the assets directory (and below the base path phones use).
    pub path: String,
    pub kind: AssetKind,
    pub size: u64,
    /// Unix time of the last change.
    pub modified: i64,
}

fn entry(dir: &Path, path: &str, kind: AssetKind) -> Option<AssetFile> {
    let meta = std::fs::metadata(dir.join(path)).ok()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some(AssetFile {
        path: path.to_string(),
        kind,
        size: meta.len(),
        modified,
    })
}

/// Every shared file: those at the top with a known kind, and the language files.
/// Anything else in the directory (put there by hand) is left out.
pub fn list(dir: &Path) -> Result<Vec<AssetFile>> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut top: Vec<_> = read.flatten().collect();
    top.sort_by_key(|e| e.file_name());
    for e in top {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_file() {
            if let Ok(kind) = classify(&name)
                && let Some(f) = entry(dir, &name, kind)
            {
                out.push(f);
            }
        } else if ft.is_dir() && plain(&name, 64) {
            for lang in sorted_dirs(&e.path()) {
                for file in sorted_files(&e.path().join(&lang)) {
                    if let Ok(p) = language_path(&name, &lang, &file)
                        && let Some(f) = entry(dir, &p, AssetKind::Language)
                    {
                        out.push(f);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn sorted_dirs(dir: &Path) -> Vec<String> {
    sorted(dir, true)
}

fn sorted_files(dir: &Path) -> Vec<String> {
    sorted(dir, false)
}

fn sorted(dir: &Path, dirs: bool) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| {
                    e.file_type()
                        .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Writes `bytes` to `path` (below `dir`) through a temporary file and a rename.
fn write_atomic(dir: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    let dest = dir.join(path);
    let parent = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    let temp = parent.join(format!(".tmp-{}", crate::domain::account::random_token(12)));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, &dest)?;
        if let Ok(d) = std::fs::File::open(&parent) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(format!("storing {}", dest.display()), e)
    })
}

/// Stores a file at the top of the assets directory after checking its name and content.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<AssetFile> {
    let kind = classify(name)?;
    check_content(kind, name, bytes)?;
    write_atomic(dir, name, bytes)?;
    entry(dir, name, kind).ok_or_else(|| Error::not_found(name.to_string()))
}

/// Stores a language file in `<folder>/<language>/<file>`.
pub fn put_language(
    dir: &Path,
    folder: &str,
    language: &str,
    file: &str,
    bytes: &[u8],
) -> Result<AssetFile> {
    let path = language_path(folder, language, file)?;
    check_content(AssetKind::Language, &path, bytes)?;
    write_atomic(dir, &path, bytes)?;
    entry(dir, &path, AssetKind::Language).ok_or_else(|| Error::not_found(path.clone()))
}

/// Deletes a file at the top (by name), or a language folder with everything in it
/// (`Folder` or `Folder/Language`).
pub fn delete(dir: &Path, name: &str) -> Result<()> {
    let parts: Vec<&str> = name.split('/').collect();
    let is_folder = parts.len() <= 2 && parts.iter().all(|p| plain(p, 64) && !p.contains('.'));
    if is_folder && dir.join(name).is_dir() {
        // Moved aside first, so phones never see half a folder.
        let aside = dir.join(format!(
            ".deleting-{}",
            crate::domain::account::random_token(8)
        ));
        std::fs::rename(dir.join(name), &aside)
            .and_then(|()| std::fs::remove_dir_all(&aside))
            .map_err(|e| Error::io(format!("deleting {}", dir.join(name).display()), e))?;
        return Ok(());
    }
    classify(name)?;
    match std::fs::remove_file(dir.join(name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::not_found(format!("shared file `{name}`")))
        }
        Err(e) => Err(Error::io(
            format!("deleting {}", dir.join(name).display()),
            e,
        )),
    }
}

/// The site directory's contacts (none when there is no file yet).
pub fn read_directory(dir: &Path) -> Result<Vec<Contact>> {
    match std::fs::read(dir.join(DIRECTORY)) {
        Ok(bytes) => directory::from_xml(DIRECTORY, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(
            format!("reading {}", dir.join(DIRECTORY).display()),
            e,
        )),
    }
}

/// Replaces the site directory with these contacts, after checking every one (`row` names
/// a problem's row).
pub fn write_directory(
    dir: &Path,
    contacts: &[Contact],
    row: impl Fn(usize) -> String,
) -> Result<PathBuf> {
    directory::validate(contacts, row)?;
    write_atomic(dir, DIRECTORY, &directory::to_xml(contacts))?;
    Ok(dir.join(DIRECTORY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_by_kind() {
        assert_eq!(classify(DIRECTORY).expect("dir"), AssetKind::Directory);
        assert_eq!(
            classify("0004f2aabbcc-license.cfg").expect("lic"),
            AssetKind::DeviceLicence
        );
        assert_eq!(classify("Leaf.jpg").expect("img"), AssetKind::Wallpaper);
        assert_eq!(classify("Ring-1.wav").expect("wav"), AssetKind::RingTone);
        for bad in [
            "0004F2AABBCC-license.cfg",
            "../x.jpg",
            ".hidden.jpg",
            "a b.jpg",
            "site.cfg",
            "x.exe",
            "0004f2aabbcc-phone.cfg",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        assert!(language_path("VVXLocalization", "German_Germany", "VVX-dictionary.xml").is_ok());
        assert!(language_path("..", "x", "a.xml").is_err());
        assert!(language_path("VVXLocalization", "German_Germany", "a.exe").is_err());
    }

    #[test]
    fn writes_are_checked_and_atomic_and_leave_no_temporary_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        let err = put(dir, "Leaf.jpg", b"not an image").expect_err("content");
        assert!(
            err.to_string().starts_with("Leaf.jpg: is not a JPEG"),
            "{err}"
        );
        put(dir, "Leaf.jpg", b"\xff\xd8\xff\xe0 jpeg").expect("jpeg");
        put(dir, SITE_LICENCE, b"<license/>").expect("licence");
        assert!(
            put(dir, SITE_LICENCE, b"<license>").is_err(),
            "broken XML refused"
        );
        assert_eq!(
            std::fs::read(dir.join(SITE_LICENCE)).expect("kept"),
            b"<license/>"
        );
        put_language(
            dir,
            "VVXLocalization",
            "German_Germany",
            "VVX-dictionary.xml",
            b"<d/>",
        )
        .expect("language");
        let contacts = vec![Contact {
            contact: "1001".into(),
            ..Default::default()
        }];
        write_directory(dir, &contacts, |i| format!("contacts[{i}]")).expect("directory");
        assert_eq!(read_directory(dir).expect("read"), contacts);
        let listed: Vec<(String, AssetKind)> = list(dir)
            .expect("list")
            .into_iter()
            .map(|f| (f.path, f.kind))
            .collect();
        assert_eq!(
            listed,
            vec![
                (DIRECTORY.to_string(), AssetKind::Directory),
                (SITE_LICENCE.to_string(), AssetKind::SiteLicence),
                ("Leaf.jpg".to_string(), AssetKind::Wallpaper),
                (
                    "VVXLocalization/German_Germany/VVX-dictionary.xml".to_string(),
                    AssetKind::Language
                ),
            ]
        );
        let hidden = std::fs::read_dir(dir)
            .expect("read")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(hidden, 0, "no temporary file left");
        delete(dir, "VVXLocalization").expect("folder");
        delete(dir, "Leaf.jpg").expect("file");
        assert!(matches!(
            delete(dir, "Leaf.jpg"),
            Err(Error::NotFound { .. })
        ));
        assert!(delete(dir, "../etc").is_err());
        assert_eq!(list(dir).expect("list").len(), 2);
    }
}
