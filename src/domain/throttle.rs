//! The sign-in rate limit: what wrong passwords cost, and whom.
//!
//! The rule:
//! - **Blocks are keyed by address, never by a user alone.** `per_user` wrong passwords for
//!   one user name from one address within `window` block that name *at that address* for
//!   `block`; `per_ip` wrong passwords from one address, whatever the names, block the
//!   address. So a stranger guessing an admin's password blocks only themself: the admin
//!   signs in from any other address, a new one included.
//! - **Distributed guessing is slowed, not locked out.** Past `per_user` wrong passwords
//!   for a name within `window`, from all addresses together, every attempt for that name
//!   waits a pause first: `PAUSE_START`, doubling with each further wrong password, at most
//!   `PAUSE_MAX`. A pause is never a refusal: the right password always gets in, a few
//!   seconds late at worst. An address where the user signed in within a day
//!   (`TRUSTED_FOR`) skips the pause.
//! - Blocks are short and temporary (vaultwarden's lesson); a success clears the counter of
//!   its (user, address), not the address's nor the name's.
//!
//! Kept in memory, bounded: entries are forgotten once expired when there are many, user
//! names are cut to the longest a user can have plus one, and a restart forgets it all,
//! which only helps the legitimate user. Times are passed in; the caller sleeps the pause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the sign-in throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Wrong attempts for one user name from one address within `window` before that name
    /// is blocked at that address; across addresses, the count past which attempts for the
    /// name are paused.
    pub per_user: u32,
    /// Wrong attempts per IP address within `window` before it is blocked.
    pub per_ip: u32,
    pub window: Duration,
    pub block: Duration,
}

/// What an attempt may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password after this pause (zero: at once).
    Proceed(Duration),
    /// Refused: this address, or this name at this address, is blocked for so many seconds.
    Blocked(u64),
}

/// The first pause once a name is past its wrong passwords across addresses.
pub const PAUSE_START: Duration = Duration::from_millis(250);
/// The longest pause.
pub const PAUSE_MAX: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// An address, whatever the names tried from it.
    Ip(String),
    /// A user name at one address.
    Pair(String, String),
    /// A user name from every address: counted for the pause, never blocked.
    User(String),
}

/// How long an address where a user signed in skips that user's pause.
const TRUSTED_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most (user, address) pairs remembered.
const TRUSTED_MAX: usize = 10_000;
/// Entries kept before expired ones are forgotten.
const ENTRIES_MAX: usize = 100_000;
/// Longest user name kept in a key: one more than any user can have
/// (`users::check_username`), so longer names, which cannot exist, share counters.
const NAME_MAX: usize = 65;

/// Failure counters by address, by (user, address) and by user.
pub struct LoginThrottle {
    limits: ThrottleLimits,
    entries: Mutex<HashMap<Key, Entry>>,
    /// `(user, ip)` of recent successful sign-ins, and when.
    trusted: Mutex<HashMap<(String, String), Instant>>,
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> LoginThrottle {
        LoginThrottle {
            limits,
            entries: Mutex::new(HashMap::new()),
            trusted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an attempt for `user` from `ip` may go on now, and after what pause.
    pub fn check(&self, ip: &str, user: &str, now: Instant) -> Verdict {
        let user = name(user);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let blocked = [
            Key::Ip(ip.to_string()),
            Key::Pair(user.clone(), ip.to_string()),
        ]
        .iter()
        .filter_map(|k| entries.get(k)?.blocked_until)
        .filter(|until| *until > now)
        .map(|until| (until - now).as_secs().max(1))
        .max();
        if let Some(wait) = blocked {
            return Verdict::Blocked(wait);
        }
        let failures = entries
            .get(&Key::User(user.clone()))
            .filter(|e| now.saturating_duration_since(e.window_start) <= self.limits.window)
            .map_or(0, |e| e.failures);
        drop(entries);
        let pause = pause_after(failures, self.limits.per_user);
        if pause.is_zero() || self.trusted(&user, ip, now) {
            return Verdict::Proceed(Duration::ZERO);
        }
        Verdict::Proceed(pause)
    }

    fn trusted(&self, user: &str, ip: &str, now: Instant) -> bool {
        self.trusted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(user.to_string(), ip.to_string()))
            .is_some_and(|at| now.saturating_duration_since(*at) < TRUSTED_FOR)
    }

    /// Addresses and (user, address) pairs blocked now, for metrics.
    pub fn blocked_count(&self, now: Instant) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.blocked_until.is_some_and(|u| u > now))
            .count()
    }

    /// Counts a wrong attempt for the address, the (user, address) pair and the user.
    pub fn failure(&self, ip: &str, user: &str, now: Instant) {
        let user = name(user);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > ENTRIES_MAX {
            // Bound memory under a flood of distinct names: forget expired entries.
            let window = self.limits.window;
            entries.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now) || now - e.window_start < window
            });
        }
        for (k, limit) in [
            (Key::Ip(ip.to_string()), Some(self.limits.per_ip)),
            (
                Key::Pair(user.clone(), ip.to_string()),
                Some(self.limits.per_user),
            ),
            (Key::User(user), None),
        ] {
            let e = entries.entry(k).or_insert(Entry {
                failures: 0,
                window_start: now,
                blocked_until: None,
            });
            if now.saturating_duration_since(e.window_start) > self.limits.window {
                e.failures = 0;
                e.window_start = now;
            }
            e.failures = e.failures.saturating_add(1);
            if let Some(limit) = limit
                && e.failures >= limit
            {
                e.blocked_until = Some(now + self.limits.block);
                e.failures = 0;
                e.window_start = now;
            }
        }
    }

    /// A successful sign-in clears its (user, address) counter — not the address's, nor the
    /// name's across addresses — and remembers the address as one the user signs in from.
    pub fn success(&self, ip: &str, user: &str, now: Instant) {
        let user = name(user);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&Key::Pair(user.clone(), ip.to_string()));
        drop(entries);
        let mut trusted = self.trusted.lock().unwrap_or_else(|p| p.into_inner());
        if trusted.len() >= TRUSTED_MAX {
            trusted.retain(|_, at| now.saturating_duration_since(*at) < TRUSTED_FOR);
            if trusted.len() >= TRUSTED_MAX {
                trusted.clear();
            }
        }
        trusted.insert((user, ip.to_string()), now);
    }
}

