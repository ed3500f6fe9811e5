//! Provisioning settings (docs/design.md §9, after the PBX settings page): the server
//! address, protocols and credentials, Local or External (DMS) mode, SIP and infrastructure
//! servers, and the file transport of External mode.
//!
//! Settings are stored one field per row (`prov_settings`); a field that is not stored has
//! its documented default. Every change is validated as a whole — all problems, each naming
//! its field — before anything is written, so a refused change leaves nothing half-written.
//! Secrets (passwords, the S3 secret key) are masked by `display` unless asked for.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, FieldError, Result};

/// Where phones get their configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Mode {
    /// zerotouch serves phones itself (the default).
    #[default]
    Local,
    /// Configuration files are generated to `<data_dir>/external/` and phones fetch them
    /// from an external device management system (DMS).
    External,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::External => "external",
        }
    }
}

/// How generated files leave the server in External mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum TransportKind {
    /// Files stay on disk; the admin collects them.
    #[default]
    None,
    /// A custom executable is run with the file paths as arguments.
    Script,
    /// Files are uploaded to an S3-compatible bucket.
    S3,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::None => "none",
            TransportKind::Script => "script",
            TransportKind::S3 => "s3",
        }
    }
}

/// Protocols a provisioning URL may use (the PBX settings page). `auto` means the scheme
/// the phone used (local mode).
pub const PROTOCOLS: &[&str] = &["auto", "http", "https", "ftp", "ftps", "tftp"];

/// The provisioning settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvSettings {
    pub mode: Mode,
    /// The management server address placed in files as server or proxy address (host or
    /// IP, optionally `:port`). Empty: the host phones use to reach this server.
    pub server_address: String,
    /// One of `PROTOCOLS`.
    pub default_protocol: String,
    /// Credentials for HTTP, HTTPS and TFTP URLs. Empty user: the account's device
    /// credentials.
    pub http_user: String,
    pub http_password: String,
    /// Credentials for FTP and FTPS URLs.
    pub ftp_user: String,
    pub ftp_password: String,
    /// External mode: the DMS phones download from (host or IP, optionally `:port`).
    pub external_server: String,
    /// External mode: `http` or `https`.
    pub external_protocol: String,
    /// External mode: the URL path on the DMS; a per-model segment follows it.
    pub external_path: String,
    pub external_user: String,
    pub external_password: String,
    /// External mode: where phones download firmware; empty means the DMS.
    pub external_firmware_server: String,
    /// SIP registrar (`${REG_SERVER}`); empty means the management server.
    pub registrar: String,
    /// Backup registrar (`${REG_SERVER_BACKUP}`); empty by default.
    pub registrar_backup: String,
    /// SIP proxy (`${PROXY_SERVER}`); empty means the registrar.
    pub sip_proxy: String,
    /// Backup SIP proxy (`${PROXY_SERVER_BACKUP}`); empty means the backup registrar.
    pub sip_proxy_backup: String,
    /// NTP server (`${NTP_SERVER}`); empty means the management server.
    pub ntp_server: String,
    pub transport: TransportKind,
    /// Script transport: absolute path of an executable.
    pub script_path: String,
    /// Script transport: seconds before the script is killed.
    pub script_timeout_secs: u32,
    /// S3 transport: the API endpoint, e.g. `https://s3.amazonaws.com` or
    /// `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    pub s3_region: String,
    /// Prefix of every key (`configs/`); empty means the bucket root.
    pub s3_prefix: String,
}

impl Default for ProvSettings {
    fn default() -> Self {
        ProvSettings {
            mode: Mode::Local,
            server_address: String::new(),
            default_protocol: "auto".into(),
            http_user: String::new(),
            http_password: String::new(),
            ftp_user: String::new(),
            ftp_password: String::new(),
            external_server: String::new(),
            external_protocol: "https".into(),
            external_path: "/provisioning".into(),
            external_user: String::new(),
            external_password: String::new(),
            external_firmware_server: String::new(),
            registrar: String::new(),
            registrar_backup: String::new(),
            sip_proxy: String::new(),
            sip_proxy_backup: String::new(),
            ntp_server: String::new(),
            transport: TransportKind::None,
            script_path: String::new(),
            script_timeout_secs: 30,
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_access_key: String::new(),
            s3_secret_key: String::new(),
            s3_region: "us-east-1".into(),
            s3_prefix: String::new(),
        }
    }
}

