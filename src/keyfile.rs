//! The secrets key file (`secrets_key_file`, default `<data_dir>/secret.key`): 32 random
//! bytes in base64, mode 0600, created on first start and kept outside the database. It
//! signs Digest nonces and, through `db::secrets`, seals device secrets at rest. Key
//! rotation (`zerotouch secrets rotate-key`) re-encrypts in one transaction and swaps the
//! file atomically; a crash between the two is finished or undone at the next start from
//! the check value the transaction wrote. A new key file takes the owner, group and mode
//! of the one it replaces (the package's is `root:zerotouch 0640` in `/etc/zerotouch`), so a
//! rotation or a restore run as root never leaves a key the service cannot read.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::config::Config;
use crate::datadir::prepare_data_dir;
use crate::error::{Error, Result};

/// Reads a secrets key file (32 bytes or more, base64); `None` when there is none.
pub fn read_key_file(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    use base64::Engine;
    match std::fs::read_to_string(path) {
        Ok(text) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 32)
            .map(Some)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} is not a zerotouch secrets key (32 bytes, base64)",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(
            format!("reading the secrets key {}", path.display()),
            e,
        )),
    }
}

/// Reads the installation's secrets key, creating it (mode 0600) on first start.
pub fn secrets_key(config: &Config) -> Result<Vec<u8>> {
    use base64::Engine;
    let path = crate::backup::key_path(config);
    if let Some(key) = read_key_file(&path)? {
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Config(format!("no random numbers: {e}")))?;
    let text = base64::engine::general_purpose::STANDARD.encode(&key);
    crate::privilege::elevated(|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("creating the secrets key {}", path.display()), e))?;
        file.write_all(format!("{text}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("writing the secrets key {}", path.display()), e))
    })?;
    log::info!("created the secrets key {}", path.display());
    Ok(key)
}

fn new_key_path(config: &Config) -> std::path::PathBuf {
    let path = crate::backup::key_path(config);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Finishes or undoes a key rotation a crash interrupted: when `<key file>.new` exists, the
/// database's check value says which key it was written with. Returns the key to use when
/// it changed.
pub fn finish_key_rotation(
    config: &Config,
    conn: &rusqlite::Connection,
) -> Result<Option<Vec<u8>>> {
    use crate::db::secrets::{SecretKey, check_matches};
    use base64::Engine;
    let new_path = new_key_path(config);
    let Ok(text) = std::fs::read_to_string(&new_path) else {
        return Ok(None);
    };
    let new = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() >= 32);
    match new {
        Some(new) if check_matches(conn, &SecretKey::derive(&new))? == Some(true) => {
            let path = crate::backup::key_path(config);
            crate::privilege::elevated(|| {
                std::fs::rename(&new_path, &path).map_err(|e| {
                    Error::io(
                        format!("installing the new secrets key {}", path.display()),
                        e,
                    )
                })
            })?;
            log::warn!(
                "finished an interrupted secrets key rotation: {} is the new key",
                path.display()
            );
            Ok(Some(new))
        }
        _ => {
            let _ = crate::privilege::elevated(|| Ok(std::fs::remove_file(&new_path)));
            log::warn!(
                "undid an interrupted secrets key rotation: the database still uses the old key"
            );
            Ok(None)
        }
    }
}

/// `zerotouch secrets rotate-key`: a new key file; every device secret re-encrypted under it
/// in one transaction; then the key file swapped atomically (rename). The server must be
/// stopped (the data directory lock is taken). Returns how many values were re-encrypted.
pub fn rotate_secrets_key(config: &Config) -> Result<usize> {
    use crate::db::secrets::{self, SecretKey};
    use base64::Engine;
    prepare_data_dir(&config.data_dir)?;
    let _lock = crate::backup::lock_data_dir(&config.data_dir)?;
    let old = secrets_key(config)?;
    let mut conn = crate::db::open(
        &config.database_path(),
        Duration::from_millis(config.database.busy_timeout_ms),
    )?;
    crate::db::migrate(&mut conn)?;
    let old = finish_key_rotation(config, &conn)?.unwrap_or(old);
    // Values still in plaintext are sealed under the old key first, so one pass moves all.
    secrets::install(&old);
    secrets::seal_plaintext(&mut conn)?;
    let mut new = vec![0u8; 32];
    getrandom::fill(&mut new).map_err(|e| Error::Config(format!("no random numbers: {e}")))?;
    let new_path = new_key_path(config);
    let path = crate::backup::key_path(config);
    // Written (with the current key's owner, group and mode) before anything changes: a
    // user who may not write there stops here, with nothing re-encrypted.
    let text = base64::engine::general_purpose::STANDARD.encode(&new);
    let like = std::fs::metadata(&path).ok();
    crate::privilege::elevated(|| write_key_like(&new_path, &text, like.as_ref()))?;
    let n = match secrets::rotate(
        &mut conn,
        &SecretKey::derive(&old),
        &SecretKey::derive(&new),
    ) {
        Ok(n) => n,
        Err(e) => {
            let _ = crate::privilege::elevated(|| Ok(std::fs::remove_file(&new_path)));
            return Err(e);
        }
    };
    // Committed: the new key is the one. A crash before this rename is finished at the next
    // start (the check value in the database opens only with the new key).
    crate::privilege::elevated(|| {
        std::fs::rename(&new_path, &path).map_err(|e| {
            Error::io(
                format!("installing the new secrets key {}", path.display()),
                e,
            )
        })
    })?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    secrets::install(&new);
    Ok(n)
}

