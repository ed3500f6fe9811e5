//! Backups and restores of a whole installation, and the lock that tells whether a server
//! is running on a data directory.
//!
//! A backup is one gzip'd tar archive with everything a restore needs: a consistent copy of
//! the database taken while serving (`VACUUM INTO`), `tls/` with the CA key (without it every
//! phone on HTTPS would be locked out after a restore), the secrets key, uploads, shared
//! assets and firmware, the configuration file when the command knows it, plus a manifest
//! with the SHA-256 of every file. Restores are in `restore.rs`. Temporary files a killed
//! backup or restore left behind are removed at the server's start (`remove_stale`).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::domain::hex;
use crate::error::{Error, Result};

/// Directories of the data dir that a backup carries.
const DATA_DIRS: &[&str] = &["tls", "uploads", "assets", "account-assets", "firmware"];
const MANIFEST: &str = "manifest.json";
const DB_ENTRY: &str = "db/zerotouch.db";
const KEY_ENTRY: &str = "keys/secret.key";
const CONFIG_ENTRY: &str = "config/config.toml";
/// Where a restore unpacks an archive before checking it.
const STAGING: &str = ".restore-staging";
/// Temporary files older than this are left by a killed backup or restore, not in use.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

mod restore;
pub use restore::restore;

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
    /// A restore whose backup holds a configuration file unlike the one in use: where that
    /// file was written, to compare (the configuration in use is never replaced).
    pub config_from_backup: Option<PathBuf>,
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

/// Writes a backup of the installation to `out`, while the server may be running, with the
/// configuration file `config_file` when given.
pub fn backup(config: &Config, out: &Path, config_file: Option<&Path>) -> Result<Report> {
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
    set_private(&snapshot);
    let schema_version = crate::db::schema_version(&conn)?;
    drop(conn);
    let result = (|| -> Result<Report> {
        let devices: i64 = crate::db::open(&snapshot, std::time::Duration::from_secs(5))?
            .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
        let tmp_out = out.with_extension("partial");
        // Only the service user may read it: it holds the database and the keys that open
        // its secrets.
        // Created as the user who ran the command (root, for `sudo zerotouch backup
        // /root/...`), wherever it asked for it.
        let file = crate::privilege::elevated(|| {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = fs::remove_file(&tmp_out);
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_out)
                .map_err(|e| Error::io(format!("creating {}", tmp_out.display()), e))
        })?;
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut files = Vec::new();
        let mut bytes = append_file(&mut tar, &snapshot, DB_ENTRY, &mut files)?;
        let key = key_path(config);
        if key.exists() {
            bytes += append_file(&mut tar, &key, KEY_ENTRY, &mut files)?;
        }
        if let Some(path) = config_file {
            bytes += append_file(&mut tar, path, CONFIG_ENTRY, &mut files)?;
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
        crate::privilege::elevated(|| {
            fs::rename(&tmp_out, out)
                .map_err(|e| Error::io(format!("creating {}", out.display()), e))
        })?;
        record_success(data, out, manifest.created_at);
        Ok(Report {
            files: manifest.files.len(),
            bytes,
            devices,
            kept: None,
            config_from_backup: None,
        })
    })();
    let _ = fs::remove_file(&snapshot);
    result
}

/// The file in the data directory that records the last backup written: its time (Unix
/// seconds) on the first line, then the archive's path. `/metrics` reports its age.
const LAST_BACKUP: &str = "last-backup";

/// Records a successful backup (best effort: a backup that cannot record itself is still a
/// backup; the failure is logged).
fn record_success(data_dir: &Path, archive: &Path, at: i64) {
    let path = data_dir.join(LAST_BACKUP);
    let tmp = data_dir.join(".last-backup.tmp");
    let text = format!("{at}\n{}\n", archive.display());
    if let Err(e) = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path)) {
        let _ = fs::remove_file(&tmp);
        log::warn!("backup: cannot record it in {}: {e}", path.display());
    }
}

