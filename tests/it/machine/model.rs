//! The reference model of the credential state machine: the rules of `domain::machine`
//! (its `//!` states the invariants) written for clarity, not speed. No database, no HTTP,
//! no code shared with the server: the driver (`mod.rs`) runs the real server and this
//! model side by side and compares them after every step.
//!
//! Time is the test clock's offset, in seconds; every advance adds whole days and 67
//! minutes, so no two events are ever exactly a grace window or `seen_days` apart (the
//! server's clock runs on by the real seconds a step takes, the model's does not).

use std::collections::{BTreeMap, BTreeSet};

pub const DAY: i64 = 86_400;

/// The generation a request with the phone's own credential is recorded with.
pub const OWN: i64 = -1;

/// Where the phones are (strangers and admins come from elsewhere).
pub const PHONE_ADDRESS: &str = "127.0.0.2";

/// Deliveries of a pending own credential after which it is no longer sent (E-D).
pub const GIVE_UP_AFTER: u32 = 5;

/// A window's closing time when it has none (it closes when its device enrols).
pub const NEVER: i64 = i64::MAX;

/// One of the account's credential generations.
#[derive(Debug, Clone)]
pub struct Gen {
    pub n: i64,
    pub password: String,
    /// End of its grace window; `None` while it is the current one.
    pub until: Option<i64>,
}

/// What a phone is: it decides its User-Agent and how it takes `device.*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A UCS phone whose User-Agent carries `(SN:<mac>)` once it was told to.
    Tagged,
    /// A UCS phone that never tags its User-Agent.
    Untagged,
    /// A Poly OS device (the simulator's behaviour is an assumption, see `sim`).
    PolyOs,
}

/// The credential a client presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    /// Account generation `n`.
    Account(i64),
    /// Version `v` of the phone's own credential (only the phone itself holds one).
    Own(u32),
    /// A password that was never valid.
    Wrong,
}

/// What the model knows of one device, server side and phone side.
#[derive(Debug, Clone)]
pub struct Device {
    /// The generation current when it was associated.
    pub assoc_gen: i64,
    /// Generations below this are refused (not seen within `seen_days` at a rotation).
    pub floor: i64,
    /// The generation of the latest recognised request naming it, and whether it was
    /// refused.
    pub held: Option<i64>,
    pub refused: bool,
    /// Its latest accepted request.
    pub last_seen: Option<i64>,
    pub readmit_until: Option<i64>,
    /// It proved an own credential.
    pub enrolled: bool,
    /// The version of its current own credential (0: none), whether that one was sent
    /// (or proved), and the older versions sent and not yet superseded by a proved one.
    pub own_version: u32,
    pub own_delivered: bool,
    pub outstanding: BTreeSet<u32>,
    /// What the phone itself holds.
    pub holds: Cred,
    /// An admin confirmed an action whose count named it as refused from then on, or a
    /// window it was shown in closed: it may be refused.
    pub may_be_refused: bool,
    /// Counted when withholding was turned on, or when a window that would have
    /// enrolled it was closed: it may be served without secrets until it enrols.
    pub may_be_withheld: bool,
    /// A stranger claimed its MAC in its enrolment window (detected: contested): nothing
    /// is promised for it any more.
    pub claimed: bool,
    /// Its declared family cannot adopt its own credential: never withheld (E2).
    pub exempt: bool,
    /// Deliveries of its current pending credential, and the addresses it went to.
    pub deliveries: u32,
    pub delivered_to: BTreeSet<String>,
    /// A second address was sent its pending credential, or the account credential was
    /// used for it after it enrolled (E-C).
    pub contested: bool,
    /// It was factory-reset after it enrolled and holds what DHCP gave it (the account
    /// credential current then), which the server cannot know: until it proves its own
    /// credential again, whatever stops that generation being accepted (a compromised
    /// rotation, Auto-Sync off, its grace window closing) may refuse it without counting
    /// it — DHCP must hand out the current credentials (the world's I1 check excuses it
    /// while it holds an older generation than the current one).
    pub reimaged: bool,
}

impl Device {
    /// A device just associated while generation `current` is the account's, whose phone
    /// holds it.
    pub fn fresh(current: i64, kind: Kind) -> Device {
        Device {
            assoc_gen: current,
            floor: 0,
            held: None,
            refused: false,
            last_seen: None,
            readmit_until: None,
            enrolled: false,
            own_version: 0,
            own_delivered: false,
            outstanding: BTreeSet::new(),
            holds: Cred::Account(current),
            may_be_refused: false,
            may_be_withheld: false,
            claimed: false,
            exempt: kind == Kind::PolyOs,
            deliveries: 0,
            delivered_to: BTreeSet::new(),
            contested: false,
            reimaged: false,
        }
    }
}

