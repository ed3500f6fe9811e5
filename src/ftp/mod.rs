//! The FTP engine: an FTP server (libunftp) that knows nothing of provisioning. It runs
//! whatever `Files` it is given: the files check a login, map a path to bytes or a
//! refusal, and store an upload; the engine does the rest — control and passive data
//! connections in the configured port range (PASV and EPSV; active mode is off: PORT would
//! let a client aim our data connections anywhere), REST, SIZE, MDTM, STOR and APPE, and
//! explicit FTPS (`AUTH TLS`, `PBSZ`, `PROT P`) with the rustls configuration it is given.
//!
//! libunftp is asynchronous: its tokio runtime lives in one thread of this module and
//! nowhere else. Every call into `Files` runs on tokio's blocking pool, so the application
//! stays synchronous. Nothing here imports the application (`tests/it/layers.rs`).
//! Listings reveal nothing: every directory lists empty. Sessions logged in at once are
//! capped, in all and per address (`backend::Caps`).

mod backend;

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use backend::{Backend, Logins, Sessions, User};

/// Who logged in: the USER and PASS as sent, and the client's address. The files decide
/// what they mean on every request.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub ip: IpAddr,
    /// Whether the control connection is protected by TLS (explicit FTPS).
    pub secure: bool,
}

/// What a read gets: a stream from the requested offset, with the file's full length and
/// modification time.
pub struct Content {
    pub body: Box<dyn Read + Send>,
    /// The whole file's length (SIZE), not what is left after the offset.
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// Why a request is refused; the engine turns it into the FTP reply of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 550: no such file (or not for this login).
    NotFound,
    /// 550: permission denied (wrong credentials for this file, a file that cannot be
    /// stored or read over FTP).
    Denied,
    /// 553: the name is not allowed (traversal, control characters).
    BadName,
    /// 552: over the size cap or the device's quota.
    TooLarge,
    /// 450: busy (too many transfers at once); try again later.
    Busy,
    /// 451: a local error (logged).
    Failed,
}

/// What the FTP listener serves. Called on a blocking thread, never on the runtime.
pub trait Files: Send + Sync + 'static {
    /// Whether USER/PASS from `ip` may log in (the reply to a refusal is 530).
    fn login(&self, login: &Login) -> bool;
    /// RETR (`verb` "RETR"), SIZE and MDTM (`verb` "SIZE"/"MDTM": the body is not read):
    /// the file at `path` (absolute, as the client named it relative to its working
    /// directory), from byte `start`.
    fn read(
        &self,
        login: &Login,
        path: &str,
        verb: &'static str,
        start: u64,
    ) -> Result<Content, Refusal>;
    /// STOR and APPE: stores `body` at `path`, after the first `keep` bytes of the file
    /// already there (APPE, or REST then STOR; 0: replaces it), whole or not at all.
    /// Returns the bytes received.
    fn store(
        &self,
        login: &Login,
        path: &str,
        body: &mut dyn Read,
        keep: u64,
    ) -> Result<u64, Refusal>;
    /// CWD: whether `path` may be a working directory.
    fn enter(&self, login: &Login, path: &str) -> Result<(), Refusal>;
}

/// The listener's settings.
#[derive(Clone)]
pub struct Settings {
    pub passive_ports: RangeInclusive<u16>,
    pub idle: Duration,
    /// How long running transfers may go on after a stop is asked.
    pub grace: Duration,
    /// How long an upload may take in all (then it is refused, nothing stored).
    pub upload_deadline: Duration,
    /// Most sessions logged in at once, in all and from one address (unless `exempt`);
    /// a login over either gets 530.
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    pub exempt: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    /// Explicit FTPS (`AUTH TLS`, `PBSZ`, `PROT P`) with this configuration; plain FTP
    /// stays allowed.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Counters for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub logins: AtomicU64,
    /// Logins refused because too many sessions were logged in.
    pub busy: AtomicU64,
    pub refused_logins: AtomicU64,
    pub reads: AtomicU64,
    pub stores: AtomicU64,
    pub refused: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
}

impl Stats {
    pub(crate) fn count(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running listener.
pub struct Handle {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops taking connections and waits for the runtime to end (running transfers get
    /// the grace period of the settings).
    pub fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `addr` and starts the listener in a thread of its own, with its runtime.
pub fn start(addr: SocketAddr, settings: Settings, files: Arc<dyn Files>) -> io::Result<Handle> {
    // Bound here so that an address in use is reported at start, and port 0 resolved; the
    // library binds it again when it starts listening.
    let probe = TcpListener::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    let stats = Arc::new(Stats::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("ftp")
        .build()?;
    let sessions = Sessions::default();
    let backend_files = files.clone();
    let backend_stats = stats.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = settings.grace;
    let upload_deadline = settings.upload_deadline;
    let server = libunftp::ServerBuilder::<Backend, User>::with_user_detail_provider::<User>(
        Box::new(move || Backend {
            files: backend_files.clone(),
            stats: backend_stats.clone(),
            upload_deadline,
        }),
        Arc::new(sessions.clone()),
    )
    .authenticator(Arc::new(Logins {
        files,
        stats: stats.clone(),
        sessions,
        caps: backend::Caps::new(
            settings.max_sessions,
            settings.max_sessions_per_ip,
            settings.exempt.clone(),
        ),
    }))
    .greeting("zerotouch provisioning (FTP sends credentials in clear)")
    .passive_ports(settings.passive_ports.clone())
    .idle_session_timeout(settings.idle.as_secs())
    .logger(slog::Logger::root(slog::Discard, slog::o!()))
    .shutdown_indicator(async move {
        let _ = stop_rx.await;
        libunftp::options::Shutdown::new().grace_period(grace)
    });
    let server = match settings.tls.clone() {
        Some(tls) => server.ftps_manual::<std::path::PathBuf>(tls),
        None => server,
    }
    .build()
    .map_err(|e| io::Error::other(e.to_string()))?;
    let (failed_tx, failed_rx) = std::sync::mpsc::channel::<String>();
    let thread = std::thread::Builder::new()
        .name("ftp".into())
        .spawn(move || {
            if let Err(e) = runtime.block_on(server.listen(addr.to_string())) {
                log::error!("ftp: the listener on {addr} stopped: {e}");
                let _ = failed_tx.send(e.to_string());
            }
        })?;
    let handle = Handle {
        addr,
        stats,
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    // On failure the handle is dropped, and with it the stop signal: the thread ends.
    wait_listening(addr, &failed_rx)?;
    Ok(handle)
}

/// Returns once the library listens on `addr` (it binds in its own thread), or its error.
fn wait_listening(addr: SocketAddr, failed: &std::sync::mpsc::Receiver<String>) -> io::Result<()> {
    let probe = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(why) = failed.try_recv() {
            return Err(io::Error::other(why));
        }
        if std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the FTP listener did not start listening",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
