//! The `diagnose` and `lint` commands: run a check of `crate::diag`, store it (so the
//! Diagnostics page shows it), and print what was seen and the findings, as text or JSON.
//! `diagnose dhcp` is the one command that needs privileges (a DHCP client port and
//! SO_BINDTODEVICE); it is a separate short-lived process so the server never needs them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use argh::FromArgs;

use crate::diag::dhcp::{DhcpProbe, ProbeOptions};
use crate::diag::dhcpconf::ConfReport;
use crate::diag::dns::DnsProbe;
use crate::diag::findings::ServerContext;
use crate::diag::runs::{self, Report};
use crate::diag::{Severity, mask_url, snippets, write_findings};
use crate::domain::lint::{self, Transport};

/// find the DHCP options and DNS records that send phones elsewhere
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "diagnose",
    note = "Every secret (a password in option 160 or 66) is masked in what is printed and \
            stored.",
    error_code(
        0,
        "no findings above info (dhcp, dns, dhcp-config, phones); snippets printed"
    ),
    error_code(1, "at least one warning, no error"),
    error_code(2, "at least one error"),
    error_code(
        3,
        "the check could not run (bad option, no interface, missing privilege)"
    )
)]
pub struct DiagnoseCmd {
    #[argh(subcommand)]
    pub action: DiagnoseAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum DiagnoseAction {
    Dhcp(DiagDhcp),
    Dns(DiagDns),
    DhcpConfig(DiagDhcpConfig),
    Phones(DiagPhones),
    Snippets(DiagSnippets),
}

/// ask the DHCP servers on an interface what they tell a Polycom phone (DISCOVER and
/// INFORM, never REQUEST); needs root or CAP_NET_RAW and CAP_NET_BIND_SERVICE
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "dhcp",
    note = "Without --mac the servers see this host's MAC: those that class clients by MAC \
            or OUI (dnsmasq dhcp-mac, an ISC class on the hardware address) may answer \
            phones differently, so an answer without options is a warning, not an all-clear.",
    error_code(0, "no findings above info"),
    error_code(1, "at least one warning, no error"),
    error_code(2, "at least one error"),
    error_code(3, "the probe could not run")
)]
pub struct DiagDhcp {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// interface to probe, e.g. eth0.20 (default: diagnostics.dhcp_interface)
    #[argh(option)]
    pub interface: Option<String>,
    /// seconds to collect answers (default: diagnostics.dhcp_seconds)
    #[argh(option)]
    pub seconds: Option<u64>,
    /// ask as this phone: its MAC goes into the packets' client hardware address (chaddr,
    /// with the broadcast flag) while the Ethernet source stays this host's; a switch with
    /// DHCP snooping may drop such packets
    #[argh(option)]
    pub mac: Option<String>,
    /// ask with the vendor class (option 60) a phone of this family sends: vvx (default),
    /// trio, ccx, soundpoint, soundstation or lync; servers that hand options by vendor
    /// class answer each family as its phones see it
    #[argh(option)]
    pub family: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
    /// print only what was seen, without findings, and store nothing (used by the admin UI)
    #[argh(switch, hidden_help)]
    pub raw: bool,
    /// port the servers listen on (tests only)
    #[argh(option, default = "67", hidden_help)]
    pub server_port: u16,
    /// port answers come to (tests only)
    #[argh(option, default = "68", hidden_help)]
    pub client_port: u16,
}

