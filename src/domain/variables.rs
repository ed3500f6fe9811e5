//! The values of the template variables for one device, each with its source: the
//! provisioning settings, the account, the device and its lines, the documented defaults
//! (docs/design.md §9, after the PBX settings page), and the custom variables.
//!
//! The defaults, in one place:
//! - management server = `server_address`, else the host phones use (without its port);
//! - `REG_SERVER` = the device's SIP-server vendor extension, else `registrar`, else the
//!   management server; `SERVER` is its legacy alias;
//! - `PROXY_SERVER` = the device's outbound-proxy extension, else `sip_proxy`, else
//!   `REG_SERVER`; `PROXY_SERVER_BACKUP` = `sip_proxy_backup`, else `REG_SERVER_BACKUP`;
//! - `NTP_SERVER` = `ntp_server`, else the management server;
//! - `PROV_SERVER` = the host phones use (Local) or `external_server` (External);
//!   `PROV_PATH` = the account's base path (Local) or `external_path/<model segment>/`;
//! - `FIRMWARE_SERVER` = `external_firmware_server` (External), else `PROV_SERVER`;
//!   `FIRMWARE_PATH` = the provisioning base path + `firmware/<version>/` (the base without
//!   the model segment: firmware is shared by every model of a family);
//! - `PROTO` = `default_protocol` (`auto`: the scheme the phone used) or `external_protocol`;
//!   `PROV_USER`/`PROV_PASSWORD` = the DMS credentials (External), the FTP credentials for
//!   ftp/ftps, else the HTTP credentials, which default to the account's device credentials;
//! - per line: `EXTENSION` = the SIP user ID when not set, `DISPLAY_NAME` = first and last
//!   name when not set; outside a line block the per-line variables are line 1's.

use std::collections::BTreeMap;

use super::account::Account;
use super::device::{Device, Line};
use super::polycom::models::Family;
use super::profile::Profile;
use super::provstate::Reach;
use super::settings::{Mode, ProvSettings};
use super::template::Vars;

/// The UC Software image name in a release (what `${FIRMWARE}` names) *(verify for
/// Poly OS devices)*.
pub const FIRMWARE_IMAGE: &str = "sip.ld";
/// Directory of firmware under a provisioning base path.
pub const FIRMWARE_DIR: &str = "firmware";

/// What is common to every device: settings and custom variables.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub settings: ProvSettings,
    pub custom: BTreeMap<String, String>,
    /// The port of this server's TFTP listener (`tftp.listen`), when it is on: what
    /// `PROV_SERVER` names for protocol `tftp` (no port for 69).
    pub tftp_port: Option<u16>,
    /// The port of this server's FTP listener (`ftp.listen`), when it is on: what
    /// `PROV_SERVER` names for protocols `ftp` and `ftps` (no port for 21).
    pub ftp_port: Option<u16>,
}

/// TFTP's standard port, left out of server addresses.
pub const TFTP_PORT: u16 = 69;

/// The provisioning server for protocol `tftp` in local mode: the host phones use without
/// its HTTP port, and the TFTP listener's port unless it is 69.
fn tftp_server(host: &str, port: Option<u16>) -> String {
    on_port(host, port, TFTP_PORT)
}

/// FTP's standard port, left out of server addresses.
pub const FTP_PORT: u16 = 21;

/// `host` on the port of a listener whose standard port is `standard` (left out).
fn on_port(host: &str, port: Option<u16>, standard: u16) -> String {
    let bare = strip_port(host);
    match port {
        Some(p) if p != standard => format!("{bare}:{p}"),
        _ => bare.to_string(),
    }
}

/// The device a set of variables is for.
pub struct Subject<'a> {
    pub account: &'a Account,
    pub device: &'a Device,
    pub profile: &'a Profile,
    /// How the phone reaches the provisioning server (Local: the request; External: the
    /// DMS, see `external_reach`).
    pub reach: &'a Reach,
    /// The model the device reported in its User-Agent (e.g. `VVX_500`), or empty.
    pub model: &'a str,
}

