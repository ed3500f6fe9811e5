//! Where log lines go: standard error, read by a person or by journald. A leaf.
//!
//! When standard error is the journal (systemd sets `JOURNAL_STREAM` to its device and
//! inode), each line starts with its syslog priority, `<3>` error, `<4>` warning, `<6>`
//! info, `<7>` debug, which journald strips and stores as the entry's priority (so
//! `journalctl -p warning -u zerotouch` works); the journal adds the time itself. Anywhere
//! else, lines are simplelog's: an RFC 3339 time, the level and the message. The level is
//! the `log` crate's maximum, which SIGHUP may change (`server/reload.rs`).

use std::io::Write;

/// Sets up logging at `level`.
pub fn init(level: log::LevelFilter) {
    if stderr_is_journal() {
        let _ = log::set_boxed_logger(Box::new(Journal));
    } else {
        let cfg = simplelog::ConfigBuilder::new()
            .set_time_format_rfc3339()
            .set_target_level(log::LevelFilter::Off)
            .set_thread_level(log::LevelFilter::Off)
            .build();
        // The logger passes everything; the level is the `log` crate's maximum.
        let _ = simplelog::TermLogger::init(
            log::LevelFilter::Trace,
            cfg,
            simplelog::TerminalMode::Stderr,
            simplelog::ColorChoice::Never,
        );
    }
    log::set_max_level(level);
}

/// The syslog priority journald reads from a `<N>` prefix.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// One line (or one per line of a multi-line message) with its priority prefix.
pub fn journal_line(level: log::Level, message: &str) -> String {
    let p = priority(level);
    message
        .lines()
        .map(|l| format!("<{p}>{l}\n"))
        .collect::<String>()
}

/// Whether standard error is the journal stream systemd connected: `JOURNAL_STREAM` names
/// its `device:inode`, compared with standard error's own (a child that inherited the
/// variable but writes elsewhere gets plain lines).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

struct Journal;

impl log::Log for Journal {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = journal_line(record.level(), &record.args().to_string());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_carry_the_syslog_priority_of_their_level() {
        assert_eq!(
            journal_line(log::Level::Warn, "refused device credential from 10.0.0.7"),
            "<4>refused device credential from 10.0.0.7\n"
        );
        assert_eq!(journal_line(log::Level::Error, "a\nb"), "<3>a\n<3>b\n");
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
    }
}
