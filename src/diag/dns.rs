//! The DNS probe: the records that steer Polycom video endpoints and Lync/Skype-mode phones
//! (docs/design.md §2 and §10), asked of the system resolver (the first `nameserver` of
//! `/etc/resolv.conf`) or of a named server.
//!
//! A small synchronous client: `hickory-proto` builds and reads the messages, a std UDP
//! socket carries them, and a truncated answer is asked again over TCP. No NSS and no
//! async runtime are involved, so the probe sees exactly what the server says.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The names asked, relative to the domain, and the record types asked for each.
pub const CHECKS: &[(&str, &[&str])] = &[
    ("_rtcconfig._tcp", &["SRV"]),
    ("_cmaconfig._tcp", &["SRV"]),
    ("_sipinternaltls._tcp", &["SRV"]),
    ("_sip._tls", &["SRV"]),
    ("lyncdiscoverinternal", &["A", "AAAA"]),
    ("lyncdiscover", &["A", "AAAA"]),
    ("ucupdates-r2", &["A", "AAAA"]),
    ("_ntp._udp", &["SRV"]),
];

/// One record of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: String,
    pub ttl: u32,
    /// The record data as a zone file shows it.
    pub data: String,
    /// For SRV records: the target host (without the final dot) and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// The full name asked, without the final dot.
    pub name: String,
    pub rtype: String,
    /// `NoError`, `NXDomain`, `ServFail`... or empty when no answer came.
    pub rcode: String,
    /// Answer-section records (CNAMEs included).
    pub records: Vec<DnsRecord>,
    /// Whether the answer came over TCP after a truncated UDP answer.
    #[serde(default)]
    pub tcp: bool,
    /// Why there is no answer (timeout, refused...), when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a DNS probe asked and heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsProbe {
    pub domain: String,
    pub server: String,
    pub answers: Vec<DnsAnswer>,
    /// The A and AAAA answers for every SRV target the answers named (a target of `.`,
    /// "no such service" in RFC 2782, is not asked). Empty in probes stored before targets
    /// were resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<DnsAnswer>,
}

impl DnsProbe {
    /// The addresses a target resolved to, and whether any question about it was
    /// answered at all (`None`: every question failed, nothing is known).
    pub fn target_addresses(&self, target: &str) -> Option<Vec<String>> {
        let asked: Vec<&DnsAnswer> = self
            .targets
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case(target) && a.error.is_none())
            .collect();
        if asked.is_empty() {
            return None;
        }
        Some(
            asked
                .iter()
                .flat_map(|a| a.records.iter())
                .filter(|r| r.rtype == "A" || r.rtype == "AAAA")
                .map(|r| r.data.clone())
                .collect(),
        )
    }
}

/// The first `nameserver` of a resolv.conf text, on port 53.
pub fn nameserver_from_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|w| w.split('%').next())
            .and_then(|w| w.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// The system resolver: the first `nameserver` in `/etc/resolv.conf`.
pub fn system_resolver() -> Result<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| Error::io("reading /etc/resolv.conf", e))?;
    nameserver_from_resolv_conf(&text).ok_or_else(|| {
        Error::invalid(
            "server",
            "/etc/resolv.conf names no nameserver; give one with --server IP[:PORT]",
        )
    })
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when absent).
pub fn parse_server(text: &str) -> Result<SocketAddr> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| Error::invalid("server", format!("`{text}` is not IP or IP:PORT")))
}

/// Checks a domain name given on the command line.
pub fn check_domain(domain: &str) -> Result<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 240
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(d)
    } else {
        Err(Error::invalid(
            "domain",
            format!("`{domain}` is not a domain name"),
        ))
    }
}

fn record_type(name: &str) -> RecordType {
    match name {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "CNAME" => RecordType::CNAME,
        _ => RecordType::SRV,
    }
}

