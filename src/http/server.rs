//! Listeners of our own HTTP/1.1 loop: accept connections, enforce the connection cap, and
//! give each connection its own thread running `conn::serve`.
//!
//! Why our own loop rather than rouille's bundled server: see `docs/architecture.md` (no
//! TCP_NODELAY, connections starved behind idle keep-alive ones, no idle timeout, outdated
//! TLS without client certificates). Handlers stay rouille handlers. TLS plugs in as another
//! `Transport`: the acceptor hands the TCP stream to a wrapper before `serve`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::{self, LoopLimits, Service, Shared};

/// Stack size of a connection thread: handlers render small documents and query SQLite;
/// most connections are idle phones, so small stacks keep memory low.
const CONN_STACK: usize = 256 * 1024;

/// Turns an accepted TCP stream into a served connection (plain, or TLS in a later layer).
pub trait Acceptor: Send + Sync {
    fn serve(&self, stream: TcpStream, service: &dyn Service, limits: &LoopLimits, shared: &Shared);
}

/// Plain HTTP.
pub struct PlainAcceptor;

impl Acceptor for PlainAcceptor {
    fn serve(
        &self,
        stream: TcpStream,
        service: &dyn Service,
        limits: &LoopLimits,
        shared: &Shared,
    ) {
        conn::serve(stream, service, limits, shared);
    }
}

/// Connection counting shared by all listeners of a server.
pub struct Connections {
    pub open: AtomicUsize,
    pub max: usize,
    pub refused: AtomicUsize,
}

/// One running listener.
pub struct Listener {
    pub name: &'static str,
    pub addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

/// The set of listeners of one server, and what they share.
pub struct Server {
    pub listeners: Vec<Listener>,
    pub shared: Arc<Shared>,
    pub connections: Arc<Connections>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn new(max_connections: usize, memory_budget: usize) -> Server {
        Server {
            listeners: Vec::new(),
            shared: Arc::new(Shared {
                stopping: AtomicBool::new(false),
                memory_in_use: AtomicUsize::new(0),
                memory_budget,
            }),
            connections: Arc::new(Connections {
                open: AtomicUsize::new(0),
                max: max_connections,
                refused: AtomicUsize::new(0),
            }),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts accepting on `listener` with `service`.
    pub fn add(
        &mut self,
        name: &'static str,
        listener: TcpListener,
        service: Arc<dyn Service>,
        acceptor: Arc<dyn Acceptor>,
        limits: LoopLimits,
    ) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        let conns = self.connections.clone();
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("accept-{name}"))
            .spawn(move || {
                accept_loop(listener, service, acceptor, limits, shared, conns, stop);
            })?;
        self.listeners.push(Listener {
            name,
            addr,
            thread: Some(thread),
        });
        Ok(addr)
    }

    /// Stops accepting, lets open connections finish their current request, and waits up
    /// to `drain` for them to close.
    pub fn shutdown(&mut self, drain: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.stopping.store(true, Ordering::SeqCst);
        for l in &mut self.listeners {
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&wake_addr(l.addr), Duration::from_millis(200));
            if let Some(t) = l.thread.take() {
                let _ = t.join();
            }
        }
        let deadline = Instant::now() + drain;
        while self.connections.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A listener bound to 0.0.0.0 is woken through loopback.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// Decrements the open-connection count when a connection thread ends, however it ends.
struct ConnSlot(Arc<Connections>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    service: Arc<dyn Service>,
    acceptor: Arc<dyn Acceptor>,
    limits: LoopLimits,
    shared: Arc<Shared>,
    conns: Arc<Connections>,
    stop: Arc<AtomicBool>,
) {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = stream.set_nodelay(true);
        let open = conns.open.fetch_add(1, Ordering::SeqCst);
        let slot = ConnSlot(conns.clone());
        if open >= conns.max {
            conns.refused.fetch_add(1, Ordering::Relaxed);
            conn::refuse_busy(&mut stream);
            drop(slot);
            continue;
        }
        let service = service.clone();
        let acceptor = acceptor.clone();
        let limits = limits.clone();
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                acceptor.serve(stream, service.as_ref(), &limits, &shared);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}
