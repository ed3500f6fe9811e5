//! Auto-Sync credentials (DESIGN §6, seeds 001 and 004): which older credential generation a
//! device may still use, and what state each device is in after a rotation.
//!
//! Pure rules, no database: callers load the account's settings and credential history and
//! the device's facts, and ask. The same functions decide a request (`accept_old`), the
//! inventory flags (`state`), and how many devices an action would lock out (`state`
//! before and after the change, `locked_out_by`), so what the confirmation says is what
//! then happens.
//!
//! An older generation `g` is accepted only when every rule holds:
//! 1. Auto-Sync is on (turning it off never rolls back; it only stops serving old
//!    credentials) — or an admin re-admitted this device with `g`;
//! 2. the device may be synced at all (associated by a person, not redirected to another
//!    server, of a supported family);
//! 3. it has not synced yet (it never authenticated with the current generation);
//! 4. it is known to hold `g`: it last authenticated with `g`, or, never having
//!    authenticated, `g` is no older than the generation current when it was associated;
//! 5. it was seen — authenticated successfully — in the last N days (`seen_days`), unless
//!    it was never seen;
//! 6. `g`'s grace window is open (it closes `grace_days` after the rotation that retired
//!    `g`, at once for a "compromised" rotation).
//!
//! The request must name the device (its MAC in the path, or `(SN:<mac>)` in the
//! User-Agent): credentials of an older generation are only ever valid for one device.

use serde::Serialize;

use super::polycom::models::Family;

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// One generation of an account's device credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub generation: i64,
    pub user: String,
    pub password: String,
    pub created_at: i64,
    /// When a newer generation replaced it; `None` for the current one.
    pub retired_at: Option<i64>,
    /// End of its grace window; `None` for the current one.
    pub accept_until: Option<i64>,
    /// It was created because the generations before it leaked.
    pub compromised: bool,
}

/// Every generation of an account's credentials, oldest first; the last is current.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    pub generations: Vec<Generation>,
}

impl History {
    /// The current generation number (0 when the account has no credentials).
    pub fn current(&self) -> i64 {
        self.generations.last().map_or(0, |g| g.generation)
    }

    pub fn get(&self, generation: i64) -> Option<&Generation> {
        self.generations.iter().find(|g| g.generation == generation)
    }

    /// The generation that was current at time `t` (the oldest known one for earlier times).
    pub fn current_at(&self, t: i64) -> i64 {
        self.generations
            .iter()
            .rev()
            .find(|g| g.created_at <= t)
            .or(self.generations.first())
            .map_or(0, |g| g.generation)
    }

    /// The history after a rotation at `now`: a new generation, the current one retired with
    /// a grace window of `grace_days` — or, for a compromised rotation, every window closed.
    pub fn rotated(
        &self,
        now: i64,
        user: &str,
        password: &str,
        grace_days: u32,
        compromised: bool,
    ) -> History {
        let mut generations = self.generations.clone();
        for g in &mut generations {
            if g.retired_at.is_none() {
                g.retired_at = Some(now);
                g.accept_until = Some(now + i64::from(grace_days) * DAY);
            }
            if compromised {
                g.accept_until = Some(g.accept_until.map_or(now, |u| u.min(now)));
            }
        }
        generations.push(Generation {
            generation: self.current() + 1,
            user: user.into(),
            password: password.into(),
            created_at: now,
            retired_at: None,
            accept_until: None,
            compromised,
        });
        History { generations }
    }
}

/// An account's Auto-Sync settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub provisioning_enabled: bool,
    pub enabled: bool,
    /// Days an older generation stays accepted after a rotation.
    pub grace_days: u32,
    /// A device not seen for this many days is no longer served old credentials.
    pub seen_days: u32,
    /// Sync Poly OS devices too (their parameter names are not verified on a device).
    pub poly_os: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            provisioning_enabled: true,
            enabled: true,
            grace_days: 14,
            seen_days: 30,
            poly_os: false,
        }
    }
}

/// Why a device cannot be synced at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ineligible {
    /// Seen, but not associated with a profile.
    NotAssociated,
    /// Associated by the `default-profile` policy: waits for an admin to confirm it.
    AutoAssociated,
    /// Its profile or vendor extension sends it to another provisioning server.
    ExternalServer,
    /// RealPresence Group Series (redirect only).
    VideoEndpoint,
    /// A Poly OS device while the account has not turned Poly OS on.
    PolyOsOff,
}

