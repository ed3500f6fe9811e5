//! Device authentication: HTTP Basic everywhere, MD5 Digest offered on plain HTTP, and the
//! per-IP throttle for wrong credentials.
//!
//! Phones send credentials only after a 401, so a request without any is a challenge, not a
//! failure. Only wrong credentials count, per source IP (never per MAC, which would let
//! anyone lock a victim phone out), and valid credentials are never throttled. Digest nonces
//! are stateless: a timestamp signed with the installation's secret.
//!
//! Credentials are checked against the account's current generation first. Only when those
//! do not match does the caller supply the older generations Auto-Sync still accepts for the
//! one device the request names (`check_generations`); a request is counted as a failure
//! only when none matches. The outcome says which generation matched: that is the evidence
//! that confirms a credential change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac as _};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::config::AuthConfig;
use crate::domain::account::{Account, AccountId};
use crate::domain::hex;

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Valid credentials; the user and password the phone used, and their generation.
    Ok {
        user: String,
        password: String,
        generation: i64,
    },
    /// No credentials: answer with a challenge.
    Missing,
    /// Wrong credentials (counted).
    Bad,
    /// A Digest response with an expired nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong credentials from an IP over the limit: 429 with Retry-After (seconds).
    Throttled(u64),
}

/// The generation an `Outcome::Ok` carries when the request authenticated with the device's
/// own credential (user = its MAC) rather than an account credential generation.
pub const DEVICE_CREDENTIAL: i64 = -1;

impl Outcome {
    /// Whether the request authenticated with the device's own credential.
    pub fn is_device_credential(&self) -> bool {
        matches!(self, Outcome::Ok { generation, .. } if *generation == DEVICE_CREDENTIAL)
    }

    /// The label stored in the access log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Missing | Outcome::Stale => "none",
            Outcome::Bad => "bad",
            Outcome::Throttled(_) => "throttled",
        }
    }
}

struct Attempts {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// Device authentication for all accounts.
pub struct DeviceAuth {
    pub realm: String,
    digest: bool,
    secret: Vec<u8>,
    config: AuthConfig,
    attempts: Mutex<HashMap<IpAddr, Attempts>>,
    /// Wrong credentials per account, from any address (a distributed guess).
    account_attempts: Mutex<HashMap<AccountId, Attempts>>,
}

type HmacSha256 = Hmac<Sha256>;

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

impl DeviceAuth {
    pub fn new(realm: &str, digest: bool, secret: &[u8], config: &AuthConfig) -> DeviceAuth {
        DeviceAuth {
            realm: realm.to_string(),
            digest,
            secret: secret.to_vec(),
            config: config.clone(),
            attempts: Mutex::new(HashMap::new()),
            account_attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the `Authorization` header of a request against an account's current
    /// credentials.
    pub fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        ip: IpAddr,
        account: &Account,
    ) -> Outcome {
        self.check_generations(authorization, method, uri, ip, account, Vec::new)
    }

    /// Checks the `Authorization` header against the account's current credentials, then,
    /// only if they do not match, against `older()`: the `(generation, user, password)`
    /// triples Auto-Sync accepts for the device the request names (called lazily, since it
    /// reads the database). Wrong credentials count once, after every candidate failed.
    pub fn check_generations(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        ip: IpAddr,
        account: &Account,
        older: impl FnOnce() -> Vec<(i64, String, String)>,
    ) -> Outcome {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Outcome::Missing;
        };
        if let (Some(user), Some(password)) = (
            account.device_user.as_deref(),
            account.device_password.as_deref(),
        ) {
            match self.verify(header, method, uri, user, password) {
                Verdict::Good => {
                    return Outcome::Ok {
                        user: user.to_string(),
                        password: password.to_string(),
                        generation: account.credential_generation,
                    };
                }
                Verdict::Stale => return Outcome::Stale,
                Verdict::Bad => {}
            }
        }
        for (generation, user, password) in older() {
            match self.verify(header, method, uri, &user, &password) {
                Verdict::Good => {
                    return Outcome::Ok {
                        user,
                        password,
                        generation,
                    };
                }
                Verdict::Stale => return Outcome::Stale,
                Verdict::Bad => {}
            }
        }
        self.failed(ip, account.id)
    }

    /// Checks one credential pair without counting anything.
    fn verify(&self, header: &str, method: &str, uri: &str, user: &str, password: &str) -> Verdict {
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            self.check_basic(rest.trim(), user, password)
        } else if scheme.eq_ignore_ascii_case("digest") {
            self.check_digest(rest, method, uri, user, password)
        } else {
            Verdict::Bad
        }
    }