/// The variables of one device: outside line blocks, and per line.
#[derive(Debug, Clone, Default)]
pub struct DeviceVarSet {
    pub device: Vars,
    pub lines: Vec<(u32, Vars)>,
}

/// The host of a `host[:port]` (brackets of an IPv6 literal kept).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map(|end| &host[..=end]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The per-model path segment of External mode: the reported model, else the vendor
/// model, reduced to letters, digits, `.`, `_` and `-` (others become `_`), at most 64
/// characters, never `.` or `..`.
pub fn model_segment(model: &str, vendor_model: &str) -> String {
    let source = if model.trim().is_empty() {
        vendor_model
    } else {
        model
    };
    let mut s: String = source
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = "unknown".into();
    }
    s
}

/// How phones reach the DMS in External mode, for the renderers: host, the provisioning
/// path with the model segment, and the scheme.
pub fn external_reach(settings: &ProvSettings, segment: &str) -> Reach {
    Reach {
        host: settings.external_server.clone(),
        base_path: format!("{}{segment}/", external_base(settings)),
        secure: settings.external_protocol == "https",
    }
}

/// `external_path` with one trailing `/`.
fn external_base(settings: &ProvSettings) -> String {
    format!("{}/", settings.external_path.trim_end_matches('/'))
}

/// Userinfo of a URL: percent-encoded so `@`, `:` and `/` in credentials stay inside it.
fn userinfo(user: &str, password: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    if user.is_empty() {
        return String::new();
    }
    let mut out = utf8_percent_encode(user, SET).to_string();
    if !password.is_empty() {
        out.push(':');
        out.push_str(&utf8_percent_encode(password, SET).to_string());
    }
    out.push('@');
    out
}

/// The software version that applies to a device: its family's, else the only one the
/// profile names.
fn firmware_version<'a>(profile: &'a Profile, model: &str) -> Option<&'a String> {
    let software = &profile.fields.software;
    Family::of_model(model)
        .and_then(|f| software.get(&f))
        .or_else(|| {
            if software.len() == 1 {
                software.values().next()
            } else {
                None
            }
        })
}

/// Computes every variable of a device.
pub fn for_device(ctx: &Context, s: &Subject<'_>) -> DeviceVarSet {
    let st = &ctx.settings;
    let external = st.mode == Mode::External;
    let mut v = Vars::default();
    for (name, value) in &ctx.custom {
        v.set_custom(name.clone(), value.clone());
    }
    set_servers(&mut v, st, s);
    let prov = set_provisioning(&mut v, st, s, external, (ctx.tftp_port, ctx.ftp_port));
    set_credentials(&mut v, st, s.account, external, &prov);
    set_firmware(&mut v, st, s, external, prov);
    set_device(&mut v, s);

    // Lines: line 1 outside blocks (LABEL stays the device's there).
    let line1 = s.device.lines.iter().find(|l| l.line == 1);
    let empty = Line {
        line: 1,
        ..Default::default()
    };
    set_line(&mut v, line1.unwrap_or(&empty), false);
    let lines = s
        .device
        .lines
        .iter()
        .map(|l| {
            let mut lv = v.clone();
            set_line(&mut lv, l, true);
            (l.line, lv)
        })
        .collect();
    DeviceVarSet { device: v, lines }
}

/// Where phones fetch their files, as `set_provisioning` worked it out.
struct Provisioning {
    /// `PROTO`.
    proto: String,
    /// `PROV_SERVER`.
    server: String,
    /// `PROV_PATH`.
    path: String,
    /// The provisioning base path without the model segment (firmware is shared by every
    /// model of a family).
    base: String,
}

