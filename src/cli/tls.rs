//! `zerotouch tls show|status`: what the HTTPS listeners serve, and where the phones stand.
//!
//! `show` reads the certificate files only (it never generates or renews: that is the
//! server's job) and prints, for the served chain, the local CA and the client CA bundle,
//! each certificate's subject, issuer, SANs, validity, key and SHA-256 fingerprint.
//! `status` counts associated devices by how they have reached the server, lists those
//! only seen over plain HTTP (the ones `device.http_mode = "no-secrets"` or turning HTTP
//! off would strand), and how many hold the local CA.

use std::path::Path;

use argh::FromArgs;

use crate::config::{ClientAuth, Config};
use crate::domain::polycom::{models::Family, params};
use crate::tls::{self, generate, inspect};

/// HTTPS certificates and the devices' move to HTTPS
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "tls")]
pub struct TlsCmd {
    #[argh(subcommand)]
    pub action: TlsAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TlsAction {
    Show(TlsShow),
    Status(TlsStatus),
}

/// print subjects, SANs, expiry and SHA-256 fingerprints of the certificates in use
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct TlsShow {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<std::path::PathBuf>,
}

/// count devices by transport and list those only seen over plain HTTP
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct TlsStatus {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<std::path::PathBuf>,
}

pub fn run(cmd: TlsCmd) -> anyhow::Result<()> {
    match cmd.action {
        TlsAction::Show(s) => show(&super::load_installed(s.config.as_deref())?),
        TlsAction::Status(s) => status(s.config.as_deref()),
    }
}

fn print_file(title: &str, path: &Path) -> anyhow::Result<()> {
    println!("{title}: {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("  (missing; `zerotouch serve` generates it on first start)\n");
            return Ok(());
        }
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    };
    let certs = tls::pem_certs(&text);
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate found", path.display());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for (i, der) in certs.iter().enumerate() {
        let c = inspect::info(der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("  [{}] subject:  {}", i + 1, c.subject);
        println!("      issuer:   {}", c.issuer);
        if !c.sans.is_empty() {
            println!("      SANs:     {}", c.sans.join(", "));
        }
        let left = c.days_left(now);
        let state = if left < 0 {
            format!("EXPIRED {} days ago", -left)
        } else {
            format!("{left} days left")
        };
        println!(
            "      valid:    {} to {} ({state})",
            crate::domain::time::format_time(c.not_before),
            crate::domain::time::format_time(c.not_after)
        );
        println!(
            "      key:      {}{}",
            c.key,
            if c.is_ca { ", CA" } else { "" }
        );
        println!("      SHA-256:  {}", c.sha256);
    }
    println!();
    Ok(())
}

fn show(config: &Config) -> anyhow::Result<()> {
    let (cert, _) = tls::served_files(config);
    let kind = if config.tls_generated() {
        "served certificate (generated from the local CA)"
    } else {
        "served certificate (tls.cert_file)"
    };
    print_file(kind, &cert)?;
    let ca = generate::Paths::under(&config.tls_dir()).ca_cert;
    if config.tls_generated() || ca.exists() {
        print_file("local CA (what phones are given)", &ca)?;
    }
    if config.tls.client_auth != ClientAuth::Off {
        print_file(
            "client CA bundle (tls.client_ca_file)",
            &config.tls.client_ca_file,
        )?;
    }
    Ok(())
}

fn status(config: Option<&Path>) -> anyhow::Result<()> {
    let (config, conn, _account) = super::open(config)?;
    let count = |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let associated = count("SELECT count(*) FROM devices WHERE profile_id IS NOT NULL")?;
    let seen = count(
        "SELECT count(*) FROM devices d JOIN device_activity a ON a.device_id = d.id \
         WHERE d.profile_id IS NOT NULL",
    )?;
    let http_only = crate::db::devices::count_http_only_devices(&conn)?;
    println!("associated devices:            {associated}");
    println!("  never seen:                  {}", associated - seen);
    println!("  seen over HTTPS:             {}", seen - http_only);
    println!("  only seen over plain HTTP:   {http_only}");
    if let Some(pem) = tls::local_ca_pem(&config) {
        let name = params::name(Family::Vvx, params::Key::PlatformCaCert, 1).unwrap_or_default();
        let holding: i64 = conn.query_row(
            "SELECT count(*) FROM device_prov_state WHERE param = ?1 AND confirmed = ?2",
            rusqlite::params![name, pem],
            |r| r.get(0),
        )?;
        println!(
            "  confirmed to trust local CA: {holding}{}",
            if config.tls.deliver_ca_to_phones {
                ""
            } else {
                " (delivery is off: tls.deliver_ca_to_phones)"
            }
        );
    }
    let list = crate::db::devices::list_http_only_devices(&conn, 200)?;
    if !list.is_empty() {
        println!(
            "\nonly seen over plain HTTP (stranded by http_mode = \"no-secrets\" or HTTP off):"
        );
        for (mac, last) in &list {
            println!(
                "  {mac}  last seen {}",
                crate::domain::time::format_time(*last)
            );
        }
        if (list.len() as i64) < http_only {
            println!("  … and {} more", http_only - list.len() as i64);
        }
    }
    Ok(())
}
