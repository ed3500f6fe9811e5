//! Findings of the DHCP probe (options per server, servers that disagree) and of DHCP
//! configuration files (options per scope, vendor-class matches).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{ServerContext, check_option43, check_server_option, option150};
use crate::diag::dhcp::DhcpProbe;
use crate::diag::dhcpconf::ConfReport;
use crate::diag::{Finding, Severity, sort_findings};

/// The codes compared between servers.
const COMPARED: &[u8] = &[66, 160, 161, 43, 150, 120, 42, 2];

/// Findings of a DHCP probe.
pub fn dhcp_findings(probe: &DhcpProbe, seconds: u64, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    if probe.answers.is_empty() {
        let fix = match &probe.client_mac {
            Some(mac) => format!(
                "Nothing answered for {mac}: a switch with DHCP snooping drops packets whose \
                 hardware address is not the Ethernet source; run the probe without --mac, \
                 from a trusted port, or read the server's configuration \
                 (`zerotouch diagnose dhcp-config`)."
            ),
            None => "Check that the interface is on the phones' network (often a voice VLAN \
                     such as eth0.20) and that a relay forwards to the DHCP server."
                .to_string(),
        };
        out.push(Finding::new(
            Severity::Warning,
            "dhcp.no-answer",
            format!(
                "No DHCP server answered on {} within {seconds} s",
                probe.interface
            ),
            format!("sent {}; nothing came back", probe.sent.join(", ")),
            fix,
        ));
        return out;
    }
    // Per server: code -> value, over all its answers (the OFFER and the INFORM's ACK).
    let mut per_server: BTreeMap<Ipv4Addr, BTreeMap<u8, String>> = BTreeMap::new();
    for a in &probe.answers {
        let entry = per_server.entry(a.server).or_default();
        for o in &a.options {
            if COMPARED.contains(&o.code) {
                entry.entry(o.code).or_insert_with(|| o.value.clone());
            }
        }
    }
    for (server, options) in &per_server {
        let source = format!("DHCP server {server}");
        for (code, value) in options {
            match code {
                66 | 160 | 161 => out.extend(check_server_option(*code, value, &source, ctx)),
                43 => out.extend(check_option43(
                    value,
                    value.starts_with("MS-UC-Client"),
                    &source,
                    ctx,
                )),
                150 => out.push(option150(value, &source)),
                _ => {}
            }
        }
    }
    if !per_server
        .values()
        .any(|o| o.contains_key(&66) || o.contains_key(&160) || o.contains_key(&161))
    {
        out.push(no_boot_server(probe, per_server.len()));
    }
    if per_server.len() > 1 {
        let servers: Vec<String> = per_server.keys().map(ToString::to_string).collect();
        let first = per_server.values().next().cloned().unwrap_or_default();
        if per_server.values().all(|o| *o == first) {
            out.push(Finding::new(
                Severity::Info,
                "dhcp.failover-pair",
                format!("{} DHCP servers answer and agree", per_server.len()),
                format!("servers {}", servers.join(", ")),
                "A failover pair or split scope: nothing to do.",
            ));
        } else {
            let mut diffs = Vec::new();
            for code in COMPARED {
                let values: Vec<String> = per_server
                    .iter()
                    .map(|(s, o)| {
                        format!("{s}: {}", o.get(code).map_or("(not set)", String::as_str))
                    })
                    .collect();
                let distinct: std::collections::BTreeSet<Option<&String>> =
                    per_server.values().map(|o| o.get(code)).collect();
                if distinct.len() > 1 {
                    diffs.push(format!("option {code}: {}", values.join("; ")));
                }
            }
            out.push(Finding::new(
                Severity::Warning,
                "dhcp.servers-differ",
                format!(
                    "{} DHCP servers answer with different options",
                    per_server.len()
                ),
                diffs.join(" | "),
                "A phone takes whichever answer comes first, so it may go to either server. \
                 Make the servers agree, or remove the stray one (a forgotten router or test \
                 server is the usual cause).",
            ));
        }
    }
    sort_findings(&mut out);
    out
}

/// No server gave option 66, 160 or 161. For this host's own MAC that is no all-clear:
/// servers that class clients by MAC or OUI (dnsmasq `dhcp-mac`, an ISC class on the
/// hardware address) give phones what they do not give this host.
fn no_boot_server(probe: &DhcpProbe, servers: usize) -> Finding {
    let class = if probe.vendor_class.is_empty() {
        String::new()
    } else {
        format!(" with the vendor class of {}", probe.vendor_class)
    };
    let evidence = format!("{servers} server(s) answered on {}", probe.interface);
    match &probe.client_mac {
        Some(mac) => Finding::new(
            Severity::Info,
            "dhcp.no-boot-server",
            format!("No DHCP server gives option 66, 160 or 161 to {mac}"),
            format!("{evidence}, asked as {mac}{class}"),
            "Phones with boot server Default or Custom find no server in DHCP: they use a \
             static address or Polycom's ZTP. Servers that hand options by vendor class \
             may answer other families differently: ask again with `--family` (trio, ccx, \
             soundpoint, soundstation, lync).",
        ),
        None => Finding::new(
            Severity::Warning,
            "dhcp.no-boot-server",
            "No option 66/160/161 for this host's MAC; servers that class by MAC or OUI may \
             still give them to phones — check with `--mac` or the DHCP-config analysis",
            format!("{evidence}, asked as this host ({}){class}", probe.mac),
            "Run `zerotouch diagnose dhcp --mac <a phone's MAC>` (e.g. one starting with \
             00:04:f2, Polycom's OUI) or `zerotouch diagnose dhcp-config` on the DHCP \
             server's configuration files.",
        ),
    }
}

/// Findings of DHCP configuration files.
pub fn conf_findings(report: &ConfReport, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in &report.options {
        let source = format!("{} ({}, {})", o.location(), o.dialect.as_str(), o.scope);
        match o.code {
            66 | 160 | 161 => out.extend(check_server_option(o.code, &o.value, &source, ctx)),
            43 => out.extend(check_option43(
                &o.value,
                o.value.starts_with("MS-UC-Client"),
                &source,
                ctx,
            )),
            150 => out.push(option150(&o.value, &source)),
            60 => out.push(Finding::new(
                Severity::Info,
                "dhcp-config.vendor-class",
                format!(
                    "Scope `{}` matches on the vendor class (option 60)",
                    o.scope
                ),
                format!("{source}: {}", o.value),
                "Polycom phones send enterprise 13885 (binary) or `MS-UC-Client` (Lync mode); \
                 make sure the match fits what your phones send (device.dhcp.option60Type).",
            )),
            _ => {}
        }
    }
    for note in &report.notes {
        out.push(Finding::new(
            Severity::Info,
            "dhcp-config.note",
            "Part of the configuration was not analysed",
            note.clone(),
            "",
        ));
    }
    if report.options.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dhcp-config.no-options",
            "No provisioning option (66, 160, 161, 43, 150) or vendor-class match is set",
            format!("{} file(s) read", report.files.len()),
            "Phones reach a server through a static address or Polycom's ZTP.",
        ));
    }
    sort_findings(&mut out);
    out
}
