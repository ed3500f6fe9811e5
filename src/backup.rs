//! Backups and restores of a whole installation, and the lock that tells whether a server
//! is running on a data directory.
//!
//! A backup is one gzip'd tar archive with everything a restore needs: a consistent copy of
//! the database taken while serving (`VACUUM INTO`), `tls/` with the CA key (without it every
//! phone on HTTPS would be locked out after a restore), the secrets key, uploads, shared
//! assets and firmware, plus a manifest with the SHA-256 of every file. A restore refuses to
//! run while the server runs, verifies the manifest and the database's integrity before it
//! touches anything, and keeps what it replaces in `.pre-restore-<time>/`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::domain::hex;
use crate::error::{Error, Result};

/// Directories of the data dir that a backup carries.
const DATA_DIRS: &[&str] = &["tls", "uploads", "assets", "firmware"];
const MANIFEST: &str = "manifest.json";
const DB_ENTRY: &str = "db/zerotouch.db";
const KEY_ENTRY: &str = "keys/secret.key";

/// What a backup holds, stored as `manifest.json` at the end of the archive.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub schema_version: i64,
    pub created_at: i64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Outcome of a backup or restore, for the CLI.
#[derive(Debug)]
pub struct Report {
    pub files: usize,
    pub bytes: u64,
    pub devices: i64,
    pub kept: Option<PathBuf>,
}

/// The exclusive lock a running server holds on its data directory.
pub struct DataLock {
    _file: File,
}

/// Takes the data directory's lock; fails if a server (or a restore) holds it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataLock> {
    fs::create_dir_all(data_dir)
        .map_err(|e| Error::io(format!("creating {}", data_dir.display()), e))?;
    let path = data_dir.join("zerotouch.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Error::io(
                format!(
                    "data directory {} is not writable (check its owner and permissions)",
                    data_dir.display()
                ),
                e,
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(DataLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "a zerotouch server is running on {} (stop it first, e.g. `systemctl stop zerotouch`)",
            data_dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
    }
}

