//! The device endpoints: what phones call (DESIGN §4).
//!
//! Order of checks for every request: method, path (strictly decoded; traversal refused),
//! account (by service address), file name, client certificate (a verified device
//! certificate that names a MAC may only fetch that MAC's files: 403 and a warning
//! otherwise), account enabled, credentials, then the file. Over plain HTTP in
//! `no-secrets` mode, files that carry secrets are refused with 403.
//! Uploads are authenticated in `plan`, before their body is read, and arrive here as a
//! temporary file the loop streamed to disk; they are moved into place with a rename, so a
//! stored file is always complete. Every request is recorded without waiting.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rouille::{Request, Response, ResponseBody};

use super::auth::{DEVICE_CREDENTIAL, DeviceAuth, Outcome};
use super::conn::{self, BodyPlan, Head, LoopLimits, Peer, Service};
use super::readers::MacReaders;
use crate::config::HttpMode;
use crate::db::access::{AccessRecord, UploadNote};
use crate::domain::account::{Account, UnknownDevices};
use crate::domain::devicepath::{self, DeviceFile, UploadKind};
use crate::domain::enrolment::{self, Access, Proof};
use crate::domain::firmware::{self, Image};
use crate::domain::mac::Mac;
use crate::domain::polycom::render;
use crate::domain::provisioning::{DeviceEntry, FileKind, Lookup, Provisioner, Rendered};
use crate::domain::provstate::{Evidence, Reach};
use crate::domain::uploads::UploadLedger;
use crate::domain::useragent::{self, UserAgent};
use crate::http::admission::{self, Gate};
use crate::metrics::{Metrics, Route};
use crate::recorder::Recorder;
use crate::tls::inspect::{CLIENT_CERT_HEADER, ClientIdentity, MacClaim};

/// How long a MAC stays bound to the IP of its last authenticated request, for recording
/// requests that name no MAC (firmware, shared assets).
const IP_BINDING: Duration = Duration::from_secs(300);
/// Most bytes of body accepted on a request that is not an upload.
const NON_UPLOAD_BODY: usize = 64 * 1024;

/// Directories of the data dir the device endpoints use.
#[derive(Debug, Clone)]
pub struct DataDirs {
    pub firmware: PathBuf,
    pub uploads: PathBuf,
    pub assets: PathBuf,
    /// Where uploads are streamed before being moved into place (same file system).
    pub incoming: PathBuf,
    /// Where firmware uploads to the admin listener are streamed before being unpacked.
    pub firmware_incoming: PathBuf,
}

impl DataDirs {
    pub fn under(data_dir: &Path) -> DataDirs {
        DataDirs {
            firmware: data_dir.join("firmware"),
            uploads: data_dir.join("uploads"),
            assets: data_dir.join("assets"),
            incoming: data_dir.join("uploads").join(".incoming"),
            firmware_incoming: data_dir.join("firmware").join(".incoming"),
        }
    }

    /// Where a device's upload is stored.
    pub fn upload_path(&self, mac: &Mac, kind: UploadKind, name: &str) -> PathBuf {
        self.upload_dir(mac, kind).join(name)
    }

    /// The directory a device's uploads of one kind are stored in.
    pub fn upload_dir(&self, mac: &Mac, kind: UploadKind) -> PathBuf {
        self.uploads.join(mac.as_str()).join(kind.dir())
    }
}

/// Records in the access log that a request was served without secrets, or enrolled.
fn note_access(meta: &mut Meta, access: Access) {
    if meta.auth == "ok" && access != Access::Full {
        meta.auth = access.label();
    }
}

/// The device listener's service.
pub struct DeviceService {
    pub prov: Arc<Provisioner>,
    pub auth: Arc<DeviceAuth>,
    pub recorder: Recorder,
    pub dirs: DataDirs,
    pub upload_bytes: u64,
    pub device_quota: u64,
    ledger: UploadLedger,
    pub metrics: Arc<Metrics>,
    /// What plain HTTP may serve.
    pub http_mode: HttpMode,
    /// Requests refused because a device certificate named another MAC.
    pub cert_mismatches: AtomicU64,
    /// Clients reading many MACs' files.
    pub readers: MacReaders,
    /// Caps on firmware downloads and uploads running at once, and the Retry-After base
    /// of a refusal (`admission`).
    firmware_gate: Arc<Gate>,
    upload_gate: Arc<Gate>,
    busy_retry_after: u64,
    /// The device each address last proved to be with its own credential (its firmware
    /// requests from that address count as the device's).
    ip_macs: Mutex<HashMap<IpAddr, (Mac, Instant)>>,
}

/// What a handled request contributes to its access-log row.
#[derive(Default)]
struct Meta {
    account_id: Option<i64>,
    mac: Option<Mac>,
    auth: &'static str,
    bytes: u64,
    sync: bool,
    route: Option<Route>,
    upload: Option<UploadNote>,
}

/// The parts of a request every branch needs.
struct Ctx<'a> {
    method: &'a str,
    account: Account,
    reach: Reach,
    ua: Option<&'a UserAgent>,
    auth: Outcome,
    if_none_match: Option<&'a str>,
    /// The MAC a verified client certificate names, if any.
    cert_mac: Option<Mac>,
}

impl Ctx<'_> {
    /// How this request proved it is `mac` (for per-device secrets).
    fn proof(&self, mac: &Mac) -> Proof {
        Proof {
            device_credential: self.auth.is_device_credential()
                && matches!(&self.auth, Outcome::Ok { user, .. } if user == mac.as_str()),
            certificate: self.cert_mac == Some(*mac),
        }
    }
}

