//! TFTP boot load: N phones, each reading its three files over TFTP (octet, 512-byte
//! blocks, no options, as a phone's bootROM does): `000000000000.cfg`, `<mac>-stage.cfg` and
//! a firmware image. C phones at once, each on its own UDP socket per transfer, so the
//! server sees as many transfer IDs as a storm of phones. A transfer that gets an error
//! packet or no answer within 5 s counts as failed (a "server busy" answer is retried after
//! 100 ms, as phones retry).
//!
//! A measuring tool, not a test: run it through `scripts/bench-tftp.sh`, which starts
//! zerotouch and tftpd-hpa serving the same bytes. Run alone:
//!   cargo bench --bench tftp -- --server 127.0.0.1:6969 --phones 2000 --concurrency 32 \
//!     --image firmware/1.0/sip.ld
//! Prints one line: `phones=… files=… failed=… bytes=… seconds=… files_per_sec=…`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    server: SocketAddr,
    phones: usize,
    concurrency: usize,
    image: String,
}

fn args() -> Args {
    let mut a = Args {
        server: "127.0.0.1:69".parse().expect("addr"),
        phones: 2000,
        concurrency: 32,
        image: "firmware/1.0/sip.ld".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("a value");
        match k.as_str() {
            "--server" => a.server = v().parse().expect("--server IP:PORT"),
            "--phones" => a.phones = v().parse().expect("--phones N"),
            "--concurrency" => a.concurrency = v().parse().expect("--concurrency N"),
            "--image" => a.image = v(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.server.ip().is_loopback(), "loopback servers only");
    a
}

/// One read; the bytes received, or why not.
fn read(server: SocketAddr, name: &str) -> Result<u64, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(name.as_bytes());
    rrq.extend_from_slice(b"\0octet\0");
    s.send_to(&rrq, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1024];
    let mut expected: u16 = 1;
    let mut total = 0u64;
    let mut peer: Option<SocketAddr> = None;
    loop {
        let (n, from) = s.recv_from(&mut buf).map_err(|e| format!("{name}: {e}"))?;
        if peer.is_some_and(|p| p != from) {
            continue;
        }
        peer = Some(from);
        if n < 4 {
            return Err(format!("{name}: short packet"));
        }
        match buf[1] {
            3 => {
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                s.send_to(&[0, 4, buf[2], buf[3]], from)
                    .map_err(|e| e.to_string())?;
                if block == expected {
                    total += (n - 4) as u64;
                    if n - 4 < 512 {
                        return Ok(total);
                    }
                    expected = expected.wrapping_add(1);
                }
            }
            5 => {
                let msg = String::from_utf8_lossy(&buf[4..n]).into_owned();
                return Err(format!("{name}: error {}: {msg}", buf[3]));
            }
            _ => return Err(format!("{name}: unexpected opcode {}", buf[1])),
        }
    }
}

fn main() {
    let a = args();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let files = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (next, failed, bytes, files) =
                (next.clone(), failed.clone(), bytes.clone(), files.clone());
            let (server, phones, image) = (a.server, a.phones, a.image.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= phones {
                        return;
                    }
                    let mac = format!("0004f2{:06x}", i);
                    for name in [
                        "000000000000.cfg".to_string(),
                        format!("{mac}-stage.cfg"),
                        image.clone(),
                    ] {
                        let mut tries = 0;
                        loop {
                            match read(server, &name) {
                                Ok(n) => {
                                    bytes.fetch_add(n, Ordering::Relaxed);
                                    files.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) if e.contains("busy") && tries < 50 => {
                                    tries += 1;
                                    std::thread::sleep(Duration::from_millis(100));
                                    continue;
                                }
                                Err(e) => {
                                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                                        eprintln!("failed: {e}");
                                    }
                                }
                            }
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let f = files.load(Ordering::Relaxed);
    println!(
        "phones={} files={f} failed={} bytes={} seconds={secs:.2} files_per_sec={:.0}",
        a.phones,
        failed.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        f as f64 / secs
    );
}
