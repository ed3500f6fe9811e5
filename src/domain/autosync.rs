//! Auto-Sync credentials (docs/design.md §6; the Lens Device Provisioning and Auto-Sync
//! pages): which older credential generation a device may still use, and what state each
//! device is in after a rotation. Part of the credential state machine (`domain::machine`,
//! whose `//!` states the invariants these rules keep).
//!
//! Pure rules, no database: callers load the account's settings and credential history and
//! the device's facts, and ask. The same functions decide a request (`accept_old`), the
//! inventory and report states (`state`), and how many devices an action would lock out
//! (`state` before and after the change), so what a confirmation says is what then happens.
//!
//! **A request with the account credential proves nothing about which phone sent it**: an
//! admin's curl, a monitor or a stranger who read DHCP option 160 can name any MAC. So no
//! request changes which generations a device may use. An older generation `g` is accepted
//! for a device when every rule holds, each decided by the account's admins or by time:
//! 1. provisioning is on;
//! 2. an admin re-admitted the device and the re-admission is open (any generation of the
//!    history, whatever the rules below say) — or else:
//! 3. Auto-Sync is on, and the device may be synced at all (associated by a person, not sent
//!    to another server, of a supported family);
//! 4. the device may hold `g`: `g` is no older than the generation current when the device
//!    was associated, nor than the device's floor (raised by a rotation for devices not seen
//!    within `seen_days` before it: `seen_days` is measured at the rotation, and the rotation
//!    counted those devices before the admin confirmed it);
//! 5. `g`'s grace window is open (it closes `grace_days` after the rotation that retired `g`,
//!    at once for a "compromised" rotation: both dates shown when the rotation was made).
//!
//! Requests still say something for reports: the generation of the latest recognised request
//! that named a device is shown as what it holds ("synced" means seen with the current one),
//! and a device never seen is never counted synced.

use serde::Serialize;

use super::polycom::models::Family;
use super::regress::{self, Defect};

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// The generation recorded for a request that used the device's own credential rather than
/// one of the account's generations (`domain::machine`: accepted in every mode while
/// provisioning is on, whatever the account's generations do).
pub const OWN_CREDENTIAL: i64 = -1;

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
        // A generation made in the same second as `t` may not have been the one current at
        // `t`: the older one is assumed (times have a second's resolution).
        self.generations
            .iter()
            .rev()
            .find(|g| g.created_at < t)
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

/// Whether a device runs Poly OS: declared with a Poly OS vendor model (`Poly Studio X50`,
/// `G7500`), or seen with a Poly OS User-Agent (the family recorded from its requests, or
/// the model of its last User-Agent). Auto-Sync's credentials reach such a device only if
/// it uses Basic authentication, which no provisioning file can set.
pub fn is_poly_os(vendor_model: &str, seen_family: &str, ua_model: &str) -> bool {
    Family::of_model(&vendor_model.replace(' ', "")) == Some(Family::PolyOs)
        || Family::from_name(seen_family) == Some(Family::PolyOs)
        || Family::of_model(&ua_model.replace(' ', "")) == Some(Family::PolyOs)
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

/// An admin's re-admission: until `until`, any generation of the account's history is
/// accepted from the device (it is sent the current credentials meanwhile). `generation` is
/// the one it was last seen with when re-admitted, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readmit {
    pub generation: i64,
    pub until: i64,
}

/// What is known about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The generation of the latest recognised request that named the device (evidence for
    /// reports only: anyone holding that generation can send one).
    pub held: Option<i64>,
    /// When that request came.
    pub held_at: Option<i64>,
    /// Its last authenticated request (any).
    pub last_seen: Option<i64>,
    /// When it was associated.
    pub associated_at: Option<i64>,
    /// Generations below this are refused (it was not seen within `seen_days` before the
    /// rotation that raised it).
    pub floor: Option<i64>,
    /// The latest recognised request naming it was refused.
    pub last_refused: bool,
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
    /// The device was associated after this generation was replaced.
    NotHeld,
    /// Not seen within `seen_days` before the rotation that retired this generation.
    NotSeenAtRotation,
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
            Refusal::NotHeld => "the device was associated after these credentials were replaced",
            Refusal::NotSeenAtRotation => {
                "the device had not been seen recently when these credentials were replaced"
            }
            Refusal::WindowClosed => "the grace window of these credentials has closed",
            Refusal::UnknownGeneration => "no such credential generation",
        }
    }
}

