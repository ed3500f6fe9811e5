//! The serving side of provisioning: finding the account and device a request is for,
//! rendering its files with a cache, and recording the evidence of DESIGN §6.
//!
//! The cache holds, per MAC, the device, its profile, its provisioning state and the bytes
//! rendered for it. It is keyed on the configuration revision (a counter bumped by database
//! triggers on every change to served data, by any process), so a change made from the CLI
//! is served on the very next request. State changes this process makes (confirmations,
//! deliveries, first sightings) drop only the entry of the device concerned.
//!
//! Auto-Sync: the cache also holds each account's settings and credential history and its
//! service-address aliases. Which older credential generation a device may use is decided
//! by `autosync::accept_old` on facts read fresh from the database (that path runs only for
//! credentials that are not the current ones). What a device authenticated with, the address
//! it used and its family are written synchronously when they change: they are the evidence
//! that a credential or address change reached it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::account::{Account, AccountId, UnknownDevices};
use super::accounts::{self as account_actions, AccountSync};
use super::audit::{self, Actor, Change};
use super::autosync;
use super::device::Device;
use super::enrolment::Access;
use super::mac::Mac;
use super::policy::{self, CredentialLayer, Layers};
use super::polycom::models::Family;
use super::polycom::render::DeviceView;
use super::profile::Profile;
use super::provstate::{self, Evidence, ParamState, PhoneTrust, Reach};
use super::sha256_hex;
use super::sightings::Sightings;
use super::variables::{self, Context, Subject};
use crate::db::credentials::{self, DeviceSync};
use crate::db::enrolment::{self as enrolment_q, DeviceCredential};
use crate::db::groupwrite::GroupWriter;
use crate::db::{self, Pool, accounts, devices, profiles};
use crate::error::Result;

/// Cached entries beyond this are dropped wholesale (a cache for the working set, not a copy
/// of a million-device database).
const CACHE_MAX: usize = 200_000;
/// Connections watching for commits by others (`PRAGMA data_version`), each behind its own
/// lock; a handful is enough for the threads that serve at once on a small appliance.
const WATCHERS: usize = 8;

/// Bytes rendered for a device, with the ETag phones and caches use.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Arc<Vec<u8>>,
    pub etag: Arc<str>,
}

impl Rendered {
    pub fn new(bytes: Vec<u8>) -> Rendered {
        let etag = format!("\"{}\"", &sha256_hex(&bytes)[..32]);
        Rendered {
            bytes: Arc::new(bytes),
            etag: etag.into(),
        }
    }
}

/// Which rendered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Master,
    Generated,
    Profile(usize),
}

/// A device as served: everything needed to render its files.
pub struct DeviceEntry {
    pub device: Device,
    /// Shared by every device of the profile (its files can be large).
    pub profile: Option<Arc<Profile>>,
    pub state: BTreeMap<String, ParamState>,
    /// What the device is known to hold (credential generation, address, family).
    pub sync: DeviceSync,
    /// Auto-Sync and the policies that apply to the device.
    pub layers: Layers,
    /// The model the device reported when the entry was loaded (for `${FIRMWARE}`), or
    /// empty.
    pub model: String,
    /// The device's own credential (accounts that withhold secrets), if it has one.
    pub credential: Option<DeviceCredential>,
    /// Until when an enrolment window covering the device stays open (seconds), if one
    /// was open when the entry was loaded (windows bump the configuration revision).
    pub window_until: Option<i64>,
    /// Files rendered so far, per file, address and access (a phone uses one address, so
    /// the list stays short and is searched without cloning the key).
    rendered: Mutex<Vec<(FileKind, Reach, Access, RenderedFile)>>,
    /// Per address and access: whether any platform change is pending (if not, requests
    /// carry no evidence worth evaluating).
    pending: Mutex<Vec<(Reach, Access, bool)>>,
}

/// Rendered bytes plus the pending platform values they deliver.
type RenderedFile = (Rendered, Vec<(String, String)>);

