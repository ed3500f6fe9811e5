//! The two requests zerotouch sends, built as text: `OPTIONS` and `NOTIFY` with
//! `Event: check-sync` (RFC 3261 §8.1.1 for the mandatory headers, RFC 6665 for the
//! `Event` and `Subscription-State` of a NOTIFY outside a subscription, as PBXs send it:
//! Asterisk's sample `sip_notify.conf` names it `polycom-check-cfg`).

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Is the phone reachable (any final response says so).
    Options,
    /// `NOTIFY` with `Event: check-sync`: re-read the configuration.
    Notify,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Options => "OPTIONS",
            Method::Notify => "NOTIFY",
        }
    }
}

/// What to send, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: Method,
    /// Where the phone listens for SIP (its proven address and its SIP port).
    pub target: SocketAddr,
    /// The user part of the Request-URI and `To` (the line's user), if known.
    pub user: Option<String>,
}

impl RequestSpec {
    /// The Request-URI, `sip:[user@]host:port` (also the Digest `uri`).
    pub fn uri(&self) -> String {
        let host = host_port(self.target);
        match self.user.as_deref().filter(|u| !u.is_empty()) {
            Some(user) => format!("sip:{}@{host}", escape_user(user)),
            None => format!("sip:{host}"),
        }
    }
}

/// The identifiers of one request of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    /// The Via branch, starting with RFC 3261's magic cookie `z9hG4bK`.
    pub branch: String,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
}

impl Ids {
    /// Fresh random identifiers (a new branch per request; Call-ID and tag per dialog).
    pub fn fresh() -> Ids {
        Ids {
            branch: format!("z9hG4bK{}", random_hex(12)),
            call_id: random_hex(16),
            from_tag: random_hex(8),
            cseq: 1,
        }
    }

    /// The identifiers of the request answering a challenge: same Call-ID and tag, the
    /// next CSeq, a new branch (RFC 3261 §22.2, RFC 3261 §8.1.3.5).
    pub fn next(&self) -> Ids {
        Ids {
            branch: format!("z9hG4bK{}", random_hex(12)),
            cseq: self.cseq + 1,
            ..self.clone()
        }
    }
}

/// The request's bytes. `local` is the socket's own address: Via's sent-by and Contact.
/// `authorization` is a header name (`Authorization` or `Proxy-Authorization`) and value.
pub(crate) fn build(
    spec: &RequestSpec,
    local: SocketAddr,
    ids: &Ids,
    authorization: Option<(&str, &str)>,
) -> String {
    let method = spec.method.as_str();
    let uri = spec.uri();
    let me = host_port(local);
    let mut s = String::with_capacity(512);
    let _ = write!(s, "{method} {uri} SIP/2.0\r\n");
    let _ = write!(s, "Via: SIP/2.0/UDP {me};branch={};rport\r\n", ids.branch);
    s.push_str("Max-Forwards: 70\r\n");
    let _ = write!(s, "From: <sip:zerotouch@{me}>;tag={}\r\n", ids.from_tag);
    let _ = write!(s, "To: <{uri}>\r\n");
    let _ = write!(s, "Call-ID: {}@{}\r\n", ids.call_id, host(local));
    let _ = write!(s, "CSeq: {} {method}\r\n", ids.cseq);
    let _ = write!(s, "Contact: <sip:zerotouch@{me}>\r\n");
    if spec.method == Method::Notify {
        s.push_str("Event: check-sync\r\n");
        s.push_str("Subscription-State: terminated\r\n");
    }
    if let Some((name, value)) = authorization {
        let _ = write!(s, "{name}: {value}\r\n");
    }
    let _ = write!(s, "User-Agent: zerotouch/{}\r\n", crate::VERSION);
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// `host:port`, IPv6 in brackets.
fn host_port(addr: SocketAddr) -> String {
    format!("{}:{}", host(addr), addr.port())
}

fn host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// The user part of a SIP URI: unreserved and user-unreserved characters as they are, every
/// other byte escaped (RFC 3261 §25.1), so no value can break the request's syntax.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // Without randomness the identifiers would repeat, not leak anything: the clock is a
    // fallback good enough to keep transactions apart.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: Method, user: Option<&str>) -> RequestSpec {
        RequestSpec {
            method,
            target: "192.0.2.10:5060".parse().expect("addr"),
            user: user.map(String::from),
        }
    }

    #[test]
    fn a_notify_carries_check_sync_and_every_mandatory_header() {
        let ids = Ids::fresh();
        let local: SocketAddr = "192.0.2.1:40000".parse().expect("addr");
        let text = build(&spec(Method::Notify, Some("1001")), local, &ids, None);
        assert!(
            text.starts_with("NOTIFY sip:1001@192.0.2.10:5060 SIP/2.0\r\n"),
            "{text}"
        );
        for h in [
            "Via: SIP/2.0/UDP 192.0.2.1:40000;branch=z9hG4bK",
            "Max-Forwards: 70\r\n",
            "From: <sip:zerotouch@192.0.2.1:40000>;tag=",
            "To: <sip:1001@192.0.2.10:5060>\r\n",
            "Call-ID: ",
            "CSeq: 1 NOTIFY\r\n",
            "Contact: <sip:zerotouch@192.0.2.1:40000>\r\n",
            "Event: check-sync\r\n",
            "Subscription-State: terminated\r\n",
        ] {
            assert!(text.contains(h), "{h} missing in {text}");
        }
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(ids.branch.starts_with("z9hG4bK") && ids.branch.len() > 7 + 16);
    }

    #[test]
    fn an_options_has_no_event_and_ipv6_hosts_get_brackets() {
        let ids = Ids::fresh();
        let s = RequestSpec {
            method: Method::Options,
            target: "[2001:db8::5]:5062".parse().expect("addr"),
            user: None,
        };
        let text = build(&s, "[2001:db8::1]:5000".parse().expect("addr"), &ids, None);
        assert!(
            text.starts_with("OPTIONS sip:[2001:db8::5]:5062 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(!text.contains("Event:"));
        assert!(text.contains("Via: SIP/2.0/UDP [2001:db8::1]:5000;"));
    }

    #[test]
    fn a_user_cannot_break_the_request_line_or_add_headers() {
        let s = spec(Method::Options, Some("a b\r\nEvent: reboot@x"));
        assert_eq!(
            s.uri(),
            "sip:a%20b%0D%0AEvent%3A%20reboot%40x@192.0.2.10:5060"
        );
    }

    #[test]
    fn the_answer_to_a_challenge_keeps_the_dialog_and_takes_a_new_branch() {
        let a = Ids::fresh();
        let b = a.next();
        assert_eq!(
            (b.call_id.as_str(), b.from_tag.as_str()),
            (a.call_id.as_str(), a.from_tag.as_str())
        );
        assert_eq!(b.cseq, 2);
        assert_ne!(a.branch, b.branch);
    }
}
