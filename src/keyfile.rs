//! The secrets key file (`secrets_key_file`, default `<data_dir>/secret.key`): 32 random
//! bytes in base64, mode 0600, created on first start and kept outside the database. It
//! signs Digest nonces and, through `db::secrets`, seals device secrets at rest. Key
//! rotation (`zerotouch secrets rotate-key`) re-encrypts in one transaction and swaps the
//! file atomically; a crash between the two is finished or undone at the next start from
//! the check value the transaction wrote.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::server::prepare_data_dir;

/// Reads the installation's secrets key, creating it (mode 0600) on first start.
pub fn secrets_key(config: &Config) -> Result<Vec<u8>> {
    use base64::Engine;
    let path = crate::backup::key_path(config);
    match std::fs::read_to_string(&path) {
        Ok(text) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 32)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} is not a zerotouch secrets key (32 bytes, base64)",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| Error::Config(format!("no random numbers: {e}")))?;
            let text = base64::engine::general_purpose::STANDARD.encode(&key);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    Error::io(format!("creating the secrets key {}", path.display()), e)
                })?;
            file.write_all(format!("{text}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(format!("writing the secrets key {}", path.display()), e))?;
            log::info!("created the secrets key {}", path.display());
            Ok(key)
        }
        Err(e) => Err(Error::io(
            format!("reading the secrets key {}", path.display()),
            e,
        )),
    }
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
            std::fs::rename(&new_path, &path).map_err(|e| {
                Error::io(
                    format!("installing the new secrets key {}", path.display()),
                    e,
                )
            })?;
            log::warn!(
                "finished an interrupted secrets key rotation: {} is the new key",
                path.display()
            );
            Ok(Some(new))
        }
        _ => {
            let _ = std::fs::remove_file(&new_path);
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
    let text = base64::engine::general_purpose::STANDARD.encode(&new);
    let _ = std::fs::remove_file(&new_path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&new_path)
        .map_err(|e| Error::io(format!("creating {}", new_path.display()), e))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing {}", new_path.display()), e))?;
    let n = match secrets::rotate(
        &mut conn,
        &SecretKey::derive(&old),
        &SecretKey::derive(&new),
    ) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&new_path);
            return Err(e);
        }
    };
    // Committed: the new key is the one. A crash before this rename is finished at the next
    // start (the check value in the database opens only with the new key).
    let path = crate::backup::key_path(config);
    std::fs::rename(&new_path, &path).map_err(|e| {
        Error::io(
            format!("installing the new secrets key {}", path.display()),
            e,
        )
    })?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    secrets::install(&new);
    Ok(n)
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