/// The management server, the SIP servers and the NTP server.
fn set_servers(v: &mut Vars, st: &ProvSettings, s: &Subject<'_>) {
    let d = s.device;
    // The management server.
    let (mgmt, mgmt_src) = if !st.server_address.is_empty() {
        (st.server_address.clone(), "settings.server_address")
    } else {
        (
            strip_port(&s.reach.host).to_string(),
            "the host phones use; no server_address",
        )
    };

    // SIP and infrastructure servers.
    let (reg, reg_src) = if !d.ext.sip_server.is_empty() {
        (
            d.ext.sip_server.clone(),
            "device vendor extension sip_server".to_string(),
        )
    } else if !st.registrar.is_empty() {
        (st.registrar.clone(), "settings.registrar".to_string())
    } else {
        (
            mgmt.clone(),
            format!("default: management server ({mgmt_src})"),
        )
    };
    v.set_from("REG_SERVER", reg.clone(), reg_src);
    v.set_from("SERVER", reg.clone(), "= REG_SERVER (legacy alias)");
    let (reg_backup, reg_backup_src) = if st.registrar_backup.is_empty() {
        (String::new(), "default: empty")
    } else {
        (st.registrar_backup.clone(), "settings.registrar_backup")
    };
    v.set_from("REG_SERVER_BACKUP", reg_backup.clone(), reg_backup_src);
    if !d.ext.outbound_proxy.is_empty() {
        v.set_from(
            "PROXY_SERVER",
            d.ext.outbound_proxy.clone(),
            "device vendor extension outbound_proxy",
        );
    } else if !st.sip_proxy.is_empty() {
        v.set_from("PROXY_SERVER", st.sip_proxy.clone(), "settings.sip_proxy");
    } else {
        v.set_from("PROXY_SERVER", reg, "default: = REG_SERVER");
    }
    if st.sip_proxy_backup.is_empty() {
        v.set_from(
            "PROXY_SERVER_BACKUP",
            reg_backup,
            "default: = REG_SERVER_BACKUP",
        );
    } else {
        v.set_from(
            "PROXY_SERVER_BACKUP",
            st.sip_proxy_backup.clone(),
            "settings.sip_proxy_backup",
        );
    }
    if st.ntp_server.is_empty() {
        v.set_from(
            "NTP_SERVER",
            mgmt,
            format!("default: management server ({mgmt_src})"),
        );
    } else {
        v.set_from("NTP_SERVER", st.ntp_server.clone(), "settings.ntp_server");
    }
}

/// The protocol, the provisioning server and its path (with External mode's model
/// segment).
fn set_provisioning(
    v: &mut Vars,
    st: &ProvSettings,
    s: &Subject<'_>,
    external: bool,
    (tftp_port, ftp_port): (Option<u16>, Option<u16>),
) -> Provisioning {
    let d = s.device;
    let (proto, proto_src) = if external {
        (st.external_protocol.clone(), "settings.external_protocol")
    } else if st.default_protocol == "auto" {
        (
            if s.reach.secure { "https" } else { "http" }.to_string(),
            "default: the scheme the phone used (default_protocol auto)",
        )
    } else {
        (st.default_protocol.clone(), "settings.default_protocol")
    };
    v.set_from("PROTO", proto.clone(), proto_src);
    let segment = if external {
        model_segment(s.model, &d.vendor_model)
    } else {
        String::new()
    };
    let (server, path, base) = if external {
        v.set_from(
            "PROV_SERVER",
            st.external_server.clone(),
            "settings.external_server",
        );
        v.set_from(
            "PROV_MODEL_SEGMENT",
            segment.clone(),
            if s.model.trim().is_empty() {
                "the device's vendor model (no model reported yet), sanitised"
            } else {
                "the model the device reported, sanitised"
            },
        );
        let base = external_base(st);
        let path = format!("{base}{segment}/");
        v.set_from(
            "PROV_PATH",
            path.clone(),
            "settings.external_path + PROV_MODEL_SEGMENT",
        );
        (st.external_server.clone(), path, base)
    } else {
        let host = if proto == "tftp" {
            v.set_from(
                "PROV_SERVER",
                tftp_server(&s.reach.host, tftp_port),
                "the host phones use, on the TFTP listener's port (local mode, protocol tftp)",
            );
            tftp_server(&s.reach.host, tftp_port)
        } else if matches!(proto.as_str(), "ftp" | "ftps") {
            let host = on_port(&s.reach.host, ftp_port, FTP_PORT);
            v.set_from(
                "PROV_SERVER",
                host.clone(),
                "the host phones use, on the FTP listener's port (local mode, protocol ftp/ftps)",
            );
            host
        } else {
            v.set_from(
                "PROV_SERVER",
                s.reach.host.clone(),
                "the host phones use (local mode)",
            );
            s.reach.host.clone()
        };
        v.set_from("PROV_MODEL_SEGMENT", "", "local mode: empty");
        v.set_from(
            "PROV_PATH",
            s.reach.base_path.clone(),
            "the account's base path (local mode)",
        );
        (host, s.reach.base_path.clone(), s.reach.base_path.clone())
    };
    Provisioning {
        proto,
        server,
        path,
        base,
    }
}