impl DeviceEntry {
    fn view<'a>(
        &'a self,
        account: &'a Account,
        reach: &'a Reach,
        trust: Option<&'a PhoneTrust>,
        layers: &'a Layers,
    ) -> Option<DeviceView<'a>> {
        Some(DeviceView {
            account,
            device: &self.device,
            profile: self.profile.as_ref()?,
            state: &self.state,
            reach,
            trust,
            layers,
        })
    }

    /// Whether an enrolment window covers the device now.
    pub fn window_open(&self) -> bool {
        self.window_until.is_some_and(|t| t > db::now_secs())
    }

    /// The layers for a request with `access`: the device's own credential is desired when
    /// the device proved itself or enrols; nothing of credentials when it did not.
    fn layers_for(&self, account: &Account, access: Access) -> Cow<'_, Layers> {
        let credentials = match (access, &self.credential) {
            (Access::Withheld, _) => CredentialLayer::Withheld,
            (_, Some(c)) if account.device_secrets => CredentialLayer::Device {
                user: self.device.mac.to_string(),
                password: c.password.clone(),
                family: self.sync.family.unwrap_or(Family::Vvx),
            },
            (Access::Enrol, None) => CredentialLayer::Withheld,
            _ => return Cow::Borrowed(&self.layers),
        };
        let mut layers = self.layers.clone();
        layers.credentials = credentials;
        Cow::Owned(layers)
    }
}

struct Cache {
    revision: i64,
    accounts: Arc<Vec<Account>>,
    /// Former service-address segments still answered, and their account.
    aliases: Arc<Vec<(String, AccountId)>>,
    /// Auto-Sync settings and credential history per account.
    sync: Arc<HashMap<AccountId, AccountSync>>,
    /// Provisioning settings and custom variables, loaded with the accounts.
    context: Arc<Context>,
    devices: HashMap<Mac, Option<Arc<DeviceEntry>>>,
    /// Profiles of cached devices, one copy each, cleared with `devices`.
    profiles: HashMap<i64, Arc<Profile>>,
}

/// Serves provisioning data to device handlers.
pub struct Provisioner {
    pool: Pool,
    cache: RwLock<Cache>,
    /// Several watchers, each with its own connection: requests take whichever is free, so
    /// the check every request makes is never a queue all requests wait in.
    watchers: Box<[Mutex<Watcher>]>,
    unassociated_cap: u32,
    /// MACs recorded as unassociated (`u64::MAX` until first counted; recounted when the
    /// configuration changes, e.g. after associations).
    unassociated: AtomicU64,
    /// First sightings waiting for the writer thread (`run_sighting_writer`).
    sightings: Sightings,
    /// The synchronous writes of device requests, committed in groups (`db::groupwrite`).
    writes: GroupWriter,
    trust: Option<PhoneTrust>,
}

/// A connection kept only to notice commits by other connections (`PRAGMA data_version`).
struct Watcher {
    conn: Option<rusqlite::Connection>,
    data_version: Option<i64>,
    revision: i64,
    /// When the last check started.
    checked_at: Option<std::time::Instant>,
}

/// The outcome of looking up a MAC.
pub enum Lookup {
    /// Associated with a profile.
    Associated(Arc<DeviceEntry>),
    /// Seen before but not associated.
    Seen(Arc<DeviceEntry>),
    Unknown,
}

impl Provisioner {
    pub fn new(pool: Pool, unassociated_cap: u32) -> Provisioner {
        let writes = GroupWriter::start(pool.path(), pool.busy_timeout());
        Provisioner {
            pool,
            cache: RwLock::new(Cache {
                revision: -1,
                accounts: Arc::new(Vec::new()),
                aliases: Arc::new(Vec::new()),
                sync: Arc::new(HashMap::new()),
                context: Arc::new(Context::default()),
                devices: HashMap::new(),
                profiles: HashMap::new(),
            }),
            watchers: (0..WATCHERS)
                .map(|_| {
                    Mutex::new(Watcher {
                        conn: None,
                        data_version: None,
                        revision: -1,
                        checked_at: None,
                    })
                })
                .collect(),
            unassociated_cap,
            unassociated: AtomicU64::new(u64::MAX),
            sightings: Sightings::default(),
            writes,
            trust: None,
        }
    }

    /// Delivers `trust` (the local CA) to phones through the desired/confirmed mechanism.
    pub fn with_trust(mut self, trust: Option<PhoneTrust>) -> Provisioner {
        self.trust = trust;
        self
    }

