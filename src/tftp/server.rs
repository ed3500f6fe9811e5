//! The TFTP listener and its transfers. One thread receives requests on the listen socket
//! and decides each one at once (source network, write request, malformed packet, cap,
//! duplicate); an admitted read request gets a thread and a socket of its own, bound to an
//! ephemeral port on the listener's address and connected to the client, as RFC 1350's
//! transfer IDs require. A transfer sends one block, waits for its acknowledgement, and
//! sends it again when none arrives within the timeout, at most `retries` times.
//! Duplicate acknowledgements are ignored (never answered with a block: the Sorcerer's
//! Apprentice bug of RFC 1350).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::packet::{self, ErrorCode, Negotiated, Packet, Request};
use super::{Content, Refusal, Source};

/// How often the receiving thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// At most one warning per this long about requests from outside the allowed networks.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// The listener's limits.
#[derive(Clone)]
pub struct Settings {
    /// Most transfers at once; over it a request gets error 0 "server busy".
    pub max_transfers: usize,
    /// Retransmission timeout, unless the client negotiated its own.
    pub timeout: Duration,
    /// Retransmissions of one packet before the transfer is abandoned.
    pub retries: u32,
    /// Largest block size granted (a larger request is lowered to it).
    pub max_blksize: u16,
    /// Whether a client address may be answered at all.
    pub allow: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
}

/// Counters for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Read requests admitted to a transfer.
    pub requests: AtomicU64,
    /// Transfers whose last block was acknowledged.
    pub completed: AtomicU64,
    /// Requests the source refused (not found, denied) or whose options were refused.
    pub refused: AtomicU64,
    /// Transfers abandoned: no acknowledgement after every retry, or the client's error.
    pub abandoned: AtomicU64,
    /// Requests answered "server busy" (over `max_transfers`).
    pub busy: AtomicU64,
    /// Datagrams from outside the allowed networks, dropped without an answer.
    pub dropped: AtomicU64,
    /// Write requests and malformed packets, answered with an error.
    pub bad: AtomicU64,
    /// Data bytes sent (retransmissions included).
    pub bytes: AtomicU64,
    /// Transfers running now.
    pub active: AtomicUsize,
}

/// A bound listener, not yet running.
pub struct TftpServer {
    socket: UdpSocket,
    settings: Settings,
    source: Arc<dyn Source>,
    stats: Arc<Stats>,
}

/// A running listener.
pub struct Handle {
    stop: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl TftpServer {
    /// Binds the listen socket.
    pub fn bind(
        addr: SocketAddr,
        settings: Settings,
        source: Arc<dyn Source>,
    ) -> io::Result<TftpServer> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(POLL))?;
        Ok(TftpServer {
            socket,
            settings,
            source,
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Starts receiving requests in a thread of its own.
    pub fn spawn(self) -> io::Result<Handle> {
        let addr = self.socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let abort = Arc::new(AtomicBool::new(false));
        let stats = self.stats.clone();
        let listener = Listener {
            socket: self.socket,
            settings: self.settings,
            source: self.source,
            stats: self.stats,
            stop: stop.clone(),
            abort: abort.clone(),
            peers: Arc::new(Mutex::new(HashSet::new())),
            drops: Mutex::new(DropLog {
                last: None,
                since: 0,
            }),
        };
        let thread = std::thread::Builder::new()
            .name("tftp".into())
            .spawn(move || listener.run())?;
        Ok(Handle {
            stop,
            abort,
            stats,
            thread: Some(thread),
            addr,
        })
    }
}

impl Handle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops taking requests, lets running transfers finish for up to `drain`, then
    /// abandons the rest. Returns how many were abandoned.
    pub fn shutdown(mut self, drain: Duration) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let deadline = Instant::now() + drain;
        while self.stats.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.stats.active.load(Ordering::SeqCst);
        self.abort.store(true, Ordering::SeqCst);
        left
    }
}

struct DropLog {
    last: Option<Instant>,
    since: u64,
}

struct Listener {
    socket: UdpSocket,
    settings: Settings,
    source: Arc<dyn Source>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    abort: Arc<AtomicBool>,
    /// Clients (address and port) with a transfer running: a retransmitted request
    /// starts no second one.
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    drops: Mutex<DropLog>,
}

