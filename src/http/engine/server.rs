//! Listeners of our own HTTP/1.1 loop: accept connections, enforce the connection caps, and
//! serve them — plain HTTP on a pool of threads that park idle connections in an epoll set
//! (`Parking`), TLS with a thread per connection running `conn::serve`.
//!
//! Why our own loop rather than rouille's bundled server (no TCP_NODELAY, connections
//! starved behind idle keep-alive ones, no idle timeout, outdated TLS without client
//! certificates): docs/architecture.md, "The connection loop". Handlers stay rouille
//! handlers. TLS plugs in as another `Transport`: the acceptor hands the TCP stream to a
//! wrapper before `serve`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::{self, LiveLimits, LoopLimits, Service, Shared};
use crate::domain::ipnet::{IpNet, any_contains};

/// Stack size of a connection thread: handlers render small documents and query SQLite;
/// most connections are idle phones, so small stacks keep memory low.
const CONN_STACK: usize = 256 * 1024;

/// Starts a connection thread (small stack: see `CONN_STACK`).
fn spawn_conn_thread(f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("conn".into())
        .stack_size(CONN_STACK)
        .spawn(f)
        .map(drop)
}

/// Turns an accepted TCP stream into a served connection (plain, or TLS in a later layer).
pub trait Acceptor: Send + Sync {
    fn serve(&self, stream: TcpStream, service: &dyn Service, limits: &LoopLimits, shared: &Shared);

    /// Whether idle connections of this listener wait in the listener's epoll set instead
    /// of each holding a thread (plain HTTP; TLS connections keep their threads).
    fn parks(&self) -> bool {
        false
    }
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

    fn parks(&self) -> bool {
        true
    }
}

/// Connection counting shared by all listeners of a server.
pub struct Connections {
    pub open: AtomicUsize,
    /// Most connections open at once; changed while serving by `set_caps` (SIGHUP).
    pub max: AtomicUsize,
    pub refused: AtomicUsize,
    /// Most connections from one address (`limits.max_connections_per_ip`), except from
    /// the allowlisted networks (sites behind one NAT address).
    pub max_per_ip: AtomicUsize,
    allow: RwLock<Vec<IpNet>>,
    /// Connections refused because their address had `max_per_ip` open.
    pub refused_per_ip: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Whether a connection from an address was let in, and whether it counts against the
/// address's cap (then its slot gives the count back when it closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admitted {
    Counted,
    Uncounted,
    Refused,
}

impl Connections {
    /// Puts new caps in force (SIGHUP). Connections open stay; what they counted against
    /// an address is given back as before, so counts stay right across the change.
    pub fn set_caps(&self, max: usize, max_per_ip: usize, allow: Vec<IpNet>) {
        self.max.store(max, Ordering::SeqCst);
        self.max_per_ip.store(max_per_ip, Ordering::SeqCst);
        *self.allow.write().unwrap_or_else(|p| p.into_inner()) = allow;
    }

    /// Takes a slot for a connection from `ip`, unless the address is at its cap.
    fn take_ip(&self, ip: IpAddr) -> Admitted {
        let max = self.max_per_ip.load(Ordering::SeqCst);
        if max == usize::MAX
            || any_contains(&self.allow.read().unwrap_or_else(|p| p.into_inner()), ip)
        {
            return Admitted::Uncounted;
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return Admitted::Refused;
        }
        *n += 1;
        Admitted::Counted
    }

