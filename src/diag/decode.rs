//! Decoding DHCP options for people and for the checks: names of the well-known codes,
//! strings (66, 160, 161), address lists (150, 42, 120 in both RFC 3361 encodings), the
//! time offset (2), option 43 with Microsoft's `MS-UC-Client` sub-options 1-5, and the
//! vendor class (60) as text or in the binary RFC 3925 style Polycom phones send. An
//! option that is unknown or malformed keeps its bytes and is shown as hex. Never panics.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::hex;

/// Polycom's IANA enterprise number, in the vendor class (option 60) phones send.
pub const POLYCOM_ENTERPRISE: u32 = 13885;

/// A sub-option of an encapsulated option (43) or of a vendor class (60).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubOption {
    pub code: u8,
    pub name: String,
    pub hex: String,
    /// The value as text, when it is printable.
    pub text: Option<String>,
}

/// An option decoded for people (`value`) and for the checks (`text`, `addresses`, `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedOption {
    pub code: u8,
    pub name: String,
    /// The payload as hex, always, so nothing is hidden by decoding.
    pub hex: String,
    /// The decoded value, or the hex again when the option is unknown or malformed.
    pub value: String,
    /// The payload as text, for string options (66, 160, 161, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Addresses, for address-list options (150, 42, 6, 3, 120 in its address form, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Ipv4Addr>,
    /// Host names, for option 120 in its name form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Sub-options, for option 43 and a binary option 60.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub: Vec<SubOption>,
}

/// The name of a DHCP option code (empty for codes without a well-known meaning).
pub fn option_name(code: u8) -> &'static str {
    match code {
        1 => "subnet mask",
        2 => "time offset",
        3 => "router",
        6 => "DNS servers",
        12 => "host name",
        15 => "domain name",
        28 => "broadcast address",
        42 => "NTP servers",
        43 => "vendor-specific information",
        51 => "lease time",
        52 => "option overload",
        53 => "message type",
        54 => "server identifier",
        55 => "parameter request list",
        56 => "message",
        58 => "renewal time",
        59 => "rebinding time",
        60 => "vendor class identifier",
        61 => "client identifier",
        66 => "TFTP server name (boot server)",
        67 => "boot file name",
        119 => "domain search",
        120 => "SIP servers",
        125 => "vendor-identifying vendor-specific information",
        150 => "TFTP server addresses (Cisco)",
        160 => "provisioning server (Polycom)",
        161 => "provisioning server (Polycom Lync SKUs, unconfirmed)",
        _ => "",
    }
}

/// The name of a DHCP message type (option 53).
pub fn message_type_name(t: u8) -> &'static str {
    match t {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        _ => "unknown",
    }
}

pub(super) fn ipv4(d: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(d).ok().map(Ipv4Addr::from)
}

fn ipv4_list(d: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if d.is_empty() || !d.len().is_multiple_of(4) {
        return None;
    }
    Some(d.chunks_exact(4).filter_map(ipv4).collect())
}

/// The payload as text when it is printable UTF-8 (trailing NULs, which some servers
/// send, are dropped).
pub fn printable(d: &[u8]) -> Option<String> {
    let end = d.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    let s = std::str::from_utf8(&d[..end]).ok()?;
    if s.chars().all(|c| !c.is_control() || c == '\t') {
        Some(s.to_string())
    } else {
        None
    }
}

/// Parses `code len data` triples that exactly fill `d`; `None` if they do not.
pub fn parse_tlv(d: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    let mut rest = d;
    while let Some((&code, r)) = rest.split_first() {
        let (&len, r) = r.split_first()?;
        if usize::from(len) > r.len() {
            return None;
        }
        let (data, r) = r.split_at(usize::from(len));
        out.push((code, data));
        rest = r;
    }
    (!out.is_empty()).then_some(out)
}

fn ms_uc_name(code: u8) -> &'static str {
    match code {
        1 => "vendor class (MS-UC-Client)",
        2 => "URL scheme",
        3 => "web server FQDN",
        4 => "web server port",
        5 => "certificate provisioning path",
        _ => "",
    }
}

