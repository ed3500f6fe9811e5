//! Provisioning server addresses as ZTP writes them: `scheme://user:pass@host:port/path`,
//! or just a host (with optional port and path). Parsed so the parts can be rendered into
//! `device.prov.serverType`, `serverName`, `user` and `password`, and compared with the
//! addresses of this server.

use percent_encoding::percent_decode_str;

use crate::error::FieldError;

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

/// The addresses of this server: to refuse provisioning-server fields that point back at
/// it (rendering those into `device.prov.*` could lock phones out), and for diagnostics to
/// tell an option that sends phones here from one that sends them elsewhere. "This server"
/// is every device listener (HTTP and HTTPS; the admin listener is not one phones use) on
/// any of this host's names and addresses.
#[derive(Debug, Clone, Default)]
pub struct OwnAddresses {
    /// Lowercase host names and IPs (no brackets).
    pub hosts: Vec<String>,
    /// Ports of the device HTTP listener (0: chosen at start, so any port matches).
    pub http_ports: Vec<u16>,
    /// Ports of the device HTTPS listener (0: any port).
    pub https_ports: Vec<u16>,
    /// Port of the TFTP listener, when it is on (0: any port).
    pub tftp_ports: Vec<u16>,
    /// Port of the FTP listener, when it is on (0: any port).
    pub ftp_ports: Vec<u16>,
}

/// A device listener: its address and whether it speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub addr: std::net::SocketAddr,
    pub tls: bool,
}

impl OwnAddresses {
    /// Public names, loopback, the host name, each listener's address, and — when a
    /// listener is bound to every address (`0.0.0.0`, `::`) — `host_ips`, this host's own
    /// addresses.
    pub fn new(
        public_names: &[String],
        host_name: &str,
        listeners: &[Listener],
        host_ips: &[std::net::IpAddr],
    ) -> OwnAddresses {
        let mut own = OwnAddresses::default();
        let mut add = |h: String| {
            if !h.is_empty() && !own.hosts.contains(&h) {
                own.hosts.push(h);
            }
        };
        for h in public_names {
            add(h.trim().to_ascii_lowercase());
        }
        for h in ["localhost", "127.0.0.1", "::1"] {
            add(h.to_string());
        }
        add(host_name.trim().to_ascii_lowercase());
        for l in listeners {
            if l.addr.ip().is_unspecified() {
                for ip in host_ips {
                    add(ip.to_string());
                }
            } else {
                add(l.addr.ip().to_string());
            }
        }
        for l in listeners {
            let ports = if l.tls {
                &mut own.https_ports
            } else {
                &mut own.http_ports
            };
            if !ports.contains(&l.addr.port()) {
                ports.push(l.addr.port());
            }
        }
        own
    }

    /// Adds the TFTP listener (`tftp.listen`), when it is on: its address (this host's
    /// addresses when it is bound to every address) and its port for `tftp://`.
    pub fn with_tftp(
        self,
        addr: Option<std::net::SocketAddr>,
        host_ips: &[std::net::IpAddr],
    ) -> OwnAddresses {
        self.with_listener(addr, host_ips, |o| &mut o.tftp_ports)
    }

    /// Adds the FTP listener (`ftp.listen`), when it is on, as `with_tftp` adds TFTP's:
    /// its port for `ftp://` and `ftps://` and for bare addresses (phones' factory type).
    pub fn with_ftp(
        self,
        addr: Option<std::net::SocketAddr>,
        host_ips: &[std::net::IpAddr],
    ) -> OwnAddresses {
        self.with_listener(addr, host_ips, |o| &mut o.ftp_ports)
    }

    fn with_listener(
        mut self,
        addr: Option<std::net::SocketAddr>,
        host_ips: &[std::net::IpAddr],
        ports: fn(&mut OwnAddresses) -> &mut Vec<u16>,
    ) -> OwnAddresses {
        let Some(addr) = addr else {
            return self;
        };
        let mut add = |h: String| {
            if !self.hosts.contains(&h) {
                self.hosts.push(h);
            }
        };
        if addr.ip().is_unspecified() {
            for ip in host_ips {
                add(ip.to_string());
            }
        } else {
            add(addr.ip().to_string());
        }
        let ports = ports(&mut self);
        if !ports.contains(&addr.port()) {
            ports.push(addr.port());
        }
        self
    }

    /// Whether a host (name or IP, any case, IPv6 with or without brackets) is one of ours.
    pub fn names_host(&self, url: &ServerUrl) -> bool {
        self.hosts.contains(&url.host_key())
    }

