//! Server configuration: the embedded default, the TOML file that overrides it, and the
//! checks that turn raw values into a configuration the server can trust.
//!
//! Every field has a default, so an empty file (or none) is a working configuration. Unknown
//! keys are refused (`deny_unknown_fields`): a misspelt key that silently does nothing is
//! worse than an error. `check` reports every problem it can find, each with its key path,
//! so an admin fixes a file in one pass. The `///` comments here are user documentation and
//! are mirrored in `config.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, FieldError, Result};

mod tls;
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

/// `[device]`: the listeners phones talk to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Plain-HTTP listener for phones, as `IP:PORT`. Default `0.0.0.0:8080`. Empty string
    /// turns device HTTP off.
    pub http_listen: String,
    /// HTTPS listener for phones, as `IP:PORT`, serving the same endpoints as
    /// `http_listen` with the certificate of `[tls]`. Default `0.0.0.0:8443`. Empty string
    /// turns device HTTPS off.
    pub https_listen: String,
    /// What plain HTTP may serve: `full` (everything) or `no-secrets` (a generated or
    /// profile file that carries a secret — SIP or provisioning passwords — and uploaded
    /// override files are refused with 403; they are served over HTTPS only). Default `full`.
    pub http_mode: HttpMode,
    /// Start even though associated devices have never been seen over HTTPS while
    /// `http_mode = "no-secrets"` or device HTTP is off: those devices are stranded (they
    /// stop getting their configuration). Without it, such a start is refused with the count.
    /// Default `false`.
    pub allow_stranding: bool,
    /// Host names and IP addresses phones use to reach this server (as in DHCP option
    /// 66/160). A profile or vendor extension whose provisioning server points at one of
    /// these is refused, because rendering it into `device.prov.*` could lock phones out.
    /// Default: empty (only loopback and this host's listen addresses are recognised).
    pub public_names: Vec<String>,
    /// Realm sent in the 401 challenge. Default `zerotouch`.
    pub realm: String,
    /// Offer MD5 Digest as well as Basic on plain HTTP (bootROM 4.2.0 and later can use it,
    /// so the fleet password does not travel in clear). Default `true`.
    pub digest: bool,
    /// Most MACs kept as "unassociated" (seen but not associated). Further unknown MACs are
    /// served the unknown-device master but not recorded. Default `10000`.
    pub unassociated_cap: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            http_listen: "0.0.0.0:8080".into(),
            https_listen: "0.0.0.0:8443".into(),
            http_mode: HttpMode::Full,
            allow_stranding: false,
            public_names: Vec::new(),
            realm: "zerotouch".into(),
            digest: true,
            unassociated_cap: 10_000,
        }
    }
}

/// `[admin]`: the admin UI and API listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Admin listener, as `IP:PORT`. Default `127.0.0.1:8081` (loopback only). Empty string
    /// turns it off.
    pub listen: String,
    /// Serve the admin listener over HTTPS, with the certificate of `[tls]` (no client
    /// certificates). Default `false`.
    pub tls: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:8081".into(),
            tls: false,
        }
    }
}

