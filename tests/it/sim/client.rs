//! The phone's HTTP/1.1 client: one keep-alive connection at a time (a new one for another
//! server or after the server closed it), the first request of every connection without
//! credentials, the 401 answered as its `WWW-Authenticate` offers (`digest.rs`), later
//! requests on an authenticated connection sent with credentials at once. Every exchange is
//! logged with its status, the credentials it carried and the connection it used.
//!
//! It never hides what the server did to a connection: a `Connection: close` is counted as
//! a server close, and a keep-alive connection the server closed without saying so (the
//! request gets no answer) is counted as a drop and logged as an event; the request is
//! then sent again on a new connection, again first without credentials, as a phone would.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::digest::{self, AuthMode, Challenge, DigestSession};

/// The credentials a request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cred {
    None,
    Basic(String),
    Digest(String),
}

impl Cred {
    /// The user name sent, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Cred::None => None,
            Cred::Basic(u) | Cred::Digest(u) => Some(u),
        }
    }
}

/// One request as it went over the wire, with its answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// `scheme://host:port/path`
    pub url: String,
    pub status: u16,
    pub cred: Cred,
    /// Serial number of the connection it used (the first connection is 1).
    pub conn: u64,
    pub micros: u64,
    /// Body bytes received.
    pub bytes: u64,
}

impl Request {
    /// The path part of the URL.
    pub fn path(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..])
    }
}

/// A parsed response. The body is empty when the caller did not keep it (`len` counts it).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub len: u64,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A URL split the way the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`
    pub scheme: String,
    /// `host:port` as sent in the Host header
    pub host: String,
    /// origin-form path (with query)
    pub path: String,
}

impl Target {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}

/// Counts of what happened to connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Connections opened (TCP connected).
    pub opened: u64,
    /// Responses with `Connection: close` (or no length): the server ended the connection
    /// and said so.
    pub server_closes: u64,
    /// Keep-alive connections the server closed without saying so: a request sent on
    /// them got no answer and was sent again on a new connection.
    pub drops: u64,
    /// Digest challenges with `stale=true` answered with the new nonce.
    pub stale: u64,
}

/// One request to make.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub target: &'a Target,
    pub user_agent: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// Credentials to answer a 401 with (`None`: the phone holds none).
    pub credentials: Option<(&'a str, &'a str)>,
    /// Keep the response body (false: count it and drop it, e.g. a firmware image).
    pub keep_body: bool,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

enum Auth {
    Basic,
    Digest(DigestSession),
}

struct Connection {
    key: String,
    id: u64,
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    auth: Option<Auth>,
    served: u32,
}

/// Why a request got no response.
enum Failure {
    /// The connection was reused and the server had closed it: nothing came back.
    Dropped(String),
    Other(String),
}

/// The phone's HTTP client.
pub struct Client {
    pub mode: AuthMode,
    /// Local address the client's sockets bind to (port chosen by the kernel).
    pub local: Option<IpAddr>,
    /// PEM of the CAs it trusts for HTTPS (none: every HTTPS server is untrusted).
    pub trust: String,
    pub timeout: Duration,
    conn: Option<Connection>,
    next_id: u64,
    tls: Option<(String, Arc<rustls::ClientConfig>)>,
    pub log: Vec<Request>,
    /// Things worth a test's attention that are not requests (connections dropped).
    pub events: Vec<String>,
    pub stats: ConnStats,
    /// Whether to keep every response body in the log's memory (tests) or not (benches).
    pub record: bool,
}

impl Client {
    pub fn new(mode: AuthMode) -> Client {
        Client {
            mode,
            local: None,
            trust: String::new(),
            timeout: Duration::from_secs(20),
            conn: None,
            next_id: 0,
            tls: None,
            log: Vec::new(),
            events: Vec::new(),
            stats: ConnStats::default(),
            record: true,
        }
    }

