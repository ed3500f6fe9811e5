//! Listeners of our own HTTP/1.1 loop: accept connections, enforce the connection cap, and
//! give each connection its own thread running `conn::serve`.
//!
//! Why our own loop rather than rouille's bundled server: see `docs/architecture.md` (no
//! TCP_NODELAY, connections starved behind idle keep-alive ones, no idle timeout, outdated
//! TLS without client certificates). Handlers stay rouille handlers. TLS plugs in as another
//! `Transport`: the acceptor hands the TCP stream to a wrapper before `serve`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::{self, LoopLimits, Service, Shared};
use crate::domain::ipnet::{IpNet, any_contains};

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
    /// Most connections from one address (`limits.max_connections_per_ip`), except from
    /// the allowlisted networks (sites behind one NAT address).
    pub max_per_ip: usize,
    pub allow: Vec<IpNet>,
    /// Connections refused because their address had `max_per_ip` open.
    pub refused_per_ip: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Connections {
    /// Takes a slot for a connection from `ip`; false when the address is at its cap.
    fn take_ip(&self, ip: IpAddr) -> bool {
        if self.max_per_ip == usize::MAX || any_contains(&self.allow, ip) {
            return true;
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        if self.max_per_ip == usize::MAX || any_contains(&self.allow, ip) {
            return;
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }

    /// Addresses with at least one open connection (for metrics).
    pub fn addresses(&self) -> usize {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
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
                max_per_ip: usize::MAX,
                allow: Vec::new(),
                refused_per_ip: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
            }),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Caps the connections from one address (except from `allow`). Call before `add`.
    pub fn with_per_ip_cap(mut self, max_per_ip: usize, allow: Vec<IpNet>) -> Server {
        if let Some(c) = Arc::get_mut(&mut self.connections) {
            c.max_per_ip = max_per_ip;
            c.allow = allow;
        }
        self
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

/// Decrements the open-connection counts when a connection thread ends, however it ends.
struct ConnSlot(Arc<Connections>, Option<IpAddr>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(ip) = self.1 {
            self.0.release_ip(ip);
        }
    }
}

/// How long a connection thread waits for another connection after its last one closed,
/// before it ends. Phones arrive in bursts (a boot storm, a polling hour): reusing threads
/// spares a thread creation per connection, which measured as the largest single cost of
/// serving a phone that makes a few requests on a new connection.
const WORKER_IDLE: Duration = Duration::from_secs(30);

/// What the accept thread hands to a connection thread.
type Accepted = (TcpStream, ConnSlot);

/// Everything a connection thread needs to serve connections of one listener.
#[derive(Clone)]
struct Worker {
    service: Arc<dyn Service>,
    acceptor: Arc<dyn Acceptor>,
    limits: LoopLimits,
    shared: Arc<Shared>,
    next: crossbeam_channel::Receiver<Accepted>,
}

impl Worker {
    /// Serves `first`, then further connections handed over while idle threads are wanted.
    fn run(self, first: Accepted) {
        let mut current = Some(first);
        while let Some((stream, slot)) = current.take() {
            self.acceptor
                .serve(stream, self.service.as_ref(), &self.limits, &self.shared);
            drop(slot);
            current = self.next.recv_timeout(WORKER_IDLE).ok();
        }
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
    // A zero-capacity channel: a hand-over succeeds only when a thread is idle and waiting,
    // so every open connection still has a thread of its own.
    let (handoff, next) = crossbeam_channel::bounded::<Accepted>(0);
    let worker = Worker {
        service,
        acceptor,
        limits,
        shared,
        next,
    };
    loop {
        let (mut stream, peer) = match listener.accept() {
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
        let mut slot = ConnSlot(conns.clone(), None);
        if open >= conns.max {
            conns.refused.fetch_add(1, Ordering::Relaxed);
            conn::refuse_busy(&mut stream);
            drop(slot);
            continue;
        }
        // One address may not take every slot (slowloris from one host); the total cap
        // above still bounds many addresses together, and head timeouts free slow ones.
        if !conns.take_ip(peer.ip()) {
            conns.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            conn::refuse_busy(&mut stream);
            drop(slot);
            continue;
        }
        slot.1 = Some(peer.ip());
        let accepted = match handoff.try_send((stream, slot)) {
            Ok(()) => continue,
            Err(crossbeam_channel::TrySendError::Full(a))
            | Err(crossbeam_channel::TrySendError::Disconnected(a)) => a,
        };
        let w = worker.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || w.run(accepted));
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use rouille::{Request, Response};

    use super::*;
    use crate::http::conn::Peer;

    struct Panicky;

    impl Service for Panicky {
        fn handle(&self, request: &Request, _peer: &Peer) -> Response {
            if request.url() == "/panic" {
                panic!("handler bug");
            }
            Response::text("fine")
        }
    }

    fn limits() -> LoopLimits {
        LoopLimits {
            head_bytes: 8192,
            body_bytes: 1024,
            head_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(2),
        }
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
        let mut server = Server::new(16, 1 << 20);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server
            .add(
                "test",
                listener,
                Arc::new(Panicky),
                Arc::new(PlainAcceptor),
                limits(),
            )
            .expect("add");
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let crashed = get(addr, "/panic");
        std::panic::set_hook(prev);
        assert!(crashed.starts_with("HTTP/1.1 500"), "{crashed}");
        for _ in 0..3 {
            assert!(get(addr, "/ok").starts_with("HTTP/1.1 200"));
        }
        server.shutdown(Duration::from_secs(2));
        assert_eq!(server.connections.open.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn shutdown_stops_accepting_and_drains() {
        let mut server = Server::new(16, 1 << 20);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server
            .add(
                "test",
                listener,
                Arc::new(Panicky),
                Arc::new(PlainAcceptor),
                limits(),
            )
            .expect("add");
        assert!(get(addr, "/ok").contains("fine"));
        server.shutdown(Duration::from_secs(2));
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .map(|mut s| {
                    let _ = write!(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                    let mut b = [0u8; 1];
                    matches!(s.read(&mut b), Ok(0) | Err(_))
                })
                .unwrap_or(true)
        );
    }
}