impl Ineligible {
    pub fn explain(self) -> &'static str {
        match self {
            Ineligible::NotAssociated => "not associated with a profile",
            Ineligible::AutoAssociated => {
                "associated automatically (default-profile policy); confirm it first"
            }
            Ineligible::ExternalServer => "its profile or device sends it to another server",
            Ineligible::VideoEndpoint => "RealPresence Group systems are redirect-only",
            Ineligible::PolyOsOff => "Poly OS devices are not synced on this account",
        }
    }
}

/// Whether a device may be synced: the facts the rule needs, without the database types.
pub fn eligibility(
    associated: bool,
    auto_associated: bool,
    external_server: bool,
    video_endpoint: bool,
    family: Option<Family>,
    settings: &Settings,
) -> Result<(), Ineligible> {
    if !associated {
        Err(Ineligible::NotAssociated)
    } else if auto_associated {
        Err(Ineligible::AutoAssociated)
    } else if external_server {
        Err(Ineligible::ExternalServer)
    } else if video_endpoint {
        Err(Ineligible::VideoEndpoint)
    } else if family == Some(Family::PolyOs) && !settings.poly_os {
        Err(Ineligible::PolyOsOff)
    } else {
        Ok(())
    }
}

/// An admin's re-admission: `generation` is accepted (once the device syncs, it ends) until
/// `until`, whatever the other rules say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readmit {
    pub generation: i64,
    pub until: i64,
}

/// What is known about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The generation it last authenticated with.
    pub held: Option<i64>,
    /// When it first authenticated with `held`... or last: any time it was known to hold it.
    pub held_at: Option<i64>,
    /// Its last request (any).
    pub last_seen: Option<i64>,
    /// When it was associated.
    pub associated_at: Option<i64>,
    pub eligible: Result<(), Ineligible>,
    pub readmit: Option<Readmit>,
}

/// Why an older generation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    ProvisioningDisabled,
    AutoSyncOff,
    NotEligible(Ineligible),
    /// The device authenticated with the current generation already.
    AlreadySynced,
    /// The device is not known to hold this generation.
    NotHeld,
    /// Not seen within `seen_days`.
    NotSeenRecently,
    /// The grace window of this generation has closed.
    WindowClosed,
    /// No such generation (or it is the current one).
    UnknownGeneration,
}

impl Refusal {
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::ProvisioningDisabled => "provisioning is disabled",
            Refusal::AutoSyncOff => "Auto-Sync is off",
            Refusal::NotEligible(i) => i.explain(),
            Refusal::AlreadySynced => "the device already uses the current credentials",
            Refusal::NotHeld => "the device is not known to hold these credentials",
            Refusal::NotSeenRecently => "the device was not seen recently enough",
            Refusal::WindowClosed => "the grace window of these credentials has closed",
            Refusal::UnknownGeneration => "no such credential generation",
        }
    }
}

/// The generation a device is expected to hold: the one it last authenticated with, else
/// the one current when it was associated.
pub fn expected(history: &History, d: &DeviceFacts) -> i64 {
    d.held.unwrap_or_else(|| match d.associated_at {
        Some(t) => history.current_at(t),
        None => history.current(),
    })
}

/// Whether the device may authenticate with the older generation `g` now (rules 1–6).
pub fn accept_old(
    settings: &Settings,
    history: &History,
    d: &DeviceFacts,
    g: i64,
    now: i64,
) -> Result<(), Refusal> {
    if !settings.provisioning_enabled {
        return Err(Refusal::ProvisioningDisabled);
    }
    let current = history.current();
    let Some(generation) = history.get(g).filter(|_| g != current) else {
        return Err(Refusal::UnknownGeneration);
    };
    if d.held == Some(current) {
        return Err(Refusal::AlreadySynced);
    }
    if let Some(r) = d.readmit
        && r.generation == g
        && now < r.until
    {
        return Ok(());
    }
    if !settings.enabled {
        return Err(Refusal::AutoSyncOff);
    }
    d.eligible.map_err(Refusal::NotEligible)?;
    let holds = match d.held {
        Some(h) => h == g,
        None => d.associated_at.is_none_or(|t| g >= history.current_at(t)),
    };
    if !holds {
        return Err(Refusal::NotHeld);
    }
    if d.held.is_some() {
        let seen = d.last_seen.max(d.held_at).unwrap_or(i64::MIN);
        if seen < now - i64::from(settings.seen_days) * DAY {
            return Err(Refusal::NotSeenRecently);
        }
    }
    if generation.accept_until.is_none_or(|until| now >= until) {
        return Err(Refusal::WindowClosed);
    }
    Ok(())
}

/// The older generations a device may use now, newest first.
pub fn acceptable<'a>(
    settings: &Settings,
    history: &'a History,
    d: &DeviceFacts,
    now: i64,
) -> Vec<&'a Generation> {
    history
        .generations
        .iter()
        .rev()
        .filter(|g| accept_old(settings, history, d, g.generation, now).is_ok())
        .collect()
}

