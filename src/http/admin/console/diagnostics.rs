//! The Diagnostics page of the console: the last run of each check (DHCP probe, DNS
//! probe, DHCP configuration files, phones) with its findings and a plain explanation of
//! each, and buttons that start a check. Admins only: the findings name phones, servers
//! and whether credentials in DHCP are stale.
//!
//! The DHCP probe needs privileges the server does not have, so its button starts the
//! same binary as a separate process (`zerotouch diagnose dhcp --raw`); a thread waits for
//! it and stores the run with findings computed here. The DNS and phone checks run in the
//! request. While a probe runs, the page reloads itself every 3 seconds (a `Refresh` header).
//! DHCP configurations are analysed from the files an admin uploads or the text they paste
//! (`runs::dhcp_config_texts`: includes are noted, never read from this server's disk).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use maud::{Markup, html};
use rouille::Response;

use super::form::Form;
use super::{Console, Ctx, html_page};
use crate::config::{Config, DiagnosticsConfig};
use crate::db::{Pool, diag as q};
use crate::diag::dhcp::DhcpProbe;
use crate::diag::dhcpconf::ConfReport;
use crate::diag::dns::DnsProbe;
use crate::diag::findings::{self, ServerContext};
use crate::diag::{Finding, explain, mask_url, runs};
use crate::domain::provserver::OwnAddresses;
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views;

/// What the page needs from the configuration.
pub struct Diagnostics {
    own: OwnAddresses,
    data_dir: PathBuf,
    settings: DiagnosticsConfig,
}

const KINDS: &[(&str, &str)] = &[
    ("dhcp", "DHCP probe"),
    ("dns", "DNS records"),
    ("dhcp-config", "DHCP configuration files"),
    ("phones", "Phones"),
];

impl Diagnostics {
    pub fn new(config: &Config) -> Diagnostics {
        Diagnostics {
            own: crate::actions::own_addresses(config),
            data_dir: config.data_dir.clone(),
            settings: config.diagnostics.clone(),
        }
    }

    fn context(&self, pool: &Pool) -> Result<ServerContext> {
        ServerContext::load(&*pool.get()?, self.own.clone())
    }
}

/// `GET /diagnostics`
pub fn page(c: &Console, ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::Diagnose)?;
    let d = &c.diagnostics;
    let conn = c.conn()?;
    let mut sections = Vec::new();
    let mut running = false;
    for (kind, title) in KINDS {
        let run = q::find_latest_run(&conn, kind)?;
        running |= run.as_ref().is_some_and(|r| r.status == "running");
        let findings = match &run {
            Some(r) => q::list_findings(&conn, r.id)?,
            None => Vec::new(),
        };
        sections.push(section(
            kind,
            title,
            run.as_ref(),
            &findings,
            &d.settings,
            &ctx.csrf,
        ));
    }
    let body = html! {
        h1 { "Diagnostics" }
        p.muted { "Why a phone does not reach this server is usually decided by the network: a DHCP option or a DNS record that sends it elsewhere. Each check below shows its last run." }
        @for s in sections { (s) }
    };
    let page = html_page(
        200,
        views::page("Diagnostics", &ctx.nav("diagnostics"), body),
    );
    // While a probe runs the page reloads itself (no script needed) until it finishes.
    Ok(if running {
        page.with_additional_header("Refresh", "3")
    } else {
        page
    })
}

fn value(f: &Form, name: &str) -> Option<String> {
    Some(f.get(name).trim().to_string()).filter(|v| !v.is_empty())
}

/// `POST /diagnostics/dhcp`: starts the probe as its own process.
pub fn run_dhcp(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Diagnose)?;
    let d = &c.diagnostics;
    let interface = value(f, "interface").unwrap_or_else(|| d.settings.dhcp_interface.clone());
    let seconds = match value(f, "seconds") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| Error::invalid("seconds", "must be a number of seconds, 1 to 60"))?,
        None => d.settings.dhcp_seconds,
    };
    let ok_name = (1..=15).contains(&interface.len())
        && interface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !ok_name {
        return Err(Error::invalid(
            "interface",
            "must be an interface name such as eth0.20",
        ));
    }
    if !(1..=60).contains(&seconds) {
        return Err(Error::invalid("seconds", "must be 1 to 60"));
    }
    let conn = c.conn()?;
    if let Some(r) = q::find_latest_run(&conn, "dhcp")?
        && r.status == "running"
        && crate::db::now_secs() - r.started_at < 120
    {
        return Err(Error::Conflict(
            "a DHCP probe is already running; wait for it to finish".into(),
        ));
    }
    let id = q::insert_run(&conn, "dhcp", &interface)?;
    drop(conn);
    let (pool, server) = (c.pool.clone(), d.context(&c.pool));
    std::thread::spawn(move || {
        let outcome = probe_process(&interface, seconds);
        let stored = pool.get().and_then(|c| match (outcome, server) {
            (Ok(probe), Ok(server)) => {
                let f = findings::dhcp_findings(&probe, seconds, &server);
                runs::complete(&c, id, &probe, &f, server.masker())
            }
            (Err(e), _) => q::finish_run(&c, id, Some(&e), "{}", &[]),
            (_, Err(e)) => q::finish_run(&c, id, Some(&e.to_string()), "{}", &[]),
        });
        if let Err(e) = stored {
            log::error!("storing the DHCP probe run: {e}");
        }
    });
    Ok(Response::redirect_303("/diagnostics"))
}

