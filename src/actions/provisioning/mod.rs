//! The serving side of provisioning: finding the account and device a request is for,
//! rendering its files with a cache, and recording the evidence of docs/design.md §6.
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

mod evidence;
mod unknown;

pub use self::evidence::Noted;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::accounts::{self as account_actions, AccountSync};
use super::render::DeviceData;
use super::sightings::Sightings;
use crate::db::credentials::{self, DeviceSync};
use crate::db::enrolment::{self as enrolment_q};
use crate::db::groupwrite::GroupWriter;
use crate::db::{self, Pool, accounts, devices, profiles};
use crate::domain::account::{Account, AccountId, UnknownDevices};
use crate::domain::audit::{Actor, Change};
use crate::domain::autosync;
use crate::domain::enrolment::Access;
use crate::domain::mac::Mac;
use crate::domain::machine::{self, Candidate};
use crate::domain::profile::Profile;
use crate::domain::provstate::{self, Evidence, PhoneTrust, Reach};
use crate::domain::regress::{self, Defect};
use crate::domain::sha256_hex;
use crate::domain::variables::Context;
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

pub use super::render::FileKind;

/// A device as served: everything needed to render its files (`render::DeviceData`), and
/// what was rendered from it so far.
pub struct DeviceEntry {
    pub data: DeviceData,
    /// Files rendered so far, per file, address, access and credentials carried (a phone
    /// uses one address and one credential, so the list stays short and is searched without
    /// cloning the key).
    rendered: Mutex<Vec<RenderedFor>>,
    /// Per address, access and credentials: whether any platform change is pending (if not,
    /// requests carry no evidence worth evaluating).
    pending: Mutex<Vec<(Reach, Access, u64, bool)>>,
}

impl std::ops::Deref for DeviceEntry {
    type Target = DeviceData;

    fn deref(&self) -> &DeviceData {
        &self.data
    }
}

/// The credentials a request carried, as rendering sees them: a credential change is pending
/// for the request when they differ from the desired ones.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

impl Held<'_> {
    /// A key for the caches: requests with the same credentials share renderings.
    fn key(held: Option<Held<'_>>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        held.map(|h| (h.user, h.password)).hash(&mut h);
        h.finish()
    }

    fn pair(held: Option<Held<'_>>) -> Option<(&str, &str)> {
        held.map(|h| (h.user, h.password))
    }
}

/// A rendered file with what it was rendered for: file, address, access, credentials.
type RenderedFor = (FileKind, Reach, Access, u64, RenderedFile);

/// Rendered bytes plus the pending platform values they deliver.
type RenderedFile = (Rendered, Vec<(String, String)>);

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
    /// After-enrolment claims written lately (`claim`).
    claims: RecentClaims,
    /// Proven addresses written lately (`note_proven_address`).
    proven: ProvenAddresses,
}

/// The proven address last written for each device and when: a device proving itself from
/// the same address is written again only every `PROVEN_REFRESH` (its time stays current
/// without a write per request); a new address is written at once.
#[derive(Default)]
pub(super) struct ProvenAddresses(Mutex<HashMap<i64, (std::net::IpAddr, std::time::Instant)>>);

/// How often a device proving itself from the same address has its time written again.
pub const PROVEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

impl ProvenAddresses {
    /// Whether `(device, ip)` must be written now (and notes it as written).
    pub(super) fn must_write(&self, device_id: i64, ip: std::net::IpAddr) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 200_000 {
            m.clear();
        }
        match m.get(&device_id) {
            Some((seen, t)) if *seen == ip && t.elapsed() < PROVEN_REFRESH => false,
            _ => {
                m.insert(device_id, (ip, std::time::Instant::now()));
                true
            }
        }
    }

    /// Forgets a device (its write failed: try again on its next request).
    pub(super) fn forget(&self, device_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&device_id);
    }
}

/// Claims written in the last minute, so a client repeating one is not written each time.
#[derive(Default)]
pub(super) struct RecentClaims(Mutex<HashMap<(Mac, String, String), std::time::Instant>>);

impl RecentClaims {
    /// Whether this claim was not written within the last minute (and notes it now).
    pub(super) fn first_in_a_while(&self, mac: Mac, address: &str, ua: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let minute = std::time::Duration::from_secs(60);
        if m.len() > 10_000 {
            m.retain(|_, t| t.elapsed() < minute);
        }
        let key = (mac, address.to_string(), ua.to_string());
        match m.get(&key) {
            Some(t) if t.elapsed() < minute => false,
            _ => {
                m.insert(key, std::time::Instant::now());
                true
            }
        }
    }
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
            claims: RecentClaims::default(),
            proven: ProvenAddresses::default(),
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