    /// Whether an address names this server: a known host, on the port of a listener that
    /// speaks its scheme (`https://` the HTTPS listener, `http://` the HTTP one; without a
    /// scheme or with another one, either), the scheme's default port when none is given.
    pub fn matches(&self, url: &ServerUrl) -> bool {
        if !self.names_host(url) {
            return false;
        }
        let on = |ports: &[u16], default: u16| {
            let port = url.port.unwrap_or(default);
            ports.iter().any(|p| *p == 0 || *p == port)
        };
        match url.server_type {
            Some("HTTPS") => on(&self.https_ports, 443),
            Some("HTTP") => on(&self.http_ports, 80),
            Some("TFTP") => on(&self.tftp_ports, 69),
            Some("FTP" | "FTPS") => on(&self.ftp_ports, 21),
            // A bare address: the phone uses its own server type (HTTP, FTP — the factory
            // type — on 21, or TFTP on 69).
            _ => {
                on(&self.http_ports, 80)
                    || on(&self.https_ports, 80)
                    || on(&self.ftp_ports, 21)
                    || (url.port.is_none() && on(&self.tftp_ports, 69))
            }
        }
    }

    /// Adds a problem for `field` when `value` points at this server.
    pub fn check_field(&self, field: &str, value: &str, problems: &mut Vec<FieldError>) {
        if value.is_empty() {
            return;
        }
        if let Ok(url) = ServerUrl::parse(value)
            && self.matches(&url)
        {
            problems.push(FieldError::new(
                field,
                format!(
                    "`{}` points at this server; leave it empty (phones already reach this \
                     server) and set the account's device credentials instead",
                    url.server_name()
                ),
            ));
        }
    }
}

/// Checks a provisioning-server address an admin enters (a profile's or a device's): it
/// must parse and name its protocol. A phone reads an address without one with its own
/// Server Type — FTP at the factory — so `prov.example.com` alone would send it to FTP
/// (docs/design.md, "10. Diagnostics").
pub fn check_address(field: &str, value: &str, problems: &mut Vec<FieldError>) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    match ServerUrl::parse(value) {
        Err(e) => problems.push(FieldError::new(field, e)),
        Ok(url) if url.server_type.is_none() => {
            // Shown with any password masked (it has no scheme yet, so give it one first).
            let https = mask_password(&format!("https://{value}")).into_owned();
            let shown = https.trim_start_matches("https://");
            problems.push(FieldError::new(
                field,
                format!(
                    "`{shown}` names no protocol: a phone reads such an address with its own \
                     Server Type (FTP at the factory); write {https} or http://{shown} (or \
                     ftp://, ftps://, tftp://)"
                ),
            ));
        }
        Ok(_) => {}
    }
}

/// What a masked password reads as.
pub const MASK: &str = "********";

