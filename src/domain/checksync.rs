//! The pure rules of "apply now" (SIP `NOTIFY` with `Event: check-sync`): where a device
//! may be sent it, which phones it restarts, and the waves that keep a site's restarts
//! to a share of its phones. No database, no clock, no sockets: `actions::sip` gathers the
//! facts and sends.
//!
//! Where: only the source address of the device's latest request that proved it is the
//! device (its own credential or a verified client certificate for its MAC), else an
//! admin's fallback address, and only inside the configured device networks — never an
//! address learned from a request with the account credential or none (docs/security.md).
//! The port is the device's effective `voIpProt.SIP.local.port` (default 5060).
//!
//! Restarts: a Polycom phone re-reads its configuration on check-sync and restarts only
//! when the new configuration or software needs it, unless
//! `voIpProt.SIP.specialEvent.checkSync.alwaysReboot=1` (Asterisk users' notes: "0 will
//! only reboot if the files on the settings server have changed", sip-notify's Polycom
//! template; no Poly primary source for it was found, so it is treated as the default).
//! `device.*` changes need a restart, and so does new software.
//!
//! Through the PBX: with `sip.pbx_command` set, a device zerotouch cannot send to (or every
//! device, `sip.pbx_for = "all"`) is reached by running that command per device — the
//! site's PBX then sends check-sync to the phone's registration (`through_pbx`). A device
//! with no SIP line has no registration: never. The command gets the MAC and the line's
//! SIP user, never a password.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::ipnet::{IpNet, any_contains};

/// Poly's default SIP port (`voIpProt.SIP.local.port`).
pub const DEFAULT_SIP_PORT: u16 = 5060;

/// The realm a Poly phone challenges in when `voIpProt.SIP.requestValidation.digest.realm`
/// is not set (Polycom SoundPoint IP Administrator's Guide, Request Validation).
pub const DEFAULT_VALIDATION_REALM: &str = "PolycomSPIP";

/// Parameters read from the device's effective configuration.
pub const PORT_PARAM: &str = "voIpProt.SIP.local.port";
pub const ALWAYS_REBOOT_PARAM: &str = "voIpProt.SIP.specialEvent.checkSync.alwaysReboot";
pub const REALM_PARAM: &str = "voIpProt.SIP.requestValidation.digest.realm";

/// Request validation as rendered for an account with `Account::sip.validation` on: the
/// phone accepts a `NOTIFY` with `Event: check-sync` only after a Digest challenge answered
/// with its line's credentials (Polycom SoundPoint IP Administrator's Guide, Request
/// Validation: `voIpProt.SIP.requestValidation.N.request` and `.method`). The per-event
/// name `voIpProt.SIP.requestValidation.1.request.1.event` is *(verify)*: no primary
/// source for it was found; without it a phone validates every `NOTIFY`.
pub const VALIDATION_PARAMS: [(&str, &str); 3] = [
    ("voIpProt.SIP.requestValidation.1.request", "NOTIFY"),
    (
        "voIpProt.SIP.requestValidation.1.request.1.event",
        "check-sync",
    ),
    ("voIpProt.SIP.requestValidation.1.method", "digest"),
];

/// Why a device is not sent check-sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// No request of the device proved it is the device, and no admin address is set.
    NoProvenAddress,
    /// The address lies outside `sip.networks`.
    OutsideNetworks(IpAddr),
    /// The device's configuration has no SIP line (`reg.1.address`).
    NoLine,
    /// Its effective port or transport is not one we can send to.
    Transport(String),
}

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotSent::NoProvenAddress => f.write_str("no proven address"),
            NotSent::OutsideNetworks(ip) => {
                write!(
                    f,
                    "{ip} is outside the configured device networks (sip.networks)"
                )
            }
            NotSent::NoLine => f.write_str("no SIP line (reg.1.address)"),
            NotSent::Transport(why) => f.write_str(why),
        }
    }
}

/// Which devices apply-now reaches through the PBX command (`sip.pbx_command`) instead of
/// sending check-sync itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PbxFor {
    /// Those zerotouch cannot send to: no proven address, an address outside the device
    /// networks, a line transport it does not speak.
    #[default]
    Unreachable,
    /// Every device (the site's PBX authenticates check-sync, or phones accept it only from
    /// their registrar).
    All,
}