/// When the last backup was written (Unix seconds), if one was.
pub fn last_success(data_dir: &Path) -> Option<i64> {
    fs::read_to_string(data_dir.join(LAST_BACKUP))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The name a scheduled backup at `now` (Unix seconds, UTC) gets:
/// `zerotouch-YYYYMMDD-HHMMSS.tar.gz`.
pub fn scheduled_name(now: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "zerotouch-{:04}{:02}{:02}-{:02}{:02}{:02}.tar.gz",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether `name` is one of the archives [`scheduled_name`] makes.
fn is_scheduled_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix("zerotouch-")
        .and_then(|n| n.strip_suffix(".tar.gz"))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// A backup into `config.backup.dir` under [`scheduled_name`], then the oldest archives
/// there beyond `backup.keep` removed. Returns the report, the archive and what was removed.
pub fn scheduled(
    config: &Config,
    config_file: Option<&Path>,
) -> Result<(Report, PathBuf, Vec<PathBuf>)> {
    if config.backup.dir.is_empty() {
        return Err(Error::invalid(
            "backup.dir",
            "is empty: give the archive to write (zerotouch backup FILE), or set backup.dir in the configuration",
        ));
    }
    let dir = Path::new(&config.backup.dir);
    crate::privilege::elevated(|| {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("creating backup.dir {}", dir.display()), e))
    })?;
    // Wall-clock time, never a test clock: the loop below waits for it to move.
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let mut out = dir.join(scheduled_name(wall()));
    // Two runs in one second (a manual one beside the timer's) never overwrite each other:
    // the second waits for the next second's name.
    while out.exists() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = dir.join(scheduled_name(wall()));
    }
    let report = backup(config, &out, config_file)?;
    let removed = prune(dir, config.backup.keep as usize)?;
    Ok((report, out, removed))
}

/// Removes the oldest scheduled archives in `dir` beyond the newest `keep` (by name, which
/// sorts by time). Nothing else in the directory is touched.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut archives: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_scheduled_name(n))
        .collect();
    archives.sort();
    let excess = archives.len().saturating_sub(keep.max(1));
    let mut removed = Vec::new();
    for name in &archives[..excess] {
        let path = dir.join(name);
        crate::privilege::elevated(|| {
            fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing the old backup {}", path.display()), e))
        })?;
        removed.push(path);
    }
    Ok(removed)
}

/// Removes what a killed backup (`.backup-*.db`, a full-size copy of the database) or a
/// killed restore (`.restore-staging`) left in the data directory, when older than `age`:
/// a younger one may belong to a backup running now. Returns what it removed.
pub fn remove_stale(data_dir: &Path, age: std::time::Duration) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let snapshot = name.starts_with(".backup-") && name.ends_with(".db");
        if !(snapshot || name == STAGING) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d >= age));
        if !old {
            continue;
        }
        let gone = if snapshot {
            fs::remove_file(e.path())
        } else {
            fs::remove_dir_all(e.path())
        };
        match gone {
            Ok(()) => removed.push(e.path()),
            Err(err) => log::warn!("cannot remove {}: {err}", e.path().display()),
        }
    }
    removed
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
    set_private(&path);
    log::info!(
        "database: copied to {} before migrating from schema {version}",
        path.display()
    );
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_names_sort_by_time_and_pruning_keeps_the_newest_and_nothing_else() {
        assert_eq!(
            scheduled_name(1_765_000_000),
            "zerotouch-20251206-054640.tar.gz"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..5)
            .map(|k| scheduled_name(1_765_000_000 + k * 86_400))
            .collect();
        for n in &names {
            fs::write(dir.path().join(n), b"x").expect("write");
        }
        // Not ours: never removed, whatever their age.
        for other in [
            "zerotouch-manual.tar.gz",
            "notes.txt",
            "zerotouch-2025120-054640.tar.gz",
        ] {
            fs::write(dir.path().join(other), b"x").expect("write");
        }
        let mut removed = prune(dir.path(), 2).expect("prune");
        removed.sort();
        let expected: Vec<PathBuf> = names[..3].iter().map(|n| dir.path().join(n)).collect();
        assert_eq!(removed, expected);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "notes.txt".to_string(),
                "zerotouch-2025120-054640.tar.gz".into(),
                names[3].clone(),
                names[4].clone(),
                "zerotouch-manual.tar.gz".into(),
            ]
        );
        // keep = 0 is refused by check-config; pruning still never removes the newest.
        assert!(prune(dir.path(), 0).expect("prune").len() == 1);
    }

    #[test]
    fn stale_temporaries_older_than_a_day_are_removed_and_younger_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day_old =
            std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(60);
        let old_snapshot = dir.path().join(".backup-abcd1234.db");
        let new_snapshot = dir.path().join(".backup-efgh5678.db");
        let database = dir.path().join("zerotouch.db");
        for p in [&old_snapshot, &new_snapshot, &database] {
            fs::write(p, b"x").expect("write");
        }
        let staging = dir.path().join(STAGING);
        fs::create_dir_all(staging.join("db")).expect("staging");
        for p in [&old_snapshot, &database] {
            File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(day_old))
                .expect("age");
        }
        File::open(&staging)
            .and_then(|f| f.set_modified(day_old))
            .expect("age");
        let mut removed = remove_stale(dir.path(), STALE_AFTER);
        removed.sort();
        assert_eq!(removed, vec![old_snapshot.clone(), staging.clone()]);
        assert!(new_snapshot.exists() && database.exists());
        assert!(!old_snapshot.exists() && !staging.exists());
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