impl Listener {
    fn run(self) {
        let mut buf = vec![0u8; 2048];
        while !self.stop.load(Ordering::SeqCst) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, peer)) => self.on_datagram(&buf[..n], peer),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors from earlier answers surface here on some systems.
                    log::debug!("tftp: receive: {e}");
                }
            }
        }
    }

    fn reply(&self, peer: SocketAddr, code: ErrorCode, message: &str) {
        let _ = self.socket.send_to(&packet::error(code, message), peer);
    }

    fn on_datagram(&self, buf: &[u8], peer: SocketAddr) {
        if !(self.settings.allow)(peer.ip()) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.note_drop(peer);
            return;
        }
        match packet::parse(buf) {
            Ok(Packet::Read(req)) => self.admit(req, peer),
            Ok(Packet::Write { filename }) => {
                self.stats.bad.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "tftp: {}: write request for `{}` refused",
                    peer.ip(),
                    printable(&filename)
                );
                self.reply(
                    peer,
                    ErrorCode::AccessViolation,
                    "this server does not accept writes",
                );
            }
            // Not a request: the client's transfer ID is wrong (RFC 1350).
            Ok(Packet::Data | Packet::Ack(_) | Packet::Oack) => {
                self.stats.bad.fetch_add(1, Ordering::Relaxed);
                self.reply(peer, ErrorCode::UnknownTid, "unknown transfer ID");
            }
            // Never answer an error.
            Ok(Packet::Error { .. }) => {}
            Err(why) => {
                self.stats.bad.fetch_add(1, Ordering::Relaxed);
                log::debug!("tftp: {}: malformed packet: {why}", peer.ip());
                self.reply(peer, ErrorCode::IllegalOperation, why.0);
            }
        }
    }

    /// A request from outside the allowed networks: counted, logged at debug, and a
    /// warning at most once a minute with how many were dropped.
    fn note_drop(&self, peer: SocketAddr) {
        log::debug!("tftp: {}: not in tftp.allow; dropped", peer.ip());
        let mut d = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        d.since += 1;
        if d.last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
            log::warn!(
                "tftp: dropped {} request(s) from addresses outside tftp.allow (latest from {})",
                d.since,
                peer.ip()
            );
            d.last = Some(Instant::now());
            d.since = 0;
        }
    }

    fn admit(&self, req: Request, peer: SocketAddr) {
        {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            if peers.contains(&peer) {
                // A retransmitted request: its transfer is already running.
                return;
            }
            if self.stats.active.load(Ordering::SeqCst) >= self.settings.max_transfers {
                drop(peers);
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                log::debug!("tftp: {}: over tftp.max_transfers; busy", peer.ip());
                self.reply(peer, ErrorCode::Undefined, "server busy, try again later");
                return;
            }
            peers.insert(peer);
            self.stats.active.fetch_add(1, Ordering::SeqCst);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let guard = Slot {
            peer,
            peers: self.peers.clone(),
            stats: self.stats.clone(),
        };
        let local = match self.socket.local_addr() {
            Ok(a) => a.ip(),
            Err(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let transfer = Transfer {
            settings: self.settings.clone(),
            source: self.source.clone(),
            stats: self.stats.clone(),
            abort: self.abort.clone(),
            peer,
            local,
        };
        let spawned = std::thread::Builder::new()
            .name("tftp-transfer".into())
            .spawn(move || {
                let _guard = guard;
                transfer.run(req);
            });
        if let Err(e) = spawned {
            log::error!("tftp: cannot start a transfer thread: {e}");
            self.reply(peer, ErrorCode::Undefined, "server busy, try again later");
        }
    }
}

/// Frees a transfer's place when it ends, however it ends.
struct Slot {
    peer: SocketAddr,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    stats: Arc<Stats>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.peer);
        self.stats.active.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Transfer {
    settings: Settings,
    source: Arc<dyn Source>,
    stats: Arc<Stats>,
    abort: Arc<AtomicBool>,
    peer: SocketAddr,
    local: IpAddr,
}

/// How waiting for an acknowledgement ended, when it did not arrive.
enum Failed {
    TimedOut,
    ClientError(u16, String),
    Aborted,
    Io(io::Error),
}

impl Transfer {
    fn run(self, req: Request) {
        let bind_ip = match (self.local, self.peer.ip()) {
            (ip, _) if !ip.is_unspecified() => ip,
            (_, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (_, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let socket = match UdpSocket::bind((bind_ip, 0)).and_then(|s| {
            s.connect(self.peer)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("tftp: {}: cannot open a transfer socket: {e}", self.peer);
                return;
            }
        };
        let name = printable(&req.filename);
        let neg = match packet::negotiate(&req.options, self.settings.max_blksize) {
            Ok(n) => n,
            Err(why) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                log::info!("tftp: {}: `{name}`: option refused: {why}", self.peer.ip());
                let _ = socket.send(&packet::error(ErrorCode::BadOption, &why));
                return;
            }
        };
        let content = match self.source.open(&req.filename, self.peer) {
            Ok(c) => c,
            Err(Refusal { code, message }) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send(&packet::error(code, &message));
                return;
            }
        };
        let content = match (content, req.mode.as_str()) {
            (Content::Bytes(b), "netascii") => Content::Bytes(to_netascii(&b)),
            (c, _) => c,
        };
        match self.send(&socket, &content, neg) {
            Ok(()) => {
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "tftp: {}: `{name}` sent ({} bytes, blksize {})",
                    self.peer.ip(),
                    content.len(),
                    neg.blksize
                );
            }
            Err(f) => {
                self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                let why = match f {
                    Failed::TimedOut => {
                        let _ = socket.send(&packet::error(
                            ErrorCode::Undefined,
                            "timed out waiting for an acknowledgement",
                        ));
                        "no acknowledgement after every retry".to_string()
                    }
                    Failed::ClientError(code, msg) => {
                        format!("the client ended it (error {code}: {})", printable(&msg))
                    }
                    Failed::Aborted => "the server is stopping".to_string(),
                    Failed::Io(e) => e.to_string(),
                };
                log::debug!("tftp: {}: `{name}` abandoned: {why}", self.peer.ip());
            }
        }
    }

    fn send(&self, socket: &UdpSocket, content: &Content, neg: Negotiated) -> Result<(), Failed> {
        let timeout = neg
            .timeout
            .map_or(self.settings.timeout, |s| Duration::from_secs(u64::from(s)));
        let mut accepted: Vec<(&str, String)> = Vec::new();
        if neg.blksize_asked {
            accepted.push(("blksize", neg.blksize.to_string()));
        }
        if neg.tsize {
            accepted.push(("tsize", content.len().to_string()));
        }
        if let Some(t) = neg.timeout {
            accepted.push(("timeout", t.to_string()));
        }
        let mut recv = vec![0u8; 1024];
        if !accepted.is_empty() {
            let oack = packet::oack(&accepted);
            self.exchange(socket, &oack, 0, timeout, &mut recv)?;
        }
        let blksize = u64::from(neg.blksize);
        let total = content.len();
        let mut pkt = vec![0u8; 4 + neg.blksize as usize];
        let mut index: u64 = 1;
        loop {
            let offset = (index - 1) * blksize;
            let n = blksize.min(total.saturating_sub(offset)) as usize;
            let block = index as u16; // rolls over to 0 after 65535
            pkt[..4].copy_from_slice(&packet::data_header(block));
            match content {
                Content::Bytes(b) => {
                    pkt[4..4 + n].copy_from_slice(&b[offset as usize..offset as usize + n]);
                }
                Content::File(f, _) => {
                    f.read_exact_at(&mut pkt[4..4 + n], offset)
                        .map_err(Failed::Io)?;
                }
            }
            self.exchange(socket, &pkt[..4 + n], block, timeout, &mut recv)?;
            if (n as u64) < blksize {
                return Ok(());
            }
            index += 1;
        }
    }

    /// Sends `out` and waits for the acknowledgement of `block`, sending it again after
    /// each timeout, at most `retries` times.
    fn exchange(
        &self,
        socket: &UdpSocket,
        out: &[u8],
        block: u16,
        timeout: Duration,
        recv: &mut [u8],
    ) -> Result<(), Failed> {
        let mut sent = 0u32;
        loop {
            if self.abort.load(Ordering::Relaxed) {
                return Err(Failed::Aborted);
            }
            socket.send(out).map_err(Failed::Io)?;
            self.stats
                .bytes
                .fetch_add(out.len().saturating_sub(4) as u64, Ordering::Relaxed);
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = socket.set_read_timeout(Some(left));
                match socket.recv(recv) {
                    Ok(n) => match packet::parse(&recv[..n]) {
                        Ok(Packet::Ack(b)) if b == block => return Ok(()),
                        // A duplicate or late acknowledgement: ignored.
                        Ok(Packet::Ack(_)) => {}
                        Ok(Packet::Error { code, message }) => {
                            return Err(Failed::ClientError(code, message));
                        }
                        _ => {
                            let _ = socket.send(&packet::error(
                                ErrorCode::IllegalOperation,
                                "expected an acknowledgement",
                            ));
                        }
                    },
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The client's port is closed (ICMP port unreachable): it is gone.
                    Err(e) => return Err(Failed::Io(e)),
                }
            }
            sent += 1;
            if sent > self.settings.retries {
                return Err(Failed::TimedOut);
            }
        }
    }
}

/// A file in netascii: CR LF for LF, CR NUL for a lone CR (RFC 764).
fn to_netascii(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

/// A client-sent name for logs: printable, at most 120 characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(120).collect()
}
