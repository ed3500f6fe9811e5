//! Server configuration: the embedded default, the TOML file that overrides it, and the
//! checks that turn raw values into a configuration the server can trust.
//!
//! Every field has a default, so an empty file (or none) is a working configuration. Unknown
//! keys are refused (`deny_unknown_fields`): a misspelt key that silently does nothing is
//! worse than an error. `check` reports every problem it can find, each with its key path,
//! so an admin fixes a file in one pass. The `///` comments here are user documentation and
//! are mirrored in `config.example.toml`.
//!
//! This file holds the whole file's shape, parsing and the order of the checks; each
//! section's fields, defaults and checks live in a file of its own under `config/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, FieldError, Result};

mod auth;
mod backup;
mod console;
mod directory;
mod external;
mod ftp;
mod limits;
mod listeners;
mod recording;
mod sip;
mod tftp;
mod tls;
pub use auth::AuthConfig;
pub use backup::BackupConfig;
pub use console::{ConsoleConfig, DiagnosticsConfig};
pub use directory::{DirectoryConfig, GroupMapping};
pub use external::ExternalConfig;
pub use ftp::FtpConfig;
pub use limits::LimitsConfig;
pub use listeners::{AdminConfig, DeviceConfig};
pub use recording::{DatabaseConfig, RecordingConfig};
pub use sip::SipConfig;
pub use tftp::TftpConfig;
pub use tls::{ClientAuth, HttpMode, KeyType, TlsConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the database, firmware, uploads, shared assets and TLS material.
    /// Relative paths are relative to the working directory. Default `./zerotouch-data`.
    pub data_dir: PathBuf,
    /// File holding the installation's secrets key (32 random bytes, base64), created on
    /// first start with mode 0600 if missing. It signs Digest nonces and encrypts secrets
    /// at rest; backups carry it. Empty means `<data_dir>/secret.key`; the Debian package
    /// keeps it in `/etc/zerotouch/secret.key`.
    pub secrets_key_file: PathBuf,
    pub log: LogConfig,
    pub device: DeviceConfig,
    pub admin: AdminConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub recording: RecordingConfig,
    pub database: DatabaseConfig,
    pub diagnostics: DiagnosticsConfig,
    pub console: ConsoleConfig,
    pub external: ExternalConfig,
    pub backup: BackupConfig,
    pub tftp: TftpConfig,
    pub ftp: FtpConfig,
    pub sip: SipConfig,
    pub directory: DirectoryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./zerotouch-data"),
            secrets_key_file: PathBuf::new(),
            log: LogConfig::default(),
            device: DeviceConfig::default(),
            admin: AdminConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            recording: RecordingConfig::default(),
            database: DatabaseConfig::default(),
            diagnostics: DiagnosticsConfig::default(),
            console: ConsoleConfig::default(),
            external: ExternalConfig::default(),
            backup: BackupConfig::default(),
            tftp: TftpConfig::default(),
            ftp: FtpConfig::default(),
            sip: SipConfig::default(),
            directory: DirectoryConfig::default(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// One of `error`, `warn`, `info`, `debug`, `trace`. Default `info`. `--verbose` raises it
    /// to `debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// The top-level sections and the keys they hold; used to report unknown keys by path.
const SECTIONS: &[&str] = &[
    "data_dir",
    "secrets_key_file",
    "log",
    "device",
    "admin",
    "tls",
    "limits",
    "auth",
    "recording",
    "database",
    "diagnostics",
    "console",
    "external",
    "backup",
    "tftp",
    "ftp",
    "sip",
    "directory",
];

impl Config {
    /// Reads and checks a configuration file. The error lists every problem found.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Config::parse(&text).map_err(|problems| {
            Error::Config(format!(
                "{}: {}",
                path.display(),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })
    }

    /// Parses TOML text and checks it, returning every problem found (key path and message).
    pub fn parse(text: &str) -> std::result::Result<Config, Vec<FieldError>> {
        let value: toml::Table = match text.parse() {
            Ok(v) => v,
            Err(e) => return Err(vec![toml_error("(file)", text, &e)]),
        };
        let mut problems = Vec::new();
        // Deserialise section by section, so one bad section does not hide the others.
        for key in value.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                problems.push(FieldError::new(
                    key.clone(),
                    format!("unknown key (expected one of: {})", SECTIONS.join(", ")),
                ));
            }
        }
        let mut config = Config::default();
        macro_rules! section {
            ($name:literal, $field:ident) => {
                if let Some(v) = value.get($name) {
                    match deserialize_section::<_>($name, v) {
                        Ok(parsed) => config.$field = parsed,
                        Err(mut e) => problems.append(&mut e),
                    }
                }
            };
        }
        section!("data_dir", data_dir);
        section!("secrets_key_file", secrets_key_file);
        section!("log", log);
        section!("device", device);
        section!("admin", admin);
        section!("tls", tls);
        section!("limits", limits);
        section!("auth", auth);
        section!("recording", recording);
        section!("database", database);
        section!("diagnostics", diagnostics);
        section!("console", console);
        section!("external", external);
        section!("backup", backup);
        section!("tftp", tftp);
        section!("ftp", ftp);
        section!("sip", sip);
        section!("directory", directory);
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Semantic checks on a parsed configuration: every problem, each with its key path.
    /// The order of the checks is the order problems are reported in.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut p = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            p.push(FieldError::new("data_dir", "must not be empty"));
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            p.push(FieldError::new(
                "log.level",
                format!(
                    "`{}` is not one of error, warn, info, debug, trace",
                    self.log.level
                ),
            ));
        }
        listeners::validate_addresses(self, &mut p);
        tls::validate(self, &mut p);
        self.device.validate(&mut p);
        self.admin.validate(&mut p);
        self.limits.validate_connections(&mut p);
        self.auth.validate_mac_limits(&mut p);
        self.limits.validate_transfers(&mut p);
        self.auth.validate_throttle(&mut p);
        self.recording.validate(&mut p);
        positive(&mut p, "database.pool_size", self.database.pool_size as u64);
        self.diagnostics.validate(&mut p);
        self.limits.validate_admin_uploads(&mut p);
        self.console.validate(&mut p);
        self.external.validate(&mut p);
        self.backup.validate(&mut p);
        self.tftp.validate(&mut p);
        self.ftp.validate(&mut p);
        self.sip.validate(&mut p);
        self.directory.validate(&mut p);
        self.auth.validate_totp(&mut p);
        p
    }

    /// Where External mode generates configuration files.
    pub fn external_dir(&self) -> PathBuf {
        self.data_dir.join("external")
    }

    /// Whether the configuration serves its own generated certificate (no `tls.cert_file`).
    pub fn tls_generated(&self) -> bool {
        self.tls.cert_file.as_os_str().is_empty()
    }

    /// Directory of TLS material inside the data directory.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// The parsed device HTTP listen address, if device HTTP is on.
    pub fn device_http_addr(&self) -> Option<SocketAddr> {
        self.device.http_listen.parse().ok()
    }

    /// The parsed device HTTPS listen address, if device HTTPS is on.
    pub fn device_https_addr(&self) -> Option<SocketAddr> {
        self.device.https_listen.parse().ok()
    }

    /// The parsed admin listen address, if the admin listener is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.listen.parse().ok()
    }

    /// Path of the SQLite database inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("zerotouch.db")
    }
}

