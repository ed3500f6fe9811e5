//! The device endpoints: what phones call (docs/design.md §4).
//!
//! Order of checks for every request: method, path (strictly decoded; traversal refused),
//! account (by service address), file name, client certificate (a verified device
//! certificate that names a MAC may only fetch that MAC's files: 403 and a warning
//! otherwise), account enabled, credentials, then the file. Over plain HTTP in
//! `no-secrets` mode, files that carry secrets are refused with 403.
//! Uploads are authenticated in `plan`, before their body is read, and arrive here as a
//! temporary file the loop streamed to disk; they are moved into place with a rename, so a
//! stored file is always complete. Every request is recorded without waiting.

mod access;
pub mod auth;
pub mod ftp;
pub mod readers;
mod respond;
pub mod tftp;
mod uploads;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rouille::{Request, Response, ResponseBody};

use self::auth::{DeviceAuth, Outcome};
use self::readers::MacReaders;
use self::respond::{STAGE_FILE, STAGE_MASTER, ZTP_FILE, ZTP_MASTER, fixed, xml};
pub use self::respond::{open_below, serve_file};
use self::tftp::TftpDevices;
use crate::actions::provisioning::{
    DeviceEntry, FileKind, Held, Lookup, Noted, Provisioner, Rendered,
};
use crate::actions::uploads::UploadLedger;
use crate::config::HttpMode;
use crate::datadir::DataDirs;
use crate::db::access::{AccessRecord, UploadNote};
use crate::domain::account::{Account, UnknownDevices};
use crate::domain::devicepath::{self, DeviceFile, UploadKind};
use crate::domain::enrolment::{Access, Proof};
use crate::domain::firmware::Image;
use crate::domain::mac::Mac;
use crate::domain::machine::Candidate;
use crate::domain::polycom::render;
use crate::domain::provstate::{Evidence, Reach};
use crate::domain::useragent::{self, UserAgent};
use crate::http::engine::admission::{self, Gate};
use crate::http::engine::budget::SMALL_BODY;
use crate::http::engine::conn::{self, BodyPlan, Head, LoopLimits, Peer, Service};
use crate::metrics::{Metrics, Route};
use crate::recorder::Recorder;
use crate::tls::inspect::{CLIENT_CERT_HEADER, ClientIdentity, MacClaim};

/// How long a MAC stays bound to the IP of its last authenticated request, for recording
/// requests that name no MAC (firmware, shared assets).
const IP_BINDING: Duration = Duration::from_secs(300);

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
    /// `limits.upload_bytes` and `limits.device_quota_bytes`, changed by `set_limits`
    /// (SIGHUP) while serving, as are the caps below.
    upload_bytes: AtomicU64,
    device_quota: AtomicU64,
    ledger: UploadLedger,
    /// Most bytes all MACs no device is associated with may store together
    /// (`limits.unassociated_upload_bytes`), and when a refusal was last logged (ms).
    unassociated_cap: AtomicU64,
    unassociated_logged: AtomicU64,
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
    busy_retry_after: AtomicU64,
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
    /// The client's address and User-Agent as sent (enrolment claims).
    ip: IpAddr,
    user_agent: &'a str,
    /// Relayed by another protocol's listener: never observed (`Peer::relay`).
    relayed: bool,
}

