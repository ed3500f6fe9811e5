//! The `[ftp]` section: the FTP listener phones may boot from (off by default), its
//! passive port range and whether Polycom's factory login is accepted. Only the shape and
//! the static checks live here; `server` binds the listener and `ftp` runs it.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

use serde::Deserialize;

use crate::error::FieldError;

/// `[ftp]`: FTP for phones (their factory provisioning protocol). FTP sends user names and
/// passwords in clear: anyone on the path reads them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FtpConfig {
    /// FTP control listener, as `IP:PORT` (the standard port is 21). Default empty: FTP is
    /// off. FTP sends credentials in clear.
    pub listen: String,
    /// First port of the passive (PASV/EPSV) data connections. Default `50000`.
    pub passive_first: u16,
    /// Last port of the passive data connections; each transfer needs one port of the
    /// range while it runs. Default `50099`.
    pub passive_last: u16,
    /// Whether Polycom's factory login (`PlcmSpIp`/`PlcmSpIp`, what a phone at factory
    /// settings sends) is accepted. It gets only what an unknown device gets without proof
    /// (the master and staging files, firmware) and, for an associated phone, its files
    /// without any SIP secret, with the account credential and the address of device
    /// HTTP: the move to HTTP(S). Each account may turn it off
    /// (`zerotouch account ftp-factory-login off`). Default `true`.
    pub factory_login: bool,
    /// Seconds a session may stay idle before it is closed. Default `300`.
    pub idle_secs: u64,
    /// Offer explicit FTPS (`AUTH TLS`, `PBSZ`, `PROT P`) with the certificate device HTTPS
    /// serves, when device HTTPS is on. Plain FTP stays allowed. Phone support for FTPS is
    /// unconfirmed. Default `true`.
    pub tls: bool,
}

impl Default for FtpConfig {
    fn default() -> Self {
        FtpConfig {
            listen: String::new(),
            passive_first: 50000,
            passive_last: 50099,
            factory_login: true,
            idle_secs: 300,
            tls: true,
        }
    }
}

impl FtpConfig {
    /// Every key's static check.
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            p.push(FieldError::new(
                "ftp.listen",
                format!(
                    "`{}` is not IP:PORT (use an IP address, e.g. 0.0.0.0:21)",
                    self.listen
                ),
            ));
        }
        if self.passive_first == 0 || self.passive_first > self.passive_last {
            p.push(FieldError::new(
                "ftp.passive_first",
                format!(
                    "the passive range {}–{} is empty or starts at 0",
                    self.passive_first, self.passive_last
                ),
            ));
        }
        if !(10..=86_400).contains(&self.idle_secs) {
            p.push(FieldError::new(
                "ftp.idle_secs",
                format!("{} is not between 10 and 86400", self.idle_secs),
            ));
        }
    }

    /// The parsed listen address, if FTP is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The passive port range.
    pub fn passive_ports(&self) -> RangeInclusive<u16> {
        self.passive_first..=self.passive_last
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn ftp_is_off_by_default_and_bad_values_name_their_key() {
        let c = Config::parse("").expect("default");
        assert_eq!(c.ftp.addr(), None, "off by default");
        assert!(c.ftp.factory_login);
        let problems = Config::parse(
            "[ftp]\nlisten = \"ftp-server:21\"\npassive_first = 60000\npassive_last = 50000\nidle_secs = 1\n",
        )
        .expect_err("must fail");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for key in ["ftp.listen", "ftp.passive_first", "ftp.idle_secs"] {
            assert!(fields.contains(&key), "{key}: {problems:?}");
        }
        let c =
            Config::parse("[ftp]\nlisten = \"0.0.0.0:21\"\nfactory_login = false\n").expect("ok");
        assert_eq!(c.ftp.addr().map(|a| a.port()), Some(21));
        assert_eq!(c.ftp.passive_ports(), 50000..=50099);
    }
}