fn deserialize_at<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
) -> std::result::Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{inner}")
        };
        FieldError::new(path, e.into_inner().to_string())
    })
}

/// Deserialises one section, reporting every bad key in it: serde stops at the first
/// problem, so when the section fails each of its keys is tried alone (with the defaults
/// for the others) and every key that fails alone is reported. A problem that only shows
/// with several keys together is reported as serde found it.
fn deserialize_section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &toml::Value,
) -> std::result::Result<T, Vec<FieldError>> {
    let whole = match deserialize_at::<T>(key, value.clone()) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e,
    };
    let Some(table) = value.as_table().filter(|t| t.len() > 1) else {
        return Err(vec![whole]);
    };
    let mut problems: Vec<FieldError> = Vec::new();
    for (k, v) in table {
        let mut alone = toml::Table::new();
        alone.insert(k.clone(), v.clone());
        if let Err(e) = deserialize_at::<T>(key, toml::Value::Table(alone)) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        problems.push(whole);
    }
    Err(problems)
}

fn toml_error(field: &str, text: &str, e: &toml::de::Error) -> FieldError {
    let location = e
        .span()
        .map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        })
        .unwrap_or_default();
    FieldError::new(field, format!("{}{location}", e.message()))
}

pub(crate) fn positive(p: &mut Vec<FieldError>, key: &str, value: u64) {
    if value == 0 {
        p.push(FieldError::new(key, "must be greater than 0"));
    }
}

