//! The sign-in rate limit: wrong passwords counted per IP address and per user name over a
//! window; past the limit, further attempts for that key wait until the block expires.
//!
//! Blocks are temporary and short, so an attacker can slow a user's sign-in but never lock
//! the right password out for good (vaultwarden's lesson), and a success clears the user's
//! counter. A user's block does not apply at an address the user signed in from before
//! (within a day): someone guessing a user's password from elsewhere cannot keep that user
//! out of the console, while the guesser's own address stays blocked. Kept in memory: a
//! restart forgets it, which only helps the legitimate user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the sign-in throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Wrong attempts per user name within `window` before it is blocked.
    pub per_user: u32,
    /// Wrong attempts per IP address within `window` before it is blocked.
    pub per_ip: u32,
    pub window: Duration,
    pub block: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// How long an address where a user signed in stays exempt from that user's block.
const TRUSTED_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most (user, address) pairs remembered.
const TRUSTED_MAX: usize = 10_000;

/// Failure counters keyed by `ip:<addr>` and `user:<name>`.
pub struct LoginThrottle {
    limits: ThrottleLimits,
    entries: Mutex<HashMap<String, Entry>>,
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

    /// Seconds to wait before this IP or user may try again, if blocked now.
    pub fn blocked(&self, ip: &str, user: &str, now: Instant) -> Option<u64> {
        let trusted = self
            .trusted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(user.to_ascii_lowercase(), ip.to_string()))
            .is_some_and(|at| now.saturating_duration_since(*at) < TRUSTED_FOR);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let keys = if trusted {
            vec![key("ip", ip)]
        } else {
            vec![key("ip", ip), key("user", user)]
        };
        keys.iter()
            .filter_map(|k| entries.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    /// Keys (addresses and user names) blocked now, for metrics.
    pub fn blocked_count(&self, now: Instant) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.blocked_until.is_some_and(|u| u > now))
            .count()
    }

    /// Counts a wrong attempt for the IP and the user name.
    pub fn failure(&self, ip: &str, user: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            // Bound memory under a flood of distinct names: forget expired entries.
            let window = self.limits.window;
            entries.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now) || now - e.window_start < window
            });
        }
        for (k, limit) in [
            (key("ip", ip), self.limits.per_ip),
            (key("user", user), self.limits.per_user),
        ] {
            let e = entries.entry(k).or_insert(Entry {
                failures: 0,
                window_start: now,
                blocked_until: None,
            });
            if now.duration_since(e.window_start) > self.limits.window {
                e.failures = 0;
                e.window_start = now;
            }
            e.failures += 1;
            if e.failures >= limit {
                e.blocked_until = Some(now + self.limits.block);
                e.failures = 0;
                e.window_start = now;
            }
        }
    }

    /// A successful sign-in clears the user's counter (not the IP's) and remembers the
    /// address as one the user signs in from.
    pub fn success(&self, ip: &str, user: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key("user", user));
        drop(entries);
        let mut trusted = self.trusted.lock().unwrap_or_else(|p| p.into_inner());
        if trusted.len() >= TRUSTED_MAX {
            trusted.retain(|_, at| now.saturating_duration_since(*at) < TRUSTED_FOR);
            if trusted.len() >= TRUSTED_MAX {
                trusted.clear();
            }
        }
        trusted.insert((user.to_ascii_lowercase(), ip.to_string()), now);
    }
}

fn key(kind: &str, value: &str) -> String {
    format!("{kind}:{}", value.to_ascii_lowercase())
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

    #[test]
    fn a_user_is_blocked_after_the_limit_and_released_after_the_block() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.blocked("1.2.3.4", "admin", now).is_none());
            t.failure("1.2.3.4", "admin", now);
        }
        assert!(t.blocked("9.9.9.9", "admin", now).is_some(), "per user");
        let later = now + Duration::from_secs(31);
        assert!(
            t.blocked("1.2.3.4", "admin", later).is_none(),
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
        assert!(t.blocked("1.2.3.4", "someone", now).is_some());
        assert!(t.blocked("5.6.7.8", "someone", now).is_none());
    }

    #[test]
    fn success_clears_the_user_counter() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        t.failure("1.2.3.4", "admin", now);
        t.failure("1.2.3.4", "admin", now);
        t.success("1.2.3.4", "admin", now);
        t.failure("1.2.3.4", "admin", now);
        assert!(t.blocked("1.2.3.4", "admin", now).is_none());
    }

    #[test]
    fn a_guesser_elsewhere_never_keeps_a_user_out_of_an_address_it_signed_in_from() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        t.success("10.0.0.5", "admin", now);
        for _ in 0..3 {
            t.failure("203.0.113.9", "admin", now);
        }
        assert!(
            t.blocked("203.0.113.9", "admin", now).is_some(),
            "the guesser"
        );
        assert!(
            t.blocked("198.51.100.1", "admin", now).is_some(),
            "a new address pauses"
        );
        assert!(
            t.blocked("10.0.0.5", "ADMIN", now).is_none(),
            "the user's own address is not locked out"
        );
    }
}
