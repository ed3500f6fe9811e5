//! Sending a file to a plain socket with sendfile(2), and the hook a listener sets to run
//! before a send that may hold its thread for long (a firmware image to a slow phone).

use std::io::{self, Read};
use std::net::TcpStream;

/// What to do before a send that may block for long (a firmware image).
type BeforeLongSend = std::sync::Arc<dyn Fn() + Send + Sync>;

thread_local! {
    /// Set by the listener that runs this connection thread (`server`'s parking threads:
    /// make sure another thread waits for parked connections meanwhile).
    static BEFORE_LONG_SEND: std::cell::RefCell<Option<BeforeLongSend>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets (or clears) what this thread does before a send that may block for long.
pub fn set_before_long_send(hook: Option<BeforeLongSend>) {
    BEFORE_LONG_SEND.with(|h| *h.borrow_mut() = hook);
}

/// Called before a send that may block for long: runs this thread's hook, if any.
fn blocking_ahead() {
    BEFORE_LONG_SEND.with(|h| {
        if let Some(hook) = h.borrow().as_ref() {
            hook();
        }
    });
}

/// Sends `n` bytes of `file`, from its current position, to a plain socket with sendfile(2):
/// the kernel copies page cache to socket, nothing passes through user space. (`io::copy`
/// from a file to a `TcpStream` was measured doing 8 KiB reads and writes: 1.2 million
/// `sendto` calls for 200 phones fetching a 50 MB image, and 3.6 times nginx's CPU.)
/// Returns the bytes sent, fewer when the file ended early. Falls back to copying where
/// the kernel refuses sendfile for this file.
pub(super) fn send_file(socket: &TcpStream, file: &mut std::fs::File, n: u64) -> io::Result<u64> {
    if n > BLOCKING_SEND {
        blocking_ahead();
    }
    let mut sent = 0u64;
    while sent < n {
        let chunk = usize::try_from(n - sent)
            .unwrap_or(usize::MAX)
            .min(0x7fff_f000);
        match rustix::fs::sendfile(socket, &*file, None, chunk) {
            Ok(0) => break,
            Ok(k) => sent += k as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if sent == 0 => {
                let mut out = socket;
                return io::copy(&mut file.take(n), &mut out);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

/// Files larger than this may hold the thread for long while the client reads them.
const BLOCKING_SEND: u64 = 1 << 20;
