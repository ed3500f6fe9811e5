//! Overrides made on the phone (DESIGN §5 item 0): the `<mac>-phone.cfg`, `-web.cfg` and
//! `-system.cfg` files phones upload, which beat every file this server serves. They are
//! never merged into what a phone gets; they are parsed and shown per device as
//! "overridden on the phone", next to the server value each one hides.
//!
//! Clearing a device's overrides replaces each stored file with an empty override file
//! (the phone reads its override file from the server at boot, and then has none). The
//! phone also keeps the settings in its own memory and may upload them again: what must
//! also be reset on the phone (seed 002) is in `RESET_ON_PHONE`.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;

use super::mac::Mac;
use super::polycom::params;
use super::provstate::{PhoneTrust, Reach};
use super::xml::FoundParam;
use crate::db;
use crate::error::{Error, Result};

/// The override files phones upload, with what writes each.
pub const OVERRIDE_FILES: [(&str, &str); 3] = [
    ("-phone.cfg", "settings made on the phone's menus"),
    ("-web.cfg", "settings made in the phone's web interface"),
    ("-system.cfg", "settings made on the device (Trio, CX5100)"),
];

/// What a cleared override file holds: no parameter at all.
pub const EMPTY_OVERRIDES: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
<!-- zerotouch: overrides cleared on the server; the phone gets none from here -->\n\
<PHONE_CONFIG>\n  <OVERRIDES/>\n</PHONE_CONFIG>\n";

/// What must also be done on the phone, from seed 002 ("Reset the Phone to Factory Default
/// Settings"): settings live on the server, in the per-device file the phone uploads, and
/// in the phone's own memory; each source is reset separately.
pub const RESET_ON_PHONE: [&str; 4] = [
    "The phone also keeps these settings in its own memory and may upload them again. Reset them on the phone:",
    "Local settings: Settings > Advanced (administrator password, default 456) > Administration Settings > Reset to Defaults > Reset Local Configuration.",
    "Web settings: Settings > Advanced > Administration Settings > Reset to Defaults > Reset Web Configuration (the phone may reboot).",
    "Reset to Factory clears everything, including a provisioning server address and credentials entered on the phone: keep them at hand.",
];

/// Which redirect an overridden parameter makes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Redirect {
    /// The provisioning server (`device.prov.serverName`).
    Server,
    /// The SIP registration (`reg.N.server.*`, `reg.N.outboundProxy.*`, `voIpProt.server.*`,
    /// `voIpProt.SIP.outboundProxy.*`).
    Registration,
}

/// Whether a parameter set on the phone sends it to another provisioning server or SIP
/// registrar (the diagnostics finding `overrides.server` / `overrides.registration`).
pub fn redirect_kind(name: &str) -> Option<Redirect> {
    if name == "device.prov.serverName" {
        return Some(Redirect::Server);
    }
    let registration = (name.starts_with("reg.")
        && (name.contains(".server.") || name.contains(".outboundProxy.")))
        || name.starts_with("voIpProt.server.")
        || name.starts_with("voIpProt.SIP.outboundProxy.");
    registration.then_some(Redirect::Registration)
}

/// What the server sets for a parameter, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerValue {
    pub value: String,
    /// The file (and for the generated file, the source of the value).
    pub source: String,
}

/// One parameter overridden on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub name: String,
    /// The phone's value (masked when secret).
    pub value: String,
    pub line: u32,
    pub secret: bool,
    /// The server value it hides (masked when secret), if the server sets one.
    pub server: Option<ServerValue>,
    pub redirect: Option<Redirect>,
}

/// A stored override file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideFile {
    pub file: String,
    /// What writes it.
    pub written_by: &'static str,
    pub size: u64,
    pub updated_at: i64,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
    pub params: Vec<Override>,
}

/// A device's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceOverrides {
    pub files: Vec<OverrideFile>,
}

impl DeviceOverrides {
    /// Parameters overridden over all files.
    pub fn count(&self) -> usize {
        self.files.iter().map(|f| f.params.len()).sum()
    }

    /// The inventory's `overridden` flag: some override hides a value the server sets.
    pub fn hides_server_values(&self) -> bool {
        self.files
            .iter()
            .flat_map(|f| &f.params)
            .any(|p| p.server.is_some())
    }

    /// The server value hidden by a parameter, unmasked name lookup.
    pub fn server_value(&self, name: &str) -> Option<&ServerValue> {
        self.files
            .iter()
            .flat_map(|f| &f.params)
            .find(|p| p.name == name)
            .and_then(|p| p.server.as_ref())
    }
}

/// Where a device's override file is stored.
pub fn path(uploads_dir: &Path, mac: &Mac, file: &str) -> PathBuf {
    uploads_dir.join(mac.as_str()).join("overrides").join(file)
}

/// Parameters of a stored override file, in document order.
pub fn read_params(uploads_dir: &Path, mac: &Mac, file: &str) -> Result<Vec<FoundParam>> {
    let p = path(uploads_dir, mac, file);
    let bytes = std::fs::read(&p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
    super::xml::parse_params(file, &bytes)
}

/// The values the server sets for this device, in CONFIG_FILES order (the first file that
/// sets a parameter wins): the generated file, then the profile's files.
fn server_values(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<(String, ServerValue)>> {
    let mut out: Vec<(String, ServerValue)> = Vec::new();
    let generated = format!("{mac}-device.cfg");
    for p in super::ops::explain_device(conn, mac, reach, trust)? {
        // Values of the profile's files come below, under the names the phone fetches.
        if p.source == super::provstate::Source::ProfileFile {
            continue;
        }
        out.push((
            p.name,
            ServerValue {
                value: p.value,
                source: format!("{generated} ({})", p.source.label()),
            },
        ));
    }
    for (name, bytes) in super::ops::render_device(conn, mac, reach, trust)?
        .into_iter()
        .skip(2)
    {
        let Ok(found) = super::xml::parse_params(&name, &bytes) else {
            continue;
        };
        for f in found {
            if !out.iter().any(|(n, _)| *n == f.name) {
                out.push((
                    f.name,
                    ServerValue {
                        value: f.value,
                        source: name.clone(),
                    },
                ));
            }
        }
    }
    Ok(out)
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
/// parameters)`, in MAC order.
pub fn list_overridden(
    conn: &Connection,
    uploads_dir: &Path,
) -> Result<Vec<(Mac, Vec<String>, usize)>> {
    let mut out: Vec<(Mac, Vec<String>, usize)> = Vec::new();
    for (mac, file) in db::diag::list_override_uploads(conn)? {
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
    let sha = super::sha256_hex(EMPTY_OVERRIDES);
    for file in &stored {
        let dest = path(uploads_dir, mac, file);
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let temp = dir.join(format!(".clear-{}", super::account::random_token(12)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_the_server_and_the_registration() {
        assert_eq!(
            redirect_kind("device.prov.serverName"),
            Some(Redirect::Server)
        );
        assert_eq!(
            redirect_kind("reg.1.server.1.address"),
            Some(Redirect::Registration)
        );
        assert_eq!(
            redirect_kind("voIpProt.server.2.address"),
            Some(Redirect::Registration)
        );
        assert_eq!(redirect_kind("reg.1.label"), None);
        assert_eq!(redirect_kind("up.backlight.idleIntensity"), None);
    }

    #[test]
    fn the_empty_file_sets_nothing() {
        let params = crate::domain::xml::parse_params("x-phone.cfg", EMPTY_OVERRIDES).expect("xml");
        assert!(params.is_empty());
    }
}
