//! Restoring a backup: stage, check, swap, and roll back on any failure.
//!
//! The archive is unpacked into `<data_dir>/.restore-staging`, its manifest and the
//! database's integrity are checked, the phones the restore would refuse are counted
//! (`actions::rollback`) and, when the backup's secrets key differs from the one in use, the
//! new key file is written beside the old one (with its owner, group and mode) — all before
//! anything in use changes, so a user who may not write the key stops with nothing touched.
//! Then what is in use moves into `.pre-restore-<time>/`, the backup moves in and the key
//! is renamed over the old one, last. A failure at any step of the swap moves everything
//! back and names the `.pre-restore-*` copy. Run by root on a data directory the service
//! owns, the command already is that user (`privilege`), so every restored file is the
//! service's; modes are set as docs/security.md lists them.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    CONFIG_ENTRY, DATA_DIRS, DB_ENTRY, Hashing, KEY_ENTRY, MANIFEST, Manifest, Report, STAGING,
    key_path, lock_data_dir, set_private,
};
use crate::config::Config;
use crate::domain::hex;
use crate::error::{Error, Result};

/// The files of the database moved aside and back.
const DB_FILES: [&str; 3] = ["zerotouch.db", "zerotouch.db-wal", "zerotouch.db-shm"];

/// Restores a backup into the configured data directory. Refuses while a server runs.
/// Phones that hold a credential the current database accepts and the backup does not
/// (`actions::rollback`) are counted first: without `confirm`, nothing is replaced (I10).
/// `config_file` is the configuration in use, compared with the backup's (never replaced).
pub fn restore(
    config: &Config,
    archive: &Path,
    confirm: bool,
    config_file: Option<&Path>,
) -> Result<Report> {
    let data = &config.data_dir;
    let _lock = lock_data_dir(data)?;
    let staging = data.join(STAGING);
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)
        .map_err(|e| Error::io(format!("creating {}", staging.display()), e))?;
    let new_key = key_path(config).with_extension("restore-new");
    let result = (|| -> Result<Report> {
        let (manifest, bytes, devices) = stage(config, archive, confirm, &staging)?;
        let key_changes = stage_key(config, &staging, &new_key)?;
        let kept = pre_restore_dir(data)?;
        if let Err(e) = swap(config, &staging, &kept, key_changes.then_some(&new_key)) {
            return Err(match put_back(config, &kept) {
                Ok(()) => Error::Conflict(format!(
                    "restore failed while putting the backup in place ({e}); the previous \
                     installation was put back, and a copy of what was moved stays in {}",
                    kept.display()
                )),
                Err(back) => Error::Conflict(format!(
                    "restore failed while putting the backup in place ({e}), and putting the \
                     previous installation back failed too ({back}): it is in {}; move its \
                     files back into {} before starting the server",
                    kept.display(),
                    data.display()
                )),
            });
        }
        set_modes(data);
        let config_from_backup = compare_config(data, &staging, config_file);
        Ok(Report {
            files: manifest.files.len(),
            bytes,
            devices,
            kept: Some(kept),
            config_from_backup,
        })
    })();
    let _ = crate::privilege::elevated(|| Ok(fs::remove_file(&new_key)));
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Unpacks and checks the archive; counts what it would take from phones. Returns the
/// manifest, the bytes of its files and the devices of its database.
fn stage(
    config: &Config,
    archive: &Path,
    confirm: bool,
    staging: &Path,
) -> Result<(Manifest, u64, i64)> {
    // Opened as whoever ran the command: the archive may sit in root's directory.
    let file = crate::privilege::elevated(|| {
        File::open(archive).map_err(|e| Error::io(format!("reading {}", archive.display()), e))
    })?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    // `unpack_in` refuses entries that would land outside the staging directory.
    for entry in tar
        .entries()
        .map_err(|e| Error::io(format!("reading {}", archive.display()), e))?
    {
        let mut entry = entry.map_err(|e| {
            Error::io(
                format!("{} is not a zerotouch backup", archive.display()),
                e,
            )
        })?;
        let ok = entry
            .unpack_in(staging)
            .map_err(|e| Error::io(format!("{} is damaged", archive.display()), e))?;
        if !ok {
            return Err(Error::invalid(
                "archive",
                "contains a path outside the backup",
            ));
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(staging.join(MANIFEST)).map_err(|_| {
            Error::invalid("archive", "has no manifest.json: not a zerotouch backup")
        })?)
        .map_err(|e| Error::invalid("archive", format!("manifest.json is damaged: {e}")))?;
    let mut bytes = 0;
    for f in &manifest.files {
        let path = staging.join(&f.path);
        let mut file = File::open(&path)
            .map_err(|_| Error::invalid("archive", format!("{} is missing", f.path)))?;
        let mut h = Hashing {
            inner: &mut file,
            hash: Sha256::new(),
            size: 0,
        };
        io::copy(&mut h, &mut io::sink())
            .map_err(|e| Error::io(format!("reading {}", f.path), e))?;
        if h.size != f.size || hex(&h.hash.finalize()) != f.sha256 {
            return Err(Error::invalid(
                "archive",
                format!("{} does not match its checksum", f.path),
            ));
        }
        bytes += f.size;
    }
    let db = staging.join(DB_ENTRY);
    let mut conn = crate::db::open(&db, std::time::Duration::from_secs(5))?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(Error::invalid(
            "archive",
            format!("the database fails its integrity check: {check}"),
        ));
    }
    let version = crate::db::schema_version(&conn)?;
    if version > crate::db::SCHEMA_VERSION {
        return Err(Error::invalid(
            "archive",
            format!(
                "the backup comes from a newer zerotouch (schema {version}); install that release to restore it"
            ),
        ));
    }
    let devices: i64 = conn.query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
    // The server migrates at start anyway; migrated now to be compared.
    crate::db::migrate(&mut conn)?;
    match rollback_impact(config, &conn, staging) {
        Ok(impact) => impact.require(confirm, "restoring the backup")?,
        // A restore is how a broken installation is recovered: a database that cannot
        // be read is no reason to refuse, but the admin is told what is not known.
        Err(e) if !confirm => {
            return Err(Error::NeedsConfirmation {
                devices: 0,
                message: format!(
                    "restoring the backup: the database it replaces cannot be compared \
                     with it ({e}), so phones that hold credentials the backup does not \
                     have cannot be counted; confirm to go ahead"
                ),
                phones: Vec::new(),
            });
        }
        Err(_) => {}
    }
    Ok((manifest, bytes, devices))
}

