//! The firmware catalogue: UC Software releases stored under `firmware/<version>/`, the
//! model families and part numbers each covers, the checksum of every file, and how a
//! phone's request names an image.
//!
//! Releases come in through `import` (a release zip, split or combined, or a folder) and
//! leave through `delete`, which refuses a version that profiles name. Files are hashed
//! when stored and checked again when the server starts (`verify`); a file whose bytes
//! changed is reported and no longer served. What a device reports running against what
//! its profile names lives in `rollout`.

pub mod import;
mod package;
pub mod rollout;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use rusqlite::Connection;

use crate::db::{self, firmware as q};
use crate::domain::firmware::{FileStatus, Image, Problem, Release, VerifyReport};
use crate::domain::polycom::models::Family;
use crate::domain::polycom::parts;
use crate::error::{Error, FieldError, Result};

/// Every release, newest import first.
pub fn list(conn: &Connection) -> Result<Vec<Release>> {
    q::list_releases(conn)
}

/// One release.
pub fn release(conn: &Connection, version: &str) -> Result<Release> {
    q::find_release(conn, version)?
        .ok_or_else(|| Error::not_found(format!("firmware version `{version}`")))
}

/// The versions of each family, newest first (by version number).
pub fn versions_by_family(conn: &Connection) -> Result<BTreeMap<Family, Vec<String>>> {
    let mut out: BTreeMap<Family, Vec<String>> = BTreeMap::new();
    for (version, families) in q::list_versions(conn)? {
        for f in families {
            out.entry(f).or_default().push(version.clone());
        }
    }
    for versions in out.values_mut() {
        versions.sort_by(|a, b| crate::domain::firmware::compare_versions(b, a));
    }
    Ok(out)
}

/// Checks a profile's software versions against the catalogue: each must be a release
/// that covers the family it is named for. Adds one problem per bad entry.
pub fn check_software(
    conn: &Connection,
    software: &BTreeMap<Family, String>,
    problems: &mut Vec<FieldError>,
) -> Result<()> {
    if software.is_empty() {
        return Ok(());
    }
    let known = q::list_versions(conn)?;
    for (family, version) in software {
        let field = format!("software.{family}");
        match known.iter().find(|(v, _)| v == version) {
            None => problems.push(FieldError::new(
                field,
                format!(
                    "version `{version}` is not in the firmware catalogue; import the release \
                     first (Firmware page, `zerotouch firmware import`)"
                ),
            )),
            Some((_, families)) if !families.contains(family) => problems.push(FieldError::new(
                field,
                format!(
                    "version `{version}` is not a {family} release (it covers {})",
                    names(families)
                ),
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

fn names(families: &[Family]) -> String {
    if families.is_empty() {
        return "no known family".into();
    }
    families
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes a release: refused while profiles name it (saying which), otherwise its files
/// leave the disk and its rows the catalogue together.
pub fn delete(conn: &mut Connection, firmware_dir: &Path, version: &str) -> Result<()> {
    let users = q::list_profiles_using(conn, version)?;
    if !users.is_empty() {
        let list = users
            .iter()
            .map(|(p, f)| format!("`{p}` ({f})"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::Conflict(format!(
            "firmware {version} is used by profile{} {list}; choose another version there first",
            if users.len() == 1 { "" } else { "s" }
        )));
    }
    release(conn, version)?;
    let dir = firmware_dir.join(version);
    // Moved aside first, so phones never see half a release while it is removed.
    let aside = firmware_dir.join(format!(
        ".deleting-{}",
        crate::domain::account::random_token(8)
    ));
    let moved = dir.is_dir() && std::fs::rename(&dir, &aside).is_ok();
    let result = db::write_tx(conn, |tx| {
        if !q::list_profiles_using(tx, version)?.is_empty() {
            return Err(Error::Conflict(format!(
                "firmware {version} was just chosen in a profile; not deleted"
            )));
        }
        q::delete_release(tx, version).map(|_| ())
    });
    match result {
        Ok(()) => {
            if moved && let Err(e) = std::fs::remove_dir_all(&aside) {
                log::warn!("could not remove {}: {e}", aside.display());
            }
            Ok(())
        }
        Err(e) => {
            if moved {
                let _ = std::fs::rename(&aside, &dir);
            }
            Err(e)
        }
    }
}

/// Hashes every catalogued file and records the outcome; a changed or missing file is a
/// problem (and is no longer served).
pub fn verify(conn: &Connection, firmware_dir: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for r in q::list_releases(conn)? {
        for f in &r.files {
            let path = firmware_dir.join(&r.version).join(&f.path);
            let (status, detail) = match hash_file(&path) {
                Ok((size, sha)) if sha == f.sha256 && size == f.size => {
                    report.bytes += size;
                    (FileStatus::Ok, String::new())
                }
                Ok((size, sha)) => (
                    FileStatus::Mismatch,
                    format!(
                        "checksum mismatch: imported {} bytes with SHA-256 {}, now {size} bytes \
                         with SHA-256 {sha}; import the release again",
                        f.size, f.sha256
                    ),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                    FileStatus::Missing,
                    "missing from the disk; import the release again".to_string(),
                ),
                Err(e) => (FileStatus::Missing, format!("cannot be read: {e}")),
            };
            report.files += 1;
            if status != f.status {
                q::update_file_status(conn, &r.version, &f.path, status)?;
            }
            if status != FileStatus::Ok {
                report.problems.push(Problem {
                    version: r.version.clone(),
                    path: f.path.clone(),
                    status,
                    detail,
                });
            }
        }
    }
    Ok(report)
}

/// Size and SHA-256 (hex) of a file, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hash.finalize())))
}

pub(crate) use crate::domain::hex;

/// Finds the file for `firmware/<version>/<file>`. Phones ask for the APP_FILE_PATH name
/// prefixed with their part number: `<part>.sip.ld` is that image in a split release, or
/// the combined `sip.ld` when the release has no image of that part. A plain `sip.ld` in a
/// split release is the image of the model the User-Agent names. Files whose last check
/// failed are not served.
pub fn locate(
    conn: &Connection,
    firmware_dir: &Path,
    version: &str,
    file: &str,
    model_token: Option<&str>,
) -> Result<Image> {
    let dir = firmware_dir.join(version);
    let mut candidates = vec![file.to_string()];
    if let Some((_, rest)) = parts::split_prefixed(file) {
        candidates.push(rest.to_string());
    } else if let Some(model) = model_token {
        candidates.extend(parts::of_model(model).iter().map(|p| format!("{p}.{file}")));
    }
    for name in candidates {
        let path = dir.join(&name);
        if !path.is_file() {
            continue;
        }
        return Ok(match q::find_file_status(conn, version, &name)? {
            Some(s) if !s.servable() => Image::Damaged(format!(
                "firmware/{version}/{name} failed its checksum check ({}); not served",
                s.as_str()
            )),
            _ => Image::File(path),
        });
    }
    Ok(Image::NotFound)
}

#[cfg(test)]
mod tests;
