//! The `[recording]` and `[database]` sections: the batching writer of the access log and
//! device activity, and the SQLite connections of request handlers.

use serde::Deserialize;

use super::positive;
use crate::error::FieldError;

/// `[recording]`: the access log and per-device activity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Events queued for the writer thread; when full, events are dropped and counted
    /// rather than slowing phones down. Default `65536`.
    pub queue_capacity: usize,
    /// Milliseconds between batched writes. Default `250`.
    pub flush_interval_ms: u64,
    /// Access-log rows kept per device (older rows are pruned). Default `500`.
    pub access_log_per_device: u32,
    /// Access-log rows kept for requests that name no device. Default `100000`.
    pub access_log_anonymous: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            queue_capacity: 65_536,
            flush_interval_ms: 250,
            access_log_per_device: 500,
            access_log_anonymous: 100_000,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// SQLite connections kept open for request handlers. Default `8`.
    pub pool_size: usize,
    /// Milliseconds a connection waits for a lock held by another writer. Default `5000`.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            pool_size: 8,
            busy_timeout_ms: 5000,
        }
    }
}

impl RecordingConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        positive(p, "recording.queue_capacity", self.queue_capacity as u64);
        positive(p, "recording.flush_interval_ms", self.flush_interval_ms);
        positive(
            p,
            "recording.access_log_per_device",
            self.access_log_per_device.into(),
        );
    }
}