/// When the backup's secrets key differs from the one in use, writes it to `new_key` beside
/// the key in use, with that key's owner, group and mode. Returns whether the key changes.
/// A user who may not write there (the package's key is in `/etc/zerotouch`) stops here.
fn stage_key(config: &Config, staging: &Path, new_key: &Path) -> Result<bool> {
    let Ok(staged) = fs::read(staging.join(KEY_ENTRY)) else {
        return Ok(false);
    };
    let dest = key_path(config);
    let current = crate::privilege::elevated(|| Ok(fs::read(&dest).ok()))?;
    if current.as_deref() == Some(staged.as_slice()) {
        return Ok(false);
    }
    let text = String::from_utf8_lossy(&staged);
    let like = fs::metadata(&dest).ok();
    crate::privilege::elevated(|| {
        crate::keyfile::write_key_like(new_key, text.trim(), like.as_ref())
    })
    .map_err(|e| {
        Error::Conflict(format!(
            "the backup's secrets key differs from {} and cannot be put in its place: \
             {e}; nothing was changed",
            dest.display()
        ))
    })?;
    Ok(true)
}

/// A new `.pre-restore-<time>` directory, even for two restores in one second: moving into
/// one that holds the previous restore's copies would fail half-way.
fn pre_restore_dir(data: &Path) -> Result<PathBuf> {
    let now = crate::db::now_secs();
    let mut n = 0;
    loop {
        let name = if n == 0 {
            format!(".pre-restore-{now}")
        } else {
            format!(".pre-restore-{now}-{n}")
        };
        let candidate = data.join(name);
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(Error::io(format!("creating {}", candidate.display()), e)),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// A swap step that fails, to test the roll-back.
    static FAIL_AT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

fn step(name: &str) -> Result<()> {
    #[cfg(test)]
    if FAIL_AT.with(|f| f.get()) == Some(name) {
        return Err(Error::io(
            format!("putting {name} in place"),
            io::Error::other("injected failure"),
        ));
    }
    let _ = name;
    Ok(())
}

/// Moves what is in use into `kept`, then the staged backup in, then the new key (when it
/// changes) over the old one.
fn swap(config: &Config, staging: &Path, kept: &Path, new_key: Option<&PathBuf>) -> Result<()> {
    let data = &config.data_dir;
    for name in DB_FILES.iter().chain(DATA_DIRS) {
        let p = data.join(name);
        if p.exists() {
            fs::rename(&p, kept.join(name))
                .map_err(|e| Error::io(format!("moving {} aside", p.display()), e))?;
        }
    }
    let dest = key_path(config);
    if new_key.is_some() && dest.exists() {
        fs::copy(&dest, kept.join("secret.key"))
            .map_err(|e| Error::io(format!("copying {} aside", dest.display()), e))?;
        set_private(&kept.join("secret.key"));
    }
    step("zerotouch.db")?;
    fs::rename(staging.join(DB_ENTRY), config.database_path())
        .map_err(|e| Error::io("putting the database in place", e))?;
    for dir in DATA_DIRS {
        step(dir)?;
        let from = staging.join("data").join(dir);
        let to = data.join(dir);
        if from.is_dir() {
            fs::rename(&from, &to).map_err(|e| Error::io(format!("putting {dir}/ in place"), e))?;
        } else {
            fs::create_dir_all(&to)
                .map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
        }
    }
    step("secret.key")?;
    if let Some(new_key) = new_key {
        crate::privilege::elevated(|| {
            fs::rename(new_key, &dest).map_err(|e| {
                Error::io(
                    format!("restoring the secrets key to {}", dest.display()),
                    e,
                )
            })
        })?;
    }
    Ok(())
}

/// Undoes a swap that failed: removes what came from the backup and moves back what was
/// moved into `kept` (the key was renamed last, so it never needs undoing).
fn put_back(config: &Config, kept: &Path) -> Result<()> {
    let data = &config.data_dir;
    for name in DB_FILES.iter().chain(DATA_DIRS) {
        let aside = kept.join(name);
        if !aside.exists() {
            continue;
        }
        let p = data.join(name);
        let gone = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        match gone {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing the restored {name}"), e)),
        }
        fs::rename(&aside, &p).map_err(|e| Error::io(format!("moving {name} back"), e))?;
    }
    Ok(())
}

/// The modes of docs/security.md ("Files and their modes") on what a restore put in place:
/// directories 0750, private keys 0600, everything else 0640.
fn set_modes(data: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(m));
    };
    for name in DB_FILES {
        let p = data.join(name);
        if p.exists() {
            mode(&p, 0o640);
        }
    }
    fn walk(dir: &Path, set: &dyn Fn(&Path, bool)) {
        set(dir, true);
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), set),
                Ok(t) if t.is_file() => set(&e.path(), false),
                _ => {}
            }
        }
    }
    for dir in DATA_DIRS {
        walk(&data.join(dir), &|p, is_dir| {
            let key = p.extension().is_some_and(|x| x == "key");
            mode(
                p,
                if is_dir {
                    0o750
                } else if key {
                    0o600
                } else {
                    0o640
                },
            );
        });
    }
}