    fn check_basic(&self, token: &str, user: &str, password: &str) -> Verdict {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return Verdict::Bad;
        };
        let expected = format!("{user}:{password}");
        if ct_eq(&decoded, expected.as_bytes()) {
            Verdict::Good
        } else {
            Verdict::Bad
        }
    }

    fn check_digest(
        &self,
        params: &str,
        method: &str,
        uri: &str,
        user: &str,
        password: &str,
    ) -> Verdict {
        let p = parse_digest(params);
        let get = |k: &str| p.get(k).map(String::as_str);
        let (Some(username), Some(realm), Some(nonce), Some(duri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return Verdict::Bad;
        };
        if !get("algorithm").is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            || realm != self.realm
            || duri != uri
        {
            return Verdict::Bad;
        }
        let ha1 = md5_hex(&format!("{user}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{duri}"));
        let expected = match get("qop") {
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Verdict::Bad;
                };
                md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            }
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
            Some(_) => return Verdict::Bad,
        };
        if !(ct_eq(username.as_bytes(), user.as_bytes())
            && ct_eq(
                expected.as_bytes(),
                response.to_ascii_lowercase().as_bytes(),
            ))
        {
            return Verdict::Bad;
        }
        match self.nonce_age(nonce) {
            Some(age) if age <= self.config.nonce_lifetime_secs => Verdict::Good,
            // Right password, old nonce: not a failure.
            Some(_) => Verdict::Stale,
            None => Verdict::Bad,
        }
    }

    /// A fresh nonce: timestamp and its signature.
    pub fn nonce(&self) -> String {
        let ts = crate::db::now_secs().to_string();
        format!("{ts}.{}", self.sign(&ts))
    }

    fn sign(&self, ts: &str) -> String {
        // HMAC accepts keys of any length.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        mac.update(ts.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// Seconds since a nonce we issued was made; `None` if we did not issue it.
    fn nonce_age(&self, nonce: &str) -> Option<u64> {
        let (ts, sig) = nonce.split_once('.')?;
        if !ct_eq(self.sign(ts).as_bytes(), sig.as_bytes()) {
            return None;
        }
        let ts: i64 = ts.parse().ok()?;
        Some((crate::db::now_secs() - ts).max(0) as u64)
    }

    /// `WWW-Authenticate` values for a 401: Basic, plus Digest on plain HTTP.
    pub fn challenges(&self, secure: bool, stale: bool) -> Vec<String> {
        let mut out = Vec::with_capacity(2);
        if self.digest && !secure {
            out.push(format!(
                "Digest realm=\"{}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\"{}",
                self.realm,
                self.nonce(),
                if stale { ", stale=true" } else { "" }
            ));
        }
        out.push(format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm));
        out
    }

    /// Counts a wrong attempt from `ip` for `account`: throttled when either the address or
    /// the account (wrong guesses from many addresses) is over its limit. Only wrong
    /// attempts reach here, so valid credentials are never refused.
    fn failed(&self, ip: IpAddr, account: AccountId) -> Outcome {
        let now = Instant::now();
        let window = Duration::from_secs(self.config.failure_window_secs);
        let block = Duration::from_secs(self.config.block_secs);
        let by_ip = count_failure(
            &self.attempts,
            ip,
            now,
            window,
            block,
            self.config.failure_limit,
        );
        let by_account = count_failure(
            &self.account_attempts,
            account,
            now,
            window,
            block,
            self.config.account_failure_limit,
        );
        match (by_ip, by_account) {
            (Some(secs), _) => {
                if secs == block.as_secs() {
                    log::warn!(
                        "device auth: {ip} sent too many wrong credentials; throttled for {secs}s"
                    );
                }
                Outcome::Throttled(secs)
            }
            (None, Some(secs)) => {
                if secs == block.as_secs() {
                    log::warn!(
                        "device auth: account {} got too many wrong credentials from all \
                         addresses; wrong attempts throttled for {secs}s",
                        account.0
                    );
                }
                Outcome::Throttled(secs)
            }
            (None, None) => Outcome::Bad,
        }
    }

    /// IPs currently throttled (for the health page and metrics).
    pub fn throttled_ips(&self) -> usize {
        blocked(&self.attempts)
    }

    /// Accounts whose wrong attempts are currently throttled (for metrics).
    pub fn throttled_accounts(&self) -> usize {
        blocked(&self.account_attempts)
    }

    /// The limits in force (for metrics).
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }
}

fn blocked<K>(map: &Mutex<HashMap<K, Attempts>>) -> usize {
    let now = Instant::now();
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .filter(|a| a.blocked_until.is_some_and(|b| b > now))
        .count()
}

/// Counts one failure of `key` in a fixed window; `Some(seconds)` when it is (now) blocked.
fn count_failure<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Attempts>>,
    key: K,
    now: Instant,
    window: Duration,
    block: Duration,
    limit: u32,
) -> Option<u64> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() > 100_000 {
        map.retain(|_, a| {
            a.blocked_until.is_some_and(|b| b > now) || now - a.window_start < window
        });
    }
    let a = map.entry(key).or_insert(Attempts {
        window_start: now,
        failures: 0,
        blocked_until: None,
    });
    if let Some(until) = a.blocked_until {
        if until > now {
            return Some((until - now).as_secs().max(1));
        }
        a.blocked_until = None;
        a.failures = 0;
        a.window_start = now;
    }
    if now - a.window_start > window {
        a.window_start = now;
        a.failures = 0;
    }
    a.failures += 1;
    if a.failures > limit {
        a.blocked_until = Some(now + block);
        return Some(block.as_secs());
    }
    None
}

