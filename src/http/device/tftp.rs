//! The device endpoints over TFTP (`tftp::Source`). TFTP has no authentication, so a TFTP
//! read request is a request without credentials from its address, and it gets only what
//! an unknown device gets without proof through the same rules as HTTP: the
//! unknown-device policy's `000000000000.cfg`, staging and ZTP files
//! (`unknown_device_file`), an unknown MAC's `<mac>.cfg` (not found, and noted under
//! `stage` as HTTP notes it), and firmware images (`actions::firmware::locate`, as over
//! HTTP). Uploads, the TLS probe and shared assets are never served over TFTP.
//!
//! An associated device's files (`<mac>.cfg`, `<mac>-device.cfg`, its profile files) are
//! served only when its account allows the account credential over TFTP
//! (`Account::tftp_credential`, off by default): then they are rendered as for a request
//! with the account credential outside an enrolment window (`Access::Withheld`: no SIP
//! secret, no device's own credential; Auto-Sync's `device.prov.*` with the account
//! credential stay) at the device HTTP listener's address (`move_to`), so Auto-Sync's
//! address change moves the phone to HTTP(S) through the state machine like any other
//! move: delivered here, confirmed when the phone comes back over HTTP. A TFTP request is
//! never evidence (nothing is observed: a phone still on TFTP applied nothing). Without the
//! allowance such a device is told its `<mac>.cfg` is not found (it falls back to
//! `000000000000.cfg`) and a warning says to allow it or move its boot server.
//!
//! Every request is recorded in the access log with method `RRQ` and counted in `/metrics`
//! under the TFTP family.

use std::net::SocketAddr;

use super::*;
use crate::tftp::{Content, Refusal, Source};

/// The device service as a TFTP source.
pub struct TftpDevices {
    pub service: Arc<DeviceService>,
    /// `host:port` of the device HTTP listener as phones should reach it: where an account
    /// that allows its credential over TFTP moves its phones (None: device HTTP is off,
    /// and associated devices' files are never served over TFTP).
    move_to: Option<String>,
    /// When each associated MAC was last warned about (one warning per MAC per hour).
    warned: Mutex<HashMap<Mac, Instant>>,
    /// Whether an account lets these requests have its associated devices' files (with the
    /// account credential, without SIP secrets): `Account::tftp_credential` for TFTP.
    allows: fn(&Account) -> bool,
    /// The protocol, for messages.
    proto: &'static str,
}

impl TftpDevices {
    pub fn new(service: Arc<DeviceService>, move_to: Option<String>) -> TftpDevices {
        TftpDevices {
            service,
            move_to,
            warned: Mutex::new(HashMap::new()),
            allows: |a| a.tftp_credential,
            proto: "TFTP",
        }
    }

    /// The same rules for FTP's factory login (`PlcmSpIp`), which proves nothing either:
    /// an associated device's files are served when the account accepts the factory login
    /// (`Account::ftp_factory_login`).
    pub fn for_ftp_factory(service: Arc<DeviceService>, move_to: Option<String>) -> TftpDevices {
        TftpDevices {
            allows: |a| a.ftp_factory_login,
            proto: "FTP",
            ..TftpDevices::new(service, move_to)
        }
    }