impl PbxFor {
    pub fn as_str(self) -> &'static str {
        match self {
            PbxFor::Unreachable => "unreachable",
            PbxFor::All => "all",
        }
    }
}

/// Whether a device whose own target is `target` goes through the PBX command (when one is
/// configured). A device with no SIP line has no registration the PBX could reach: never.
pub fn through_pbx<T>(pbx_for: PbxFor, target: &Result<T, NotSent>) -> bool {
    match target {
        Err(NotSent::NoLine) => false,
        Err(_) => true,
        Ok(_) => pbx_for == PbxFor::All,
    }
}

/// Which address a target came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The device's latest proven request.
    Proven,
    /// The admin's fallback (no proven address known).
    Override,
}

/// What is known of where a device listens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub proven_ip: Option<IpAddr>,
    pub override_ip: Option<IpAddr>,
    pub override_port: Option<u16>,
}

/// Where to send: the proven address, else the admin's; on `port` (the admin's port wins
/// for the admin's address); only inside `networks`.
pub fn target(
    known: &Known,
    port: u16,
    networks: &[IpNet],
) -> Result<(SocketAddr, Origin), NotSent> {
    let (ip, port, origin) = match (known.proven_ip, known.override_ip) {
        (Some(ip), _) => (ip, port, Origin::Proven),
        (None, Some(ip)) => (ip, known.override_port.unwrap_or(port), Origin::Override),
        (None, None) => return Err(NotSent::NoProvenAddress),
    };
    if !any_contains(networks, ip) || ip.is_unspecified() || ip.is_multicast() {
        return Err(NotSent::OutsideNetworks(ip));
    }
    Ok((SocketAddr::new(ip, port), origin))
}

/// The SIP port from the effective `voIpProt.SIP.local.port` (absent, empty or 0: 5060).
pub fn sip_port(value: Option<&str>) -> Result<u16, NotSent> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_SIP_PORT),
        Some(v) => match v.parse::<u16>() {
            Ok(0) => Ok(DEFAULT_SIP_PORT),
            Ok(p) => Ok(p),
            Err(_) => Err(NotSent::Transport(format!(
                "{PORT_PARAM} `{v}` is not a port"
            ))),
        },
    }
}

/// Whether the line transport lets the phone receive SIP over UDP (`reg.1.server.1.transport`
/// or `voIpProt.server.1.transport`: `DNSnaptr`, `TCPpreferred`, `UDPOnly`, `TLS`, `TCPOnly`).
pub fn udp_transport(value: Option<&str>) -> Result<(), NotSent> {
    match value.map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("TLS") || t.eq_ignore_ascii_case("TCPOnly") => Err(
            NotSent::Transport(format!("line transport {t}: only UDP is sent to yet")),
        ),
        _ => Ok(()),
    }
}

/// The user part of a line address (`1001@pbx.example.com` → `1001`), if any.
pub fn line_user(address: &str) -> Option<String> {
    let a = address.trim();
    let a = a.strip_prefix("sip:").unwrap_or(a);
    let user = a.split('@').next().unwrap_or("").trim();
    (!user.is_empty()).then(|| user.to_string())
}

/// Why a check-sync restarts the phone: its pending `device.*` values, new software, or
/// `alwaysReboot`. Empty: it only re-reads its configuration.
pub fn restart_reasons(
    pending_device: &[String],
    new_software: Option<&str>,
    always_reboot: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if !pending_device.is_empty() {
        out.push(format!("pending {}", pending_device.join(", ")));
    }
    if let Some(v) = new_software {
        out.push(format!("new software {v}"));
    }
    if always_reboot.map(str::trim) == Some("1") {
        out.push(format!("{ALWAYS_REBOOT_PARAM}=1"));
    }
    out
}