/// The account and its devices.
#[derive(Debug, Clone)]
pub struct Model {
    pub now: i64,
    pub gens: Vec<Gen>,
    pub autosync: bool,
    pub grace_days: i64,
    pub seen_days: i64,
    /// The account withholds secrets from the account credential.
    pub withhold: bool,
    /// Enrolment windows: `(mac or every device, closes, until the device enrols)`.
    pub windows: Vec<(Option<String>, i64, bool)>,
    pub devices: BTreeMap<String, Device>,
}

/// The counts `autosync status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub synced: usize,
    pub pending: BTreeSet<String>,
    pub locked_out: BTreeSet<String>,
    pub never_seen: BTreeSet<String>,
}

/// What the model says a request naming a device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refused (401): the credential is not one the device may use.
    Refused,
    /// Accepted; `secrets`: with SIP passwords; `sends`: the credential the response
    /// gives it (the current generation, or an own one), if any.
    Accepted { secrets: bool, sends: Option<Cred> },
}

impl Model {
    /// A fresh install: every account withholds secrets, and association opened a window
    /// for each device until it enrols (E-W).
    pub fn new(first_password: &str, macs: &[(String, Kind)]) -> Model {
        let gens = vec![Gen {
            n: 1,
            password: first_password.to_string(),
            until: None,
        }];
        let devices = macs
            .iter()
            .map(|(m, kind)| (m.clone(), Device::fresh(1, *kind)))
            .collect();
        Model {
            now: 0,
            gens,
            autosync: true,
            grace_days: 14,
            seen_days: 30,
            withhold: true,
            windows: macs
                .iter()
                .map(|(m, _)| (Some(m.clone()), NEVER, true))
                .collect(),
            devices,
        }
    }

    /// An admin replaced the phone at `old` by a new one at `new`: the association moves,
    /// what the old phone held or did is forgotten, and association opens the new MAC's
    /// window until it enrols (E-W) when the account withholds.
    pub fn replace(&mut self, old: &str, new: &str, kind: Kind) {
        self.devices.remove(old);
        self.windows.retain(|(m, _, _)| m.as_deref() != Some(old));
        self.devices
            .insert(new.to_string(), Device::fresh(self.current(), kind));
        if self.withhold {
            self.windows.push((Some(new.to_string()), NEVER, true));
        }
    }

    /// The current generation and its password (what DHCP hands a new or reset phone).
    pub fn current_password(&self) -> (i64, String) {
        let current = self.current();
        let password = self
            .generation(current)
            .map(|g| g.password.clone())
            .unwrap_or_default();
        (current, password)
    }

    pub fn current(&self) -> i64 {
        self.gens.last().map_or(0, |g| g.n)
    }

    pub fn generation(&self, n: i64) -> Option<&Gen> {
        self.gens.iter().find(|g| g.n == n)
    }

    /// The generation whose password is `password`, if any.
    pub fn gen_of(&self, password: &str) -> Option<i64> {
        self.gens
            .iter()
            .find(|g| g.password == password)
            .map(|g| g.n)
    }

    fn window_open(&self, mac: &str) -> bool {
        self.windows
            .iter()
            .any(|(m, closes, _)| self.now < *closes && m.as_deref().is_none_or(|m| m == mac))
    }

    /// Whether the device may use the older generation `g` now.
    pub fn accepts_old(&self, d: &Device, g: i64) -> bool {
        let Some(found) = self.generation(g).filter(|_| g != self.current()) else {
            return false;
        };
        if d.readmit_until.is_some_and(|u| self.now < u) {
            return true;
        }
        self.autosync
            && g >= d.assoc_gen
            && g >= d.floor
            && found.until.is_some_and(|u| self.now < u)
    }

    /// Whether `cred` is accepted for the device (on its master and configuration files).
    fn accepts(&self, d: &Device, cred: Cred) -> bool {
        match cred {
            Cred::Own(v) => (v == d.own_version && v > 0) || d.outstanding.contains(&v),
            Cred::Account(g) => g == self.current() || self.accepts_old(d, g),
            Cred::Wrong => false,
        }
    }