    /// What a read request gets, and what it contributes to its access-log row.
    pub(super) fn answer(
        &self,
        name: &str,
        peer: SocketAddr,
        meta: &mut Meta,
    ) -> Result<Content, Refusal> {
        let s = &self.service;
        // A TFTP name is taken as written: no percent-decoding, and one leading `/` (many
        // clients send one) means the root. `..`, `.`, empty segments, backslashes and
        // control characters are refused by the same strict path rules as HTTP.
        if name.contains('%') || name.contains('\\') || name.starts_with("//") {
            return Err(Refusal::denied("forbidden character in file name"));
        }
        let path = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        let mut segs = devicepath::segments(&path)
            .map_err(|devicepath::PathError::Invalid(why)| Refusal::denied(why))?;
        let routed = s
            .prov
            .route(&mut segs)
            .map_err(|e| failed(&e))?
            .ok_or_else(|| Refusal::not_found("no such account"))?;
        let (account, base) = routed;
        let file = devicepath::classify(&segs).ok_or_else(|| Refusal::not_found("not found"))?;
        meta.account_id = Some(account.id.0);
        meta.mac = file.mac();
        meta.route = Some(route_of(&file, "GET"));
        if !account.provisioning_enabled {
            return Err(Refusal::not_found("provisioning is disabled"));
        }
        match &file {
            DeviceFile::DefaultMaster | DeviceFile::Stage(_) | DeviceFile::Ztp(_) => {
                match unknown_device_file(&account, &file) {
                    Ok(r) => Ok(Content::Bytes(r.bytes.to_vec())),
                    Err((403, m)) => Err(Refusal::denied(m)),
                    Err((_, m)) => Err(Refusal::not_found(m)),
                }
            }
            DeviceFile::Master(mac) => {
                match s.prov.lookup(mac).map_err(|e| failed(&e))? {
                    Lookup::Unknown if account.unknown_devices == UnknownDevices::Stage => {
                        s.prov
                            .record_unassociated(&account, mac)
                            .map_err(|e| failed(&e))?;
                    }
                    Lookup::Associated(entry) if entry.device.account_id == account.id.0 => {
                        return self.device_file(&account, &base, entry, FileKind::Master, peer);
                    }
                    _ => {}
                }
                // The phone falls back to `000000000000.cfg`.
                Err(Refusal::not_found("not found"))
            }
            DeviceFile::Generated(mac) | DeviceFile::Profile(mac, _) => {
                let kind = match &file {
                    DeviceFile::Profile(_, i) => FileKind::Profile(*i),
                    _ => FileKind::Generated,
                };
                match s.prov.lookup(mac).map_err(|e| failed(&e))? {
                    Lookup::Associated(entry) if entry.device.account_id == account.id.0 => {
                        self.device_file(&account, &base, entry, kind, peer)
                    }
                    _ => Err(Refusal::not_found("not associated")),
                }
            }
            DeviceFile::Firmware { version, file } => {
                let found = {
                    let conn = s.prov.pool().get().map_err(|e| failed(&e))?;
                    crate::actions::firmware::locate(&conn, &s.dirs.firmware, version, file, None)
                        .map_err(|e| failed(&e))?
                };
                match found {
                    Image::File(path) => {
                        let f = open_below(&s.dirs.firmware, &path)
                            .ok_or_else(|| Refusal::not_found("not found"))?;
                        let len = f
                            .metadata()
                            .map_err(|_| Refusal::not_found("not found"))?
                            .len();
                        Ok(Content::File(f, len))
                    }
                    Image::Damaged(why) => {
                        log::error!("{why}");
                        Err(Refusal::not_found("not found"))
                    }
                    Image::NotFound => Err(Refusal::not_found("not found")),
                }
            }
            DeviceFile::Upload(..) | DeviceFile::TlsProbe(_) | DeviceFile::Asset(_) => Err(
                Refusal::denied("served over HTTP(S) only: this request proves nothing"),
            ),
        }
    }

    /// An associated device's file: only when its account allows the account credential
    /// over TFTP, rendered as for the account credential outside an enrolment window
    /// (`Access::Withheld`) at the device HTTP listener's address. Never observed.
    fn device_file(
        &self,
        account: &Account,
        base: &str,
        entry: Arc<DeviceEntry>,
        kind: FileKind,
        peer: SocketAddr,
    ) -> Result<Content, Refusal> {
        let mac = entry.device.mac;
        let Some(host) = self.move_to.as_ref().filter(|_| (self.allows)(account)) else {
            self.warn_associated(&mac, peer);
            return Err(match kind {
                FileKind::Master => Refusal::not_found("not found"),
                _ => Refusal::denied("served over HTTP(S) only: this request proves nothing"),
            });
        };
        let reach = Reach {
            host: host.clone(),
            base_path: base.to_string(),
            secure: false,
        };
        let rendered = self
            .service
            .prov
            .render(account, &entry, kind, &reach, Access::Withheld, None)
            .map_err(|e| failed(&e))?
            .ok_or_else(|| Refusal::not_found("not found"))?;
        if self.service.http_mode == HttpMode::NoSecrets && carries_secrets(&rendered.bytes) {
            return Err(Refusal::denied(
                "this file carries the account credential and device.http_mode = no-secrets",
            ));
        }
        Ok(Content::Bytes(rendered.bytes.to_vec()))
    }

