//! External (DMS) mode: configuration files generated to disk and pushed to where an
//! external device management system serves them.
//!
//! `generate_all` renders every associated device as it would be served by the DMS
//! (`actions::templating::Loaded::files`) into `<data_dir>/external/<model segment>/`, writing
//! only files whose bytes changed (atomically: a temporary file renamed into place) and
//! removing files of devices that are gone. zerotouch owns that directory. `worker` runs this
//! in the server after every configuration change and hands changed devices to the file
//! transport (`script`, `s3`), debounced per device, with bounded concurrency, on threads of
//! its own: a slow or failing transport never delays a phone. Files stay on disk whatever the
//! transport does. `manual` is the console's and the API's "generate and push now".

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::actions::templating;
use crate::db::templates;
use crate::domain::mac::Mac;
use crate::domain::provstate::Reach;
use crate::domain::settings::{ProvSettings, TransportKind};
use crate::domain::variables::Context;
use crate::error::{Error, Result};

pub mod manual;
mod resolve;
pub mod s3;
pub mod script;
pub mod worker;

/// One device's generated files, as handed to a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub mac: String,
    pub tenant: String,
    /// The per-model path segment (directory under the external directory).
    pub segment: String,
    /// Absolute paths of every file of the device.
    pub files: Vec<PathBuf>,
}

/// The outcome of generating one device's files.
#[derive(Debug, Clone)]
pub struct Generated {
    pub job: Job,
    /// Whether any file's bytes changed (or a file was new).
    pub changed: bool,
}

/// Writes `bytes` to `path` unless it holds them already; returns whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A name of its own: the server's scan and any `generate` (the console's push, the
    // CLI) may write the same file at the same moment.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = match std::fs::File::create(&tmp) {
            // A concurrent clean-up removed the directory when it was empty a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                std::fs::File::create(&tmp)?
            }
            other => other?,
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("writing {}", path.display()), e)
    })?;
    Ok(true)
}

/// Renders every associated device into `dir` (External mode) and removes files no device
/// has any more. Returns every device with whether its files changed.
pub fn generate_all(conn: &Connection, dir: &Path, ctx: &Context) -> Result<Vec<Generated>> {
    // No request in External mode: the reach is the DMS (set per device by `files`).
    let local = Reach {
        host: ctx.settings.external_server.clone(),
        base_path: "/".into(),
        secure: true,
    };
    let mut out = Vec::new();
    let mut produced = BTreeSet::new();
    for mac in templates::list_associated_macs(conn)? {
        let Some(mac) = Mac::from_bare(&mac) else {
            continue;
        };
        let loaded = match templating::load_device(conn, &mac) {
            Ok(l) => l,
            // Deleted or dissociated since the list was read.
            Err(Error::NotFound { .. } | Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        };
        let files = loaded.files(ctx, &local, None);
        let seg_dir = dir.join(&files.segment);
        let mut changed = false;
        let mut paths = Vec::new();
        for (name, bytes) in &files.files {
            let path = seg_dir.join(name);
            changed |= write_if_changed(&path, bytes)?;
            produced.insert(path.clone());
            paths.push(path);
        }
        out.push(Generated {
            job: Job {
                mac: mac.to_string(),
                tenant: files.tenant,
                segment: files.segment,
                files: paths,
            },
            changed,
        });
    }
    remove_stale(dir, &produced);
    Ok(out)
}

/// Removes files (and then empty directories) under the segment directories of `dir` that
/// were not produced now. Hidden files (the asset manifest) at the top are kept.
fn remove_stale(dir: &Path, produced: &BTreeSet<PathBuf>) {
    const TEMP_FILE_AGE: std::time::Duration = std::time::Duration::from_secs(600);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for seg in entries.flatten() {
        let path = seg.path();
        if !path.is_dir() || seg.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Ok(files) = std::fs::read_dir(&path) {
            for f in files.flatten() {
                let p = f.path();
                // Another writer's file in progress (removed here only once it is old).
                if f.file_name().to_string_lossy().starts_with('.')
                    && f.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() < TEMP_FILE_AGE)
                {
                    continue;
                }
                if p.is_file() && !produced.contains(&p) {
                    match std::fs::remove_file(&p) {
                        Ok(()) => {
                            log::info!("external: removed {} (no device has it now)", p.display())
                        }
                        Err(e) => log::warn!("external: cannot remove {}: {e}", p.display()),
                    }
                }
            }
        }
        // Fails, harmlessly, when not empty.
        let _ = std::fs::remove_dir(&path);
    }
}

/// What a transport did with one job, for logs and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub summary: String,
}

/// Runs the configured transport for one job (blocking; the worker calls it on its own
/// threads, the CLI directly).
pub fn push(settings: &ProvSettings, job: &Job, timeout: std::time::Duration) -> Outcome {
    match settings.transport {
        TransportKind::None => Outcome {
            ok: true,
            summary: "transport none: files stay on disk".into(),
        },
        TransportKind::Script => script::run(settings, job).outcome(),
        TransportKind::S3 => match s3::S3Target::new(settings, timeout) {
            Ok(target) => target.push_job(job),
            Err(e) => Outcome {
                ok: false,
                summary: format!("S3: {e}"),
            },
        },
    }
}

/// The check `settings set` runs before saving: S3 connectivity when the S3 transport is
/// chosen (a clear error, nothing saved), nothing otherwise.
pub fn check_settings(settings: &ProvSettings, timeout: std::time::Duration) -> Result<()> {
    if settings.transport == TransportKind::S3 {
        s3::S3Target::new(settings, timeout)?.check()?;
    }
    Ok(())
}