/// One field: its name, whether it is a secret, and what it is for.
pub struct FieldInfo {
    pub name: &'static str,
    pub secret: bool,
    pub help: &'static str,
}

/// Every field, in display order.
pub const FIELDS: &[FieldInfo] = &[
    f("mode", false, "local or external"),
    f(
        "server_address",
        false,
        "management server address; empty: the host phones use",
    ),
    f(
        "default_protocol",
        false,
        "auto, http, https, ftp, ftps or tftp",
    ),
    f(
        "http_user",
        false,
        "HTTP/HTTPS/TFTP user; empty: the account's device user",
    ),
    f("http_password", true, "HTTP/HTTPS/TFTP password"),
    f("ftp_user", false, "FTP/FTPS user"),
    f("ftp_password", true, "FTP/FTPS password"),
    f(
        "external_server",
        false,
        "external mode: DMS host phones download from",
    ),
    f("external_protocol", false, "external mode: http or https"),
    f("external_path", false, "external mode: URL path on the DMS"),
    f("external_user", false, "external mode: DMS user"),
    f("external_password", true, "external mode: DMS password"),
    f(
        "external_firmware_server",
        false,
        "external mode: firmware host; empty: the DMS",
    ),
    f(
        "registrar",
        false,
        "SIP registrar; empty: the management server",
    ),
    f("registrar_backup", false, "backup SIP registrar"),
    f("sip_proxy", false, "SIP proxy; empty: the registrar"),
    f(
        "sip_proxy_backup",
        false,
        "backup SIP proxy; empty: the backup registrar",
    ),
    f(
        "ntp_server",
        false,
        "NTP server; empty: the management server",
    ),
    f("transport", false, "external mode: none, script or s3"),
    f(
        "script_path",
        false,
        "script transport: absolute path of an executable",
    ),
    f(
        "script_timeout_secs",
        false,
        "script transport: seconds before it is killed",
    ),
    f("s3_endpoint", false, "S3 transport: endpoint URL"),
    f("s3_bucket", false, "S3 transport: bucket"),
    f("s3_access_key", false, "S3 transport: access key"),
    f("s3_secret_key", true, "S3 transport: secret key"),
    f("s3_region", false, "S3 transport: region"),
    f(
        "s3_prefix",
        false,
        "S3 transport: key prefix; empty: the bucket root",
    ),
];

const fn f(name: &'static str, secret: bool, help: &'static str) -> FieldInfo {
    FieldInfo { name, secret, help }
}

/// Whether a field holds a secret.
pub fn is_secret_field(name: &str) -> bool {
    FIELDS.iter().any(|f| f.name == name && f.secret)
}

