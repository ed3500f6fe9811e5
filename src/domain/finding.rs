//! Findings of the diagnostics: what was found, how much it matters, the evidence and the
//! fix. The probes and readers that produce them live in `diag`; the database stores them.

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
