//! One connection of the HTTP/1.1 loop: read a request head, decide how to receive the
//! body, run the handler, write the response, and repeat while keep-alive allows.
//!
//! This is security code. It refuses what lets one request be read two ways (both
//! Content-Length and Transfer-Encoding, repeated or malformed lengths, transfer codings
//! other than chunked), bounds every size and every wait, and never lets a client set the
//! internal `x-zerotouch-*` headers through which it tells handlers what it verified.
//! Handlers are rouille handlers: they get a `rouille::Request` and return a
//! `rouille::Response`; a panic in one becomes a 500 and the server goes on.
//!
//! This file holds the types a service sees and the loop over one connection's requests
//! (`Open::serve`, `serve_one`); `head` reads and checks request heads, `body` receives
//! bodies, `response` writes answers and `sendfile` sends files. None of them knows what
//! a request is for.

mod body;
mod head;
mod response;
mod sendfile;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rouille::{Request, Response};

use super::budget::{BodyBudget, SMALL_BODY};

use body::Incoming;
use head::{Framing, ReadError, check_head, framing, read_head, wants_keep_alive};
pub use response::{file_body, reason, refuse_busy, take_file_body};
use response::{write_error, write_response};
pub use sendfile::set_before_long_send;

/// Prefix of the headers the loop sets for handlers; client-sent copies are removed.
pub const INTERNAL_PREFIX: &str = "x-zerotouch-";
/// Internal header: path of the temporary file holding a streamed request body.
pub const UPLOAD_HEADER: &str = "x-zerotouch-upload";
/// Internal header: size in bytes of the streamed request body.
pub const UPLOAD_SIZE_HEADER: &str = "x-zerotouch-upload-size";
/// Internal header: SHA-256 (hex) of the streamed request body, computed while it arrived.
pub const UPLOAD_SHA256_HEADER: &str = "x-zerotouch-upload-sha256";

/// Sizes and timeouts of one listener.
#[derive(Debug, Clone)]
pub struct LoopLimits {
    pub head_bytes: usize,
    pub body_bytes: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    /// The whole body must have arrived within this time of its first byte being awaited,
    /// however it trickles (a body dripping a byte per `body_timeout` never ends otherwise).
    pub body_deadline: Duration,
    pub idle_timeout: Duration,
    /// Memory for this listener's request bodies (`budget`); listeners that share one
    /// (device HTTP and HTTPS) hold clones of the same.
    pub memory: std::sync::Arc<BodyBudget>,
}

/// A listener's limits, replaceable while it serves (SIGHUP): each connection takes the
/// limits in force when it is accepted, and again each time it leaves the idle set with a
/// new request, so a change reaches new requests at once and never cuts one in progress.
#[derive(Debug)]
pub struct LiveLimits(std::sync::RwLock<LoopLimits>);

impl LiveLimits {
    pub fn new(limits: LoopLimits) -> std::sync::Arc<LiveLimits> {
        std::sync::Arc::new(LiveLimits(std::sync::RwLock::new(limits)))
    }

    /// The limits in force.
    pub fn get(&self) -> LoopLimits {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts new limits in force for the requests that follow.
    pub fn set(&self, limits: LoopLimits) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = limits;
    }
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

    /// The length `Content-Length` declares, if the head has one (well formed: `framing`
    /// refused any other before a service sees the head).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
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
    /// The listener of another protocol that relayed this request (`"ftp"`), if any: its
    /// requests are served by the same rules but are never evidence for the state machine
    /// (the phone reached another listener than the one its files name).
    pub relay: Option<&'static str>,
}

/// How to receive a request's body, decided by the service from the head alone, before any
/// memory is reserved for it: admission comes before memory.
pub enum BodyPlan {
    /// Read it into memory, refusing more than `limit` bytes with 413. A body of at most
    /// `budget::SMALL_BODY` bytes costs nothing more; a larger (or chunked) one reserves its
    /// size from the listener's budget within its address's share, and gets 503 with
    /// Retry-After when that is used up. So a `limit` above `SMALL_BODY` is only for a
    /// sender the service has checked (signed in, a valid token or credential): anyone may
    /// declare a large body.
    Memory { limit: usize },
    /// Stream it into a temporary file in `dir` (same file system as its destination, so
    /// the handler can rename it into place), refusing more than `limit` bytes with 413.
    File { dir: PathBuf, limit: u64 },
    /// Answer now without reading the body (authentication failed, bad name, …).
    Respond(Response),
}

/// What a listener runs: a rouille handler plus the body decision.
pub trait Service: Send + Sync {
    /// Decides how to receive the body of a request with a body, or of any request of a
    /// method that may store something (an empty body is received like any other: an
    /// empty temporary file for `File`). This is the admission check: it runs before any
    /// memory is reserved. The default keeps a small body in memory (a service that has
    /// not checked the sender may not ask for more).
    fn plan(&self, _head: &Head, _peer: &Peer, limits: &LoopLimits) -> BodyPlan {
        BodyPlan::Memory {
            limit: limits.body_bytes.min(SMALL_BODY),
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
            relay: None,
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

/// Serves one request whose head has been read. Returns whether to keep the connection.
///
/// The hot path of a boot storm. Receiving the body lives in `body` and writing in
/// `response`, but as static calls that borrow the stream and move the body and the
/// response: the split adds no allocation, lock or dynamic call per request, and requests
/// without a body (every GET) never enter `body` at all.
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
    let _exchange = crate::http::engine::admission::Exchange::begin();
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
    let mut temp = None;
    let mut early: Option<Response> = None;
    // A request that may store something is planned even without a body: an empty PUT
    // (`Content-Length: 0`, or HTTP/1.0 without a length) passes the same checks as one
    // with a body, and its handler sees the same kind of body (an empty temporary file).
    if !matches!(framing, Framing::None) || !is_safe(&head.method) {
        let plan = service.plan(&head, peer, limits);
        let incoming = Incoming {
            stream: &mut *stream,
            buf: &mut *buf,
            framing: &framing,
            declared: match framing {
                Framing::Length(n) => Some(n),
                Framing::None => Some(0),
                Framing::Chunked => None,
            },
            expect_continue: expect_continue && !matches!(framing, Framing::None),
            limits,
        };
        match plan {
            BodyPlan::Respond(resp) => {
                if !body::discard(incoming) {
                    keep_alive = false;
                }
                early = Some(resp);
            }
            BodyPlan::Memory { limit } => match body::into_memory(incoming, limit, peer.addr.ip())?
            {
                Some((bytes, budget)) => {
                    body = bytes;
                    _budget = Some(budget);
                }
                None => return Ok(false),
            },
            BodyPlan::File { dir, limit } => {
                match body::into_file(incoming, &dir, limit, &mut head.headers)? {
                    Some(file) => temp = Some(file),
                    None => return Ok(false),
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

/// Whether a method is safe (RFC 9110 §9.2.1): it stores nothing, so a request of it
/// without a body needs no plan.
fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// Whether a header name is one of the loop's internal ones, in any case.
fn is_internal(name: &str) -> bool {
    name.as_bytes()
        .get(..INTERNAL_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_PREFIX.as_bytes()))
}