/// The HTTP and FTP credentials, the provisioning credentials that the protocol picks
/// from them, and the URL that carries them.
fn set_credentials(
    v: &mut Vars,
    st: &ProvSettings,
    account: &Account,
    external: bool,
    prov: &Provisioning,
) {
    let proto = &prov.proto;
    let (http_user, http_password, http_src) = if !st.http_user.is_empty() {
        (
            st.http_user.clone(),
            st.http_password.clone(),
            "settings.http_user / http_password",
        )
    } else {
        (
            account.device_user.clone().unwrap_or_default(),
            account.device_password.clone().unwrap_or_default(),
            "default: the account's device credentials",
        )
    };
    v.set_from("HTTP_USER", http_user.clone(), http_src);
    v.set_from("HTTP_PASSWORD", http_password.clone(), http_src);
    v.set_from("FTP_USER", st.ftp_user.clone(), "settings.ftp_user");
    v.set_from(
        "FTP_PASSWORD",
        st.ftp_password.clone(),
        "settings.ftp_password",
    );
    let (prov_user, prov_password, prov_src) = if external {
        (
            st.external_user.clone(),
            st.external_password.clone(),
            "settings.external_user / external_password (external mode)".to_string(),
        )
    } else if matches!(proto.as_str(), "ftp" | "ftps") {
        (
            st.ftp_user.clone(),
            st.ftp_password.clone(),
            format!("= FTP_USER / FTP_PASSWORD (protocol {proto})"),
        )
    } else {
        (
            http_user,
            http_password,
            format!("= HTTP_USER / HTTP_PASSWORD (protocol {proto})"),
        )
    };
    if proto == "tftp" {
        // TFTP has no credentials: none goes into its URL.
        v.set_from(
            "PROTO_URL",
            format!("tftp://{}{}", prov.server, prov.path),
            "PROTO :// PROV_SERVER PROV_PATH (tftp: no credentials)",
        );
    } else {
        v.set_from(
            "PROTO_URL",
            format!(
                "{proto}://{}{}{}",
                userinfo(&prov_user, &prov_password),
                prov.server,
                prov.path
            ),
            "PROTO :// PROV_USER:PROV_PASSWORD @ PROV_SERVER PROV_PATH",
        );
    }
    v.set_from("PROV_USER", prov_user, prov_src.clone());
    v.set_from("PROV_PASSWORD", prov_password, prov_src);
}

