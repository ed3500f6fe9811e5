//! Diagnostics: why a phone does not reach this server. The network usually decides that,
//! not the server: a DHCP option 66/160 that points at an old server, option 160 with
//! credentials that went stale after a rotation, an `_rtcconfig` SRV record that captures
//! video endpoints, a second DHCP server on the segment (docs/design.md §10).
//!
//! This module owns the probes (`dhcp`, with its robust option decoder in `options`; `dns`),
//! the reading of DHCP server configuration files (`dhcpconf`), the comparison of what they
//! found with this server's own accounts (`findings`), the option lines an admin can paste
//! (`snippets`); the lint of Polycom configuration files is `domain::lint`. Every check produces
//! [`Finding`]s with a severity, the evidence and the fix. Nothing here serves HTTP or
//! renders HTML; the probes run as short-lived CLI processes, so the server itself needs
//! no raw-socket capability.

pub mod decode;
pub mod dhcp;
pub mod dhcpconf;
pub mod dns;
pub mod findings;
pub mod mask;
pub mod options;
pub mod runs;
pub mod snippets;

pub use crate::domain::finding::{Finding, Severity};

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

/// The text with the password of every `user:password@` in it (with or without a scheme)
/// replaced by `********`, for what the CLI prints and the page shows; stored reports are
/// masked as a whole by `mask::Masker` (which also knows the accounts' passwords).
pub fn mask_url(value: &str) -> String {
    mask::Masker::default().mask(value)
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
            "No DHCP server named a provisioning server for the address the probe asked as. \
             Servers can answer phones differently (by their MAC or vendor class), so unless \
             the probe asked as a phone (--mac), phones may still be told a server."
        }
        "dhcp.no-scheme" => {
            "The option names a server without http:// or https://. A phone then uses the \
             protocol of its Server Type setting, which is FTP when it leaves the factory, so \
             it never talks HTTP to this server."
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
        "dns.dangling-target" => {
            "A DNS service record points at a host name that has no address. Devices that \
             follow the record find nothing there."
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
            "http://u:********@h:8080/p"
        );
        assert_eq!(
            mask_url("option 160 = http://u:s@h/ and u:t@10.0.0.5"),
            "option 160 = http://u:********@h/ and u:********@10.0.0.5"
        );
        assert_eq!(mask_url("http://h/"), "http://h/");
    }
}
