//! An HTTP client as strict as the simulated phones (`Conn`, over `sim::Client` rules) and
//! the `Phone` helper that fetches and uploads as one device.

use super::*;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 connection with a hand-written client: every request byte is ours.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Like `open`, from a local address of our choosing (127.0.0.2, 127.0.0.3, …: other
    /// clients on loopback).
    pub fn open_from(local: std::net::IpAddr, addr: SocketAddr) -> Conn {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(local, 0).into())
            .expect("bind the local address");
        socket.connect(&addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and reads its response. `headers` are added after Host.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.stream.peer_addr().expect("peer")
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "PUT" || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
        self.read_response(method == "HEAD").expect("response")
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self, head_only: bool) -> Option<Resp> {
        let end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return self.read_response(head_only);
        }
        if head_only || status == 204 || status == 304 {
            return Some(resp);
        }
        let mut resp = resp;
        if let Some(len) = resp
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < len {
                if !self.fill() {
                    return None;
                }
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.fill() {
                        return None;
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )
                .ok()?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill() {
                        return None;
                    }
                }
                resp.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Whether the server closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).expect("timeout");
        let mut b = [0u8; 1];
        let closed = matches!(self.stream.read(&mut b), Ok(0))
            || matches!(self.stream.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        closed
    }
}

/// A phone's HTTP client for tests that choose each request themselves: the simulator's
/// client (`sim::Client`), so it is as strict as `SimPhone`. It keeps one keep-alive
/// connection, sends no credentials on a connection's first request, answers the 401 as
/// its `WWW-Authenticate` offers (Digest preferred, like phones; `basic_only` forces
/// Basic), and sends credentials at once on later requests of an authenticated connection.
/// A connection the server closes with `Connection: close` is followed by a new one (which
/// starts without credentials again); one it drops without notice fails the test unless
/// `allow_drops` was called (idle-timeout tests).
pub struct Phone {
    pub addr: SocketAddr,
    pub mac: String,
    pub ua: String,
    pub user: String,
    pub password: String,
    client: crate::sim::Client,
    allow_drops: bool,
}

impl Phone {
    pub fn new(addr: SocketAddr, mac: &str, ua: &str, user: &str, password: &str) -> Phone {
        Phone {
            addr,
            mac: mac.into(),
            ua: ua.into(),
            user: user.into(),
            password: password.into(),
            client: crate::sim::Client::new(crate::sim::AuthMode::PreferDigest),
            allow_drops: false,
        }
    }

    /// Answers challenges with Basic only.
    pub fn basic_only(mut self) -> Phone {
        self.client.mode = crate::sim::AuthMode::Basic;
        self
    }

    /// Answers challenges with Digest only.
    pub fn digest_only(mut self) -> Phone {
        self.client.mode = crate::sim::AuthMode::Digest;
        self
    }

    /// Binds its sockets to this local address.
    pub fn bind(mut self, local: std::net::IpAddr) -> Phone {
        self.client.local = Some(local);
        self
    }

    /// Lets the server drop idle keep-alive connections (counted, then reconnected).
    pub fn allow_drops(mut self) -> Phone {
        self.allow_drops = true;
        self
    }

    /// Every request so far (a 401 and its answer are two).
    pub fn requests(&self) -> &[crate::sim::Request] {
        &self.client.log
    }

    /// Connections opened, closed by the server, dropped.
    pub fn conn_stats(&self) -> crate::sim::ConnStats {
        self.client.stats
    }

    /// Sends a request, answering a 401 as offered.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Resp {
        self.request_with(method, path, &[], body)
    }

    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let target = crate::sim::Target {
            scheme: "http".into(),
            host: self.addr.to_string(),
            path: path.to_string(),
        };
        let drops = self.client.stats.drops;
        let r = self
            .client
            .send(&crate::sim::Outgoing {
                method,
                target: &target,
                user_agent: &self.ua,
                headers: extra,
                body,
                credentials: (!self.user.is_empty())
                    .then_some((self.user.as_str(), self.password.as_str())),
                keep_body: true,
            })
            .unwrap_or_else(|e| panic!("{method} {path}: no response: {e}"));
        assert!(
            self.allow_drops || self.client.stats.drops == drops,
            "{method} {path}: {:?}",
            self.client.events
        );
        Resp {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, b"")
    }
}
