//! TFTP packets (RFC 1350) and the options of a read request (RFC 2347–2349): parsing what
//! a client sends and encoding what the server answers. No I/O.

use std::fmt;

pub const RRQ: u16 = 1;
pub const WRQ: u16 = 2;
pub const DATA: u16 = 3;
pub const ACK: u16 = 4;
pub const ERROR: u16 = 5;
pub const OACK: u16 = 6;

/// Smallest and largest block sizes RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
/// The block size without the option.
pub const DEFAULT_BLKSIZE: u16 = 512;

/// TFTP error codes (RFC 1350, 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: see the message (busy, timed out).
    Undefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    IllegalOperation = 4,
    UnknownTid = 5,
    /// 8: the options cannot be accepted (RFC 2347).
    BadOption = 8,
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet {
    Read(Request),
    Write { filename: String },
    Data,
    Ack(u16),
    Error { code: u16, message: String },
    Oack,
}

/// A read request with the options it carried.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: String,
    pub options: RequestOptions,
}

/// The options this server understands, as requested (unknown ones are ignored, RFC 2347).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    pub blksize: Option<String>,
    pub tsize: Option<String>,
    pub timeout: Option<String>,
}

/// A packet that is not valid TFTP: the message goes back in an error packet.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses one datagram.
pub fn parse(buf: &[u8]) -> Result<Packet, Malformed> {
    if buf.len() < 2 {
        return Err(Malformed("packet shorter than an opcode"));
    }
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    let body = &buf[2..];
    match op {
        RRQ | WRQ => {
            let mut fields = strings(body)?.into_iter();
            let filename = fields.next().ok_or(Malformed("no file name"))?;
            let mode = fields
                .next()
                .ok_or(Malformed("no transfer mode"))?
                .to_ascii_lowercase();
            if op == WRQ {
                return Ok(Packet::Write { filename });
            }
            if !matches!(mode.as_str(), "octet" | "netascii") {
                return Err(Malformed("transfer mode must be octet or netascii"));
            }
            let mut options = RequestOptions::default();
            let rest: Vec<String> = fields.collect();
            if !rest.len().is_multiple_of(2) {
                return Err(Malformed("an option without a value"));
            }
            for pair in rest.chunks(2) {
                let value = Some(pair[1].clone());
                match pair[0].to_ascii_lowercase().as_str() {
                    "blksize" => options.blksize = value,
                    "tsize" => options.tsize = value,
                    "timeout" => options.timeout = value,
                    _ => {}
                }
            }
            Ok(Packet::Read(Request {
                filename,
                mode,
                options,
            }))
        }
        DATA => Ok(Packet::Data),
        ACK if body.len() >= 2 => Ok(Packet::Ack(u16::from_be_bytes([body[0], body[1]]))),
        ACK => Err(Malformed("acknowledgement without a block number")),
        ERROR if body.len() >= 2 => Ok(Packet::Error {
            code: u16::from_be_bytes([body[0], body[1]]),
            message: String::from_utf8_lossy(body[2..].split(|b| *b == 0).next().unwrap_or(&[]))
                .into_owned(),
        }),
        ERROR => Err(Malformed("error packet without a code")),
        OACK => Ok(Packet::Oack),
        _ => Err(Malformed("unknown opcode")),
    }
}

/// The NUL-terminated strings of a request: at most 16, each at most 512 bytes of
/// printable ASCII (a file name phones send is plain).
fn strings(body: &[u8]) -> Result<Vec<String>, Malformed> {
    if body.last() != Some(&0) {
        return Err(Malformed("request not terminated by NUL"));
    }
    let parts: Vec<&[u8]> = body[..body.len() - 1].split(|b| *b == 0).collect();
    if parts.len() > 16 {
        return Err(Malformed("too many fields"));
    }
    parts
        .into_iter()
        .map(|p| {
            if p.len() > 512 {
                return Err(Malformed("field longer than 512 bytes"));
            }
            if !p.iter().all(|b| (0x20..0x7f).contains(b)) {
                return Err(Malformed("field not printable ASCII"));
            }
            Ok(String::from_utf8_lossy(p).into_owned())
        })
        .collect()
}

/// An error packet.
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    out.extend(message.bytes().filter(|b| *b != 0).take(200));
    out.push(0);
    out
}

