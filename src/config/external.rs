//! The `[external]` section: the mechanics of External mode (generating files for a device
//! management system and pushing them). The mode, the servers and the transport are
//! provisioning settings in the database, not here.

use serde::Deserialize;

use super::{at_least, positive};
use crate::error::FieldError;

/// `[external]`: generating files for an external device management system (External
/// mode of the provisioning settings, `zerotouch settings set mode=external`) and pushing
/// them with the file transport. The mode, the servers and the transport itself are
/// provisioning settings stored in the database; these are the mechanics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalConfig {
    /// Milliseconds between checks for changed configuration (a cheap check; files are
    /// rendered again only after a change). Default `500`.
    pub scan_interval_ms: u64,
    /// Milliseconds a device's files must stay unchanged before they are pushed (changes in
    /// a burst are pushed once). A device that keeps changing is pushed at least every ten
    /// times this. Default `2000`.
    pub debounce_ms: u64,
    /// Pushes (script runs or uploads) at once, over all devices. Default `2`.
    pub workers: usize,
    /// Seconds between checks of the shared assets and firmware to sync to S3 (only files
    /// that changed are uploaded). Default `300`.
    pub asset_sync_secs: u64,
    /// Seconds one S3 request may take, connection included. Default `30`.
    pub upload_timeout_secs: u64,
    /// Seconds the S3 connectivity check may take when the provisioning settings are saved
    /// (the console, the API and `settings set` wait for it). Default `10`.
    pub check_timeout_secs: u64,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        ExternalConfig {
            scan_interval_ms: 500,
            debounce_ms: 2000,
            workers: 2,
            asset_sync_secs: 300,
            upload_timeout_secs: 30,
            check_timeout_secs: 10,
        }
    }
}

impl ExternalConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        at_least(p, "external.scan_interval_ms", self.scan_interval_ms, 50);
        positive(p, "external.workers", self.workers as u64);
        positive(p, "external.asset_sync_secs", self.asset_sync_secs);
        positive(p, "external.upload_timeout_secs", self.upload_timeout_secs);
        positive(p, "external.check_timeout_secs", self.check_timeout_secs);
    }
}