impl DeviceService {
    pub fn new(
        prov: Arc<Provisioner>,
        auth: Arc<DeviceAuth>,
        recorder: Recorder,
        dirs: DataDirs,
        upload_bytes: u64,
        device_quota: u64,
        metrics: Arc<Metrics>,
    ) -> DeviceService {
        DeviceService {
            prov,
            auth,
            recorder,
            dirs,
            upload_bytes,
            device_quota,
            metrics,
            http_mode: HttpMode::Full,
            cert_mismatches: AtomicU64::new(0),
            readers: MacReaders::new(u32::MAX, Duration::from_secs(600), Vec::new()),
            ip_macs: Mutex::new(HashMap::new()),
            ledger: UploadLedger::default(),
            firmware_gate: Gate::new(usize::MAX),
            upload_gate: Gate::new(usize::MAX),
            busy_retry_after: 30,
        }
    }

    /// Caps firmware downloads and uploads running at once (503 with Retry-After over the
    /// cap, `retry_after` to twice that).
    pub fn with_admission(
        mut self,
        firmware: usize,
        uploads: usize,
        retry_after: u64,
    ) -> DeviceService {
        self.firmware_gate = Gate::new(firmware);
        self.upload_gate = Gate::new(uploads);
        self.busy_retry_after = retry_after;
        self.metrics.set_gates(vec![
            ("firmware", self.firmware_gate.clone()),
            ("upload", self.upload_gate.clone()),
        ]);
        self
    }

    /// The answer to a firmware download or upload over its cap.
    fn busy(&self, what: &str) -> Response {
        let mut r = text(503, &format!("too many {what} at once; try again later"));
        let secs = admission::retry_after(self.busy_retry_after);
        r.headers
            .push(("Retry-After".into(), secs.to_string().into()));
        r
    }

    /// Limits how many MACs' files one client may read without proving it is the device.
    pub fn with_mac_readers(mut self, readers: MacReaders) -> DeviceService {
        self.readers = readers;
        self
    }

    /// Sets what plain HTTP may serve.
    pub fn with_http_mode(mut self, mode: HttpMode) -> DeviceService {
        self.http_mode = mode;
        self
    }