/// The secrets key file of a configuration.
pub fn key_path(config: &Config) -> PathBuf {
    if config.secrets_key_file.as_os_str().is_empty() {
        config.data_dir.join("secret.key")
    } else {
        config.secrets_key_file.clone()
    }
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    entry: &str,
    files: &mut Vec<ManifestFile>,
) -> Result<u64> {
    let file = File::open(src).map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(meta.len());
    header.set_mode(0o600);
    header.set_mtime(
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
    );
    header.set_cksum();
    let mut reader = Hashing {
        inner: file.take(meta.len()),
        hash: Sha256::new(),
        size: 0,
    };
    tar.append_data(&mut header, entry, &mut reader)
        .map_err(|e| Error::io(format!("writing {entry} to the backup"), e))?;
    if reader.size != meta.len() {
        return Err(Error::Conflict(format!(
            "{} changed size while being backed up; try again",
            src.display()
        )));
    }
    files.push(ManifestFile {
        path: entry.to_string(),
        size: reader.size,
        sha256: hex(&reader.hash.finalize()),
    });
    Ok(reader.size)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        // Partial uploads, firmware imports and deletions, and temporary files of atomic
        // writes in flight are not data.
        let n = name.to_string_lossy();
        if n == ".incoming"
            || [".staging-", ".deleting-", ".tmp-", ".clear-", ".incoming-"]
                .iter()
                .any(|p| n.starts_with(p))
        {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Writes a backup of the installation to `out`, while the server may be running.
pub fn backup(config: &Config, out: &Path) -> Result<Report> {
    let data = &config.data_dir;
    let db_path = config.database_path();
    if !db_path.exists() {
        return Err(Error::not_found(format!("database {}", db_path.display())));
    }
    // A consistent snapshot of the database, taken through SQLite while others write.
    let snapshot = data.join(format!(
        ".backup-{}.db",
        crate::domain::account::random_token(8)
    ));
    let conn = crate::db::open(&db_path, std::time::Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [snapshot.to_string_lossy()])?;
    let schema_version = crate::db::schema_version(&conn)?;
    drop(conn);
    let result = (|| -> Result<Report> {
        let devices: i64 = crate::db::open(&snapshot, std::time::Duration::from_secs(5))?
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
        let tmp_out = out.with_extension("partial");
        let file = File::create(&tmp_out)
            .map_err(|e| Error::io(format!("creating {}", tmp_out.display()), e))?;
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut files = Vec::new();
        let mut bytes = append_file(&mut tar, &snapshot, DB_ENTRY, &mut files)?;
        let key = key_path(config);
        if key.exists() {
            bytes += append_file(&mut tar, &key, KEY_ENTRY, &mut files)?;
        }
        for dir in DATA_DIRS {
            let root = data.join(dir);
            if !root.is_dir() {
                continue;
            }
            let mut list = Vec::new();
            walk(&root, &mut list)
                .map_err(|e| Error::io(format!("listing {}", root.display()), e))?;
            for path in list {
                let rel = path.strip_prefix(data).unwrap_or(&path);
                let entry = format!("data/{}", rel.to_string_lossy());
                match append_file(&mut tar, &path, &entry, &mut files) {
                    Ok(n) => bytes += n,
                    // An upload replaced while we read it: it is in the next backup.
                    Err(Error::Io { .. }) if !path.exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let manifest = Manifest {
            format: 1,
            version: crate::VERSION.to_string(),
            schema_version,
            created_at: crate::db::now_secs(),
            files,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Conflict(e.to_string()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())
            .map_err(|e| Error::io("writing the manifest", e))?;
        let gz = tar
            .into_inner()
            .map_err(|e| Error::io("finishing the backup", e))?;
        let buf = gz
            .finish()
            .map_err(|e| Error::io("finishing the backup", e))?;
        let file = buf
            .into_inner()
            .map_err(|e| Error::io("finishing the backup", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("finishing the backup", e))?;
        fs::rename(&tmp_out, out)
            .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
        Ok(Report {
            files: manifest.files.len(),
            bytes,
            devices,
            kept: None,
        })
    })();
    let _ = fs::remove_file(&snapshot);
    result
}

/// Restores a backup into the configured data directory. Refuses while a server runs.
pub fn restore(config: &Config, archive: &Path) -> Result<Report> {
    let data = &config.data_dir;
    let _lock = lock_data_dir(data)?;
    let staging = data.join(".restore-staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)
        .map_err(|e| Error::io(format!("creating {}", staging.display()), e))?;
    let result = (|| -> Result<Report> {
        let file = File::open(archive)
            .map_err(|e| Error::io(format!("reading {}", archive.display()), e))?;
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
                .unpack_in(&staging)
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
        let conn = crate::db::open(&db, std::time::Duration::from_secs(5))?;
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
        drop(conn);

        // Everything checked: move the current installation aside, then the backup in.
        let kept = data.join(format!(".pre-restore-{}", crate::db::now_secs()));
        fs::create_dir_all(&kept)
            .map_err(|e| Error::io(format!("creating {}", kept.display()), e))?;
        for name in ["zerotouch.db", "zerotouch.db-wal", "zerotouch.db-shm"]
            .iter()
            .chain(DATA_DIRS)
        {
            let p = data.join(name);
            if p.exists() {
                fs::rename(&p, kept.join(name))
                    .map_err(|e| Error::io(format!("moving {} aside", p.display()), e))?;
            }
        }
        fs::rename(&db, config.database_path())
            .map_err(|e| Error::io("putting the database in place", e))?;
        for dir in DATA_DIRS {
            let from = staging.join("data").join(dir);
            let to = data.join(dir);
            if from.is_dir() {
                fs::rename(&from, &to)
                    .map_err(|e| Error::io(format!("putting {dir}/ in place"), e))?;
            } else {
                fs::create_dir_all(&to)
                    .map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
            }
        }
        let key = staging.join(KEY_ENTRY);
        if key.exists() {
            let dest = key_path(config);
            if dest.exists() {
                let _ = fs::copy(&dest, kept.join("secret.key"));
            }
            fs::copy(&key, &dest).map_err(|e| {
                Error::io(
                    format!("restoring the secrets key to {}", dest.display()),
                    e,
                )
            })?;
            set_private(&dest);
        }
        Ok(Report {
            files: manifest.files.len(),
            bytes,
            devices,
            kept: Some(kept),
        })
    })();
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Restricts a file to its owner (and group, for the packaged key).
pub fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
}

/// Before migrating a database that holds data, copies it to `<data_dir>/backups/`.
pub fn before_migration(config: &Config) -> Result<Option<PathBuf>> {
    let db_path = config.database_path();
    if !db_path.exists() {
        return Ok(None);
    }
    let conn = crate::db::open(&db_path, std::time::Duration::from_secs(30))?;
    let version = crate::db::schema_version(&conn)?;
    if version == 0 || version >= crate::db::SCHEMA_VERSION {
        return Ok(None);
    }
    let dir = config.data_dir.join("backups");
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(format!(
        "zerotouch-schema{version}-{}.db",
        crate::db::now_secs()
    ));
    conn.execute("VACUUM INTO ?1", [path.to_string_lossy()])?;
    log::info!(
        "database: copied to {} before migrating from schema {version}",
        path.display()
    );
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.join("data"),
            ..Config::default()
        }
    }

    #[test]
    fn a_backup_restores_everything_and_keeps_what_it_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        crate::server::prepare_data_dir(&cfg.data_dir).expect("prepare");
        {
            let conn = crate::db::open_in_memory().expect("mem");
            drop(conn);
            let mut conn = crate::db::open(&cfg.database_path(), std::time::Duration::from_secs(1))
                .expect("open");
            crate::db::migrate(&mut conn).expect("migrate");
            crate::db::accounts::ensure_default(&conn).expect("account");
        }
        fs::write(cfg.data_dir.join("tls/ca.key"), b"CA KEY").expect("key");
        fs::write(cfg.data_dir.join("firmware/sip.ld"), vec![7u8; 100_000]).expect("fw");
        fs::write(key_path(&cfg), b"SECRET").expect("secret");
        let archive = dir.path().join("b.tar.gz");
        let report = backup(&cfg, &archive).expect("backup");
        assert!(report.files >= 4);
        // Lose things, then restore.
        fs::remove_file(cfg.data_dir.join("tls/ca.key")).expect("rm");
        fs::write(key_path(&cfg), b"OTHER").expect("overwrite");
        let restored = restore(&cfg, &archive).expect("restore");
        assert_eq!(
            fs::read(cfg.data_dir.join("tls/ca.key")).expect("read"),
            b"CA KEY"
        );
        assert_eq!(fs::read(key_path(&cfg)).expect("read"), b"SECRET");
        assert_eq!(
            fs::read(cfg.data_dir.join("firmware/sip.ld"))
                .expect("fw")
                .len(),
            100_000
        );
        assert!(restored.kept.expect("kept").join("zerotouch.db").exists());
    }

    #[test]
    fn a_damaged_archive_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        crate::server::prepare_data_dir(&cfg.data_dir).expect("prepare");
        fs::write(cfg.data_dir.join("tls/ca.key"), b"CA KEY").expect("key");
        let archive = dir.path().join("junk.tar.gz");
        fs::write(&archive, b"not a backup at all").expect("junk");
        assert!(restore(&cfg, &archive).is_err());
        assert_eq!(
            fs::read(cfg.data_dir.join("tls/ca.key")).expect("kept"),
            b"CA KEY"
        );
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock_data_dir(dir.path()).expect("first");
        let err = lock_data_dir(dir.path()).err().expect("second refused");
        assert!(err.to_string().contains("running"), "{err}");
        drop(first);
        lock_data_dir(dir.path()).expect("free again");
    }
}
