//! Device authentication: HTTP Basic everywhere, MD5 Digest offered on plain HTTP, and the
//! per-IP throttle for wrong credentials.
//!
//! Phones send credentials only after a 401, so a request without any is a challenge, not a
//! failure. Only wrong credentials count, per source IP (never per MAC, which would let
//! anyone lock a victim phone out), and valid credentials are never throttled. Digest nonces
//! are a timestamp and a random part signed with the installation's secret.
//!
//! Digest replays: a `qop=auth` response is accepted once per (nonce, nc) — a bounded cache
//! remembers the pairs used while their nonce is valid — and a response without `qop`
//! (RFC 2069, which has no counter) only for GET and HEAD. A replayed pair or an expired
//! nonce with the right password is `Stale`: a new challenge with `stale=true`, never a
//! failure (no throttling, no failure log, not a refused device), because embedded clients
//! re-send one header on later requests and must be able to answer the fresh nonce.
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
use crate::domain::machine::Candidate;

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
    /// Credentials the state machine recognises (an account generation, an own password)
    /// but refuses for this request: challenged again, and counted as a failure only where
    /// the machine says so.
    Refused {
        generation: i64,
        why: crate::domain::autosync::Refusal,
    },
}

/// The generation an `Outcome::Ok` carries when the request authenticated with the device's
/// own credential (user = its MAC) rather than an account credential generation.
pub const DEVICE_CREDENTIAL: i64 = crate::domain::machine::OWN_CREDENTIAL;

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
            Outcome::Refused { .. } => "refused",
        }
    }
}

struct Attempts {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// The (nonce, nc) pairs of accepted `qop=auth` responses, while their nonce is valid.
/// Bounded: when full, the older half of the nonces is forgotten and every nonce older than
/// them counts as stale from then on (`floor`), so forgetting never re-opens a replay.
#[derive(Default)]
struct Replays {
    /// (the nonce's signature, nc) → the nonce's timestamp.
    seen: HashMap<(u64, u32), i64>,
    /// Nonces issued before this time are stale.
    floor: i64,
}

/// Most (nonce, nc) pairs remembered (about 40 bytes each).
const REPLAY_CAP: usize = 200_000;

impl Replays {
    /// Records a pair; `false` when it was used before or its nonce is older than what is
    /// remembered.
    fn first_use(&mut self, key: (u64, u32), ts: i64, now: i64, lifetime: i64) -> bool {
        if ts < self.floor || self.seen.contains_key(&key) {
            return false;
        }
        if self.seen.len() >= REPLAY_CAP {
            self.seen.retain(|_, t| *t >= now - lifetime);
        }
        if self.seen.len() >= REPLAY_CAP {
            let mut times: Vec<i64> = self.seen.values().copied().collect();
            times.sort_unstable();
            let cutoff = times[times.len() / 2].max(self.floor + 1);
            self.seen.retain(|_, t| *t >= cutoff);
            self.floor = cutoff;
            if ts < self.floor {
                return false;
            }
        }
        self.seen.insert(key, ts);
        true
    }

    /// Whether a pair was used before (without recording it).
    fn used(&self, key: (u64, u32), ts: i64) -> bool {
        ts < self.floor || self.seen.contains_key(&key)
    }
}

/// Device authentication for all accounts.
pub struct DeviceAuth {
    pub realm: String,
    digest: bool,
    secret: Vec<u8>,
    /// Replaced when SIGHUP re-reads the configuration (`reload`).
    config: std::sync::RwLock<AuthConfig>,
    replays: Mutex<Replays>,
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
            config: std::sync::RwLock::new(config.clone()),
            replays: Mutex::new(Replays::default()),
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
    /// only if they do not match, against `older()`: every other credential the state
    /// machine knows for the request (`domain::machine::candidates`, called lazily since it
    /// reads the database), each with its verdict. A recognised but refused credential is
    /// `Refused`, counted as a failure only when the machine says so; anything else wrong
    /// counts once, after every candidate failed.
    pub fn check_generations(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        ip: IpAddr,
        account: &Account,
        older: impl FnOnce() -> Vec<Candidate>,
    ) -> Outcome {
        self.check_as(Use::Record, authorization, method, uri, ip, account, older)
    }

    /// `check_generations` before a request's body is received: a Digest response used
    /// before is refused, but this one is not recorded (the handler's check records it).
    pub fn precheck_generations(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        ip: IpAddr,
        account: &Account,
        older: impl FnOnce() -> Vec<Candidate>,
    ) -> Outcome {
        self.check_as(Use::Peek, authorization, method, uri, ip, account, older)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_as(
        &self,
        using: Use,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        ip: IpAddr,
        account: &Account,
        older: impl FnOnce() -> Vec<Candidate>,
    ) -> Outcome {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Outcome::Missing;
        };
        let request = Req {
            header,
            method,
            uri,
            using,
        };
        if let (Some(user), Some(password)) = (
            account.device_user.as_deref(),
            account.device_password.as_deref(),
        ) {
            match self.verify(&request, user, password) {
                Verdict::Good => {
                    return Outcome::Ok {
                        user: user.to_string(),
                        password: password.to_string(),
                        generation: account.credential_generation,
                    };
                }
                Verdict::Stale => return Outcome::Stale,
                Verdict::Unacceptable => return Outcome::Missing,
                Verdict::Bad => {}
            }
        }
        for c in older() {
            match self.verify(&request, &c.user, &c.password) {
                Verdict::Good => {
                    return match c.verdict {
                        Ok(()) => Outcome::Ok {
                            user: c.user,
                            password: c.password,
                            generation: c.generation,
                        },
                        Err(why) => match c.counts.then(|| self.failed(ip, account.id)) {
                            Some(t @ Outcome::Throttled(_)) => t,
                            _ => Outcome::Refused {
                                generation: c.generation,
                                why,
                            },
                        },
                    };
                }
                Verdict::Stale => return Outcome::Stale,
                Verdict::Unacceptable => return Outcome::Missing,
                Verdict::Bad => {}
            }
        }
        self.failed(ip, account.id)
    }

