//! A strict parser of SIP responses (RFC 3261 §7, RFC 3261 §20) as they arrive in one UDP datagram.
//! Strict because its input is hostile by default: anything on the network can send a
//! datagram to our port. It never panics (fuzzed: `fuzz/fuzz_targets/sip_response.rs`),
//! bounds what it keeps, and refuses what it does not understand instead of guessing: a
//! response it refuses is the same as one never received.

use thiserror::Error;

/// The largest datagram read (a SIP message over UDP is at most 65,535 bytes).
pub const MAX_MESSAGE: usize = 65_535;
/// Headers kept from one response; more is refused.
const MAX_HEADERS: usize = 128;

/// A parsed response: status, reason and headers (names as sent, folded values joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

/// Why a datagram is not a response we accept.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("larger than a SIP message over UDP can be")]
    TooLarge,
    #[error("not UTF-8")]
    NotText,
    #[error("no blank line after the headers")]
    Unterminated,
    #[error("the status line is not `SIP/2.0 <code> <reason>`")]
    StatusLine,
    #[error("a header line is malformed: {0}")]
    Header(&'static str),
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("Content-Length is not a number or exceeds the body")]
    ContentLength,
}

impl Response {
    /// Every value of the header `name` (case-insensitive; compact forms included), in order.
    pub fn all<'a, 'n: 'a>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| same_header(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of the header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| same_header(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The branch parameter of the topmost Via (the transaction the response belongs to,
    /// RFC 3261 §17.1.3).
    pub fn top_via_branch(&self) -> Option<&str> {
        let first = self.header("Via")?.split(',').next()?;
        first.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
        })
    }

    /// CSeq's number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self
            .header("CSeq")?
            .trim()
            .split_once(char::is_whitespace)?;
        Some((n.parse().ok()?, m.trim()))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID").map(str::trim)
    }
}

/// The long name of a compact header form (RFC 3261 §7.3.3, RFC 6665 for `o`).
fn long_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "i" | "I" => "Call-ID",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "l" | "L" => "Content-Length",
        "m" | "M" => "Contact",
        "c" | "C" => "Content-Type",
        "e" | "E" => "Content-Encoding",
        "k" | "K" => "Supported",
        "o" | "O" => "Event",
        other => other,
    }
}

