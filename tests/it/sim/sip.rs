//! The phone's SIP side, as much as check-sync needs: a UDP listener on a loopback address
//! that answers `OPTIONS` with 200, checks that every request is well-formed
//! (RFC 3261 §8.1.1: Via with a `z9hG4bK` branch and the sender's address, Max-Forwards, From with a
//! tag, To, Call-ID, CSeq, Contact, Content-Length), and on a `NOTIFY` with
//! `Event: check-sync` answers 200 and tells the phone to fetch its configuration again.
//! With `Validation::Digest` it challenges a NOTIFY as a Poly phone with
//! `voIpProt.SIP.requestValidation.1.method="digest"` does (realm `PolycomSPIP`) and
//! accepts only the right answer computed from the line's credentials.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::digest::md5_hex;

/// How the phone validates a check-sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    None,
    Digest {
        user: String,
        password: String,
        realm: String,
    },
}

impl Validation {
    /// What a phone does with the configuration it fetched: Digest when it validates
    /// `NOTIFY` (`voIpProt.SIP.requestValidation.1.request="NOTIFY"`, `.method="digest"`,
    /// for the `check-sync` event or every event), with its line 1 credentials, in the
    /// realm `voIpProt.SIP.requestValidation.digest.realm` (default `PolycomSPIP`).
    pub fn of(config: &std::collections::BTreeMap<String, String>) -> Validation {
        let get = |k: &str| config.get(k).map(String::as_str);
        let event = get("voIpProt.SIP.requestValidation.1.request.1.event");
        if get("voIpProt.SIP.requestValidation.1.request") != Some("NOTIFY")
            || get("voIpProt.SIP.requestValidation.1.method") != Some("digest")
            || event.is_some_and(|e| e != "check-sync")
        {
            return Validation::None;
        }
        Validation::Digest {
            user: get("reg.1.auth.userId").unwrap_or("").to_string(),
            password: get("reg.1.auth.password").unwrap_or("").to_string(),
            realm: get("voIpProt.SIP.requestValidation.digest.realm")
                .filter(|r| !r.is_empty())
                .unwrap_or("PolycomSPIP")
                .to_string(),
        }
    }
}

/// A phone's SIP listener.
pub struct SipEar {
    pub addr: SocketAddr,
    check_syncs: Receiver<String>,
    /// Every datagram received, as text.
    pub heard: Arc<Mutex<Vec<String>>>,
    /// Requests that were not well-formed, with why.
    pub malformed: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SipEar {
    /// Stops listening and waits until the socket is closed (the address is free again).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header<'a>(req: &'a str, name: &str) -> Option<&'a str> {
    req.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Why `req` (from `from`) is not a well-formed request, if it is not.
pub fn malformed(req: &str, from: SocketAddr) -> Option<String> {
    if !req.ends_with("\r\n\r\n") {
        return Some("no blank line at the end".into());
    }
    let line = req.split("\r\n").next().unwrap_or("");
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts[2] != "SIP/2.0" || !parts[1].starts_with("sip:") {
        return Some(format!("request line `{line}`"));
    }
    let via = header(req, "Via")?;
    let want = format!("SIP/2.0/UDP {from};branch=z9hG4bK");
    if !via.starts_with(&want) {
        return Some(format!("Via `{via}` is not `{want}...` (the real sent-by)"));
    }
    for h in [
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
    ] {
        if header(req, h).is_none() {
            return Some(format!("{h} missing"));
        }
    }
    if header(req, "Max-Forwards") != Some("70") {
        return Some("Max-Forwards is not 70".into());
    }
    if !header(req, "From").is_some_and(|f| f.contains(";tag=")) {
        return Some("From has no tag".into());
    }
    let cseq = header(req, "CSeq").unwrap_or("");
    if !cseq.ends_with(parts[0]) {
        return Some(format!("CSeq `{cseq}` does not name {}", parts[0]));
    }
    None
}

fn reply(req: &str, status: &str, extra: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=phone\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "Via").unwrap_or(""),
        header(req, "From").unwrap_or(""),
        header(req, "To").unwrap_or(""),
        header(req, "Call-ID").unwrap_or(""),
        header(req, "CSeq").unwrap_or("")
    )
}

/// `k="v"` from a Digest header value.
fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(',').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let k = k.trim().trim_start_matches("Digest ").trim();
        (k == name).then(|| v.trim().trim_matches('"'))
    })
}

fn digest_ok(
    req: &str,
    method: &str,
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
) -> bool {
    let Some(auth) = header(req, "Authorization") else {
        return false;
    };
    let get = |k| param(auth, k).unwrap_or("");
    if get("username") != user || get("realm") != realm || get("nonce") != nonce {
        return false;
    }
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{}", get("uri")));
    let want = if get("qop").is_empty() {
        md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
    } else {
        md5_hex(&format!(
            "{ha1}:{nonce}:{}:{}:{}:{ha2}",
            get("nc"),
            get("cnonce"),
            get("qop")
        ))
    };
    get("response") == want
}

impl SipEar {
    /// Listens on `addr` (port 0: any).
    pub fn listen(addr: SocketAddr, validation: Validation) -> std::io::Result<SipEar> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let (tx, rx): (Sender<String>, Receiver<String>) = channel();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let malformed_list = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, m, s) = (heard.clone(), malformed_list.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65_535];
            let nonce = format!("n{}", addr.port());
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                h.lock().expect("heard").push(req.clone());
                if let Some(why) = malformed(&req, from) {
                    m.lock().expect("malformed").push(why);
                    continue;
                }
                let method = req.split(' ').next().unwrap_or("");
                let out = match method {
                    "OPTIONS" => reply(&req, "200 OK", ""),
                    "NOTIFY" if header(&req, "Event") == Some("check-sync") => match &validation {
                        Validation::Digest {
                            user,
                            password,
                            realm,
                        } if !digest_ok(&req, method, user, password, realm, &nonce) => reply(
                            &req,
                            "401 Unauthorized",
                            &format!(
                                "WWW-Authenticate: Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5\r\n"
                            ),
                        ),
                        _ => {
                            let _ = tx.send(req.clone());
                            reply(&req, "200 OK", "")
                        }
                    },
                    "NOTIFY" => reply(&req, "489 Bad Event", ""),
                    _ => reply(&req, "405 Method Not Allowed", ""),
                };
                let _ = socket.send_to(out.as_bytes(), from);
            }
        });
        Ok(SipEar {
            addr,
            check_syncs: rx,
            heard,
            malformed: malformed_list,
            stop,
            thread: Some(thread),
        })
    }

    /// The next accepted check-sync within `timeout`.
    pub fn check_sync(&self, timeout: Duration) -> Option<String> {
        self.check_syncs.recv_timeout(timeout).ok()
    }
}

impl super::SimPhone {
    /// Waits up to `timeout` for a check-sync on `ear`; on one, fetches the configuration
    /// again (a poll: the phone restarts only if what it fetched needs it).
    pub fn on_check_sync(&mut self, ear: &SipEar, timeout: Duration) -> Option<super::Boot> {
        ear.check_sync(timeout)?;
        Some(self.poll())
    }
}
