//! One non-INVITE client transaction over UDP (RFC 3261 §17.1.2): the request is sent from
//! a socket connected to the target — so its local address is the real sent-by, and the
//! kernel drops datagrams from any other address — retransmitted on timer E (T1, doubling
//! up to T2; every T2 once a provisional response came), and given up on timer F (64*T1).
//! A final response is the one whose top Via branch and CSeq match the request
//! (RFC 3261 §17.1.3); anything else is ignored. A 401/407 is answered once, as a new transaction
//! in the same dialog, when the caller gave credentials and the realm is the one expected.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::digest::{Challenge, DigestCredentials};
use super::message::{self, Ids, RequestSpec};
use super::response::{MAX_MESSAGE, Response, parse_response};

/// RFC 3261's timers for a non-INVITE transaction over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate; the first retransmission interval (RFC default 500 ms).
    pub t1: Duration,
    /// The longest retransmission interval (RFC default 4 s).
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

impl Timers {
    /// Timer F: how long a transaction waits for a final response (64*T1).
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A final response. `authenticated`: it answered our reply to a Digest challenge.
    Answered {
        status: u16,
        reason: String,
        authenticated: bool,
        retransmissions: u32,
    },
    /// A challenge we did not answer, and why (realm not expected, no credentials, a
    /// scheme or qop we do not speak, a second challenge).
    Challenged { status: u16, why: String },
    /// No final response before timer F, or the network said the port is unreachable.
    Unreachable { why: String, retransmissions: u32 },
    /// A local failure (no socket, no route).
    Failed(String),
}

impl Outcome {
    /// Whether the phone gave a final response (it is reachable).
    pub fn reached(&self) -> bool {
        matches!(self, Outcome::Answered { .. } | Outcome::Challenged { .. })
    }
}

/// Sends requests; one per call, each on its own socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sender {
    pub timers: Timers,
}

enum Ended {
    Final(Response, u32),
    Timeout(u32),
    Refused(u32),
}

impl Sender {
    pub fn new(timers: Timers) -> Sender {
        Sender { timers }
    }

