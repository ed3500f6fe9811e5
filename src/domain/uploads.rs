//! Per-device upload accounting: the quota check of every phone upload without a database
//! read per upload.
//!
//! Usage is loaded from the `uploads` table the first time a device uploads (and again
//! after a minute, so changes made elsewhere — a device deleted, overrides cleared — are
//! picked up), then kept up to date here as uploads arrive.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::devicepath::UploadKind;
use super::mac::Mac;
use crate::db::{self, Pool};
use crate::error::Result;

/// How long a device's usage is trusted before it is read again.
const REFRESH: Duration = Duration::from_secs(60);
/// Devices kept in memory at most (a boot storm of a large site stays within it).
const MAX_DEVICES: usize = 100_000;

struct Usage {
    loaded: Instant,
    files: HashMap<(String, String), u64>,
}

/// Upload bytes per device and file.
#[derive(Default)]
pub struct UploadLedger {
    usage: Mutex<HashMap<Mac, Usage>>,
}

impl UploadLedger {
    /// Whether a file of `size` bytes fits the device's quota, counting every other file it
    /// stored; if so, the file is counted from now on.
    pub fn admit(
        &self,
        pool: &Pool,
        mac: &Mac,
        kind: UploadKind,
        name: &str,
        size: u64,
        quota: u64,
    ) -> Result<bool> {
        let key = (kind.dir().to_string(), name.to_string());
        let fresh = {
            let map = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            map.get(mac).is_some_and(|u| u.loaded.elapsed() < REFRESH)
        };
        if !fresh {
            let files = db::access::list_uploads(&*pool.get()?, mac.as_str())?
                .into_iter()
                .map(|u| ((u.kind, u.file_name), u.size.max(0) as u64))
                .collect();
            let mut map = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= MAX_DEVICES {
                map.clear();
            }
            map.insert(
                *mac,
                Usage {
                    loaded: Instant::now(),
                    files,
                },
            );
        }
        let mut map = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let usage = map.entry(*mac).or_insert_with(|| Usage {
            loaded: Instant::now(),
            files: HashMap::new(),
        });
        let others: u64 = usage
            .files
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, v)| *v)
            .sum();
        if others + size > quota {
            return Ok(false);
        }
        usage.files.insert(key, size);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_counts_every_file_and_a_replacement_once() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = Pool::open(&dir.path().join("z.db"), 2, Duration::from_secs(1)).expect("pool");
        let ledger = UploadLedger::default();
        let mac = Mac::from_bare("0004f2000001").expect("mac");
        assert!(
            ledger
                .admit(&pool, &mac, UploadKind::Log, "a.log", 600, 1000)
                .expect("a")
        );
        assert!(
            ledger
                .admit(&pool, &mac, UploadKind::Log, "a.log", 700, 1000)
                .expect("a again")
        );
        assert!(
            !ledger
                .admit(&pool, &mac, UploadKind::Override, "x-phone.cfg", 400, 1000)
                .expect("b")
        );
        assert!(
            ledger
                .admit(&pool, &mac, UploadKind::Override, "x-phone.cfg", 300, 1000)
                .expect("b small")
        );
        let other = Mac::from_bare("0004f2000002").expect("mac");
        assert!(
            ledger
                .admit(&pool, &other, UploadKind::Log, "a.log", 1000, 1000)
                .expect("other")
        );
    }
}
