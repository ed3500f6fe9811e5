//! Diagnostics: why a phone does not reach this server. The network usually decides that,
//! not the server: a DHCP option 66/160 that points at an old server, option 160 with
//! credentials that went stale after a rotation, an `_rtcconfig` SRV record that captures
//! video endpoints, a second DHCP server on the segment (DESIGN §10, seeds 000, 002, 004).
//!
//! This module owns the probes (`dhcp`, with its robust option decoder in `options`; `dns`),
//! the reading of DHCP server configuration files (`dhcpconf`), the comparison of what they
//! found with this server's own accounts (`findings`), the option lines an admin can paste
//! (`snippets`) and the lint of Polycom configuration files (`lint`). Every check produces
//! [`Finding`]s with a severity, the evidence and the fix. Nothing here serves HTTP or
//! renders HTML; the probes run as short-lived CLI processes, so the server itself needs
//! no raw-socket capability.

pub mod dhcp;
pub mod dhcpconf;
pub mod dns;
pub mod findings;
pub mod lint;
pub mod options;
pub mod runs;
pub mod snippets;

use serde::{Deserialize, Serialize};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Phones will fail (or already fail) because of it.
    Error,
    /// Phones may be sent elsewhere or get stale settings; check it.
    Warning,
    /// Worth knowing; nothing to fix unless it surprises you.
    Info,
}

impl Severity {
    /// The lowercase name used in text output, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One result of a check: what was found, the evidence that shows it, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable identifier of the kind of finding, e.g. `dhcp.stale-credentials`; tests and
    /// scripts match on it, people read `title`.
    pub code: String,
    /// One sentence saying what is wrong (or notable).
    pub title: String,
    /// What was seen, with its source (server address, record name, file and line).
    pub evidence: String,
    /// What to change, in one or two sentences.
    pub fix: String,
}

impl Finding {
    /// A finding; `code` names its kind.
    pub fn new(
        severity: Severity,
        code: &str,
        title: impl Into<String>,
        evidence: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            code: code.to_string(),
            title: title.into(),
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }
}

/// Sorts findings most severe first, keeping the order of equal ones.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(|f| f.severity);
}

/// Prints findings as text, one block per finding.
pub fn write_findings(out: &mut dyn std::io::Write, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        writeln!(out, "no findings")?;
    }
    for f in findings {
        writeln!(out, "{:<7} [{}] {}", f.severity, f.code, f.title)?;
        writeln!(out, "        evidence: {}", f.evidence)?;
        if !f.fix.is_empty() {
            writeln!(out, "        fix:      {}", f.fix)?;
        }
    }
    Ok(())
}

/// Bytes as lowercase hex pairs separated by spaces (`00 00 36 3d`), as raw options are
/// shown.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}
