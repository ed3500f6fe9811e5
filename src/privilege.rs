//! The command line's one privilege rule: run as root on a data directory that another user
//! owns (the package's `zerotouch`), a command becomes that user before it opens anything,
//! so every file it creates or replaces there belongs to the service, which must go on
//! reading and writing it. A leaf: it knows users and groups, nothing of what the commands do.
//!
//! Most commands drop root for good. The few that must also write files outside the data
//! directory that only root may write — the secrets key in `/etc/zerotouch` (key rotation,
//! restore) and an archive the admin names (backup, restore) — keep root as their *saved*
//! user id and regain it only inside `elevated`, for exactly those writes.
//!
//! `serve` is not switched: it may need root to bind ports below 1024, and the packaged unit
//! starts it as the service user anyway.

use std::path::Path;
use std::sync::Mutex;

use nix::unistd::{Gid, Uid};

use crate::error::{Error, Result};

/// Whether a command that switched keeps root as its saved user id, to regain it in
/// `elevated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Root is dropped for good.
    Nothing,
    /// Root is kept as the saved user id, for `elevated` writes outside the data directory.
    SavedRoot,
}

/// The user and group a command switched to while keeping root saved.
static SWITCHED: Mutex<Option<(Uid, Gid)>> = Mutex::new(None);

/// The user this process switched to, if any (for messages and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The owner a root-run command should become for `data_dir`: its owner, when that is not
/// root. `None` when the directory does not exist yet or root owns it.
pub fn owner_to_adopt(data_dir: &Path) -> Result<Option<Owner>> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(data_dir) {
        Ok(m) if m.uid() != 0 => Ok(Some(Owner {
            uid: m.uid(),
            gid: m.gid(),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", data_dir.display()), e)),
    }
}

/// Applies the rule: when this process runs as root and another user owns `data_dir`,
/// becomes that user (its group, and no other group) before anything is opened. Returns
/// the owner it became. Not root, or a directory root owns: nothing changes.
pub fn adopt_data_dir_owner(data_dir: &Path, keep: Keep) -> Result<Option<Owner>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let Some(owner) = owner_to_adopt(data_dir)? else {
        return Ok(None);
    };
    let (uid, gid) = (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid));
    let keep_root = keep == Keep::SavedRoot;
    let fail = |what: &str, e: nix::Error| {
        Error::io(
            format!(
                "becoming the owner of {} ({what} {}:{})",
                data_dir.display(),
                owner.uid,
                owner.gid
            ),
            std::io::Error::from(e),
        )
    };
    // Groups first: once the user id is not root, they can no longer be changed.
    nix::unistd::setgroups(&[gid]).map_err(|e| fail("setgroups", e))?;
    nix::unistd::setresgid(gid, gid, if keep_root { Gid::from_raw(0) } else { gid })
        .map_err(|e| fail("setresgid", e))?;
    nix::unistd::setresuid(uid, uid, if keep_root { Uid::from_raw(0) } else { uid })
        .map_err(|e| fail("setresuid", e))?;
    if keep_root {
        *SWITCHED.lock().unwrap_or_else(|p| p.into_inner()) = Some((uid, gid));
    }
    Ok(Some(owner))
}

/// Runs `f` as root again when this process switched with `Keep::SavedRoot`, then becomes
/// the data directory's owner again; otherwise just runs `f`. For the writes outside the
/// data directory that only root may make (the secrets key in `/etc/zerotouch`, an archive
/// in root's directory).
pub fn elevated<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let switched = *SWITCHED.lock().unwrap_or_else(|p| p.into_inner());
    let Some((uid, gid)) = switched else {
        return f();
    };
    let regain = nix::unistd::seteuid(Uid::from_raw(0))
        .and_then(|()| nix::unistd::setegid(Gid::from_raw(0)));
    let out = f();
    if regain.is_ok() {
        // Dropping back must never fail silently: the rest of the command would run as root.
        nix::unistd::setegid(gid)
            .and_then(|()| nix::unistd::seteuid(uid))
            .map_err(|e| {
                Error::io(
                    "becoming the data directory's owner again",
                    std::io::Error::from(e),
                )
            })?;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_data_dir_or_one_root_owns_is_not_adopted() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            owner_to_adopt(&dir.path().join("missing")).expect("ok"),
            None
        );
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(dir.path()).expect("meta").uid();
        let found = owner_to_adopt(dir.path()).expect("ok");
        assert_eq!(found.is_some(), uid != 0);
    }

    #[test]
    fn elevated_without_a_switch_just_runs() {
        assert_eq!(elevated(|| Ok(7)).expect("ran"), 7);
    }
}