impl ProvSettings {
    /// The value of a field as text.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "mode" => self.mode.as_str().into(),
            "transport" => self.transport.as_str().into(),
            "script_timeout_secs" => self.script_timeout_secs.to_string(),
            _ => self.text_field(name)?.clone(),
        })
    }

    fn text_field(&self, name: &str) -> Option<&String> {
        Some(match name {
            "server_address" => &self.server_address,
            "default_protocol" => &self.default_protocol,
            "http_user" => &self.http_user,
            "http_password" => &self.http_password,
            "ftp_user" => &self.ftp_user,
            "ftp_password" => &self.ftp_password,
            "external_server" => &self.external_server,
            "external_protocol" => &self.external_protocol,
            "external_path" => &self.external_path,
            "external_user" => &self.external_user,
            "external_password" => &self.external_password,
            "external_firmware_server" => &self.external_firmware_server,
            "registrar" => &self.registrar,
            "registrar_backup" => &self.registrar_backup,
            "sip_proxy" => &self.sip_proxy,
            "sip_proxy_backup" => &self.sip_proxy_backup,
            "ntp_server" => &self.ntp_server,
            "script_path" => &self.script_path,
            "s3_endpoint" => &self.s3_endpoint,
            "s3_bucket" => &self.s3_bucket,
            "s3_access_key" => &self.s3_access_key,
            "s3_secret_key" => &self.s3_secret_key,
            "s3_region" => &self.s3_region,
            "s3_prefix" => &self.s3_prefix,
            _ => return None,
        })
    }

    /// Sets one field from text (trimmed). Unknown names and values that are not one of
    /// a field's choices are errors naming the field; other checks are `validate`'s.
    pub fn set(&mut self, name: &str, value: &str) -> std::result::Result<(), FieldError> {
        let value = value.trim();
        match name {
            "mode" => {
                self.mode = match value.to_ascii_lowercase().as_str() {
                    "local" => Mode::Local,
                    "external" => Mode::External,
                    _ => {
                        return Err(FieldError::new(
                            name,
                            format!("`{value}` is not local or external"),
                        ));
                    }
                }
            }
            "transport" => {
                self.transport = match value.to_ascii_lowercase().as_str() {
                    "none" | "" => TransportKind::None,
                    "script" => TransportKind::Script,
                    "s3" => TransportKind::S3,
                    _ => {
                        return Err(FieldError::new(
                            name,
                            format!("`{value}` is not none, script or s3"),
                        ));
                    }
                }
            }
            "script_timeout_secs" => {
                self.script_timeout_secs = value.parse().map_err(|_| {
                    FieldError::new(name, format!("`{value}` is not a number of seconds"))
                })?
            }
            "default_protocol" | "external_protocol" => {
                *self.text_field_mut(name).expect("known field") = value.to_ascii_lowercase()
            }
            _ => match self.text_field_mut(name) {
                Some(field) => *field = value.to_string(),
                None => {
                    return Err(FieldError::new(
                        name,
                        "unknown setting (`zerotouch settings show` lists them)",
                    ));
                }
            },
        }
        Ok(())
    }

    fn text_field_mut(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "server_address" => &mut self.server_address,
            "default_protocol" => &mut self.default_protocol,
            "http_user" => &mut self.http_user,
            "http_password" => &mut self.http_password,
            "ftp_user" => &mut self.ftp_user,
            "ftp_password" => &mut self.ftp_password,
            "external_server" => &mut self.external_server,
            "external_protocol" => &mut self.external_protocol,
            "external_path" => &mut self.external_path,
            "external_user" => &mut self.external_user,
            "external_password" => &mut self.external_password,
            "external_firmware_server" => &mut self.external_firmware_server,
            "registrar" => &mut self.registrar,
            "registrar_backup" => &mut self.registrar_backup,
            "sip_proxy" => &mut self.sip_proxy,
            "sip_proxy_backup" => &mut self.sip_proxy_backup,
            "ntp_server" => &mut self.ntp_server,
            "script_path" => &mut self.script_path,
            "s3_endpoint" => &mut self.s3_endpoint,
            "s3_bucket" => &mut self.s3_bucket,
            "s3_access_key" => &mut self.s3_access_key,
            "s3_secret_key" => &mut self.s3_secret_key,
            "s3_region" => &mut self.s3_region,
            "s3_prefix" => &mut self.s3_prefix,
            _ => return None,
        })
    }

    /// Settings from stored rows; a stored value that no longer parses keeps its default
    /// (and is logged), so an old row never stops the server.
    pub fn from_stored(rows: &BTreeMap<String, String>) -> ProvSettings {
        let mut s = ProvSettings::default();
        for (k, v) in rows {
            if let Err(e) = s.set(k, v) {
                log::warn!("provisioning settings: stored {e}; using the default");
            }
        }
        s
    }

    /// The rows to store: every field that differs from its default.
    pub fn to_stored(&self) -> BTreeMap<String, String> {
        let default = ProvSettings::default();
        FIELDS
            .iter()
            .filter_map(|f| {
                let v = self.get(f.name)?;
                (Some(&v) != default.get(f.name).as_ref()).then(|| (f.name.to_string(), v))
            })
            .collect()
    }

    /// A field's value for display: secrets masked unless `secrets`.
    pub fn display(&self, name: &str, secrets: bool) -> String {
        let v = self.get(name).unwrap_or_default();
        if is_secret_field(name) && !secrets && !v.is_empty() {
            "(set; --secrets shows it)".into()
        } else {
            v
        }
    }

    /// Every problem, each naming its field; `script` tells what the script path is.
    pub fn validate(&self, script: &dyn Fn(&Path) -> ScriptFile) -> Result<()> {
        let mut p = Vec::new();
        host(&mut p, "server_address", &self.server_address);
        if !PROTOCOLS.contains(&self.default_protocol.as_str()) {
            p.push(FieldError::new(
                "default_protocol",
                format!(
                    "`{}` is not one of {}",
                    self.default_protocol,
                    PROTOCOLS.join(", ")
                ),
            ));
        }
        for (name, value) in [
            ("http_user", &self.http_user),
            ("http_password", &self.http_password),
            ("ftp_user", &self.ftp_user),
            ("ftp_password", &self.ftp_password),
            ("external_user", &self.external_user),
            ("external_password", &self.external_password),
        ] {
            credential(&mut p, name, value);
        }
        if self.http_user.is_empty() && !self.http_password.is_empty() {
            p.push(FieldError::new(
                "http_user",
                "is empty while http_password is set (an empty user means the account's device \
                 credentials)",
            ));
        }
        host(&mut p, "external_server", &self.external_server);
        host(
            &mut p,
            "external_firmware_server",
            &self.external_firmware_server,
        );
        if !matches!(self.external_protocol.as_str(), "http" | "https") {
            p.push(FieldError::new(
                "external_protocol",
                format!("`{}` is not http or https", self.external_protocol),
            ));
        }
        let path = &self.external_path;
        let path_ok = path.starts_with('/')
            && path.len() <= 200
            && !path.split('/').any(|s| s == ".." || s == ".")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b));
        if !path_ok {
            p.push(FieldError::new(
                "external_path",
                format!(
                    "`{path}` is not a URL path (starts with /; letters, digits, / . _ ~ -; no ..)"
                ),
            ));
        }
        if self.mode == Mode::External && self.external_server.is_empty() {
            p.push(FieldError::new(
                "external_server",
                "is required in external mode (the DMS phones download from)",
            ));
        }
        if self.mode == Mode::External && self.server_address.is_empty() {
            p.push(FieldError::new(
                "server_address",
                "is required in external mode (no phone request names the management server)",
            ));
        }
        for (name, value) in [
            ("registrar", &self.registrar),
            ("registrar_backup", &self.registrar_backup),
            ("sip_proxy", &self.sip_proxy),
            ("sip_proxy_backup", &self.sip_proxy_backup),
            ("ntp_server", &self.ntp_server),
        ] {
            host(&mut p, name, value);
        }
        if !(1..=3600).contains(&self.script_timeout_secs) {
            p.push(FieldError::new(
                "script_timeout_secs",
                "must be 1 to 3600 seconds",
            ));
        }
        if self.transport == TransportKind::Script {
            check_script(&mut p, &self.script_path, script);
        }
        if self.transport == TransportKind::S3 {
            self.check_s3(&mut p);
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(p))
        }
    }

    fn check_s3(&self, p: &mut Vec<FieldError>) {
        match url::Url::parse(&self.s3_endpoint) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.username().is_empty() => {}
            _ => p.push(FieldError::new(
                "s3_endpoint",
                format!(
                    "`{}` is not an http:// or https:// endpoint URL (e.g. https://s3.amazonaws.com \
                     or http://127.0.0.1:9000)",
                    self.s3_endpoint
                ),
            )),
        }
        let b = &self.s3_bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            && b.as_bytes()[0].is_ascii_alphanumeric()
            && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric();
        if !bucket_ok {
            p.push(FieldError::new(
                "s3_bucket",
                format!(
                    "`{b}` is not a bucket name (3-63 lower-case letters, digits, . and -, \
                     starting and ending with a letter or digit)"
                ),
            ));
        }
        if self.s3_access_key.is_empty() {
            p.push(FieldError::new("s3_access_key", "is required"));
        }
        if self.s3_secret_key.is_empty() {
            p.push(FieldError::new("s3_secret_key", "is required"));
        }
        credential(p, "s3_access_key", &self.s3_access_key);
        credential(p, "s3_secret_key", &self.s3_secret_key);
        let region_ok = !self.s3_region.is_empty()
            && self.s3_region.len() <= 64
            && self
                .s3_region
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !region_ok {
            p.push(FieldError::new(
                "s3_region",
                format!(
                    "`{}` is not a region (e.g. us-east-1; any name for MinIO)",
                    self.s3_region
                ),
            ));
        }
        let prefix = &self.s3_prefix;
        let prefix_ok = prefix.len() <= 512
            && !prefix.starts_with('/')
            && !prefix.split('/').any(|s| s == ".." || s == ".")
            && prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/._-!*()".contains(&c));
        if !prefix_ok {
            p.push(FieldError::new(
                "s3_prefix",
                format!(
                    "`{prefix}` is not a key prefix (letters, digits, / . _ - ! * ( ); no leading /)"
                ),
            ));
        }
    }

    /// The S3 key prefix, ending with `/` when not empty.
    pub fn s3_key_prefix(&self) -> String {
        let p = self.s3_prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }

    /// Whether generated files go to disk (External mode).
    pub fn is_external(&self) -> bool {
        self.mode == Mode::External
    }
}

