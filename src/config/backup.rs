//! The `[backup]` section: where `zerotouch backup` without a file name writes its
//! archives (the Debian package's daily timer runs it so) and how many it keeps.

use serde::Deserialize;

use super::positive;
use crate::error::FieldError;

/// `[backup]`: scheduled backups.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Directory `zerotouch backup` (given no file) writes `zerotouch-YYYYMMDD-HHMMSS.tar.gz`
    /// into, created with mode 0700 when missing. Empty: `zerotouch backup` needs a file
    /// name. Default empty; the Debian package sets `/var/backups/zerotouch`.
    pub dir: String,
    /// Archives kept in `dir`: after each backup there, the oldest of its
    /// `zerotouch-*.tar.gz` beyond this many are removed (no other file is touched).
    /// Default `14`.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: String::new(),
            keep: 14,
        }
    }
}

impl BackupConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        positive(p, "backup.keep", self.keep.into());
        if !self.dir.is_empty() && !std::path::Path::new(&self.dir).is_absolute() {
            p.push(FieldError::new(
                "backup.dir",
                format!(
                    "`{}` must be an absolute path (scheduled backups run from any directory)",
                    self.dir
                ),
            ));
        }
    }
}