fn polycom_class_name(code: u8) -> &'static str {
    match code {
        1 => "company",
        2 => "model",
        3 => "part number",
        4 => "application version",
        5 => "BootROM version",
        _ => "",
    }
}

fn subs(list: &[(u8, &[u8])], name: fn(u8) -> &'static str) -> Vec<SubOption> {
    list.iter()
        .map(|(code, data)| SubOption {
            code: *code,
            name: name(*code).to_string(),
            hex: hex(data),
            text: printable(data),
        })
        .collect()
}

/// Decodes DNS names in wire form (RFC 1035, no compression), as option 120 carries them.
fn dns_names(mut d: &[u8]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    while !d.is_empty() {
        let mut labels = Vec::new();
        loop {
            let (&len, rest) = d.split_first()?;
            d = rest;
            if len == 0 {
                break;
            }
            // Compression pointers are not allowed in option 120 (RFC 3361).
            if len >= 0xc0 || usize::from(len) > d.len() {
                return None;
            }
            let (label, rest) = d.split_at(usize::from(len));
            labels.push(String::from_utf8_lossy(label).into_owned());
            d = rest;
        }
        names.push(labels.join("."));
    }
    (!names.is_empty()).then_some(names)
}

/// Decodes one option. Unknown or malformed payloads are shown as hex.
pub fn decode(code: u8, data: &[u8]) -> DecodedOption {
    let mut o = DecodedOption {
        code,
        name: option_name(code).to_string(),
        hex: hex(data),
        value: String::new(),
        text: None,
        addresses: Vec::new(),
        names: Vec::new(),
        sub: Vec::new(),
    };
    match code {
        66 | 160 | 161 | 12 | 15 | 56 | 67 => {
            o.text = printable(data);
        }
        1 | 28 | 54 => {
            if let Some(a) = ipv4(data) {
                o.addresses = vec![a];
            }
        }
        3 | 6 | 42 | 150 => {
            o.addresses = ipv4_list(data).unwrap_or_default();
        }
        2 => {
            if let Ok(b) = <[u8; 4]>::try_from(data) {
                o.value = format!("{} s from UTC", i32::from_be_bytes(b));
            }
        }
        51 | 58 | 59 => {
            if let Ok(b) = <[u8; 4]>::try_from(data) {
                o.value = format!("{} s", u32::from_be_bytes(b));
            }
        }
        53 => {
            if let [t] = data {
                o.value = message_type_name(*t).to_string();
            }
        }
        120 => match data.split_first() {
            Some((0, rest)) => o.names = dns_names(rest).unwrap_or_default(),
            Some((1, rest)) => o.addresses = ipv4_list(rest).unwrap_or_default(),
            _ => {}
        },
        43 => {
            if let Some(list) = parse_tlv(data) {
                let is_ms = list
                    .iter()
                    .any(|(c, d)| *c == 1 && printable(d).as_deref() == Some("MS-UC-Client"));
                if is_ms {
                    o.sub = subs(&list, ms_uc_name);
                    o.value = ms_uc_summary(&o.sub);
                } else {
                    o.sub = subs(&list, |_| "");
                }
            }
            if o.sub.is_empty() {
                o.text = printable(data);
            }
        }
        60 => {
            o.text = printable(data);
            if o.text.is_none() {
                decode_vendor_class(data, &mut o);
            }
        }
        _ => {}
    }
    if o.value.is_empty() {
        o.value = if let Some(t) = &o.text {
            t.clone()
        } else if !o.addresses.is_empty() {
            join(&o.addresses)
        } else if !o.names.is_empty() {
            o.names.join(", ")
        } else if !o.sub.is_empty() {
            o.sub
                .iter()
                .map(|s| {
                    format!(
                        "{}={}",
                        s.code,
                        s.text.clone().unwrap_or_else(|| s.hex.clone())
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            o.hex.clone()
        };
    }
    o
}

fn join(addrs: &[Ipv4Addr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `MS-UC-Client: https://host:443/CertProv/...` from the sub-options that are there.
fn ms_uc_summary(sub: &[SubOption]) -> String {
    let get = |c: u8| {
        sub.iter()
            .find(|s| s.code == c)
            .and_then(|s| s.text.clone())
            .unwrap_or_default()
    };
    let (scheme, host, port, path) = (get(2), get(3), get(4), get(5));
    let mut url = String::new();
    if !scheme.is_empty() {
        url.push_str(&scheme);
        url.push_str("://");
    }
    url.push_str(&host);
    if !port.is_empty() {
        url.push(':');
        url.push_str(&port);
    }
    url.push_str(&path);
    format!("MS-UC-Client certificate provisioning: {url}")
}

/// A binary vendor class in the RFC 3925 style Polycom phones send: enterprise number,
/// data length, then `code len data` sub-options.
fn decode_vendor_class(data: &[u8], o: &mut DecodedOption) {
    let Some((ent, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let enterprise = u32::from_be_bytes(*ent);
    let Some((&len, rest)) = rest.split_first() else {
        return;
    };
    let body = &rest[..usize::from(len).min(rest.len())];
    if let Some(list) = parse_tlv(body) {
        o.sub = subs(&list, polycom_class_name);
        let who = if enterprise == POLYCOM_ENTERPRISE {
            "Polycom".to_string()
        } else {
            format!("enterprise {enterprise}")
        };
        let parts: Vec<String> = o
            .sub
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    if s.name.is_empty() {
                        s.code.to_string()
                    } else {
                        s.name.clone()
                    },
                    s.text.clone().unwrap_or_else(|| s.hex.clone())
                )
            })
            .collect();
        o.value = format!("{who} vendor class: {}", parts.join(", "));
    }
}

/// Builds the binary Polycom vendor class (option 60) a phone sends: enterprise 13885,
/// then sub-options 1 company, 2 model, 3 part number, 4 application version, 5 BootROM.
pub fn polycom_vendor_class(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in fields {
        let v = &value.as_bytes()[..value.len().min(255)];
        body.push(*code);
        body.push(v.len() as u8);
        body.extend_from_slice(v);
    }
    body.truncate(255);
    let mut out = POLYCOM_ENTERPRISE.to_be_bytes().to_vec();
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_uc_client_sub_options_are_named() {
        let mut d = Vec::new();
        for (c, v) in [
            (1u8, "MS-UC-Client"),
            (2, "https"),
            (3, "lyncpool.example.com"),
            (4, "443"),
            (5, "/CertProv/CertProvisioningService.svc"),
        ] {
            d.push(c);
            d.push(v.len() as u8);
            d.extend_from_slice(v.as_bytes());
        }
        let o = decode(43, &d);
        assert_eq!(o.sub.len(), 5);
        assert_eq!(o.sub[2].name, "web server FQDN");
        assert!(
            o.value
                .ends_with("https://lyncpool.example.com:443/CertProv/CertProvisioningService.svc"),
            "{}",
            o.value
        );
    }

    #[test]
    fn option_120_in_both_encodings() {
        let names = decode(
            120,
            &[
                0, 3, b's', b'i', b'p', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0,
            ],
        );
        assert_eq!(names.names, vec!["sip.example".to_string()]);
        let addrs = decode(120, &[1, 192, 0, 2, 1, 192, 0, 2, 2]);
        assert_eq!(addrs.addresses.len(), 2);
        let broken = decode(120, &[0, 9, b'x']);
        assert_eq!(broken.value, "00 09 78");
    }

    #[test]
    fn polycom_vendor_class_round_trips() {
        let bytes = polycom_vendor_class(&[(1, "Polycom"), (2, "VVX-VVX_410")]);
        assert_eq!(&bytes[..4], &[0, 0, 0x36, 0x3d]);
        let o = decode(60, &bytes);
        assert_eq!(o.sub[1].text.as_deref(), Some("VVX-VVX_410"));
        assert!(o.value.starts_with("Polycom vendor class"), "{}", o.value);
        assert_eq!(decode(60, b"MS-UC-Client").value, "MS-UC-Client");
    }
}
