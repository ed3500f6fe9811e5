//! The simulator is strict: a small scripted HTTP server (`Fake`) misbehaves in the ways a
//! broken provisioning server could, and each misbehaviour must show in what the simulator
//! reports — a CONFIG_FILES entry answered 500, empty or not XML; an optional file answered
//! neither 2xx nor 404; connections closed after every response, announced or not. It also
//! checks what the simulator sends: no credentials on a connection's first request, Digest
//! with a nonce count per nonce, the answer to `stale=true`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::sim::digest::{DigestSession, md5_hex, parse_challenges};
use crate::sim::files::{image_path, master, params, version_in};
use crate::sim::{self, Boot, Cred, SimPhone};

const MAC: &str = "0004f2000a01";
const USER: &str = "phones";
const PASSWORD: &str = "Fake-Passw0rd";

/// How the fake server ends connections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    KeepAlive,
    /// `Connection: close` on every response.
    Announced,
    /// Closes after every response without saying so.
    Silent,
}

/// One request the fake server received: its connection and Authorization header.
#[derive(Debug, Clone)]
struct Seen {
    conn: usize,
    authorization: Option<String>,
}

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Routes: path → (status, body); anything else is 404.
type Routes = BTreeMap<String, (u16, Vec<u8>)>;

impl Fake {
    /// A server that wants credentials on every request (Digest offered first, then Basic)
    /// and checks them; `stale_at` answers the Digest request with that index (0-based,
    /// counting every request) with `stale=true` and a new nonce.
    fn start(routes: Routes, closing: Closing, stale_at: Option<usize>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let s = seen.clone();
        std::thread::spawn(move || {
            for (conn, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let (routes, seen) = (routes.clone(), s.clone());
                std::thread::spawn(move || serve(stream, conn, &routes, &seen, closing, stale_at));
            }
        });
        Fake { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(
    mut stream: TcpStream,
    conn: usize,
    routes: &Routes,
    seen: &Mutex<Vec<Seen>>,
    closing: Closing,
    stale_at: Option<usize>,
) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut parts = first.split(' ');
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..len);
        let authorization = header("authorization");
        let index = {
            let mut s = seen.lock().expect("lock");
            s.push(Seen {
                conn,
                authorization: authorization.clone(),
            });
            s.len() - 1
        };
        let (status, body, extra) = match check(authorization.as_deref(), &method, &path) {
            Some(stale) if stale_at == Some(index) || stale => (
                401,
                Vec::new(),
                "WWW-Authenticate: Digest realm=\"fake\", qop=\"auth\", nonce=\"n2\", stale=true\r\n"
                    .to_string(),
            ),
            Some(_) => routes
                .get(&path)
                .map(|(s, b)| (*s, b.clone(), String::new()))
                .unwrap_or((404, b"not found".to_vec(), String::new())),
            None => (
                401,
                Vec::new(),
                "WWW-Authenticate: Digest realm=\"fake\", qop=\"auth\", nonce=\"n1\"\r\n\
                 WWW-Authenticate: Basic realm=\"fake\"\r\n"
                    .to_string(),
            ),
        };
        let announce = if closing == Closing::Announced {
            "Connection: close\r\n"
        } else {
            ""
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}{announce}\r\n",
            if method == "HEAD" { 0 } else { body.len() }
        );
        let mut out = resp.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(&body);
        }
        if stream.write_all(&out).is_err() || closing != Closing::KeepAlive {
            return;
        }
    }
}

/// `None`: no or wrong credentials; `Some(stale)`: right ones (`stale` for nonce `n1` when
/// the server moved on, never here: staleness is scripted by index).
fn check(authorization: Option<&str>, method: &str, uri: &str) -> Option<bool> {
    let a = authorization?;
    if a == sim_basic() {
        return Some(false);
    }
    // Credentials have the syntax of a challenge.
    let c = sim::parse_challenges([a]);
    if c.first().is_none_or(|c| c.scheme != "digest") {
        return None;
    }
    let p = |k: &str| c.first().and_then(|c| c.param(k)).unwrap_or("").to_string();
    let ha1 = md5(&format!("{USER}:fake:{PASSWORD}"));
    let ha2 = md5(&format!("{method}:{uri}"));
    let want = md5(&format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        p("nonce"),
        p("nc"),
        p("cnonce")
    ));
    (p("username") == USER && p("uri") == uri && p("response") == want).then_some(false)
}

