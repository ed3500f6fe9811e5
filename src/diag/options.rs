//! Reading DHCPv4 answers: the fixed BOOTP header and the options, with RFC 3396 long
//! options and option overload (`decode` turns each option into something people read).
//!
//! Written by hand on purpose: a DHCP crate we measured drops every option after a
//! multi-address option 150, and a diagnostic tool must show everything a server sent.
//! Every function here takes untrusted bytes and never panics (a property test feeds it
//! garbage); an option it does not know is kept, and shown as hex.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub use super::decode::{
    DecodedOption, POLYCOM_ENTERPRISE, SubOption, decode, message_type_name, option_name,
    polycom_vendor_class,
};

/// The DHCP magic cookie that starts the options field.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// One option as it arrived: code and payload (long options already joined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOption {
    pub code: u8,
    pub data: Vec<u8>,
}

/// A BOOTP/DHCP packet, as much as we need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 1 = request, 2 = reply.
    pub op: u8,
    pub xid: u32,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub chaddr: Vec<u8>,
    /// The `sname` header field when it holds a server name (not overloaded).
    pub sname: String,
    /// The `file` header field when it holds a file name (not overloaded).
    pub file: String,
    /// Options in the order they first appeared.
    pub options: Vec<RawOption>,
}

impl Packet {
    /// The payload of option `code`, if present.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.data.as_slice())
    }

    /// The DHCP message type (option 53), if present.
    pub fn message_type(&self) -> Option<u8> {
        self.option(53).and_then(|d| d.first().copied())
    }

    /// The server identifier (option 54), if present and four bytes long.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.option(54).and_then(super::decode::ipv4)
    }
}

const HEADER_LEN: usize = 236;

/// Parses a packet. The error says what is wrong; nothing here panics on any input.
pub fn parse_packet(bytes: &[u8]) -> Result<Packet, String> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(format!(
            "{} bytes is shorter than a DHCP packet (240 bytes at least)",
            bytes.len()
        ));
    }
    if bytes[HEADER_LEN..HEADER_LEN + 4] != MAGIC_COOKIE {
        return Err("no DHCP magic cookie (a plain BOOTP packet?)".into());
    }
    let addr = |at: usize| Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
    let hlen = usize::from(bytes[2]).min(16);
    let mut options = Vec::new();
    parse_options_into(&bytes[HEADER_LEN + 4..], &mut options);
    // Option 52 (overload) moves options into the file (1), sname (2) or both (3) fields.
    let overload = options
        .iter()
        .find(|o| o.code == 52)
        .and_then(|o| o.data.first().copied())
        .unwrap_or(0);
    let sname_field = &bytes[44..108];
    let file_field = &bytes[108..236];
    if overload & 1 != 0 {
        parse_options_into(file_field, &mut options);
    }
    if overload & 2 != 0 {
        parse_options_into(sname_field, &mut options);
    }
    let cstr = |field: &[u8]| {
        let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    };
    Ok(Packet {
        op: bytes[0],
        xid: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        ciaddr: addr(12),
        yiaddr: addr(16),
        siaddr: addr(20),
        chaddr: bytes[28..28 + hlen].to_vec(),
        sname: if overload & 2 == 0 {
            cstr(sname_field)
        } else {
            String::new()
        },
        file: if overload & 1 == 0 {
            cstr(file_field)
        } else {
            String::new()
        },
        options,
    })
}

/// Parses an options field into `out`: pad (0) is skipped, end (255) stops, a truncated
/// option keeps the bytes that are there, and a code seen again is appended to the first
/// (RFC 3396 long options).
pub fn parse_options_into(mut bytes: &[u8], out: &mut Vec<RawOption>) {
    while let Some((&code, rest)) = bytes.split_first() {
        match code {
            0 => {
                bytes = rest;
                continue;
            }
            255 => return,
            _ => {}
        }
        let Some((&len, rest)) = rest.split_first() else {
            out.push(RawOption {
                code,
                data: Vec::new(),
            });
            return;
        };
        let take = usize::from(len).min(rest.len());
        let (data, rest) = rest.split_at(take);
        match out.iter_mut().find(|o| o.code == code) {
            Some(existing) => existing.data.extend_from_slice(data),
            None => out.push(RawOption {
                code,
                data: data.to_vec(),
            }),
        }
        bytes = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::hex;
    use proptest::prelude::*;

    fn packet_with(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = 2;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 0, 0, 50]);
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn every_option_after_a_multi_address_option_150_is_kept() {
        let mut opts = vec![53, 1, 2, 150, 8, 10, 0, 0, 1, 10, 0, 0, 2];
        opts.extend_from_slice(&[66, 4]);
        opts.extend_from_slice(b"tftp");
        opts.extend_from_slice(&[160, 7]);
        opts.extend_from_slice(b"http://");
        opts.push(255);
        let p = parse_packet(&packet_with(&opts)).expect("parse");
        assert_eq!(p.message_type(), Some(2));
        assert_eq!(p.yiaddr, Ipv4Addr::new(10, 0, 0, 50));
        let d150 = decode(150, p.option(150).expect("150"));
        assert_eq!(
            d150.addresses,
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(p.option(66), Some(&b"tftp"[..]));
        assert_eq!(p.option(160), Some(&b"http://"[..]));
    }

    #[test]
    fn long_options_are_joined_and_overload_is_followed() {
        let mut opts = vec![160, 3];
        opts.extend_from_slice(b"abc");
        opts.extend_from_slice(&[160, 3]);
        opts.extend_from_slice(b"def");
        opts.extend_from_slice(&[52, 1, 1, 255]);
        let mut p = packet_with(&opts);
        // Option 66 inside the overloaded `file` field.
        p[108..114].copy_from_slice(&[66, 3, b'x', b'y', b'z', 255]);
        let p = parse_packet(&p).expect("parse");
        assert_eq!(p.option(160), Some(&b"abcdef"[..]));
        assert_eq!(p.option(66), Some(&b"xyz"[..]));
        assert_eq!(p.file, "");
    }

    #[test]
    fn unknown_options_are_kept_and_shown_as_hex() {
        let p = parse_packet(&packet_with(&[224, 3, 1, 2, 0xff, 255])).expect("parse");
        let d = decode(224, p.option(224).expect("kept"));
        assert_eq!(d.value, "01 02 ff");
        assert_eq!(d.hex, "01 02 ff");
    }

    #[test]
    fn truncated_and_short_packets_are_errors_not_panics() {
        assert!(parse_packet(&[]).is_err());
        assert!(parse_packet(&[0u8; 239]).is_err());
        let p = parse_packet(&packet_with(&[66, 200, b'a'])).expect("truncated option");
        assert_eq!(p.option(66), Some(&b"a"[..]));
        let p = parse_packet(&packet_with(&[66])).expect("code without length");
        assert_eq!(p.option(66), Some(&b""[..]));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = parse_packet(&bytes);
            for code in [2u8, 42, 43, 60, 66, 120, 150, 160, 161, 200] {
                let _ = decode(code, &bytes);
            }
        }

        #[test]
        fn options_after_the_cookie_never_panic_and_are_kept(
            opts in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let p = packet_with(&opts);
            let parsed = parse_packet(&p).expect("a well-formed header always parses");
            for o in &parsed.options {
                let d = decode(o.code, &o.data);
                prop_assert_eq!(d.hex, hex(&o.data));
            }
        }
    }
}