    /// What a request naming `mac` with `cred` gets, without changing anything.
    pub fn verdict(&self, mac: &str, cred: Cred) -> Verdict {
        let d = &self.devices[mac];
        if !self.accepts(d, cred) {
            return Verdict::Refused;
        }
        if let Cred::Own(v) = cred {
            return Verdict::Accepted {
                secrets: true,
                sends: (v != d.own_version).then_some(Cred::Own(d.own_version)),
            };
        }
        let Cred::Account(g) = cred else {
            unreachable!("only account credentials are left")
        };
        let withheld = self.withhold && !d.exempt;
        if withheld && !d.enrolled && self.window_open(mac) && d.deliveries < GIVE_UP_AFTER {
            return Verdict::Accepted {
                secrets: false,
                sends: Some(Cred::Own(d.own_version.max(1))),
            };
        }
        let readmitted = d.readmit_until.is_some_and(|u| self.now < u);
        let sends = (g < self.current() && (self.autosync || readmitted))
            .then_some(Cred::Account(self.current()));
        Verdict::Accepted {
            secrets: !withheld,
            sends,
        }
    }

    /// Records a recognised request naming `mac` with `cred` (the phone's, an admin's or a
    /// stranger's): evidence for reports, never a reason to refuse the phone.
    pub fn note(&mut self, mac: &str, cred: Cred, from: &str) -> Verdict {
        let v = self.verdict(mac, cred);
        // An own password this database never issued (made after the backup it was
        // restored from) is no credential the server knows: a wrong one, not recorded.
        if let Cred::Own(n) = cred
            && (n == 0 || n > self.devices[mac].own_version)
        {
            return v;
        }
        let now = self.now;
        let withholds = self.withhold;
        let d = self.devices.get_mut(mac).expect("device");
        // Claims (E-C): who was sent the pending credential, and the account credential
        // used for it after it enrolled.
        if let (Cred::Account(_), Verdict::Accepted { sends, .. }) = (cred, v)
            && withholds
            && !d.exempt
        {
            if let Some(Cred::Own(_)) = sends {
                d.deliveries += 1;
                d.delivered_to.insert(from.to_string());
                if d.delivered_to.len() > 1 {
                    d.contested = true;
                }
            } else if d.enrolled {
                d.contested = true;
            }
        }
        let held = match cred {
            Cred::Own(_) => OWN,
            Cred::Account(g) => g,
            Cred::Wrong => return v,
        };
        d.held = Some(held);
        d.refused = v == Verdict::Refused;
        if !d.refused {
            d.last_seen = Some(now);
        }
        let proved = matches!(cred, Cred::Own(_)) && !d.refused;
        if proved {
            d.reimaged = false;
        }
        if let (Cred::Own(used), false) = (cred, d.refused) {
            d.enrolled = true;
            d.may_be_withheld = false;
            if used == d.own_version {
                // It proved the newest: every older one is retired.
                d.outstanding.clear();
                d.own_delivered = true;
            }
        }
        if let Verdict::Accepted {
            sends: Some(Cred::Own(sent)),
            ..
        } = v
        {
            d.own_version = sent;
            d.own_delivered = true;
        }
        if proved {
            // The windows association opened for it close: it enrolled.
            for w in &mut self.windows {
                if w.2 && w.0.as_deref() == Some(mac) {
                    w.1 = w.1.min(now);
                }
            }
        }
        v
    }

    /// The phone itself boots (and reboots until stable): what it presents, what it is
    /// given, what it then holds. Returns the verdict of its first request.
    pub fn boot(&mut self, mac: &str) -> Verdict {
        let cred = self.devices[mac].holds;
        let first = self.note(mac, cred, PHONE_ADDRESS);
        if let Verdict::Accepted { sends: Some(c), .. } = first {
            self.devices.get_mut(mac).expect("device").holds = c;
            self.note(mac, c, PHONE_ADDRESS);
        }
        first
    }

    /// A stranger (or an admin's curl) names `mac` with `cred`. In the device's
    /// enrolment window, an account credential claims the MAC (the secure-by-default
    /// issue's exception): the model promises nothing more for it.
    pub fn stranger(&mut self, mac: &str, cred: Cred, from: &str) -> Verdict {
        let v = self.note(mac, cred, from);
        if let Verdict::Accepted {
            sends: Some(Cred::Own(_)),
            ..
        } = v
        {
            let d = self.devices.get_mut(mac).expect("device");
            d.claimed = true;
        }
        v
    }