/// ask DNS for the records that steer video endpoints and Lync phones
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "dns")]
pub struct DiagDns {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// the phones' DNS domain (default: diagnostics.dns_domain)
    #[argh(option)]
    pub domain: Option<String>,
    /// DNS server as IP or IP:PORT (default: first nameserver of /etc/resolv.conf)
    #[argh(option)]
    pub server: Option<String>,
    /// milliseconds to wait for each answer (default 2000)
    #[argh(option, default = "2000")]
    pub timeout_ms: u64,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// list the provisioning options set by DHCP server configuration files (ISC dhcpd, Kea,
/// dnsmasq, netsh dump)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "dhcp-config")]
pub struct DiagDhcpConfig {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
    /// the DHCP server's configuration files
    #[argh(positional)]
    pub files: Vec<PathBuf>,
}

/// find phones that still send wrong credentials and overrides that redirect phones
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "phones")]
pub struct DiagPhones {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// days of access log to search (default: diagnostics.access_log_days)
    #[argh(option)]
    pub days: Option<u32>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// print DHCP option 66/160 configuration for ISC, Kea, dnsmasq and Windows PowerShell
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "snippets")]
pub struct DiagSnippets {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// host name or IP phones use to reach this server (default: the first of
    /// device.public_names, else this host's name)
    #[argh(option)]
    pub host: Option<String>,
    /// port phones use (default: the port of device.http_listen; 80 is left out)
    #[argh(option)]
    pub port: Option<u16>,
    /// embed the accounts' current device credentials in the URLs
    #[argh(switch)]
    pub with_credentials: bool,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// check Polycom configuration files (given in CONFIG_FILES order, or ordered by a master
/// file among them); exit status 2 when an error is found
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "lint")]
pub struct LintCmd {
    /// configuration file (TOML): secrets are judged by whether device HTTP is on
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
    /// the files
    #[argh(positional)]
    pub files: Vec<PathBuf>,
}

fn context(
    config: &crate::config::Config,
    conn: &rusqlite::Connection,
) -> anyhow::Result<ServerContext> {
    Ok(ServerContext::load(
        conn,
        crate::actions::own_addresses(config),
    )?)
}

type TextFn<'a> = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + 'a>;

fn print(report: &Report, json: bool, text: TextFn<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        text(&mut out)?;
        writeln!(out)?;
        write_findings(&mut out, &report.findings)?;
    }
    Ok(())
}

/// Runs `diagnose ...`: exit status 0 when no finding is above info, 1 with a warning, 2
/// with an error, 3 when the check could not run (scripts and the probe unit alert on it).
pub fn diagnose(action: DiagnoseAction) -> anyhow::Result<ExitCode> {
    match run_check(action) {
        Ok(None) => Ok(ExitCode::SUCCESS),
        Ok(Some(findings)) => Ok(ExitCode::from(exit_status(&findings))),
        Err(err) => {
            eprintln!("zerotouch: {err:#}");
            Ok(ExitCode::from(3))
        }
    }
}