    /// An associated device booting over TFTP while its account does not allow the account
    /// credential over TFTP: it gets only the unknown-device files until its boot server
    /// points at HTTP(S). Warned once an hour per MAC.
    fn warn_associated(&self, mac: &Mac, peer: SocketAddr) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 10_000 {
            w.retain(|_, t| t.elapsed() < Duration::from_secs(3600));
        }
        if w.get(mac)
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600))
        {
            w.insert(*mac, Instant::now());
            if self.proto == "FTP" {
                log::warn!(
                    "{mac}: associated, but logged in over FTP from {} with the factory login, \
                     which its account refuses: it gets only what an unknown device gets; \
                     point its boot server at HTTP or HTTPS, or accept the factory login \
                     (`zerotouch account ftp-factory-login on`)",
                    peer.ip()
                );
                return;
            }
            log::warn!(
                "{mac}: associated, but asked for its files over TFTP from {}; TFTP serves it \
                 only what an unknown device gets: point its boot server (DHCP option 66/160) \
                 at HTTP or HTTPS, or let TFTP serve the account credential (`zerotouch \
                 account tftp-credential on`, then as exposed as in option 160)",
                peer.ip()
            );
        }
    }
}

impl Source for TftpDevices {
    fn open(&self, name: &str, peer: SocketAddr) -> Result<Content, Refusal> {
        self.open_as(name, peer, "RRQ")
    }
}

impl TftpDevices {
    /// A read request recorded under `verb` (`RRQ`, or the FTP command of a factory
    /// login's request).
    pub(super) fn open_as(
        &self,
        name: &str,
        peer: SocketAddr,
        verb: &str,
    ) -> Result<Content, Refusal> {
        let started = Instant::now();
        let mut meta = Meta {
            auth: if verb == "RRQ" { "none" } else { "factory" },
            ..Default::default()
        };
        let answer = self.answer(name, peer, &mut meta);
        let micros = started.elapsed().as_micros() as u64;
        let status = match &answer {
            Ok(_) => 200,
            Err(r) => match r.code {
                crate::tftp::ErrorCode::FileNotFound => 404,
                crate::tftp::ErrorCode::AccessViolation => 403,
                _ => 500,
            },
        };
        let route = meta.route.unwrap_or(Route::Other);
        if verb == "RRQ" {
            self.service.metrics.observe_tftp(route, status == 200);
        } else {
            self.service.metrics.observe_ftp(route, status == 200);
        }
        if let Ok(c) = &answer {
            meta.bytes = c.len();
        }
        log::debug!(
            "{} request from {}: {} -> {status} ({} bytes, {micros} us)",
            if verb == "RRQ" {
                "tftp"
            } else {
                "ftp (factory login)"
            },
            peer.ip(),
            name.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>(),
            meta.bytes
        );
        self.service.recorder.record(AccessRecord {
            ts_ms: crate::db::now_ms(),
            account_id: meta.account_id,
            mac: meta.mac.map(|m| m.to_string()),
            ip: peer.ip().to_string(),
            method: verb.to_string(),
            path: name.chars().take(512).collect(),
            status,
            bytes: meta.bytes,
            duration_us: micros,
            auth: meta.auth,
            secure: false,
            user_agent: String::new(),
            ua_family: String::new(),
            ua_model: String::new(),
            firmware: None,
            sync: false,
            upload: None,
        });
        answer
    }
}

fn failed(e: &crate::Error) -> Refusal {
    log::error!("tftp request failed: {e}");
    Refusal::failed("internal error")
}