fn same_header(a: &str, b: &str) -> bool {
    long_name(a).eq_ignore_ascii_case(long_name(b))
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Parses one datagram as a SIP response.
pub fn parse_response(bytes: &[u8]) -> Result<Response, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotText)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(ParseError::Unterminated)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(ParseError::StatusLine)?;
    let (status, reason) = status_line_parts(status_line)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ParseError::Header("control character"));
        }
        if line.starts_with([' ', '\t']) {
            // A folded line continues the previous value (RFC 3261 §7.3.1).
            let Some((_, value)) = headers.last_mut() else {
                return Err(ParseError::Header("continuation before any header"));
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::Header("no colon"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(ParseError::Header("name is not a token"));
        }
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let response = Response {
        status,
        reason: reason.to_string(),
        headers,
    };
    for required in ["Via", "CSeq", "Call-ID"] {
        if response.header(required).is_none() {
            return Err(ParseError::Missing(required));
        }
    }
    if response.cseq().is_none() {
        return Err(ParseError::Header("CSeq is not `<number> <method>`"));
    }
    if let Some(cl) = response.header("Content-Length") {
        // Over UDP a body longer than Content-Length is cut; a shorter one is refused
        // (RFC 3261 §18.3).
        let n: usize = cl.trim().parse().map_err(|_| ParseError::ContentLength)?;
        if n > body.len() {
            return Err(ParseError::ContentLength);
        }
    }
    Ok(response)
}

fn status_line_parts(line: &str) -> Result<(u16, &str), ParseError> {
    let rest = line
        .strip_prefix("SIP/2.0 ")
        .ok_or(ParseError::StatusLine)?;
    let code = rest.get(..3).ok_or(ParseError::StatusLine)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::StatusLine);
    }
    let status: u16 = code.parse().map_err(|_| ParseError::StatusLine)?;
    if !(100..=699).contains(&status) {
        return Err(ParseError::StatusLine);
    }
    let reason = match rest.get(3..) {
        Some("") => "",
        Some(r) => r.strip_prefix(' ').ok_or(ParseError::StatusLine)?,
        None => return Err(ParseError::StatusLine),
    };
    if reason
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(ParseError::StatusLine);
    }
    Ok((status, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:40000;branch=z9hG4bKabc;rport=40000;received=192.0.2.1\r\n\
        From: <sip:zerotouch@192.0.2.1:40000>;tag=1\r\n\
        To: <sip:1001@192.0.2.10:5060>;tag=2\r\n\
        Call-ID: c1@192.0.2.1\r\n\
        CSeq: 1 NOTIFY\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_plain_answer_is_read_with_branch_cseq_and_call_id() {
        let r = parse_response(OK.as_bytes()).expect("parses");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.top_via_branch(), Some("z9hG4bKabc"));
        assert_eq!(r.cseq(), Some((1, "NOTIFY")));
        assert_eq!(r.call_id(), Some("c1@192.0.2.1"));
    }

    #[test]
    fn compact_forms_and_folded_lines_are_understood() {
        let text = "SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
            i: abc\r\nCSeq: 2 OPTIONS\r\nWWW-Authenticate: Digest realm=\"r\",\r\n nonce=\"n\"\r\n\
            l: 0\r\n\r\n";
        let r = parse_response(text.as_bytes()).expect("parses");
        assert_eq!(r.top_via_branch(), Some("z9hG4bKx"));
        assert_eq!(r.call_id(), Some("abc"));
        assert_eq!(
            r.header("www-authenticate"),
            Some("Digest realm=\"r\", nonce=\"n\"")
        );
    }

    #[test]
    fn hostile_responses_are_refused_with_a_reason() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Unterminated),
            (b"HTTP/1.1 200 OK\r\n\r\n", ParseError::StatusLine),
            (b"SIP/2.0 2000 OK\r\n\r\n", ParseError::StatusLine),
            (b"SIP/2.0 099 Low\r\n\r\n", ParseError::StatusLine),
            (
                b"SIP/2.0 200 OK\r\nVia x\r\n\r\n",
                ParseError::Header("no colon"),
            ),
            (
                b"SIP/2.0 200 OK\r\n continued\r\n\r\n",
                ParseError::Header("continuation before any header"),
            ),
            (
                b"SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n",
                ParseError::Header("name is not a token"),
            ),
            (
                b"SIP/2.0 200 OK\r\nVia: a\r\nCSeq: 1 X\r\n\r\n",
                ParseError::Missing("Call-ID"),
            ),
            (
                b"SIP/2.0 200 OK\r\nVia: a\r\nCSeq: one X\r\ni: c\r\n\r\n",
                ParseError::Header("CSeq is not `<number> <method>`"),
            ),
            (
                b"SIP/2.0 200 OK\r\nVia: a\r\nCSeq: 1 X\r\ni: c\r\nl: 10\r\n\r\nshort",
                ParseError::ContentLength,
            ),
            (
                b"SIP/2.0 200 OK\r\nVia: a\r\nCSeq: 1 X\r\ni: c\r\nl: -1\r\n\r\n",
                ParseError::ContentLength,
            ),
            (
                b"SIP/2.0 200 OK\r\nVia: a\x00b\r\n\r\n",
                ParseError::Header("control character"),
            ),
            (b"SIP/2.0 200 \xff\r\n\r\n", ParseError::NotText),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                parse_response(bytes).as_ref().err(),
                Some(want),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let many = format!("SIP/2.0 200 OK\r\n{}\r\n", "X: y\r\n".repeat(200));
        assert_eq!(
            parse_response(many.as_bytes()).err(),
            Some(ParseError::TooManyHeaders)
        );
        assert_eq!(
            parse_response(&vec![b'a'; 70_000]).err(),
            Some(ParseError::TooLarge)
        );
    }

    proptest::proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_response(&bytes);
        }

        #[test]
        fn mangled_answers_never_panic(cut in 0usize..400, byte in proptest::num::u8::ANY, at in 0usize..400) {
            let mut b = OK.as_bytes().to_vec();
            if at < b.len() { b[at] = byte; }
            b.truncate(cut.min(b.len()));
            if let Ok(r) = parse_response(&b) {
                let _ = (r.top_via_branch(), r.cseq(), r.call_id());
            }
        }
    }
}