pub(crate) fn at_least(p: &mut Vec<FieldError>, key: &str, value: u64, min: u64) {
    if value < min {
        p.push(FieldError::new(key, format!("must be at least {min}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        assert_eq!(Config::parse("").expect("parses"), Config::default());
    }

    #[test]
    fn example_file_parses_and_matches_the_defaults() {
        let text = include_str!("../config.example.toml");
        let parsed = Config::parse(text).expect("config.example.toml must parse");
        assert_eq!(
            parsed,
            Config::default(),
            "config.example.toml must show the defaults"
        );
    }

    #[test]
    fn the_packaged_config_is_the_example_with_debian_paths() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let expected = std::process::Command::new("sed")
            .arg("-f")
            .arg(root.join("packaging/config.sed"))
            .arg(root.join("config.example.toml"))
            .output()
            .expect("sed");
        let packaged = std::fs::read_to_string(root.join("packaging/config.toml")).expect("read");
        assert_eq!(
            String::from_utf8_lossy(&expected.stdout),
            packaged,
            "regenerate: sed -f packaging/config.sed config.example.toml > packaging/config.toml"
        );
        let parsed = Config::parse(&packaged).expect("the packaged config parses");
        assert_eq!(parsed.data_dir, PathBuf::from("/var/lib/zerotouch"));
        assert_eq!(parsed.device.http_listen, "0.0.0.0:80");
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let text = r#"
            colour = "blue"
            [log]
            level = "loud"
            [device]
            http_listen = "localhost:80"
            [limits]
            head_bytes = "big"
            [database]
            pool_size = 0
            nonsense = 1
        "#;
        let problems = Config::parse(text).expect_err("must fail");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"colour"), "{problems:?}");
        assert!(fields.contains(&"log.level"), "{problems:?}");
        assert!(fields.contains(&"device.http_listen"), "{problems:?}");
        assert!(fields.contains(&"limits.head_bytes"), "{problems:?}");
        assert!(
            fields.iter().any(|f| f.starts_with("database")),
            "{problems:?}"
        );
    }

    #[test]
    fn every_bad_key_of_one_section_is_reported_not_only_the_first() {
        let text = r#"
            [limits]
            head_bytes = "big"
            max_connections_per_ip = -3
            colour = "blue"
            [database]
            pool_size = "many"
            busy_timeout_ms = "soon"
        "#;
        let problems = Config::parse(text).expect_err("must fail");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for key in [
            "limits.head_bytes",
            "limits.max_connections_per_ip",
            "database.pool_size",
            "database.busy_timeout_ms",
        ] {
            assert!(fields.contains(&key), "{key} not in {problems:?}");
        }
        assert!(
            problems
                .iter()
                .any(|p| p.field.starts_with("limits") && p.message.contains("colour")),
            "{problems:?}"
        );
        // The good keys of a bad section are not reported.
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn abuse_limits_are_checked_by_field() {
        let c = Config {
            limits: LimitsConfig {
                max_connections_per_ip: 0,
                nat_allowlist: vec!["10.0.0.0/8".into(), "nat-gateway".into()],
                ..LimitsConfig::default()
            },
            auth: AuthConfig {
                macs_per_ip: 0,
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        let keys: Vec<String> = c.validate().into_iter().map(|p| p.field).collect();
        for k in [
            "limits.max_connections_per_ip",
            "limits.nat_allowlist[1]",
            "auth.macs_per_ip",
        ] {
            assert!(keys.iter().any(|f| f == k), "{k} not in {keys:?}");
        }
        assert!(!keys.iter().any(|f| f == "limits.nat_allowlist[0]"));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = Config::parse("[log]\nlevel = \n").expect_err("must fail");
        assert!(problems[0].message.contains("line 2"), "{problems:?}");
    }
}