    /// Sends `spec` and waits for its final response (at most two timer F periods when a
    /// challenge is answered). `creds`: answer a 401/407 with these, once.
    pub fn send(&self, spec: &RequestSpec, creds: Option<&DigestCredentials>) -> Outcome {
        let socket = match connect(spec.target) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(format!("cannot reach {}: {e}", spec.target)),
        };
        let local = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => return Outcome::Failed(format!("no local address: {e}")),
        };
        let ids = Ids::fresh();
        let first = message::build(spec, local, &ids, None);
        let (response, retrans) = match self.run(&socket, first.as_bytes(), &ids, spec) {
            Ok(Ended::Final(r, n)) => (r, n),
            Ok(Ended::Timeout(n)) => return unreachable("no final response before timer F", n),
            Ok(Ended::Refused(n)) => return unreachable("port unreachable", n),
            Err(e) => return Outcome::Failed(format!("sending to {}: {e}", spec.target)),
        };
        if !matches!(response.status, 401 | 407) {
            return answered(&response, false, retrans);
        }
        let Some(creds) = creds else {
            return challenged(&response, "no line credentials to answer with".into());
        };
        let header = if response.status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let challenges: Vec<Challenge> =
            response.all(header).filter_map(Challenge::parse).collect();
        let Some(challenge) = challenges.iter().find(|c| c.answerable()) else {
            return challenged(&response, "no MD5 Digest challenge with qop auth".into());
        };
        if let Some(expected) = &creds.expected_realm
            && *expected != challenge.realm
        {
            return challenged(
                &response,
                format!(
                    "realm `{}` is not the expected `{expected}`",
                    challenge.realm
                ),
            );
        }
        let next = ids.next();
        let auth = challenge.authorization(
            creds,
            spec.method.as_str(),
            &spec.uri(),
            &message::random_hex(8),
        );
        let auth_header = if response.status == 401 {
            "Authorization"
        } else {
            "Proxy-Authorization"
        };
        let second = message::build(spec, local, &next, Some((auth_header, &auth)));
        match self.run(&socket, second.as_bytes(), &next, spec) {
            Ok(Ended::Final(r, n)) if matches!(r.status, 401 | 407) => {
                let _ = n;
                challenged(&r, "challenged again: the credentials were refused".into())
            }
            Ok(Ended::Final(r, n)) => answered(&r, true, retrans + n),
            Ok(Ended::Timeout(n)) => unreachable(
                "no final response to the authenticated request",
                retrans + n,
            ),
            Ok(Ended::Refused(n)) => unreachable("port unreachable", retrans + n),
            Err(e) => Outcome::Failed(format!("sending to {}: {e}", spec.target)),
        }
    }

    /// Runs one transaction: send, retransmit, read until a matching final response.
    fn run(
        &self,
        socket: &UdpSocket,
        bytes: &[u8],
        ids: &Ids,
        spec: &RequestSpec,
    ) -> std::io::Result<Ended> {
        let Timers { t1, t2 } = self.timers;
        let start = Instant::now();
        let deadline = start + self.timers.timer_f();
        socket.send(bytes)?;
        let mut interval = t1;
        let mut next = start + interval;
        let mut proceeding = false;
        let mut retransmissions = 0u32;
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Ended::Timeout(retransmissions));
            }
            if now >= next {
                socket.send(bytes)?;
                retransmissions += 1;
                // Timer E doubles up to T2; in Proceeding it is T2 (RFC 3261 §17.1.2.2).
                interval = if proceeding {
                    t2
                } else {
                    (interval * 2).min(t2)
                };
                next = now + interval;
                continue;
            }
            let wait = next.min(deadline) - now;
            socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let Ok(r) = parse_response(&buf[..n]) else {
                        continue;
                    };
                    let ours = r.top_via_branch() == Some(ids.branch.as_str())
                        && r.cseq() == Some((ids.cseq, spec.method.as_str()));
                    if !ours {
                        continue;
                    }
                    if r.status < 200 {
                        if !proceeding {
                            proceeding = true;
                            next = Instant::now() + t2;
                        }
                        continue;
                    }
                    return Ok(Ended::Final(r, retransmissions));
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // ICMP port unreachable on a connected socket: nothing listens there.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Ok(Ended::Refused(retransmissions));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn connect(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(target)?;
    Ok(socket)
}

fn answered(r: &Response, authenticated: bool, retransmissions: u32) -> Outcome {
    Outcome::Answered {
        status: r.status,
        reason: r.reason.clone(),
        authenticated,
        retransmissions,
    }
}

fn challenged(r: &Response, why: String) -> Outcome {
    Outcome::Challenged {
        status: r.status,
        why,
    }
}

