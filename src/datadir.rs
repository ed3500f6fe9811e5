//! The data directory's layout: where the database, firmware, uploads, shared assets and
//! TLS material live below `data_dir`, creating it, and keeping it private: the process
//! umask (027) leaves nothing it creates readable by other users, and what an older
//! release or another umask left readable is restricted at start. A leaf every layer may
//! use: the server, the device endpoints, the CLI and backups agree on one layout.

use std::path::{Path, PathBuf};

use crate::domain::devicepath::UploadKind;
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

/// Directories of the data dir the device endpoints use.
#[derive(Debug, Clone)]
pub struct DataDirs {
    pub firmware: PathBuf,
    pub uploads: PathBuf,
    pub assets: PathBuf,
    /// Each account's own shared files, `<slug>/` below it, served to that account's phones
    /// before the installation's of the same name.
    pub account_assets: PathBuf,
    /// Where uploads are streamed before being moved into place (same file system).
    pub incoming: PathBuf,
    /// Where firmware uploads to the admin listener are streamed before being unpacked.
    pub firmware_incoming: PathBuf,
}

impl DataDirs {
    pub fn under(data_dir: &Path) -> DataDirs {
        DataDirs {
            firmware: data_dir.join("firmware"),
            uploads: data_dir.join("uploads"),
            assets: data_dir.join("assets"),
            account_assets: data_dir.join("account-assets"),
            incoming: data_dir.join("uploads").join(".incoming"),
            firmware_incoming: data_dir.join("firmware").join(".incoming"),
        }
    }

    /// The shared files of the account `slug` (a checked slug: letters, digits and `-`).
    pub fn assets_of(&self, slug: &str) -> PathBuf {
        self.account_assets.join(slug)
    }

    /// Where a device's upload is stored.
    pub fn upload_path(&self, mac: &Mac, kind: UploadKind, name: &str) -> PathBuf {
        self.upload_dir(mac, kind).join(name)
    }

    /// The directory a device's uploads of one kind are stored in.
    pub fn upload_dir(&self, mac: &Mac, kind: UploadKind) -> PathBuf {
        self.uploads.join(mac.as_str()).join(kind.dir())
    }
}

/// What the process umask always masks: write for the group, everything for others. The
/// database, its WAL, uploads, TLS material, keys and backups hold secrets or what phones
/// uploaded; the group may read (the package's service group), others nothing.
pub const PRIVATE_UMASK: u32 = 0o027;

/// Sets the process umask to at least `PRIVATE_UMASK` (a stricter one is kept), before
/// any file is created: every file and directory zerotouch makes is private by default.
pub fn private_umask() {
    use rustix::fs::Mode;
    use rustix::process::umask;
    let old = umask(Mode::from_raw_mode(PRIVATE_UMASK));
    let wanted = old.as_raw_mode() | PRIVATE_UMASK;
    umask(Mode::from_raw_mode(wanted));
}

/// Takes every permission of other users away from `path`, if it has any (a file made by an
/// older release or under another umask). A path we do not own is left alone and logged.
pub fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o007 == 0 {
        return;
    }
    let private = std::fs::Permissions::from_mode(mode & 0o7770);
    if let Err(e) = std::fs::set_permissions(path, private) {
        log::warn!(
            "{} is readable by other users and cannot be restricted: {e}",
            path.display()
        );
    }
}

/// Restricts the data directory and what holds secrets in it (the database and its WAL,
/// TLS material, migration backups) to the service user and its group. The data directory
/// itself is closed to others, which closes everything below it; its secret files are
/// restricted too, in case the directory is opened again.
pub fn restrict_data_dir(data_dir: &Path) {
    restrict(data_dir);
    for name in [
        "zerotouch.db",
        "zerotouch.db-wal",
        "zerotouch.db-shm",
        "secret.key",
        "uploads",
        "firmware",
        "assets",
        "account-assets",
    ] {
        restrict(&data_dir.join(name));
    }
    for dir in ["tls", "backups"] {
        let dir = data_dir.join(dir);
        restrict(&dir);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                restrict(&e.path());
            }
        }
    }
}

/// Creates the data directory and its subdirectories, and proves it is writable, so a
/// read-only or mistyped path is a clear error at start rather than a failing upload later.
/// What it finds readable by other users is restricted (`restrict_data_dir`).
pub fn prepare_data_dir(data_dir: &Path) -> Result<()> {
    let dirs = DataDirs::under(data_dir);
    for d in [
        data_dir,
        &dirs.firmware,
        &dirs.uploads,
        &dirs.assets,
        &dirs.account_assets,
        &dirs.incoming,
        &dirs.firmware_incoming,
        &data_dir.join("tls"),
    ] {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::io(format!("creating data directory {}", d.display()), e))?;
    }
    let probe = data_dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(|e| {
        Error::io(
            format!(
                "data directory {} is not writable (check its owner and permissions)",
                data_dir.display()
            ),
            e,
        )
    })?;
    let _ = std::fs::remove_file(probe);
    restrict_data_dir(data_dir);
    Ok(())
}
