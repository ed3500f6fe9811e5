//! The DHCP probe: on one interface, send a DISCOVER and (when the interface has an IPv4
//! address) an INFORM that look like a Polycom phone's, then collect every answer from
//! every server for a few seconds. It never sends a REQUEST, so no server hands out a
//! lease (docs/design.md §10).
//!
//! Packets are built with `dhcproto`; answers are read with our own decoder
//! (`diag::options`), which keeps every option. The socket is UDP on `0.0.0.0:68`, bound to
//! the interface with `SO_BINDTODEVICE`, with broadcast on: that needs root or
//! `CAP_NET_BIND_SERVICE` and `CAP_NET_RAW`, which is why this runs as its own short-lived
//! process (`zerotouch diagnose dhcp`) and never inside the server.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use dhcproto::Encodable;
use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

use super::options::{self, DecodedOption, parse_packet, polycom_vendor_class};
use crate::error::{Error, Result};

/// Options the probe asks for, as a phone would, plus a few that identify the network.
pub const REQUESTED: &[u8] = &[66, 160, 161, 43, 150, 120, 42, 2, 60, 1, 3, 6, 15];

/// The vendor class (option 60) a phone of one family sends, which the probe sends in its
/// place (`diagnose dhcp --family`): servers that hand options by vendor class (an ISC
/// `class` on option 60, dnsmasq `dhcp-vendorclass`) answer each family as its phones see
/// it. UC Software phones send RFC 3925 vendor-identifying classes under Polycom's
/// enterprise number 13885, sub-options 1 company, 2 model, 3 part number, 4 application
/// version, 5 BootROM version (checked against Poly documents: docs/design.md §10); a phone in Lync/Skype for
/// Business mode sends the plain `MS-UC-Client`. Only the VVX 410 values are from a device
/// (and still to check against a capture); the others follow its pattern with the model
/// and part number of one phone of the family *(verify)*: servers usually match only on
/// the enterprise number, the company or a model prefix. Poly OS video devices are not
/// listed: no source says what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeClass {
    /// The name `--family` takes.
    pub family: &'static str,
    /// RFC 3925 sub-options, or empty for `plain`.
    pub fields: &'static [(u8, &'static str)],
    /// A plain-text class instead of RFC 3925.
    pub plain: Option<&'static str>,
}

impl ProbeClass {
    /// Option 60's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self.plain {
            Some(text) => text.as_bytes().to_vec(),
            None => polycom_vendor_class(self.fields),
        }
    }

    /// How reports name it: the family and the model (or the plain class).
    pub fn describe(&self) -> String {
        match self.plain {
            Some(text) => format!("{} (`{text}`)", self.family),
            None => {
                let model = self
                    .fields
                    .iter()
                    .find(|(c, _)| *c == 2)
                    .map_or("", |f| f.1);
                format!("{} (Polycom, {model})", self.family)
            }
        }
    }
}

