//! Answering a Digest challenge (RFC 2617 / RFC 3261 §22.4, MD5 only, `qop=auth` when
//! offered). A Poly phone with `voIpProt.SIP.requestValidation.N.method="digest"` challenges
//! a request "with digest authentication using the local credentials for the associated
//! registration (line)", in the realm `voIpProt.SIP.requestValidation.digest.realm`
//! (default `PolycomSPIP`) — Polycom SoundPoint IP Administrator's Guide (SIP 2.2, Request
//! Validation) and the VVX Administrator's Guide Addendum for UC Software 4.1.6.
//!
//! The answer is a proof computed over the line's SIP password: it is given only once per
//! transaction, only to the address the request went to, and only for the realm the caller
//! expects (`transaction.rs`). The password never appears in `Debug` output.

use md5::{Digest, Md5};

/// The line credentials a challenge may be answered with, and the realm expected.
#[derive(Clone)]
pub struct DigestCredentials {
    pub user: String,
    pub password: String,
    /// The realm a challenge must name to be answered; `None` answers any realm.
    pub expected_realm: Option<String>,
}

impl std::fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("expected_realm", &self.expected_realm)
            .finish()
    }
}

/// A `WWW-Authenticate` or `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Option<String>,
    /// The qop values offered (`auth`, `auth-int`).
    pub qop: Vec<String>,
}

impl Challenge {
    /// Parses a Digest challenge; `None` for other schemes, a missing realm or nonce, or
    /// malformed parameters.
    pub fn parse(value: &str) -> Option<Challenge> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: None,
            qop: Vec::new(),
        };
        let (mut realm, mut nonce) = (None, None);
        for (k, v) in params(rest)? {
            match k.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => c.opaque = Some(v),
                "algorithm" => c.algorithm = Some(v),
                "qop" => {
                    c.qop = v
                        .split(',')
                        .map(|q| q.trim().to_ascii_lowercase())
                        .filter(|q| !q.is_empty())
                        .collect()
                }
                _ => {}
            }
        }
        c.realm = realm?;
        c.nonce = nonce?;
        Some(c)
    }

    /// Whether we can answer it: MD5 (or no algorithm named), and if a qop is offered,
    /// `auth` among them.
    pub fn answerable(&self) -> bool {
        let md5 = self
            .algorithm
            .as_deref()
            .is_none_or(|a| a.eq_ignore_ascii_case("MD5"));
        md5 && (self.qop.is_empty() || self.qop.iter().any(|q| q == "auth"))
    }

    /// The `Authorization` value answering this challenge for `method` on `uri`.
    pub fn authorization(
        &self,
        creds: &DigestCredentials,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let qop = (!self.qop.is_empty()).then_some("auth");
        let nc = "00000001";
        let response = response(
            &creds.user,
            &self.realm,
            &creds.password,
            method,
            uri,
            &self.nonce,
            qop.map(|q| (nc, cnonce, q)),
        );
        let mut s = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
            quote(&creds.user),
            quote(&self.realm),
            quote(&self.nonce),
        );
        if let Some(q) = qop {
            s.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        s
    }
}

/// The Digest `response` value: `MD5(HA1:nonce:HA2)`, or with qop
/// `MD5(HA1:nonce:nc:cnonce:qop:HA2)`, where `HA1 = MD5(user:realm:password)` and
/// `HA2 = MD5(method:uri)`.
pub fn response(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce, qop)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A value inside a quoted-string: quotes and backslashes escaped, line breaks dropped.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// `k=v, k="quoted, value"` pairs; `None` when malformed.
fn params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        if out.len() >= 32 {
            return None;
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_gives_its_response() {
        // RFC 2617 §3.5 (an HTTP example; the computation is the same).
        let r = response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b", "auth")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn a_challenge_is_parsed_with_quoted_commas_and_any_case() {
        let c = Challenge::parse(
            "digest realm=\"PolycomSPIP\", nonce=\"a,b\", qop=\"auth,auth-int\", opaque=\"o\", algorithm=MD5",
        )
        .expect("parses");
        assert_eq!(c.realm, "PolycomSPIP");
        assert_eq!(c.nonce, "a,b");
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        assert!(c.answerable());
    }

    #[test]
    fn unanswerable_or_malformed_challenges_are_not_answered() {
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
        assert!(Challenge::parse("Digest nonce=\"n\"").is_none());
        assert!(Challenge::parse("Digest realm=\"unterminated, nonce=n").is_none());
        let sha = Challenge::parse("Digest realm=r, nonce=n, algorithm=SHA-256").expect("parses");
        assert!(!sha.answerable());
        let int_only =
            Challenge::parse("Digest realm=r, nonce=n, qop=\"auth-int\"").expect("parses");
        assert!(!int_only.answerable());
    }

    #[test]
    fn the_password_is_never_in_debug_output() {
        let c = DigestCredentials {
            user: "1001".into(),
            password: "s3cret-line".into(),
            expected_realm: None,
        };
        assert!(!format!("{c:?}").contains("s3cret-line"));
    }
}