/// `[limits]`: sizes and timeouts of the connection loop and uploads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most connections open at once, over all listeners; further connections are closed at
    /// once. Default `10000`.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    /// Default `16384`.
    pub head_bytes: usize,
    /// Largest form or API body in bytes; larger gets 413. Default `1048576` (1 MiB).
    pub body_bytes: usize,
    /// Largest single file a device may upload (logs, overrides, contacts, call lists,
    /// core dumps) in bytes; larger gets 413. Default `10485760` (10 MiB).
    pub upload_bytes: u64,
    /// Most bytes of uploads stored per device, over all its files; an upload that would
    /// exceed it gets 507. Default `52428800` (50 MiB).
    pub device_quota_bytes: u64,
    /// Seconds allowed to receive a complete request head once its first byte arrived.
    /// Default `10`.
    pub head_timeout_secs: u64,
    /// Seconds of silence allowed while receiving a body, and while sending a response.
    /// Default `30`.
    pub body_timeout_secs: u64,
    /// Seconds a device keep-alive connection may stay idle between requests. Phones do not
    /// need long keep-alive, and idle sockets should not pin threads. Default `5`.
    pub device_idle_secs: u64,
    /// Seconds an admin keep-alive connection may stay idle. Default `60`.
    pub admin_idle_secs: u64,
    /// Most bytes of request bodies held in memory at once over all connections; a request
    /// that would exceed it gets 503 with Retry-After. Default `268435456` (256 MiB).
    pub memory_body_budget: usize,
    /// Largest bulk association CSV upload (console and API) in bytes; larger gets 413.
    /// Default `8388608` (8 MiB).
    pub csv_upload_bytes: usize,
    /// Largest UC Software release upload (console and API) in bytes, and the most a
    /// release may take once unpacked; larger gets 413 (or is refused at import). Uploads
    /// are streamed to disk, never held in memory. Default `2147483648` (2 GiB).
    pub firmware_upload_bytes: u64,
    /// Largest shared-asset upload (directory, licence, wallpaper, ring tone, language
    /// file) in bytes; larger gets 413. Default `16777216` (16 MiB).
    pub asset_upload_bytes: usize,
    /// Most firmware downloads served at once; more get 503 with Retry-After, so that in a
    /// boot storm images wait and configuration requests do not. Default `256`.
    pub firmware_streams: usize,
    /// Most device uploads (logs, overrides, contacts, call lists) received at once; more
    /// get 503 with Retry-After before their body is read. Default `1024`.
    pub upload_streams: usize,
    /// Seconds a client refused by `firmware_streams` or `upload_streams` is asked to wait:
    /// each answer says a value between this and twice this, so refused phones come back
    /// spread out. Default `30`.
    pub busy_retry_after_secs: u64,
    /// Most connections open at once from one client address, over all listeners; further
    /// ones from it are closed at once (slow or idle clients cannot take every slot).
    /// Default `256`.
    pub max_connections_per_ip: usize,
    /// Addresses or networks (`10.1.0.0/16`, `192.0.2.7`, `2001:db8::/32`) exempt from
    /// `max_connections_per_ip` and `auth.macs_per_ip`: sites whose phones reach the server
    /// through one NAT address. Default empty.
    pub nat_allowlist: Vec<String>,
}

impl LimitsConfig {
    /// `nat_allowlist` parsed (entries were checked by `validate`).
    pub fn allowlist(&self) -> Vec<crate::domain::ipnet::IpNet> {
        self.nat_allowlist
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 10_000,
            head_bytes: 16 * 1024,
            body_bytes: 1024 * 1024,
            upload_bytes: 10 * 1024 * 1024,
            device_quota_bytes: 50 * 1024 * 1024,
            head_timeout_secs: 10,
            body_timeout_secs: 30,
            device_idle_secs: 5,
            admin_idle_secs: 60,
            memory_body_budget: 256 * 1024 * 1024,
            csv_upload_bytes: 8 * 1024 * 1024,
            firmware_upload_bytes: 2 * 1024 * 1024 * 1024,
            asset_upload_bytes: 16 * 1024 * 1024,
            firmware_streams: 256,
            upload_streams: 1024,
            busy_retry_after_secs: 30,
            max_connections_per_ip: 256,
            nat_allowlist: Vec::new(),
        }
    }
}

/// `[auth]`: device authentication throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Wrong device credentials tolerated from one IP address within `failure_window_secs`
    /// before further wrong attempts get 429. Requests without credentials (the phone's
    /// first, unauthenticated try) never count, and valid credentials are never throttled.
    /// Default `20`.
    pub failure_limit: u32,
    /// Window, in seconds, over which wrong attempts are counted. Default `60`.
    pub failure_window_secs: u64,
    /// Seconds an IP stays throttled once over the limit (the Retry-After value).
    /// Default `300`.
    pub block_secs: u64,
    /// Seconds a Digest nonce stays valid; older nonces get a fresh challenge with
    /// `stale=true`. Default `300`.
    pub nonce_lifetime_secs: u64,
    /// Wrong device credentials tolerated for one account within `failure_window_secs`,
    /// from all addresses together (a guess spread over many addresses), before further
    /// wrong attempts for it get 429. Valid credentials are never throttled. Default `200`.
    pub account_failure_limit: u32,
    /// Distinct MACs whose files one client address may read within `mac_window_secs`
    /// without proving it is the device (per-device credential or device certificate);
    /// past it, requests for further MACs get 429 and the address is reported as a
    /// diagnostics finding. Addresses in `limits.nat_allowlist` are exempt. Default `50`.
    pub macs_per_ip: u32,
    /// Window, in seconds, over which `macs_per_ip` counts. Default `600`.
    pub mac_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            failure_limit: 20,
            failure_window_secs: 60,
            block_secs: 300,
            nonce_lifetime_secs: 300,
            account_failure_limit: 200,
            macs_per_ip: 50,
            mac_window_secs: 600,
        }
    }
}