enum Verdict {
    Good,
    Bad,
    Stale,
}

/// Parses `k=v, k="v", …` of a Digest header.
fn parse_digest(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &r[end.min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.insert(key, value);
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountId, UnknownDevices};

    fn account() -> Account {
        Account {
            id: AccountId(1),
            name: "D".into(),
            slug: "default".into(),
            service_key: "k".into(),
            is_default: true,
            provisioning_enabled: true,
            device_user: Some("PlcmSpIp".into()),
            device_password: Some("PlcmSpIpSecret".into()),
            credential_generation: 1,
            autosync_enabled: true,
            unknown_devices: UnknownDevices::Stage,
            default_profile_id: None,
            device_secrets: false,
        }
    }

    fn auth(limit: u32) -> DeviceAuth {
        DeviceAuth::new(
            "zerotouch",
            true,
            b"secret",
            &AuthConfig {
                failure_limit: limit,
                ..Default::default()
            },
        )
    }

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn no_credentials_is_a_challenge_not_a_failure() {
        let a = auth(1);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..10 {
            assert_eq!(a.check(None, "GET", "/x", ip, &account()), Outcome::Missing);
        }
        assert_eq!(
            a.check(
                Some(&basic("PlcmSpIp", "wrong")),
                "GET",
                "/x",
                ip,
                &account()
            ),
            Outcome::Bad
        );
    }

    #[test]
    fn wrong_credentials_are_throttled_but_valid_ones_never() {
        let a = auth(3);
        let ip: IpAddr = "10.0.0.2".parse().expect("ip");
        let acc = account();
        for _ in 0..3 {
            assert_eq!(
                a.check(Some(&basic("x", "y")), "GET", "/", ip, &acc),
                Outcome::Bad
            );
        }
        assert!(matches!(
            a.check(Some(&basic("x", "y")), "GET", "/", ip, &acc),
            Outcome::Throttled(_)
        ));
        assert!(matches!(
            a.check(
                Some(&basic("PlcmSpIp", "PlcmSpIpSecret")),
                "GET",
                "/",
                ip,
                &acc
            ),
            Outcome::Ok { .. }
        ));
        let other: IpAddr = "10.0.0.3".parse().expect("ip");
        assert_eq!(
            a.check(Some(&basic("x", "y")), "GET", "/", other, &acc),
            Outcome::Bad
        );
    }

    #[test]
    fn digest_with_qop_auth_is_verified() {
        let a = auth(5);
        let nonce = a.nonce();
        let ha1 = md5_hex("PlcmSpIp:zerotouch:PlcmSpIpSecret");
        let ha2 = md5_hex("GET:/0004f2aabbcc.cfg");
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        let header = format!(
            "Digest username=\"PlcmSpIp\", realm=\"zerotouch\", nonce=\"{nonce}\", uri=\"/0004f2aabbcc.cfg\", \
             qop=auth, nc=00000001, cnonce=\"abc\", response=\"{response}\", algorithm=MD5"
        );
        let ip: IpAddr = "10.0.0.4".parse().expect("ip");
        assert!(matches!(
            a.check(Some(&header), "GET", "/0004f2aabbcc.cfg", ip, &account()),
            Outcome::Ok { .. }
        ));
        // The same response for another URI is refused.
        assert_eq!(
            a.check(Some(&header), "GET", "/other.cfg", ip, &account()),
            Outcome::Bad
        );
    }

    #[test]
    fn older_generations_are_tried_only_after_the_current_one_and_counted_once() {
        let a = auth(1);
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        let acc = account();
        let mut asked = 0;
        let ok = a.check_generations(
            Some(&basic("PlcmSpIp", "PlcmSpIpSecret")),
            "GET",
            "/",
            ip,
            &acc,
            || {
                asked += 1;
                Vec::new()
            },
        );
        assert!(matches!(ok, Outcome::Ok { generation: 1, .. }));
        assert_eq!(asked, 0, "the current generation needs no lookup");
        let old = || vec![(0, "old".to_string(), "old-password".to_string())];
        assert!(matches!(
            a.check_generations(
                Some(&basic("old", "old-password")),
                "GET",
                "/",
                ip,
                &acc,
                old
            ),
            Outcome::Ok { generation: 0, .. }
        ));
        // Two wrong attempts with a limit of one: the second is throttled, not the first,
        // so trying the older generation did not count as a failure of its own.
        assert_eq!(
            a.check_generations(Some(&basic("x", "y")), "GET", "/", ip, &acc, old),
            Outcome::Bad
        );
        assert!(matches!(
            a.check_generations(Some(&basic("x", "y")), "GET", "/", ip, &acc, old),
            Outcome::Throttled(_)
        ));
    }

    #[test]
    fn forged_nonces_are_refused() {
        let a = auth(5);
        assert_eq!(a.nonce_age("123.deadbeef"), None);
        assert!(a.nonce_age(&a.nonce()).is_some_and(|age| age < 5));
    }
}
