//! SIGHUP (`systemctl reload zerotouch`): the configuration file is read again and what can
//! change while serving is put in force:
//! - the log level and the `[auth]` throttling limits and nonce lifetime (not
//!   `auth.totp_required_roles`, which the console reads once);
//! - every `[limits]` setting but `memory_body_budget` (the admin listener's body budget,
//!   sized once): the connection loops' sizes and timeouts, the connection caps and the NAT
//!   allowlist, device upload sizes and quotas, the admission caps, the admin upload sizes
//!   (the FTP listener's session caps, taken from `max_connections` and
//!   `max_connections_per_ip` when it starts, keep their start values until a restart).
//!   Each connection takes the limits in force when it is accepted and again at each new
//!   request after idling, so a change reaches the next requests and cuts none in progress;
//! - the console's per-request settings (`console.csv_max_rows`,
//!   `console.find_csv_max_entries`, `console.bulk_job_threshold`).
//!
//! Everything else (listeners, `data_dir`, TLS settings, `[sip]`, `[directory]`, …) is named
//! as needing a restart: listeners are bound before the service drops its privileges, and a
//! half-moved listener would strand phones. A file that no longer parses changes nothing.
//! One log line says what was applied and what was not; values are shown only for the
//! settings applied, none of which is a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::http::admin::console::Console;
use crate::http::device::DeviceService;
use crate::http::device::auth::DeviceAuth;
use crate::http::engine::conn::LiveLimits;
use crate::http::engine::server::Connections;
use crate::metrics::Metrics;

/// What serves with settings a reload may replace.
pub struct Live {
    /// The device listeners' loop limits (HTTP and HTTPS share them).
    pub device_limits: Arc<LiveLimits>,
    /// The admin listener's loop limits and its console, when it listens.
    pub admin: Option<(Arc<LiveLimits>, Arc<Console>)>,
    pub connections: Arc<Connections>,
    pub device_service: Arc<DeviceService>,
}

/// What a reload changes, and where its file is.
pub struct Reloader {
    /// The configuration file; `None` when the embedded default is in use.
    pub path: Option<PathBuf>,
    /// The settings in force: the file as read at start, with what reloads applied.
    pub config: Config,
    /// The file's keys and values at the last (re)load, to name what changed.
    pub keys: BTreeMap<String, String>,
    /// `--verbose` keeps debug logging whatever `log.level` says.
    pub verbose: bool,
    pub auth: Arc<DeviceAuth>,
    pub metrics: Arc<Metrics>,
    pub live: Live,
}

/// The outcome of one reload: settings put in force (with their new values) and settings
/// that changed in the file but need a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub applied: Vec<String>,
    pub restart: Vec<String>,
}