    /// Gives back a slot `take_ip` counted.
    fn release_ip(&self, ip: IpAddr) {
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
    pub fn new(max_connections: usize) -> Server {
        Server {
            listeners: Vec::new(),
            shared: Arc::new(Shared {
                stopping: AtomicBool::new(false),
            }),
            connections: Arc::new(Connections {
                open: AtomicUsize::new(0),
                max: AtomicUsize::new(max_connections),
                refused: AtomicUsize::new(0),
                max_per_ip: AtomicUsize::new(usize::MAX),
                allow: RwLock::new(Vec::new()),
                refused_per_ip: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
            }),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Caps the connections from one address (except from `allow`). Call before `add`.
    pub fn with_per_ip_cap(self, max_per_ip: usize, allow: Vec<IpNet>) -> Server {
        let max = self.connections.max.load(Ordering::SeqCst);
        self.connections.set_caps(max, max_per_ip, allow);
        self
    }

    /// Starts accepting on `listener` with `service`.
    pub fn add(
        &mut self,
        name: &'static str,
        listener: TcpListener,
        service: Arc<dyn Service>,
        acceptor: Arc<dyn Acceptor>,
        limits: Arc<LiveLimits>,
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
    limits: Arc<LiveLimits>,
    shared: Arc<Shared>,
    next: crossbeam_channel::Receiver<Accepted>,
}

impl Worker {
    /// Serves `first`, then further connections handed over while idle threads are wanted.
    fn run(self, first: Accepted) {
        let mut current = Some(first);
        while let Some((stream, slot)) = current.take() {
            self.acceptor.serve(
                stream,
                self.service.as_ref(),
                &self.limits.get(),
                &self.shared,
            );
            drop(slot);
            current = self.next.recv_timeout(WORKER_IDLE).ok();
        }
    }
}

/// Idle plain-HTTP connections of one listener, waiting for their next request in an epoll
/// set instead of each blocking a thread. Threads take whichever connection becomes
/// readable, serve it until it is idle again, and park it back (one-shot registrations:
/// an event goes to exactly one thread). So threads number the requests in progress plus
/// a few waiting, not the connections open: 5,000 idle phones cost their sockets and
/// buffers, not 5,000 stacks, and a thread that finishes a response finds the next ready
/// connection without sleeping, which spares a context switch per request under load.
/// A thread that blocks (a firmware download, a slow upload, a database wait) keeps its
/// connection; when no thread is left waiting, another one starts.
struct Parking {
    epoll: rustix::fd::OwnedFd,
    slots: Mutex<Slots>,
    service: Arc<dyn Service>,
    limits: Arc<LiveLimits>,
    shared: Arc<Shared>,
    /// Threads in `epoll_wait`, and threads started but not yet waiting.
    waiting: AtomicUsize,
    starting: AtomicUsize,
    threads: AtomicUsize,
    /// Threads started without waiting for the supervisor: enough to keep the cores busy.
    floor: usize,
    max_threads: usize,
    /// Connections served and parked again or closed, for the supervisor to see progress.
    completions: std::sync::atomic::AtomicU64,
    /// Milliseconds since `epoch` of the last sweep for idle timeouts.
    last_sweep: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

/// A parked connection with what the listener counts for it.
struct Parked {
    open: conn::Open<TcpStream>,
    _slot: ConnSlot,
    since: Instant,
    /// Registered in the epoll set already (then re-armed, not added).
    registered: bool,
}

/// Parked connections by slot index; a token is index and generation, so an event for a
/// connection that has since gone never resumes the one that reused its slot.
#[derive(Default)]
struct Slots {
    entries: Vec<(u32, Option<Parked>)>,
    free: Vec<u32>,
}

/// How long a waiting thread sleeps before looking at shutdown and idle timeouts.
const PARK_POLL: Duration = Duration::from_millis(500);
/// How often the supervisor looks for a pool whose threads are all blocked, while some
/// serve, and while all wait.
const SUPERVISE_EVERY: Duration = Duration::from_millis(2);
const SUPERVISE_IDLE: Duration = Duration::from_millis(20);

impl Parking {
    fn new(
        service: Arc<dyn Service>,
        limits: Arc<LiveLimits>,
        shared: Arc<Shared>,
        max_threads: usize,
    ) -> std::io::Result<Arc<Parking>> {
        let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)?;
        Ok(Arc::new(Parking {
            epoll,
            slots: Mutex::new(Slots::default()),
            service,
            limits,
            shared,
            waiting: AtomicUsize::new(0),
            starting: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
            floor: 4 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_threads: max_threads.max(2),
            completions: std::sync::atomic::AtomicU64::new(0),
            last_sweep: std::sync::atomic::AtomicU64::new(0),
            epoch: Instant::now(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks a connection until it is readable (or closed by the peer).
    fn park(&self, open: conn::Open<TcpStream>, slot: ConnSlot) {
        self.repark(Parked {
            open,
            _slot: slot,
            since: Instant::now(),
            registered: false,
        });
    }

    fn repark(&self, mut parked: Parked) {
        use rustix::event::epoll;
        let mut slots = self.lock();
        let index = match slots.free.pop() {
            Some(i) => i,
            None => {
                slots.entries.push((0, None));
                u32::try_from(slots.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let Some(entry) = slots.entries.get_mut(index as usize) else {
            return;
        };
        let generation = entry.0.wrapping_add(1);
        let token = epoll::EventData::new_u64(u64::from(index) | (u64::from(generation) << 32));
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT;
        // Registered while the lock is held: nobody can take (and close) the connection
        // between the registration and its entry being in place.
        let fd = &parked.open.stream;
        let armed = if parked.registered {
            epoll::modify(&self.epoll, fd, token, flags)
        } else {
            epoll::add(&self.epoll, fd, token, flags)
        };
        match armed {
            Ok(()) => {
                parked.registered = true;
                *entry = (generation, Some(parked));
            }
            Err(e) => {
                // Dropped: the connection closes, which beats a connection nobody serves.
                log::warn!("cannot park a connection: {e}");
                entry.0 = generation;
                slots.free.push(index);
            }
        }
    }

    /// Takes the connection a token names, if it is still parked.
    fn take(&self, token: u64) -> Option<Parked> {
        let index = (token & 0xffff_ffff) as usize;
        let generation = (token >> 32) as u32;
        let mut slots = self.lock();
        let entry = slots.entries.get_mut(index)?;
        if entry.0 != generation {
            return None;
        }
        let parked = entry.1.take()?;
        slots.free.push(index as u32);
        Some(parked)
    }

    /// Closes parked connections idle past the listener's idle timeout (all of them when
    /// stopping). At most one sweep per poll interval, whichever thread gets there.
    fn sweep(&self) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_sweep.load(Ordering::Relaxed);
        let stopping = self.shared.stopping.load(Ordering::Relaxed);
        if !stopping && now_ms.saturating_sub(last) < PARK_POLL.as_millis() as u64 {
            return;
        }
        if self
            .last_sweep
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let idle = self.limits.get().idle_timeout;
        let now = Instant::now();
        let mut closing = Vec::new();
        {
            let mut slots = self.lock();
            let Slots { entries, free } = &mut *slots;
            for (i, entry) in entries.iter_mut().enumerate() {
                if entry
                    .1
                    .as_ref()
                    .is_some_and(|p| stopping || now.duration_since(p.since) >= idle)
                {
                    closing.extend(entry.1.take());
                    entry.0 = entry.0.wrapping_add(1);
                    free.push(i as u32);
                }
            }
        }
        // Closed outside the lock; closing a socket also leaves the epoll set.
        drop(closing);
    }

    /// Starts a thread when none is left waiting for parked connections, up to the floor.
    /// Past it, only the supervisor adds threads: busy threads that make progress will be
    /// back for the next connection in microseconds, and more of them would only share the
    /// same cores.
    fn ensure_waiter(self: &Arc<Self>) {
        if self.threads.load(Ordering::SeqCst) < self.floor {
            self.add_waiter();
        }
    }

    /// Looks every `SUPERVISE_EVERY` while connections are being served: when no thread
    /// waits and none finished anything since the last look, every thread is blocked
    /// (firmware downloads, slow uploads, database waits). If a parked connection is ready
    /// meanwhile, a new thread starts with it; if none is, nothing is needed.
    fn supervise(self: Arc<Self>) {
        use rustix::event::epoll;
        let mut last = self.completions.load(Ordering::SeqCst);
        let mut events: Vec<epoll::Event> = Vec::with_capacity(1);
        let now_only = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        while !self.shared.stopping.load(Ordering::Relaxed) {
            let busy = self.threads.load(Ordering::SeqCst) > self.waiting.load(Ordering::SeqCst);
            std::thread::sleep(if busy {
                SUPERVISE_EVERY
            } else {
                SUPERVISE_IDLE
            });
            let now = self.completions.load(Ordering::SeqCst);
            let stalled = now == last
                && self.waiting.load(Ordering::SeqCst) == 0
                && self.starting.load(Ordering::SeqCst) == 0;
            last = now;
            if !stalled || self.threads.load(Ordering::SeqCst) >= self.max_threads {
                continue;
            }
            events.clear();
            let _ = epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                Some(&now_only),
            );
            if let Some(token) = events.first().map(|e| e.data.u64()) {
                self.spawn(Some(token));
            }
        }
    }

    fn add_waiter(self: &Arc<Self>) {
        if self.waiting.load(Ordering::SeqCst) > 0 || self.starting.load(Ordering::SeqCst) > 0 {
            return;
        }
        if self.threads.load(Ordering::SeqCst) >= self.max_threads {
            return;
        }
        self.spawn(None);
    }

    /// Starts a connection thread, serving `first` (a ready connection's token) at once.
    fn spawn(self: &Arc<Self>, first: Option<u64>) {
        self.starting.fetch_add(1, Ordering::SeqCst);
        self.threads.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        if let Err(e) = spawn_conn_thread(move || me.run(first)) {
            self.starting.fetch_sub(1, Ordering::SeqCst);
            self.threads.fetch_sub(1, Ordering::SeqCst);
            log::warn!("cannot start a connection thread: {e}");
            // The connection it was to serve waits for the next free thread.
            if let Some(parked) = first.and_then(|t| self.take(t)) {
                self.repark(parked);
            }
        }
    }

    /// A connection thread: wait for a parked connection to become readable, serve it
    /// until idle, park it again. A thread that finds `floor` others already waiting ends
    /// (blocking is over; spare threads only cost memory); so does one idle past
    /// `WORKER_IDLE` while another waits.
    fn run(self: Arc<Self>, first: Option<u64>) {
        use rustix::event::epoll;
        let mut events: Vec<epoll::Event> = Vec::with_capacity(1);
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: PARK_POLL.as_nanos() as i64,
        };
        let mut idle_since = Instant::now();
        {
            let parking = self.clone();
            conn::set_before_long_send(Some(Arc::new(move || parking.add_waiter())));
        }
        let mut next = first;
        if next.is_none() {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        self.starting.fetch_sub(1, Ordering::SeqCst);
        loop {
            let token = match next.take() {
                Some(t) => t,
                None => {
                    events.clear();
                    let waited = epoll::wait(
                        &self.epoll,
                        rustix::buffer::spare_capacity(&mut events),
                        Some(&timeout),
                    );
                    if matches!(waited, Err(ref e) if *e != rustix::io::Errno::INTR) {
                        log::warn!("epoll wait failed: {waited:?}");
                        std::thread::sleep(PARK_POLL);
                    }
                    let Some(t) = events.first().map(|e| e.data.u64()) else {
                        self.sweep();
                        if self.shared.stopping.load(Ordering::Relaxed)
                            || (idle_since.elapsed() >= WORKER_IDLE
                                && self.waiting.load(Ordering::SeqCst) > 1)
                        {
                            self.waiting.fetch_sub(1, Ordering::SeqCst);
                            break;
                        }
                        continue;
                    };
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    t
                }
            };
            if let Some(mut parked) = self.take(token) {
                // Someone must be waiting while this thread serves.
                self.ensure_waiter();
                let after = parked.open.serve(
                    self.service.as_ref(),
                    &self.limits.get(),
                    &self.shared,
                    true,
                );
                if after == conn::After::Idle && !self.shared.stopping.load(Ordering::Relaxed) {
                    parked.since = Instant::now();
                    self.repark(parked);
                } else {
                    drop(parked);
                }
                self.completions.fetch_add(1, Ordering::SeqCst);
            }
            if self.waiting.load(Ordering::SeqCst) >= self.floor
                && self.threads.load(Ordering::SeqCst) > self.floor
            {
                break;
            }
            self.waiting.fetch_add(1, Ordering::SeqCst);
            idle_since = Instant::now();
        }
        conn::set_before_long_send(None);
        self.threads.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    service: Arc<dyn Service>,
    acceptor: Arc<dyn Acceptor>,
    limits: Arc<LiveLimits>,
    shared: Arc<Shared>,
    conns: Arc<Connections>,
    stop: Arc<AtomicBool>,
) {
    // The thread cap follows `max_connections` as it was at start (a reload changes the
    // connection cap, not the pool already sized).
    let max_threads = conns.max.load(Ordering::SeqCst);
    let parking = if acceptor.parks() {
        match Parking::new(service.clone(), limits.clone(), shared.clone(), max_threads) {
            Ok(p) => {
                let supervisor = p.clone();
                if let Err(e) = std::thread::Builder::new()
                    .name("conn-supervisor".into())
                    .spawn(move || supervisor.supervise())
                {
                    log::warn!("cannot start the connection supervisor: {e}");
                }
                Some(p)
            }
            Err(e) => {
                log::warn!("no epoll set ({e}); every connection keeps a thread");
                None
            }
        }
    } else {
        None
    };
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
        if open >= conns.max.load(Ordering::Relaxed) {
            conns.refused.fetch_add(1, Ordering::Relaxed);
            conn::refuse_busy(&mut stream);
            drop(slot);
            continue;
        }
        // One address may not take every slot (slowloris from one host); the total cap
        // above still bounds many addresses together, and head timeouts free slow ones.
        match conns.take_ip(peer.ip()) {
            Admitted::Refused => {
                conns.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                conn::refuse_busy(&mut stream);
                drop(slot);
                continue;
            }
            Admitted::Counted => slot.1 = Some(peer.ip()),
            Admitted::Uncounted => {}
        }
        if let Some(parking) = &parking {
            // A new connection waits like an idle one: its first request arrives with it or
            // soon after, and whichever thread is free serves it.
            if let Some(open) = conn::Open::new(stream, &parking.limits.get()) {
                parking.park(open, slot);
                parking.ensure_waiter();
            }
            continue;
        }
        let accepted = match handoff.try_send((stream, slot)) {
            Ok(()) => continue,
            Err(crossbeam_channel::TrySendError::Full(a))
            | Err(crossbeam_channel::TrySendError::Disconnected(a)) => a,
        };
        let w = worker.clone();
        if let Err(e) = spawn_conn_thread(move || w.run(accepted)) {
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use rouille::{Request, Response};

    use super::*;
    use crate::http::engine::conn::Peer;

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
            body_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(2),
            memory: Arc::new(crate::http::engine::budget::BodyBudget::new(1 << 20)),
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
        let mut server = Server::new(16);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server
            .add(
                "test",
                listener,
                Arc::new(Panicky),
                Arc::new(PlainAcceptor),
                LiveLimits::new(limits()),
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
        let mut server = Server::new(16);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server
            .add(
                "test",
                listener,
                Arc::new(Panicky),
                Arc::new(PlainAcceptor),
                LiveLimits::new(limits()),
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
