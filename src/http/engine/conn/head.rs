//! Reading a request head: waiting for it (idle and head timeouts, waking to notice a
//! shutdown), parsing it with `httparse` under the size and header-count limits, and the
//! checks that decide whether a head may be served at all — how its body is framed (one
//! reading only: never both Content-Length and Transfer-Encoding, no repeated or malformed
//! lengths, no coding but chunked), an origin-form target, exactly one Host in HTTP/1.1 —
//! and whether the connection may carry another request.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Head, LoopLimits, Transport};

const MAX_HEADERS: usize = 100;
/// How often an idle keep-alive connection wakes to notice that the server is stopping.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Why a request could not be read; each maps to a status sent before closing.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Peer closed or the connection broke: nothing to answer.
    Gone,
    Status(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// Reads one head from `buf` + the stream. `Ok(None)`: the connection ended cleanly or sat
/// idle past the timeout before a request began.
pub(super) fn read_head<T: Transport>(
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

pub(super) fn is_timeout(e: &io::Error) -> bool {
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
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
}

pub(super) fn framing(head: &Head) -> Result<Framing, (u16, &'static str)> {
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

pub(super) fn check_head(head: &Head) -> Result<(), (u16, &'static str)> {
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
pub(super) fn wants_keep_alive(head: &Head) -> bool {
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
