//! HTTP authentication as a phone answers it: the `WWW-Authenticate` challenges of a 401
//! parsed (RFC 7235: several challenges per header, quoted strings), and the
//! `Authorization` value for Basic (RFC 7617) or MD5 Digest (RFC 7616/2617: `qop=auth`, a
//! client nonce, the nonce count kept per server nonce). It decides nothing about when to
//! answer: `client.rs` does.

use std::collections::BTreeMap;

use base64::Engine;
use md5::{Digest as _, Md5};

/// Which schemes a phone answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Digest when the server offers it (as UCS phones with bootROM 4.2.0 and later do),
    /// else Basic.
    PreferDigest,
    /// Basic only, even when Digest is offered (older bootROMs; Poly OS units set to Basic).
    Basic,
    /// Digest only: a phone that refuses to send its password in clear. A server that does
    /// not offer Digest leaves it unauthenticated.
    Digest,
}

/// One challenge: the scheme (lowercase) and its parameters (names lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Whether it is a Digest challenge this phone can answer: MD5 (or no algorithm, which
    /// means MD5) and either no `qop` or one that lists `auth`.
    pub fn is_usable_digest(&self) -> bool {
        self.scheme == "digest"
            && self.param("nonce").is_some()
            && self
                .param("algorithm")
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            && self.param("qop").is_none_or(qop_offers_auth)
    }

    pub fn is_stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }
}

fn qop_offers_auth(qop: &str) -> bool {
    qop.split(',')
        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
}

/// Parses every challenge of the `WWW-Authenticate` header values of a response.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for value in values {
        let mut rest = value.trim();
        while !rest.is_empty() {
            rest = rest.trim_start_matches([',', ' ', '\t']);
            if rest.is_empty() {
                break;
            }
            let end = rest
                .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
                .unwrap_or(rest.len());
            let token = &rest[..end];
            let after = rest[end..].trim_start();
            if let Some(v) = after.strip_prefix('=').filter(|_| !out.is_empty()) {
                // A parameter of the current challenge.
                let (value, left) = value_of(v.trim_start());
                if let Some(c) = out.last_mut() {
                    c.params.insert(token.to_ascii_lowercase(), value);
                }
                rest = left;
            } else {
                out.push(Challenge {
                    scheme: token.to_ascii_lowercase(),
                    params: BTreeMap::new(),
                });
                rest = after;
            }
        }
    }
    out
}

/// A token or quoted-string value, and what follows it.
fn value_of(s: &str) -> (String, &str) {
    if let Some(q) = s.strip_prefix('"') {
        let mut v = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        v.push(n);
                    }
                }
                '"' => return (v, &q[i + 1..]),
                c => v.push(c),
            }
        }
        (v, "")
    } else {
        let end = s.find(',').unwrap_or(s.len());
        (s[..end].trim().to_string(), &s[end..])
    }
}

pub fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// What a connection remembers of a Digest challenge it answered: later requests on the
/// same connection send credentials at once, with the nonce count incremented.
#[derive(Debug, Clone)]
pub struct DigestSession {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `Some("auth")` when the server offered qop=auth.
    pub qop: Option<&'static str>,
    pub algorithm: Option<String>,
    /// Requests sent with this nonce so far.
    pub nc: u32,
}

impl DigestSession {
    pub fn from_challenge(c: &Challenge) -> DigestSession {
        DigestSession {
            realm: c.param("realm").unwrap_or("").to_string(),
            nonce: c.param("nonce").unwrap_or("").to_string(),
            opaque: c.param("opaque").map(String::from),
            qop: c
                .param("qop")
                .filter(|q| qop_offers_auth(q))
                .map(|_| "auth"),
            algorithm: c.param("algorithm").map(String::from),
            nc: 0,
        }
    }

    /// The `Authorization` value for one request; counts the nonce's use.
    pub fn authorization(&mut self, user: &str, password: &str, method: &str, uri: &str) -> String {
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let cnonce = cnonce();
        let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let response = match self.qop {
            Some(qop) => md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce)),
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        let mut h = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri)
        );
        if let Some(a) = &self.algorithm {
            h.push_str(&format!(", algorithm={a}"));
        }
        if let Some(qop) = self.qop {
            h.push_str(&format!(", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            h.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        h
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A fresh client nonce.
fn cnonce() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random bytes");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