/// A host or IP, optionally with `:port`; empty is allowed.
fn host(p: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let (h, port) = match value.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => ("", None),
        },
        None => match value.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') => (h, Some(port)),
            _ => (value, None),
        },
    };
    let host_ok = !h.is_empty()
        && h.len() <= 253
        && (h.parse::<std::net::IpAddr>().is_ok()
            || h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !host_ok || !port_ok {
        p.push(FieldError::new(
            field,
            format!(
                "`{value}` is not a host name or IP address with an optional :port (no scheme, no path)"
            ),
        ));
    }
}

/// User names, passwords and keys: at most 255 characters, no control characters.
fn credential(p: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.len() > 255 {
        p.push(FieldError::new(field, "is longer than 255 characters"));
    } else if value.chars().any(char::is_control) {
        p.push(FieldError::new(field, "contains a control character"));
    }
}

/// What the file system says of a script path. The caller reads it (`actions::templating::
/// script_file`): the domain reads no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptFile {
    Executable,
    NotExecutable,
    NotAFile,
    /// It cannot be read: the error.
    Unreadable(String),
}

fn check_script(p: &mut Vec<FieldError>, path: &str, script: &dyn Fn(&Path) -> ScriptFile) {
    if path.is_empty() {
        p.push(FieldError::new(
            "script_path",
            "is required with the script transport",
        ));
        return;
    }
    let file = Path::new(path);
    if !file.is_absolute() {
        p.push(FieldError::new(
            "script_path",
            format!("`{path}` is not an absolute path"),
        ));
        return;
    }
    match script(file) {
        ScriptFile::Executable => {}
        ScriptFile::NotExecutable => p.push(FieldError::new(
            "script_path",
            format!("`{path}` is not executable (chmod +x)"),
        )),
        ScriptFile::NotAFile => p.push(FieldError::new(
            "script_path",
            format!("`{path}` is not a file"),
        )),
        ScriptFile::Unreadable(e) => {
            p.push(FieldError::new("script_path", format!("`{path}`: {e}")))
        }
    }
}

#[cfg(test)]
mod tests;