const fn ucs(family: &'static str, fields: &'static [(u8, &'static str)]) -> ProbeClass {
    ProbeClass {
        family,
        fields,
        plain: None,
    }
}

/// Every family's class; the first (a VVX) is the default.
pub const VENDOR_CLASSES: &[ProbeClass] = &[
    ucs(
        "vvx",
        &[
            (1, "Polycom"),
            (2, "VVX-VVX_410"),
            (3, "3111-46162-001,1"),
            (4, "SIP/5.9.7.47435/21-Jun-21 09:42"),
            (5, "BR/5.9.7.47435/21-Jun-21 09:40"),
        ],
    ),
    ucs(
        "trio",
        &[
            (1, "Polycom"),
            (2, "RealPresenceTrio-Trio_8800"),
            (3, "3111-65290-001,1"),
            (4, "SIP/7.2.2.1094/08-Jun-21 10:35"),
            (5, "BR/7.2.2.1094/08-Jun-21 10:35"),
        ],
    ),
    ucs(
        "ccx",
        &[
            (1, "Polycom"),
            (2, "CCX-CCX_500"),
            (4, "SIP/8.1.0.1234/01-Jan-22 00:00"),
        ],
    ),
    ucs(
        "soundpoint",
        &[
            (1, "Polycom"),
            (2, "SoundPointIP-SPIP_650"),
            (3, "2345-12600-001,1"),
            (4, "SIP/4.0.15.1009/09-Jun-20 14:00"),
            (5, "BR/5.0.15.0001/09-Jun-20 14:00"),
        ],
    ),
    ucs(
        "soundstation",
        &[
            (1, "Polycom"),
            (2, "SoundStationIP-SSIP_6000"),
            (3, "3111-15600-001,1"),
            (4, "SIP/4.0.15.1009/09-Jun-20 14:00"),
            (5, "BR/5.0.15.0001/09-Jun-20 14:00"),
        ],
    ),
    ProbeClass {
        family: "lync",
        fields: &[],
        plain: Some("MS-UC-Client"),
    },
];

/// The class of a family named as `--family` takes it (case-insensitive).
pub fn probe_class(family: &str) -> Option<&'static ProbeClass> {
    VENDOR_CLASSES
        .iter()
        .find(|c| c.family.eq_ignore_ascii_case(family))
}

/// What to probe and how long.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The interface to send on (the phones' VLAN, e.g. `eth0.20`).
    pub interface: String,
    /// How long to collect answers after sending.
    pub wait: Duration,
    /// The port servers listen on (67; other values only for tests).
    pub server_port: u16,
    /// The port answers come to (68; other values only for tests).
    pub client_port: u16,
    /// A phone's MAC to write into `chaddr` (`diagnose dhcp --mac`), so servers that class
    /// clients by MAC or OUI answer as they would answer that phone. The Ethernet source
    /// stays the interface's own MAC (switch port security is not tripped), and both
    /// messages carry the broadcast flag, since an answer to that MAC would not reach us.
    pub client_mac: Option<[u8; 6]>,
    /// The vendor class sent (a family's; `VENDOR_CLASSES[0]` by default).
    pub class: &'static ProbeClass,
}

/// One answer from one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpAnswer {
    /// The server identifier (option 54), else the address the answer came from.
    pub server: Ipv4Addr,
    /// The address and port the answer came from (a relay, or the server itself).
    pub source: String,
    /// `OFFER`, `ACK`, `NAK`...
    pub message_type: String,
    /// The address offered (0.0.0.0 for the answer to an INFORM).
    pub your_ip: Ipv4Addr,
    /// The `sname` header field, when set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// The `file` header field, when set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot_file: String,
    /// Every option, decoded (unknown ones as hex).
    pub options: Vec<DecodedOption>,
}

impl DhcpAnswer {
    /// The decoded option `code`, if the server sent it.
    pub fn option(&self, code: u8) -> Option<&DecodedOption> {
        self.options.iter().find(|o| o.code == code)
    }
}

/// What a probe sent and received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpProbe {
    pub interface: String,
    /// The interface's MAC: the Ethernet source, and the client hardware address unless
    /// `client_mac` is set.
    pub mac: String,
    /// The MAC written into `chaddr` instead of the interface's (`--mac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_mac: Option<String>,
    /// The vendor class sent, as `ProbeClass::describe` names it (empty in probes stored
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor_class: String,
    /// The interface's IPv4 address, if it has one (INFORM needs it).
    pub client_ip: Option<Ipv4Addr>,
    /// What was sent, e.g. `DISCOVER xid 0x1a2b3c4d`.
    pub sent: Vec<String>,
    pub answers: Vec<DhcpAnswer>,
    /// Remarks about the run (an INFORM not sent, packets that were not understood).
    pub notes: Vec<String>,
}

/// Reads an interface's MAC address from sysfs.
pub fn interface_mac(interface: &str) -> Result<[u8; 6]> {
    if interface.is_empty() || interface.contains(['/', '\0']) || interface == ".." {
        return Err(Error::invalid(
            "interface",
            format!("`{interface}` is not an interface name"),
        ));
    }
    let path = format!("/sys/class/net/{interface}/address");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::invalid(
                "interface",
                format!("no interface `{interface}` (see `ip link`)"),
            )
        } else {
            Error::io(format!("reading {path}"), e)
        }
    })?;
    parse_mac(text.trim()).ok_or_else(|| {
        Error::invalid(
            "interface",
            format!("{path}: `{}` is not a MAC", text.trim()),
        )
    })
}