/// 0 / 1 / 2 for the most severe finding: info (or none) / warning / error.
pub fn exit_status(findings: &[crate::diag::Finding]) -> u8 {
    match findings.iter().map(|f| f.severity).min() {
        Some(Severity::Error) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}

/// Runs a check; its findings, or `None` for what has none (snippets, the raw probe).
fn run_check(action: DiagnoseAction) -> anyhow::Result<Option<Vec<crate::diag::Finding>>> {
    let report = match action {
        DiagnoseAction::Dhcp(d) => return dhcp(d),
        DiagnoseAction::Dns(d) => dns(d)?,
        DiagnoseAction::DhcpConfig(d) => {
            let (config, conn, _acc) = super::open(d.config.as_deref())?;
            let ctx = context(&config, &conn)?;
            let report = runs::dhcp_config(&conn, &ctx, &d.files)?;
            let r: ConfReport = serde_json::from_value(report.result.clone())?;
            let findings = report.findings.clone();
            print(
                &report,
                d.json,
                Box::new(move |out| {
                    for (f, dialect) in &r.files {
                        writeln!(out, "read {f} ({})", dialect.as_str())?;
                    }
                    for o in &r.options {
                        writeln!(
                            out,
                            "  {:<28} {:<34} option {:<3} {:<24} {}",
                            o.location(),
                            o.scope,
                            o.code,
                            o.name,
                            mask_url(&o.value)
                        )?;
                    }
                    Ok(())
                }),
            )?;
            findings
        }
        DiagnoseAction::Phones(d) => {
            let (config, conn, _acc) = super::open(d.config.as_deref())?;
            let days = d.days.unwrap_or(config.diagnostics.access_log_days);
            let report = runs::phones(&conn, &config.data_dir, days)?;
            let findings = report.findings.clone();
            print(
                &report,
                d.json,
                Box::new(move |out| {
                    writeln!(
                        out,
                        "access log of the last {days} day(s) and stored overrides"
                    )
                }),
            )?;
            findings
        }
        DiagnoseAction::Snippets(s) => {
            snippets_cmd(s)?;
            return Ok(None);
        }
    };
    Ok(Some(report))
}

fn dns(d: DiagDns) -> anyhow::Result<Vec<crate::diag::Finding>> {
    let (config, conn, _acc) = super::open(d.config.as_deref())?;
    let domain = d
        .domain
        .or_else(|| Some(config.diagnostics.dns_domain.clone()).filter(|s| !s.is_empty()))
        .context("give the phones' DNS domain with --domain (or set diagnostics.dns_domain)")?;
    let server = match &d.server {
        Some(s) => crate::diag::dns::parse_server(s)?,
        None => crate::diag::dns::system_resolver()?,
    };
    let ctx = context(&config, &conn)?;
    let timeout = Duration::from_millis(d.timeout_ms.max(1));
    let report = runs::dns(&conn, &ctx, &domain, server, timeout)?;
    let p: DnsProbe = serde_json::from_value(report.result.clone())?;
    let findings = report.findings.clone();
    print(
        &report,
        d.json,
        Box::new(move |out| {
            writeln!(out, "DNS server {} for {}", p.server, p.domain)?;
            for a in &p.answers {
                let status = match (&a.error, a.records.is_empty()) {
                    (Some(e), _) => format!("no answer: {e}"),
                    (None, true) => a.rcode.clone(),
                    (None, false) => format!(
                        "{} record(s){}",
                        a.records.len(),
                        if a.tcp { " (over TCP)" } else { "" }
                    ),
                };
                writeln!(out, "  {:<5} {:<45} {status}", a.rtype, a.name)?;
                for r in &a.records {
                    writeln!(out, "        {} {} {} {}", r.name, r.ttl, r.rtype, r.data)?;
                }
            }
            let mut shown = std::collections::BTreeSet::new();
            for t in &p.targets {
                if !shown.insert(t.name.to_ascii_lowercase()) {
                    continue;
                }
                let addresses = match p.target_addresses(&t.name) {
                    None => "not resolved (no answer)".to_string(),
                    Some(ips) if ips.is_empty() => "no address".to_string(),
                    Some(ips) => ips.join(", "),
                };
                writeln!(out, "  SRV target {:<38} {addresses}", t.name)?;
            }
            Ok(())
        }),
    )?;
    Ok(findings)
}

fn snippets_cmd(s: DiagSnippets) -> anyhow::Result<()> {
    let (config, conn, _acc) = super::open(s.config.as_deref())?;
    let accounts = crate::db::accounts::list_accounts(&conn)?;
    let host = match s.host {
        Some(h) => h,
        None => {
            let (host, note) = crate::actions::advertised_host(&config);
            if let Some(note) = note {
                eprintln!("zerotouch: {note}");
            }
            host
        }
    };
    let port = s
        .port
        .or_else(|| config.device_http_addr().map(|a| a.port()))
        .filter(|p| *p != 0);
    let list = snippets::snippets(&accounts, &host, port, s.with_credentials);
    let mut out = std::io::stdout().lock();
    if s.json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    for a in &list {
        writeln!(out, "### account {}: {}", a.account, a.url)?;
        if !a.with_credentials {
            writeln!(
                out,
                "# No credentials in the URL: phones need the account's device credentials from \
                 elsewhere. --with-credentials embeds them; DHCP must then be updated after \
                 every credential change."
            )?;
        }
        for (dialect, text) in &a.snippets {
            writeln!(out, "--- {dialect}\n{text}")?;
        }
    }
    Ok(())
}

fn dhcp(d: DiagDhcp) -> anyhow::Result<Option<Vec<crate::diag::Finding>>> {
    let config = super::load_config(d.config.as_deref())?;
    let interface = d
        .interface
        .or_else(|| Some(config.diagnostics.dhcp_interface.clone()).filter(|s| !s.is_empty()))
        .context(
            "give the interface to probe with --interface (or set diagnostics.dhcp_interface)",
        )?;
    let seconds = d.seconds.unwrap_or(config.diagnostics.dhcp_seconds);
    if !(1..=60).contains(&seconds) {
        bail!("--seconds must be 1 to 60");
    }
    let client_mac = match &d.mac {
        Some(m) => Some(crate::diag::dhcp::mac_bytes(m).with_context(|| {
            format!("--mac: `{m}` is not a MAC (12 hex digits, e.g. 0004f2aabbcc)")
        })?),
        None => None,
    };
    let class = match &d.family {
        None => &crate::diag::dhcp::VENDOR_CLASSES[0],
        Some(f) => crate::diag::dhcp::probe_class(f).with_context(|| {
            let known: Vec<&str> = crate::diag::dhcp::VENDOR_CLASSES
                .iter()
                .map(|c| c.family)
                .collect();
            format!("--family: `{f}` is not one of {}", known.join(", "))
        })?,
    };
    let opts = ProbeOptions {
        interface,
        wait: Duration::from_secs(seconds),
        server_port: d.server_port,
        client_port: d.client_port,
        client_mac,
        class,
    };
    if client_mac.is_some() && !d.raw {
        eprintln!(
            "zerotouch: warning: asking with another MAC than this host's; a switch with DHCP \
             snooping may drop these packets"
        );
    }
    if d.raw {
        // For the Diagnostics page, which runs this as its own process and compares the
        // options with the accounts' credentials before it masks and stores them: clear
        // values on a pipe to the server, never printed for people.
        let probe = crate::diag::dhcp::probe(&opts)?;
        serde_json::to_writer(std::io::stdout().lock(), &probe)?;
        return Ok(None);
    }
    let (config, conn, _acc) = super::open(d.config.as_deref())?;
    let ctx = context(&config, &conn)?;
    let report = runs::dhcp(&conn, &ctx, &opts)?;
    let p: DhcpProbe = serde_json::from_value(report.result.clone())?;
    let findings = report.findings.clone();
    print(
        &report,
        d.json,
        Box::new(move |out| {
            match &p.client_mac {
                Some(chaddr) => writeln!(
                    out,
                    "interface {} (MAC {}), asking as {chaddr}: sent {}",
                    p.interface,
                    p.mac,
                    p.sent.join(", ")
                )?,
                None => writeln!(
                    out,
                    "interface {} (MAC {}): sent {}",
                    p.interface,
                    p.mac,
                    p.sent.join(", ")
                )?,
            }
            if !p.vendor_class.is_empty() {
                writeln!(out, "vendor class (option 60): {}", p.vendor_class)?;
            }
            for n in &p.notes {
                writeln!(out, "  note: {n}")?;
            }
            for a in &p.answers {
                writeln!(
                    out,
                    "{} from server {} (via {}), offered {}",
                    a.message_type, a.server, a.source, a.your_ip
                )?;
                for o in &a.options {
                    writeln!(out, "  {:>3} {:<34} {}", o.code, o.name, mask_url(&o.value))?;
                }
            }
            Ok(())
        }),
    )?;
    Ok(Some(findings))
}

/// Runs `lint`.
pub fn lint_cmd(l: LintCmd) -> anyhow::Result<ExitCode> {
    if l.files.is_empty() {
        bail!("name the configuration files to check, in CONFIG_FILES order");
    }
    let transport = match &l.config {
        Some(p) => {
            let config = crate::config::Config::load(p)?;
            if config.device_http_addr().is_some() {
                Transport::PlainHttp
            } else {
                Transport::HttpsOnly
            }
        }
        None => Transport::Unknown,
    };
    let mut files = Vec::new();
    for p in &l.files {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        files.push((p.display().to_string(), bytes));
    }
    let order = lint::order_by_master(&mut files);
    let findings = crate::domain::lint::lint_files(&files, transport, &Default::default());
    let mut out = std::io::stdout().lock();
    if l.json {
        serde_json::to_writer_pretty(&mut out, &findings)?;
        writeln!(out)?;
    } else {
        if let Some(list) = order.filter(|l| !l.is_empty()) {
            writeln!(
                out,
                "CONFIG_FILES order from the master file: {}",
                list.join(", ")
            )?;
        }
        for f in &findings {
            writeln!(out, "{f}")?;
        }
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        writeln!(
            out,
            "{} file(s): {} error(s), {} warning(s), {} info",
            files.len(),
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info)
        )?;
    }
    Ok(if findings.iter().any(|f| f.severity == Severity::Error) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