/// `POST /diagnostics/dns`
pub fn run_dns(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Diagnose)?;
    let d = &c.diagnostics;
    let domain = value(f, "domain").unwrap_or_else(|| d.settings.dns_domain.clone());
    let server = match value(f, "server") {
        Some(s) => crate::diag::dns::parse_server(&s)?,
        None => crate::diag::dns::system_resolver()?,
    };
    let server_ctx = d.context(&c.pool)?;
    runs::dns(
        &*c.conn()?,
        &server_ctx,
        &domain,
        server,
        Duration::from_millis(1500),
    )?;
    Ok(Response::redirect_303("/diagnostics"))
}

/// The largest configuration text the page analyses (a netsh dump of a big Windows
/// server runs to a few megabytes).
const MAX_CONFIG_TEXT: usize = 8 << 20;

/// `POST /diagnostics/dhcp-config`: analyses a pasted configuration and uploaded files.
pub fn run_dhcp_config(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Diagnose)?;
    let mut texts = Vec::new();
    let pasted = f.get("config");
    if !pasted.trim().is_empty() {
        texts.push(("pasted configuration".to_string(), pasted.to_string()));
    }
    for up in f.files("file") {
        if up.bytes.len() > MAX_CONFIG_TEXT {
            return Err(Error::invalid(
                "file",
                format!("{} is over {} MiB", up.file_name, MAX_CONFIG_TEXT >> 20),
            ));
        }
        // netsh writes UTF-16 when redirected in PowerShell; read either.
        let text = crate::diag::dhcpconf::decode_text(&up.bytes);
        let name = if up.file_name.is_empty() {
            "uploaded file".to_string()
        } else {
            up.file_name.clone()
        };
        texts.push((name, text));
    }
    let server_ctx = c.diagnostics.context(&c.pool)?;
    runs::dhcp_config_texts(&*c.conn()?, &server_ctx, &texts)?;
    Ok(Response::redirect_303("/diagnostics#dhcp-config"))
}

/// `POST /diagnostics/phones`
pub fn run_phones(c: &Console, ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::Diagnose)?;
    let d = &c.diagnostics;
    runs::phones(&*c.conn()?, &d.data_dir, d.settings.access_log_days)?;
    Ok(Response::redirect_303("/diagnostics"))
}

/// Runs `zerotouch diagnose dhcp --raw` and reads what it saw.
fn probe_process(interface: &str, seconds: u64) -> Result<DhcpProbe, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the zerotouch binary: {e}"))?;
    let out = Command::new(exe)
        .args([
            "diagnose",
            "dhcp",
            "--raw",
            "--interface",
            interface,
            "--seconds",
        ])
        .arg(seconds.to_string())
        .output()
        .map_err(|e| format!("cannot start the probe: {e}"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return Err(text.trim().trim_start_matches("zerotouch: ").to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable probe output: {e}"))
}

/// What a run saw, as lines for the page.
fn details(kind: &str, result: &str) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        "dhcp" => {
            if let Ok(p) = serde_json::from_str::<DhcpProbe>(result) {
                out.push(format!(
                    "interface {} (MAC {}): sent {}",
                    p.interface,
                    p.mac,
                    p.sent.join(", ")
                ));
                for a in &p.answers {
                    let opts: Vec<String> = a
                        .options
                        .iter()
                        .filter(|o| [66, 160, 161, 43, 150, 120, 42, 2].contains(&o.code))
                        .map(|o| format!("{}={}", o.code, mask_url(&o.value)))
                        .collect();
                    out.push(format!(
                        "{} from {}: {}",
                        a.message_type,
                        a.server,
                        opts.join("  ")
                    ));
                }
                out.extend(p.notes.iter().cloned());
            }
        }
        "dns" => {
            if let Ok(p) = serde_json::from_str::<DnsProbe>(result) {
                for a in &p.answers {
                    if a.records.is_empty() {
                        out.push(format!(
                            "{} {}: {}",
                            a.name,
                            a.rtype,
                            a.error.clone().unwrap_or_else(|| a.rcode.clone())
                        ));
                    }
                    for r in &a.records {
                        out.push(format!("{} {} {}", r.name, r.rtype, r.data));
                    }
                }
            }
        }
        "dhcp-config" => {
            if let Ok(r) = serde_json::from_str::<ConfReport>(result) {
                for o in &r.options {
                    out.push(format!(
                        "{} ({}): option {} = {}",
                        o.location(),
                        o.scope,
                        o.code,
                        mask_url(&o.value)
                    ));
                }
                out.extend(r.notes.iter().cloned());
            }
        }
        _ => {}
    }
    out
}

