//! Responses built from bytes or files: the fixed files unknown phones get, rendered XML
//! with its ETag (304 when the phone has it), and files on disk with sendfile, ranges and
//! conditional requests (RFC 9110). Files are served only when no symbolic link lies
//! between their directory (uploads, assets, firmware) and them (`open_below`): a link
//! planted in a device's directory must not serve another device's file or one outside.

use super::*;

/// The files unknown phones get under the `stage` and `ztp` policies: the same bytes for
/// every phone, rendered (and hashed for their ETag) once.
pub(super) static STAGE_MASTER: OnceLock<Rendered> = OnceLock::new();
pub(super) static STAGE_FILE: OnceLock<Rendered> = OnceLock::new();
pub(super) static ZTP_MASTER: OnceLock<Rendered> = OnceLock::new();
pub(super) static ZTP_FILE: OnceLock<Rendered> = OnceLock::new();

pub(super) fn fixed(
    cell: &'static OnceLock<Rendered>,
    render: fn() -> Vec<u8>,
) -> &'static Rendered {
    cell.get_or_init(|| Rendered::new(render()))
}

/// A rendered XML file, or 304 when the phone already has these bytes.
pub(super) fn xml(ctx: &Ctx<'_>, r: &Rendered) -> Response {
    let etag = r.etag.to_string();
    if ctx
        .if_none_match
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Response {
            status_code: 304,
            headers: vec![("ETag".into(), etag.into())],
            data: ResponseBody::empty(),
            upgrade: None,
        };
    }
    let len = r.bytes.len();
    let body = if ctx.method == "HEAD" {
        ResponseBody::from_reader_and_size(std::io::empty(), len)
    } else {
        ResponseBody::from_reader_and_size(std::io::Cursor::new(ArcBytes(r.bytes.clone())), len)
    };
    Response {
        status_code: 200,
        headers: vec![
            ("Content-Type".into(), "application/xml".into()),
            ("ETag".into(), etag.into()),
            ("Cache-Control".into(), "no-cache".into()),
            (BODY_SIZE.into(), len.to_string().into()),
        ],
        data: body,
        upgrade: None,
    }
}

/// Shares rendered bytes without copying them per request.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Serves a file with ETag, Last-Modified, conditional GET and a single byte range.
/// Opens `path`, a file below `root`, refusing (`None`) when it or any directory between
/// `root` and it is a symbolic link, or when it is not below `root`. `root` itself may be a
/// link (a data directory moved to another disk). The last step is opened with
/// `O_NOFOLLOW`, so a link swapped in after the check is refused too.
pub fn open_below(root: &Path, path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let rel = path.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        let std::path::Component::Normal(name) = part else {
            return None;
        };
        at.push(name);
        if std::fs::symlink_metadata(&at)
            .ok()?
            .file_type()
            .is_symlink()
        {
            log::warn!("{}: a symbolic link; refused", at.display());
            return None;
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

/// Serves the file at `path` below `root` (`open_below`).
pub fn serve_file(req: &Request, root: &Path, path: &Path, content_type: &'static str) -> Response {
    let Some(mut file) = open_below(root, path) else {
        return text(404, "not found");
    };
    let Ok(meta) = file.metadata() else {
        return text(404, "not found");
    };
    if !meta.is_file() {
        return text(404, "not found");
    }
    let len = meta.len();
    let mtime = meta.modified().ok();
    let mtime_ns = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{len:x}-{mtime_ns:x}\"");
    let mut headers: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )> = vec![
        ("Content-Type".into(), content_type.into()),
        ("ETag".into(), etag.clone().into()),
        ("Accept-Ranges".into(), "bytes".into()),
    ];
    if let Some(t) = mtime {
        headers.push(("Last-Modified".into(), httpdate::fmt_http_date(t).into()));
    }
    if req
        .header("If-None-Match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Response {
            status_code: 304,
            headers,
            data: ResponseBody::empty(),
            upgrade: None,
        };
    }
    let range = req.header("Range").filter(|_| {
        // If-Range with a different validator means: send the whole file.
        req.header("If-Range").is_none_or(|v| v.trim() == etag)
    });
    let (status, start, count) = match range.map(|r| parse_range(r, len)) {
        None | Some(RangeSpec::Ignore) => (200, 0, len),
        Some(RangeSpec::Satisfiable(a, b)) => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {a}-{b}/{len}").into(),
            ));
            (206, a, b - a + 1)
        }
        Some(RangeSpec::Unsatisfiable) => {
            headers.push(("Content-Range".into(), format!("bytes */{len}").into()));
            return Response {
                status_code: 416,
                headers,
                data: ResponseBody::empty(),
                upgrade: None,
            };
        }
    };
    headers.push((BODY_SIZE.into(), count.to_string().into()));
    if req.method() == "HEAD" {
        return Response {
            status_code: status,
            headers,
            data: ResponseBody::from_reader_and_size(std::io::empty(), count as usize),
            upgrade: None,
        };
    }
    if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
        return text(500, "cannot read the file");
    }
    let response = Response {
        status_code: status,
        headers,
        data: ResponseBody::empty(),
        upgrade: None,
    };
    conn::file_body(response, file, count)
}

enum RangeSpec {
    Satisfiable(u64, u64),
    Unsatisfiable,
    /// Malformed or multiple ranges: serve the whole file (allowed by RFC 9110).
    Ignore,
}

fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match parse(b) {
            Some(0) => RangeSpec::Unsatisfiable,
            Some(n) if len > 0 => RangeSpec::Satisfiable(len.saturating_sub(n), len - 1),
            Some(_) => RangeSpec::Unsatisfiable,
            None => RangeSpec::Ignore,
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return RangeSpec::Ignore;
            };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parse(b)
            };
            let Some(end) = end else {
                return RangeSpec::Ignore;
            };
            if end < start {
                return RangeSpec::Ignore;
            }
            if start >= len {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Satisfiable(start, end.min(len - 1))
        }
        (true, true) => RangeSpec::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert!(matches!(
            parse_range("bytes=0-99", 1000),
            RangeSpec::Satisfiable(0, 99)
        ));
        assert!(matches!(
            parse_range("bytes=900-", 1000),
            RangeSpec::Satisfiable(900, 999)
        ));
        assert!(matches!(
            parse_range("bytes=-100", 1000),
            RangeSpec::Satisfiable(900, 999)
        ));
        assert!(matches!(
            parse_range("bytes=990-2000", 1000),
            RangeSpec::Satisfiable(990, 999)
        ));
        assert!(matches!(
            parse_range("bytes=1000-", 1000),
            RangeSpec::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=0-1,5-6", 1000),
            RangeSpec::Ignore
        ));
        assert!(matches!(parse_range("items=0-1", 1000), RangeSpec::Ignore));
        assert!(matches!(parse_range("bytes=5-1", 1000), RangeSpec::Ignore));
    }
}