fn md5(s: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sim_basic() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

/// A master listing `files`, and the files.
fn routes(files: &[(&str, u16, &[u8])]) -> Routes {
    let list: Vec<&str> = files.iter().map(|(n, _, _)| *n).collect();
    let mut r = Routes::new();
    r.insert(
        format!("/{MAC}.cfg"),
        (
            200,
            format!(
                "<APPLICATION APP_FILE_PATH=\"\" CONFIG_FILES=\"{}\"/>",
                list.join(", ")
            )
            .into_bytes(),
        ),
    );
    for (name, status, body) in files {
        r.insert(format!("/{name}"), (*status, body.to_vec()));
    }
    r
}

fn phone(fake: &Fake) -> SimPhone {
    SimPhone::new(MAC, &fake.addr.to_string(), USER, PASSWORD)
}

#[test]
fn a_config_file_answered_500_empty_or_broken_is_a_failure_of_the_boot() {
    let fake = Fake::start(
        routes(&[
            ("good.cfg", 200, b"<c a.b=\"1\"/>"),
            ("error.cfg", 500, b"<c a.c=\"1\"/>"),
            ("empty.cfg", 200, b""),
            ("broken.cfg", 200, b"<c a.d=\"1\""),
        ]),
        Closing::KeepAlive,
        None,
    );
    let mut p = phone(&fake);
    let Boot::Incomplete { failed, adopted } = p.boot() else {
        panic!("{:?}", p.last_boot())
    };
    assert!(adopted.is_empty());
    let what: Vec<(String, Option<u16>)> = failed
        .iter()
        .map(|f| (f.url.rsplit('/').next().unwrap_or("").to_string(), f.status))
        .collect();
    assert_eq!(
        what,
        vec![
            ("error.cfg".to_string(), Some(500)),
            ("empty.cfg".to_string(), Some(200)),
            ("broken.cfg".to_string(), Some(200)),
        ]
    );
    assert_eq!(p.config.get("a.b").map(String::as_str), Some("1"));
    assert!(!p.config.contains_key("a.c"), "a failed file is not read");
}

#[test]
fn optional_files_may_be_missing_but_not_fail() {
    let mut r = routes(&[("good.cfg", 200, b"<c a.b=\"1\"/>")]);
    r.insert(format!("/{MAC}-license.cfg"), (503, Vec::new()));
    r.insert(
        "/000000000000-directory.xml".into(),
        (200, b"<directory/>".to_vec()),
    );
    r.insert(
        format!("/{MAC}-phone.cfg"),
        (200, b"<PHONE_CONFIG a.b=\"2\"/>".to_vec()),
    );
    r.insert(format!("/{MAC}-boot.log"), (201, Vec::new()));
    let fake = Fake::start(r, Closing::KeepAlive, None);
    let mut p = phone(&fake);
    let Boot::Incomplete { failed, .. } = p.boot() else {
        panic!("{:?}", p.last_boot())
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].url.ends_with(&format!("/{MAC}-license.cfg")));
    assert_eq!(failed[0].status, Some(503));
    assert_eq!(
        p.config.get("a.b").map(String::as_str),
        Some("2"),
        "the phone's own override wins"
    );
}

#[test]
fn every_connection_starts_without_credentials_and_later_requests_send_digest_with_a_count() {
    let fake = Fake::start(
        routes(&[
            ("a.cfg", 200, b"<c a.b=\"1\"/>"),
            ("b.cfg", 200, b"<c a.c=\"1\"/>"),
        ]),
        Closing::KeepAlive,
        None,
    );
    let mut p = phone(&fake).with_sequence(sim::Sequence::Config);
    assert_eq!(p.boot(), Boot::Configured, "{:?}", p.last_boot());
    assert_eq!(p.boot(), Boot::Configured);
    let seen = fake.seen();
    // Two boots, one connection each: none, Digest nc=1, nc=2, nc=3.
    assert_eq!(seen.len(), 8, "{seen:?}");
    for boot in seen.chunks(4) {
        assert_eq!(boot[0].authorization, None, "{boot:?}");
        assert!(boot.iter().all(|s| s.conn == boot[0].conn));
        for (i, s) in boot[1..].iter().enumerate() {
            let a = s.authorization.as_deref().expect("credentials");
            assert!(a.starts_with("Digest "), "{a}");
            assert!(a.contains(&format!("nc={:08x}", i + 1)), "{a}");
        }
    }
    assert!(
        p.requests()
            .iter()
            .all(|r| r.cred == Cred::None || r.cred == Cred::Digest(USER.into()))
    );
}

#[test]
fn a_stale_nonce_is_answered_once_with_the_new_nonce() {
    let fake = Fake::start(
        routes(&[("a.cfg", 200, b"<c a.b=\"1\"/>")]),
        Closing::KeepAlive,
        Some(2),
    );
    let mut p = phone(&fake).with_sequence(sim::Sequence::Config);
    assert_eq!(p.boot(), Boot::Configured, "{:?}", p.last_boot());
    let seen = fake.seen();
    let nonces: Vec<&str> = seen
        .iter()
        .map(|s| {
            let a = s.authorization.as_deref().unwrap_or("");
            if a.contains("nonce=\"n2\"") {
                "n2"
            } else if a.contains("nonce=\"n1\"") {
                "n1"
            } else {
                "-"
            }
        })
        .collect();
    assert_eq!(nonces, vec!["-", "n1", "n1", "n2"], "{seen:?}");
    assert_eq!(p.last_boot().conns.stale, 1);
}