/// `[recording]`: the access log and per-device activity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Events queued for the writer thread; when full, events are dropped and counted
    /// rather than slowing phones down. Default `65536`.
    pub queue_capacity: usize,
    /// Milliseconds between batched writes. Default `250`.
    pub flush_interval_ms: u64,
    /// Access-log rows kept per device (older rows are pruned). Default `500`.
    pub access_log_per_device: u32,
    /// Access-log rows kept for requests that name no device. Default `100000`.
    pub access_log_anonymous: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            queue_capacity: 65_536,
            flush_interval_ms: 250,
            access_log_per_device: 500,
            access_log_anonymous: 100_000,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// SQLite connections kept open for request handlers. Default `8`.
    pub pool_size: usize,
    /// Milliseconds a connection waits for a lock held by another writer. Default `5000`.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            pool_size: 8,
            busy_timeout_ms: 5000,
        }
    }
}

/// `[diagnostics]`: defaults of the probes started from the admin UI and the CLI.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// Interface the DHCP probe sends on when none is given: the phones' network, often a
    /// voice VLAN such as `eth0.20`. Default empty (the admin UI then asks for one).
    pub dhcp_interface: String,
    /// Seconds the DHCP probe collects answers. Default `5`.
    pub dhcp_seconds: u64,
    /// Domain the DNS probe checks when none is given (the phones' DNS domain). Default
    /// empty (the admin UI then asks for one).
    pub dns_domain: String,
    /// Days of access log searched for phones that send wrong credentials. Default `7`.
    pub access_log_days: u32,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        DiagnosticsConfig {
            dhcp_interface: String::new(),
            dhcp_seconds: 5,
            dns_domain: String::new(),
            access_log_days: 7,
        }
    }
}

/// `[console]`: the admin web UI, its JSON API and the console commands.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Hours a reference ID without devices (a partial association) is kept before it is
    /// deleted. Default `4`.
    pub partial_expiry_hours: u64,
    /// Most device lines in one bulk association CSV file; a longer file is refused whole.
    /// Default `1000` (as Polycom's ZTP).
    pub csv_max_rows: usize,
    /// Most rows in a Find Operations CSV download (the "Max Number of Entries" field can
    /// ask for fewer). Default `100000`.
    pub find_csv_max_entries: usize,
    /// Minutes a console session may stay unused before it ends. Default `480` (8 hours).
    pub session_idle_minutes: u64,
    /// Hours a console session lasts at most. Default `24`.
    pub session_max_hours: u64,
    /// Wrong passwords for one user name within `login_window_secs` before sign-in for that
    /// name pauses for `login_block_secs`. Default `5`.
    pub login_failures_per_user: u32,
    /// Wrong passwords from one IP address within `login_window_secs` before sign-in from
    /// it pauses for `login_block_secs`. Default `20`.
    pub login_failures_per_ip: u32,
    /// Window, in seconds, over which wrong passwords are counted. Default `300`.
    pub login_window_secs: u64,
    /// Seconds sign-in pauses once over a limit; never longer, so the right password is
    /// never locked out for good. Default `60`.
    pub login_block_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            partial_expiry_hours: 4,
            csv_max_rows: 1000,
            find_csv_max_entries: 100_000,
            session_idle_minutes: 480,
            session_max_hours: 24,
            login_failures_per_user: 5,
            login_failures_per_ip: 20,
            login_window_secs: 300,
            login_block_secs: 60,
        }
    }
}