    /// The MAC a verified client certificate binds the connection to, and whether it
    /// allows a request for `mac`'s files (`None`: no certificate, or one without a MAC).
    /// Refusals are counted and logged.
    fn cert_refuses(&self, identity: Option<&str>, mac: Option<Mac>, ip: IpAddr) -> bool {
        let Some(id) = identity.and_then(ClientIdentity::from_header) else {
            return false;
        };
        let refused = match (id.mac, mac) {
            (MacClaim::None, _) | (_, None) => false,
            (MacClaim::One(own), Some(m)) => own != m,
            (MacClaim::Ambiguous, Some(_)) => true,
        };
        if refused {
            self.cert_mismatches.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "{ip}: client certificate `{}` (SHA-256 {}) asked for the files of {}: refused",
                id.subject,
                id.sha256,
                mac.map(|m| m.to_string()).unwrap_or_default()
            );
        }
        refused
    }

    /// Whether plain HTTP must not carry this response body (no-secrets mode).
    fn withheld_over_http(&self, ctx: &Ctx<'_>, bytes: &[u8]) -> bool {
        !ctx.reach.secure && self.http_mode == HttpMode::NoSecrets && carries_secrets(bytes)
    }

    /// Decodes the path and finds the account and the file it names.
    fn resolve(&self, raw_path: &str) -> Result<(Account, String, DeviceFile), Response> {
        let mut segs = devicepath::segments(raw_path)
            .map_err(|devicepath::PathError::Invalid(why)| text(400, why))?;
        let routed = self.prov.route(&mut segs).map_err(|e| internal(&e))?;
        let Some((account, base)) = routed else {
            return Err(text(404, "no such account"));
        };
        let file = devicepath::classify(&segs).ok_or_else(|| text(404, "not found"))?;
        Ok((account, base, file))
    }

    fn challenge(&self, secure: bool, stale: bool) -> Response {
        let mut r = text(401, "authentication required");
        for c in self.auth.challenges(secure, stale) {
            r.headers.push(("WWW-Authenticate".into(), c.into()));
        }
        r
    }

    /// The response for a request whose credentials are not valid, if any.
    fn auth_failure(&self, outcome: &Outcome, secure: bool) -> Option<Response> {
        match outcome {
            Outcome::Ok { .. } => None,
            Outcome::Missing | Outcome::Bad => Some(self.challenge(secure, false)),
            Outcome::Stale => Some(self.challenge(secure, true)),
            Outcome::Throttled(secs) => {
                let mut r = text(429, "too many wrong credentials from this address");
                r.headers
                    .push(("Retry-After".into(), secs.to_string().into()));
                Some(r)
            }
        }
    }

    /// The other credentials the device a request names may use (its path's MAC, else the
    /// User-Agent's serial tag): its own credential (current, then the one before a
    /// rotation) in accounts that withhold secrets, then the older generations Auto-Sync
    /// accepts. None for requests naming no device.
    fn older_credentials(
        &self,
        account: &Account,
        mac: Option<Mac>,
        ip: IpAddr,
    ) -> Vec<(i64, String, String)> {
        let mut out = Vec::new();
        // A request naming no device (firmware without the serial tag) may still come from
        // a device that proved itself at this address a moment ago.
        let own = mac.or_else(|| self.bound_mac(ip));
        if account.device_secrets
            && let Some(own) = own
        {
            match self.prov.lookup(&own) {
                Ok(Lookup::Associated(e) | Lookup::Seen(e))
                    if e.device.account_id == account.id.0 =>
                {
                    if let Some(c) = &e.credential {
                        out.push((DEVICE_CREDENTIAL, own.to_string(), c.password.clone()));
                        if let Some(p) = &c.previous {
                            out.push((DEVICE_CREDENTIAL, own.to_string(), p.clone()));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => log::error!("{own}: cannot read its credential: {e}"),
            }
        }
        let Some(mac) = mac else { return out };
        out.extend(
            self.prov
                .old_credentials(account, &mac)
                .unwrap_or_else(|e| {
                    log::error!("{mac}: cannot read its Auto-Sync state: {e}");
                    Vec::new()
                }),
        );
        out
    }

    /// What a request for `entry`'s files may be served, enrolling the device (creating
    /// its own credential) when the request may do so and confirming its credential when
    /// it authenticated with it. Returns the entry to serve from.
    fn access_for(
        &self,
        ctx: &Ctx<'_>,
        entry: Arc<DeviceEntry>,
    ) -> crate::Result<(Access, Arc<DeviceEntry>)> {
        let mac = entry.device.mac;
        let proof = ctx.proof(&mac);
        let access = enrolment::access(
            &ctx.account,
            proof,
            entry.credential.as_ref(),
            entry.window_open(),
        );
        if !ctx.account.device_secrets {
            return Ok((access, entry));
        }
        let mut entry = entry;
        if access != Access::Withheld && entry.credential.is_none() {
            entry = self.prov.enrol(&entry)?;
            self.metrics.enrolments.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "{mac}: enrolled ({}); its own credential is delivered",
                if proof.certificate {
                    "verified device certificate"
                } else {
                    "enrolment window"
                }
            );
        }
        if let (true, Outcome::Ok { password, .. }, Some(c)) =
            (proof.device_credential, &ctx.auth, &entry.credential)
            && *password == c.password
            && (c.confirmed_at.is_none() || c.previous.is_some())
        {
            entry = self.prov.confirm_device_credential(&entry)?;
        }
        if access.withholds() {
            self.metrics
                .secrets_withheld
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok((access, entry))
    }

    fn bind_ip(&self, ip: IpAddr, mac: Mac) {
        let mut m = self.ip_macs.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 50_000 {
            m.retain(|_, (_, t)| t.elapsed() < IP_BINDING);
        }
        m.insert(ip, (mac, Instant::now()));
    }

    fn bound_mac(&self, ip: IpAddr) -> Option<Mac> {
        let m = self.ip_macs.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&ip)
            .filter(|(_, t)| t.elapsed() < IP_BINDING)
            .map(|(mac, _)| *mac)
    }

    fn dispatch(
        &self,
        req: &Request,
        peer: &Peer,
        ua: Option<&UserAgent>,
        meta: &mut Meta,
    ) -> Response {
        let method = req.method();
        if !matches!(method, "GET" | "HEAD" | "PUT") {
            let mut r = text(405, "method not allowed");
            r.headers.push(("Allow".into(), "GET, HEAD, PUT".into()));
            return r;
        }
        let raw_path = req.raw_url().split('?').next().unwrap_or("");
        let (account, base_path, file) = match self.resolve(raw_path) {
            Ok(x) => x,
            Err(r) => return r,
        };
        meta.account_id = Some(account.id.0);
        meta.mac = file.mac();
        meta.route = Some(route_of(&file, method));
        let identity = req.header(CLIENT_CERT_HEADER);
        if self.cert_refuses(identity, meta.mac, peer.addr.ip()) {
            meta.auth = "cert-mismatch";
            return text(
                403,
                "your client certificate belongs to another device; it may fetch only its own files",
            );
        }
        if !account.provisioning_enabled {
            // Never a master with content for a disabled account.
            return match file {
                DeviceFile::Master(_) | DeviceFile::DefaultMaster => {
                    text(404, "provisioning is disabled")
                }
                _ => text(403, "provisioning is disabled"),
            };
        }
        let named = meta.mac.or_else(|| ua.and_then(|u| u.serial_mac));
        let outcome = self.auth.check_generations(
            req.header("Authorization"),
            method,
            req.raw_url(),
            peer.addr.ip(),
            &account,
            || self.older_credentials(&account, named, peer.addr.ip()),
        );
        meta.auth = outcome.label();
        if let Some(r) = self.auth_failure(&outcome, peer.secure) {
            return r;
        }
        let cert_mac = identity
            .and_then(ClientIdentity::from_header)
            .and_then(|id| match id.mac {
                MacClaim::One(m) => Some(m),
                _ => None,
            });
        if let Some(mac) = meta.mac {
            // A client that did not prove it is this device, reading many devices' files.
            let proven = outcome.is_device_credential() || cert_mac == Some(mac);
            if !proven && let Err(secs) = self.readers.admit(peer.addr.ip(), mac) {
                meta.auth = "mac-limit";
                self.metrics
                    .mac_limit_refused
                    .fetch_add(1, Ordering::Relaxed);
                let mut r = text(
                    429,
                    "this address has read the files of too many devices; try again later",
                );
                r.headers
                    .push(("Retry-After".into(), secs.to_string().into()));
                return r;
            }
        }
        if meta.mac.is_none() {
            meta.mac = cert_mac
                .or_else(|| ua.and_then(|u| u.serial_mac))
                .or_else(|| self.bound_mac(peer.addr.ip()));
        } else if let Some(mac) = meta.mac {
            self.bind_ip(peer.addr.ip(), mac);
        }
        let ctx = Ctx {
            method,
            reach: Reach {
                host: req.header("Host").unwrap_or("").to_string(),
                base_path,
                secure: peer.secure,
            },
            account,
            ua,
            auth: outcome,
            if_none_match: req.header("If-None-Match"),
            cert_mac,
        };
        if method == "PUT" {
            return match file {
                DeviceFile::Upload(kind, mac, name) => {
                    let (response, note) = self.store_upload(req, &ctx, kind, &mac, &name);
                    meta.upload = note;
                    response
                }
                _ => text(405, "this file cannot be uploaded"),
            };
        }
        let result = match &file {
            DeviceFile::Master(mac) => self.master(&ctx, mac, meta),
            DeviceFile::DefaultMaster => Ok(match ctx.account.unknown_devices {
                UnknownDevices::Stage => xml(&ctx, fixed(&STAGE_MASTER, render::stage_master)),
                UnknownDevices::Ztp => xml(&ctx, fixed(&ZTP_MASTER, render::ztp_master)),
                UnknownDevices::DefaultProfile | UnknownDevices::Reject => text(404, "not found"),
            }),
            DeviceFile::Stage(_) => Ok(match ctx.account.unknown_devices {
                UnknownDevices::Stage => xml(&ctx, fixed(&STAGE_FILE, render::stage_file)),
                UnknownDevices::Reject => text(403, "unknown device"),
                _ => text(404, "not found"),
            }),
            DeviceFile::Ztp(_) => Ok(match ctx.account.unknown_devices {
                UnknownDevices::Ztp => xml(&ctx, fixed(&ZTP_FILE, render::ztp_file)),
                UnknownDevices::Reject => text(403, "unknown device"),
                _ => text(404, "not found"),
            }),
            DeviceFile::TlsProbe(mac) => self.tls_probe(&ctx, mac),
            DeviceFile::Generated(mac) => {
                let r = self.device_file(&ctx, mac, FileKind::Generated, meta);
                meta.sync = r.as_ref().is_ok_and(|r| r.status_code == 200);
                r
            }
            DeviceFile::Profile(mac, i) => self.device_file(&ctx, mac, FileKind::Profile(*i), meta),
            DeviceFile::Upload(kind, mac, name) => {
                self.read_upload(req, &ctx, *kind, mac, name, meta)
            }
            DeviceFile::Firmware { version, file } => self.firmware(req, version, file, ua),
            DeviceFile::Asset(segs) => Ok(self.asset(req, segs)),
        };
        result.unwrap_or_else(|e| internal(&e))
    }

    /// `<mac>.cfg`.
    fn master(&self, ctx: &Ctx<'_>, mac: &Mac, meta: &mut Meta) -> crate::Result<Response> {
        let mut lookup = self.prov.lookup(mac)?;
        if matches!(lookup, Lookup::Unknown | Lookup::Seen(_)) {
            let mine = match &lookup {
                Lookup::Seen(e) => e.device.account_id == ctx.account.id.0,
                _ => true,
            };
            match ctx.account.unknown_devices {
                UnknownDevices::Stage if matches!(lookup, Lookup::Unknown) => {
                    self.prov.record_unassociated(&ctx.account, mac)?;
                }
                UnknownDevices::DefaultProfile
                    if mine && self.prov.auto_associate(&ctx.account, mac)? =>
                {
                    lookup = self.prov.lookup(mac)?;
                }
                _ => {}
            }
        }
        let Lookup::Associated(entry) = lookup else {
            return Ok(text(404, "not associated"));
        };
        if entry.device.account_id != ctx.account.id.0 {
            return Ok(text(404, "not associated"));
        }
        let (access, entry) = self.access_for(ctx, entry)?;
        note_access(meta, access);
        let entry = self.prov.observe(
            &ctx.account,
            entry,
            &self.evidence(ctx, mac, true, false),
            access,
        )?;
        match self
            .prov
            .render(&ctx.account, &entry, FileKind::Master, &ctx.reach, access)?
        {
            Some(r) => Ok(xml(ctx, &r)),
            None => Ok(text(404, "not found")),
        }
    }

    fn evidence<'a>(
        &self,
        ctx: &'a Ctx<'_>,
        mac: &Mac,
        master_fetch: bool,
        tls_probe: bool,
    ) -> Evidence<'a> {
        Evidence {
            master_fetch,
            tls_probe: tls_probe && ctx.reach.secure,
            reach: &ctx.reach,
            auth: match &ctx.auth {
                Outcome::Ok { user, password, .. } => Some((user.as_str(), password.as_str())),
                _ => None,
            },
            // A device's own credential is no account credential generation: Auto-Sync's
            // record of what the device holds stays as it was.
            generation: match &ctx.auth {
                Outcome::Ok { generation, .. } if *generation != DEVICE_CREDENTIAL => {
                    Some(*generation)
                }
                _ => None,
            },
            family: ctx.ua.and_then(|u| u.family),
            serial_tag: ctx
                .ua
                .as_ref()
                .and_then(|u| u.serial_mac)
                .is_some_and(|m| m == *mac),
        }
    }

    /// `firmware/<version>/<file>`, also under the part-number-prefixed name phones ask for
    /// (`domain::firmware::locate`). A file that failed its checksum check is not served.
    fn firmware(
        &self,
        req: &Request,
        version: &str,
        file: &str,
        ua: Option<&UserAgent>,
    ) -> crate::Result<Response> {
        let model = ua.map(|u| u.model_token.as_str()).filter(|m| !m.is_empty());
        // Held until the image is sent (the loop sends it after this returns).
        let Some(pass) = self.firmware_gate.try_enter() else {
            return Ok(self.busy("firmware downloads"));
        };
        admission::hold(pass);
        let found = {
            let conn = self.prov.pool().get()?;
            firmware::locate(&conn, &self.dirs.firmware, version, file, model)?
        };
        Ok(match found {
            Image::File(path) => serve_file(req, &path, "application/octet-stream"),
            Image::Damaged(why) => {
                log::error!("{why}");
                text(404, "not found")
            }
            Image::NotFound => text(404, "not found"),
        })
    }

    /// `<mac>-device.cfg` and the profile's files.
    fn device_file(
        &self,
        ctx: &Ctx<'_>,
        mac: &Mac,
        kind: FileKind,
        meta: &mut Meta,
    ) -> crate::Result<Response> {
        let entry = match self.prov.lookup(mac)? {
            Lookup::Associated(e) if e.device.account_id == ctx.account.id.0 => e,
            _ if ctx.account.unknown_devices == UnknownDevices::Reject => {
                return Ok(text(403, "unknown device"));
            }
            _ => return Ok(text(404, "not associated")),
        };
        let (access, entry) = self.access_for(ctx, entry)?;
        note_access(meta, access);
        let entry = self.prov.observe(
            &ctx.account,
            entry,
            &self.evidence(ctx, mac, false, false),
            access,
        )?;
        match self
            .prov
            .render(&ctx.account, &entry, kind, &ctx.reach, access)?
        {
            Some(r) if self.withheld_over_http(ctx, &r.bytes) => Ok(text(
                403,
                "this file carries secrets and is served over HTTPS only (device.http_mode = no-secrets)",
            )),
            Some(r) => Ok(xml(ctx, &r)),
            None => Ok(text(404, "not found")),
        }
    }

    /// `<mac>-tls-probe.cfg`: over HTTPS, the evidence that the phone trusts our CA.
    fn tls_probe(&self, ctx: &Ctx<'_>, mac: &Mac) -> crate::Result<Response> {
        if !ctx.reach.secure {
            return Ok(text(404, "the TLS probe is served over HTTPS only"));
        }
        let entry = match self.prov.lookup(mac)? {
            Lookup::Associated(e) if e.device.account_id == ctx.account.id.0 => e,
            _ => return Ok(text(404, "not associated")),
        };
        let (access, entry) = self.access_for(ctx, entry)?;
        self.prov.observe(
            &ctx.account,
            entry,
            &self.evidence(ctx, mac, false, true),
            access,
        )?;
        Ok(xml(ctx, &Rendered::new(render::tls_probe_file())))
    }

    /// Whether a request may read or write a device's own files: always, unless the account
    /// withholds secrets and the request did not prove it is the device.
    fn may_use_device_files(&self, account: &Account, proof: &Proof) -> bool {
        !account.device_secrets || proof.device_credential || proof.certificate
    }

    /// Whether `mac` is a device of this account that may upload and read its files.
    fn owns(&self, ctx: &Ctx<'_>, mac: &Mac) -> crate::Result<bool> {
        Ok(match self.prov.lookup(mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => e.device.account_id == ctx.account.id.0,
            Lookup::Unknown => false,
        })
    }

    fn read_upload(
        &self,
        req: &Request,
        ctx: &Ctx<'_>,
        kind: UploadKind,
        mac: &Mac,
        name: &str,
        meta: &mut Meta,
    ) -> crate::Result<Response> {
        if !self.owns(ctx, mac)? {
            return Ok(if ctx.account.unknown_devices == UnknownDevices::Reject {
                text(403, "unknown device")
            } else {
                text(404, "not found")
            });
        }
        if !self.may_use_device_files(&ctx.account, &ctx.proof(mac)) {
            // Per-device files (overrides, contacts, call lists, logs) belong to the device:
            // a phone without its own stored file boots on the server's configuration.
            self.metrics
                .secrets_withheld
                .fetch_add(1, Ordering::Relaxed);
            note_access(meta, Access::Withheld);
            return Ok(text(
                404,
                "per-device files are served only to the device itself (its own credential or certificate)",
            ));
        }
        if kind == UploadKind::Override
            && !ctx.reach.secure
            && self.http_mode == HttpMode::NoSecrets
        {
            // Settings made on the phone may include passwords.
            return Ok(text(
                403,
                "override files are served over HTTPS only (device.http_mode = no-secrets)",
            ));
        }
        let content_type = if name.ends_with(".xml") || name.ends_with(".cfg") {
            "application/xml"
        } else {
            "text/plain; charset=utf-8"
        };
        Ok(
            serve_file(req, &self.dirs.upload_path(mac, kind, name), content_type)
                .with_additional_header("X-Content-Type-Options", "nosniff")
                .with_additional_header("Cache-Control", "no-store"),
        )
    }

    /// Moves a streamed upload into place.
    fn store_upload(
        &self,
        req: &Request,
        ctx: &Ctx<'_>,
        kind: UploadKind,
        mac: &Mac,
        name: &str,
    ) -> (Response, Option<UploadNote>) {
        let Some(temp) = req.header(conn::UPLOAD_HEADER).map(PathBuf::from) else {
            // A PUT without a body (Content-Length: 0): store an empty file.
            let path = self.dirs.incoming.join(format!(
                ".incoming-{}",
                crate::domain::account::random_token(16)
            ));
            if let Err(e) = File::create(&path) {
                log::error!("cannot create {}: {e}", path.display());
                return (text(507, "cannot store uploads right now"), None);
            }
            // SHA-256 of nothing.
            const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
            let body = Incoming {
                temp: &path,
                size: 0,
                sha256: EMPTY,
            };
            return self.commit_upload(ctx, kind, mac, name, body);
        };
        let size: u64 = req
            .header(conn::UPLOAD_SIZE_HEADER)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let sha256 = req.header(conn::UPLOAD_SHA256_HEADER).unwrap_or("");
        let body = Incoming {
            temp: &temp,
            size,
            sha256,
        };
        self.commit_upload(ctx, kind, mac, name, body)
    }

    fn commit_upload(
        &self,
        ctx: &Ctx<'_>,
        kind: UploadKind,
        mac: &Mac,
        name: &str,
        body: Incoming<'_>,
    ) -> (Response, Option<UploadNote>) {
        let Incoming { temp, size, sha256 } = body;
        let result = (|| -> crate::Result<(Response, Option<UploadNote>)> {
            if !self.owns(ctx, mac)? {
                let _ = std::fs::remove_file(temp);
                let status = if ctx.account.unknown_devices == UnknownDevices::Reject {
                    403
                } else {
                    404
                };
                return Ok((text(status, "unknown device"), None));
            }
            if !self
                .ledger
                .admit(self.prov.pool(), mac, kind, name, size, self.device_quota)?
            {
                let _ = std::fs::remove_file(temp);
                return Ok((text(507, "this device's upload quota is used up"), None));
            }
            let dest = self.dirs.upload_path(mac, kind, name);
            let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
            // What a phone made or set (overrides, contacts, call lists) must survive a power
            // cut; logs and core dumps are diagnostics and are not worth a disk flush each.
            let durable = !matches!(kind, UploadKind::Log | UploadKind::CoreDump);
            if durable {
                File::open(temp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| crate::Error::io(format!("storing {}", dest.display()), e))?;
            }
            let existed = dest.exists();
            if existed && kind == UploadKind::Log && !extends(&dest, temp) {
                // Keep the previous upload of a log: phones may send only what is new. A
                // new upload that begins with the stored one (the phone sent its whole,
                // grown log, or the same again) holds it already: no copy to keep.
                let _ = std::fs::rename(&dest, dest.with_file_name(format!("{name}.1")));
            } else if existed && !durable {
                // A rename over an existing file makes ext4 (auto_da_alloc) write the new
                // file's blocks out at once: a disk write per log upload, measured as a
                // tenth of a storm's CPU. Logs are not worth it; replaced non-atomically
                // (a read meanwhile may miss the log for a moment).
                let _ = std::fs::remove_file(&dest);
            }
            // The device's directory is made on its first upload only.
            let moved = std::fs::rename(temp, &dest).or_else(|e| {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e);
                }
                std::fs::create_dir_all(&dir)?;
                std::fs::rename(temp, &dest)
            });
            moved.map_err(|e| crate::Error::io(format!("storing {}", dest.display()), e))?;
            let response = if existed {
                Response::empty_204()
            } else {
                text(201, "stored")
            };
            if !durable {
                let note = UploadNote {
                    kind: kind.dir(),
                    file_name: name.to_string(),
                    size,
                    sha256: sha256.to_string(),
                };
                return Ok((response, Some(note)));
            }
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            let conn = self.prov.pool().get()?;
            crate::db::access::upsert_upload(&conn, mac.as_str(), kind.dir(), name, size, sha256)?;
            Ok((response, None))
        })();
        result.unwrap_or_else(|e| {
            let _ = std::fs::remove_file(temp);
            (internal(&e), None)
        })
    }

    fn asset(&self, req: &Request, segs: &[String]) -> Response {
        let mut path = self.dirs.assets.clone();
        for s in segs {
            path.push(s);
        }
        // Symlinks inside the assets directory must not lead outside it.
        let (Ok(root), Ok(real)) = (self.dirs.assets.canonicalize(), path.canonicalize()) else {
            return text(404, "not found");
        };
        if !real.starts_with(&root) || !real.is_file() {
            return text(404, "not found");
        }
        let ct = match real.extension().and_then(|e| e.to_str()) {
            Some("cfg" | "xml") => "application/xml",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("png") => "image/png",
            Some("bmp") => "image/bmp",
            Some("wav") => "audio/wav",
            Some("txt") => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        };
        serve_file(req, &real, ct)
    }
}

