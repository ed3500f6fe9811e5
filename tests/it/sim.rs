//! A phone simulator that behaves like a UCS phone (VVX, Trio, ...), for end-to-end tests
//! and boot-storm benchmarks.
//!
//! It keeps its own provisioning settings — server address (`device.prov.serverName`),
//! scheme (`device.prov.serverType`), user, password, boot-server option, and every other
//! `device.*` value it holds — and boots the way ../shared/polycom.md says a phone does:
//! `<mac>.cfg` (then `000000000000.cfg` on 404), then each CONFIG_FILES entry left to right
//! (an entry may be an absolute URL), every request first without credentials and again
//! with them after a 401. Parameters are read first-file-wins. It adopts a `device.*` value
//! only when the files say `device.set="1"` and that parameter's `.set="1"`, and then
//! "reboots": its next boot uses the new values (a new server, credentials, scheme, the
//! serial tag in its User-Agent, a CA to trust for HTTPS).
//!
//! HTTPS uses rustls with, as the only trust anchor, the CA the phone was given in
//! `device.sec.TLS.customCaCert1`: a phone that was never given our CA cannot connect.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

/// `device.*` parameters that change how the phone reaches its server.
pub const SERVER_NAME: &str = "device.prov.serverName";
pub const SERVER_TYPE: &str = "device.prov.serverType";
pub const USER: &str = "device.prov.user";
pub const PASSWORD: &str = "device.prov.password";
pub const BOOT_SERVER: &str = "device.dhcp.bootSrvUseOpt";
pub const TAG_SERIAL: &str = "device.prov.tagSerialNo";
pub const CA_CERT: &str = "device.sec.TLS.customCaCert1";

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Master and config files read; nothing platform-level changed.
    Configured,
    /// `device.*` values were adopted (named): the phone reboots to apply them.
    Rebooted(Vec<String>),
    /// The master file was refused (401 with credentials, 403, 404, ...).
    Refused { status: u16, path: String },
    /// No connection (or no TLS trust).
    Unreachable(String),
}

/// One request the phone made.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub status: u16,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// An open connection: the address it goes to, and whether credentials were asked for.
struct Connection {
    key: String,
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    authed: bool,
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A simulated UCS phone.
pub struct SimPhone {
    pub mac: String,
    /// `PolycomVVX-VVX_500`
    pub product_model: String,
    pub version: String,
    /// Every `device.*` value the phone holds.
    pub device: BTreeMap<String, String>,
    /// The other parameters of its last complete boot.
    pub config: BTreeMap<String, String>,
    pub boots: u32,
    pub reboots: u32,
    /// Every request made, oldest first.
    pub requests: Vec<Request>,
    conn: Option<Connection>,
}

impl SimPhone {
    /// A VVX 500 that reaches its server at `server` (`host:port` or `host:port/path`, as
    /// DHCP option 160 or a manual setting would give it) over HTTP with these credentials.
    pub fn new(mac: &str, server: &str, user: &str, password: &str) -> SimPhone {
        let mut device = BTreeMap::new();
        device.insert(SERVER_NAME.into(), server.into());
        device.insert(SERVER_TYPE.into(), "HTTP".into());
        device.insert(USER.into(), user.into());
        device.insert(PASSWORD.into(), password.into());
        device.insert(BOOT_SERVER.into(), "Default".into());
        SimPhone {
            mac: mac.into(),
            product_model: "PolycomVVX-VVX_500".into(),
            version: "5.9.7.47435".into(),
            device,
            config: BTreeMap::new(),
            boots: 0,
            reboots: 0,
            requests: Vec::new(),
            conn: None,
        }
    }

    pub fn held(&self, param: &str) -> &str {
        self.device.get(param).map(String::as_str).unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.held(USER)
    }

    pub fn password(&self) -> &str {
        self.held(PASSWORD)
    }

    /// Sets its credentials by hand (as typed on the phone).
    pub fn set_credentials(&mut self, user: &str, password: &str) {
        self.device.insert(USER.into(), user.into());
        self.device.insert(PASSWORD.into(), password.into());
        self.conn = None;
    }

