//! The device endpoints over TFTP (`tftp::Source`). TFTP has no authentication, so a TFTP
//! read request is a request without credentials from its address, and it gets only what
//! an unknown device gets without proof through the same rules as HTTP: the
//! unknown-device policy's `000000000000.cfg`, staging and ZTP files
//! (`unknown_device_file`), an unknown MAC's `<mac>.cfg` (not found, and noted under
//! `stage` as HTTP notes it), and firmware images (`actions::firmware::locate`, as over
//! HTTP). A device's generated and profile files, its uploads, the TLS probe and shared
//! assets are never served over TFTP: they may carry a SIP secret, the device's own
//! credential or the account's. An associated device asking for its `<mac>.cfg` is told
//! the file is not found (it then falls back to `000000000000.cfg`), and a warning says it
//! must be moved to HTTP(S). Every request is recorded in the access log with method `RRQ`
//! and counted in `/metrics` under the TFTP family.

use std::net::SocketAddr;

use super::*;
use crate::tftp::{Content, Refusal, Source};

/// The device service as a TFTP source.
pub struct TftpDevices {
    pub service: Arc<DeviceService>,
    /// When each associated MAC was last warned about (one warning per MAC per hour).
    warned: Mutex<HashMap<Mac, Instant>>,
}

impl TftpDevices {
    pub fn new(service: Arc<DeviceService>) -> TftpDevices {
        TftpDevices {
            service,
            warned: Mutex::new(HashMap::new()),
        }
    }

    /// What a read request gets, and what it contributes to its access-log row.
    fn answer(&self, name: &str, peer: SocketAddr, meta: &mut Meta) -> Result<Content, Refusal> {
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
        let (account, _base) = routed;
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
                    Lookup::Unknown => {
                        if account.unknown_devices == UnknownDevices::Stage {
                            s.prov
                                .record_unassociated(&account, mac)
                                .map_err(|e| failed(&e))?;
                        }
                    }
                    Lookup::Associated(_) => self.warn_associated(mac, peer),
                    _ => {}
                }
                // Never rendered over TFTP: the phone falls back to `000000000000.cfg`.
                Err(Refusal::not_found("not found"))
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
            DeviceFile::Generated(_)
            | DeviceFile::Profile(..)
            | DeviceFile::Upload(..)
            | DeviceFile::TlsProbe(_)
            | DeviceFile::Asset(_) => Err(Refusal::denied(
                "served over HTTP(S) only: TFTP has no authentication",
            )),
        }
    }

    /// An associated device booting over TFTP: it gets only the unknown-device files until
    /// its boot server points at HTTP(S). Warned once an hour per MAC.
    fn warn_associated(&self, mac: &Mac, peer: SocketAddr) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 10_000 {
            w.retain(|_, t| t.elapsed() < Duration::from_secs(3600));
        }
        if w.get(mac)
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600))
        {
            w.insert(*mac, Instant::now());
            log::warn!(
                "{mac}: associated, but asked for its files over TFTP from {}; TFTP serves only \
                 what an unknown device gets (never its configuration or a credential): point \
                 its boot server (DHCP option 66/160) at HTTP or HTTPS",
                peer.ip()
            );
        }
    }
}

impl Source for TftpDevices {
    fn open(&self, name: &str, peer: SocketAddr) -> Result<Content, Refusal> {
        let started = Instant::now();
        let mut meta = Meta {
            auth: "none",
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
        self.service.metrics.observe_tftp(route, status == 200);
        if let Ok(c) = &answer {
            meta.bytes = c.len();
        }
        log::debug!(
            "tftp request from {}: {} -> {status} ({} bytes, {micros} us)",
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
            method: "RRQ".to_string(),
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
