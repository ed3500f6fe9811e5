//! Any bytes as what a client sends on one connection: `conn::serve` must answer or close,
//! never panic, never loop, and never write more than a bounded amount per request.
#![no_main]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rouille::{Request, Response};
use zerotouch::http::conn::{self, LoopLimits, Peer, Service, Shared, Transport};

/// A real loopback socket (the loop sets timeouts on it and asks its peer address); the
/// bytes themselves come from memory.
fn socket() -> &'static TcpStream {
    static S: OnceLock<(TcpListener, TcpStream, TcpStream)> = OnceLock::new();
    let (_, c, _) = S.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("loopback");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        (l, c, s)
    });
    c
}

struct Memory<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl Read for Memory<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads, so heads and bodies arrive in pieces like they do on a network.
        let n = buf.len().min(self.input.len()).min(97);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Memory<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Memory<'_> {
    fn tcp(&self) -> &TcpStream {
        socket()
    }
}

struct Echo;

impl Service for Echo {
    fn handle(&self, request: &Request, _peer: &Peer) -> Response {
        let mut body = Vec::new();
        if let Some(mut d) = request.data() {
            let _ = d.read_to_end(&mut body);
        }
        Response::from_data("application/octet-stream", body)
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = LoopLimits {
        head_bytes: 4096,
        body_bytes: 8192,
        head_timeout: Duration::from_millis(50),
        body_timeout: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(50),
    };
    let shared = Shared {
        stopping: AtomicBool::new(false),
        memory_in_use: AtomicUsize::new(0),
        memory_budget: 1 << 20,
    };
    let mut output = Vec::new();
    let m = Memory {
        input: data,
        output: &mut output,
    };
    conn::serve(m, &Echo, &limits, &shared);
    assert_eq!(
        shared.memory_in_use.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "memory accounting leaked"
    );
    // Every response echoes at most one body of the limit: output stays proportional.
    assert!(output.len() <= 2048 + data.len() * 64);
});