impl Ctx<'_> {
    /// The credentials the request carried.
    fn held(&self) -> Option<Held<'_>> {
        match &self.auth {
            Outcome::Ok { user, password, .. } => Some(Held { user, password }),
            _ => None,
        }
    }

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
            upload_bytes: AtomicU64::new(upload_bytes),
            device_quota: AtomicU64::new(device_quota),
            metrics,
            http_mode: HttpMode::Full,
            cert_mismatches: AtomicU64::new(0),
            readers: MacReaders::new(u32::MAX, Duration::from_secs(600), Vec::new()),
            ip_macs: Mutex::new(HashMap::new()),
            ledger: UploadLedger::default(),
            unassociated_cap: AtomicU64::new(
                crate::config::LimitsConfig::default().unassociated_upload_bytes,
            ),
            unassociated_logged: AtomicU64::new(0),
            firmware_gate: Gate::new(usize::MAX),
            upload_gate: Gate::new(usize::MAX),
            busy_retry_after: AtomicU64::new(30),
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
        self.busy_retry_after = AtomicU64::new(retry_after);
        let reader = |g: &Arc<Gate>| -> crate::metrics::GateReader {
            let g = g.clone();
            Arc::new(move || (g.shed.load(Ordering::Relaxed), g.inflight()))
        };
        self.metrics.set_gates(vec![
            ("firmware", reader(&self.firmware_gate)),
            ("upload", reader(&self.upload_gate)),
        ]);
        self
    }

    /// The answer to a firmware download or upload over its cap.
    fn busy(&self, what: &str) -> Response {
        let mut r = text(503, &format!("too many {what} at once; try again later"));
        let secs = admission::retry_after(self.busy_retry_after.load(Ordering::Relaxed));
        r.headers
            .push(("Retry-After".into(), secs.to_string().into()));
        r
    }

    /// Puts new upload sizes, quotas and admission caps in force (SIGHUP): uploads and
    /// downloads that follow are judged by them; those running finish under the old ones.
    pub fn set_limits(&self, l: &crate::config::LimitsConfig) {
        self.upload_bytes.store(l.upload_bytes, Ordering::Relaxed);
        self.device_quota
            .store(l.device_quota_bytes, Ordering::Relaxed);
        self.unassociated_cap
            .store(l.unassociated_upload_bytes, Ordering::Relaxed);
        self.busy_retry_after
            .store(l.busy_retry_after_secs, Ordering::Relaxed);
        self.firmware_gate.set_cap(l.firmware_streams);
        self.upload_gate.set_cap(l.upload_streams);
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
            || self.candidates(&account, named, peer.addr.ip()),
        );
        meta.auth = outcome.label();
        Self::log_refused(&outcome, peer.addr.ip(), named.as_ref());
        if let (Outcome::Refused { generation, .. }, Some(mac)) = (&outcome, named) {
            let reach = Reach {
                host: req.header("Host").unwrap_or("").to_string(),
                base_path: base_path.clone(),
                secure: peer.secure,
            };
            self.note_refused(&account, &mac, *generation, &reach, ua);
        }
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
            // A client that did not prove it is this device, reading many devices' files: a
            // harvester, or a site behind one address. Reported, never refused: phones
            // behind NAT must not be (I1), and where secrets are withheld the account
            // credential reads none.
            let proven = outcome.is_device_credential() || cert_mac == Some(mac);
            if !proven && let Err(secs) = self.readers.admit(peer.addr.ip(), mac) {
                meta.auth = "many-macs";
                self.metrics.many_macs.fetch_add(1, Ordering::Relaxed);
                if crate::domain::regress::on(crate::domain::regress::Defect::MacLimit) {
                    let mut r = text(429, "this address has read the files of too many devices");
                    r.headers
                        .push(("Retry-After".into(), secs.to_string().into()));
                    return r;
                }
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
            ip: peer.addr.ip(),
            user_agent: req.header("User-Agent").unwrap_or(""),
            relayed: peer.relay.is_some(),
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
            DeviceFile::DefaultMaster | DeviceFile::Stage(_) | DeviceFile::Ztp(_) => {
                Ok(match unknown_device_file(&ctx.account, &file) {
                    Ok(r) => xml(&ctx, r),
                    Err((status, message)) => text(status, message),
                })
            }
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
            DeviceFile::Asset(segs) => Ok(self.asset(req, &ctx.account, segs)),
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
        let entry = self.observe(ctx, entry, mac, true, access)?;
        match self.prov.render(
            &ctx.account,
            &entry,
            FileKind::Master,
            &ctx.reach,
            access,
            ctx.held(),
        )? {
            Some(r) => Ok(xml(ctx, &r)),
            None => Ok(text(404, "not found")),
        }
    }

    /// What the request shows of the device (`Provisioner::observe`); a relayed request
    /// shows nothing.
    fn observe(
        &self,
        ctx: &Ctx<'_>,
        entry: Arc<DeviceEntry>,
        mac: &Mac,
        master_fetch: bool,
        access: Access,
    ) -> crate::Result<Arc<DeviceEntry>> {
        if ctx.relayed {
            return Ok(entry);
        }
        let ev = self.evidence(ctx, mac, master_fetch, false);
        self.prov.observe(&ctx.account, entry, &ev, access)
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
            // The generation it used (`DEVICE_CREDENTIAL` for its own): evidence for reports.
            generation: match &ctx.auth {
                Outcome::Ok { generation, .. } => Some(*generation),
                _ => None,
            },
            proven: {
                let p = ctx.proof(mac);
                p.device_credential || p.certificate
            },
            address: Some(ctx.ip),
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
            crate::actions::firmware::locate(&conn, &self.dirs.firmware, version, file, model)?
        };
        Ok(match found {
            Image::File(path) => {
                serve_file(req, &self.dirs.firmware, &path, "application/octet-stream")
            }
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
        let entry = self.observe(ctx, entry, mac, false, access)?;
        match self
            .prov
            .render(&ctx.account, &entry, kind, &ctx.reach, access, ctx.held())?
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

    /// A shared file: the account's own (`DataDirs::assets_of`) when it has one of that
    /// name, else the installation's.
    fn asset(&self, req: &Request, account: &Account, segs: &[String]) -> Response {
        let own = self.dirs.assets_of(&account.slug);
        match Self::asset_in(req, &own, segs) {
            Some(r) => r,
            None => Self::asset_in(req, &self.dirs.assets, segs)
                .unwrap_or_else(|| text(404, "not found")),
        }
    }

    /// The file `segs` names below `dir`, if there is one.
    fn asset_in(req: &Request, dir: &Path, segs: &[String]) -> Option<Response> {
        let mut path = dir.to_path_buf();
        for s in segs {
            path.push(s);
        }
        // Symlinks inside the assets directory must not lead outside it.
        let (Ok(root), Ok(real)) = (dir.canonicalize(), path.canonicalize()) else {
            return None;
        };
        if !real.starts_with(&root) || !real.is_file() {
            return None;
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
        Some(serve_file(req, dir, &path, ct))
    }
}

impl Service for DeviceService {
    fn plan(&self, head: &Head, peer: &Peer, _limits: &LoopLimits) -> BodyPlan {
        match head.method.as_str() {
            "PUT" => {}
            // A body on a GET means nothing; a small one is read and ignored, at no cost.
            "GET" | "HEAD" => return BodyPlan::Memory { limit: SMALL_BODY },
            // Answered as `dispatch` would, before any body is read.
            _ => {
                let mut r = text(405, "method not allowed");
                r.headers.push(("Allow".into(), "GET, HEAD, PUT".into()));
                return BodyPlan::Respond(r);
            }
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
        // Checked, not recorded: the handler's check records a Digest (nonce, nc).
        let outcome = self.auth.precheck_generations(
            head.header("Authorization"),
            &head.method,
            &head.target,
            peer.addr.ip(),
            &account,
            || self.candidates(&account, named, peer.addr.ip()),
        );
        if let Some(r) = self.auth_failure(&outcome, peer.secure) {
            Self::log_refused(&outcome, peer.addr.ip(), named.as_ref());
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
            if let Some(r) = self.write_refusal(&account, &proof, &mac) {
                return BodyPlan::Respond(r);
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
            limit: self.upload_bytes.load(Ordering::Relaxed),
        }
    }

    fn handle(&self, req: &Request, peer: &Peer) -> Response {
        self.serve(req, peer, req.method(), req.raw_url())
    }
}

impl DeviceService {
    /// A request relayed by another protocol's listener (FTP): served as `handle` serves
    /// it, recorded under that protocol's command (`verb`) and path.
    pub fn handle_relayed(&self, req: &Request, peer: &Peer, verb: &str, path: &str) -> Response {
        self.serve(req, peer, verb, path)
    }

    /// Serves, then counts and records a request as `verb path`.
    fn serve(&self, req: &Request, peer: &Peer, verb: &str, logged_path: &str) -> Response {
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
        // `--verbose` (debug): what was decided for each request. The query is left out (it
        // is never needed to provision, and could carry anything).
        if log::log_enabled!(log::Level::Debug) {
            let path: String = logged_path
                .split('?')
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            log::debug!(
                "device request from {}: {} {path} -> {} (credentials: {}, device: {}, {} bytes, {micros} us)",
                peer.addr.ip(),
                verb,
                response.status_code,
                meta.auth,
                meta.mac.map_or_else(|| "-".to_string(), |m| m.to_string()),
                meta.bytes,
            );
        }
        // A relayed request is counted under its own protocol (`/metrics`' FTP family).
        if peer.relay.is_some() {
            self.metrics.observe_ftp(
                meta.route.unwrap_or(Route::Other),
                (200..300).contains(&response.status_code),
            );
        } else {
            self.metrics.observe(
                meta.route.unwrap_or(Route::Other),
                response.status_code,
                micros,
            );
        }
        self.recorder.record(AccessRecord {
            ts_ms: crate::db::now_ms(),
            account_id: meta.account_id,
            mac: meta.mac.map(|m| m.to_string()),
            ip: peer.addr.ip().to_string(),
            method: verb.to_string(),
            path: logged_path.chars().take(512).collect(),
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

/// What the account's unknown-device policy serves for `000000000000.cfg`,
/// `<mac>-stage.cfg` and `<mac>-ztp.cfg` (the same over HTTP and TFTP), or the status and
/// message of the refusal. Any other file is not one of them (404).
fn unknown_device_file(
    account: &Account,
    file: &DeviceFile,
) -> Result<&'static Rendered, (u16, &'static str)> {
    let policy = account.unknown_devices;
    match file {
        DeviceFile::DefaultMaster => match policy {
            UnknownDevices::Stage => Ok(fixed(&STAGE_MASTER, render::stage_master)),
            UnknownDevices::Ztp => Ok(fixed(&ZTP_MASTER, render::ztp_master)),
            UnknownDevices::DefaultProfile | UnknownDevices::Reject => Err((404, "not found")),
        },
        DeviceFile::Stage(_) => match policy {
            UnknownDevices::Stage => Ok(fixed(&STAGE_FILE, render::stage_file)),
            UnknownDevices::Reject => Err((403, "unknown device")),
            _ => Err((404, "not found")),
        },
        DeviceFile::Ztp(_) => match policy {
            UnknownDevices::Ztp => Ok(fixed(&ZTP_FILE, render::ztp_file)),
            UnknownDevices::Reject => Err((403, "unknown device")),
            _ => Err((404, "not found")),
        },
        _ => Err((404, "not found")),
    }
}

/// The metrics label of a request.
pub(crate) fn route_of(file: &DeviceFile, method: &str) -> Route {
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

/// Internal header carrying a body's size from the branch that built it to the recorder.
const BODY_SIZE: &str = "x-zerotouch-body-size";

fn text(status: u16, message: &str) -> Response {
    Response::text(format!("{message}\n")).with_status_code(status)
}

fn internal(e: &crate::Error) -> Response {
    log::error!("device request failed: {e}");
    text(500, "internal error")
}
