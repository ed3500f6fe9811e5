//! One connection of the HTTP/1.1 loop: read a request head, decide how to receive the
//! body, run the handler, write the response, and repeat while keep-alive allows.
//!
//! This is security code. It refuses what lets one request be read two ways (both
//! Content-Length and Transfer-Encoding, repeated or malformed lengths, transfer codings
//! other than chunked), bounds every size and every wait, and never lets a client set the
//! internal `x-zerotouch-*` headers through which it tells handlers what it verified.
//! Handlers are rouille handlers: they get a `rouille::Request` and return a
//! `rouille::Response`; a panic in one becomes a 500 and the server goes on.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rouille::{Request, Response};

/// Prefix of the headers the loop sets for handlers; client-sent copies are removed.
pub const INTERNAL_PREFIX: &str = "x-zerotouch-";
/// Internal header: path of the temporary file holding a streamed request body.
pub const UPLOAD_HEADER: &str = "x-zerotouch-upload";
/// Internal header: size in bytes of the streamed request body.
pub const UPLOAD_SIZE_HEADER: &str = "x-zerotouch-upload-size";
/// Internal header: SHA-256 (hex) of the streamed request body, computed while it arrived.
pub const UPLOAD_SHA256_HEADER: &str = "x-zerotouch-upload-sha256";
/// Internal response header: the body is the file handed over with `file_body`.
const FILE_BODY_HEADER: &str = "x-zerotouch-file-body";

thread_local! {
    /// A file a handler on this connection's thread gave as its response body.
    static FILE_BODY: std::cell::RefCell<Option<std::fs::File>> = const { std::cell::RefCell::new(None) };
}

/// Makes `file`, positioned at its first byte to send, the body of `response`, `len` bytes
/// long. On plain connections the loop then lets the kernel copy file to socket (sendfile),
/// which is what serving firmware images to hundreds of phones at once needs.
pub fn file_body(mut response: Response, file: std::fs::File, len: u64) -> Response {
    FILE_BODY.with(|f| *f.borrow_mut() = Some(file));
    response.data = rouille::ResponseBody::from_reader_and_size(io::empty(), len as usize);
    response.headers.push((FILE_BODY_HEADER.into(), "1".into()));
    response
}

/// Hashes what passes through on its way to a file.
struct HashingWriter<W: Write> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bodies that are answered without being read, up to this size, are read and discarded so
/// the connection can stay open (a phone's first, unauthenticated PUT); larger ones close it.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// Responses up to this size are written together with their head, in one write.
const COALESCE_LIMIT: usize = 32 * 1024;
const MAX_HEADERS: usize = 100;
/// How often an idle keep-alive connection wakes to notice that the server is stopping.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Sizes and timeouts of one listener.
#[derive(Debug, Clone)]
pub struct LoopLimits {
    pub head_bytes: usize,
    pub body_bytes: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    /// The request target as sent (origin form: path and query).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target, still percent-encoded.
    pub fn raw_path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
}

/// The other end of a connection, as the loop verified it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub secure: bool,
    /// Verified client-certificate identity (TLS with client authentication).
    pub identity: Option<String>,
}

/// How to receive a request's body, decided by the service from the head alone.
pub enum BodyPlan {
    /// Read it into memory, refusing more than `limit` bytes with 413.
    Memory { limit: usize },
    /// Stream it into a temporary file in `dir` (same file system as its destination, so
    /// the handler can rename it into place), refusing more than `limit` bytes with 413.
    File { dir: PathBuf, limit: u64 },
    /// Answer now without reading the body (authentication failed, bad name, …).
    Respond(Response),
}

/// What a listener runs: a rouille handler plus the body decision.
pub trait Service: Send + Sync {
    /// Decides how to receive the body of a request with a body. The default keeps it in
    /// memory under the listener's body limit.
    fn plan(&self, _head: &Head, _peer: &Peer, limits: &LoopLimits) -> BodyPlan {
        BodyPlan::Memory {
            limit: limits.body_bytes,
        }
    }

    /// Handles a complete request.
    fn handle(&self, request: &Request, peer: &Peer) -> Response;
}

