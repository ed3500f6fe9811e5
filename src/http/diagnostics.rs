//! The Diagnostics page of the admin listener: the last run of each check (DHCP probe, DNS
//! probe, DHCP configuration files, phones) with its findings and a plain explanation of
//! each, and buttons that start a check.
//!
//! The DHCP probe needs privileges the server does not have, so its button starts the
//! same binary as a separate process (`zerotouch diagnose dhcp --raw`); a thread waits for
//! it and stores the run with findings computed here. The DNS and phone checks run in the
//! request. Kept apart from `admin.rs` so the console can mount it as it is.
//!
//! Guard: the admin listener is loopback-only and has no sign-in yet; POSTs are refused
//! when the browser says they come from another site (`Origin`, `Sec-Fetch-Site`). The
//! console work adds sign-in and CSRF tokens.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use maud::{Markup, html};
use rouille::{Request, Response};

use crate::config::{Config, DiagnosticsConfig};
use crate::db::{Pool, diag as q};
use crate::diag::dhcp::DhcpProbe;
use crate::diag::dhcpconf::ConfReport;
use crate::diag::dns::DnsProbe;
use crate::diag::findings::{self, ServerContext};
use crate::diag::{Finding, explain, mask_url, runs};
use crate::domain::ops::OwnAddresses;

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
            own: OwnAddresses::from_config(config),
            data_dir: config.data_dir.clone(),
            settings: config.diagnostics.clone(),
        }
    }

    /// Answers the diagnostics routes; `None` for any other path.
    pub fn route(&self, request: &Request, pool: &Pool) -> Option<Response> {
        let url = request.url();
        if !url.starts_with("/diagnostics") {
            return None;
        }
        let method = request.method();
        Some(match (method, url.as_str()) {
            ("GET", "/diagnostics") => self.diagnostics_page(pool),
            ("POST", path) if !same_site(request) => {
                let _ = path;
                Response::text("refused: this form must be sent from the zerotouch admin page")
                    .with_status_code(403)
            }
            ("POST", "/diagnostics/dhcp") => self.start_dhcp(request, pool),
            ("POST", "/diagnostics/dns") => self.run_dns(request, pool),
            ("POST", "/diagnostics/phones") => self.run_phones(pool),
            _ => return None,
        })
    }

    fn context(&self, pool: &Pool) -> crate::Result<ServerContext> {
        ServerContext::load(&*pool.get()?, self.own.clone())
    }

    fn diagnostics_page(&self, pool: &Pool) -> Response {
        let mut sections = Vec::new();
        for (kind, title) in KINDS {
            let run = pool.get().and_then(|c| {
                let run = q::find_latest_run(&c, kind)?;
                let f = match &run {
                    Some(r) => q::list_findings(&c, r.id)?,
                    None => Vec::new(),
                };
                Ok((run, f))
            });
            sections.push(match run {
                Ok((run, findings)) => section(kind, title, run.as_ref(), &findings, &self.settings),
                Err(e) => html! { h2 { (title) } p { "Cannot read the last run: " (super::public_message(&e)) } },
            });
        }
        let body = html! {
            h1 { "Diagnostics" }
            p.muted { "Why a phone does not reach this server is usually decided by the network: a DHCP option or a DNS record that sends it elsewhere. Each check below shows its last run." }
            @for s in sections { (s) }
        };
        Response::html(super::admin::page("Diagnostics", body).into_string())
    }

    fn start_dhcp(&self, request: &Request, pool: &Pool) -> Response {
        let form = form(request);
        let interface =
            field(&form, "interface").unwrap_or_else(|| self.settings.dhcp_interface.clone());
        let seconds = field(&form, "seconds")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(self.settings.dhcp_seconds);
        let ok_name = (1..=15).contains(&interface.len())
            && interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        if !ok_name || !(1..=60).contains(&seconds) {
            return error_page(
                "interface must be an interface name (e.g. eth0.20) and seconds 1 to 60",
            );
        }
        let result = pool.get().and_then(|c| {
            if let Some(r) = q::find_latest_run(&c, "dhcp")?
                && r.status == "running"
                && crate::db::now_secs() - r.started_at < 120
            {
                return Ok(None);
            }
            q::insert_run(&c, "dhcp", &interface).map(Some)
        });
        let id = match result {
            Ok(Some(id)) => id,
            Ok(None) => {
                return error_page("a DHCP probe is already running; wait for it to finish");
            }
            Err(e) => return error_page(&super::public_message(&e)),
        };
        let (pool, ctx) = (pool.clone(), self.context(pool));
        std::thread::spawn(move || {
            let outcome = probe_process(&interface, seconds);
            let stored = pool.get().and_then(|c| match (outcome, ctx) {
                (Ok(probe), Ok(ctx)) => {
                    let f = findings::dhcp_findings(&probe, seconds, &ctx);
                    runs::complete(&c, id, &probe, &f)
                }
                (Err(e), _) => q::finish_run(&c, id, Some(&e), "{}", &[]),
                (_, Err(e)) => q::finish_run(&c, id, Some(&e.to_string()), "{}", &[]),
            });
            if let Err(e) = stored {
                log::error!("storing the DHCP probe run: {e}");
            }
        });
        Response::redirect_303("/diagnostics")
    }

    fn run_dns(&self, request: &Request, pool: &Pool) -> Response {
        let form = form(request);
        let domain = field(&form, "domain").unwrap_or_else(|| self.settings.dns_domain.clone());
        let result = (|| {
            let server = match field(&form, "server") {
                Some(s) => crate::diag::dns::parse_server(&s)?,
                None => crate::diag::dns::system_resolver()?,
            };
            let ctx = self.context(pool)?;
            runs::dns(
                &*pool.get()?,
                &ctx,
                &domain,
                server,
                Duration::from_millis(1500),
            )
        })();
        match result {
            Ok(_) => Response::redirect_303("/diagnostics"),
            Err(e) => error_page(&super::public_message(&e)),
        }
    }

    fn run_phones(&self, pool: &Pool) -> Response {
        match pool
            .get()
            .and_then(|c| runs::phones(&c, &self.data_dir, self.settings.access_log_days))
        {
            Ok(_) => Response::redirect_303("/diagnostics"),
            Err(e) => error_page(&super::public_message(&e)),
        }
    }
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

