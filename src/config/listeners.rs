//! The `[device]` and `[admin]` sections: the listeners phones and admins talk to, the
//! names phones use for this server, and the checks of their addresses. Only the shape and
//! the static checks live here; `server` binds the listeners.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{Config, HttpMode};
use crate::error::FieldError;

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
    /// Default: empty (then loopback, the host name, the listen addresses and, for a
    /// listener on `0.0.0.0`, this host's own addresses are recognised; on the ports of
    /// `http_listen` for `http://` and `https_listen` for `https://`).
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
    /// Host names the admin listener answers to, besides `localhost` and IP addresses
    /// (e.g. `["zerotouch.example.com"]`). A request naming any other host in its `Host`
    /// header is refused with 421: a web page elsewhere cannot reach the console through
    /// a name that resolves to this server (DNS rebinding). Default empty.
    pub names: Vec<String>,
    /// Addresses or networks (`10.1.0.0/16`, `192.0.2.7`) allowed to read `/metrics`,
    /// `/healthz`, `/readyz` and `/health` without signing in, besides loopback. Others
    /// need an API token (`Authorization: Bearer …`). Default empty.
    pub metrics_allow: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:8081".into(),
            tls: false,
            names: Vec::new(),
            metrics_allow: Vec::new(),
        }
    }
}

impl AdminConfig {
    /// The names and networks.
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        for (i, name) in self.names.iter().enumerate() {
            if name.is_empty() || name.contains(['/', ' ', '@', ':']) {
                p.push(FieldError::new(
                    format!("admin.names[{i}]"),
                    format!("`{name}` is not a host name (no port, no scheme)"),
                ));
            }
        }
        for (i, net) in self.metrics_allow.iter().enumerate() {
            if let Err(why) = net.parse::<crate::domain::ipnet::IpNet>() {
                p.push(FieldError::new(format!("admin.metrics_allow[{i}]"), why));
            }
        }
    }

    /// `metrics_allow` parsed (entries were checked by `validate`).
    pub fn metrics_allowlist(&self) -> Vec<crate::domain::ipnet::IpNet> {
        self.metrics_allow
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// Whether a `Host` header value names this listener: an IP address (a page elsewhere
    /// cannot rebind a literal address), `localhost`, or one of `names`; with or without a
    /// port. A request without a `Host` header (HTTP/1.0) is not one a browser sends.
    pub fn accepts_host(&self, host: &str) -> bool {
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            // [v6]:port
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        } else {
            match host.rsplit_once(':') {
                Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => host,
            }
        };
        let name = name.trim_end_matches('.');
        name.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl DeviceConfig {
    /// The realm and the public names.
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        if self.realm.is_empty() || self.realm.contains('"') {
            p.push(FieldError::new(
                "device.realm",
                "must be non-empty and contain no `\"`",
            ));
        }
        for (i, name) in self.public_names.iter().enumerate() {
            if name.is_empty() || name.contains(['/', ' ', '@']) {
                p.push(FieldError::new(
                    format!("device.public_names[{i}]"),
                    format!("`{name}` is not a host name or IP address"),
                ));
            }
        }
    }
}

/// The listen addresses: each one `IP:PORT` (or empty), and no two the same.
pub(super) fn validate_addresses(config: &Config, p: &mut Vec<FieldError>) {
    check_listen(p, "device.http_listen", &config.device.http_listen);
    check_listen(p, "device.https_listen", &config.device.https_listen);
    check_listen(p, "admin.listen", &config.admin.listen);
    let listens = [
        ("device.http_listen", &config.device.http_listen),
        ("device.https_listen", &config.device.https_listen),
        ("admin.listen", &config.admin.listen),
    ];
    for (i, (key, value)) in listens.iter().enumerate() {
        for (other, earlier) in &listens[..i] {
            if !value.is_empty() && value == earlier && !value.ends_with(":0") {
                p.push(FieldError::new(*key, format!("must differ from {other}")));
            }
        }
    }
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