/// Writes a key file `path` (replacing a leftover one) holding `text`, with the owner, group
/// and mode of `like` (the file it is going to replace) or, without one, mode 0600 and the
/// current user. Changing the owner needs root: `privilege::elevated` around the call.
pub fn write_key_like(
    path: &std::path::Path,
    text: &str,
    like: Option<&std::fs::Metadata>,
) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _ = std::fs::remove_file(path);
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    " ({} is not writable by this user; run the command as root, e.g. with sudo)",
                    dir.display()
                )
            } else {
                String::new()
            };
            Error::io(format!("creating {}{hint}", path.display()), e)
        })?;
    let result = (|| -> std::io::Result<()> {
        if let Some(m) = like {
            let now = file.metadata()?;
            if (now.uid(), now.gid()) != (m.uid(), m.gid()) {
                std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))?;
            }
            file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        file.write_all(format!("{text}\n").as_bytes())?;
        file.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::io(
            format!(
                "writing {} with the owner and mode of the key it replaces",
                path.display()
            ),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::secrets::{SecretKey, check_matches, store_check};

    fn config(dir: &std::path::Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_then_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let c = config(dir.path());
        let k = secrets_key(&c).expect("created");
        assert_eq!(k.len(), 32);
        let meta = std::fs::metadata(crate::backup::key_path(&c)).expect("file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(secrets_key(&c).expect("read"), k);
    }

    #[test]
    fn a_rotated_key_keeps_the_mode_and_owner_of_the_key_it_replaces() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("dir");
        let c = config(dir.path());
        crate::datadir::prepare_data_dir(&c.data_dir).expect("prepare");
        let old = secrets_key(&c).expect("created");
        let path = crate::backup::key_path(&c);
        // The package's key is group-readable, for the service's group.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let before = std::fs::metadata(&path).expect("meta");
        rotate_secrets_key(&c).expect("rotated");
        let after = std::fs::metadata(&path).expect("meta");
        assert_ne!(secrets_key(&c).expect("read"), old);
        assert_eq!(after.mode() & 0o777, 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        assert!(!new_key_path(&c).exists());
    }

    #[test]
    fn an_interrupted_rotation_is_finished_or_undone_by_what_the_database_holds() {
        let dir = tempfile::tempdir().expect("dir");
        let c = config(dir.path());
        let old = secrets_key(&c).expect("key");
        let conn = crate::db::open_in_memory().expect("db");
        store_check(&conn, &SecretKey::derive(&old)).expect("check");
        use base64::Engine;
        let new = [9u8; 32];
        let write_new = || {
            std::fs::write(
                new_key_path(&c),
                base64::engine::general_purpose::STANDARD.encode(new),
            )
            .expect("new")
        };
        // Crashed before the commit: the database still opens with the old key.
        write_new();
        assert_eq!(finish_key_rotation(&c, &conn).expect("undo"), None);
        assert!(!new_key_path(&c).exists());
        assert_eq!(secrets_key(&c).expect("key"), old);
        // Crashed after the commit, before the rename: the new key is installed.
        write_new();
        store_check(&conn, &SecretKey::derive(&new)).expect("check");
        assert_eq!(
            finish_key_rotation(&c, &conn).expect("finish"),
            Some(new.to_vec())
        );
        assert_eq!(secrets_key(&c).expect("key"), new.to_vec());
        assert_eq!(
            check_matches(&conn, &SecretKey::derive(&new)).expect("q"),
            Some(true)
        );
    }
}