/// `00:04:f2:aa:bb:cc`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The six bytes of a MAC as an admin types it (`0004f2aabbcc`, `00:04:f2:aa:bb:cc`...).
pub fn mac_bytes(text: &str) -> Option<[u8; 6]> {
    let mac = crate::domain::mac::Mac::parse_lenient(text)?;
    let hex = mac.as_str();
    let mut out = [0u8; 6];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// Turns a socket error into a message that names what is missing.
fn socket_error(what: &str, interface: &str, port: u16, e: std::io::Error) -> Error {
    let denied =
        e.kind() == ErrorKind::PermissionDenied || matches!(e.raw_os_error(), Some(1) | Some(13));
    if denied {
        Error::Forbidden(format!(
            "{what} on {interface} (UDP port {port}) was refused: the DHCP probe needs root, \
             or the capabilities CAP_NET_BIND_SERVICE (port {port}) and CAP_NET_RAW \
             (SO_BINDTODEVICE, broadcast). Run it as root (`sudo zerotouch diagnose dhcp ...`) \
             or grant them: `setcap cap_net_raw,cap_net_bind_service+ep $(command -v zerotouch)`"
        ))
    } else if e.kind() == ErrorKind::AddrInUse {
        Error::Conflict(format!(
            "{what}: UDP port {port} is in use (a DHCP client such as dhclient or \
             systemd-networkd runs on this host); run the probe on an interface the client \
             does not manage, or stop it for the probe: {e}"
        ))
    } else {
        Error::io(format!("{what} on {interface} (UDP port {port})"), e)
    }
}

fn open_socket(opts: &ProbeOptions) -> Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| socket_error("opening a UDP socket", &opts.interface, opts.client_port, e))?;
    let fail = |what: &str, e| socket_error(what, &opts.interface, opts.client_port, e);
    s.set_reuse_address(true)
        .map_err(|e| fail("setting SO_REUSEADDR", e))?;
    s.set_broadcast(true)
        .map_err(|e| fail("setting SO_BROADCAST", e))?;
    s.bind_device(Some(opts.interface.as_bytes()))
        .map_err(|e| fail("binding to the interface (SO_BINDTODEVICE)", e))?;
    let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, opts.client_port);
    s.bind(&SocketAddr::V4(local).into())
        .map_err(|e| fail("binding the DHCP client port", e))?;
    Ok(s.into())
}

/// The interface's IPv4 address, found by asking the kernel which source address it would
/// use to reach the DHCP servers through that interface.
fn interface_ipv4(interface: &str, server_port: u16) -> Option<Ipv4Addr> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).ok()?;
    s.bind_device(Some(interface.as_bytes())).ok()?;
    s.set_broadcast(true).ok()?;
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, server_port);
    s.connect(&SocketAddr::V4(to).into()).ok()?;
    match s.local_addr().ok()?.as_socket() {
        Some(SocketAddr::V4(a)) if !a.ip().is_unspecified() => Some(*a.ip()),
        _ => None,
    }
}

fn random_xid() -> u32 {
    let mut b = [0u8; 4];
    // A fixed xid still works (answers are also matched on the MAC); randomness only
    // keeps two probes on one segment apart.
    let _ = getrandom::fill(&mut b);
    u32::from_be_bytes(b)
}

/// Builds a DISCOVER (`ciaddr` unspecified) or an INFORM (`ciaddr` = our address) for the
/// client hardware address `mac`; `broadcast` sets the broadcast flag on an INFORM too
/// (a DISCOVER always has it).
pub fn build_message(
    kind: MessageType,
    xid: u32,
    mac: &[u8; 6],
    ciaddr: Ipv4Addr,
    broadcast: bool,
    class: &ProbeClass,
) -> Result<Vec<u8>> {
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut msg = v4::Message::new_with_id(xid, ciaddr, zero, zero, zero, mac);
    if kind == MessageType::Discover || broadcast {
        // We hold no address (or `mac` is not ours), so answers must be broadcast to reach us.
        msg.set_flags(v4::Flags::default().set_broadcast());
    }
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(mac);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(client_id));
    opts.insert(DhcpOption::MaxMessageSize(1500));
    opts.insert(DhcpOption::ClassIdentifier(class.bytes()));
    opts.insert(DhcpOption::ParameterRequestList(
        REQUESTED.iter().map(|c| OptionCode::from(*c)).collect(),
    ));
    let mut bytes = msg
        .to_vec()
        .map_err(|e| Error::Config(format!("building the DHCP packet: {e}")))?;
    // BOOTP relays and some servers drop packets under 300 bytes.
    if bytes.len() < 300 {
        bytes.resize(300, 0);
    }
    Ok(bytes)
}

