//! The device endpoints over FTP (`ftp::Files`). FTP carries no new rules: every request
//! is one the device service already knows.
//!
//! - A login with a credential (the account's, an older generation Auto-Sync still
//!   accepts, a device's own) is checked at PASS as HTTP checks it (`DeviceAuth`, keyed by
//!   the client's address, so wrong ones are throttled and logged with the same
//!   fail2ban line), then each RETR, SIZE, MDTM, STOR and APPE is relayed to the device
//!   service as the HTTP request it stands for (GET, HEAD, PUT with that credential in
//!   Basic form) and answered by the same code, recorded under its FTP command. Uploads
//!   are planned (`Service::plan`: credentials, who may write, the admission cap) before
//!   their data is read, streamed to a temporary file with the HTTP size cap, and stored
//!   by the same commit as HTTP's (quota, rename): whole or not at all.
//! - Polycom's factory login (`PlcmSpIp`/`PlcmSpIp`) proves nothing: it gets what a TFTP
//!   read request gets (`tftp::TftpDevices`, the unknown-device files and firmware), and an
//!   associated device its files without any SIP secret with the account credential at
//!   the address of device HTTP, when its account accepts the factory login
//!   (`Account::ftp_factory_login`). It stores nothing.
//!
//! Relayed requests name device HTTP as their host (`move_to`): the files served over FTP
//! move the phone to HTTP(S), and no FTP request is evidence for the state machine
//! (`Peer::relay`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::SystemTime;

use base64::Engine;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::*;
use crate::ftp::{Content, Files, Login, Refusal};
use crate::http::engine::admission::Exchange;

/// Polycom's factory FTP user name and password.
pub const FACTORY_LOGIN: &str = "PlcmSpIp";

/// Characters a path keeps encoded in the relayed request's target.
const TARGET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The device service as FTP files.
pub struct FtpDevices {
    service: Arc<DeviceService>,
    /// What the factory login gets (None: `ftp.factory_login = false`).
    factory: Option<TftpDevices>,
    /// The host relayed requests name: device HTTP as phones reach it, else this listener.
    host: String,
    /// Over explicit FTPS: device HTTPS as phones reach it (None: no FTPS).
    secure_host: Option<String>,
    limits: LoopLimits,
}

impl FtpDevices {
    pub fn new(
        service: Arc<DeviceService>,
        (move_to, move_to_https): (Option<String>, Option<String>),
        own: SocketAddr,
        factory_login: bool,
        limits: LoopLimits,
    ) -> FtpDevices {
        FtpDevices {
            factory: factory_login
                .then(|| TftpDevices::for_ftp_factory(service.clone(), move_to.clone())),
            host: move_to.unwrap_or_else(|| own.to_string()),
            secure_host: move_to_https,
            service,
            limits,
        }
    }

    fn is_factory(login: &Login) -> bool {
        auth::ct_eq(login.user.as_bytes(), FACTORY_LOGIN.as_bytes())
            && auth::ct_eq(login.password.as_bytes(), FACTORY_LOGIN.as_bytes())
    }

    /// Whether a login's requests are served as over TLS: explicit FTPS, moved to HTTPS.
    fn secure(&self, login: &Login) -> bool {
        login.secure && self.secure_host.is_some()
    }

    fn peer(&self, login: &Login) -> Peer {
        Peer {
            addr: SocketAddr::new(login.ip, 0),
            secure: self.secure(login),
            identity: None,
            relay: Some("ftp"),
        }
    }

