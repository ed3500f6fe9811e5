//! Profile files that hold a secret are stored sealed as a whole, bound to their row
//! (`profile_files`, `content`, `<profile id>/<position>`). Which files hold one follows the
//! same rules as everywhere else: a parameter the parameter table marks secret
//! (`params::is_secret`) set to a value, or any value that is a URL with a password. A file
//! that cannot be read as parameters is sealed too (when in doubt, seal). Files without a
//! secret stay readable in the database, so a search over them (`list_files_mentioning`)
//! still works in SQL for most of them.
//!
//! The clear text is what every reader gets (`open_file`); it is never written back.

use super::{BOUND_PREFIX, Place, key};
use crate::error::Result;

const TABLE: &str = "profile_files";
const COLUMN: &str = "content";

fn row(profile_id: i64, position: i64) -> String {
    format!("{profile_id}/{position}")
}

/// Whether a profile file's content holds a secret (see the module's rules).
pub fn holds_secret(file_name: &str, content: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(content) else {
        return true;
    };
    // Templates are read with sample values, as they were checked when stored.
    let sample = crate::domain::template::check_form(text);
    let Ok(found) = crate::domain::xml::parse_params(file_name, sample.as_bytes()) else {
        return true;
    };
    found.iter().any(|p| {
        (crate::domain::polycom::params::is_secret(&p.name) && !p.value.is_empty())
            || crate::domain::provserver::mask_password(&p.value) != p.value
    })
}

/// Whether stored content is sealed.
pub fn is_sealed_file(stored: &[u8]) -> bool {
    stored.starts_with(BOUND_PREFIX.as_bytes())
}

/// The content to store for a file at `(profile_id, position)`: sealed when it holds a
/// secret and a key is installed, as it is otherwise.
pub fn seal_file(profile_id: i64, position: i64, file_name: &str, content: &[u8]) -> Vec<u8> {
    match key() {
        Some(k) => seal_file_with(&k, profile_id, position, file_name, content),
        None => content.to_vec(),
    }
}

pub(super) fn seal_file_with(
    k: &super::SecretKey,
    profile_id: i64,
    position: i64,
    file_name: &str,
    content: &[u8],
) -> Vec<u8> {
    if is_sealed_file(content) || !holds_secret(file_name, content) {
        return content.to_vec();
    }
    let Ok(text) = std::str::from_utf8(content) else {
        // Not text: stored files are checked to be UTF-8 before they get here.
        return content.to_vec();
    };
    let row = row(profile_id, position);
    let place = Place {
        table: TABLE,
        column: COLUMN,
        row: &row,
    };
    k.seal_at(&place, text).into_bytes()
}

/// The clear content of a stored file (sealed or not).
pub fn open_file(profile_id: i64, position: i64, stored: Vec<u8>) -> Result<Vec<u8>> {
    if !is_sealed_file(&stored) {
        return Ok(stored);
    }
    let text = String::from_utf8(stored).unwrap_or_default();
    let row = row(profile_id, position);
    let place = Place {
        table: TABLE,
        column: COLUMN,
        row: &row,
    };
    Ok(super::open_at(&place, &text)?.into_bytes())
}

/// `open_file` with a given key (re-sealing under a new key).
fn open_file_with(
    k: &super::SecretKey,
    profile_id: i64,
    position: i64,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let text = String::from_utf8_lossy(stored);
    let row = row(profile_id, position);
    let place = Place {
        table: TABLE,
        column: COLUMN,
        row: &row,
    };
    Ok(k.open_at(&place, &text)?.into_bytes())
}

/// Seals the files holding a secret that are stored in clear, and with `from`, re-seals the
/// sealed ones from `from` to `to`. Returns how many changed. A file at a time: profile
/// files are few and small.
pub(super) fn reseal_files(
    conn: &rusqlite::Connection,
    from: Option<&super::SecretKey>,
    to: &super::SecretKey,
) -> Result<usize> {
    let rows: Vec<(i64, i64, String, Vec<u8>)> = conn
        .prepare("SELECT profile_id, position, file_name, content FROM profile_files")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn
        .prepare("UPDATE profile_files SET content = ?3 WHERE profile_id = ?1 AND position = ?2")?;
    let mut changed = 0;
    for (profile_id, position, file_name, stored) in rows {
        let plain = if is_sealed_file(&stored) {
            match from {
                Some(k) => open_file_with(k, profile_id, position, &stored)?,
                None => continue,
            }
        } else {
            if !holds_secret(&file_name, &stored) {
                continue;
            }
            stored
        };
        let sealed = seal_file_with(to, profile_id, position, &file_name, &plain);
        stmt.execute(rusqlite::params![profile_id, position, sealed])?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::secrets::SecretKey;

    #[test]
    fn a_file_with_a_secret_is_sealed_bound_to_its_row_and_others_stay_readable() {
        let k = SecretKey::derive(&[5u8; 32]);
        let secret = b"<c reg.1.auth.password=\"Line-Secret-9\" reg.1.address=\"1001\"/>";
        let url = b"<c device.prov.serverName=\"https://u:Url-Secret-7@p.example/\"/>";
        let plain = b"<c reg.1.address=\"1001\" up.backlight=\"1\"/>";
        let sealed = seal_file_with(&k, 3, 0, "site.cfg", secret);
        assert!(is_sealed_file(&sealed));
        assert!(!String::from_utf8_lossy(&sealed).contains("Line-Secret-9"));
        assert_eq!(
            open_file_with(&k, 3, 0, &sealed).expect("opens"),
            secret.to_vec()
        );
        assert!(
            open_file_with(&k, 3, 1, &sealed).is_err(),
            "moved to another row, it does not open"
        );
        assert!(is_sealed_file(&seal_file_with(&k, 3, 0, "a.cfg", url)));
        assert_eq!(seal_file_with(&k, 3, 0, "b.cfg", plain), plain.to_vec());
        assert!(
            holds_secret("bad.cfg", b"<c a.b=\"1\""),
            "unreadable: sealed"
        );
    }
}