/// A device's credential state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SyncState {
    /// It holds (or, never seen, is expected to hold) the current generation.
    Synced { generation: i64 },
    /// It holds an older generation that is still accepted: it syncs at its next poll.
    Pending { generation: i64 },
    /// It holds an older generation that is refused.
    LockedOut { generation: i64, why: Refusal },
}

impl SyncState {
    pub fn generation(&self) -> i64 {
        match *self {
            SyncState::Synced { generation }
            | SyncState::Pending { generation }
            | SyncState::LockedOut { generation, .. } => generation,
        }
    }

    pub fn is_locked_out(&self) -> bool {
        matches!(self, SyncState::LockedOut { .. })
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, SyncState::Pending { .. })
    }
}

/// The credential state of a device now.
pub fn state(settings: &Settings, history: &History, d: &DeviceFacts, now: i64) -> SyncState {
    let generation = expected(history, d);
    if generation >= history.current() {
        return SyncState::Synced { generation };
    }
    match accept_old(settings, history, d, generation, now) {
        Ok(()) => SyncState::Pending { generation },
        Err(why) => SyncState::LockedOut { generation, why },
    }
}

/// How many devices are not locked out under (`settings`, `history`) but would be under
/// (`after_settings`, `after_history`), both at `now`: what an action must confirm.
pub fn locked_out_by<'a>(
    before: (&Settings, &History),
    after: (&Settings, &History),
    devices: impl IntoIterator<Item = &'a DeviceFacts>,
    now: i64,
) -> usize {
    devices
        .into_iter()
        .filter(|d| {
            !state(before.0, before.1, d, now).is_locked_out()
                && state(after.0, after.1, d, now).is_locked_out()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY;

    /// Generation 1 from day 900, generation 2 from `NOW - 1 day` (a normal rotation).
    fn history() -> History {
        History {
            generations: vec![Generation {
                generation: 1,
                user: "old".into(),
                password: "old-password".into(),
                created_at: 900 * DAY,
                retired_at: None,
                accept_until: None,
                compromised: false,
            }],
        }
        .rotated(NOW - DAY, "new", "new-password", 14, false)
    }

    /// A device seen yesterday holding generation 1.
    fn pending_device() -> DeviceFacts {
        DeviceFacts {
            held: Some(1),
            held_at: Some(950 * DAY),
            last_seen: Some(NOW - DAY - 60),
            associated_at: Some(910 * DAY),
            eligible: Ok(()),
            readmit: None,
        }
    }

    fn accept(s: &Settings, h: &History, d: &DeviceFacts) -> Result<(), Refusal> {
        accept_old(s, h, d, 1, NOW)
    }

    #[test]
    fn a_device_holding_the_old_generation_is_accepted_within_every_rule() {
        let (s, h, d) = (Settings::default(), history(), pending_device());
        assert_eq!(accept(&s, &h, &d), Ok(()));
        assert_eq!(state(&s, &h, &d, NOW), SyncState::Pending { generation: 1 });
        assert_eq!(acceptable(&s, &h, &d, NOW).len(), 1);
    }

    #[test]
    fn rule_1_auto_sync_off_refuses_but_a_readmission_accepts() {
        let (h, mut d) = (history(), pending_device());
        let off = Settings {
            enabled: false,
            ..Default::default()
        };
        assert_eq!(accept(&off, &h, &d), Err(Refusal::AutoSyncOff));
        d.readmit = Some(Readmit {
            generation: 1,
            until: NOW + DAY,
        });
        assert_eq!(accept(&off, &h, &d), Ok(()));
        d.readmit = Some(Readmit {
            generation: 1,
            until: NOW,
        });
        assert_eq!(
            accept(&off, &h, &d),
            Err(Refusal::AutoSyncOff),
            "expired re-admission"
        );
        let disabled = Settings {
            provisioning_enabled: false,
            ..Default::default()
        };
        assert_eq!(
            accept(&disabled, &h, &pending_device()),
            Err(Refusal::ProvisioningDisabled)
        );
    }

    #[test]
    fn rule_2_a_device_that_may_not_be_synced_is_refused() {
        let (s, h, mut d) = (Settings::default(), history(), pending_device());
        d.eligible = eligibility(true, true, false, false, None, &s);
        assert_eq!(
            accept(&s, &h, &d),
            Err(Refusal::NotEligible(Ineligible::AutoAssociated))
        );
        d.eligible = eligibility(true, false, false, false, Some(Family::PolyOs), &s);
        assert_eq!(
            accept(&s, &h, &d),
            Err(Refusal::NotEligible(Ineligible::PolyOsOff))
        );
        let poly = Settings { poly_os: true, ..s };
        assert!(eligibility(true, false, false, false, Some(Family::PolyOs), &poly).is_ok());
        assert_eq!(
            eligibility(true, false, true, false, None, &s),
            Err(Ineligible::ExternalServer)
        );
    }

    #[test]
    fn rule_3_a_device_that_synced_is_refused_the_old_generation() {
        let (s, h, mut d) = (Settings::default(), history(), pending_device());
        d.held = Some(2);
        assert_eq!(accept(&s, &h, &d), Err(Refusal::AlreadySynced));
        assert_eq!(state(&s, &h, &d, NOW), SyncState::Synced { generation: 2 });
    }

    #[test]
    fn rule_4_only_the_generation_the_device_holds_is_accepted() {
        let s = Settings::default();
        let h = history().rotated(NOW - 60, "newer", "newer-password", 14, false);
        let d = pending_device();
        assert_eq!(accept_old(&s, &h, &d, 1, NOW), Ok(()));
        assert_eq!(
            accept_old(&s, &h, &d, 2, NOW),
            Err(Refusal::NotHeld),
            "generation 2 was never seen from this device"
        );
        // Never seen: any generation no older than the one current at association.
        let never = DeviceFacts {
            held: None,
            held_at: None,
            last_seen: None,
            associated_at: Some(NOW - DAY + 10),
            ..pending_device()
        };
        assert_eq!(accept_old(&s, &h, &never, 1, NOW), Err(Refusal::NotHeld));
        assert_eq!(accept_old(&s, &h, &never, 2, NOW), Ok(()));
        assert_eq!(
            accept_old(&s, &h, &never, 3, NOW),
            Err(Refusal::UnknownGeneration),
            "the current generation is not an old one"
        );
    }

    #[test]
    fn rule_5_a_device_not_seen_for_n_days_is_refused() {
        let (mut s, h, mut d) = (Settings::default(), history(), pending_device());
        d.last_seen = Some(NOW - 31 * DAY);
        d.held_at = Some(NOW - 40 * DAY);
        assert_eq!(accept(&s, &h, &d), Err(Refusal::NotSeenRecently));
        s.seen_days = 60;
        assert_eq!(accept(&s, &h, &d), Ok(()));
    }

    #[test]
    fn rule_6_the_grace_window_closes_and_a_compromised_rotation_has_none() {
        let (s, h, d) = (Settings::default(), history(), pending_device());
        let later = NOW - DAY + 14 * DAY;
        assert_eq!(
            accept_old(&s, &h, &d, 1, later - 1),
            Ok(()),
            "last second of the window"
        );
        let seen_then = DeviceFacts {
            last_seen: Some(later - 60),
            ..d.clone()
        };
        assert_eq!(
            accept_old(&s, &h, &seen_then, 1, later),
            Err(Refusal::WindowClosed)
        );
        assert!(state(&s, &h, &seen_then, later).is_locked_out());
        let leaked = History {
            generations: history().generations[..1].to_vec(),
        }
        .rotated(NOW - DAY, "new", "new-password", 14, true);
        assert_eq!(
            accept_old(&s, &leaked, &d, 1, NOW),
            Err(Refusal::WindowClosed)
        );
    }

    #[test]
    fn a_compromised_rotation_closes_the_windows_of_every_older_generation() {
        let h = history().rotated(NOW, "third", "third-password", 14, true);
        assert!(
            h.generations[..2]
                .iter()
                .all(|g| g.accept_until.is_some_and(|u| u <= NOW))
        );
        assert_eq!(h.current(), 3);
        assert!(h.generations[2].compromised);
    }

    #[test]
    fn lockouts_are_counted_before_an_action() {
        let h = history();
        let on = Settings::default();
        let off = Settings {
            enabled: false,
            ..on
        };
        let synced = DeviceFacts {
            held: Some(2),
            ..pending_device()
        };
        let devices = [pending_device(), pending_device(), synced.clone()];
        assert_eq!(locked_out_by((&on, &h), (&off, &h), &devices, NOW), 2);
        // Rotating while Auto-Sync is off strands the synced device too.
        let rotated = h.rotated(NOW, "x", "xxxxxxxxx", 14, false);
        assert_eq!(
            locked_out_by((&off, &h), (&off, &rotated), &devices, NOW),
            1
        );
        assert_eq!(locked_out_by((&on, &h), (&on, &rotated), &devices, NOW), 0);
        let leaked = h.rotated(NOW, "x", "xxxxxxxxx", 14, true);
        assert_eq!(locked_out_by((&on, &h), (&on, &leaked), &devices, NOW), 3);
    }
}
