//! Provisioning server addresses as ZTP writes them: `scheme://user:pass@host:port/path`,
//! or just a host (with optional port and path). Parsed so the parts can be rendered into
//! `device.prov.serverType`, `serverName`, `user` and `password`, and compared with the
//! addresses of this server.

use percent_encoding::percent_decode_str;

/// A parsed provisioning server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// Upper-case Polycom server type (`HTTP`, `HTTPS`, `FTP`, `FTPS`, `TFTP`), if a scheme
    /// was given.
    pub server_type: Option<&'static str>,
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path without a trailing slash, or empty.
    pub path: String,
}

impl ServerUrl {
    /// Parses an address; the error is a sentence for the field it came from.
    pub fn parse(text: &str) -> Result<ServerUrl, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| format!("`{text}` is not a server address: {e}"))?;
        let server_type = if text.contains("://") {
            Some(match url.scheme() {
                "http" => "HTTP",
                "https" => "HTTPS",
                "ftp" => "FTP",
                "ftps" => "FTPS",
                "tftp" => "TFTP",
                other => {
                    return Err(format!(
                        "scheme `{other}` is not one of http, https, ftp, ftps, tftp"
                    ));
                }
            })
        } else {
            None
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{text}` has no host"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{text}` must not contain `?` or `#`"));
        }
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        Ok(ServerUrl {
            server_type,
            user: decode(url.username()),
            password: url.password().map(decode).unwrap_or_default(),
            host: host.to_string(),
            port: url.port(),
            path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// The value for `device.prov.serverName`: host, port and path, without credentials
    /// (those go into `device.prov.user`/`password`).
    pub fn server_name(&self) -> String {
        let mut s = self.host.clone();
        if let Some(port) = self.port {
            s.push_str(&format!(":{port}"));
        }
        s.push_str(&self.path);
        s
    }

    /// The host without IPv6 brackets, lowercased, for comparisons.
    pub fn host_key(&self) -> String {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_parses() {
        let u = ServerUrl::parse(
            "http://alice:myvoiceismypassword@provisioning.example.ca:8080/Polycom/",
        )
        .expect("parse");
        assert_eq!(u.server_type, Some("HTTP"));
        assert_eq!(
            (u.user.as_str(), u.password.as_str()),
            ("alice", "myvoiceismypassword")
        );
        assert_eq!(u.server_name(), "provisioning.example.ca:8080/Polycom");
    }

    #[test]
    fn bare_hosts_have_no_type() {
        let u = ServerUrl::parse("192.168.1.178").expect("parse");
        assert_eq!(u.server_type, None);
        assert_eq!(u.server_name(), "192.168.1.178");
        assert_eq!(
            ServerUrl::parse("prov.example.com/phones")
                .expect("p")
                .server_name(),
            "prov.example.com/phones"
        );
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(ServerUrl::parse("gopher://x").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("").is_err());
    }
}