/// Whether a POST comes from this site, as far as the browser tells.
fn same_site(request: &Request) -> bool {
    if let Some(site) = request.header("Sec-Fetch-Site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (request.header("Origin"), request.header("Host")) {
        (Some(origin), Some(host)) => {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn form(request: &Request) -> Vec<(String, String)> {
    let mut body = Vec::new();
    if let Some(mut data) = request.data() {
        // The connection loop has already capped the body size.
        let _ = data.read_to_end(&mut body);
    }
    url::form_urlencoded::parse(&body).into_owned().collect()
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn error_page(message: &str) -> Response {
    let body =
        html! { h1 { "Diagnostics" } p { (message) } p { a href="/diagnostics" { "Back" } } };
    Response::html(super::admin::page("Diagnostics", body).into_string()).with_status_code(422)
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
) -> Markup {
    html! {
        section id=(kind) {
            h2 { (title) }
            @match run {
                None => p.muted { "Not run yet." },
                Some(r) => {
                    table.kv {
                        tr { th { "Looked at" } td { (r.subject) } }
                        tr { th { "Started" } td { (crate::cli::format_time(r.started_at)) } }
                        tr { th { "Status" } td { (r.status) @if r.status == "running" { " (reload this page in a few seconds)" } } }
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
                    label { "Interface " input name="interface" value=(s.dhcp_interface) placeholder="eth0.20" required; }
                    " "
                    label { "Seconds " input name="seconds" value=(s.dhcp_seconds) size="3"; }
                    " " button { "Run the DHCP probe" }
                    p.muted { "Runs " code { "zerotouch diagnose dhcp" } " as a separate process; it needs root or CAP_NET_RAW and CAP_NET_BIND_SERVICE." }
                },
                "dns" => form method="post" action="/diagnostics/dns" {
                    label { "Domain " input name="domain" value=(s.dns_domain) placeholder="example.com" required; }
                    " "
                    label { "DNS server " input name="server" placeholder="system resolver"; }
                    " " button { "Check DNS" }
                },
                "phones" => form method="post" action="/diagnostics/phones" {
                    button { "Check phones" }
                    span.muted { " Wrong credentials in the last " (s.access_log_days) " day(s), overrides stored from phones." }
                },
                _ => p.muted { "Run " code { "zerotouch diagnose dhcp-config FILE..." } " on the DHCP server's configuration files." },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_posts_are_refused() {
        let req = |headers: Vec<(String, String)>| {
            Request::fake_http("POST", "/diagnostics/phones", headers, Vec::new())
        };
        let h = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(same_site(&req(vec![h("Host", "127.0.0.1:8081")])));
        assert!(same_site(&req(vec![
            h("Host", "127.0.0.1:8081"),
            h("Origin", "http://127.0.0.1:8081")
        ])));
        assert!(!same_site(&req(vec![
            h("Host", "127.0.0.1:8081"),
            h("Origin", "http://evil.example")
        ])));
        assert!(!same_site(&req(vec![
            h("Host", "127.0.0.1:8081"),
            h("Sec-Fetch-Site", "cross-site")
        ])));
    }
}
