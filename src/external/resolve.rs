//! Name resolution for the S3 client without the C library's resolver: the binary is
//! static, and glibc's `getaddrinfo` would need its NSS modules at run time.
//!
//! IP literals are used as they are; `localhost` and `/etc/hosts` entries next; then A and
//! AAAA questions to the first nameserver of `/etc/resolv.conf`, with the pure-Rust client
//! of the diagnostics (`diag::dns`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Longest a lookup may take when the request sets no timeout.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct PureResolver;

/// Addresses of `host` in an `/etc/hosts` text.
fn from_hosts_file(text: &str, host: &str) -> Vec<IpAddr> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: IpAddr = words.next()?.parse().ok()?;
            words.any(|w| w.eq_ignore_ascii_case(host)).then_some(ip)
        })
        .collect()
}

/// The addresses of a host name (not an IP literal).
pub fn lookup(host: &str, timeout: Duration) -> Vec<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return vec![IpAddr::from([127, 0, 0, 1])];
    }
    if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
        let found = from_hosts_file(&text, host);
        if !found.is_empty() {
            return found;
        }
    }
    let Ok(server) = crate::diag::dns::system_resolver() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rtype in ["A", "AAAA"] {
        let answer = crate::diag::dns::ask(host, rtype, server, timeout);
        out.extend(
            answer
                .records
                .iter()
                .filter(|r| r.rtype == rtype)
                .filter_map(|r| r.data.parse::<IpAddr>().ok()),
        );
    }
    out
}

impl Resolver for PureResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri
            .authority()
            .ok_or_else(|| ureq::Error::BadUri(format!("{uri}: no host")))?;
        let port = authority
            .port_u16()
            .or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or_else(|| ureq::Error::BadUri(format!("{uri}: no port")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let limit = if timeout.after.is_not_happening() {
                    LOOKUP_TIMEOUT
                } else {
                    (*timeout.after).min(LOOKUP_TIMEOUT)
                };
                lookup(host, limit)
            }
        };
        let mut out = self.empty();
        for ip in ips.into_iter().take(16) {
            out.push(SocketAddr::new(ip, port));
        }
        if out.is_empty() {
            Err(ureq::Error::HostNotFound)
        } else {
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_entries_are_found_case_insensitively() {
        let text = "127.0.0.1 localhost\n# 10.0.0.1 s3.lan\n10.0.0.2 minio.lan MinIO # comment\n";
        assert_eq!(
            from_hosts_file(text, "minio"),
            vec!["10.0.0.2".parse::<IpAddr>().expect("ip")]
        );
        assert!(from_hosts_file(text, "s3.lan").is_empty());
    }
}