impl Service for DeviceService {
    fn plan(&self, head: &Head, peer: &Peer, _limits: &LoopLimits) -> BodyPlan {
        if head.method != "PUT" {
            return BodyPlan::Memory {
                limit: NON_UPLOAD_BODY,
            };
        }
        let (account, _, file) = match self.resolve(head.raw_path()) {
            Ok(x) => x,
            Err(r) => return BodyPlan::Respond(r),
        };
        let DeviceFile::Upload(kind, mac, _) = &file else {
            return BodyPlan::Respond(text(405, "this file cannot be uploaded"));
        };
        if self.cert_refuses(peer.identity.as_deref(), file.mac(), peer.addr.ip()) {
            return BodyPlan::Respond(text(
                403,
                "your client certificate belongs to another device; it may store only its own files",
            ));
        }
        if !account.provisioning_enabled {
            return BodyPlan::Respond(text(403, "provisioning is disabled"));
        }
        let named = file.mac().or_else(|| {
            head.header("User-Agent")
                .and_then(useragent::parse)
                .and_then(|u| u.serial_mac)
        });
        let outcome = self.auth.check_generations(
            head.header("Authorization"),
            &head.method,
            &head.target,
            peer.addr.ip(),
            &account,
            || self.older_credentials(&account, named, peer.addr.ip()),
        );
        if let Some(r) = self.auth_failure(&outcome, peer.secure) {
            return BodyPlan::Respond(r);
        }
        if let Some(mac) = file.mac() {
            let cert_mac = peer
                .identity
                .as_deref()
                .and_then(ClientIdentity::from_header)
                .and_then(|id| match id.mac {
                    MacClaim::One(m) => Some(m),
                    _ => None,
                });
            let proof = Proof {
                device_credential: outcome.is_device_credential()
                    && matches!(&outcome, Outcome::Ok { user, .. } if user == mac.as_str()),
                certificate: cert_mac == Some(mac),
            };
            if !self.may_use_device_files(&account, &proof) {
                self.metrics
                    .secrets_withheld
                    .fetch_add(1, Ordering::Relaxed);
                return BodyPlan::Respond(text(
                    403,
                    "per-device files are stored only from the device itself (its own credential or certificate)",
                ));
            }
        }
        // Held until the upload is stored and answered.
        let Some(pass) = self.upload_gate.try_enter() else {
            return BodyPlan::Respond(self.busy("uploads"));
        };
        admission::hold(pass);
        // The body streams into the directory it will be stored in, when that exists (every
        // upload after a device's first): the final rename stays in one directory. From a
        // shared directory every rename crossed directories, which the kernel serialises
        // per file system, and all uploads of a storm queued on it.
        let dest_dir = self.dirs.upload_dir(mac, *kind);
        BodyPlan::File {
            dir: if dest_dir.is_dir() {
                dest_dir
            } else {
                self.dirs.incoming.clone()
            },
            limit: self.upload_bytes,
        }
    }