/// A byte stream with its TCP socket (for timeouts): plain TCP, or TLS over TCP.
pub trait Transport: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
    fn secure(&self) -> bool {
        false
    }
    fn identity(&self) -> Option<String> {
        None
    }
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// Shared state of all connections of a server.
pub struct Shared {
    /// Set when the server is stopping: finish the current request, then close.
    pub stopping: AtomicBool,
    /// Bytes of request bodies held in memory right now, over all connections.
    pub memory_in_use: AtomicUsize,
    pub memory_budget: usize,
}

/// Why a request could not be read; each maps to a status sent before closing.
#[derive(Debug)]
enum ReadError {
    /// Peer closed or the connection broke: nothing to answer.
    Gone,
    Status(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// Serves one connection until it closes.
pub fn serve<T: Transport>(stream: T, service: &dyn Service, limits: &LoopLimits, shared: &Shared) {
    if let Some(mut open) = Open::new(stream, limits) {
        open.serve(service, limits, shared, false);
    }
}

/// A connection between requests: what a thread needs to go on serving it, so that an
/// idle keep-alive connection can wait without a thread of its own (`server::Parking`).
pub struct Open<T> {
    pub stream: T,
    peer: Peer,
    /// Bytes read but not yet used (a pipelined request).
    buf: Vec<u8>,
}

/// Why `Open::serve` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Waiting for a new request with nothing buffered: park it until it is readable.
    Idle,
    /// The connection is done; drop it.
    Closed,
}

impl<T: Transport> Open<T> {
    /// Prepares a new connection; `None` when it is already gone.
    pub fn new(stream: T, limits: &LoopLimits) -> Option<Open<T>> {
        let addr = stream.tcp().peer_addr().ok()?;
        let peer = Peer {
            addr,
            secure: stream.secure(),
            identity: stream.identity(),
        };
        let _ = stream.tcp().set_write_timeout(Some(limits.body_timeout));
        Some(Open {
            stream,
            peer,
            buf: Vec::new(),
        })
    }

    /// Serves requests. With `park`, returns `Idle` as soon as a response is written and
    /// nothing further is buffered (the caller waits for readability instead of a blocked
    /// read); the first read happens in any case, since a parked connection is only resumed
    /// when readable. A request whose head is still arriving keeps the thread (head timeout).
    pub fn serve(
        &mut self,
        service: &dyn Service,
        limits: &LoopLimits,
        shared: &Shared,
        park: bool,
    ) -> After {
        let mut first = true;
        loop {
            if shared.stopping.load(Ordering::Relaxed) && self.buf.is_empty() {
                return After::Closed;
            }
            if park && !first && self.buf.is_empty() {
                return After::Idle;
            }
            first = false;
            if self.buf.capacity() == 0 {
                self.buf.reserve(4096);
            }
            let head = match read_head(&mut self.stream, &mut self.buf, limits, &shared.stopping) {
                Ok(Some(h)) => h,
                Ok(None) | Err(ReadError::Gone) => return After::Closed,
                Err(ReadError::Status(code, why)) => {
                    let _ = write_error(&mut self.stream, code, why);
                    return After::Closed;
                }
            };
            match serve_one(
                &mut self.stream,
                &mut self.buf,
                head,
                &self.peer,
                service,
                limits,
                shared,
            ) {
                Ok(true) => continue,
                Ok(false) | Err(_) => return After::Closed,
            }
        }
    }
}

/// Reads one head from `buf` + the stream. `Ok(None)`: the connection ended cleanly or sat
/// idle past the timeout before a request began.
fn read_head<T: Transport>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    limits: &LoopLimits,
    stopping: &AtomicBool,
) -> Result<Option<Head>, ReadError> {
    let idle_deadline = Instant::now() + limits.idle_timeout;
    let mut head_deadline = if buf.is_empty() {
        None
    } else {
        Some(Instant::now() + limits.head_timeout)
    };
    let mut chunk = [0u8; 8192];
    loop {
        if !buf.is_empty() {
            // Tolerate empty lines before a request (RFC 9112 §2.2).
            while buf.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
                buf.remove(0);
            }
        }
        if !buf.is_empty() {
            if let Some((head, used)) = parse_head(buf, limits)? {
                buf.drain(..used);
                return Ok(Some(head));
            }
            if buf.len() > limits.head_bytes {
                return Err(ReadError::Status(431, "request head too large"));
            }
        }
        let deadline = head_deadline.unwrap_or(idle_deadline);
        let now = Instant::now();
        if now >= deadline {
            return if head_deadline.is_some() {
                Err(ReadError::Status(408, "request head too slow"))
            } else {
                Ok(None)
            };
        }
        // An idle connection wakes every second to notice a shutdown.
        let wait = if head_deadline.is_none() {
            (deadline - now).min(IDLE_POLL)
        } else {
            deadline - now
        };
        stream
            .tcp()
            .set_read_timeout(Some(wait))
            .map_err(|_| ReadError::Gone)?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return if buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Gone)
                };
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if head_deadline.is_none() {
                    head_deadline = Some(Instant::now() + limits.head_timeout);
                }
            }
            Err(e) if is_timeout(&e) => {
                if head_deadline.is_some() {
                    return Err(ReadError::Status(408, "request head too slow"));
                }
                if stopping.load(Ordering::Relaxed) || Instant::now() >= idle_deadline {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadError::Gone),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Parses a complete head from the start of `buf`, or `None` when more bytes are needed.
fn parse_head(buf: &[u8], limits: &LoopLimits) -> Result<Option<(Head, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::Status(431, "too many headers"));
        }
        Err(httparse::Error::Version) => {
            return Err(ReadError::Status(505, "HTTP version not supported"));
        }
        Err(_) => return Err(ReadError::Status(400, "malformed request")),
    };
    if used > limits.head_bytes {
        return Err(ReadError::Status(431, "request head too large"));
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(ReadError::Status(400, "malformed request line"));
    };
    let mut out = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(ReadError::Status(400, "header value is not UTF-8"));
        };
        out.push((h.name.to_string(), value.trim().to_string()));
    }
    Ok(Some((
        Head {
            method: method.to_string(),
            target: target.to_string(),
            version,
            headers: out,
        },
        used,
    )))
}