/// `[external]`: generating files for an external device management system (External
/// mode of the provisioning settings, `zerotouch settings set mode=external`) and pushing
/// them with the file transport. The mode, the servers and the transport itself are
/// provisioning settings stored in the database; these are the mechanics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalConfig {
    /// Milliseconds between checks for changed configuration (a cheap check; files are
    /// rendered again only after a change). Default `500`.
    pub scan_interval_ms: u64,
    /// Milliseconds a device's files must stay unchanged before they are pushed (changes in
    /// a burst are pushed once). A device that keeps changing is pushed at least every ten
    /// times this. Default `2000`.
    pub debounce_ms: u64,
    /// Pushes (script runs or uploads) at once, over all devices. Default `2`.
    pub workers: usize,
    /// Seconds between checks of the shared assets and firmware to sync to S3 (only files
    /// that changed are uploaded). Default `300`.
    pub asset_sync_secs: u64,
    /// Seconds one S3 request may take, connection included. Default `30`.
    pub upload_timeout_secs: u64,
    /// Seconds the S3 connectivity check may take when the provisioning settings are saved
    /// (the console, the API and `settings set` wait for it). Default `10`.
    pub check_timeout_secs: u64,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        ExternalConfig {
            scan_interval_ms: 500,
            debounce_ms: 2000,
            workers: 2,
            asset_sync_secs: 300,
            upload_timeout_secs: 30,
            check_timeout_secs: 10,
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
                    match deserialize_at::<_>($name, v.clone()) {
                        Ok(parsed) => config.$field = parsed,
                        Err(e) => problems.push(e),
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
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Semantic checks on a parsed configuration: every problem, each with its key path.
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
        check_listen(&mut p, "device.http_listen", &self.device.http_listen);
        check_listen(&mut p, "device.https_listen", &self.device.https_listen);
        check_listen(&mut p, "admin.listen", &self.admin.listen);
        let listens = [
            ("device.http_listen", &self.device.http_listen),
            ("device.https_listen", &self.device.https_listen),
            ("admin.listen", &self.admin.listen),
        ];
        for (i, (key, value)) in listens.iter().enumerate() {
            for (other, earlier) in &listens[..i] {
                if !value.is_empty() && value == earlier && !value.ends_with(":0") {
                    p.push(FieldError::new(*key, format!("must differ from {other}")));
                }
            }
        }
        tls::validate(self, &mut p);
        if self.device.realm.is_empty() || self.device.realm.contains('"') {
            p.push(FieldError::new(
                "device.realm",
                "must be non-empty and contain no `\"`",
            ));
        }
        for (i, name) in self.device.public_names.iter().enumerate() {
            if name.is_empty() || name.contains(['/', ' ', '@']) {
                p.push(FieldError::new(
                    format!("device.public_names[{i}]"),
                    format!("`{name}` is not a host name or IP address"),
                ));
            }
        }
        let l = &self.limits;
        positive(&mut p, "limits.max_connections", l.max_connections as u64);
        positive(
            &mut p,
            "limits.max_connections_per_ip",
            l.max_connections_per_ip as u64,
        );
        for (i, net) in l.nat_allowlist.iter().enumerate() {
            if let Err(why) = net.parse::<crate::domain::ipnet::IpNet>() {
                p.push(FieldError::new(format!("limits.nat_allowlist[{i}]"), why));
            }
        }
        positive(&mut p, "auth.macs_per_ip", u64::from(self.auth.macs_per_ip));
        positive(&mut p, "auth.mac_window_secs", self.auth.mac_window_secs);
        positive(
            &mut p,
            "auth.account_failure_limit",
            u64::from(self.auth.account_failure_limit),
        );
        at_least(&mut p, "limits.head_bytes", l.head_bytes as u64, 1024);
        at_least(&mut p, "limits.body_bytes", l.body_bytes as u64, 1024);
        at_least(&mut p, "limits.upload_bytes", l.upload_bytes, 1024);
        if l.device_quota_bytes < l.upload_bytes {
            p.push(FieldError::new(
                "limits.device_quota_bytes",
                "must be at least limits.upload_bytes",
            ));
        }
        positive(&mut p, "limits.head_timeout_secs", l.head_timeout_secs);
        positive(&mut p, "limits.body_timeout_secs", l.body_timeout_secs);
        positive(&mut p, "limits.device_idle_secs", l.device_idle_secs);
        positive(&mut p, "limits.admin_idle_secs", l.admin_idle_secs);
        positive(&mut p, "limits.firmware_streams", l.firmware_streams as u64);
        positive(&mut p, "limits.upload_streams", l.upload_streams as u64);
        positive(
            &mut p,
            "limits.busy_retry_after_secs",
            l.busy_retry_after_secs,
        );
        if l.memory_body_budget < l.body_bytes {
            p.push(FieldError::new(
                "limits.memory_body_budget",
                "must be at least limits.body_bytes",
            ));
        }
        positive(&mut p, "auth.failure_limit", self.auth.failure_limit.into());
        positive(
            &mut p,
            "auth.failure_window_secs",
            self.auth.failure_window_secs,
        );
        positive(&mut p, "auth.block_secs", self.auth.block_secs);
        positive(
            &mut p,
            "auth.nonce_lifetime_secs",
            self.auth.nonce_lifetime_secs,
        );
        positive(
            &mut p,
            "recording.queue_capacity",
            self.recording.queue_capacity as u64,
        );
        positive(
            &mut p,
            "recording.flush_interval_ms",
            self.recording.flush_interval_ms,
        );
        positive(
            &mut p,
            "recording.access_log_per_device",
            self.recording.access_log_per_device.into(),
        );
        positive(&mut p, "database.pool_size", self.database.pool_size as u64);
        let d = &self.diagnostics;
        if !(1..=60).contains(&d.dhcp_seconds) {
            p.push(FieldError::new(
                "diagnostics.dhcp_seconds",
                "must be 1 to 60",
            ));
        }
        positive(
            &mut p,
            "diagnostics.access_log_days",
            d.access_log_days.into(),
        );
        at_least(
            &mut p,
            "limits.csv_upload_bytes",
            l.csv_upload_bytes as u64,
            1024,
        );
        at_least(
            &mut p,
            "limits.firmware_upload_bytes",
            l.firmware_upload_bytes,
            1024,
        );
        at_least(
            &mut p,
            "limits.asset_upload_bytes",
            l.asset_upload_bytes as u64,
            1024,
        );
        let c = &self.console;
        positive(
            &mut p,
            "console.partial_expiry_hours",
            c.partial_expiry_hours,
        );
        positive(&mut p, "console.csv_max_rows", c.csv_max_rows as u64);
        positive(
            &mut p,
            "console.find_csv_max_entries",
            c.find_csv_max_entries as u64,
        );
        positive(
            &mut p,
            "console.session_idle_minutes",
            c.session_idle_minutes,
        );
        positive(&mut p, "console.session_max_hours", c.session_max_hours);
        positive(
            &mut p,
            "console.login_failures_per_user",
            c.login_failures_per_user.into(),
        );
        positive(
            &mut p,
            "console.login_failures_per_ip",
            c.login_failures_per_ip.into(),
        );
        positive(&mut p, "console.login_window_secs", c.login_window_secs);
        positive(&mut p, "console.login_block_secs", c.login_block_secs);
        let e = &self.external;
        at_least(&mut p, "external.scan_interval_ms", e.scan_interval_ms, 50);
        positive(&mut p, "external.workers", e.workers as u64);
        positive(&mut p, "external.asset_sync_secs", e.asset_sync_secs);
        positive(
            &mut p,
            "external.upload_timeout_secs",
            e.upload_timeout_secs,
        );
        positive(&mut p, "external.check_timeout_secs", e.check_timeout_secs);
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

fn check_listen(p: &mut Vec<FieldError>, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    if value.parse::<SocketAddr>().is_err() {
        p.push(FieldError::new(
            key,
            format!("`{value}` is not IP:PORT (use an IP address, e.g. 0.0.0.0:8080 or [::]:8080)"),
        ));
    }
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
