//! Writing a response: the head with the loop's own framing headers (a handler's copies of
//! Content-Length, Connection and the like, and any internal `x-zerotouch-*` header, are
//! dropped), then the body — with the head in one write when small, chunked when its size
//! is unknown, or a file handed over with `file_body` sent by `sendfile`. Also the plain
//! error answers the loop gives itself, and the reason phrases.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rouille::Response;

use super::sendfile::send_file;
use super::{Transport, is_internal};

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

/// The file `file_body` made the body of `response`, for a caller that sends it itself
/// (the FTP listener). Always taken, like `write_response` takes it.
pub fn take_file_body(response: &Response) -> Option<std::fs::File> {
    let file = FILE_BODY.with(|f| f.borrow_mut().take());
    file.filter(|_| response.headers.iter().any(|(k, _)| k == FILE_BODY_HEADER))
}

/// Responses up to this size are written together with their head, in one write.
const COALESCE_LIMIT: usize = 32 * 1024;

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
pub(super) fn write_response<T: Transport>(
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

/// A plain-text error response, then the connection closes.
pub(super) fn write_error<T: Write>(stream: &mut T, code: u16, why: &str) -> io::Result<bool> {
    write_status(stream, code, why, &[], false)
}

pub(super) fn write_status<T: Write>(
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