    fn handle(&self, req: &Request, peer: &Peer) -> Response {
        let started = Instant::now();
        let mut meta = Meta {
            auth: "none",
            ..Default::default()
        };
        let ua = req.header("User-Agent").unwrap_or("");
        let parsed = useragent::parse(ua);
        let mut response = self.dispatch(req, peer, parsed.as_ref(), &mut meta);
        // Rendered bodies carry their size in a header the loop does not send.
        if let Some(pos) = response.headers.iter().position(|(k, _)| k == BODY_SIZE) {
            meta.bytes = response.headers[pos].1.parse().unwrap_or(0);
            response.headers.remove(pos);
        }
        let micros = started.elapsed().as_micros() as u64;
        self.metrics.observe(
            meta.route.unwrap_or(Route::Other),
            response.status_code,
            micros,
        );
        self.recorder.record(AccessRecord {
            ts_ms: crate::db::now_ms(),
            account_id: meta.account_id,
            mac: meta.mac.map(|m| m.to_string()),
            ip: peer.addr.ip().to_string(),
            method: req.method().to_string(),
            path: req.raw_url().chars().take(512).collect(),
            status: response.status_code,
            bytes: meta.bytes,
            duration_us: micros,
            auth: meta.auth,
            secure: peer.secure,
            user_agent: ua.chars().take(256).collect(),
            ua_family: parsed.as_ref().map(|u| u.family_name()).unwrap_or_default(),
            ua_model: parsed.as_ref().map(|u| u.model.clone()).unwrap_or_default(),
            firmware: parsed.as_ref().and_then(|u| u.firmware().map(String::from)),
            sync: meta.sync,
            upload: meta.upload.take(),
        });
        response
    }
}