    /// The generations the device may hold: an account-credential request proves nothing
    /// about the phone (anyone holding that generation sends the same), so any from the
    /// oldest it may hold up to the current one, and the one it was last seen with; only
    /// its own credential is proof.
    pub fn possible(&self, d: &Device) -> Vec<i64> {
        if d.held == Some(OWN) {
            return vec![OWN];
        }
        let oldest = d.assoc_gen.max(d.floor);
        let mut out: Vec<i64> = self
            .gens
            .iter()
            .map(|g| g.n)
            .filter(|n| *n >= oldest)
            .collect();
        if let Some(h) = d.held.filter(|h| !out.contains(h)) {
            out.push(h);
        }
        out
    }

    /// Whether the device is accepted with generation `g` now.
    fn admits(&self, d: &Device, g: i64) -> bool {
        g == OWN || g >= self.current() || self.accepts_old(d, g)
    }

    /// The devices `after` refuses with a generation they may hold that `self` accepts.
    pub fn lost_in(&self, after: &Model) -> BTreeSet<String> {
        self.devices
            .iter()
            .filter(|(m, d)| {
                let a = &after.devices[*m];
                self.possible(d)
                    .into_iter()
                    .any(|g| self.admits(d, g) && !after.admits(a, g))
            })
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// A rotation: returns the model after it, the phones it shows (every device not last
    /// seen with its own credential: each is refused from now, or sent the new credentials
    /// with its grace window's end shown) and those refused from now.
    pub fn rotated(
        &self,
        password: &str,
        compromised: bool,
    ) -> (Model, BTreeSet<String>, BTreeSet<String>) {
        let mut after = self.clone();
        let now = self.now;
        for g in &mut after.gens {
            if g.until.is_none() {
                g.until = Some(now + self.grace_days * DAY);
            }
            if compromised {
                g.until = Some(g.until.map_or(now, |u| u.min(now)));
            }
        }
        let n = self.current() + 1;
        after.gens.push(Gen {
            n,
            password: password.to_string(),
            until: None,
        });
        // `seen_days` applies to devices on the account's credentials: one last seen with its
        // own is left out of the rotation altogether.
        for d in after.devices.values_mut() {
            if d.held != Some(OWN) && d.last_seen.is_some_and(|s| s < now - self.seen_days * DAY) {
                d.floor = n;
            }
        }
        let lost = self.lost_in(&after);
        let shown = self
            .devices
            .iter()
            .filter(|(_, d)| d.held != Some(OWN))
            .map(|(m, _)| m.clone())
            .collect();
        (after, shown, lost)
    }

    /// Auto-Sync on or off.
    pub fn with_autosync(&self, on: bool) -> (Model, BTreeSet<String>) {
        let mut after = self.clone();
        after.autosync = on;
        let lost = self.lost_in(&after);
        (after, lost)
    }

    /// Associated devices that have not enrolled (and could: not exempt).
    pub fn not_enrolled(&self) -> BTreeSet<String> {
        self.devices
            .iter()
            .filter(|(_, d)| !d.enrolled && !d.exempt)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Withholding on or off; on counts every device not enrolled.
    pub fn with_withhold(&self, on: bool) -> (Model, BTreeSet<String>) {
        let mut after = self.clone();
        after.withhold = on;
        let counted = if on && !self.withhold {
            self.not_enrolled()
        } else {
            BTreeSet::new()
        };
        (after, counted)
    }

    /// Closing every window counts the devices a window covers that have not enrolled,
    /// where secrets are withheld.
    pub fn closing_windows(&self) -> (Model, BTreeSet<String>) {
        let mut after = self.clone();
        for w in &mut after.windows {
            w.1 = w.1.min(self.now);
        }
        let counted = if self.withhold {
            self.not_enrolled()
                .into_iter()
                .filter(|m| self.window_open(m))
                .collect()
        } else {
            BTreeSet::new()
        };
        (after, counted)
    }

    /// Marks the counted devices after a confirmed action: each may now be refused (or,
    /// for withholding, served without secrets).
    pub fn excuse(&mut self, counted: &BTreeSet<String>, withheld: bool) {
        for m in counted {
            let d = self.devices.get_mut(m).expect("device");
            if withheld {
                d.may_be_withheld = true;
            } else {
                d.may_be_refused = true;
            }
        }
    }

    /// After a compromised rotation: re-imaged phones may be refused (see `Device::reimaged`).
    pub fn excuse_reimaged(&mut self) {
        for d in self.devices.values_mut().filter(|d| d.reimaged) {
            d.may_be_refused = true;
        }
    }

    /// Advances the clock; a grace window that closes excuses the devices it leaves
    /// behind (its closing date and count were shown when it was opened).
    pub fn advance(&mut self, secs: i64) {
        let before = self.clone();
        self.now += secs;
        for m in before.lost_in(self) {
            self.devices.get_mut(&m).expect("device").may_be_refused = true;
        }
        // Windows that closed by time: devices they covered that did not enrol were counted
        // when withholding was turned on (or are not withheld at all).
    }

    /// A new own credential for the device, sent at its next request with its current one
    /// (which stays accepted until it proves the new one). `None`: it has none to rotate.
    pub fn rotate_own(&mut self, mac: &str) -> Option<()> {
        let d = self.devices.get_mut(mac).expect("device");
        if d.own_version == 0 {
            return None;
        }
        if d.own_delivered {
            d.outstanding.insert(d.own_version);
        }
        d.own_version += 1;
        d.own_delivered = false;
        d.deliveries = 0;
        Some(())
    }

    /// The devices re-enrolling `mac` counts: one holding an own credential it was sent.
    pub fn reenrol_impact(&self, mac: &str) -> BTreeSet<String> {
        let d = &self.devices[mac];
        if d.own_version > 0 && (d.enrolled || d.own_delivered) {
            BTreeSet::from([mac.to_string()])
        } else {
            BTreeSet::new()
        }
    }

    /// An admin re-enrols a device: a new pending credential (the one it may hold stays
    /// accepted until the new one is used), its claims cleared, a window of an hour.
    pub fn reenrol(&mut self, mac: &str) {
        let now = self.now;
        let d = self.devices.get_mut(mac).expect("device");
        if d.own_version > 0 {
            if d.enrolled || d.own_delivered {
                d.outstanding.insert(d.own_version);
            }
            d.own_version += 1;
            d.own_delivered = false;
        }
        d.enrolled = false;
        d.deliveries = 0;
        d.delivered_to.clear();
        d.contested = false;
        self.windows
            .push((Some(mac.to_string()), now + 3600, false));
    }

    /// An admin dismisses a contested device's claims: `false` when it was not contested.
    pub fn dismiss(&mut self, mac: &str) -> bool {
        let d = self.devices.get_mut(mac).expect("device");
        let was = d.contested;
        if was {
            // Refused when it is not contested: the claims stay (a later delivery to a
            // second address still contests it).
            d.contested = false;
            d.delivered_to.clear();
        }
        was
    }

    /// The devices restoring `backup` would refuse: they hold a credential this model
    /// accepts and the backup does not.
    pub fn restore_impact(&self, backup: &Model) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (m, d) in &self.devices {
            let b = &backup.devices[m];
            let mut may_hold = d.outstanding.clone();
            if d.own_delivered && d.own_version > 0 {
                may_hold.insert(d.own_version);
            }
            let mut kept = b.outstanding.clone();
            if b.own_version > 0 {
                kept.insert(b.own_version);
            }
            if !may_hold.is_empty() && !may_hold.is_subset(&kept) {
                out.insert(m.clone());
                continue;
            }
            let lost = self.possible(d).into_iter().filter(|g| *g != OWN).any(|g| {
                let Some(ours) = self
                    .generation(g)
                    .filter(|x| x.until.is_none_or(|u| self.now < u))
                else {
                    return false;
                };
                // The backup accepts the password if any of its generations has it.
                !backup
                    .gens
                    .iter()
                    .any(|bg| bg.password == ours.password && bg.until.is_none_or(|u| self.now < u))
            });
            if lost {
                out.insert(m.clone());
            }
        }
        out
    }

    /// Re-admits a device: any generation accepted until the window ends. A re-admission
    /// cannot admit a password the server never had (one a restore took away, counted and
    /// confirmed then): that phone stays excused.
    pub fn readmit(&mut self, mac: &str) {
        let until = self.now + self.grace_days.max(1) * DAY;
        let d = self.devices.get_mut(mac).expect("device");
        d.readmit_until = Some(until);
        let holds = d.holds;
        if self.verdict(mac, holds) != Verdict::Refused {
            self.devices.get_mut(mac).expect("device").may_be_refused = false;
        }
    }

    /// The counts reports show.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (m, d) in &self.devices {
            match d.held {
                None => {
                    c.never_seen.insert(m.clone());
                }
                Some(g) if (g == OWN || g >= self.current()) && !d.refused => c.synced += 1,
                Some(g) if g != OWN && g < self.current() && self.accepts_old(d, g) => {
                    c.pending.insert(m.clone());
                }
                Some(_) => {
                    c.locked_out.insert(m.clone());
                }
            }
        }
        c
    }
}
