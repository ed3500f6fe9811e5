//! Findings of the DNS probe: `_rtcconfig`/`_cmaconfig` records that keep video endpoints
//! from ZTP (the ZTP guide), Lync/Skype discovery records, NTP, and questions left unanswered.

use super::ServerContext;
use crate::diag::dns::DnsProbe;
use crate::diag::{Finding, Severity, sort_findings};

/// Findings of a DNS probe.
pub fn dns_findings(probe: &DnsProbe, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let answered: Vec<_> = probe.answers.iter().filter(|a| a.error.is_none()).collect();
    if answered.is_empty() {
        let why = probe
            .answers
            .first()
            .and_then(|a| a.error.clone())
            .unwrap_or_default();
        out.push(Finding::new(
            Severity::Warning,
            "dns.no-answer",
            format!("The DNS server {} did not answer", probe.server),
            why,
            "Check the server address (--server IP:PORT) and that it is reachable over UDP.",
        ));
        return out;
    }
    let records = |prefix: &str| -> Vec<String> {
        probe
            .answers
            .iter()
            .filter(|a| a.name.starts_with(prefix))
            .flat_map(|a| a.records.iter())
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.data))
            .collect()
    };
    let srv_targets = |prefix: &str| -> Vec<(String, u16)> {
        probe
            .answers
            .iter()
            .filter(|a| a.name.starts_with(prefix))
            .flat_map(|a| a.records.iter())
            .filter_map(|r| Some((r.target.clone()?, r.port?)))
            .collect()
    };
    for (prefix, code, what) in [
        (
            "_rtcconfig._tcp.",
            "dns.rtcconfig",
            "Polycom video endpoints",
        ),
        (
            "_cmaconfig._tcp.",
            "dns.cmaconfig",
            "RealPresence Resource Manager discovery (unconfirmed)",
        ),
    ] {
        let found = records(prefix);
        if found.is_empty() {
            continue;
        }
        let targets = srv_targets(prefix);
        let mut here = !targets.is_empty();
        let mut misdirected = Vec::new();
        for (host, _) in &targets {
            if !ctx.own.hosts.contains(&host.to_ascii_lowercase()) {
                here = false;
                continue;
            }
            // Named as this server: its addresses must be this server's too.
            let elsewhere: Vec<String> = probe
                .target_addresses(host)
                .unwrap_or_default()
                .into_iter()
                .filter(|ip| !ctx.own.hosts.contains(&ip.to_ascii_lowercase()))
                .collect();
            if !elsewhere.is_empty() {
                here = false;
                misdirected.push(format!("{host} resolves to {}", elsewhere.join(", ")));
            }
        }
        let (title, fix) = if misdirected.is_empty() {
            (
                format!(
                    "An SRV record {}{} exists: {what} use it instead of ZTP",
                    prefix, probe.domain
                ),
                "Video endpoints that find it never reach Polycom's ZTP (so says its guide). \
                 Remove the record if they should use ZTP, or point it at the server they \
                 should use."
                    .to_string(),
            )
        } else {
            (
                format!(
                    "An SRV record {}{} names this server, but its target's address is not \
                     this server's",
                    prefix, probe.domain
                ),
                format!(
                    "{}: endpoints following the record reach another host. Correct the A/AAAA \
                     record of the target (or set device.public_names to the names that are \
                     really this server).",
                    misdirected.join("; ")
                ),
            )
        };
        out.push(Finding::new(
            if here {
                Severity::Info
            } else {
                Severity::Warning
            },
            code,
            title,
            found.join("; "),
            fix,
        ));
    }
    // Every SRV target must resolve: a target with no address strands whoever follows the
    // record (a `_sipinternaltls` target gone with an old Lync pool, say).
    for a in probe.answers.iter().filter(|a| a.rtype == "SRV") {
        for r in &a.records {
            let Some(target) = r.target.as_deref().filter(|t| !t.is_empty() && *t != ".") else {
                continue;
            };
            if probe
                .target_addresses(target)
                .is_some_and(|ips| ips.is_empty())
            {
                out.push(Finding::new(
                    Severity::Warning,
                    "dns.dangling-target",
                    format!(
                        "The SRV record {} names {target}, which has no address",
                        a.name
                    ),
                    format!(
                        "{} {} {}; {target} has no A or AAAA record",
                        r.name, r.rtype, r.data
                    ),
                    "Phones following the record find no host there. Add the target's A/AAAA \
                     record, point the SRV record at a host that exists, or remove it.",
                ));
            }
        }
    }
    let lync: Vec<String> = [
        "_sipinternaltls._tcp.",
        "_sip._tls.",
        "lyncdiscoverinternal.",
        "lyncdiscover.",
        "ucupdates-r2.",
    ]
    .iter()
    .flat_map(|p| records(p))
    .collect();
    if !lync.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.lync",
            "Lync/Skype for Business discovery records exist",
            lync.join("; "),
            "Phones in the Lync base profile sign in with these (Polycom's Lync deployment \
             guide); nothing to change for provisioning.",
        ));
    }
    let ntp = records("_ntp._udp.");
    if !ntp.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.ntp",
            "An NTP SRV record exists",
            ntp.join("; "),
            "Phones need a correct clock to accept HTTPS certificates (Polycom's ZTP guide).",
        ));
    }
    let failed: Vec<String> = probe
        .answers
        .iter()
        .filter_map(|a| {
            a.error
                .as_ref()
                .map(|e| format!("{} {}: {e}", a.name, a.rtype))
        })
        .collect();
    if !failed.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.partial",
            "Some questions got no answer",
            failed.join("; "),
            "Run the probe again; a server that drops some queries can hide records.",
        ));
    }
    sort_findings(&mut out);
    out
}
