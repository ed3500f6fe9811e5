//! Times as people read them. A leaf: the CLI, the console's views, the database's CSV
//! writers and the diagnostics all format times the same way. Exact stamps
//! (`format_time`, `rfc3339`) go wherever a time is kept or compared (files, CLI, JSON); the
//! console shows `relative` wording with the exact stamp beside it. No clock: the current
//! time is passed in.

/// A Unix time as `Wed, 21 Oct 2015 07:28:00 UTC`.
pub fn format_time(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let s = httpdate::fmt_http_date(t);
    s.trim_end_matches(" GMT").to_string() + " UTC"
}

/// A Unix time as RFC 3339 in UTC (`2015-10-21T07:28:00Z`), for machines (HTML `datetime`).
pub fn rfc3339(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// How long ago `secs` was at `now` (or how far ahead): `just now`, `3 min ago`, `5 h ago`,
/// `2 days ago`, `4 months ago`, `2 years ago`, or `in 4 min` for a time to come. Units are
/// whole and rounded down (`3 min` is three to four minutes); months are 30 days.
pub fn relative(secs: i64, now: i64) -> String {
    const MIN: i64 = 60;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    let delta = now.saturating_sub(secs);
    let gap = delta.saturating_abs();
    if gap < 45 {
        return "just now".into();
    }
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let amount = match gap {
        g if g < HOUR => format!("{} min", (g / MIN).max(1)),
        g if g < DAY => format!("{} h", g / HOUR),
        g if g < 60 * DAY => plural(g / DAY, "day", "days"),
        g if g < 365 * DAY => plural(g / (30 * DAY), "month", "months"),
        g => plural(g / (365 * DAY), "year", "years"),
    };
    if delta > 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_wording_reads_like_a_person_would_say_it() {
        let now = 1_700_000_000;
        let cases = [
            (0, "just now"),
            (44, "just now"),
            (-30, "just now"),
            (45, "1 min ago"),
            (3 * 60 + 59, "3 min ago"),
            (59 * 60, "59 min ago"),
            (3600, "1 h ago"),
            (5 * 3600 + 1800, "5 h ago"),
            (23 * 3600, "23 h ago"),
            (86_400, "1 day ago"),
            (2 * 86_400 + 5, "2 days ago"),
            (59 * 86_400, "59 days ago"),
            (90 * 86_400, "3 months ago"),
            (400 * 86_400, "1 year ago"),
            (3 * 365 * 86_400, "3 years ago"),
            (-4 * 60, "in 4 min"),
            (-2 * 3600, "in 2 h"),
            (-86_400, "in 1 day"),
        ];
        for (ago, want) in cases {
            assert_eq!(relative(now - ago, now), want, "{ago} seconds ago");
        }
    }

    #[test]
    fn exact_stamps_stay_exact() {
        assert_eq!(format_time(1_445_412_480), "Wed, 21 Oct 2015 07:28:00 UTC");
        assert_eq!(rfc3339(1_445_412_480), "2015-10-21T07:28:00Z");
    }
}
