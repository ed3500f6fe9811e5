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

pub mod decode;
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

/// `user:***@` instead of `user:password@` in the first URL of a text, for what the CLI
/// prints and the page shows (the stored JSON keeps what the server sent).
pub fn mask_url(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return value.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &value[..scheme_end + 3], &rest[at..]),
        None => value.to_string(),
    }
}

/// A plain explanation of a kind of finding, for people who do not live in DHCP and DNS
/// (shown on the Diagnostics page next to each finding).
pub fn explain(code: &str) -> &'static str {
    match code {
        "dhcp.points-elsewhere" => {
            "When a phone starts, the network's DHCP server can tell it which provisioning \
             server to use (option 66, or 160/161 for Polycom). This one names another server, \
             so phones that follow it never come here."
        }
        "dhcp.points-here" => "The DHCP option sends phones to this server. That is what you want.",
        "dhcp.stale-credentials" => {
            "The DHCP option carries a user name and password for this server, but not the \
             current ones. Phones that take them from DHCP (new or reset phones) will be \
             refused until the option is updated."
        }
        "dhcp.unreadable-server" => {
            "The option is set, but not to anything a phone can use as a server address."
        }
        "dhcp.option43-lync" => {
            "Option 43 tells phones in Microsoft Lync/Skype mode where to fetch a certificate. \
             It does not send phones to another provisioning server."
        }
        "dhcp.option150" => {
            "Option 150 is a Cisco setting. Polycom phones are not known to use it."
        }
        "dhcp.no-answer" => "Nothing answered the probe, so it could not see what phones are told.",
        "dhcp.no-boot-server" => {
            "No DHCP server names a provisioning server, so phones use an address typed on \
             the phone, or ask Polycom's cloud (ZTP)."
        }
        "dhcp.failover-pair" => {
            "More than one DHCP server answers, but they say the same thing (a normal redundant pair)."
        }
        "dhcp.servers-differ" => {
            "More than one DHCP server answers and they disagree. Each phone believes \
             whichever answers first, so phones may end up on different servers."
        }
        "dhcp-config.vendor-class" => {
            "Part of the DHCP configuration applies only to devices that identify themselves in a certain way (for example as Polycom phones)."
        }
        "dhcp-config.note" => {
            "Part of a file could not be read or understood, so it was not checked."
        }
        "dhcp-config.no-options" => "The DHCP configuration does not name any provisioning server.",
        "dns.rtcconfig" | "dns.cmaconfig" => {
            "Video systems look up this DNS record to find their provisioning server. While it \
             exists they go where it points and never reach Polycom's zero-touch service."
        }
        "dns.lync" => {
            "These records are for Microsoft Lync/Skype sign-in. They do not affect provisioning."
        }
        "dns.ntp" => {
            "This record tells devices which time server to use; a correct clock matters for HTTPS."
        }
        "dns.no-answer" | "dns.partial" => {
            "The DNS server did not answer every question, so some records may be missing from this view."
        }
        "access.bad-credentials" => {
            "This phone keeps asking with a user name or password that is no longer valid, \
             usually one it got before the credentials were changed."
        }
        "overrides.server" | "overrides.registration" => {
            "Someone changed this setting on the phone itself. Settings made on the phone win \
             over what this server sends, so the phone keeps using its own value."
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url("http://u:secret@h:8080/p"),
            "http://u:***@h:8080/p"
        );
        assert_eq!(
            mask_url("option 160 = http://u:s@h/"),
            "option 160 = http://u:***@h/"
        );
        assert_eq!(mask_url("http://h/"), "http://h/");
    }
}