    pub fn user_agent(&self) -> String {
        let tag = if self.held(TAG_SERIAL) == "1" {
            format!(" (SN:{})", self.mac)
        } else {
            String::new()
        };
        format!(
            "FileTransport {}-UA/{}{tag} Type/Application",
            self.product_model, self.version
        )
    }

    /// `(scheme, host:port, base path)` of its provisioning server.
    fn server(&self) -> (String, String, String) {
        let scheme = if self.held(SERVER_TYPE).eq_ignore_ascii_case("HTTPS") {
            "https"
        } else {
            "http"
        };
        let name = self.held(SERVER_NAME);
        let name = name.split_once("://").map(|(_, rest)| rest).unwrap_or(name);
        let (host, path) = name.split_once('/').unwrap_or((name, ""));
        let path = path.trim_matches('/');
        let base = if path.is_empty() {
            "/".to_string()
        } else {
            format!("/{path}/")
        };
        (scheme.into(), host.into(), base)
    }

    /// One boot: master file, then every config file; adopts `device.*` changes.
    pub fn boot(&mut self) -> Boot {
        self.boots += 1;
        self.conn = None;
        let (scheme, host, base) = self.server();
        let master_path = format!("{base}{}.cfg", self.mac);
        let mut master = match self.get(&scheme, &host, &master_path) {
            Ok(r) => r,
            Err(e) => return Boot::Unreachable(e),
        };
        let mut path = master_path;
        if master.status == 404 {
            path = format!("{base}000000000000.cfg");
            master = match self.get(&scheme, &host, &path) {
                Ok(r) => r,
                Err(e) => return Boot::Unreachable(e),
            };
        }
        if master.status != 200 {
            return Boot::Refused {
                status: master.status,
                path,
            };
        }
        let files = config_files(&master.body, &self.mac);
        let mut merged: BTreeMap<String, String> = BTreeMap::new();
        for file in files {
            let fetched = if let Some((s, rest)) = file.split_once("://") {
                let (h, p) = rest.split_once('/').unwrap_or((rest, ""));
                self.get(s, h, &format!("/{p}"))
            } else {
                self.get(&scheme, &host, &format!("{base}{file}"))
            };
            let Ok(r) = fetched else { continue };
            if r.status != 200 {
                continue; // a missing optional file does not stop the boot
            }
            for (k, v) in params(&r.body) {
                merged.entry(k).or_insert(v); // the first file that sets it wins
            }
        }
        let mut adopted = Vec::new();
        if merged.get("device.set").map(String::as_str) == Some("1") {
            for (k, v) in &merged {
                if !k.starts_with("device.") || k.ends_with(".set") || k == "device.set" {
                    continue;
                }
                let set = merged.get(&format!("{k}.set")).map(String::as_str) == Some("1");
                if set && self.device.get(k) != Some(v) {
                    adopted.push(k.clone());
                }
            }
            for k in &adopted {
                self.device.insert(k.clone(), merged[k].clone());
            }
        }
        self.config = merged
            .into_iter()
            .filter(|(k, _)| !k.starts_with("device."))
            .collect();
        if adopted.is_empty() {
            Boot::Configured
        } else {
            self.reboots += 1;
            self.conn = None;
            Boot::Rebooted(adopted)
        }
    }

    /// Boots until nothing changes any more (at most `max` boots); returns the last outcome.
    pub fn boot_until_stable(&mut self, max: u32) -> Boot {
        let mut last = Boot::Configured;
        for _ in 0..max {
            last = self.boot();
            if !matches!(last, Boot::Rebooted(_)) {
                return last;
            }
        }
        last
    }

