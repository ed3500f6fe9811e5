//! The `[tftp]` section: the TFTP listener phones may boot from (off by default), the
//! networks it answers, and its transfer limits. Only the shape and the static checks live
//! here; `server` binds the listener and `tftp::engine` runs it.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::domain::ipnet::IpNet;
use crate::error::FieldError;

/// `[tftp]`: read-only TFTP for phones (RFC 1350 with blksize, tsize and timeout).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TftpConfig {
    /// TFTP listener, as `IP:PORT` (the standard port is 69). Default empty: TFTP is off.
    /// TFTP has no authentication: it serves only what an unknown device gets without
    /// proof (the master and staging files) and firmware, never a secret.
    pub listen: String,
    /// Networks (`10.1.0.0/16`, `192.0.2.7`) whose requests are answered. Requests from any
    /// other address are dropped without an answer (logged, rate-limited). Default
    /// `["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "127.0.0.0/8", "::1/128"]`
    /// (private and loopback addresses). An empty list answers nobody.
    pub allow: Vec<String>,
    /// Most transfers running at once; a request over it gets a TFTP error ("server busy")
    /// and the phone retries. Default `64`.
    pub max_transfers: usize,
    /// Seconds to wait for an acknowledgement before sending a block again, unless the
    /// phone negotiated its own (option `timeout`, 1–255). Default `2`.
    pub timeout_secs: u64,
    /// How many times a block is sent again before the transfer is abandoned. Default `5`.
    pub retries: u32,
}

impl Default for TftpConfig {
    fn default() -> Self {
        TftpConfig {
            listen: String::new(),
            allow: [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
                "127.0.0.0/8",
                "::1/128",
            ]
            .map(String::from)
            .to_vec(),
            max_transfers: 64,
            timeout_secs: 2,
            retries: 5,
        }
    }
}

impl TftpConfig {
    /// Every key's static check.
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            p.push(FieldError::new(
                "tftp.listen",
                format!(
                    "`{}` is not IP:PORT (use an IP address, e.g. 0.0.0.0:69)",
                    self.listen
                ),
            ));
        }
        for (i, net) in self.allow.iter().enumerate() {
            if let Err(why) = net.parse::<IpNet>() {
                p.push(FieldError::new(format!("tftp.allow[{i}]"), why));
            }
        }
        if !(1..=10_000).contains(&self.max_transfers) {
            p.push(FieldError::new(
                "tftp.max_transfers",
                format!("{} is not between 1 and 10000", self.max_transfers),
            ));
        }
        if !(1..=255).contains(&self.timeout_secs) {
            p.push(FieldError::new(
                "tftp.timeout_secs",
                format!(
                    "{} is not between 1 and 255 (RFC 2349's range)",
                    self.timeout_secs
                ),
            ));
        }
        if !(1..=50).contains(&self.retries) {
            p.push(FieldError::new(
                "tftp.retries",
                format!("{} is not between 1 and 50", self.retries),
            ));
        }
    }

    /// The parsed listen address, if TFTP is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// `allow` parsed (entries were checked by `validate`).
    pub fn allowlist(&self) -> Vec<IpNet> {
        self.allow.iter().filter_map(|n| n.parse().ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn tftp_is_off_by_default_and_bad_values_name_their_key() {
        let c = Config::parse("").expect("default");
        assert_eq!(c.tftp.addr(), None, "off by default");
        let problems = Config::parse(
            r#"
            [tftp]
            listen = "tftp-server:69"
            allow = ["10.0.0.0/8", "the office"]
            max_transfers = 0
            timeout_secs = 256
            retries = 0
            "#,
        )
        .expect_err("must fail");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for key in [
            "tftp.listen",
            "tftp.allow[1]",
            "tftp.max_transfers",
            "tftp.timeout_secs",
            "tftp.retries",
        ] {
            assert!(fields.contains(&key), "{key}: {problems:?}");
        }
        let problems = Config::parse("[tftp]\nport = 69\ntimeout_secs = \"two\"\n")
            .expect_err("unknown key, wrong type");
        assert!(
            problems.iter().any(|p| p.field.starts_with("tftp")),
            "{problems:?}"
        );
        let c = Config::parse("[tftp]\nlisten = \"0.0.0.0:69\"\nallow = []\n").expect("ok");
        assert_eq!(c.tftp.addr().map(|a| a.port()), Some(69));
        assert!(
            c.tftp.allowlist().is_empty(),
            "an empty list answers nobody"
        );
    }
}