/// What the head says about the body that follows.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn framing(head: &Head) -> Result<Framing, (u16, &'static str)> {
    let te = head.count("transfer-encoding");
    let cl = head.count("content-length");
    if te > 0 && cl > 0 {
        return Err((400, "both Content-Length and Transfer-Encoding"));
    }
    if te > 1 || cl > 1 {
        return Err((400, "repeated Content-Length or Transfer-Encoding"));
    }
    if let Some(te) = head.header("transfer-encoding") {
        if head.version == 0 {
            return Err((400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !te.eq_ignore_ascii_case("chunked") {
            return Err((501, "only the chunked transfer coding is supported"));
        }
        return Ok(Framing::Chunked);
    }
    if let Some(cl) = head.header("content-length") {
        if cl.is_empty() || cl.len() > 18 || !cl.bytes().all(|b| b.is_ascii_digit()) {
            return Err((400, "malformed Content-Length"));
        }
        let n: u64 = cl.parse().map_err(|_| (400, "malformed Content-Length"))?;
        return Ok(if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        });
    }
    Ok(Framing::None)
}

fn check_head(head: &Head) -> Result<(), (u16, &'static str)> {
    if !(head.target.starts_with('/') || (head.target == "*" && head.method == "OPTIONS")) {
        return Err((400, "request target must be a path"));
    }
    if head.version == 1 && head.count("host") != 1 {
        return Err((400, "HTTP/1.1 requests need exactly one Host header"));
    }
    if head.target.bytes().any(|b| b == b'\\' || b < 0x21) {
        return Err((400, "invalid character in the request target"));
    }
    Ok(())
}

/// Whether the connection may carry another request after this one.
fn wants_keep_alive(head: &Head) -> bool {
    let connection = head.header("connection").unwrap_or("");
    let has = |t: &str| {
        connection
            .split(',')
            .any(|x| x.trim().eq_ignore_ascii_case(t))
    };
    if head.version == 1 {
        !has("close")
    } else {
        has("keep-alive")
    }
}

/// A body being held in memory counts against the shared budget until dropped.
struct BudgetGuard<'a> {
    shared: &'a Shared,
    bytes: usize,
}