    /// Checks one credential pair without counting anything.
    fn verify(&self, req: &Req<'_>, user: &str, password: &str) -> Verdict {
        let (scheme, rest) = req.header.split_once(' ').unwrap_or((req.header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            self.check_basic(rest.trim(), user, password)
        } else if scheme.eq_ignore_ascii_case("digest") {
            self.check_digest(rest, req, user, password)
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

    fn check_digest(&self, params: &str, req: &Req<'_>, user: &str, password: &str) -> Verdict {
        let (method, uri) = (req.method, req.uri);
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
        let mut counter = None;
        let expected = match get("qop") {
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Verdict::Bad;
                };
                let Some(n) = (nc.len() == 8)
                    .then(|| u32::from_str_radix(nc, 16).ok())
                    .flatten()
                else {
                    return Verdict::Bad;
                };
                counter = Some(n);
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
        let Some((ts, tag)) = self.nonce_parts(nonce) else {
            return Verdict::Bad;
        };
        let now = crate::db::now_secs();
        let lifetime = self.config().nonce_lifetime_secs as i64;
        if now - ts > lifetime {
            // Right password, old nonce: not a failure.
            return Verdict::Stale;
        }
        let Some(nc) = counter else {
            // RFC 2069 has no counter, so nothing tells a replay from a phone asking again:
            // only for requests that change nothing.
            return if matches!(method, "GET" | "HEAD") {
                Verdict::Good
            } else {
                Verdict::Unacceptable
            };
        };
        let mut replays = self.replays.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match req.using {
            Use::Record => replays.first_use((tag, nc), ts, now, lifetime),
            Use::Peek => !replays.used((tag, nc), ts),
        };
        if fresh {
            Verdict::Good
        } else {
            // Used before: a replay, or a phone re-sending its header. A new nonce either way.
            Verdict::Stale
        }
    }

    /// A fresh nonce: timestamp, a random part, and their signature.
    pub fn nonce(&self) -> String {
        let ts = crate::db::now_secs().to_string();
        let body = format!("{ts}.{}", crate::domain::account::random_token(8));
        format!("{body}.{}", self.sign(&body))
    }

    /// The timestamp of a nonce we issued and a number naming it (from its signature);
    /// `None` if we did not issue it. Nonces of earlier releases (`ts.signature`) are read.
    fn nonce_parts(&self, nonce: &str) -> Option<(i64, u64)> {
        let (body, sig) = nonce.rsplit_once('.')?;
        if !ct_eq(self.sign(body).as_bytes(), sig.as_bytes()) {
            return None;
        }
        let ts: i64 = body.split('.').next()?.parse().ok()?;
        let tag = u64::from_str_radix(sig.get(..16)?, 16).ok()?;
        Some((ts, tag))
    }

    fn sign(&self, ts: &str) -> String {
        // HMAC accepts keys of any length.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        mac.update(ts.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// Seconds since a nonce we issued was made; `None` if we did not issue it.
    #[cfg(test)]
    fn nonce_age(&self, nonce: &str) -> Option<u64> {
        let (ts, _) = self.nonce_parts(nonce)?;
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
        let config = self.config();
        let window = Duration::from_secs(config.failure_window_secs);
        let block = Duration::from_secs(config.block_secs);
        let by_ip = count_failure(&self.attempts, ip, now, window, block, config.failure_limit);
        let by_account = count_failure(
            &self.account_attempts,
            account,
            now,
            window,
            block,
            config.account_failure_limit,
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

    /// The limits in force.
    pub fn config(&self) -> AuthConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts new throttling limits and a new nonce lifetime in force (SIGHUP). Counts and
    /// blocks already running keep going; the next failure is judged by the new limits.
    pub fn reload(&self, config: &AuthConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config.clone();
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
    /// The right password with a nonce that is expired, or a (nonce, nc) used before.
    Stale,
    /// The right password in a form not accepted for this request (RFC 2069 Digest on a
    /// request that stores something): challenged again, not a failure.
    Unacceptable,
}

/// Whether a check records the Digest (nonce, nc) it accepts.
#[derive(Clone, Copy)]
enum Use {
    Record,
    Peek,
}

/// One request's credentials and what they are checked for.
struct Req<'a> {
    header: &'a str,
    method: &'a str,
    uri: &'a str,
    using: Use,
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
mod tests;
