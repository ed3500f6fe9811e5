//! Device uploads and a device's own files: who may read or write them (the device itself
//! where the account withholds secrets), storing an upload the loop streamed to disk with
//! one rename, and serving a stored override without the parameters the state machine owns.

use super::*;
use crate::actions::uploads::Admission;

/// A stored override file as phones get it back: without the parameters the state machine
/// owns (stripped and flagged in the log). Small files: read whole.
fn override_without_owned(
    req: &Request,
    root: &Path,
    path: &Path,
    mac: &Mac,
    name: &str,
) -> crate::Result<Response> {
    let Some(mut file) = open_below(root, path) else {
        return Ok(text(404, "not found"));
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?;
    let (served, stripped) = if bytes.is_empty() {
        (bytes, Vec::new())
    } else {
        crate::domain::withhold::strip_owned(&bytes)
    };
    if !stripped.is_empty() {
        log::warn!(
            "{mac}: override {name} sets {} (owned by zerotouch): served without them",
            stripped.join(", ")
        );
    }
    let rendered = Rendered::new(served);
    let mut r = if req.header("If-None-Match") == Some(&*rendered.etag) {
        Response::empty_204().with_status_code(304)
    } else {
        Response::from_data("application/xml", rendered.bytes.to_vec())
    };
    r.headers
        .push(("ETag".into(), rendered.etag.to_string().into()));
    Ok(
        r.with_additional_header("X-Content-Type-Options", "nosniff")
            .with_additional_header("Cache-Control", "no-store"),
    )
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

impl DeviceService {
    /// Caps what all MACs no device is associated with may store together.
    pub fn with_unassociated_cap(mut self, bytes: u64) -> DeviceService {
        self.unassociated_cap = AtomicU64::new(bytes);
        self
    }

    /// The refusal of an upload over the unassociated cap, logged at most once a minute.
    fn unassociated_full(&self, mac: &Mac, name: &str) -> Response {
        let now = crate::db::now_ms().max(0) as u64;
        let last = self.unassociated_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000
            && self
                .unassociated_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!(
                "{mac}: upload {name} refused: devices not associated with a profile have \
                 stored limits.unassociated_upload_bytes ({} bytes) together; associate \
                 the device, or delete uploads of unknown MACs (logged once a minute)",
                self.unassociated_cap.load(Ordering::Relaxed)
            );
        }
        text(
            507,
            "uploads of devices not associated with a profile are full \
             (limits.unassociated_upload_bytes); associate this device to store its files",
        )
    }

    /// Whether a request may read or write `mac`'s own files: when what it may be served
    /// withholds nothing (`enrolment::access`: the request proved it is the device, the
    /// account does not withhold, or the device is exempt or kept on secrets since before
    /// the upgrade).
    pub(super) fn may_use_device_files(
        &self,
        account: &Account,
        proof: &Proof,
        mac: &Mac,
    ) -> crate::Result<bool> {
        if !account.device_secrets || proof.device_credential || proof.certificate {
            return Ok(true);
        }
        Ok(match self.prov.lookup(mac)? {
            Lookup::Associated(e) if e.device.account_id == account.id.0 => {
                !e.access(account, *proof, None).withholds()
            }
            _ => false,
        })
    }

    /// The refusal of a write to a device's own files by a request that did not prove it is
    /// the device, if it is refused. One check for every write: `plan` asks it before a body
    /// is received, and `commit_upload` again before anything is stored, whatever the body's
    /// length or the request's HTTP version.
    pub(super) fn write_refusal(
        &self,
        account: &Account,
        proof: &Proof,
        mac: &Mac,
    ) -> Option<Response> {
        let allowed = self
            .may_use_device_files(account, proof, mac)
            .unwrap_or_else(|e| {
                log::error!("{mac}: cannot read it: {e}");
                false
            });
        if allowed {
            return None;
        }
        self.metrics
            .secrets_withheld
            .fetch_add(1, Ordering::Relaxed);
        Some(text(
            403,
            "per-device files are stored only from the device itself (its own credential or certificate)",
        ))
    }

    /// Whether `mac` is a device of this account that may upload and read its files.
    pub(super) fn owns(&self, ctx: &Ctx<'_>, mac: &Mac) -> crate::Result<bool> {
        Ok(match self.prov.lookup(mac)? {
            Lookup::Associated(e) | Lookup::Seen(e) => e.device.account_id == ctx.account.id.0,
            Lookup::Unknown => false,
        })
    }

    pub(super) fn read_upload(
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
        if !self.may_use_device_files(&ctx.account, &ctx.proof(mac), mac)? {
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
        let path = self.dirs.upload_path(mac, kind, name);
        if kind == UploadKind::Override {
            // An override never hands back what the state machine owns (I6): a phone that
            // stored its provisioning server or credentials there would otherwise override
            // every change zerotouch makes to them.
            return override_without_owned(req, &self.dirs.uploads, &path, mac, name);
        }
        Ok(serve_file(req, &self.dirs.uploads, &path, content_type)
            .with_additional_header("X-Content-Type-Options", "nosniff")
            .with_additional_header("Cache-Control", "no-store"))
    }

    /// Moves a streamed upload into place.
    pub(super) fn store_upload(
        &self,
        req: &Request,
        ctx: &Ctx<'_>,
        kind: UploadKind,
        mac: &Mac,
        name: &str,
    ) -> (Response, Option<UploadNote>) {
        let Some(temp) = req.header(conn::UPLOAD_HEADER).map(PathBuf::from) else {
            // The loop plans every PUT, with or without a body (an empty one arrives as an
            // empty file): a PUT without a file was not received through the plan.
            log::error!("{mac}: PUT {name} arrived without its planned body");
            return (text(500, "internal error"), None);
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

    pub(super) fn commit_upload(
        &self,
        ctx: &Ctx<'_>,
        kind: UploadKind,
        mac: &Mac,
        name: &str,
        body: Incoming<'_>,
    ) -> (Response, Option<UploadNote>) {
        let Incoming { temp, size, sha256 } = body;
        let result = (|| -> crate::Result<(Response, Option<UploadNote>)> {
            if let Some(r) = self.write_refusal(&ctx.account, &ctx.proof(mac), mac) {
                let _ = std::fs::remove_file(temp);
                return Ok((r, None));
            }
            // Associated devices have their quota; MACs only seen share one cap as well.
            let cap = match self.prov.lookup(mac)? {
                Lookup::Associated(e) if e.device.account_id == ctx.account.id.0 => None,
                Lookup::Seen(e) if e.device.account_id == ctx.account.id.0 => {
                    Some(self.unassociated_cap.load(Ordering::Relaxed))
                }
                _ => {
                    let _ = std::fs::remove_file(temp);
                    let status = if ctx.account.unknown_devices == UnknownDevices::Reject {
                        403
                    } else {
                        404
                    };
                    return Ok((text(status, "unknown device"), None));
                }
            };
            let admitted = self.ledger.admit(
                self.prov.pool(),
                mac,
                kind,
                name,
                size,
                self.device_quota.load(Ordering::Relaxed),
                cap,
            )?;
            let refusal = match admitted {
                Admission::Admitted => None,
                Admission::OverQuota => Some(text(507, "this device's upload quota is used up")),
                Admission::OverUnassociatedCap => Some(self.unassociated_full(mac, name)),
            };
            if let Some(r) = refusal {
                let _ = std::fs::remove_file(temp);
                return Ok((r, None));
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
}