impl Drop for BudgetGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .memory_in_use
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

fn reserve(shared: &Shared, bytes: usize) -> Option<BudgetGuard<'_>> {
    let before = shared.memory_in_use.fetch_add(bytes, Ordering::Relaxed);
    let guard = BudgetGuard { shared, bytes };
    if before + bytes > shared.memory_budget {
        None
    } else {
        Some(guard)
    }
}

/// A streamed body's temporary file, removed unless the handler moved it.
struct TempUpload(PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        // Usually the handler moved it: a lookup, unlike an unlink, takes no directory lock.
        if std::fs::symlink_metadata(&self.0).is_ok() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Serves one request whose head has been read. Returns whether to keep the connection.
fn serve_one<T: Transport>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    mut head: Head,
    peer: &Peer,
    service: &dyn Service,
    limits: &LoopLimits,
    shared: &Shared,
) -> io::Result<bool> {
    // Releases an admission pass the handler parked, however this exchange ends.
    let _exchange = crate::http::admission::Exchange::begin();
    if let Err((code, why)) = check_head(&head) {
        write_error(stream, code, why)?;
        return Ok(false);
    }
    let framing = match framing(&head) {
        Ok(f) => f,
        Err((code, why)) => {
            write_error(stream, code, why)?;
            return Ok(false);
        }
    };
    // Only the loop sets internal headers.
    head.headers.retain(|(k, _)| !is_internal(k));
    if let Some(id) = &peer.identity {
        head.headers
            .push((crate::tls::inspect::CLIENT_CERT_HEADER.into(), id.clone()));
    }
    let mut keep_alive = wants_keep_alive(&head);
    let expect_continue = match head.header("expect") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
        Some(_) => {
            write_error(stream, 417, "unsupported Expect")?;
            return Ok(false);
        }
    };
    let is_head_method = head.method == "HEAD";

    let mut body = Vec::new();
    let mut _budget = None;
    let mut temp: Option<TempUpload> = None;
    let mut early: Option<Response> = None;
    if !matches!(framing, Framing::None) {
        let plan = service.plan(&head, peer, limits);
        let declared = match framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        match plan {
            BodyPlan::Respond(resp) => {
                // Keep the connection only if the unread body is small and already on its
                // way (a client waiting for 100-continue will not send it).
                if expect_continue {
                    keep_alive = false;
                } else if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
                    let mut sink = io::sink();
                    if read_body(stream, buf, &framing, DRAIN_LIMIT, limits, &mut sink).is_err() {
                        keep_alive = false;
                    }
                } else {
                    keep_alive = false;
                }
                early = Some(resp);
            }
            BodyPlan::Memory { limit } => {
                if declared.is_some_and(|n| n > limit as u64) {
                    write_error(stream, 413, "request body too large")?;
                    return Ok(false);
                }
                let want = declared.map(|n| n as usize).unwrap_or(limit.min(64 * 1024));
                match reserve(shared, want) {
                    Some(g) => _budget = Some(g),
                    None => {
                        write_status(
                            stream,
                            503,
                            "server busy; retry later",
                            &[("Retry-After", "5")],
                            false,
                        )?;
                        return Ok(false);
                    }
                }
                if expect_continue {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                match read_body(stream, buf, &framing, limit as u64, limits, &mut body) {
                    Ok(_) => {}
                    Err(BodyError::TooLarge) => {
                        write_error(stream, 413, "request body too large")?;
                        return Ok(false);
                    }
                    Err(BodyError::Status(code, why)) => {
                        let _ = write_error(stream, code, why);
                        return Ok(false);
                    }
                    Err(BodyError::Io) => return Ok(false),
                }
            }
            BodyPlan::File { dir, limit } => {
                if declared.is_some_and(|n| n > limit) {
                    write_error(stream, 413, "upload too large")?;
                    return Ok(false);
                }
                let path = dir.join(format!(
                    ".incoming-{}",
                    crate::domain::account::random_token(16)
                ));
                let file = match create_temp(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        log::error!("cannot create upload file {}: {e}", path.display());
                        write_status(stream, 507, "cannot store uploads right now", &[], false)?;
                        return Ok(false);
                    }
                };
                let guard = TempUpload(path.clone());
                if expect_continue {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                // A small declared body gets a buffer of its size, not 64 KiB.
                let capacity = declared.map_or(64 * 1024, |n| n.clamp(1, 64 * 1024) as usize);
                let mut writer = HashingWriter {
                    inner: io::BufWriter::with_capacity(capacity, file),
                    hash: <sha2::Sha256 as sha2::Digest>::new(),
                };
                let result = read_body(stream, buf, &framing, limit, limits, &mut writer);
                let sha256 = crate::domain::hex(&sha2::Digest::finalize(writer.hash));
                // Flushed, not synced: the handler decides what must survive a power cut.
                let flushed = writer
                    .inner
                    .into_inner()
                    .map(drop)
                    .map_err(|e| e.into_error());
                match (result, flushed) {
                    (Ok(size), Ok(())) => {
                        head.headers
                            .push((UPLOAD_HEADER.into(), path.to_string_lossy().into_owned()));
                        head.headers
                            .push((UPLOAD_SIZE_HEADER.into(), size.to_string()));
                        head.headers.push((UPLOAD_SHA256_HEADER.into(), sha256));
                        temp = Some(guard);
                    }
                    (Err(BodyError::TooLarge), _) => {
                        write_error(stream, 413, "upload too large")?;
                        return Ok(false);
                    }
                    (Err(BodyError::Status(code, why)), _) => {
                        let _ = write_error(stream, code, why);
                        return Ok(false);
                    }
                    (Err(BodyError::Io), _) => return Ok(false),
                    (Ok(_), Err(e)) => {
                        log::error!("cannot write upload file {}: {e}", path.display());
                        write_status(stream, 507, "cannot store the upload", &[], false)?;
                        return Ok(false);
                    }
                }
            }
        }
    }

    let response = match early {
        Some(r) => r,
        None => {
            let request = if peer.secure {
                Request::fake_https_from(
                    peer.addr,
                    head.method.clone(),
                    head.target.clone(),
                    head.headers,
                    body,
                )
            } else {
                Request::fake_http_from(
                    peer.addr,
                    head.method.clone(),
                    head.target.clone(),
                    head.headers,
                    body,
                )
            };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                service.handle(&request, peer)
            })) {
                Ok(r) => r,
                Err(_) => {
                    log::error!("handler panicked on {} {}", head.method, head.target);
                    keep_alive = false;
                    Response::text("internal error").with_status_code(500)
                }
            }
        }
    };
    drop(temp);
    drop(_budget);
    if shared.stopping.load(Ordering::Relaxed) {
        keep_alive = false;
    }
    if response
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
    {
        keep_alive = false;
    }
    write_response(stream, head.version, is_head_method, response, keep_alive)
}

