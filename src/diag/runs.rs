//! Running a check and keeping its outcome: what the CLI and the Diagnostics page share.
//! Each function runs one check, computes its findings against this server
//! (`findings::ServerContext`) and stores the run with its findings, so the page can show
//! the last run of each kind whoever started it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::dhcp::{DhcpProbe, ProbeOptions};
use super::findings::{self, ServerContext};
use super::mask::Masker;
use super::{Finding, dhcpconf, dns};
use crate::db::diag as q;
use crate::error::{Error, Result};

/// A finished run as the CLI prints it with `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `dhcp`, `dns`, `dhcp-config` or `phones`.
    pub kind: String,
    /// The interface, domain or files looked at.
    pub subject: String,
    /// The stored run, when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// What was seen (the probe's answers, the options found...).
    pub result: serde_json::Value,
    pub findings: Vec<Finding>,
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Stores a finished run and returns the report, both with every secret masked (`masker`
/// knows the accounts' passwords and learns the ones the run saw).
pub fn store<T: Serialize>(
    conn: &Connection,
    kind: &str,
    subject: &str,
    result: &T,
    mut findings: Vec<Finding>,
    masker: Masker,
) -> Result<Report> {
    let mut value = to_value(result);
    masker.mask_report(&mut value, &mut findings);
    let id = q::insert_run(conn, kind, subject)?;
    q::finish_run(conn, id, None, &value.to_string(), &findings)?;
    Ok(Report {
        kind: kind.into(),
        subject: subject.into(),
        run_id: Some(id),
        result: value,
        findings,
    })
}

/// Stores a run that could not be done (e.g. the probe lacked a capability).
pub fn store_failure(conn: &Connection, kind: &str, subject: &str, error: &str) -> Result<i64> {
    let id = q::insert_run(conn, kind, subject)?;
    q::finish_run(conn, id, Some(error), "{}", &[])?;
    Ok(id)
}

/// Completes a run started with `db::diag::insert_run` (the admin UI starts the DHCP probe
/// as a separate process and completes the run when it ends), with every secret masked.
pub fn complete<T: Serialize>(
    conn: &Connection,
    id: i64,
    result: &T,
    findings: &[Finding],
    masker: Masker,
) -> Result<()> {
    let (mut value, mut findings) = (to_value(result), findings.to_vec());
    masker.mask_report(&mut value, &mut findings);
    q::finish_run(conn, id, None, &value.to_string(), &findings)
}

/// Findings of a DHCP probe's answers, stored as a run.
pub fn finish_dhcp(
    conn: &Connection,
    ctx: &ServerContext,
    probe: &DhcpProbe,
    seconds: u64,
) -> Result<Report> {
    let f = findings::dhcp_findings(probe, seconds, ctx);
    store(conn, "dhcp", &probe.interface, probe, f, ctx.masker())
}

/// Runs the DHCP probe (needs the capabilities; see `diag::dhcp`), then `finish_dhcp`.
pub fn dhcp(conn: &Connection, ctx: &ServerContext, opts: &ProbeOptions) -> Result<Report> {
    match super::dhcp::probe(opts) {
        Ok(p) => finish_dhcp(conn, ctx, &p, opts.wait.as_secs()),
        Err(e) => {
            store_failure(conn, "dhcp", &opts.interface, &e.to_string())?;
            Err(e)
        }
    }
}

/// Runs the DNS probe and stores it.
pub fn dns(
    conn: &Connection,
    ctx: &ServerContext,
    domain: &str,
    server: std::net::SocketAddr,
    timeout: Duration,
) -> Result<Report> {
    let p = dns::probe(domain, server, timeout)?;
    let f = findings::dns_findings(&p, ctx);
    store(conn, "dns", &p.domain, &p, f, ctx.masker())
}

/// Analyses DHCP configuration files and stores the analysis.
pub fn dhcp_config(conn: &Connection, ctx: &ServerContext, files: &[PathBuf]) -> Result<Report> {
    if files.is_empty() {
        return Err(Error::invalid(
            "files",
            "name at least one configuration file",
        ));
    }
    let r = dhcpconf::analyze(files);
    let f = findings::conf_findings(&r, ctx);
    let subject = files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    store(conn, "dhcp-config", &subject, &r, f, ctx.masker())
}

/// Analyses DHCP configurations an admin pasted or uploaded (`(name, text)`, includes
/// noted, not followed) and stores the analysis like `dhcp_config`'s.
pub fn dhcp_config_texts(
    conn: &Connection,
    ctx: &ServerContext,
    texts: &[(String, String)],
) -> Result<Report> {
    let texts: Vec<(String, String)> = texts
        .iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .cloned()
        .collect();
    if texts.is_empty() {
        return Err(Error::invalid(
            "config",
            "paste a DHCP server's configuration or choose its file (dhcpd.conf, Kea JSON, dnsmasq.conf or a netsh dump)",
        ));
    }
    let r = dhcpconf::analyze_texts(&texts);
    let f = findings::conf_findings(&r, ctx);
    let subject = texts
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    store(conn, "dhcp-config", &subject, &r, f, ctx.masker())
}

/// Looks at what phones did (access log, stored overrides) and stores the findings.
pub fn phones(conn: &Connection, data_dir: &Path, days: u32) -> Result<Report> {
    let f = findings::phone_findings(conn, data_dir, days)?;
    store(
        conn,
        "phones",
        &format!("last {days} day(s)"),
        &serde_json::json!({ "days": days }),
        f,
        Masker::default(),
    )
}