/// A request body the loop streamed to a temporary file.
struct Incoming<'a> {
    temp: &'a Path,
    size: u64,
    sha256: &'a str,
}

/// The metrics label of a request.
fn route_of(file: &DeviceFile, method: &str) -> Route {
    match file {
        DeviceFile::Master(_) => Route::Master,
        DeviceFile::DefaultMaster => Route::DefaultMaster,
        DeviceFile::Generated(_) => Route::Generated,
        DeviceFile::Profile(..) => Route::Profile,
        DeviceFile::Stage(_) => Route::Stage,
        DeviceFile::Ztp(_) => Route::Ztp,
        DeviceFile::Upload(..) if method == "PUT" => Route::UploadPut,
        DeviceFile::Upload(..) => Route::UploadGet,
        DeviceFile::Firmware { .. } => Route::Firmware,
        DeviceFile::Asset(_) => Route::Asset,
        DeviceFile::TlsProbe(_) => Route::TlsProbe,
    }
}

/// Whether a configuration file sets a secret parameter to a non-empty value. A file that
/// cannot be parsed counts as carrying secrets (it is not known not to).
fn carries_secrets(bytes: &[u8]) -> bool {
    match crate::domain::xml::parse_params("file", bytes) {
        Ok(params) => params
            .iter()
            .any(|p| !p.value.is_empty() && crate::domain::polycom::params::is_secret(&p.name)),
        Err(_) => true,
    }
}