fn create_temp(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

enum BodyError {
    TooLarge,
    Status(u16, &'static str),
    Io,
}

/// Reads a body framed as `framing` into `out`, refusing more than `limit` bytes. Bytes
/// already in `buf` are used first; bytes after the body stay in `buf` (pipelining).
fn read_body<T: Transport, W: Write>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    framing: &Framing,
    limit: u64,
    limits: &LoopLimits,
    out: &mut W,
) -> Result<u64, BodyError> {
    match framing {
        Framing::None => Ok(0),
        Framing::Length(n) => {
            if *n > limit {
                return Err(BodyError::TooLarge);
            }
            copy_exact(stream, buf, *n, limits, out)?;
            Ok(*n)
        }
        Framing::Chunked => {
            let mut total = 0u64;
            loop {
                let size = loop {
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.drain(..used);
                            break size;
                        }
                        Ok(httparse::Status::Partial) => {
                            if buf.len() > 1024 {
                                return Err(BodyError::Status(400, "malformed chunk size"));
                            }
                            fill(stream, buf, limits)?;
                        }
                        Err(_) => return Err(BodyError::Status(400, "malformed chunk size")),
                    }
                };
                if size == 0 {
                    // Trailers: skip header lines up to the empty line.
                    loop {
                        if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
                            let empty = pos == 0;
                            buf.drain(..pos + 2);
                            if empty {
                                return Ok(total);
                            }
                        } else {
                            if buf.len() > 8192 {
                                return Err(BodyError::Status(400, "trailers too large"));
                            }
                            fill(stream, buf, limits)?;
                        }
                    }
                }
                total = total.checked_add(size).ok_or(BodyError::TooLarge)?;
                if total > limit {
                    return Err(BodyError::TooLarge);
                }
                copy_exact(stream, buf, size, limits, out)?;
                while buf.len() < 2 {
                    fill(stream, buf, limits)?;
                }
                if &buf[..2] != b"\r\n" {
                    return Err(BodyError::Status(400, "chunk not followed by CRLF"));
                }
                buf.drain(..2);
            }
        }
    }
}