fn unreachable(why: &str, retransmissions: u32) -> Outcome {
    Outcome::Unreachable {
        why: why.to_string(),
        retransmissions,
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Method;
    use super::*;

    fn fast() -> Sender {
        Sender::new(Timers {
            t1: Duration::from_millis(10),
            t2: Duration::from_millis(80),
        })
    }

    /// A UAS on loopback answering each request with what `answer` returns.
    fn uas(
        answer: impl Fn(&str, usize) -> Vec<String> + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .expect("timeout");
        let addr = s.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                for out in answer(&req, seen.len()) {
                    let _ = s.send_to(out.as_bytes(), from);
                }
                seen.push(req);
            }
            seen
        });
        (addr, h)
    }

    fn header<'a>(req: &'a str, name: &str) -> &'a str {
        req.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or("")
    }

    fn reply(req: &str, status: &str, extra: &str) -> String {
        format!(
            "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=p\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            header(req, "Via"),
            header(req, "From"),
            header(req, "To"),
            header(req, "Call-ID"),
            header(req, "CSeq")
        )
    }

    fn spec(target: SocketAddr) -> RequestSpec {
        RequestSpec {
            method: Method::Notify,
            target,
            user: Some("1001".into()),
        }
    }

    #[test]
    fn a_final_response_ends_the_transaction_and_stray_ones_are_ignored() {
        let (addr, h) = uas(|req, _| {
            vec![
                "garbage".into(),
                reply(req, "200 OK", "").replace("branch=z9hG4bK", "branch=z9hG4bKother"),
                reply(req, "100 Trying", ""),
                reply(req, "200 OK", ""),
            ]
        });
        let out = fast().send(&spec(addr), None);
        assert!(
            matches!(
                out,
                Outcome::Answered {
                    status: 200,
                    authenticated: false,
                    ..
                }
            ),
            "{out:?}"
        );
        let seen = h.join().expect("uas");
        assert_eq!(seen.len(), 1, "no retransmission after the final response");
        assert!(seen[0].contains("Via: SIP/2.0/UDP 127.0.0.1:"));
    }

    #[test]
    fn silence_retransmits_on_timer_e_and_gives_up_on_timer_f() {
        let (addr, h) = uas(|_, _| Vec::new());
        let t = Instant::now();
        let out = fast().send(&spec(addr), None);
        let took = t.elapsed();
        assert!(matches!(out, Outcome::Unreachable { .. }), "{out:?}");
        assert!(
            took >= Duration::from_millis(640) && took < Duration::from_millis(3000),
            "{took:?}"
        );
        let n = h.join().expect("uas").len();
        // 10, 20, 40, 80, 80, ... ms up to 640: 1 + 10 sends (fewer on a loaded machine,
        // where sleeps overshoot; never more).
        assert!((5..=12).contains(&n), "{n} sends");
    }

    #[test]
    fn a_challenge_in_the_expected_realm_is_answered_once_with_digest() {
        let (addr, h) = uas(|req, i| {
            if i == 0 {
                vec![reply(
                    req,
                    "401 Unauthorized",
                    "WWW-Authenticate: Digest realm=\"PolycomSPIP\", nonce=\"abc\", qop=\"auth\"\r\n",
                )]
            } else {
                vec![reply(req, "200 OK", "")]
            }
        });
        let creds = DigestCredentials {
            user: "1001".into(),
            password: "linepw".into(),
            expected_realm: Some("PolycomSPIP".into()),
        };
        let out = fast().send(&spec(addr), Some(&creds));
        assert!(
            matches!(
                out,
                Outcome::Answered {
                    status: 200,
                    authenticated: true,
                    ..
                }
            ),
            "{out:?}"
        );
        let seen = h.join().expect("uas");
        assert_eq!(seen.len(), 2);
        let auth = header(&seen[1], "Authorization");
        let cnonce = auth
            .split("cnonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("cnonce");
        let want = super::super::digest::response(
            "1001",
            "PolycomSPIP",
            "linepw",
            "NOTIFY",
            &spec(addr).uri(),
            "abc",
            Some(("00000001", cnonce, "auth")),
        );
        assert!(auth.contains(&format!("response=\"{want}\"")), "{auth}");
        assert!(header(&seen[1], "CSeq").starts_with("2 NOTIFY"));
        assert_eq!(header(&seen[0], "Call-ID"), header(&seen[1], "Call-ID"));
    }

    #[test]
    fn a_challenge_for_another_realm_is_not_answered() {
        let (addr, h) = uas(|req, _| {
            vec![reply(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"evil\", nonce=\"abc\"\r\n",
            )]
        });
        let creds = DigestCredentials {
            user: "1001".into(),
            password: "linepw".into(),
            expected_realm: Some("PolycomSPIP".into()),
        };
        let out = fast().send(&spec(addr), Some(&creds));
        assert!(
            matches!(out, Outcome::Challenged { status: 401, .. }),
            "{out:?}"
        );
        assert_eq!(h.join().expect("uas").len(), 1);
    }

    #[test]
    fn a_closed_port_is_unreachable_at_once() {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = s.local_addr().expect("addr");
        drop(s);
        let out = fast().send(&spec(addr), None);
        assert!(matches!(out, Outcome::Unreachable { .. }), "{out:?}");
    }
}
