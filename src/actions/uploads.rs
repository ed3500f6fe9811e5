//! Upload accounting: the per-device quota of every phone upload, and one global cap on
//! what all MACs no device is associated with may store together, without a database read
//! per upload.
//!
//! A device's usage is loaded from the `uploads` table the first time it uploads (and again
//! after a minute, so changes made elsewhere — a device deleted, overrides cleared — are
//! picked up), then kept up to date here as uploads arrive. The unassociated total is
//! loaded the same way (a MAC associated meanwhile leaves it at the next load), so anyone
//! holding the account credential who makes many MACs "seen" fills at most the cap, not
//! the disk. Associated devices are never counted against it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::{self, Pool};
use crate::domain::devicepath::UploadKind;
use crate::domain::mac::Mac;
use crate::error::Result;

/// How long a device's usage is trusted before it is read again.
const REFRESH: Duration = Duration::from_secs(60);
/// Devices kept in memory at most (a boot storm of a large site stays within it).
const MAX_DEVICES: usize = 100_000;

struct Usage {
    loaded: Instant,
    files: HashMap<(String, String), u64>,
}

/// Upload bytes per device and file, and over all unassociated MACs.
#[derive(Default)]
pub struct UploadLedger {
    usage: Mutex<HashMap<Mac, Usage>>,
    /// Bytes stored for unassociated MACs, and when that was read from the database.
    unassociated: Mutex<Option<(Instant, u64)>>,
}

/// Whether an upload may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The device's own quota is used up.
    OverQuota,
    /// Unassociated MACs together have stored their cap.
    OverUnassociatedCap,
}

impl UploadLedger {
    /// Whether a file of `size` bytes fits the device's quota, counting every other file it
    /// stored, and, for a MAC no device is associated with (`unassociated_cap` given),
    /// what all such MACs stored together; if so, the file is counted from now on.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &self,
        pool: &Pool,
        mac: &Mac,
        kind: UploadKind,
        name: &str,
        size: u64,
        quota: u64,
        unassociated_cap: Option<u64>,
    ) -> Result<Admission> {
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
        let stale = unassociated_cap.is_some()
            && self
                .unassociated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|(at, _)| at.elapsed() >= REFRESH);
        let reloaded = if stale {
            Some(db::access::unassociated_upload_bytes(&*pool.get()?)?)
        } else {
            None
        };
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
            return Ok(Admission::OverQuota);
        }
        if let Some(cap) = unassociated_cap {
            let mut total = self.unassociated.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(bytes) = reloaded {
                *total = Some((Instant::now(), bytes));
            }
            let held = total.map_or(0, |(_, b)| b);
            // A replaced file gives back its old size.
            let before = usage.files.get(&key).copied().unwrap_or(0);
            let after = held.saturating_sub(before).saturating_add(size);
            if after > cap && after > held {
                return Ok(Admission::OverUnassociatedCap);
            }
            *total = Some((total.map_or_else(Instant::now, |(at, _)| at), after));
        }
        usage.files.insert(key, size);
        Ok(Admission::Admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (tempfile::TempDir, Pool, UploadLedger) {
        let dir = tempfile::tempdir().expect("dir");
        let pool = Pool::open(&dir.path().join("z.db"), 2, Duration::from_secs(1)).expect("pool");
        (dir, pool, UploadLedger::default())
    }

    fn mac(n: u8) -> Mac {
        Mac::from_bare(&format!("0004f20000{n:02x}")).expect("mac")
    }

    #[test]
    fn the_quota_counts_every_file_and_a_replacement_once() {
        let (_dir, pool, ledger) = ledger();
        let admit = |m: &Mac, kind, name, size| {
            ledger
                .admit(&pool, m, kind, name, size, 1000, None)
                .expect("admit")
        };
        let a = mac(1);
        assert_eq!(
            admit(&a, UploadKind::Log, "a.log", 600),
            Admission::Admitted
        );
        assert_eq!(
            admit(&a, UploadKind::Log, "a.log", 700),
            Admission::Admitted,
            "a replacement"
        );
        assert_eq!(
            admit(&a, UploadKind::Override, "x-phone.cfg", 400),
            Admission::OverQuota
        );
        assert_eq!(
            admit(&a, UploadKind::Override, "x-phone.cfg", 300),
            Admission::Admitted
        );
        assert_eq!(
            admit(&mac(2), UploadKind::Log, "a.log", 1000),
            Admission::Admitted,
            "another device"
        );
    }

    #[test]
    fn unassociated_macs_share_one_cap_and_associated_ones_are_not_counted() {
        let (_dir, pool, ledger) = ledger();
        let admit = |m: &Mac, name, size, cap| {
            ledger
                .admit(&pool, m, UploadKind::Log, name, size, 1000, cap)
                .expect("admit")
        };
        assert_eq!(
            admit(&mac(1), "a.log", 600, Some(1000)),
            Admission::Admitted
        );
        assert_eq!(
            admit(&mac(2), "a.log", 500, Some(1000)),
            Admission::OverUnassociatedCap,
            "600 + 500 over the cap of 1000"
        );
        assert_eq!(
            admit(&mac(2), "a.log", 400, Some(1000)),
            Admission::Admitted
        );
        assert_eq!(
            admit(&mac(1), "a.log", 100, Some(1000)),
            Admission::Admitted,
            "a replacement gives back its old size"
        );
        assert_eq!(
            admit(&mac(3), "a.log", 500, Some(1000)),
            Admission::Admitted
        );
        assert_eq!(
            admit(&mac(4), "a.log", 900, None),
            Admission::Admitted,
            "an associated device is never held back by the cap"
        );
    }
}