    /// The CA delivered to phones, if delivery is on.
    pub fn trust(&self) -> Option<&PhoneTrust> {
        self.trust.as_ref()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Brings the cache up to the database's revision and returns the accounts.
    ///
    /// The revision is read only when SQLite's `data_version` on a dedicated connection says
    /// another connection committed something since the last check: exact (no window in which
    /// a committed change is not served) and cheap on the hot path.
    pub fn accounts(&self) -> Result<Arc<Vec<Account>>> {
        let arrived = std::time::Instant::now();
        let revision = {
            let mut w = self.free_watcher();
            // A check that started after this request arrived saw every commit made before
            // it: under a storm, requests waiting on the lock share one check.
            if w.checked_at.is_some_and(|t| t >= arrived) {
                let revision = w.revision;
                drop(w);
                return self.cached_accounts(revision);
            }
            let started = std::time::Instant::now();
            if w.conn.is_none() {
                w.conn = Some(db::open(
                    self.pool.path(),
                    std::time::Duration::from_secs(5),
                )?);
            }
            let conn = w.conn.as_ref().expect("opened above");
            let version: i64 = conn
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))?;
            if w.data_version != Some(version) {
                w.revision = accounts::config_revision(conn)?;
                w.data_version = Some(version);
            }
            w.checked_at = Some(started);
            w.revision
        };
        self.cached_accounts(revision)
    }

    /// A watcher nobody is using, or this thread's usual one when all are busy (then the
    /// check it waits for may cover this request too).
    fn free_watcher(&self) -> std::sync::MutexGuard<'_, Watcher> {
        thread_local! {
            static HOME: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = self.watchers.len();
        let home = HOME.with(|h| {
            if h.get() == usize::MAX {
                h.set(NEXT.fetch_add(1, Ordering::Relaxed));
            }
            h.get()
        }) % n;
        for k in 0..n {
            match self.watchers[(home + k) % n].try_lock() {
                Ok(w) => return w,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.watchers[home]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The accounts at `revision` or later, reloaded (with everything cached beside them)
    /// if the cache holds an older one. Revisions only grow: a request whose check saw an
    /// older revision than the cache holds gets the newer data, never an older reload.
    fn cached_accounts(&self, revision: i64) -> Result<Arc<Vec<Account>>> {
        {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if c.revision >= revision {
                return Ok(c.accounts.clone());
            }
        }
        let (list, aliases, sync, context) = {
            let conn = self.pool.get()?;
            let list = accounts::list_accounts(&conn)?;
            let aliases = credentials::list_aliases(&conn, None)?
                .into_iter()
                .filter(|a| a.retired_at.is_none())
                .map(|a| (a.segment, AccountId(a.account_id)))
                .collect();
            let sync = account_actions::load_sync(&conn)?;
            let context = super::templating::load_context(&conn)?;
            (
                Arc::new(list),
                Arc::new(aliases),
                Arc::new(sync),
                Arc::new(context),
            )
        };
        let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if c.revision < revision {
            c.revision = revision;
            c.accounts = list;
            c.aliases = aliases;
            c.sync = sync;
            c.context = context;
            c.devices.clear();
            c.profiles.clear();
            self.unassociated.store(u64::MAX, Ordering::Relaxed);
        }
        Ok(c.accounts.clone())
    }

    /// An account's Auto-Sync settings and credential history, as cached.
    pub fn account_sync(&self, account: AccountId) -> Option<AccountSync> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sync
            .get(&account)
            .cloned()
    }

    /// The provisioning settings and custom variables, as fresh as the last `accounts()`.
    pub fn context(&self) -> Arc<Context> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .context
            .clone()
    }

    /// Finds the account a path is for: a first segment naming an account's service
    /// address, or a former one still kept as an alias, selects it (and is removed);
    /// otherwise the default account. Returns the account and the base path used.
    pub fn route(&self, segments: &mut Vec<String>) -> Result<Option<(Account, String)>> {
        let accounts = self.accounts()?;
        if let Some(first) = segments.first() {
            if let Some(a) = accounts.iter().find(|a| a.service_segment() == *first) {
                segments.remove(0);
                return Ok(Some((a.clone(), a.service_path())));
            }
            let aliases = self
                .cache
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .aliases
                .clone();
            if let Some((segment, id)) = aliases.iter().find(|(s, _)| s == first)
                && let Some(a) = accounts.iter().find(|a| a.id == *id)
            {
                let base = format!("/{segment}/");
                segments.remove(0);
                return Ok(Some((a.clone(), base)));
            }
        }
        Ok(accounts
            .iter()
            .find(|a| a.is_default)
            .map(|a| (a.clone(), "/".to_string())))
    }

    /// The older credential generations the device `mac` of `account` may authenticate
    /// with now (DESIGN §6), newest first: `(generation, user, password)`. Read fresh from the
    /// database; empty for devices of other accounts and accounts never rotated.
    pub fn old_credentials(
        &self,
        account: &Account,
        mac: &Mac,
    ) -> Result<Vec<(i64, String, String)>> {
        let Some(sync) = self.account_sync(account.id) else {
            return Ok(Vec::new());
        };
        if sync.history.generations.len() < 2 {
            return Ok(Vec::new());
        }
        let conn = self.pool.get()?;
        let Some(facts) = account_actions::device_facts(&conn, account, &sync.settings, mac)?
        else {
            return Ok(Vec::new());
        };
        let now = db::now_secs();
        Ok(
            autosync::acceptable(&sync.settings, &sync.history, &facts, now)
                .into_iter()
                .map(|g| (g.generation, g.user.clone(), g.password.clone()))
                .collect(),
        )
    }

    /// Looks a MAC up, from the cache or the database. The cache is as fresh as the last
    /// `accounts()`/`route()` call, which every request makes first.
    pub fn lookup(&self, mac: &Mac) -> Result<Lookup> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .devices
            .get(mac)
            .cloned();
        let entry = match cached {
            Some(e) => e,
            None => {
                let loaded = self.load(mac)?;
                let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
                if c.devices.len() >= CACHE_MAX {
                    c.devices.clear();
                }
                c.devices.insert(*mac, loaded.clone());
                loaded
            }
        };
        Ok(match entry {
            Some(e) if e.profile.is_some() => Lookup::Associated(e),
            Some(e) => Lookup::Seen(e),
            None => Lookup::Unknown,
        })
    }

    /// Profile `id`, one copy shared by every cached device that uses it. A copy read while
    /// the revision changed is not kept.
    fn shared_profile(&self, conn: &rusqlite::Connection, id: i64) -> Result<Option<Arc<Profile>>> {
        let revision = {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = c.profiles.get(&id) {
                return Ok(Some(p.clone()));
            }
            c.revision
        };
        let Some(profile) = profiles::find_profile_by_id(conn, id)? else {
            return Ok(None);
        };
        let profile = Arc::new(profile);
        let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if c.revision == revision {
            c.profiles.insert(id, profile.clone());
        }
        Ok(Some(profile))
    }

    fn load(&self, mac: &Mac) -> Result<Option<Arc<DeviceEntry>>> {
        let conn = self.pool.get()?;
        let Some(device) = devices::find_device_by_mac(&conn, mac)? else {
            return Ok(None);
        };
        let profile = match device.profile_id {
            Some(id) => self.shared_profile(&conn, id)?,
            None => None,
        };
        let state = devices::load_prov_state(&conn, device.id)?;
        let sync = credentials::find_sync(&conn, device.id)?.unwrap_or_default();
        let (account, settings) = {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            let id = AccountId(device.account_id);
            (
                c.accounts.iter().find(|a| a.id == id).cloned(),
                c.sync.get(&id).map(|s| s.settings),
            )
        };
        let layers = Layers {
            sync: match (&account, settings) {
                (Some(a), Some(s)) => account_actions::sync_target(
                    a,
                    &s,
                    &device,
                    profile.as_deref(),
                    &sync,
                    db::now_secs(),
                ),
                _ => None,
            },
            policies: if profile.is_some() {
                policy::device_policies(&conn, &device)?
            } else {
                Vec::new()
            },
            credentials: CredentialLayer::Account,
        };
        let model = devices::find_activity(&conn, device.id)?
            .map(|a| a.ua_model)
            .unwrap_or_default();
        let withholds = account.as_ref().is_some_and(|a| a.device_secrets);
        let (credential, window_until) = if withholds {
            let now = db::now_secs();
            (
                enrolment_q::find_device_credential(&conn, device.id)?,
                enrolment_q::list_open_windows(&conn, device.account_id, now)?
                    .into_iter()
                    .filter(|w| w.mac.as_deref().is_none_or(|m| m == device.mac.as_str()))
                    .map(|w| w.closes_at)
                    .max(),
            )
        } else {
            (None, None)
        };
        Ok(Some(Arc::new(DeviceEntry {
            device,
            profile,
            state,
            sync,
            layers,
            model,
            credential,
            window_until,
            rendered: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
        })))
    }

    /// Records what a request shows the device holds — the credential generation it
    /// authenticated with, the service address it used, its family — when that changed
    /// (synchronously: Auto-Sync and alias retirement depend on it). A device that moved
    /// off an alias retires the alias when it was the last one there. Returns the entry to
    /// serve from.
    fn note_sync(
        &self,
        account: &Account,
        entry: Arc<DeviceEntry>,
        ev: &Evidence<'_>,
    ) -> Result<Arc<DeviceEntry>> {
        let old = &entry.sync;
        let segment = ev.reach.base_path.trim_matches('/').to_string();
        let generation = ev.generation.or(old.generation);
        // The account row carries the current generation (kept with the history).
        let current = account.credential_generation;
        let new = DeviceSync {
            generation,
            generation_at: if generation != old.generation {
                Some(db::now_secs())
            } else {
                old.generation_at
            },
            base_segment: segment,
            family: ev.family.or(old.family),
            readmit: if generation == Some(current) {
                None
            } else {
                old.readmit
            },
        };
        if new == *old {
            return Ok(entry);
        }
        let left = (old.base_segment != new.base_segment && !old.base_segment.is_empty())
            .then(|| old.base_segment.clone());
        let (device_id, account_id, stored, was_readmitted) = (
            entry.device.id,
            account.id,
            new.clone(),
            old.readmit.is_some(),
        );
        let retired = self.writes.run(move |tx| {
            credentials::store_sync(tx, device_id, &stored)?;
            if stored.readmit.is_none() && was_readmitted {
                // A re-admission ends with the sync: other processes must see it.
                credentials::bump_revision(tx)?;
            }
            let Some(segment) = &left else {
                return Ok(None);
            };
            let is_alias = credentials::list_aliases(tx, Some(account_id))?
                .iter()
                .any(|a| &a.segment == segment && a.retired_at.is_none());
            if !is_alias || credentials::count_segment_holders(tx, segment)? > 0 {
                return Ok(None);
            }
            credentials::retire_alias(tx, segment)?;
            audit::record(
                tx,
                &Actor::system(),
                Change::new(Some(account_id.0), "account.retire-alias", segment.clone())
                    .before(serde_json::json!({"alias": segment}))
                    .after(serde_json::json!({"reason": "the last device using it moved to the current service address"})),
            )?;
            Ok(Some(segment.clone()))
        })?;
        if new.generation != old.generation {
            log::info!(
                "{}: authenticated with credential generation {} (was {})",
                entry.device.mac,
                new.generation.unwrap_or(0),
                old.generation.map_or("none".into(), |g| g.to_string())
            );
        }
        if let Some(segment) = retired {
            log::info!(
                "account {}: alias /{segment}/ retired: no device uses it any more",
                account.slug
            );
        }
        self.forget(&entry.device.mac);
        match self.lookup(&entry.device.mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => Ok(e),
            Lookup::Unknown => Ok(entry),
        }
    }

    /// Enrols a device: creates its own credential (synchronously: the password must be
    /// the same on every request until the device confirms it). Returns the entry to serve
    /// from.
    pub fn enrol(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        let id = entry.device.id;
        self.writes
            .run(move |c| super::enrolment::ensure_credential(c, id).map(|_| ()))?;
        self.reload(entry)
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

    fn reload(&self, entry: &Arc<DeviceEntry>) -> Result<Arc<DeviceEntry>> {
        self.forget(&entry.device.mac);
        match self.lookup(&entry.device.mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => Ok(e),
            Lookup::Unknown => Ok(entry.clone()),
        }
    }

    /// Drops one device's cached entry (after this process changed its state).
    pub fn forget(&self, mac: &Mac) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .devices
            .remove(mac);
    }

    /// Applies the evidence a request carries (DESIGN §6), writing confirmations at once.
    /// Returns the entry to serve from (reloaded if something was confirmed).
    pub fn observe(
        &self,
        account: &Account,
        entry: Arc<DeviceEntry>,
        ev: &Evidence<'_>,
        access: Access,
    ) -> Result<Arc<DeviceEntry>> {
        let entry = if entry.device.account_id == account.id.0 && ev.auth.is_some() {
            self.note_sync(account, entry, ev)?
        } else {
            entry
        };
        let layers = entry.layers_for(account, access);
        let Some(view) = entry.view(account, ev.reach, self.trust.as_ref(), &layers) else {
            return Ok(entry);
        };
        let known = entry
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(r, a, _)| r == ev.reach && *a == access)
            .map(|(_, _, p)| *p);
        if known == Some(false) {
            return Ok(entry);
        }
        let desired = view.desired();
        if known.is_none() {
            let any = !provstate::pending(&desired, &entry.state).is_empty();
            entry
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((ev.reach.clone(), access, any));
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
                .map(|(k, v)| format!("{k}={}", mask(k, v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.forget(&entry.device.mac);
        match self.lookup(&entry.device.mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => Ok(e),
            Lookup::Unknown => Ok(entry),
        }
    }

    /// Renders one of an associated device's files (cached). For the generated file, the
    /// pending platform values it carries are recorded as delivered.
    pub fn render(
        &self,
        account: &Account,
        entry: &Arc<DeviceEntry>,
        kind: FileKind,
        reach: &Reach,
        access: Access,
    ) -> Result<Option<Rendered>> {
        let hit = entry
            .rendered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, r, a, _)| *k == kind && r == reach && *a == access)
            .map(|(_, _, _, f)| f.clone());
        let (rendered, delivered) = match hit {
            Some(r) => r,
            None => {
                let layers = entry.layers_for(account, access);
                let Some(view) = entry.view(account, reach, self.trust.as_ref(), &layers) else {
                    return Ok(None);
                };
                let (bytes, delivered) = match kind {
                    FileKind::Master => (view.master_file(), Vec::new()),
                    FileKind::Generated => view.device_file(),
                    FileKind::Profile(i) => {
                        let context = self.context();
                        let vars = variables::for_device(
                            &context,
                            &Subject {
                                account,
                                device: &entry.device,
                                profile: view.profile,
                                reach,
                                model: &entry.model,
                            },
                        );
                        match view.profile_file_with(i, &vars) {
                            Some(b) if !view.profile.is_video_endpoint() => (b, Vec::new()),
                            _ => return Ok(None),
                        }
                    }
                };
                // Without proof, secrets stay out of the file (all but the device's own
                // credential when it enrols); the phone still boots on the rest.
                let bytes = if access.withholds() && kind != FileKind::Master {
                    let own = match &layers.credentials {
                        CredentialLayer::Device { password, .. } => Some(password.as_str()),
                        _ => None,
                    };
                    super::withhold::withhold_secrets(&bytes, own)
                } else {
                    bytes
                };
                let value = (Rendered::new(bytes), delivered);
                entry
                    .rendered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((kind, reach.clone(), access, value.clone()));
                value
            }
        };
        // Record deliveries only when they differ from what is stored, so a steady state
        // costs no writes.
        let new: Vec<(String, String)> = delivered
            .into_iter()
            .filter(|(k, v)| {
                entry.state.get(k).and_then(|s| s.delivered.as_deref()) != Some(v.as_str())
            })
            .collect();
        if !new.is_empty() {
            let id = entry.device.id;
            self.writes
                .run(move |c| devices::mark_delivered(c, id, &new))?;
            self.forget(&entry.device.mac);
        }
        Ok(Some(rendered))
    }

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

    fn write_sightings(&self, batch: &[(i64, Mac)]) -> Result<usize> {
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
            let input = super::device::DeviceInput {
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

/// A rendered file as text with the values of secret parameters masked, for pages that
/// show what a device receives. Not XML (or not UTF-8): shown as it is, since the renderer
/// writes only XML and profile files were checked for well-formed XML when stored.
pub fn mask_file(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return text;
    };
    let mut ranges: Vec<std::ops::Range<usize>> = doc
        .descendants()
        .flat_map(|n| n.attributes())
        .filter(|a| super::polycom::params::is_secret(a.name()) && !a.value().is_empty())
        .map(|a| a.range_value())
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.clone();
    for r in ranges {
        if r.start <= r.end && r.end <= out.len() {
            out.replace_range(r, "********");
        }
    }
    out
}

/// Masks secret values for logs and pages.
pub fn mask(param: &str, value: &str) -> String {
    if super::polycom::params::is_secret(param) && !value.is_empty() {
        "********".into()
    } else {
        value.to_string()
    }
}