    /// Every credential other than the account's current one that a request for `account`
    /// naming `mac` (or naming no device) may present, each with the state machine's verdict
    /// (`domain::machine::candidates`): older generations and the device's own credentials.
    /// Read fresh from the database: only requests that do not use the current generation
    /// come here.
    pub fn candidates(&self, account: &Account, mac: Option<&Mac>) -> Result<Vec<Candidate>> {
        let Some(sync) = self.account_sync(account.id) else {
            return Ok(Vec::new());
        };
        let now = db::now_secs();
        let entry = match mac {
            Some(m) => match self.lookup(m)? {
                Lookup::Associated(e) | Lookup::Seen(e) if e.device.account_id == account.id.0 => {
                    Some(e)
                }
                _ => None,
            },
            None => None,
        };
        let facts = match (&entry, mac) {
            (Some(e), Some(m)) if e.profile.is_some() => {
                let conn = self.pool.get()?;
                account_actions::device_facts(&conn, account, &sync.settings, m)?
            }
            _ => None,
        };
        let named = match (&entry, &facts, mac) {
            (Some(e), Some(f), Some(m)) => Some(machine::Named {
                facts: f,
                credential: e.credential.as_ref(),
                mac: m.as_str(),
            }),
            // A device seen but not associated may still hold its own credential (it was
            // associated before): its own credential is still its own.
            (Some(e), None, Some(m)) if e.credential.is_some() => {
                return Ok(machine::candidates(
                    &sync.settings,
                    &sync.history,
                    Some(&machine::Named {
                        facts: &unassociated_facts(),
                        credential: e.credential.as_ref(),
                        mac: m.as_str(),
                    }),
                    now,
                ));
            }
            _ => None,
        };
        let mut out = machine::candidates(&sync.settings, &sync.history, named.as_ref(), now);
        if regress::on(Defect::OwnNeedsMode) && !account.device_secrets {
            out.retain(|c| c.generation != machine::OWN_CREDENTIAL);
        }
        Ok(out)
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
        let (account, settings) = {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            let id = AccountId(device.account_id);
            (
                c.accounts.iter().find(|a| a.id == id).cloned(),
                c.sync.get(&id).map(|s| s.settings),
            )
        };
        let data = DeviceData::load(&conn, device, account.as_ref(), settings.as_ref(), profile)?;
        Ok(Some(Arc::new(DeviceEntry {
            data,
            rendered: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
        })))
    }

    /// Drops one device's cached entry (after this process changed its state).
    pub fn forget(&self, mac: &Mac) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .devices
            .remove(mac);
    }

    /// Renders one of an associated device's files (cached) for a request carrying `held`.
    /// For the generated file, the pending platform values it carries are recorded as
    /// delivered (synchronously, before the response leaves: I8) — credentials never (they
    /// are judged by each request; a delivery of the device's own password is counted on its
    /// credential instead).
    pub fn render(
        &self,
        account: &Account,
        entry: &Arc<DeviceEntry>,
        kind: FileKind,
        reach: &Reach,
        access: Access,
        held: Option<Held<'_>>,
    ) -> Result<Option<Rendered>> {
        let key = Held::key(held);
        let hit = entry
            .rendered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, r, a, h, _)| *k == kind && r == reach && *a == access && *h == key)
            .map(|(_, _, _, _, f)| f.clone());
        let (rendered, delivered) = match hit {
            Some(r) => r,
            None => {
                let context = self.context();
                let Some((bytes, delivered)) = entry.render(
                    account,
                    kind,
                    reach,
                    access,
                    Held::pair(held),
                    self.trust.as_ref(),
                    &context,
                ) else {
                    return Ok(None);
                };
                let value = (Rendered::new(bytes), delivered);
                entry
                    .rendered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((kind, reach.clone(), access, key, value.clone()));
                value
            }
        };
        if delivered.is_empty() {
            return Ok(Some(rendered));
        }
        let own = entry.credential.as_ref().is_some_and(|c| {
            delivered
                .iter()
                .any(|(k, v)| provstate::is_credential(k) && *v == c.password)
        });
        let values: Vec<(String, String)> = delivered
            .into_iter()
            .filter(|(k, _)| !provstate::is_credential(k))
            .collect();
        let id = entry.device.id;
        let gave_up = self.writes.run(move |c| {
            if own {
                enrolment_q::note_credential_delivered(c, id)?;
            }
            devices::mark_delivered(c, id, &values, machine::GIVE_UP_AFTER)
        })?;
        for param in gave_up {
            log::warn!(
                "{}: {param} delivered {} times and never seen applied: given up (reported)",
                entry.device.mac,
                machine::GIVE_UP_AFTER
            );
        }
        self.forget(&entry.device.mac);
        Ok(Some(rendered))
    }
}

/// The facts of a device no longer associated: no account generation may name it.
fn unassociated_facts() -> autosync::DeviceFacts {
    autosync::DeviceFacts {
        held: None,
        held_at: None,
        last_seen: None,
        associated_at: None,
        floor: None,
        last_refused: false,
        eligible: Err(autosync::Ineligible::NotAssociated),
        readmit: None,
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
        .filter(|a| crate::domain::polycom::params::is_secret(a.name()) && !a.value().is_empty())
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
    if crate::domain::polycom::params::is_secret(param) && !value.is_empty() {
        "********".into()
    } else {
        value.to_string()
    }
}
