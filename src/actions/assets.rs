//! Shared phone assets on disk (`domain::assets` has the names and the content checks).
//! Every write goes to a temporary file in the same directory that is renamed over the old
//! one, so phones see the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::assets::{
    AssetFile, AssetKind, DIRECTORY, check_content, classify, language_path, plain,
};
use crate::domain::directory::{self, Contact};
use crate::error::{Error, Result};

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
    use crate::domain::assets::SITE_LICENCE;

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