/// An option acknowledgement with the accepted options, in order.
pub fn oack(options: &[(&str, String)]) -> Vec<u8> {
    let mut out = OACK.to_be_bytes().to_vec();
    for (name, value) in options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// The header of a data packet; the block follows it.
pub fn data_header(block: u16) -> [u8; 4] {
    let [a, b] = DATA.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

/// The options a transfer runs with, decided from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    /// Whether the client asked for a block size (it is then answered, RFC 2347).
    pub blksize_asked: bool,
    /// Seconds, when the client asked for its own retransmission timeout.
    pub timeout: Option<u8>,
    /// Whether to answer the size (the client sent `tsize`).
    pub tsize: bool,
}

/// Decides the options of a read request (RFC 2347–2349). A value out of its RFC range, or
/// not a number, refuses the request with error 8 and a message naming the option:
/// `blksize` 8–65464 (a value above `max_blksize` is lowered to it, as RFC 2348 lets the
/// server answer a smaller size), `timeout` 1–255 seconds (never changed: RFC 2349 has the
/// server accept it as sent or refuse), `tsize` 0 in a read request.
pub fn negotiate(options: &RequestOptions, max_blksize: u16) -> Result<Negotiated, String> {
    let mut n = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        blksize_asked: false,
        timeout: None,
        tsize: false,
    };
    if let Some(v) = &options.blksize {
        let size: u32 = v
            .parse()
            .map_err(|_| format!("blksize `{}` is not a number", shorten(v)))?;
        if !(u32::from(MIN_BLKSIZE)..=u32::from(MAX_BLKSIZE)).contains(&size) {
            return Err(format!(
                "blksize {size} is out of range ({MIN_BLKSIZE}-{MAX_BLKSIZE})"
            ));
        }
        n.blksize = (size as u16).min(max_blksize);
        n.blksize_asked = true;
    }
    if let Some(v) = &options.timeout {
        let secs: u32 = v
            .parse()
            .map_err(|_| format!("timeout `{}` is not a number", shorten(v)))?;
        if !(1..=255).contains(&secs) {
            return Err(format!("timeout {secs} is out of range (1-255 seconds)"));
        }
        n.timeout = Some(secs as u8);
    }
    if let Some(v) = &options.tsize {
        if v != "0" {
            return Err(format!(
                "tsize `{}` must be 0 in a read request",
                shorten(v)
            ));
        }
        n.tsize = true;
    }
    Ok(n)
}

fn shorten(v: &str) -> String {
    v.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(fields: &[&str]) -> Vec<u8> {
        let mut out = RRQ.to_be_bytes().to_vec();
        for f in fields {
            out.extend_from_slice(f.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn a_read_request_with_options_parses() {
        let p = parse(&rrq(&[
            "sip.ld", "OCTET", "blksize", "1428", "tsize", "0", "x", "y",
        ]))
        .expect("parse");
        let Packet::Read(r) = p else {
            panic!("not a read")
        };
        assert_eq!(r.filename, "sip.ld");
        assert_eq!(r.mode, "octet");
        assert_eq!(r.options.blksize.as_deref(), Some("1428"));
        assert_eq!(r.options.tsize.as_deref(), Some("0"));
        let n = negotiate(&r.options, MAX_BLKSIZE).expect("ok");
        assert_eq!(n.blksize, 1428);
        assert!(n.tsize);
    }

    #[test]
    fn bad_packets_are_refused_with_a_reason() {
        assert!(parse(&[0]).is_err());
        assert!(parse(&[0, 9]).is_err());
        assert!(parse(&[0, 1, b'a', 0]).is_err());
        assert!(parse(&[0, 1, b'a', 0, b'o', b'c', b't', b'e', b't']).is_err());
        assert!(parse(&rrq(&["a", "mail"])).is_err());
        assert!(parse(&rrq(&["a", "octet", "blksize"])).is_err());
        assert!(parse(&rrq(&["a\u{7}", "octet"])).is_err());
        assert!(matches!(
            parse(&[0, 2, b'a', 0, b'o', b'c', b't', b'e', b't', 0]),
            Ok(Packet::Write { .. })
        ));
    }

    #[test]
    fn options_out_of_range_are_refused_naming_the_option() {
        let o = |b: Option<&str>, t: Option<&str>, s: Option<&str>| RequestOptions {
            blksize: b.map(String::from),
            timeout: t.map(String::from),
            tsize: s.map(String::from),
        };
        for (opts, word) in [
            (o(Some("7"), None, None), "blksize"),
            (o(Some("65465"), None, None), "blksize"),
            (o(Some("big"), None, None), "blksize"),
            (o(None, Some("0"), None), "timeout"),
            (o(None, Some("256"), None), "timeout"),
            (o(None, None, Some("12")), "tsize"),
        ] {
            let e = negotiate(&opts, MAX_BLKSIZE).expect_err(word);
            assert!(e.contains(word), "{e}");
        }
        let n = negotiate(&o(Some("65464"), Some("255"), None), 1468).expect("ok");
        assert_eq!((n.blksize, n.timeout), (1468, Some(255)));
    }

    #[test]
    fn encodings() {
        assert_eq!(
            error(ErrorCode::FileNotFound, "no"),
            vec![0, 5, 0, 1, b'n', b'o', 0]
        );
        assert_eq!(
            oack(&[("tsize", "3".into())]),
            b"\0\x06tsize\x003\0".to_vec()
        );
        assert_eq!(data_header(0x1234), [0, 3, 0x12, 0x34]);
    }
}