    fn headers(&self, login: &Login) -> Vec<(String, String)> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", login.user, login.password));
        vec![
            ("Authorization".into(), format!("Basic {basic}")),
            (
                "Host".into(),
                match &self.secure_host {
                    Some(h) if login.secure => h.clone(),
                    _ => self.host.clone(),
                },
            ),
        ]
    }

    /// The account a login's credential is checked against: the one whose user it is, the
    /// account of the device it names (a device's own credential), else the default.
    fn account_for(&self, user: &str, mac: Option<&Mac>) -> crate::Result<Option<Account>> {
        let accounts = self.service.prov.accounts()?;
        if let Some(a) = accounts
            .iter()
            .find(|a| a.device_user.as_deref() == Some(user))
        {
            return Ok(Some(a.clone()));
        }
        if let Some(mac) = mac
            && let Lookup::Associated(e) | Lookup::Seen(e) = self.service.prov.lookup(mac)?
            && let Some(a) = accounts.iter().find(|a| a.id.0 == e.device.account_id)
        {
            return Ok(Some(a.clone()));
        }
        Ok(accounts.iter().find(|a| a.is_default).cloned())
    }

    /// A factory login's read: the TFTP rules, recorded under the FTP command.
    fn factory_read(
        &self,
        factory: &TftpDevices,
        login: &Login,
        path: &str,
        verb: &'static str,
        start: u64,
    ) -> Result<Content, Refusal> {
        let peer = SocketAddr::new(login.ip, 0);
        let content = factory
            .open_as(path, peer, verb)
            .map_err(|r| match r.code {
                crate::tftp::ErrorCode::FileNotFound => Refusal::NotFound,
                crate::tftp::ErrorCode::AccessViolation => Refusal::Denied,
                _ => Refusal::Failed,
            })?;
        Ok(match content {
            crate::tftp::Content::Bytes(b) => {
                let len = b.len() as u64;
                let rest = b
                    .get(start.min(len) as usize..)
                    .unwrap_or_default()
                    .to_vec();
                Content {
                    body: Box::new(std::io::Cursor::new(rest)),
                    len,
                    modified: Some(SystemTime::now()),
                }
            }
            crate::tftp::Content::File(mut f, len) => {
                let modified = f.metadata().and_then(|m| m.modified()).ok();
                f.seek(SeekFrom::Start(start.min(len)))
                    .map_err(|_| Refusal::Failed)?;
                Content {
                    body: Box::new(f),
                    len,
                    modified,
                }
            }
        })
    }

    /// The request target for `path`, or the refusal of a name no phone sends.
    fn target(path: &str) -> Result<String, Refusal> {
        if path.contains('%') || path.contains('\\') || path.chars().any(char::is_control) {
            return Err(Refusal::BadName);
        }
        devicepath::segments(path).map_err(|_| Refusal::BadName)?;
        Ok(utf8_percent_encode(path, TARGET).to_string())
    }

    /// Streams `body`, after the first `keep` bytes of the stored upload, into the new
    /// temporary file `temp`, at most `limit` bytes in all. Returns the file's size, the
    /// bytes received and the file's SHA-256.
    fn receive(
        &self,
        temp: &Path,
        path: &str,
        body: &mut dyn Read,
        keep: u64,
        limit: u64,
    ) -> Result<(u64, u64, String), Refusal> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .map_err(|e| {
                log::error!("ftp: cannot create upload file {}: {e}", temp.display());
                Refusal::Failed
            })?;
        let mut out = std::io::BufWriter::new(file);
        let mut hash = <sha2::Sha256 as sha2::Digest>::new();
        let mut size = 0u64;
        if keep > 0 {
            // APPE (or REST then STOR): the stored file's first `keep` bytes, read here
            // (the plan allowed this login to write the file, hence to read it).
            let Ok((_, _, DeviceFile::Upload(kind, mac, name))) = self.service.resolve(path) else {
                return Err(Refusal::Denied);
            };
            let stored = self.service.dirs.upload_path(&mac, kind, &name);
            let mut prefix = std::fs::File::open(&stored)
                .map_err(|_| Refusal::NotFound)?
                .take(keep);
            size = copy_hashed(&mut prefix, &mut out, &mut hash, limit)?;
            if size < keep {
                return Err(Refusal::NotFound);
            }
        }
        let received = copy_hashed(body, &mut out, &mut hash, limit.saturating_sub(size))?;
        size += received;
        out.flush().map_err(|_| Refusal::Failed)?;
        Ok((
            size,
            received,
            crate::domain::hex(&sha2::Digest::finalize(hash)),
        ))
    }
}

/// Copies `from` into `to`, hashing, refusing more than `limit` bytes.
fn copy_hashed(
    from: &mut dyn Read,
    to: &mut dyn Write,
    hash: &mut sha2::Sha256,
    limit: u64,
) -> Result<u64, Refusal> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Refusal::Failed),
        };
        n += got as u64;
        if n > limit {
            return Err(Refusal::TooLarge);
        }
        sha2::Digest::update(hash, &buf[..got]);
        to.write_all(&buf[..got]).map_err(|_| Refusal::Failed)?;
    }
}

/// Removes a temporary upload left behind, however the store ends.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A body served while its admission pass (`Exchange`) is held.
struct Held {
    body: Box<dyn Read + Send>,
    _exchange: Exchange,
}

