//! `zerotouch render <mac>`: the exact files a device receives, or with `--explain` every
//! parameter with its value (secrets masked) and where it comes from — for the host, scheme
//! and credential a request would carry, through the same loader and renderer as the device
//! endpoint (`actions::render`), so what it prints is what the phone is served.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use argh::FromArgs;

use super::{open, print_json};
use crate::actions::provisioning::mask;
use crate::config::Config;
use crate::db::{self, devices};
use crate::domain::mac::Mac;
use crate::domain::provstate::Reach;

/// print the files a device would receive
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "render")]
pub struct Render {
    /// configuration file (TOML)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// MAC address
    #[argh(positional)]
    pub mac: String,
    /// the account the device must be in (its slug; default: whichever it is in)
    #[argh(option)]
    pub account: Option<String>,
    /// host (and port) the phone uses to reach the server, as in its Host header (default:
    /// the first of device.public_names, else the device HTTP listener's address)
    #[argh(option)]
    pub host: Option<String>,
    /// as a request over HTTPS
    #[argh(switch)]
    pub https: bool,
    /// whose credential the request carries: `device` (its own, what the phone gets;
    /// default) or `account` (the account credential, what option 160 gives anyone)
    #[argh(option, default = "String::from(\"device\")")]
    pub r#as: String,
    /// only this file (e.g. 0004f2aabbcc-device.cfg)
    #[argh(option)]
    pub file: Option<String>,
    /// list every parameter the device gets with its value (secrets masked) and source
    #[argh(switch)]
    pub explain: bool,
    /// with --explain: print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn render(r: Render) -> anyhow::Result<()> {
    let (config, conn, _default) = open(r.config.as_deref())?;
    let mac: Mac = r.mac.parse()?;
    if r.account.is_some() {
        super::devices::account_of(&conn, &mac, r.account.as_deref())?;
    }
    let device =
        devices::find_device_by_mac(&conn, &mac)?.with_context(|| format!("no device {mac}"))?;
    let acc =
        db::accounts::find_by_id(&conn, crate::domain::account::AccountId(device.account_id))?
            .with_context(|| format!("the account of {mac} is gone"))?;
    let trust = crate::tls::phone_trust(&config, None);
    let credential = match r.r#as.as_str() {
        "device" => crate::actions::render::As::Device,
        "account" => crate::actions::render::As::Account,
        other => bail!("--as: `{other}` is not device or account"),
    };
    let reach = Reach {
        host: r
            .host
            .clone()
            .unwrap_or_else(|| default_host(&config, r.https)),
        base_path: if acc.is_default {
            "/".into()
        } else {
            acc.service_path()
        },
        secure: r.https,
    };
    eprintln!(
        "# as served to a request for {}://{}{} with the {} credential",
        if r.https { "https" } else { "http" },
        reach.host,
        reach.base_path,
        r.r#as
    );
    if r.explain {
        let mut params = crate::actions::render::explain_device(
            &conn,
            &mac,
            &reach,
            credential,
            trust.as_ref(),
        )?;
        for p in &mut params {
            p.value = if p.value.contains("BEGIN CERTIFICATE") {
                format!("(CA certificate, {} bytes)", p.value.len())
            } else {
                mask(&p.name, &p.value)
            };
        }
        if r.json {
            return print_json(&params);
        }
        println!("{:<40} {:<30} SOURCE", "PARAMETER", "VALUE");
        for p in params {
            let source = if p.detail.is_empty() {
                p.source.label().to_string()
            } else {
                format!("{} ({})", p.source.label(), p.detail)
            };
            println!("{:<40} {:<30} {source}", p.name, p.value);
        }
        return Ok(());
    }
    let files =
        crate::actions::render::render_device(&conn, &mac, &reach, credential, trust.as_ref())?;
    let mut out = std::io::stdout().lock();
    let mut found = false;
    for (name, bytes) in files {
        if r.file.as_deref().is_some_and(|f| f != name) {
            continue;
        }
        found = true;
        if r.file.is_none() {
            writeln!(out, "==> {name} <==")?;
        }
        out.write_all(&bytes)?;
        if r.file.is_none() && !bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
    }
    if !found {
        bail!(
            "device {mac} receives no file named `{}`",
            r.file.unwrap_or_default()
        );
    }
    Ok(())
}

/// The host (and port) phones are expected to use: the first public name, else the device
/// listener's address (this host's name when it listens on every address).
fn default_host(config: &Config, https: bool) -> String {
    let addr = if https {
        config.device_https_addr()
    } else {
        config.device_http_addr()
    };
    let port = addr.map_or(if https { 443 } else { 80 }, |a| a.port());
    let host = match (config.device.public_names.first(), addr) {
        (Some(name), _) => name.clone(),
        (None, Some(a)) if !a.ip().is_unspecified() => match a.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into()),
    };
    if port == if https { 443 } else { 80 } {
        host
    } else {
        format!("{host}:{port}")
    }
}