/// Moves exactly `n` bytes from `buf` then the stream into `out`.
fn copy_exact<T: Transport, W: Write>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    mut n: u64,
    limits: &LoopLimits,
    out: &mut W,
) -> Result<(), BodyError> {
    let from_buf = (buf.len() as u64).min(n) as usize;
    out.write_all(&buf[..from_buf])
        .map_err(|_| BodyError::Status(507, "cannot store the body"))?;
    buf.drain(..from_buf);
    n -= from_buf as u64;
    if n == 0 {
        // The usual small upload: it came with its head.
        return Ok(());
    }
    let mut chunk = vec![0u8; (64 * 1024).min(n as usize)];
    while n > 0 {
        stream
            .tcp()
            .set_read_timeout(Some(limits.body_timeout))
            .map_err(|_| BodyError::Io)?;
        let want = (chunk.len() as u64).min(n) as usize;
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(BodyError::Io),
            Ok(k) => {
                out.write_all(&chunk[..k])
                    .map_err(|_| BodyError::Status(507, "cannot store the body"))?;
                n -= k as u64;
            }
            Err(e) if is_timeout(&e) => {
                return Err(BodyError::Status(408, "request body too slow"));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(BodyError::Io),
        }
    }
    Ok(())
}

/// Reads more bytes into `buf` (for chunk framing).
fn fill<T: Transport>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    limits: &LoopLimits,
) -> Result<(), BodyError> {
    let mut chunk = [0u8; 8192];
    stream
        .tcp()
        .set_read_timeout(Some(limits.body_timeout))
        .map_err(|_| BodyError::Io)?;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(BodyError::Io),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if is_timeout(&e) => {
                return Err(BodyError::Status(408, "request body too slow"));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(BodyError::Io),
        }
    }
}

/// Whether a header name is one of the loop's internal ones, in any case.
fn is_internal(name: &str) -> bool {
    name.as_bytes()
        .get(..INTERNAL_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_PREFIX.as_bytes()))
}

