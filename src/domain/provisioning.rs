//! The serving side of provisioning: finding the account and device a request is for,
//! rendering its files with a cache, and recording the evidence of DESIGN §6.
//!
//! The cache holds, per MAC, the device, its profile, its provisioning state and the bytes
//! rendered for it. It is keyed on the configuration revision (a counter bumped by database
//! triggers on every change to served data, by any process), so a change made from the CLI
//! is served on the very next request. State changes this process makes (confirmations,
//! deliveries, first sightings) drop only the entry of the device concerned.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use super::account::{Account, UnknownDevices};
use super::device::Device;
use super::mac::Mac;
use super::polycom::render::DeviceView;
use super::profile::Profile;
use super::provstate::{self, Evidence, ParamState, PhoneTrust, Reach};
use super::sha256_hex;
use super::variables::{self, Context, Subject};
use crate::db::{self, Pool, accounts, devices, profiles};
use crate::error::Result;

/// Cached entries beyond this are dropped wholesale (a cache for the working set, not a copy
/// of a million-device database).
const CACHE_MAX: usize = 200_000;

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
    pub profile: Option<Profile>,
    pub state: BTreeMap<String, ParamState>,
    /// The model the device reported when the entry was loaded (for `${FIRMWARE}`), or
    /// empty.
    pub model: String,
    /// Files rendered so far, per file and address (a phone uses one address, so the list
    /// stays short and is searched without cloning the key).
    rendered: Mutex<Vec<(FileKind, Reach, RenderedFile)>>,
    /// Per address: whether any platform change is pending (if not, requests carry no
    /// evidence worth evaluating).
    pending: Mutex<Vec<(Reach, bool)>>,
}

/// Rendered bytes plus the pending platform values they deliver.
type RenderedFile = (Rendered, Vec<(String, String)>);

impl DeviceEntry {
    fn view<'a>(
        &'a self,
        account: &'a Account,
        reach: &'a Reach,
        trust: Option<&'a PhoneTrust>,
    ) -> Option<DeviceView<'a>> {
        Some(DeviceView {
            account,
            device: &self.device,
            profile: self.profile.as_ref()?,
            state: &self.state,
            reach,
            trust,
        })
    }
}

struct Cache {
    revision: i64,
    accounts: Arc<Vec<Account>>,
    /// Provisioning settings and custom variables, loaded with the accounts.
    context: Arc<Context>,
    devices: HashMap<Mac, Option<Arc<DeviceEntry>>>,
}

/// Serves provisioning data to device handlers.
pub struct Provisioner {
    pool: Pool,
    cache: RwLock<Cache>,
    watcher: Mutex<Watcher>,
    unassociated_cap: u32,
    trust: Option<PhoneTrust>,
}

/// A connection kept only to notice commits by other connections (`PRAGMA data_version`).
struct Watcher {
    conn: Option<rusqlite::Connection>,
    data_version: Option<i64>,
    revision: i64,
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
        Provisioner {
            pool,
            cache: RwLock::new(Cache {
                revision: -1,
                accounts: Arc::new(Vec::new()),
                context: Arc::new(Context::default()),
                devices: HashMap::new(),
            }),
            watcher: Mutex::new(Watcher {
                conn: None,
                data_version: None,
                revision: -1,
            }),
            unassociated_cap,
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
        let revision = {
            let mut w = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
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
            w.revision
        };
        {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if c.revision == revision {
                return Ok(c.accounts.clone());
            }
        }
        let (list, context) = {
            let conn = self.pool.get()?;
            (
                Arc::new(accounts::list_accounts(&conn)?),
                Arc::new(super::templating::load_context(&conn)?),
            )
        };
        let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if c.revision != revision {
            c.revision = revision;
            c.accounts = list;
            c.context = context;
            c.devices.clear();
        }
        Ok(c.accounts.clone())
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
    /// address selects it (and is removed); otherwise the default account.
    pub fn route(&self, segments: &mut Vec<String>) -> Result<Option<(Account, String)>> {
        let accounts = self.accounts()?;
        if let Some(first) = segments.first()
            && let Some(a) = accounts.iter().find(|a| a.service_segment() == *first)
        {
            segments.remove(0);
            return Ok(Some((a.clone(), a.service_path())));
        }
        Ok(accounts
            .iter()
            .find(|a| a.is_default)
            .map(|a| (a.clone(), "/".to_string())))
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

    fn load(&self, mac: &Mac) -> Result<Option<Arc<DeviceEntry>>> {
        let conn = self.pool.get()?;
        let Some(device) = devices::find_device_by_mac(&conn, mac)? else {
            return Ok(None);
        };
        let profile = match device.profile_id {
            Some(id) => profiles::find_profile_by_id(&conn, id)?,
            None => None,
        };
        let state = devices::load_prov_state(&conn, device.id)?;
        let model = devices::find_activity(&conn, device.id)?
            .map(|a| a.ua_model)
            .unwrap_or_default();
        Ok(Some(Arc::new(DeviceEntry {
            device,
            profile,
            state,
            model,
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

    /// Applies the evidence a request carries (DESIGN §6), writing confirmations at once.
    /// Returns the entry to serve from (reloaded if something was confirmed).
    pub fn observe(
        &self,
        account: &Account,
        entry: Arc<DeviceEntry>,
        ev: &Evidence<'_>,
    ) -> Result<Arc<DeviceEntry>> {
        let Some(view) = entry.view(account, ev.reach, self.trust.as_ref()) else {
            return Ok(entry);
        };
        let known = entry
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(r, _)| r == ev.reach)
            .map(|(_, p)| *p);
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
                .push((ev.reach.clone(), any));
            if !any {
                return Ok(entry);
            }
        }
        let confirmed = provstate::confirmations(&desired, &entry.state, ev);
        if confirmed.is_empty() {
            return Ok(entry);
        }
        {
            let conn = self.pool.get()?;
            devices::confirm(&conn, entry.device.id, &confirmed)?;
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
    ) -> Result<Option<Rendered>> {
        let hit = entry
            .rendered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, r, _)| *k == kind && r == reach)
            .map(|(_, _, f)| f.clone());
        let (rendered, delivered) = match hit {
            Some(r) => r,
            None => {
                let Some(view) = entry.view(account, reach, self.trust.as_ref()) else {
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
                let value = (Rendered::new(bytes), delivered);
                entry
                    .rendered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((kind, reach.clone(), value.clone()));
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
            let conn = self.pool.get()?;
            devices::mark_delivered(&conn, entry.device.id, &new)?;
            drop(conn);
            self.forget(&entry.device.mac);
        }
        Ok(Some(rendered))
    }

    /// Records a MAC seen without association (stage policy). Synchronous: it is a state
    /// change. Returns whether it was recorded.
    pub fn record_unassociated(&self, account: &Account, mac: &Mac) -> Result<bool> {
        let conn = self.pool.get()?;
        let added = devices::insert_unassociated(&conn, account.id.0, mac, self.unassociated_cap)?;
        drop(conn);
        if added {
            self.forget(mac);
            log::info!(
                "{mac}: first seen, not associated (account {})",
                account.slug
            );
        }
        Ok(added)
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

/// Masks secret values for logs and pages.
pub fn mask(param: &str, value: &str) -> String {
    if super::polycom::params::is_secret(param) && !value.is_empty() {
        "********".into()
    } else {
        value.to_string()
    }
}
