//! Overrides phones uploaded (`domain::overrides` has the rules): reading the stored
//! files, comparing them with what the server sends, and clearing them.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::db;
use crate::domain::mac::Mac;
use crate::domain::overrides::{
    DeviceOverrides, EMPTY_OVERRIDES, OVERRIDE_FILES, Override, OverrideFile, ServerValue,
    redirect_kind,
};
use crate::domain::polycom::params;
use crate::domain::polycom::render::profile_file_name;
use crate::domain::provstate::{PhoneTrust, Reach, Source};
use crate::domain::xml::FoundParam;
use crate::error::{Error, Result};

/// Where a device's override file is stored.
pub fn path(uploads_dir: &Path, mac: &Mac, file: &str) -> PathBuf {
    uploads_dir.join(mac.as_str()).join("overrides").join(file)
}

/// Parameters of a stored override file, in document order.
pub fn read_params(uploads_dir: &Path, mac: &Mac, file: &str) -> Result<Vec<FoundParam>> {
    let p = path(uploads_dir, mac, file);
    let bytes = std::fs::read(&p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
    crate::domain::xml::parse_params(file, &bytes)
}

/// The values the server sets for this device (the precedence rule's winners below the
/// phone's overrides), each with the file the phone reads it from: the generated file (and
/// the level that set it there), or the profile's file under the name the phone fetches.
fn server_values(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<(String, ServerValue)>> {
    let (account, data) = crate::actions::render::load(conn, mac)?;
    let context = crate::actions::templating::load_context(conn)?;
    let generated = format!("{mac}-device.cfg");
    let fetched_name = |file: &str| {
        data.profile
            .as_ref()
            .and_then(|p| p.files.iter().position(|f| f.file_name == file))
            .map_or_else(|| file.to_string(), |i| profile_file_name(mac.as_str(), i))
    };
    let (access, held) =
        crate::actions::render::access_as(&account, &data, crate::actions::render::As::Device);
    let settings = data
        .effective_settings(
            &account,
            reach,
            access,
            crate::actions::render::pair(&held),
            trust,
            &context,
        )
        .unwrap_or_default();
    Ok(settings
        .into_iter()
        .map(|p| {
            let source = if p.source == Source::ProfileFile {
                fetched_name(&p.detail)
            } else {
                format!("{generated} ({})", p.source.label())
            };
            (
                p.name,
                ServerValue {
                    value: p.value,
                    source,
                },
            )
        })
        .collect())
}

/// A device's stored override files, parsed, with the server values they hide.
pub fn device_overrides(
    conn: &Connection,
    uploads_dir: &Path,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<DeviceOverrides> {
    let stored: Vec<_> = db::access::list_uploads(conn, mac.as_str())?
        .into_iter()
        .filter(|u| u.kind == "overrides")
        .collect();
    if stored.is_empty() {
        return Ok(DeviceOverrides::default());
    }
    let associated = db::devices::find_device_by_mac(conn, mac)?.is_some_and(|d| d.is_associated());
    let server = if associated {
        server_values(conn, mac, reach, trust)?
    } else {
        Vec::new()
    };
    let mut out = DeviceOverrides::default();
    for u in stored {
        let written_by = OVERRIDE_FILES
            .iter()
            .find(|(suffix, _)| u.file_name.ends_with(suffix))
            .map(|(_, w)| *w)
            .unwrap_or("the phone");
        let (params, error) = match read_params(uploads_dir, mac, &u.file_name) {
            Ok(found) => (
                found
                    .into_iter()
                    .map(|p| {
                        let secret = params::is_secret(&p.name);
                        let mask = |v: &str| {
                            if secret && !v.is_empty() {
                                "********".to_string()
                            } else {
                                v.to_string()
                            }
                        };
                        Override {
                            server: server.iter().find(|(n, _)| *n == p.name).map(|(_, s)| {
                                ServerValue {
                                    value: mask(&s.value),
                                    source: s.source.clone(),
                                }
                            }),
                            redirect: redirect_kind(&p.name).filter(|_| !p.value.is_empty()),
                            value: mask(&p.value),
                            name: p.name,
                            line: p.line,
                            secret,
                        }
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        out.files.push(OverrideFile {
            file: u.file_name,
            written_by,
            size: u.size.max(0) as u64,
            updated_at: u.updated_at,
            error,
            params,
        });
    }
    Ok(out)
}

/// Devices with stored override files that set at least one parameter: `(mac, files,
/// parameters)`, in MAC order; only the devices of `account` (an id) when given.
pub fn list_overridden(
    conn: &Connection,
    uploads_dir: &Path,
    account: Option<i64>,
) -> Result<Vec<(Mac, Vec<String>, usize)>> {
    let mut out: Vec<(Mac, Vec<String>, usize)> = Vec::new();
    for (mac, file) in db::diag::list_override_uploads(conn, account)? {
        let Ok(mac) = mac.parse::<Mac>() else {
            continue;
        };
        let n = read_params(uploads_dir, &mac, &file)
            .map(|p| p.len())
            .unwrap_or(0);
        if n == 0 {
            continue;
        }
        match out.last_mut() {
            Some((m, files, count)) if *m == mac => {
                files.push(file);
                *count += n;
            }
            _ => out.push((mac, vec![file], n)),
        }
    }
    Ok(out)
}

/// Clears a device's overrides: every stored override file is replaced, atomically, by an
/// empty one. Returns the files cleared.
pub fn clear(conn: &Connection, uploads_dir: &Path, mac: &Mac) -> Result<Vec<String>> {
    let stored: Vec<String> = db::access::list_uploads(conn, mac.as_str())?
        .into_iter()
        .filter(|u| u.kind == "overrides")
        .map(|u| u.file_name)
        .collect();
    let sha = crate::domain::sha256_hex(EMPTY_OVERRIDES);
    for file in &stored {
        let dest = path(uploads_dir, mac, file);
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let temp = dir.join(format!(
            ".clear-{}",
            crate::domain::account::random_token(12)
        ));
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(EMPTY_OVERRIDES)?;
            f.sync_all()?;
            std::fs::rename(&temp, &dest)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::io(format!("clearing {}", dest.display()), e));
        }
        db::access::upsert_upload(
            conn,
            mac.as_str(),
            "overrides",
            file,
            EMPTY_OVERRIDES.len() as u64,
            &sha,
        )?;
    }
    if !stored.is_empty() {
        log::info!("overrides of {mac} cleared: {}", stored.join(", "));
    }
    Ok(stored)
}