impl Read for Held {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

/// The FTP refusal of an HTTP status.
fn refusal(status: u16) -> Refusal {
    match status {
        404 => Refusal::NotFound,
        400 => Refusal::BadName,
        413 | 507 => Refusal::TooLarge,
        429 | 503 => Refusal::Busy,
        401 | 403 | 405 => Refusal::Denied,
        _ => Refusal::Failed,
    }
}

impl Files for FtpDevices {
    fn login(&self, login: &Login) -> bool {
        if Self::is_factory(login) {
            if self.factory.is_none() {
                log::info!(
                    "ftp: {}: factory login refused (ftp.factory_login = false)",
                    login.ip
                );
            }
            return self.factory.is_some();
        }
        let mac = login.user.parse::<Mac>().ok();
        let account = match self.account_for(&login.user, mac.as_ref()) {
            Ok(Some(a)) => a,
            Ok(None) => return false,
            Err(e) => {
                log::error!("ftp login failed: {e}");
                return false;
            }
        };
        let header = &self.headers(login)[0].1;
        let outcome = self.service.auth.check_generations(
            Some(header),
            "GET",
            "/",
            login.ip,
            &account,
            || self.service.candidates(&account, mac, login.ip),
        );
        DeviceService::log_refused(&outcome, login.ip, mac.as_ref());
        matches!(outcome, Outcome::Ok { .. })
    }

    fn read(
        &self,
        login: &Login,
        path: &str,
        verb: &'static str,
        start: u64,
    ) -> Result<Content, Refusal> {
        if Self::is_factory(login) {
            let factory = self.factory.as_ref().ok_or(Refusal::Denied)?;
            return self.factory_read(factory, login, path, verb, start);
        }
        let target = Self::target(path)?;
        let method = if verb == "RETR" { "GET" } else { "HEAD" };
        let mut headers = self.headers(login);
        if start > 0 && method == "GET" {
            headers.push(("Range".into(), format!("bytes={start}-")));
        }
        let exchange = Exchange::begin();
        let req = Request::fake_http_from(
            SocketAddr::new(login.ip, 0),
            method,
            target,
            headers,
            vec![],
        );
        let response = self
            .service
            .handle_relayed(&req, &self.peer(login), verb, path);
        let status = response.status_code;
        if !matches!(status, 200 | 206) {
            return Err(refusal(status));
        }
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        let modified = header("Last-Modified")
            .and_then(|v| httpdate::parse_http_date(&v).ok())
            .or_else(|| Some(SystemTime::now()));
        let total = header("Content-Range")
            .and_then(|v| v.rsplit('/').next().and_then(|n| n.parse::<u64>().ok()));
        let file = conn::take_file_body(&response);
        let (body, size) = response.data.into_reader_and_size();
        let size = size.map_or(0, |n| n as u64);
        // A file body (firmware) is handed over beside the response, positioned already.
        let mut body: Box<dyn Read + Send> = match file {
            Some(f) => Box::new(f.take(size)),
            None => body,
        };
        let len = total.unwrap_or(size);
        if status == 200 && start > 0 {
            // A rendered file ignores Range: skip to the offset here.
            std::io::copy(&mut (&mut body).take(start), &mut std::io::sink())
                .map_err(|_| Refusal::Failed)?;
        }
        Ok(Content {
            body: Box::new(Held {
                body,
                _exchange: exchange,
            }),
            len,
            modified,
        })
    }

    fn store(
        &self,
        login: &Login,
        path: &str,
        body: &mut dyn Read,
        keep: u64,
    ) -> Result<u64, Refusal> {
        if Self::is_factory(login) {
            // The factory login proves nothing: it stores nothing.
            return Err(Refusal::Denied);
        }
        let target = Self::target(path)?;
        let peer = self.peer(login);
        let _exchange = Exchange::begin();
        let head = Head {
            method: "PUT".into(),
            target: target.clone(),
            version: 1,
            headers: self.headers(login),
        };
        let (dir, limit) = match self.service.plan(&head, &peer, &self.limits) {
            BodyPlan::File { dir, limit } => (dir, limit),
            BodyPlan::Respond(r) => return Err(refusal(r.status_code)),
            BodyPlan::Memory { .. } => return Err(Refusal::Denied),
        };
        let temp = Temp(dir.join(format!(
            ".incoming-{}",
            crate::domain::account::random_token(16)
        )));
        let (size, received, sha256) = self.receive(&temp.0, path, body, keep, limit)?;
        let mut headers = head.headers;
        headers.push((
            conn::UPLOAD_HEADER.into(),
            temp.0.to_string_lossy().into_owned(),
        ));
        headers.push((conn::UPLOAD_SIZE_HEADER.into(), size.to_string()));
        headers.push((conn::UPLOAD_SHA256_HEADER.into(), sha256));
        let req = Request::fake_http_from(peer.addr, "PUT", target, headers, vec![]);
        let verb = if keep > 0 { "APPE" } else { "STOR" };
        let response = self.service.handle_relayed(&req, &peer, verb, path);
        match response.status_code {
            200..=299 => Ok(received),
            status => Err(refusal(status)),
        }
    }

    fn enter(&self, _login: &Login, path: &str) -> Result<(), Refusal> {
        // Any well-formed directory may be entered; it lists empty.
        Self::target(path).map(drop)
    }
}