    /// Closes the open connection (the phone reboots, or goes quiet until its next poll).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Whether a connection is open.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Sends a request as a phone does; answers a 401 once (and a stale Digest nonce once
    /// more). `Err` when no response came (connect, TLS, I/O).
    pub fn send(&mut self, out: &Outgoing<'_>) -> Result<Response, String> {
        let mut answers = 0;
        let mut stale_tried = false;
        loop {
            let (resp, cred) = self.exchange(out)?;
            if resp.status != 401 || out.credentials.is_none() {
                return Ok(resp);
            }
            let challenges = digest::parse_challenges(resp.headers_named("WWW-Authenticate"));
            match cred {
                // The challenge to a request without credentials (at most twice: once
                // more after a dropped connection).
                Cred::None if answers < 2 => {}
                // Right password, old nonce: answer the new nonce; not a failure.
                Cred::Digest(_)
                    if !stale_tried
                        && challenges
                            .iter()
                            .any(|c| c.is_usable_digest() && c.is_stale()) =>
                {
                    stale_tried = true;
                    self.stats.stale += 1;
                }
                // Credentials refused.
                _ => return Ok(resp),
            }
            let Some(auth) = self.choose(&challenges) else {
                return Ok(resp); // nothing this phone can answer
            };
            answers += 1;
            if !self.connected() {
                // The server closed the connection with its 401: answer on a new one.
                self.open(out.target)?;
            }
            if let Some(c) = self.conn.as_mut() {
                c.auth = Some(auth);
            }
        }
    }

    /// The scheme this phone answers a challenge with.
    fn choose(&self, challenges: &[Challenge]) -> Option<Auth> {
        let digest = challenges.iter().find(|c| c.is_usable_digest());
        let basic = challenges.iter().any(|c| c.scheme == "basic");
        match self.mode {
            AuthMode::PreferDigest => digest
                .map(|c| Auth::Digest(DigestSession::from_challenge(c)))
                .or(basic.then_some(Auth::Basic)),
            AuthMode::Basic => basic.then_some(Auth::Basic),
            AuthMode::Digest => digest.map(|c| Auth::Digest(DigestSession::from_challenge(c))),
        }
    }

    /// One request and its response on the current connection (opened if needed); a
    /// dropped keep-alive connection is reported and the request sent once more on a new
    /// one, without credentials.
    fn exchange(&mut self, out: &Outgoing<'_>) -> Result<(Response, Cred), String> {
        let key = format!("{}://{}", out.target.scheme, out.target.host);
        if self.conn.as_ref().is_none_or(|c| c.key != key) {
            self.open(out.target)?;
        }
        match self.try_exchange(out) {
            Ok(x) => Ok(x),
            Err(Failure::Dropped(why)) => {
                self.stats.drops += 1;
                self.events.push(format!(
                    "{} {}: the server closed the keep-alive connection without saying so ({why}); sent again on a new connection",
                    out.method,
                    out.target.url()
                ));
                self.open(out.target)?;
                match self.try_exchange(out) {
                    Ok(x) => Ok(x),
                    Err(Failure::Dropped(e) | Failure::Other(e)) => {
                        self.conn = None;
                        Err(e)
                    }
                }
            }
            Err(Failure::Other(e)) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    fn try_exchange(&mut self, out: &Outgoing<'_>) -> Result<(Response, Cred), Failure> {
        let started = Instant::now();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Failure::Other("no connection".into()))?;
        let reused = conn.served > 0;
        let (authorization, cred) = match (&mut conn.auth, out.credentials) {
            (Some(Auth::Basic), Some((u, p))) => (Some(digest::basic(u, p)), Cred::Basic(u.into())),
            (Some(Auth::Digest(s)), Some((u, p))) => (
                Some(s.authorization(u, p, out.method, &out.target.path)),
                Cred::Digest(u.into()),
            ),
            _ => (None, Cred::None),
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n",
            out.method, out.target.path, out.target.host, out.user_agent
        );
        for (k, v) in out.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(a) = &authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        if out.method == "PUT" || out.method == "POST" || !out.body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", out.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(out.body);
        let fail = |e: String, got_any: bool| {
            if reused && !got_any {
                Failure::Dropped(e)
            } else {
                Failure::Other(e)
            }
        };
        if let Err(e) = conn
            .stream
            .write_all(&bytes)
            .and_then(|()| conn.stream.flush())
        {
            return Err(fail(e.to_string(), false));
        }
        let resp = read_response(conn, out.method == "HEAD", out.keep_body)
            .map_err(|(e, got_any)| fail(e, got_any))?;
        conn.served += 1;
        let id = conn.id;
        let closing = resp
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || resp.header("Content-Length").is_none()
                && resp.header("Transfer-Encoding").is_none()
                && !matches!(resp.status, 204 | 304)
                && out.method != "HEAD";
        if closing {
            self.stats.server_closes += 1;
            self.conn = None;
        }
        self.log.push(Request {
            method: out.method.to_string(),
            url: out.target.url(),
            status: resp.status,
            cred: cred.clone(),
            conn: id,
            micros: started.elapsed().as_micros() as u64,
            bytes: resp.len,
        });
        Ok((resp, cred))
    }

    /// Opens a new connection to the target's server (TLS handshake finished for HTTPS).
    fn open(&mut self, target: &Target) -> Result<(), String> {
        self.conn = None;
        let default_port = if target.scheme == "https" { 443 } else { 80 };
        let with_port = if has_port(&target.host) {
            target.host.clone()
        } else {
            format!("{}:{default_port}", target.host)
        };
        let addr: SocketAddr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("resolve {}: {e}", target.host))?
            .next()
            .ok_or_else(|| format!("resolve {}: no address", target.host))?;
        let tcp = self.connect_tcp(addr)?;
        self.stats.opened += 1;
        self.next_id += 1;
        tcp.set_read_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = match target.scheme.as_str() {
            "http" => Box::new(tcp),
            "https" => Box::new(self.tls(tcp, &target.host)?),
            other => return Err(format!("this phone does not speak {other}")),
        };
        self.conn = Some(Connection {
            key: format!("{}://{}", target.scheme, target.host),
            id: self.next_id,
            stream,
            buf: Vec::with_capacity(16 * 1024),
            auth: None,
            served: 0,
        });
        Ok(())
    }