/// The wave of each device, in order: phones that only re-read go in wave 0; phones that
/// restart go at most `share_percent` of their site's associated phones (`site_sizes`; at
/// least one) per wave. `None` as a site is the account's phones without a site.
pub fn waves(
    devices: &[(Option<i64>, bool)],
    site_sizes: &HashMap<Option<i64>, usize>,
    share_percent: u32,
) -> Vec<usize> {
    let mut restarting: HashMap<Option<i64>, usize> = HashMap::new();
    devices
        .iter()
        .map(|(site, restarts)| {
            if !restarts {
                return 0;
            }
            let size = site_sizes.get(site).copied().unwrap_or(1);
            let cap = (size * share_percent as usize / 100).max(1);
            let k = restarting.entry(*site).or_default();
            let wave = *k / cap;
            *k += 1;
            wave
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pbx_reaches_whom_zerotouch_cannot_and_never_a_device_without_a_line() {
        let ok: Result<u16, NotSent> = Ok(5060);
        let unreachable: [Result<u16, NotSent>; 3] = [
            Err(NotSent::NoProvenAddress),
            Err(NotSent::OutsideNetworks([10, 0, 0, 1].into())),
            Err(NotSent::Transport("TCP".into())),
        ];
        for t in &unreachable {
            assert!(through_pbx(PbxFor::Unreachable, t), "{t:?}");
            assert!(through_pbx(PbxFor::All, t), "{t:?}");
        }
        assert!(!through_pbx(PbxFor::Unreachable, &ok));
        assert!(through_pbx(PbxFor::All, &ok));
        let no_line: Result<u16, NotSent> = Err(NotSent::NoLine);
        assert!(!through_pbx(PbxFor::All, &no_line));
        assert!(!through_pbx(PbxFor::Unreachable, &no_line));
    }

    fn nets() -> Vec<IpNet> {
        vec!["10.20.0.0/16".parse().expect("net")]
    }

    #[test]
    fn the_proven_address_wins_and_the_override_is_only_a_fallback() {
        let proven: IpAddr = "10.20.0.5".parse().expect("ip");
        let admin: IpAddr = "10.20.0.9".parse().expect("ip");
        let both = Known {
            proven_ip: Some(proven),
            override_ip: Some(admin),
            override_port: Some(5070),
        };
        assert_eq!(
            target(&both, 5062, &nets()),
            Ok((SocketAddr::new(proven, 5062), Origin::Proven))
        );
        let admin_only = Known {
            proven_ip: None,
            ..both
        };
        assert_eq!(
            target(&admin_only, 5062, &nets()),
            Ok((SocketAddr::new(admin, 5070), Origin::Override))
        );
        assert_eq!(
            target(&Known::default(), 5060, &nets()),
            Err(NotSent::NoProvenAddress)
        );
    }

    #[test]
    fn an_address_outside_the_device_networks_is_refused() {
        let k = Known {
            proven_ip: Some("192.0.2.5".parse().expect("ip")),
            ..Known::default()
        };
        assert!(matches!(
            target(&k, 5060, &nets()),
            Err(NotSent::OutsideNetworks(_))
        ));
        assert!(matches!(
            target(&k, 5060, &[]),
            Err(NotSent::OutsideNetworks(_))
        ));
    }

    #[test]
    fn port_transport_and_line_user_come_from_the_effective_values() {
        assert_eq!(sip_port(None), Ok(5060));
        assert_eq!(sip_port(Some("0")), Ok(5060));
        assert_eq!(sip_port(Some("5062")), Ok(5062));
        assert!(sip_port(Some("x")).is_err());
        assert!(udp_transport(Some("TLS")).is_err());
        assert!(udp_transport(Some("DNSnaptr")).is_ok());
        assert_eq!(line_user("sip:1001@pbx"), Some("1001".into()));
        assert_eq!(line_user("1001"), Some("1001".into()));
        assert_eq!(line_user("  "), None);
    }

    #[test]
    fn restarting_phones_go_in_waves_of_the_site_share() {
        let sizes = HashMap::from([(Some(1), 20), (Some(2), 5)]);
        let devices: Vec<(Option<i64>, bool)> = (0..6)
            .map(|_| (Some(1), true))
            .chain([(Some(2), true), (Some(2), true), (Some(1), false)])
            .collect();
        // Site 1: 10% of 20 = 2 per wave; site 2: 10% of 5 rounds down, at least 1.
        assert_eq!(waves(&devices, &sizes, 10), vec![0, 0, 1, 1, 2, 2, 0, 1, 0]);
    }

    #[test]
    fn restart_reasons_name_what_restarts_the_phone() {
        assert!(restart_reasons(&[], None, Some("0")).is_empty());
        let r = restart_reasons(&["device.prov.password".into()], Some("6.4.0"), None);
        assert_eq!(
            r,
            vec!["pending device.prov.password", "new software 6.4.0"]
        );
    }
}