/// The oldest generation the device may hold: the one current when it was associated, or
/// its floor if higher.
pub fn oldest_held(history: &History, d: &DeviceFacts) -> i64 {
    let associated = d.associated_at.map_or(0, |t| history.current_at(t));
    associated.max(d.floor.unwrap_or(0))
}

/// The generation a device is shown holding: the one its latest recognised request used,
/// else (never seen) the oldest one it may hold.
pub fn expected(history: &History, d: &DeviceFacts) -> i64 {
    d.held.unwrap_or_else(|| oldest_held(history, d))
}

/// Whether the device may authenticate with the older generation `g` now (rules 1–5).
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
    if d.readmit.is_some_and(|r| now < r.until) {
        return Ok(());
    }
    if !settings.enabled {
        return Err(Refusal::AutoSyncOff);
    }
    d.eligible.map_err(Refusal::NotEligible)?;
    let associated = d.associated_at.map_or(0, |t| history.current_at(t));
    if g < associated {
        return Err(Refusal::NotHeld);
    }
    if g < d.floor.unwrap_or(0) {
        return Err(Refusal::NotSeenAtRotation);
    }
    if regress::on(Defect::CurlSynced) && d.held == Some(current) {
        return Err(Refusal::NotHeld);
    }
    if regress::on(Defect::SeenAtRequest)
        && d.held.is_some()
        && d.last_seen.max(d.held_at).unwrap_or(i64::MIN)
            < now - i64::from(settings.seen_days) * DAY
    {
        return Err(Refusal::NotSeenAtRotation);
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

/// Whether the older generation `g` is still inside its grace window: a phone using it is
/// a phone that was given it, never a wrong guess (not counted as a failure, even where the
/// device it names may no longer use it).
pub fn in_window(history: &History, g: i64, now: i64) -> bool {
    g != history.current()
        && history
            .get(g)
            .is_some_and(|x| x.accept_until.is_some_and(|u| now < u))
}

/// The floor a rotation at `now` gives a device (rule 4): devices seen before but not within
/// `seen_days` may no longer use any generation older than the new one. `None`: unchanged.
pub fn floor_after_rotation(
    settings: &Settings,
    d: &DeviceFacts,
    new_generation: i64,
    now: i64,
) -> Option<i64> {
    let seen = d.last_seen?;
    (seen < now - i64::from(settings.seen_days) * DAY).then_some(new_generation)
}

/// A device's credential state, as reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SyncState {
    /// No recognised request ever named it: never counted synced.
    NeverSeen { generation: i64 },
    /// Its latest recognised request used the current generation.
    Synced { generation: i64 },
    /// Its latest request used an older generation that is still accepted: it syncs at its
    /// next poll.
    Pending { generation: i64 },
    /// Its latest request used an older generation that is refused now (or was refused).
    LockedOut { generation: i64, why: Refusal },
}