    fn connect_tcp(&self, addr: SocketAddr) -> Result<TcpStream, String> {
        let Some(local) = self.local else {
            return TcpStream::connect_timeout(&addr, self.timeout)
                .map_err(|e| format!("connect {addr}: {e}"));
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(|e| e.to_string())?;
        socket
            .bind(&SocketAddr::new(local, 0).into())
            .map_err(|e| format!("bind {local}: {e}"))?;
        socket
            .connect_timeout(&addr.into(), self.timeout)
            .map_err(|e| format!("connect {addr} from {local}: {e}"))?;
        Ok(socket.into())
    }

    /// A TLS connection trusting only `self.trust`; the handshake is finished here, so a
    /// phone that does not trust the server fails now.
    fn tls(
        &mut self,
        tcp: TcpStream,
        host: &str,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
        let config = match &self.tls {
            Some((pem, c)) if *pem == self.trust => c.clone(),
            _ => {
                let c = tls_config(&self.trust)?;
                self.tls = Some((self.trust.clone(), c.clone()));
                c
            }
        };
        let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let name =
            rustls::pki_types::ServerName::try_from(bare.trim_matches(['[', ']']).to_string())
                .map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        }
        Ok(s)
    }
}

/// Whether `host` (as in a URL's authority) names a port.
fn has_port(host: &str) -> bool {
    let after = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    after
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
}

/// A client configuration trusting the CAs of `pem` only; no session resumption, so every
/// connection is a full handshake.
fn tls_config(pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Reads one response. On error, says whether any byte of it had arrived.
fn read_response(
    c: &mut Connection,
    head_only: bool,
    keep_body: bool,
) -> Result<Response, (String, bool)> {
    let fill = |c: &mut Connection, got_any: bool| -> Result<(), (String, bool)> {
        let mut chunk = [0u8; 65536];
        match c.stream.read(&mut chunk) {
            Ok(0) => Err(("connection closed".into(), got_any)),
            Ok(n) => {
                c.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err((e.to_string(), got_any)),
        }
    };
    let end = loop {
        if let Some(p) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let got_any = !c.buf.is_empty();
        fill(c, got_any)?;
    };
    let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
    c.buf.drain(..end);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(("bad status line".to_string(), true))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
        len: 0,
    };
    if status == 100 {
        return read_response(c, head_only, keep_body);
    }
    if head_only || matches!(status, 204 | 304) {
        return Ok(resp);
    }
    let take = |c: &mut Connection, n: usize, resp: &mut Response| {
        resp.len += n as u64;
        if keep_body {
            resp.body.extend(c.buf.drain(..n));
        } else {
            c.buf.drain(..n);
        }
    };
    if let Some(len) = resp
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let mut left = len;
        while left > 0 {
            if c.buf.is_empty() {
                fill(c, true)?;
            }
            let n = (c.buf.len() as u64).min(left) as usize;
            take(c, n, &mut resp);
            left -= n as u64;
        }
    } else if resp
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let line_end = loop {
                if let Some(p) = c.buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                fill(c, true)?;
            };
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&c.buf[..line_end])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .map_err(|e| (format!("bad chunk size: {e}"), true))?;
            c.buf.drain(..line_end + 2);
            while c.buf.len() < size + 2 {
                fill(c, true)?;
            }
            take(c, size, &mut resp);
            c.buf.drain(..2);
            if size == 0 {
                break;
            }
        }
    } else {
        // No length: the body ends when the server closes the connection.
        loop {
            let n = c.buf.len();
            take(c, n, &mut resp);
            if fill(c, true).is_err() {
                break;
            }
        }
    }
    Ok(resp)
}
