//! TLS for the connection loop: the handshake, under its own deadline, in the connection's
//! own thread, then the same `conn::serve` as plain HTTP over a `rustls::StreamOwned`.
//!
//! A client that connects and sends nothing, half a ClientHello, or garbage is dropped when
//! the handshake deadline passes or rustls refuses the bytes (with an alert); either way
//! its thread ends and its connection slot is freed. The identity of a verified client
//! certificate is computed once per connection and handed to the loop through
//! `Transport::identity`; the loop passes it to handlers in the internal
//! `x-zerotouch-client-cert` header (after removing client-sent copies), so a handler
//! never sees an identity the TLS layer did not verify.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::conn::{self, LoopLimits, Service, Shared, Transport};
use super::server::Acceptor;
use crate::tls::SharedConfig;
use crate::tls::inspect::ClientIdentity;

/// Accepts TLS connections with the current configuration of a `SharedConfig`.
pub struct TlsAcceptor {
    pub config: Arc<SharedConfig>,
    pub handshake_timeout: Duration,
}

/// A TLS connection after its handshake.
pub struct TlsStream {
    inner: StreamOwned<ServerConnection, TcpStream>,
    identity: Option<String>,
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for TlsStream {
    fn tcp(&self) -> &TcpStream {
        self.inner.get_ref()
    }

    fn secure(&self) -> bool {
        true
    }

    fn identity(&self) -> Option<String> {
        self.identity.clone()
    }
}

impl Drop for TlsStream {
    /// Ends the session with close_notify, best effort (the write timeout bounds it).
    fn drop(&mut self) {
        self.inner.conn.send_close_notify();
        while self.inner.conn.wants_write() {
            if !matches!(self.inner.conn.write_tls(&mut self.inner.sock), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// Runs the handshake until done, the peer gives up or misbehaves, or the deadline passes.
/// `None`: the connection is to be dropped (the reason is logged at debug level).
pub fn handshake(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<StreamOwned<ServerConnection, TcpStream>> {
    let peer = tcp.peer_addr().ok()?;
    let mut conn = match ServerConnection::new(config) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("tls: cannot start a session: {e}");
            return None;
        }
    };
    let deadline = Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("tls: {peer}: handshake timed out");
            return None;
        }
        if tcp.set_read_timeout(Some(left)).is_err() || tcp.set_write_timeout(Some(left)).is_err() {
            return None;
        }
        if let Err(e) = conn.complete_io(&mut tcp) {
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    log::debug!("tls: {peer}: handshake timed out");
                }
                _ => log::debug!("tls: {peer}: handshake failed: {e}"),
            }
            return None;
        }
    }
    Some(StreamOwned::new(conn, tcp))
}

/// The header value for the connection's verified client certificate, if it sent one.
fn identity(conn: &ServerConnection) -> Option<String> {
    let der = conn.peer_certificates()?.first()?;
    match ClientIdentity::from_der(der) {
        Ok(id) => Some(id.to_header()),
        Err(e) => {
            // rustls verified it, so this does not happen; never treat it as anonymous.
            log::warn!("tls: a verified client certificate could not be read: {e}");
            Some(
                ClientIdentity {
                    mac: crate::tls::inspect::MacClaim::Ambiguous,
                    sha256: crate::domain::sha256_hex(der),
                    subject: String::new(),
                }
                .to_header(),
            )
        }
    }
}

impl Acceptor for TlsAcceptor {
    fn serve(
        &self,
        stream: TcpStream,
        service: &dyn Service,
        limits: &LoopLimits,
        shared: &Shared,
    ) {
        let Some(inner) = handshake(stream, self.config.current(), self.handshake_timeout) else {
            return;
        };
        let identity = identity(&inner.conn);
        conn::serve(TlsStream { inner, identity }, service, limits, shared);
    }
}
