//! Receiving a request body, in the three ways a service's `BodyPlan` asks for: discarded
//! (a request answered without it), into memory under the listener's limit and its memory
//! budget (`engine::budget`), or streamed into a hidden file beside its destination, hashed on the
//! way. Framing (Content-Length or chunked) is read here; what the head allows was decided
//! in `head`. Every refusal is written here and ends the connection.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::head::{Framing, is_timeout};
use super::response::{write_error, write_status};
use super::{LoopLimits, Transport, UPLOAD_HEADER, UPLOAD_SHA256_HEADER, UPLOAD_SIZE_HEADER};
use crate::http::engine::budget::{Refusal, Reservation, SMALL_BODY};

/// A request body about to be received: where its bytes come from, how they are framed,
/// and whether the client waits for `100 Continue` before sending them.
pub(super) struct Incoming<'a, T> {
    pub stream: &'a mut T,
    /// Bytes read after the head; what follows the body stays there (pipelining).
    pub buf: &'a mut Vec<u8>,
    pub framing: &'a Framing,
    /// The length the head declared; none for a chunked body.
    pub declared: Option<u64>,
    pub expect_continue: bool,
    pub limits: &'a LoopLimits,
}

/// For a request answered without its body (`BodyPlan::Respond`): reads and discards the
/// body when it is small and already on its way, so that the connection can stay open (a
/// client waiting for `100 Continue` will not send it). Returns whether it may stay open.
pub(super) fn discard<T: Transport>(inc: Incoming<'_, T>) -> bool {
    if inc.expect_continue {
        false
    } else if inc.declared.is_some_and(|n| n <= DRAIN_LIMIT) {
        let mut sink = io::sink();
        read_body(
            inc.stream,
            inc.buf,
            inc.framing,
            DRAIN_LIMIT,
            inc.limits,
            &mut sink,
        )
        .is_ok()
    } else {
        false
    }
}

/// Receives a body into memory, refusing more than `limit` bytes and what the listener's
/// budget cannot hold for this address (`BodyPlan::Memory`); the reservation keeps its bytes
/// counted until the response is done. A body that can be no larger than `SMALL_BODY`
/// reserves nothing. `None` when it was refused: the answer is written, close.
pub(super) fn into_memory<'a, T: Transport>(
    inc: Incoming<'a, T>,
    limit: usize,
    ip: IpAddr,
) -> io::Result<Option<(Vec<u8>, Option<Reservation<'a>>)>> {
    let Incoming {
        stream,
        buf,
        framing,
        declared,
        expect_continue,
        limits,
    } = inc;
    if declared.is_some_and(|n| n > limit as u64) {
        write_error(stream, 413, "request body too large")?;
        return Ok(None);
    }
    // A chunked body may grow to its limit: that is what it reserves.
    let want = declared.map_or(limit, |n| n as usize);
    let reservation = if want <= SMALL_BODY {
        None
    } else {
        match limits.memory.reserve(ip, want) {
            Ok(r) => Some(r),
            Err(why) => {
                let reason = match why {
                    Refusal::Full => "server busy; retry later",
                    Refusal::Share => "too many request bodies from your address; retry later",
                };
                write_status(stream, 503, reason, &[("Retry-After", "5")], false)?;
                return Ok(None);
            }
        }
    };
    if expect_continue {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = Vec::new();
    match read_body(stream, buf, framing, limit as u64, limits, &mut body) {
        Ok(_) => Ok(Some((body, reservation))),
        Err(e) => refuse(stream, e, "request body too large").map(|()| None),
    }
}

/// Streams a body into a new hidden `.incoming-*` file in `dir`, refusing more than
/// `limit` bytes, hashing it on the way (`BodyPlan::File`), and names the file, its size
/// and its SHA-256 in the loop's internal `headers` for the handler. The file is removed
/// when the returned guard drops, unless the handler moved it. `None` when it was refused:
/// the answer is written, close.
pub(super) fn into_file<T: Transport>(
    inc: Incoming<'_, T>,
    dir: &Path,
    limit: u64,
    headers: &mut Vec<(String, String)>,
) -> io::Result<Option<TempUpload>> {
    let Incoming {
        stream,
        buf,
        framing,
        declared,
        expect_continue,
        limits,
    } = inc;
    if declared.is_some_and(|n| n > limit) {
        write_error(stream, 413, "upload too large")?;
        return Ok(None);
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
            return Ok(None);
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
    let result = read_body(stream, buf, framing, limit, limits, &mut writer);
    let sha256 = crate::domain::hex(&sha2::Digest::finalize(writer.hash));
    // Flushed, not synced: the handler decides what must survive a power cut.
    let flushed = writer
        .inner
        .into_inner()
        .map(drop)
        .map_err(|e| e.into_error());
    match (result, flushed) {
        (Ok(size), Ok(())) => {
            headers.push((UPLOAD_HEADER.into(), path.to_string_lossy().into_owned()));
            headers.push((UPLOAD_SIZE_HEADER.into(), size.to_string()));
            headers.push((UPLOAD_SHA256_HEADER.into(), sha256));
            Ok(Some(guard))
        }
        (Err(e), _) => refuse(stream, e, "upload too large").map(|()| None),
        (Ok(_), Err(e)) => {
            log::error!("cannot write upload file {}: {e}", path.display());
            write_status(stream, 507, "cannot store the upload", &[], false)?;
            Ok(None)
        }
    }
}

/// Bodies that are answered without being read, up to this size, are read and discarded so
/// the connection can stay open (a phone's first, unauthenticated PUT); larger ones close it.
const DRAIN_LIMIT: u64 = 64 * 1024;

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

/// A streamed body's temporary file, removed unless the handler moved it.
pub(super) struct TempUpload(PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        // Usually the handler moved it: a lookup, unlike an unlink, takes no directory lock.
        if std::fs::symlink_metadata(&self.0).is_ok() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
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

/// Answers a body that could not be received (`too_large` says what was too large); the
/// connection closes after it. A broken connection gets no answer.
fn refuse<T: Transport>(stream: &mut T, e: BodyError, too_large: &str) -> io::Result<()> {
    match e {
        BodyError::TooLarge => write_error(stream, 413, too_large).map(drop),
        BodyError::Status(code, why) => {
            let _ = write_error(stream, code, why);
            Ok(())
        }
        BodyError::Io => Ok(()),
    }
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
    let deadline = Instant::now() + limits.body_deadline;
    let limits = &Limits {
        loop_limits: limits,
        deadline,
    };
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

/// The waits of one body: each read within `body_timeout`, all of it by `deadline`.
struct Limits<'a> {
    loop_limits: &'a LoopLimits,
    deadline: Instant,
}

impl Limits<'_> {
    /// The read timeout for the next read; `Err` once the body's deadline has passed.
    fn next_wait(&self) -> Result<std::time::Duration, BodyError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BodyError::Status(408, "request body too slow"));
        }
        Ok(left.min(self.loop_limits.body_timeout))
    }
}

/// Moves exactly `n` bytes from `buf` then the stream into `out`.
fn copy_exact<T: Transport, W: Write>(
    stream: &mut T,
    buf: &mut Vec<u8>,
    mut n: u64,
    limits: &Limits<'_>,
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
            .set_read_timeout(Some(limits.next_wait()?))
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
    limits: &Limits<'_>,
) -> Result<(), BodyError> {
    let mut chunk = [0u8; 8192];
    stream
        .tcp()
        .set_read_timeout(Some(limits.next_wait()?))
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