impl SyncState {
    pub fn generation(&self) -> i64 {
        match *self {
            SyncState::NeverSeen { generation }
            | SyncState::Synced { generation }
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

    pub fn is_synced(&self) -> bool {
        matches!(self, SyncState::Synced { .. })
    }
}

/// Every generation a device may hold now. A request with the account credential proves
/// nothing about the phone (I2: an admin's curl, a monitor or a stranger sends the same),
/// so the phone may still hold any generation from the oldest it may hold
/// (`oldest_held`) up to the current one, and the one its latest request used. Only a
/// request with its own credential proves what it uses.
pub fn possible(history: &History, d: &DeviceFacts) -> Vec<i64> {
    if d.held == Some(OWN_CREDENTIAL) {
        return vec![OWN_CREDENTIAL];
    }
    let oldest = oldest_held(history, d);
    // The one it was last seen with first (what a count names when it is refused).
    let mut out: Vec<i64> = d.held.into_iter().collect();
    out.extend(
        history
            .generations
            .iter()
            .map(|g| g.generation)
            .filter(|g| *g >= oldest && Some(*g) != d.held),
    );
    out
}

/// Whether the device may authenticate with generation `g` now.
pub fn admits_generation(
    settings: &Settings,
    history: &History,
    d: &DeviceFacts,
    g: i64,
    now: i64,
) -> Result<(), Refusal> {
    if !settings.provisioning_enabled {
        Err(Refusal::ProvisioningDisabled)
    } else if g >= history.current() || g == OWN_CREDENTIAL {
        Ok(())
    } else {
        accept_old(settings, history, d, g, now)
    }
}

/// What an action changing settings, history or the device's facts must count first (I5):
/// why the device is refused after it with a generation it may hold (`possible`) that was
/// accepted before; `None` when every such generation stays accepted.
pub fn refused_after(
    before: (&Settings, &History, &DeviceFacts),
    after: (&Settings, &History, &DeviceFacts),
    now: i64,
) -> Option<Refusal> {
    refused_generation(before, after, now).map(|(_, why)| why)
}

/// `refused_after`, with the generation it names.
pub fn refused_generation(
    before: (&Settings, &History, &DeviceFacts),
    after: (&Settings, &History, &DeviceFacts),
    now: i64,
) -> Option<(i64, Refusal)> {
    possible(before.1, before.2).into_iter().find_map(|g| {
        admits_generation(before.0, before.1, before.2, g, now).ok()?;
        admits_generation(after.0, after.1, after.2, g, now)
            .err()
            .map(|why| (g, why))
    })
}

/// Whether the device is accepted with some generation it may hold (`possible`).
pub fn admits_any(
    settings: &Settings,
    history: &History,
    d: &DeviceFacts,
    now: i64,
) -> Result<(), Refusal> {
    let mut why = None;
    for g in possible(history, d) {
        match admits_generation(settings, history, d, g, now) {
            Ok(()) => return Ok(()),
            Err(e) => why = why.or(Some(e)),
        }
    }
    Err(why.unwrap_or(Refusal::UnknownGeneration))
}

/// The credential state of a device now, for reports.
pub fn state(settings: &Settings, history: &History, d: &DeviceFacts, now: i64) -> SyncState {
    let current = history.current();
    let Some(held) = d.held else {
        return SyncState::NeverSeen {
            generation: oldest_held(history, d),
        };
    };
    if (held >= current || held == OWN_CREDENTIAL) && !d.last_refused {
        return SyncState::Synced { generation: held };
    }
    if held == OWN_CREDENTIAL {
        // Its own credential was refused: provisioning off, or a password it was given
        // was replaced by one it proved (only a re-admission accepts that one again).
        return SyncState::LockedOut {
            generation: held,
            why: if settings.provisioning_enabled {
                Refusal::WindowClosed
            } else {
                Refusal::ProvisioningDisabled
            },
        };
    }
    match accept_old(settings, history, d, held, now) {
        Ok(()) if held < current => SyncState::Pending { generation: held },
        Ok(()) => SyncState::Synced { generation: held },
        Err(why) => SyncState::LockedOut {
            generation: held,
            why,
        },
    }
}

/// The devices refused under `after` with a generation they may hold that `before` accepts
/// (`refused_after`), with why: what an action must count and show before it changes the
/// settings or the history.
pub fn locked_out_by<'a>(
    before: (&Settings, &History),
    after: (&Settings, &History),
    devices: impl IntoIterator<Item = &'a DeviceFacts>,
    now: i64,
) -> Vec<(usize, Refusal)> {
    devices
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| {
            refused_after((before.0, before.1, d), (after.0, after.1, d), now).map(|why| (i, why))
        })
        .collect()
}

/// Whether the device would be locked out under (`settings`, `history`) at `now`.
pub fn locked_out(settings: &Settings, history: &History, d: &DeviceFacts, now: i64) -> bool {
    state(settings, history, d, now).is_locked_out()
}

#[cfg(test)]
mod tests;