/// Whether the file at `new` begins with the whole content of the file at `old` (logs up to
/// a few MiB are compared; a larger or unreadable one counts as not contained).
fn extends(old: &Path, new: &Path) -> bool {
    const MAX: u64 = 4 << 20;
    let (Ok(o), Ok(n)) = (std::fs::metadata(old), std::fs::metadata(new)) else {
        return false;
    };
    if o.len() > n.len() || o.len() > MAX {
        return false;
    }
    let (Ok(old_bytes), Ok(mut file)) = (std::fs::read(old), File::open(new)) else {
        return false;
    };
    let mut prefix = vec![0u8; old_bytes.len()];
    file.read_exact(&mut prefix).is_ok() && prefix == old_bytes
}

/// Internal header carrying a body's size from the branch that built it to the recorder.
const BODY_SIZE: &str = "x-zerotouch-body-size";

fn text(status: u16, message: &str) -> Response {
    Response::text(format!("{message}\n")).with_status_code(status)
}

fn internal(e: &crate::Error) -> Response {
    log::error!("device request failed: {e}");
    text(500, "internal error")
}

/// A rendered XML file, or 304 when the phone already has these bytes.
/// The files unknown phones get under the `stage` and `ztp` policies: the same bytes for
/// every phone, rendered (and hashed for their ETag) once.
static STAGE_MASTER: OnceLock<Rendered> = OnceLock::new();
static STAGE_FILE: OnceLock<Rendered> = OnceLock::new();
static ZTP_MASTER: OnceLock<Rendered> = OnceLock::new();
static ZTP_FILE: OnceLock<Rendered> = OnceLock::new();