/// The firmware server, path, image and URL of the profile's software version.
fn set_firmware(
    v: &mut Vars,
    st: &ProvSettings,
    s: &Subject<'_>,
    external: bool,
    prov: Provisioning,
) {
    let Provisioning {
        proto,
        server: prov_server,
        base,
        ..
    } = prov;
    let firmware_server = if external && !st.external_firmware_server.is_empty() {
        v.set_from(
            "FIRMWARE_SERVER",
            st.external_firmware_server.clone(),
            "settings.external_firmware_server",
        );
        st.external_firmware_server.clone()
    } else {
        v.set_from(
            "FIRMWARE_SERVER",
            prov_server.clone(),
            "default: = PROV_SERVER",
        );
        prov_server
    };
    let version = firmware_version(s.profile, s.model);
    let firmware_path = match version {
        Some(ver) => format!("{base}{FIRMWARE_DIR}/{ver}/"),
        None => format!("{base}{FIRMWARE_DIR}/"),
    };
    let path_src = match version {
        Some(_) => "provisioning base path + firmware/<the profile's software version>/",
        None => "provisioning base path + firmware/ (the profile names no version for this model)",
    };
    v.set_from("FIRMWARE_PATH", firmware_path.clone(), path_src);
    match version {
        Some(_) => {
            v.set_from(
                "FIRMWARE",
                FIRMWARE_IMAGE,
                "the UC Software image of the profile's software version",
            );
            v.set_from(
                "FIRMWARE_URL",
                format!("{proto}://{firmware_server}{firmware_path}{FIRMWARE_IMAGE}"),
                "PROTO :// FIRMWARE_SERVER FIRMWARE_PATH FIRMWARE",
            );
        }
        None => {
            v.set_from("FIRMWARE", "", "the profile names no software version");
            v.set_from("FIRMWARE_URL", "", "the profile names no software version");
        }
    }
}

/// The device's own variables: MAC, account, label, time zone, park extension, override.
fn set_device(v: &mut Vars, s: &Subject<'_>) {
    let d = s.device;
    v.set_from("MAC", d.mac.upper(), "device MAC, upper case");
    v.set_from("mac", d.mac.to_string(), "device MAC, lower case");
    v.set_from("TENANT", s.account.name.clone(), "account name");
    v.set_from("TENANT_ID", s.account.id.0.to_string(), "account id");
    let dv = &d.vars;
    v.set_from("LABEL", dv.label.clone(), "device label");
    v.set_from("TL_TIMEZONE", dv.tl_timezone.clone(), "device time zone");
    v.set_from(
        "TL_TIMEZONE_NAME",
        dv.tl_timezone_name.clone(),
        "device time zone name",
    );
    v.set_from(
        "DEFAULT_PARKEXT",
        dv.default_parkext.clone(),
        "device park extension",
    );
    v.set_from(
        "OVERRIDE",
        dv.override_attrs.clone(),
        "device override (inserted as written)",
    );
}

/// Sets the per-line variables of `l`; `in_block` also sets `LABEL` to the line label.
fn set_line(v: &mut Vars, l: &Line, in_block: bool) {
    let n = l.line;
    let src = |field: &str| format!("device line {n} {field}");
    v.set_from("LINE", n.to_string(), format!("device line {n}"));
    v.set_from(
        "LINE_ZERO_BASED",
        n.saturating_sub(1).to_string(),
        format!("device line {n}, counted from 0"),
    );
    v.set_from("USERID", l.auth_user_id.clone(), src("SIP user ID"));
    v.set_from("PASSWORD", l.auth_password.clone(), src("SIP password"));
    if l.extension.is_empty() {
        v.set_from(
            "EXTENSION",
            l.auth_user_id.clone(),
            format!("default: = USERID (line {n} has no extension)"),
        );
    } else {
        v.set_from("EXTENSION", l.extension.clone(), src("extension"));
    }
    v.set_from("FIRST_NAME", l.first_name.clone(), src("first name"));
    v.set_from("LAST_NAME", l.last_name.clone(), src("last name"));
    if l.display_name.is_empty() {
        let name = format!("{} {}", l.first_name, l.last_name)
            .trim()
            .to_string();
        v.set_from(
            "DISPLAY_NAME",
            name,
            format!("default: FIRST_NAME LAST_NAME (line {n} has no display name)"),
        );
    } else {
        v.set_from("DISPLAY_NAME", l.display_name.clone(), src("display name"));
    }
    v.set_from("LINE_LABEL", l.label.clone(), src("label"));
    if in_block {
        v.set_from("LABEL", l.label.clone(), src("label (inside a line block)"));
    }
}

#[cfg(test)]
mod tests;
