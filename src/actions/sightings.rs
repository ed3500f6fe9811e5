//! First sightings of unknown MACs (the `stage` policy), written in batches.
//!
//! When thousands of unknown phones boot at once, one insert and one commit per phone on
//! the request path made every request wait for the database's single writer. Instead a
//! request only notes the MAC here; one writer thread stores whatever has accumulated in
//! one transaction, then waits for more (group commit: a quiet server writes a sighting
//! within a millisecond or two, a storm writes thousands per commit).
//!
//! A MAC noted but not yet written is still unknown to lookups; noting it again is a no-op.
//! A crash loses at most the sightings of the last write in progress, and the phone, which
//! asks again on its next boot or poll, is noted again: nothing else depends on them.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::domain::mac::Mac;

#[derive(Default)]
struct State {
    queue: Vec<(i64, Mac)>,
    /// MACs in `queue` or being written: not noted twice.
    pending: HashSet<Mac>,
    stopping: bool,
}

/// The queue of sightings between request threads and the writer.
#[derive(Default)]
pub struct Sightings {
    state: Mutex<State>,
    wake: Condvar,
}

impl Sightings {
    /// Notes a MAC seen by `account_id`. Returns false if it is already waiting.
    pub fn note(&self, account_id: i64, mac: &Mac) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.pending.insert(*mac) {
            return false;
        }
        s.queue.push((account_id, *mac));
        if s.queue.len() == 1 {
            self.wake.notify_one();
        }
        true
    }

    /// Waits until something is queued (or `timeout` passes, or `stop` was called) and
    /// takes the whole queue. The MACs stay pending until `written` is called with them.
    pub fn take(&self, timeout: Duration) -> Vec<(i64, Mac)> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.queue.is_empty() && !s.stopping {
            s = self
                .wake
                .wait_timeout(s, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::take(&mut s.queue)
    }

    /// Ends pending status for MACs once they are stored (or given up on).
    pub fn written(&self, batch: &[(i64, Mac)]) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (_, mac) in batch {
            s.pending.remove(mac);
        }
    }

    /// Sightings not yet stored.
    pub fn waiting(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .len()
    }

    /// Wakes the writer for its last round.
    pub fn stop(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stopping = true;
        self.wake.notify_all();
    }

    /// True once `stop` was called.
    pub fn stopping(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stopping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().expect("mac")
    }

    #[test]
    fn a_mac_is_queued_once_until_written() {
        let s = Sightings::default();
        assert!(s.note(1, &mac("0004f2000001")));
        assert!(!s.note(1, &mac("0004f2000001")), "still waiting");
        assert!(s.note(2, &mac("0004f2000002")));
        let batch = s.take(Duration::from_millis(1));
        assert_eq!(batch.len(), 2);
        // Taken but not yet written: still not noted again.
        assert!(!s.note(1, &mac("0004f2000001")));
        assert_eq!(s.waiting(), 2);
        s.written(&batch);
        assert_eq!(s.waiting(), 0);
        assert!(s.note(1, &mac("0004f2000001")), "noted again after a write");
    }

    #[test]
    fn take_waits_for_a_sighting_or_the_timeout() {
        let s = std::sync::Arc::new(Sightings::default());
        assert!(s.take(Duration::from_millis(10)).is_empty());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.take(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        s.note(1, &mac("0004f2000003"));
        assert_eq!(t.join().expect("taker").len(), 1);
        s.stop();
        assert!(s.stopping());
        assert!(
            s.take(Duration::from_secs(10)).is_empty(),
            "stop wakes at once"
        );
    }

    #[test]
    fn the_provisioner_stores_sightings_in_batches_and_respects_the_cap() {
        use crate::actions::provisioning::{Lookup, Provisioner};
        let dir = tempfile::tempdir().expect("dir");
        let pool = crate::db::Pool::open(&dir.path().join("z.db"), 2, Duration::from_secs(1))
            .expect("pool");
        let account = crate::db::accounts::ensure_default(&pool.get().expect("conn"))
            .expect("account")
            .0;
        let prov = std::sync::Arc::new(Provisioner::new(pool.clone(), 3));
        for i in 0..5 {
            let m = mac(&format!("0004f200001{i}"));
            prov.record_unassociated(&account, &m).expect("record");
        }
        // Noting twice is harmless.
        prov.record_unassociated(&account, &mac("0004f2000010"))
            .expect("again");
        let writer = {
            let prov = prov.clone();
            std::thread::spawn(move || prov.run_sighting_writer())
        };
        prov.stop_sighting_writer();
        writer.join().expect("writer");
        let conn = pool.get().expect("conn");
        assert_eq!(
            crate::db::devices::count_unassociated(&conn).expect("count"),
            3
        );
        assert!(matches!(
            prov.lookup(&mac("0004f2000010")).expect("lookup"),
            Lookup::Seen(_)
        ));
        assert!(matches!(
            prov.lookup(&mac("0004f2000014")).expect("lookup"),
            Lookup::Unknown
        ));
    }
}