    /// A GET as the phone sends it: without credentials on a connection's first request,
    /// again with them after a 401.
    pub fn get(&mut self, scheme: &str, host: &str, path: &str) -> Result<Response, String> {
        let key = format!("{scheme}://{host}");
        if self.conn.as_ref().is_none_or(|c| c.key != key) {
            self.conn = Some(self.connect(scheme, host)?);
        }
        let authed = self.conn.as_ref().is_some_and(|c| c.authed);
        let mut r = self.send(host, path, authed)?;
        if r.status == 401 && !authed && !self.user().is_empty() {
            if let Some(c) = self.conn.as_mut() {
                c.authed = true;
            }
            r = self.send(host, path, true)?;
        }
        self.requests.push(Request {
            method: "GET".into(),
            url: format!("{key}{path}"),
            status: r.status,
        });
        Ok(r)
    }

    fn send(&mut self, host: &str, path: &str, auth: bool) -> Result<Response, String> {
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\n",
            self.user_agent()
        );
        if auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                self.user(),
                self.password()
            ));
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        head.push_str("\r\n");
        let conn = self.conn.as_mut().ok_or("no connection")?;
        let sent = conn
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| conn.stream.flush());
        match sent
            .map_err(|e| e.to_string())
            .and_then(|()| read_response(conn))
        {
            Ok(r) => {
                if r.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
                }) {
                    self.conn = None;
                }
                Ok(r)
            }
            Err(e) => {
                // The server closed an idle keep-alive connection: reconnect once.
                let (scheme, key) = {
                    let c = self.conn.as_ref().ok_or("no connection")?;
                    let (s, h) = c.key.split_once("://").unwrap_or(("http", ""));
                    (s.to_string(), h.to_string())
                };
                let mut fresh = self
                    .connect(&scheme, &key)
                    .map_err(|e2| format!("{e}; {e2}"))?;
                fresh.authed = auth;
                fresh
                    .stream
                    .write_all(head.as_bytes())
                    .map_err(|e| e.to_string())?;
                let r = read_response(&mut fresh)?;
                self.conn = Some(fresh);
                Ok(r)
            }
        }
    }

    fn connect(&self, scheme: &str, host: &str) -> Result<Connection, String> {
        let tcp = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = if scheme == "https" {
            Box::new(self.tls(tcp, host)?)
        } else {
            Box::new(tcp)
        };
        Ok(Connection {
            key: format!("{scheme}://{host}"),
            stream,
            buf: Vec::new(),
            authed: false,
        })
    }

    /// A TLS connection trusting only the CA the phone was given.
    fn tls(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
        use rustls_pki_types::pem::PemObject;
        let ca = self.held(CA_CERT);
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()).flatten() {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        if roots.is_empty() {
            return Err("no CA to trust for HTTPS".into());
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let name =
            rustls_pki_types::ServerName::try_from(bare.trim_matches(['[', ']']).to_string())
                .map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        // Finish the handshake now, so a phone that does not trust us fails here.
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        }
        Ok(s)
    }
}

fn read_response(c: &mut Connection) -> Result<Response, String> {
    let fill = |c: &mut Connection| -> Result<(), String> {
        let mut chunk = [0u8; 16384];
        match c.stream.read(&mut chunk) {
            Ok(0) => Err("connection closed".into()),
            Ok(n) => {
                c.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    };
    let end = loop {
        if let Some(p) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        fill(c)?;
    };
    let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
    c.buf.drain(..end);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while c.buf.len() < len {
        fill(c)?;
    }
    let body = c.buf.drain(..len).collect();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// CONFIG_FILES of a master file, `[PHONE_MAC_ADDRESS]` replaced, in order.
pub fn config_files(master: &[u8], mac: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(master);
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return Vec::new();
    };
    doc.root_element()
        .attribute("CONFIG_FILES")
        .unwrap_or("")
        .split(',')
        .map(|f| f.trim().replace("[PHONE_MAC_ADDRESS]", mac))
        .filter(|f| !f.is_empty())
        .collect()
}

/// Parameters of a config file: attributes with a dotted name on any element, in document
/// order (the first one wins within a file too).
pub fn params(xml: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(xml);
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.is_element())
        .flat_map(|n| {
            n.attributes()
                .filter(|a| a.name().contains('.'))
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}