#[test]
fn a_server_that_closes_every_connection_shows() {
    let files: &[(&str, u16, &[u8])] = &[
        ("a.cfg", 200, b"<c a.b=\"1\"/>"),
        ("b.cfg", 200, b"<c a.c=\"1\"/>"),
    ];
    // Announced: legal, so the boot succeeds, but every request costs two connections (the
    // challenge, then the answer on a new one), which the counts show.
    let fake = Fake::start(routes(files), Closing::Announced, None);
    let mut p = phone(&fake).with_sequence(sim::Sequence::Config);
    assert_eq!(p.boot(), Boot::Configured, "{:?}", p.last_boot());
    let conns = p.last_boot().conns;
    assert_eq!((conns.opened, conns.server_closes), (6, 6), "{conns:?}");
    // Each new connection began without credentials: the phone never carries them over.
    let seen = fake.seen();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        seen.iter().step_by(2).all(|s| s.authorization.is_none()),
        "{seen:?}"
    );
    // Silent: the phone's next request on the connection gets no answer, and a new
    // connection starts without credentials again, so the phone never gets in. The boot
    // fails, and the drops are counted and described.
    let fake = Fake::start(routes(files), Closing::Silent, None);
    let mut p = phone(&fake).with_sequence(sim::Sequence::Config);
    let b = p.boot();
    assert!(
        matches!(b, Boot::Unreachable(_) | Boot::Refused { status: 401, .. }),
        "{b:?}"
    );
    assert!(p.last_boot().conns.drops > 0);
    assert!(
        p.events().iter().any(|e| e.contains("without saying so")),
        "{:?}",
        p.events()
    );
}

// The simulator's parsers on their own.

#[test]
fn two_challenges_in_one_header_and_in_two() {
    let one = parse_challenges([
        "Digest realm=\"zt, x\", qop=\"auth,auth-int\", algorithm=MD5, nonce=\"1.ab\", Basic realm=\"zt\"",
    ]);
    let two = parse_challenges([
        "Digest realm=\"zt, x\", qop=\"auth,auth-int\", algorithm=MD5, nonce=\"1.ab\"",
        "Basic realm=\"zt\", charset=\"UTF-8\"",
    ]);
    for cs in [&one, &two] {
        assert_eq!(cs.len(), 2, "{cs:?}");
        assert_eq!(cs[0].scheme, "digest");
        assert_eq!(cs[0].param("realm"), Some("zt, x"));
        assert!(cs[0].is_usable_digest());
        assert_eq!(cs[1].scheme, "basic");
    }
    let sha = parse_challenges(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"]);
    assert!(!sha[0].is_usable_digest());
}

#[test]
fn the_rfc_2617_example_response() {
    // RFC 2617 section 3.5, with its client nonce.
    let c = parse_challenges([
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    ]);
    let s = DigestSession::from_challenge(&c[0]);
    let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
    let ha2 = md5_hex("GET:/dir/index.html");
    let r = md5_hex(&format!("{ha1}:{}:00000001:0a4f113b:auth:{ha2}", s.nonce));
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn model_attributes_win_when_not_empty_and_substitutions_are_made() {
    let m = master(
        br#"<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-a.cfg, b.cfg" LOG_FILE_DIRECTORY="logs">
             <APPLICATION_VVX500 APP_FILE_PATH_VVX500="fw/5.9.8/sip.ld" CONFIG_FILES_VVX500=""/>
           </APPLICATION>"#,
        "0004f2000001",
        "VVX500",
        "3111-44500-001",
    )
    .expect("master");
    assert_eq!(m.config_files, vec!["0004f2000001-a.cfg", "b.cfg"]);
    assert_eq!(m.app_file_path, "fw/5.9.8/sip.ld");
    assert_eq!(m.dir("LOG_FILE_DIRECTORY"), "logs");
    assert_eq!(
        image_path(&m.app_file_path, "3111-44500-001"),
        "fw/5.9.8/3111-44500-001.sip.ld"
    );
    assert_eq!(version_in(&m.app_file_path).as_deref(), Some("5.9.8"));
    assert_eq!(version_in("sip.ld"), None);
}

#[test]
fn empty_and_broken_files_are_errors() {
    assert!(params(b"").is_err());
    assert!(params(b"  \n").is_err());
    assert!(params(b"<polycomConfig a.b=\"1\"").is_err());
    assert_eq!(
        params(b"<PHONE_CONFIG><ALL a.b=\"1\"/></PHONE_CONFIG>").expect("xml"),
        vec![("a.b".to_string(), "1".to_string())]
    );
}