/// Headers the loop owns; a handler's copies are ignored.
fn is_framing_header(name: &str) -> bool {
    [
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "trailer",
        "upgrade",
        "date",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Writes a response. Returns whether the connection stays open.
fn write_response<T: Transport>(
    stream: &mut T,
    version: u8,
    is_head: bool,
    response: Response,
    mut keep_alive: bool,
) -> io::Result<bool> {
    let status = response.status_code;
    // Always taken, so a file left by a handler never leaks into a later response.
    let file = FILE_BODY.with(|f| f.borrow_mut().take());
    let file = file.filter(|_| response.headers.iter().any(|(k, _)| k == FILE_BODY_HEADER));
    let (mut reader, size) = response.data.into_reader_and_size();
    let no_body = is_head || status == 204 || status == 304 || (100..200).contains(&status);
    // Without a known size, HTTP/1.1 uses chunked framing; HTTP/1.0 ends the body by closing.
    let chunked = size.is_none() && !no_body && version == 1;
    if size.is_none() && !no_body && version == 0 {
        keep_alive = false;
    }
    let mut out = Vec::with_capacity(512);
    write!(out, "HTTP/1.{version} {status} {}\r\n", reason(status))?;
    write!(out, "Date: {}\r\n", http_date())?;
    for (k, v) in &response.headers {
        if is_framing_header(k)
            || is_internal(k)
            || k.contains(['\r', '\n'])
            || v.contains(['\r', '\n'])
        {
            continue;
        }
        write!(out, "{k}: {v}\r\n")?;
    }
    if let Some(n) = size {
        if status != 204 && !(100..200).contains(&status) {
            write!(out, "Content-Length: {n}\r\n")?;
        }
    } else if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if no_body {
        stream.write_all(&out)?;
    } else if let (Some(mut file), Some(n)) = (file, size) {
        stream.write_all(&out)?;
        stream.flush()?;
        let n = n as u64;
        let sent = if stream.secure() {
            io::copy(&mut (&mut file).take(n), stream)?
        } else {
            send_file(stream.tcp(), &mut file, n)?
        };
        if sent != n {
            return Ok(false);
        }
    } else if let Some(n) = size.filter(|n| *n <= COALESCE_LIMIT) {
        // Head and body in one write: no small-packet stall, one syscall.
        let start = out.len();
        out.resize(start + n, 0);
        reader.read_exact(&mut out[start..])?;
        stream.write_all(&out)?;
    } else if chunked {
        stream.write_all(&out)?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let k = reader.read(&mut chunk)?;
            if k == 0 {
                break;
            }
            write!(stream, "{k:x}\r\n")?;
            stream.write_all(&chunk[..k])?;
            stream.write_all(b"\r\n")?;
        }
        stream.write_all(b"0\r\n\r\n")?;
    } else {
        stream.write_all(&out)?;
        match size {
            Some(n) => {
                if io::copy(&mut reader.take(n as u64), stream)? != n as u64 {
                    // The body source ended early (a file truncated underneath us): the
                    // framing is now wrong, so the connection must end.
                    return Ok(false);
                }
            }
            // HTTP/1.0 without a length: the body ends when the connection closes.
            None => {
                io::copy(&mut reader, stream)?;
            }
        }
    }
    stream.flush()?;
    Ok(keep_alive)
}

/// Sends `n` bytes of `file`, from its current position, to a plain socket with sendfile(2):
/// the kernel copies page cache to socket, nothing passes through user space. (`io::copy`
/// from a file to a `TcpStream` was measured doing 8 KiB reads and writes: 1.2 million
/// `sendto` calls for 200 phones fetching a 50 MB image, and 3.6 times nginx's CPU.)
/// Returns the bytes sent, fewer when the file ended early. Falls back to copying where
/// the kernel refuses sendfile for this file.
fn send_file(socket: &TcpStream, file: &mut std::fs::File, n: u64) -> io::Result<u64> {
    if n > BLOCKING_SEND {
        crate::http::server::blocking_ahead();
    }
    let mut sent = 0u64;
    while sent < n {
        let chunk = usize::try_from(n - sent)
            .unwrap_or(usize::MAX)
            .min(0x7fff_f000);
        match rustix::fs::sendfile(socket, &*file, None, chunk) {
            Ok(0) => break,
            Ok(k) => sent += k as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if sent == 0 => {
                let mut out = socket;
                return io::copy(&mut file.take(n), &mut out);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

/// Files larger than this may hold the thread for long while the client reads them.
const BLOCKING_SEND: u64 = 1 << 20;

/// A plain-text error response, then the connection closes.
fn write_error<T: Write>(stream: &mut T, code: u16, why: &str) -> io::Result<bool> {
    write_status(stream, code, why, &[], false)
}

fn write_status<T: Write>(
    stream: &mut T,
    code: u16,
    why: &str,
    extra: &[(&str, &str)],
    keep: bool,
) -> io::Result<bool> {
    let body = format!("{code} {}: {why}\n", reason(code));
    let mut out = Vec::with_capacity(256);
    write!(
        out,
        "HTTP/1.1 {code} {}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        reason(code),
        http_date(),
        body.len()
    )?;
    for (k, v) in extra {
        write!(out, "{k}: {v}\r\n")?;
    }
    if !keep {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    stream.write_all(&out)?;
    stream.flush()?;
    Ok(keep)
}

/// Writes a 503 to a connection refused at accept (over the connection cap).
pub fn refuse_busy(stream: &mut TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write_status(
        stream,
        503,
        "too many connections; retry later",
        &[("Retry-After", "10")],
        false,
    );
}

/// The reason phrase of a status code.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// The current time as an HTTP date, formatted at most once a second per thread.
fn http_date() -> String {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        c.1.clone()
    })
}