fn section(
    kind: &str,
    title: &str,
    run: Option<&q::RunRow>,
    findings: &[Finding],
    s: &DiagnosticsConfig,
    csrf: &str,
) -> Markup {
    html! {
        section id=(kind) {
            h2 { (title) }
            @match run {
                None => p.muted { "Not run yet." },
                Some(r) => {
                    table.kv {
                        tr { th { "Looked at" } td { (r.subject) } }
                        tr { th { "Started" } td { (crate::http::admin::views::when(Some(r.started_at))) } }
                        tr { th { "Status" } td { (r.status) @if r.status == "running" { " (this page reloads itself until it finishes)" } } }
                        @if !r.error.is_empty() { tr { th { "Error" } td { (r.error) } } }
                    }
                    @let lines = details(kind, &r.result);
                    @if !lines.is_empty() {
                        details { summary { "What it saw" } pre { @for l in &lines { (l) "\n" } } }
                    }
                    @if r.status == "ok" && findings.is_empty() { p { "No findings." } }
                    @for f in findings {
                        div class=(format!("finding {}", f.severity)) {
                            h3 { (f.severity.as_str().to_uppercase()) ": " (f.title) }
                            @let e = explain(&f.code);
                            @if !e.is_empty() { p { (e) } }
                            p { strong { "Evidence: " } (mask_url(&f.evidence)) }
                            @if !f.fix.is_empty() { p { strong { "What to do: " } (f.fix) } }
                        }
                    }
                }
            }
            @match kind {
                "dhcp" => form method="post" action="/diagnostics/dhcp" {
                    (views::csrf_field(csrf))
                    label { "Interface " input name="interface" value=(s.dhcp_interface) placeholder="eth0.20" required; }
                    " "
                    label { "Seconds " input name="seconds" value=(s.dhcp_seconds) size="3"; }
                    " " button { "Run the DHCP probe" }
                    p.muted { "Runs " code { "zerotouch diagnose dhcp" } " as a separate process; it needs root or CAP_NET_RAW and CAP_NET_BIND_SERVICE." }
                },
                "dns" => form method="post" action="/diagnostics/dns" {
                    (views::csrf_field(csrf))
                    label { "Domain " input name="domain" value=(s.dns_domain) placeholder="example.com" required; }
                    " "
                    label { "DNS server " input name="server" placeholder="system resolver"; }
                    " " button { "Check DNS" }
                },
                "phones" => form method="post" action="/diagnostics/phones" {
                    (views::csrf_field(csrf))
                    button { "Check phones" }
                    span.muted { " Wrong credentials in the last " (s.access_log_days) " day(s), overrides stored from phones." }
                },
                _ => form method="post" action="/diagnostics/dhcp-config" enctype="multipart/form-data" {
                    (views::csrf_field(csrf))
                    div.field {
                        label for="dhcp-config-text" { "Paste a configuration" }
                        textarea #dhcp-config-text name="config" rows="6" placeholder="dhcpd.conf, Kea JSON, dnsmasq.conf or the output of netsh dhcp server dump" {}
                    }
                    div.field {
                        label for="dhcp-config-file" { "or choose files" }
                        input #dhcp-config-file type="file" name="file" multiple;
                    }
                    button { "Analyse" }
                    p.muted { "The dialect is recognised from the content. Includes are not followed here: add the included files too, or run " code { "zerotouch diagnose dhcp-config FILE..." } " on the DHCP server itself." }
                },
            }
        }
    }
}