/// The pause before an attempt for a name with `failures` wrong passwords in the window,
/// from every address together.
fn pause_after(failures: u32, free: u32) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(16);
    PAUSE_START.saturating_mul(1 << doublings).min(PAUSE_MAX)
}

/// A user name as a key: lowercase, cut to `NAME_MAX` characters.
fn name(user: &str) -> String {
    user.chars()
        .take(NAME_MAX)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            per_user: 3,
            per_ip: 5,
            window: Duration::from_secs(60),
            block: Duration::from_secs(30),
        }
    }

    fn blocked(v: Verdict) -> bool {
        matches!(v, Verdict::Blocked(_))
    }

    #[test]
    fn a_user_is_blocked_at_the_guessing_address_only_and_released_after_the_block() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(!blocked(t.check("1.2.3.4", "admin", now)));
            t.failure("1.2.3.4", "admin", now);
        }
        assert!(blocked(t.check("1.2.3.4", "Admin", now)), "at the address");
        assert!(
            !blocked(t.check("9.9.9.9", "admin", now)),
            "never from every address"
        );
        assert!(
            !blocked(t.check("1.2.3.4", "kim", now)),
            "other names at the address, until the address's own limit"
        );
        let later = now + Duration::from_secs(31);
        assert!(
            !blocked(t.check("1.2.3.4", "admin", later)),
            "never for good"
        );
    }

    #[test]
    fn an_ip_is_blocked_across_user_names() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            t.failure("1.2.3.4", &format!("user{i}"), now);
        }
        assert!(blocked(t.check("1.2.3.4", "someone", now)));
        assert!(!blocked(t.check("5.6.7.8", "someone", now)));
    }

    #[test]
    fn success_clears_the_pair_counter() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        t.failure("1.2.3.4", "admin", now);
        t.failure("1.2.3.4", "admin", now);
        t.success("1.2.3.4", "admin", now);
        t.failure("1.2.3.4", "admin", now);
        assert!(!blocked(t.check("1.2.3.4", "admin", now)));
    }

    #[test]
    fn distributed_guessing_slows_a_name_with_a_bounded_pause_never_a_refusal() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        // Two wrong passwords each from many addresses: no pair nor address is blocked.
        let mut pauses = Vec::new();
        for i in 0..20 {
            let ip = format!("203.0.113.{i}");
            for _ in 0..2 {
                t.failure(&ip, "admin", now);
            }
            pauses.push(t.check("198.51.100.1", "admin", now));
        }
        assert_eq!(pauses[0], Verdict::Proceed(Duration::ZERO), "two: free");
        assert_eq!(pauses[1], Verdict::Proceed(PAUSE_START * 2), "four: paused");
        assert_eq!(pauses[2], Verdict::Proceed(PAUSE_START * 8), "six: longer");
        assert!(
            pauses
                .iter()
                .all(|v| matches!(v, Verdict::Proceed(d) if *d <= PAUSE_MAX)),
            "{pauses:?}"
        );
        assert_eq!(pauses[19], Verdict::Proceed(PAUSE_MAX), "bounded");
        // The pause ends with the window.
        let later = now + Duration::from_secs(61);
        assert_eq!(
            t.check("198.51.100.1", "admin", later),
            Verdict::Proceed(Duration::ZERO)
        );
    }

    #[test]
    fn an_address_the_user_signed_in_from_skips_the_pause() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        t.success("10.0.0.5", "admin", now);
        for i in 0..10 {
            t.failure(&format!("203.0.113.{i}"), "admin", now);
        }
        assert!(matches!(
            t.check("198.51.100.1", "admin", now),
            Verdict::Proceed(d) if d > Duration::ZERO
        ));
        assert_eq!(
            t.check("10.0.0.5", "ADMIN", now),
            Verdict::Proceed(Duration::ZERO)
        );
    }

    #[test]
    fn names_longer_than_any_user_share_one_bounded_key() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        let long = "x".repeat(10_000);
        t.failure("1.2.3.4", &long, now);
        t.failure("1.2.3.4", &format!("{long}y"), now);
        let entries = t.entries.lock().expect("lock");
        assert_eq!(
            entries.len(),
            3,
            "address, pair and name: {}",
            entries.len()
        );
        assert!(entries.keys().all(|k| match k {
            Key::Pair(u, _) | Key::User(u) => u.len() == NAME_MAX,
            Key::Ip(_) => true,
        }));
    }
}
