//! The evidence a device request carries, applied: what it showed (the generation it
//! used, refused or not, the address, proof), the pending values it confirms, enrolment of
//! its own credential, and the retirement of address aliases no device may hold any more.

use super::*;

impl Provisioner {
    /// Records what a request naming the device showed — the generation it used
    /// (`machine::OWN_CREDENTIAL` for its own credential), whether it was refused, the
    /// service address it used, its family, and for a proven request (own credential or
    /// certificate) the address it proved — when any of it changed, synchronously: counts
    /// and reports read it. It decides nothing about which credentials the device may use
    /// (`domain::machine`, I2). An address alias is retired here only when every associated
    /// device of the account proved it uses the current address. Returns the entry to serve
    /// from.
    pub fn note_sync(
        &self,
        account: &Account,
        entry: Arc<DeviceEntry>,
        ev: &Evidence<'_>,
        outcome: Noted,
    ) -> Result<Arc<DeviceEntry>> {
        let old = &entry.sync;
        let segment = ev.reach.base_path.trim_matches('/').to_string();
        let now = db::now_secs();
        let generation = ev.generation.or(old.generation);
        let refused = outcome == Noted::Refused;
        let proven = outcome == Noted::Proven;
        let new = DeviceSync {
            generation,
            generation_at: if generation != old.generation || refused != old.last_refused {
                Some(now)
            } else {
                old.generation_at
            },
            base_segment: segment.clone(),
            family: ev.family.or(old.family),
            last_refused: refused,
            proven_segment: if proven {
                Some(segment.clone())
            } else {
                old.proven_segment.clone()
            },
            // The time of the first proof at this address is enough (a steady state writes
            // nothing).
            proven_at: if proven && old.proven_segment.as_deref() != Some(segment.as_str()) {
                Some(now)
            } else {
                old.proven_at
            },
            ..old.clone()
        };
        if new == *old {
            return Ok(entry);
        }
        let check_alias = proven && old.proven_segment.as_deref() != Some(segment.as_str());
        let (device_id, stored, for_tx) = (entry.device.id, new.clone(), account.clone());
        let retired = self.writes.run(move |tx| {
            credentials::store_sync(tx, device_id, &stored)?;
            if !check_alias {
                return Ok(Vec::new());
            }
            retire_aliases_everyone_left(tx, &for_tx)
        })?;
        if new.generation != old.generation || new.last_refused != old.last_refused {
            log::info!(
                "{}: {} credential generation {} (was {})",
                entry.device.mac,
                if refused {
                    "refused with"
                } else {
                    "authenticated with"
                },
                match new.generation {
                    Some(crate::domain::machine::OWN_CREDENTIAL) => "its own".to_string(),
                    g => g.unwrap_or(0).to_string(),
                },
                old.generation.map_or("none".into(), |g| g.to_string())
            );
        }
        for segment in retired {
            log::info!(
                "account {}: alias /{segment}/ retired: every device proved it uses the current address",
                account.slug
            );
        }
        self.forget(&entry.device.mac);
        match self.lookup(&entry.device.mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => Ok(e),
            Lookup::Unknown => Ok(entry),
        }
    }

    /// Records the source address of a request that proved it is the device (its own
    /// credential or a verified certificate naming its MAC): the only address SIP
    /// check-sync is ever sent to (`actions::sip`). Written synchronously when the address
    /// changes, and every `PROVEN_REFRESH` while it stays. Callers pass only proven requests:
    /// an address from a request with the account credential or none is never recorded.
    pub fn note_proven_address(
        &self,
        entry: &Arc<DeviceEntry>,
        ip: std::net::IpAddr,
    ) -> Result<()> {
        let id = entry.device.id;
        if !self.proven.must_write(id, ip) {
            return Ok(());
        }
        let written = self
            .writes
            .run(move |c| crate::db::sip::record_proven(c, id, ip, db::now_secs()));
        if written.is_err() {
            self.proven.forget(id);
        }
        written
    }

    /// Enrols a device: creates its own credential (synchronously: the password must be
    /// the same on every request until the device confirms it). Returns the entry to serve
    /// from.
    pub fn enrol(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        let id = entry.device.id;
        self.writes
            .run(move |c| crate::actions::enrolment::ensure_credential(c, id).map(|_| ()))?;
        self.reload(entry)
    }