impl Reloaded {
    /// The log line.
    pub fn describe(&self) -> String {
        match (self.applied.is_empty(), self.restart.is_empty()) {
            (true, true) => "no setting changed".into(),
            _ => format!(
                "applied: {}; needs a restart: {}",
                list(&self.applied),
                list(&self.restart)
            ),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// Whether a setting (a dotted key path) is put in force by a reload. The console reads
/// `auth.totp_required_roles` (and `[directory]`) once, at start: a restart.
pub fn is_live(key: &str) -> bool {
    matches!(
        key,
        "log.level"
            | "console.csv_max_rows"
            | "console.find_csv_max_entries"
            | "console.bulk_job_threshold"
    ) || (key.starts_with("auth.") && !key.starts_with("auth.totp_required_roles"))
        || (key.starts_with("limits.") && key != "limits.memory_body_budget")
}

/// Every leaf of a TOML document as a dotted key path and its value, written as TOML.
pub fn flatten(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = text.parse::<toml::Table>() {
        walk("", &toml::Value::Table(v), &mut out);
    }
    out
}

/// The keys whose value differs between two flattened files (added and removed too).
pub fn changed(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

impl Reloader {
    /// Reads the file again and applies what can change live. An error (the file is gone,
    /// or has problems) changes nothing.
    pub fn reload(&mut self) -> Result<Reloaded, String> {
        let Some(path) = &self.path else {
            return Err("no configuration file to read (the embedded default is in use)".into());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let new = Config::parse(&text).map_err(|problems| {
            let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            format!("{}: {}", path.display(), all.join("; "))
        })?;
        let keys = flatten(&text);
        let mut out = Reloaded::default();
        for key in changed(&self.keys, &keys) {
            if !is_live(&key) {
                out.restart.push(key);
                continue;
            }
            if key == "log.level" && self.verbose {
                out.restart
                    .push("log.level (--verbose keeps debug until then)".into());
                continue;
            }
            out.applied.push(match keys.get(&key) {
                Some(v) => format!("{key} = {v}"),
                None => format!("{key} (back to its default)"),
            });
        }
        if self.config.auth != new.auth {
            self.auth.reload(&new.auth);
            self.config.auth = new.auth.clone();
        }
        if !self.verbose && self.config.log.level != new.log.level {
            log::set_max_level(new.log.level.parse().unwrap_or(log::LevelFilter::Info));
            self.config.log.level = new.log.level.clone();
        }
        if self.config.auth.macs_per_ip != new.auth.macs_per_ip
            || self.config.auth.mac_window_secs != new.auth.mac_window_secs
            || self.config.limits.nat_allowlist != new.limits.nat_allowlist
        {
            self.live.device_service.readers.set(
                new.auth.macs_per_ip,
                std::time::Duration::from_secs(new.auth.mac_window_secs),
                new.limits.allowlist(),
            );
        }
        if self.config.limits != new.limits {
            self.apply_limits(&new);
        }
        if self.config.console.csv_max_rows != new.console.csv_max_rows
            || self.config.console.find_csv_max_entries != new.console.find_csv_max_entries
            || self.config.console.bulk_job_threshold != new.console.bulk_job_threshold
        {
            self.config.console.csv_max_rows = new.console.csv_max_rows;
            self.config.console.find_csv_max_entries = new.console.find_csv_max_entries;
            self.config.console.bulk_job_threshold = new.console.bulk_job_threshold;
        }
        if let Some((_, console)) = &self.live.admin {
            console.set_config(Arc::new(self.config.clone()));
        }
        self.metrics.set_limits(super::limit_gauges(&self.config));
        self.keys = keys;
        Ok(out)
    }

    /// Puts `new.limits` in force, but for `memory_body_budget` (a restart), which keeps
    /// its value in the settings in force.
    fn apply_limits(&mut self, new: &Config) {
        let mut l = new.limits.clone();
        l.memory_body_budget = self.config.limits.memory_body_budget;
        let live = &self.live;
        let device = live.device_limits.get();
        live.device_limits
            .set(super::loop_limits(&l, l.device_idle_secs, &device.memory));
        if let Some((admin, _)) = &live.admin {
            let memory = admin.get().memory;
            admin.set(super::loop_limits(&l, l.admin_idle_secs, &memory));
        }
        live.connections
            .set_caps(l.max_connections, l.max_connections_per_ip, l.allowlist());
        live.device_service.set_limits(&l);
        self.config.limits = l;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_named_by_their_path_and_sorted_into_live_and_restart() {
        let old = flatten(
            "data_dir = \"/d\"\n[auth]\nfailure_limit = 20\n[limits]\nmax_connections = 10\n",
        );
        let new = flatten(
            "data_dir = \"/d\"\nlog.level = \"debug\"\n[auth]\nfailure_limit = 3\n[limits]\nmax_connections = 11\n",
        );
        let keys = changed(&old, &new);
        assert_eq!(
            keys,
            vec!["auth.failure_limit", "limits.max_connections", "log.level"]
        );
        let live: Vec<_> = keys.iter().filter(|k| is_live(k)).collect();
        assert_eq!(
            live,
            vec!["auth.failure_limit", "limits.max_connections", "log.level"]
        );
        assert!(!is_live("data_dir") && !is_live("device.http_listen"));
        assert!(!is_live("limits.memory_body_budget") && !is_live("auth.totp_required_roles"));
        assert!(is_live("console.csv_max_rows") && !is_live("console.session_idle_minutes"));
    }
}
