//! Times as people read them. A leaf: the CLI, the console's views, the database's CSV
//! writers and the diagnostics all format times the same way.

/// A Unix time as `Wed, 21 Oct 2015 07:28:00 UTC`.
pub fn format_time(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let s = httpdate::fmt_http_date(t);
    s.trim_end_matches(" GMT").to_string() + " UTC"
}