/// An address (or any text holding one) with the password of an embedded
/// `scheme://user:password@host` replaced by `MASK`, for display, the audit log and
/// exports without secrets; text without such a password is returned as it is.
pub fn mask_password(text: &str) -> std::borrow::Cow<'_, str> {
    match password_span(text) {
        Some((start, end)) => {
            std::borrow::Cow::Owned(format!("{}{MASK}{}", &text[..start], &text[end..]))
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The address without its password (`https://user@host/`): what an export without
/// secrets carries.
pub fn strip_password(text: &str) -> std::borrow::Cow<'_, str> {
    match password_span(text) {
        // The colon before the password goes with it.
        Some((start, end)) => {
            std::borrow::Cow::Owned(format!("{}{}", &text[..start - 1], &text[end..]))
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Where the password of `scheme://user:password@host` is, as byte offsets.
fn password_span(text: &str) -> Option<(usize, usize)> {
    let scheme_end = text.find("://")?;
    let rest_start = scheme_end + 3;
    let rest = &text[rest_start..];
    let authority_end = rest.find(['/', '?', '#', ' ']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    if colon + 1 == at {
        return None;
    }
    Some((rest_start + colon + 1, rest_start + at))
}

/// Where the password of every `user:password@host` in a text is, as byte offsets: in
/// addresses with a scheme (`https://u:p@h/`) and without one (`u:p@h/path`, which a DHCP
/// option 66 or 160 may hold), anywhere in the text. Diagnostics mask every one of them in
/// what they print and store; `mask_password` keeps to the first address with a scheme.
pub fn password_spans(text: &str) -> Vec<(usize, usize)> {
    // Tokens end at white space, quotes and the separators of the texts findings quote
    // (`option 160 = …`, `dhcp-option=160,"…"`); a password holding one of these is cut,
    // which is why `diag::mask` also replaces each password found anywhere else.
    let boundary = |c: char| c.is_whitespace() || "\"'`=|<>".contains(c);
    let mut spans = Vec::new();
    let mut offset = 0;
    for token in text.split(boundary) {
        let start = offset;
        offset += token.len() + 1;
        // Each address in the token: after every `://`, or the token itself when it has none.
        let mut authorities: Vec<usize> = token.match_indices("://").map(|(i, _)| i + 3).collect();
        if authorities.is_empty() {
            authorities.push(0);
        }
        for from in authorities {
            let rest = &token[from..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let Some(at) = authority.rfind('@') else {
                continue;
            };
            let Some(colon) = authority[..at].find(':') else {
                continue;
            };
            if colon + 1 < at && at + 1 < authority.len() {
                spans.push((start + from + colon + 1, start + from + at));
            }
        }
    }
    spans
}

/// Whether `text` is `mask_password` of `stored` with the password masked (a form sent
/// back unchanged): the stored address is kept.
pub fn is_masked_form_of(text: &str, stored: &str) -> bool {
    text != stored && mask_password(stored) == text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_passwords_are_masked_and_nothing_else() {
        for (url, shown) in [
            (
                "https://u:Secret-1@prov.example.com/p",
                "https://u:********@prov.example.com/p",
            ),
            ("ftp://u:p@w:rd@host:21", "ftp://u:********@host:21"),
            ("https://prov.example.com/p", "https://prov.example.com/p"),
            ("https://u@prov.example.com", "https://u@prov.example.com"),
            ("user: x@y", "user: x@y"),
        ] {
            assert_eq!(mask_password(url), shown, "{url}");
        }
        let stored = "https://u:Secret-1@h/";
        assert!(is_masked_form_of("https://u:********@h/", stored));
        assert!(!is_masked_form_of(stored, stored));
    }

    #[test]
    fn every_password_is_found_with_or_without_a_scheme() {
        let text = "option 160 = http://u:Secret-1@h:80/p; option 66 = ph:Other-2@10.0.0.5/x \
                    dhcp-option=160,\"https://a:p@ss@h/\" bob@example.com user: x@y h:8080";
        let found: Vec<&str> = password_spans(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect();
        assert_eq!(found, ["Secret-1", "Other-2", "p@ss"]);
        assert!(password_spans("http://h:80/ 10.0.0.5").is_empty());
    }

    #[test]
    fn every_device_listener_and_this_hosts_addresses_are_this_server() {
        let l = |a: &str, tls| Listener {
            addr: a.parse().expect("addr"),
            tls,
        };
        let ips: Vec<std::net::IpAddr> = vec!["10.0.0.7".parse().expect("ip")];
        let own = OwnAddresses::new(
            &["Prov.Example.com".into()],
            "box",
            &[l("0.0.0.0:8080", false), l("0.0.0.0:8443", true)],
            &ips,
        );
        let here = |u: &str| own.matches(&ServerUrl::parse(u).expect("url"));
        assert!(here("https://prov.example.com:8443/"));
        assert!(here("http://10.0.0.7:8080/"), "this host's own IP");
        assert!(here("http://box:8080/"));
        assert!(
            !here("http://prov.example.com:8443/"),
            "HTTP on the HTTPS port"
        );
        assert!(!here("https://prov.example.com:8080/"));
        assert!(!here("https://prov.example.com/"), "443 is not ours");
        assert!(!here("http://10.0.0.8:8080/"));
        // Bound to one address: that one, not the host's others.
        let own = OwnAddresses::new(&[], "", &[l("10.0.0.9:80", false)], &ips);
        assert!(own.matches(&ServerUrl::parse("http://10.0.0.9/").expect("url")));
        assert!(!own.matches(&ServerUrl::parse("http://10.0.0.7/").expect("url")));
        // No device HTTPS listener: nothing over HTTPS is this server.
        assert!(!own.matches(&ServerUrl::parse("https://10.0.0.9/").expect("url")));
        // The TFTP listener: tftp:// on its port, and a bare address on 69.
        assert!(!own.matches(&ServerUrl::parse("tftp://10.0.0.9/").expect("url")));
        let own = own.with_tftp(Some("0.0.0.0:69".parse().expect("addr")), &ips);
        let here = |u: &str| own.matches(&ServerUrl::parse(u).expect("url"));
        assert!(here("tftp://10.0.0.9/"));
        assert!(here("tftp://10.0.0.7/"), "bound to every address");
        assert!(here("10.0.0.7"), "a bare address may be TFTP");
        assert!(!here("tftp://10.0.0.7:6969/"));
        assert!(!here("tftp://10.0.0.8/"));
        // The FTP listener: ftp:// and ftps:// on its port, and a bare address on 21.
        assert!(!here("ftp://10.0.0.9/"));
        let own = own.with_ftp(Some("10.0.0.9:21".parse().expect("addr")), &ips);
        let here = |u: &str| own.matches(&ServerUrl::parse(u).expect("url"));
        assert!(here("ftp://10.0.0.9/") && here("ftps://10.0.0.9/"));
        assert!(here("10.0.0.9:21"), "a bare address is FTP at the factory");
        assert!(!here("ftp://10.0.0.9:2121/"));
    }

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

    #[test]
    fn an_address_an_admin_enters_names_its_protocol() {
        let mut p = Vec::new();
        for ok in [
            "https://prov.example.com/cfg",
            "http://u:pw@10.0.0.5:8080",
            "ftp://10.0.0.5",
            "",
        ] {
            check_address("prov_server", ok, &mut p);
        }
        assert!(p.is_empty(), "{p:?}");
        check_address("prov_server", "prov.example.com/cfg", &mut p);
        check_address("prov_server", "u:Secret-9@10.0.0.5", &mut p);
        check_address("prov_server", "gopher://x", &mut p);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].to_string().contains("names no protocol"), "{}", p[0]);
        assert!(
            p[0].to_string().contains("https://prov.example.com/cfg"),
            "{}",
            p[0]
        );
        assert!(!p[1].to_string().contains("Secret-9"), "{}", p[1]);
    }
}