/// When the backup holds a configuration file unlike `in_use`, writes it to
/// `<data_dir>/config-from-backup.toml` (mode 0640) for the admin to compare.
fn compare_config(data: &Path, staging: &Path, in_use: Option<&Path>) -> Option<PathBuf> {
    let from_backup = fs::read(staging.join(CONFIG_ENTRY)).ok()?;
    let current = in_use.and_then(|p| crate::privilege::elevated(|| Ok(fs::read(p).ok())).ok()?);
    if current.as_deref() == Some(from_backup.as_slice()) {
        return None;
    }
    let out = data.join("config-from-backup.toml");
    fs::write(&out, &from_backup).ok()?;
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(&out, fs::Permissions::from_mode(0o640));
    Some(out)
}

/// The phones the restore would refuse: what the current database accepts that the staged
/// backup (`restored`, its key in `staging`) does not.
fn rollback_impact(
    config: &Config,
    restored: &rusqlite::Connection,
    staging: &Path,
) -> Result<crate::actions::Impact> {
    use crate::actions::rollback;
    use crate::db::secrets::SecretKey;
    let current_path = config.database_path();
    if !current_path.exists() {
        return Ok(crate::actions::Impact::default());
    }
    let current_key = crate::keyfile::read_key_file(&key_path(config))?;
    // A backup without its key was sealed with the current one.
    let restored_key =
        crate::keyfile::read_key_file(&staging.join(KEY_ENTRY))?.or_else(|| current_key.clone());
    let mut current = crate::db::open(&current_path, std::time::Duration::from_secs(5))?;
    crate::db::migrate(&mut current)?;
    let key = |k: &Option<Vec<u8>>| k.as_deref().map(SecretKey::derive);
    Ok(rollback::impact(
        &rollback::read(&current, key(&current_key).as_ref())?,
        &rollback::read(restored, key(&restored_key).as_ref())?,
        crate::db::now_secs(),
    ))
}

#[cfg(test)]
mod tests;
