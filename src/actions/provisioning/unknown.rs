//! Devices not associated: first sightings queued for a writer thread (a storm of unknown
//! phones does not queue on the database) and association by the `default-profile` policy.

use super::*;

impl Provisioner {
    /// Records a MAC seen without association (stage policy): queued for the sighting
    /// writer (`sightings`), so a storm of unknown phones does not queue on the database.
    /// Returns whether it was newly queued.
    pub fn record_unassociated(&self, account: &Account, mac: &Mac) -> Result<bool> {
        // The count is read once, then kept here; associations made elsewhere only lower the
        // real count, so the cap is never exceeded. Queued sightings count already.
        let known = match self.unassociated.load(Ordering::Relaxed) {
            u64::MAX => {
                let conn = self.pool.get()?;
                let n = devices::count_unassociated(&conn)? + self.sightings.waiting() as u64;
                self.unassociated.store(n, Ordering::Relaxed);
                n
            }
            n => n,
        };
        if known >= u64::from(self.unassociated_cap) {
            return Ok(false);
        }
        let queued = self.sightings.note(account.id.0, mac);
        if queued {
            self.unassociated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(queued)
    }

    /// Stores queued first sightings until `stop_sighting_writer`, one transaction per
    /// round (the writer thread's body).
    pub fn run_sighting_writer(&self) {
        loop {
            let stopping = self.sightings.stopping();
            let batch = self.sightings.take(Duration::from_secs(1));
            if !batch.is_empty() {
                match self.write_sightings(&batch) {
                    Ok(added) => {
                        // MACs associated meanwhile were not added: the count is lower.
                        let skipped = (batch.len() - added) as u64;
                        if skipped > 0 {
                            let _ = self.unassociated.fetch_update(
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                                |n| (n != u64::MAX).then(|| n.saturating_sub(skipped)),
                            );
                        }
                    }
                    Err(e) => {
                        // Recounted on the next sighting; the phones are noted again when
                        // they next ask.
                        log::warn!("storing {} first sighting(s): {e}", batch.len());
                        self.unassociated.store(u64::MAX, Ordering::Relaxed);
                    }
                }
                self.sightings.written(&batch);
            }
            if stopping && batch.is_empty() {
                return;
            }
        }
    }

    /// Ends `run_sighting_writer` after it has stored what is queued.
    pub fn stop_sighting_writer(&self) {
        self.sightings.stop();
    }

    pub(super) fn write_sightings(&self, batch: &[(i64, Mac)]) -> Result<usize> {
        let mut conn = self.pool.get()?;
        let added = db::write_tx(&mut conn, |tx| {
            let mut added = Vec::new();
            for (account_id, mac) in batch {
                if devices::insert_unassociated(tx, *account_id, mac)? {
                    added.push(mac);
                }
            }
            Ok(added)
        })?;
        drop(conn);
        // Every MAC of the batch: a lookup that read "unknown" just before the commit may
        // have cached that after it.
        for (_, mac) in batch {
            self.forget(mac);
        }
        for mac in &added {
            log::info!("{mac}: first seen, not associated");
        }
        Ok(added.len())
    }

    /// Associates an unknown MAC with the account's default profile (`default-profile`
    /// policy). Returns false if the account has no default profile.
    pub fn auto_associate(&self, account: &Account, mac: &Mac) -> Result<bool> {
        if account.unknown_devices != UnknownDevices::DefaultProfile {
            return Ok(false);
        }
        let Some(profile_id) = account.default_profile_id else {
            return Ok(false);
        };
        let mut conn = self.pool.get()?;
        let done = db::write_tx(&mut conn, |tx| {
            let Some(profile) = profiles::find_profile_by_id(tx, profile_id)? else {
                return Ok(false);
            };
            let input = crate::domain::device::DeviceInput {
                mac: mac.to_string(),
                profile: profile.fields.name.clone(),
                ..Default::default()
            };
            let new = input.validate()?;
            match devices::insert_device(tx, account.id.0, &new, profile_id, true) {
                Ok(_) => Ok(true),
                Err(crate::Error::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })?;
        drop(conn);
        if done {
            log::info!(
                "{mac}: associated automatically with the default profile (account {})",
                account.slug
            );
            self.forget(mac);
        }
        Ok(done)
    }
}