/// Runs the probe: sends, then collects answers until `opts.wait` has passed.
pub fn probe(opts: &ProbeOptions) -> Result<DhcpProbe> {
    let own = interface_mac(&opts.interface)?;
    // The client hardware address the servers see and answers are matched on.
    let mac = opts.client_mac.unwrap_or(own);
    let socket = open_socket(opts)?;
    let client_ip = interface_ipv4(&opts.interface, opts.server_port);
    let mut report = DhcpProbe {
        interface: opts.interface.clone(),
        mac: mac_text(&own),
        client_mac: opts.client_mac.map(|m| mac_text(&m)),
        vendor_class: opts.class.describe(),
        client_ip,
        sent: Vec::new(),
        answers: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(chaddr) = &report.client_mac {
        report.notes.push(format!(
            "asked as {chaddr} (chaddr, broadcast flag) from this host's MAC {}: a switch with \
             DHCP snooping may drop such packets (the hardware address differs from the \
             Ethernet source), and then nothing answers",
            report.mac
        ));
    }
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, opts.server_port);
    let mut xids = Vec::new();
    let mut send = |kind: MessageType, name: &str, ciaddr: Ipv4Addr, report: &mut DhcpProbe| {
        let xid = random_xid();
        let bytes = build_message(
            kind,
            xid,
            &mac,
            ciaddr,
            opts.client_mac.is_some(),
            opts.class,
        )?;
        socket.send_to(&bytes, to).map_err(|e| {
            socket_error(
                &format!("sending the {name}"),
                &opts.interface,
                opts.client_port,
                e,
            )
        })?;
        report.sent.push(format!("{name} xid 0x{xid:08x}"));
        xids.push(xid);
        Ok::<(), Error>(())
    };
    send(
        MessageType::Discover,
        "DISCOVER",
        Ipv4Addr::UNSPECIFIED,
        &mut report,
    )?;
    match client_ip {
        Some(ip) => send(MessageType::Inform, "INFORM", ip, &mut report)?,
        None => report.notes.push(format!(
            "no INFORM sent: {} has no IPv4 address (DISCOVER answers still show the options)",
            opts.interface
        )),
    }
    let deadline = Instant::now() + opts.wait;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| Error::io("setting the receive timeout", e))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("receiving DHCP answers", e)),
        };
        let packet = match parse_packet(&buf[..n]) {
            Ok(p) => p,
            Err(why) => {
                report
                    .notes
                    .push(format!("ignored {n} bytes from {from}: {why}"));
                continue;
            }
        };
        // Our own broadcasts come back on some set-ups; answers are op 2 for our xid and MAC.
        if packet.op != 2 || !xids.contains(&packet.xid) || packet.chaddr.get(..6) != Some(&mac[..])
        {
            continue;
        }
        let source_ip = match from {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        report.answers.push(DhcpAnswer {
            server: packet.server_id().unwrap_or(source_ip),
            source: from.to_string(),
            message_type: packet
                .message_type()
                .map(options::message_type_name)
                .unwrap_or("BOOTP")
                .to_string(),
            your_ip: packet.yiaddr,
            server_name: packet.sname.clone(),
            boot_file: packet.file.clone(),
            options: packet
                .options
                .iter()
                .map(|o| options::decode(o.code, &o.data))
                .collect(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_carries_the_polycom_class_and_asks_for_the_provisioning_options() {
        let mac = [0x00, 0x04, 0xf2, 0xaa, 0xbb, 0xcc];
        let bytes = build_message(
            MessageType::Discover,
            7,
            &mac,
            Ipv4Addr::UNSPECIFIED,
            false,
            &VENDOR_CLASSES[0],
        )
        .expect("build");
        assert!(bytes.len() >= 300);
        let mut p = parse_packet(&bytes).expect("our own packet parses");
        assert_eq!((p.op, p.xid, p.message_type()), (1, 7, Some(1)));
        assert_eq!(p.chaddr, mac.to_vec());
        assert_eq!(&bytes[10..12], &[0x80, 0], "broadcast flag");
        let class = p.option(60).expect("option 60");
        assert_eq!(&class[..4], &[0, 0, 0x36, 0x3d]);
        let prl = p.option(55).expect("option 55").to_vec();
        for code in [66u8, 160, 161, 43, 150, 120, 42, 2, 60] {
            assert!(prl.contains(&code), "{code} not requested");
        }
        p.options.retain(|o| o.code == 50);
        assert!(
            p.options.is_empty(),
            "a DISCOVER asks for no particular address"
        );
    }

    #[test]
    fn inform_names_our_address() {
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let bytes = build_message(
            MessageType::Inform,
            9,
            &[2; 6],
            ip,
            false,
            &VENDOR_CLASSES[0],
        )
        .expect("build");
        let p = parse_packet(&bytes).expect("parse");
        assert_eq!((p.ciaddr, p.message_type()), (ip, Some(8)));
        assert_eq!(
            &bytes[10..12],
            &[0, 0],
            "an INFORM for our own MAC is answered to us"
        );
    }

    #[test]
    fn a_phone_mac_goes_into_chaddr_with_the_broadcast_flag() {
        let phone = mac_bytes("00:04:f2:aa:bb:cc").expect("mac");
        assert_eq!(mac_bytes("0004F2AABBCC"), Some(phone));
        assert_eq!(mac_bytes("0004f2aabb"), None);
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let bytes = build_message(MessageType::Inform, 9, &phone, ip, true, &VENDOR_CLASSES[0])
            .expect("build");
        let p = parse_packet(&bytes).expect("parse");
        assert_eq!(p.chaddr, phone.to_vec());
        assert_eq!(&bytes[10..12], &[0x80, 0], "broadcast flag");
        assert_eq!(
            p.option(61),
            Some(&[1, 0, 4, 0xf2, 0xaa, 0xbb, 0xcc][..]),
            "the client identifier is the phone's too"
        );
    }

    #[test]
    fn a_missing_interface_is_named() {
        let err = interface_mac("zt-no-such-if0").expect_err("missing");
        assert!(
            err.to_string().contains("no interface `zt-no-such-if0`"),
            "{err}"
        );
        assert!(interface_mac("../etc").is_err());
        assert_eq!(
            parse_mac("00:04:f2:aa:bb:cc"),
            Some([0, 4, 0xf2, 0xaa, 0xbb, 0xcc])
        );
        assert_eq!(parse_mac("00:04:f2"), None);
    }

    #[test]
    fn permission_errors_name_the_capabilities() {
        let e = socket_error("binding", "eth0", 68, std::io::Error::from_raw_os_error(13));
        let text = e.to_string();
        assert!(
            text.contains("CAP_NET_RAW") && text.contains("CAP_NET_BIND_SERVICE"),
            "{text}"
        );
    }

    #[test]
    fn each_family_sends_its_own_class_and_lync_the_plain_one() {
        let mut seen = std::collections::HashSet::new();
        for class in VENDOR_CLASSES {
            let bytes = build_message(
                MessageType::Discover,
                1,
                &[0, 4, 0xf2, 1, 2, 3],
                Ipv4Addr::UNSPECIFIED,
                false,
                class,
            )
            .expect("build");
            let p = parse_packet(&bytes).expect("parse");
            let sent = p.option(60).expect("option 60").to_vec();
            assert!(
                seen.insert(sent.clone()),
                "{} repeats a class",
                class.family
            );
            let decoded = crate::diag::options::decode(60, &sent);
            match class.plain {
                Some(text) => assert_eq!(decoded.value, text),
                None => {
                    assert_eq!(&sent[..4], &[0, 0, 0x36, 0x3d], "{}", class.family);
                    assert!(decoded.value.starts_with("Polycom vendor class"));
                }
            }
            assert_eq!(probe_class(&class.family.to_uppercase()), Some(class));
        }
        assert_eq!(probe_class("polyos"), None);
    }
}