fn fixed(cell: &'static OnceLock<Rendered>, render: fn() -> Vec<u8>) -> &'static Rendered {
    cell.get_or_init(|| Rendered::new(render()))
}

fn xml(ctx: &Ctx<'_>, r: &Rendered) -> Response {
    let etag = r.etag.to_string();
    if ctx
        .if_none_match
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Response {
            status_code: 304,
            headers: vec![("ETag".into(), etag.into())],
            data: ResponseBody::empty(),
            upgrade: None,
        };
    }
    let len = r.bytes.len();
    let body = if ctx.method == "HEAD" {
        ResponseBody::from_reader_and_size(std::io::empty(), len)
    } else {
        ResponseBody::from_reader_and_size(std::io::Cursor::new(ArcBytes(r.bytes.clone())), len)
    };
    Response {
        status_code: 200,
        headers: vec![
            ("Content-Type".into(), "application/xml".into()),
            ("ETag".into(), etag.into()),
            ("Cache-Control".into(), "no-cache".into()),
            (BODY_SIZE.into(), len.to_string().into()),
        ],
        data: body,
        upgrade: None,
    }
}

/// Shares rendered bytes without copying them per request.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Serves a file with ETag, Last-Modified, conditional GET and a single byte range.
pub fn serve_file(req: &Request, path: &Path, content_type: &'static str) -> Response {
    let Ok(mut file) = File::open(path) else {
        return text(404, "not found");
    };
    let Ok(meta) = file.metadata() else {
        return text(404, "not found");
    };
    if !meta.is_file() {
        return text(404, "not found");
    }
    let len = meta.len();
    let mtime = meta.modified().ok();
    let mtime_ns = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{len:x}-{mtime_ns:x}\"");
    let mut headers: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )> = vec![
        ("Content-Type".into(), content_type.into()),
        ("ETag".into(), etag.clone().into()),
        ("Accept-Ranges".into(), "bytes".into()),
    ];
    if let Some(t) = mtime {
        headers.push(("Last-Modified".into(), httpdate::fmt_http_date(t).into()));
    }
    if req
        .header("If-None-Match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Response {
            status_code: 304,
            headers,
            data: ResponseBody::empty(),
            upgrade: None,
        };
    }
    let range = req.header("Range").filter(|_| {
        // If-Range with a different validator means: send the whole file.
        req.header("If-Range").is_none_or(|v| v.trim() == etag)
    });
    let (status, start, count) = match range.map(|r| parse_range(r, len)) {
        None | Some(RangeSpec::Ignore) => (200, 0, len),
        Some(RangeSpec::Satisfiable(a, b)) => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {a}-{b}/{len}").into(),
            ));
            (206, a, b - a + 1)
        }
        Some(RangeSpec::Unsatisfiable) => {
            headers.push(("Content-Range".into(), format!("bytes */{len}").into()));
            return Response {
                status_code: 416,
                headers,
                data: ResponseBody::empty(),
                upgrade: None,
            };
        }
    };
    headers.push((BODY_SIZE.into(), count.to_string().into()));
    if req.method() == "HEAD" {
        return Response {
            status_code: status,
            headers,
            data: ResponseBody::from_reader_and_size(std::io::empty(), count as usize),
            upgrade: None,
        };
    }
    if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
        return text(500, "cannot read the file");
    }
    let response = Response {
        status_code: status,
        headers,
        data: ResponseBody::empty(),
        upgrade: None,
    };
    conn::file_body(response, file, count)
}

enum RangeSpec {
    Satisfiable(u64, u64),
    Unsatisfiable,
    /// Malformed or multiple ranges: serve the whole file (allowed by RFC 9110).
    Ignore,
}

fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match parse(b) {
            Some(0) => RangeSpec::Unsatisfiable,
            Some(n) if len > 0 => RangeSpec::Satisfiable(len.saturating_sub(n), len - 1),
            Some(_) => RangeSpec::Unsatisfiable,
            None => RangeSpec::Ignore,
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return RangeSpec::Ignore;
            };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parse(b)
            };
            let Some(end) = end else {
                return RangeSpec::Ignore;
            };
            if end < start {
                return RangeSpec::Ignore;
            }
            if start >= len {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Satisfiable(start, end.min(len - 1))
        }
        (true, true) => RangeSpec::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert!(matches!(
            parse_range("bytes=0-99", 1000),
            RangeSpec::Satisfiable(0, 99)
        ));
        assert!(matches!(
            parse_range("bytes=900-", 1000),
            RangeSpec::Satisfiable(900, 999)
        ));
        assert!(matches!(
            parse_range("bytes=-100", 1000),
            RangeSpec::Satisfiable(900, 999)
        ));
        assert!(matches!(
            parse_range("bytes=990-2000", 1000),
            RangeSpec::Satisfiable(990, 999)
        ));
        assert!(matches!(
            parse_range("bytes=1000-", 1000),
            RangeSpec::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=0-1,5-6", 1000),
            RangeSpec::Ignore
        ));
        assert!(matches!(parse_range("items=0-1", 1000), RangeSpec::Ignore));
        assert!(matches!(parse_range("bytes=5-1", 1000), RangeSpec::Ignore));
    }
}