/// Asks every name of `CHECKS` under `domain`.
pub fn probe(domain: &str, server: SocketAddr, timeout: Duration) -> Result<DnsProbe> {
    let domain = check_domain(domain)?;
    let mut answers = Vec::new();
    for (label, types) in CHECKS {
        let fqdn = format!("{label}.{domain}");
        for t in *types {
            answers.push(ask(&fqdn, t, server, timeout));
        }
    }
    let mut names: Vec<String> = answers
        .iter()
        .flat_map(|a| a.records.iter())
        .filter_map(|r| r.target.clone())
        .filter(|t| !t.is_empty() && t != ".")
        .map(|t| t.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let mut targets = Vec::new();
    for name in names {
        for t in ["A", "AAAA"] {
            targets.push(ask(&name, t, server, timeout));
        }
    }
    Ok(DnsProbe {
        domain,
        server: server.to_string(),
        answers,
        targets,
    })
}

/// Asks one question; failures become the answer's `error`.
pub fn ask(fqdn: &str, rtype: &str, server: SocketAddr, timeout: Duration) -> DnsAnswer {
    let mut answer = DnsAnswer {
        name: fqdn.to_string(),
        rtype: rtype.to_string(),
        rcode: String::new(),
        records: Vec::new(),
        tcp: false,
        error: None,
    };
    match exchange(fqdn, record_type(rtype), server, timeout) {
        Ok((msg, tcp)) => {
            answer.tcp = tcp;
            answer.rcode = format!("{:?}", msg.metadata.response_code);
            answer.records = records_of(&msg);
        }
        Err(e) => answer.error = Some(e),
    }
    answer
}

/// Decodes a datagram as the answer to question `id`; `None` for a reply to another
/// question, a query, or garbage.
pub fn decode_reply(bytes: &[u8], id: u16) -> Option<Message> {
    Message::from_vec(bytes)
        .ok()
        .filter(|m| m.metadata.id == id && m.metadata.message_type == MessageType::Response)
}

/// The answer records of a message as the report shows them.
pub fn records_of(msg: &Message) -> Vec<DnsRecord> {
    msg.answers
        .iter()
        .map(|r| {
            let (target, port) = match &r.data {
                RData::SRV(srv) => (
                    Some(srv.target.to_string().trim_end_matches('.').to_string()),
                    Some(srv.port),
                ),
                _ => (None, None),
            };
            DnsRecord {
                name: r.name.to_string().trim_end_matches('.').to_string(),
                rtype: r.record_type().to_string(),
                ttl: r.ttl,
                data: r.data.to_string(),
                target,
                port,
            }
        })
        .collect()
}

fn exchange(
    fqdn: &str,
    rtype: RecordType,
    server: SocketAddr,
    timeout: Duration,
) -> std::result::Result<(Message, bool), String> {
    let name = Name::from_ascii(format!("{fqdn}.")).map_err(|e| format!("bad name: {e}"))?;
    let mut id = [0u8; 2];
    let _ = getrandom::fill(&mut id);
    let id = u16::from_be_bytes(id);
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, rtype));
    let bytes = query
        .to_vec()
        .map_err(|e| format!("building the query: {e}"))?;
    let reply = udp_exchange(&bytes, id, server, timeout)?;
    if !reply.metadata.truncation {
        return Ok((reply, false));
    }
    tcp_exchange(&bytes, id, server, timeout).map(|m| (m, true))
}

fn udp_exchange(
    bytes: &[u8],
    id: u16,
    server: SocketAddr,
    timeout: Duration,
) -> std::result::Result<Message, String> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("UDP socket: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("connecting to {server}: {e}"))?;
    let deadline = Instant::now() + timeout;
    // Two sends within the timeout: one lost datagram should not read as "no record".
    for attempt in 0..2 {
        socket
            .send(bytes)
            .map_err(|e| format!("sending to {server}: {e}"))?;
        let until = if attempt == 0 {
            Instant::now() + timeout / 2
        } else {
            deadline
        };
        let mut buf = vec![0u8; 4096];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| format!("socket: {e}"))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    // A reply to another question (or garbage) is skipped, not trusted.
                    if let Some(m) = decode_reply(&buf[..n], id) {
                        return Ok(m);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(format!("{server} refused the query (no DNS server there)"));
                }
                Err(e) => return Err(format!("receiving from {server}: {e}")),
            }
        }
    }
    Err(format!(
        "no answer from {server} within {} ms",
        timeout.as_millis()
    ))
}

fn tcp_exchange(
    bytes: &[u8],
    id: u16,
    server: SocketAddr,
    timeout: Duration,
) -> std::result::Result<Message, String> {
    let fail = |e: std::io::Error| format!("TCP to {server} (after a truncated answer): {e}");
    let mut s = TcpStream::connect_timeout(&server, timeout).map_err(fail)?;
    s.set_read_timeout(Some(timeout)).map_err(fail)?;
    s.set_write_timeout(Some(timeout)).map_err(fail)?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).map_err(fail)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).map_err(fail)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(head))];
    s.read_exact(&mut body).map_err(fail)?;
    let m = Message::from_vec(&body).map_err(|e| format!("unreadable TCP answer: {e}"))?;
    if m.metadata.id != id {
        return Err("TCP answer for another question".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_nameserver_is_the_system_resolver() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n";
        assert_eq!(
            nameserver_from_resolv_conf(text),
            Some("10.0.0.53:53".parse().expect("addr"))
        );
        assert_eq!(
            nameserver_from_resolv_conf("nameserver fe80::1%eth0\n"),
            Some("[fe80::1]:53".parse().expect("addr"))
        );
        assert_eq!(nameserver_from_resolv_conf("search x\n"), None);
    }

    #[test]
    fn servers_and_domains_are_checked() {
        assert_eq!(parse_server("127.0.0.1").expect("ip").port(), 53);
        assert_eq!(parse_server("127.0.0.1:5353").expect("ip").port(), 5353);
        assert_eq!(parse_server("[::1]:5353").expect("ip").port(), 5353);
        assert!(parse_server("dns.example.com").is_err());
        assert_eq!(check_domain("Example.COM.").expect("ok"), "example.com");
        assert!(check_domain("bad domain").is_err());
        assert!(check_domain("").is_err());
    }

    #[test]
    fn a_silent_server_times_out_with_a_clear_error() {
        // A bound UDP socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let a = ask(
            "_rtcconfig._tcp.example.com",
            "SRV",
            addr,
            Duration::from_millis(200),
        );
        assert!(
            a.error.as_deref().unwrap_or("").contains("no answer"),
            "{a:?}"
        );
    }
}