    /// Records a client that presented the account credential for the device around its
    /// enrolment (`delivered`: it is being sent the pending credential; else it came after
    /// the device enrolled, which contests it). Written synchronously, like the delivery.
    /// Repeats of an after-enrolment claim within a minute are not written again.
    pub fn claim(
        &self,
        entry: &Arc<DeviceEntry>,
        address: &str,
        user_agent: &str,
        delivered: bool,
    ) -> Result<Arc<DeviceEntry>> {
        let contested = entry
            .credential
            .as_ref()
            .is_some_and(|c| c.contested_at.is_some());
        // A claim of the same kind from the same client written in the last minute adds
        // nothing the device page shows (who, from where, since when): a phone fetching its
        // files in its window, or a claimant repeating itself, is not written again on every
        // request. The first of each kind always is (a later claim contests the device).
        let kind = if delivered { "delivered" } else { "after" };
        // Per pending credential: after a re-enrolment (a new one, its claims cleared) the
        // first claim of a client seen a moment before is written again — else a phone
        // re-enrolling within the minute after its previous claim would be the missing
        // second address of a contested device.
        let pending = entry.credential.as_ref().map_or(0, |c| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            c.password.hash(&mut h);
            h.finish()
        });
        if (delivered || contested)
            && !self.claims.first_in_a_while(
                entry.device.mac,
                address,
                &format!("{kind} {pending:x} {user_agent}"),
            )
        {
            return Ok(entry.clone());
        }
        let (id, address_owned, ua) =
            (entry.device.id, address.to_string(), user_agent.to_string());
        let now_contested = self.writes.run(move |c| {
            enrolment_q::record_claim(c, id, &address_owned, &ua, delivered, db::now_secs())
        })?;
        if now_contested && !contested {
            log::warn!(
                "{}: contested: {address} ({user_agent}) {} with the account credential; SIP \
                 passwords served in its enrolment window must be treated as leaked; re-enrol \
                 or dismiss it",
                entry.device.mac,
                if delivered {
                    "was also sent its pending credential"
                } else {
                    "came after it enrolled"
                }
            );
            return self.reload(entry);
        }
        Ok(entry.clone())
    }

    /// The device authenticated with its current own credential: it holds it (and no
    /// longer the one before a rotation). Written synchronously.
    pub fn confirm_device_credential(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        let id = entry.device.id;
        self.writes.run(move |c| {
            enrolment_q::confirm_device_credential(c, id, db::now_secs()).map(|_| ())
        })?;
        log::info!("{}: uses its own credential", entry.device.mac);
        self.reload(entry)
    }

    /// The device authenticated with an older own credential it still holds: it has proved
    /// an own credential, so it is enrolled. Written synchronously.
    pub fn note_enrolled(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        let id = entry.device.id;
        self.writes
            .run(move |c| enrolment_q::note_enrolled(c, id, db::now_secs()))?;
        self.reload(entry)
    }

    pub(super) fn reload(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        self.forget(&entry.device.mac);
        match self.lookup(&entry.device.mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => Ok(e),
            Lookup::Unknown => Ok(entry.clone()),
        }
    }

    /// Applies the evidence a request carries (docs/design.md §6), writing confirmations at
    /// once: what it showed (`note_sync`), then the pending values it confirms. Returns the
    /// entry to serve from (reloaded if something was written).
    pub fn observe(
        &self,
        account: &Account,
        entry: Arc<DeviceEntry>,
        ev: &Evidence<'_>,
        access: Access,
    ) -> Result<Arc<DeviceEntry>> {
        if ev.proven
            && entry.device.account_id == account.id.0
            && let Some(ip) = ev.address
        {
            self.note_proven_address(&entry, ip)?;
        }
        let entry = if entry.device.account_id == account.id.0 && ev.auth.is_some() {
            let noted = if ev.proven {
                Noted::Proven
            } else {
                Noted::Accepted
            };
            self.note_sync(account, entry, ev, noted)?
        } else {
            entry
        };
        let held = ev.auth.map(|(user, password)| Held { user, password });
        let key = Held::key(held);
        let layers = entry.layers_for(account, access, Held::pair(held));
        let Some(view) = entry.view(
            account,
            ev.reach,
            self.trust.as_ref(),
            &layers,
            Held::pair(held),
        ) else {
            return Ok(entry);
        };
        let known = entry
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(r, a, k, _)| r == ev.reach && *a == access && *k == key)
            .map(|(_, _, _, p)| *p);
        if known == Some(false) {
            return Ok(entry);
        }
        let desired = view.desired();
        if known.is_none() {
            let any = !provstate::pending(&desired, &entry.state, Held::pair(held)).is_empty();
            entry
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((ev.reach.clone(), access, key, any));
            if !any {
                return Ok(entry);
            }
        }
        let confirmed = provstate::confirmations(&desired, &entry.state, ev);
        drop(layers);
        if confirmed.is_empty() {
            return Ok(entry);
        }
        {
            let (id, values) = (entry.device.id, confirmed.clone());
            self.writes.run(move |c| devices::confirm(c, id, &values))?;
        }
        log::info!(
            "{}: confirmed {}",
            entry.device.mac,
            confirmed
                .iter()
                .map(|(k, v, by)| format!("{k}={} ({by})", mask(k, v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.reload(&entry)
    }
}

/// What a request naming a device showed, for `Provisioner::note_sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// Authenticated with a credential that proves nothing about the sender.
    Accepted,
    /// Authenticated with the device's own credential or a verified certificate.
    Proven,
    /// Its credential was recognised and refused.
    Refused,
}

/// Retires every alias of `account` that no device may hold any more: every associated
/// device's latest proven request used the current address. Returns the segments retired.
fn retire_aliases_everyone_left(
    tx: &rusqlite::Connection,
    account: &Account,
) -> Result<Vec<String>> {
    let aliases: Vec<String> = credentials::list_aliases(tx, Some(account.id))?
        .into_iter()
        .filter(|a| a.retired_at.is_none())
        .map(|a| a.segment)
        .collect();
    if aliases.is_empty() {
        return Ok(Vec::new());
    }
    let current = if account.is_default {
        vec![String::new(), account.service_segment()]
    } else {
        vec![account.service_segment()]
    };
    let unproven: i64 = tx.query_row(
        "SELECT count(*) FROM devices d LEFT JOIN device_sync s ON s.device_id = d.id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL
           AND (s.proven_segment IS NULL OR s.proven_segment NOT IN (?2, ?3))",
        rusqlite::params![
            account.id.0,
            current[0],
            current.get(1).unwrap_or(&current[0])
        ],
        |r| r.get(0),
    )?;
    if unproven > 0 {
        return Ok(Vec::new());
    }
    for segment in &aliases {
        credentials::retire_alias(tx, segment)?;
        crate::db::audit::record(
            tx,
            &Actor::system(),
            Change::new(Some(account.id.0), "account.retire-alias", segment.clone())
                .before(serde_json::json!({"alias": segment}))
                .after(serde_json::json!({"reason": "every device proved it uses the current service address"})),
        )?;
    }
    Ok(aliases)
}
