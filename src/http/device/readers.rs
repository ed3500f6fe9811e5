//! Clients that read many devices' files: a limit on the distinct MACs one address may ask
//! for within a window without proving it is the device (docs/design.md §4.3).
//!
//! A phone asks for its own files; a NAT'd site asks for many (its addresses go in
//! `limits.nat_allowlist`); anything else asking for many MACs may be harvesting
//! configuration. Past the limit the requests are still served — phones behind one address
//! must never be refused (docs/design.md §6, I1), and where secrets are withheld the
//! account credential reads none — and recorded in the access log (`many-macs`), where the
//! diagnostics report the address.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::ipnet::{IpNet, any_contains};
use crate::domain::mac::Mac;

/// Addresses tracked at most; beyond, expired windows are dropped first, then all.
const MAX_TRACKED: usize = 100_000;

struct Seen {
    window_start: Instant,
    macs: HashSet<Mac>,
    /// Logged in this window already.
    warned: bool,
}

/// The per-address MAC counter.
pub struct MacReaders {
    /// The limit, its window and the exempt networks; replaced by `set` (SIGHUP).
    settings: std::sync::RwLock<(u32, Duration, Vec<IpNet>)>,
    seen: Mutex<HashMap<IpAddr, Seen>>,
    /// Requests past the limit (served, reported).
    pub refused: AtomicU64,
}

impl MacReaders {
    pub fn new(limit: u32, window: Duration, allow: Vec<IpNet>) -> MacReaders {
        MacReaders {
            settings: std::sync::RwLock::new((limit, window, allow)),
            seen: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// The configured limit (for metrics).
    pub fn limit(&self) -> u32 {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// New settings (SIGHUP): the counts kept so far are judged by them.
    pub fn set(&self, limit: u32, window: Duration, allow: Vec<IpNet>) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = (limit, window, allow);
    }

    /// Admits a request from `ip` for `mac`'s files, or says how many seconds until the
    /// address may read further MACs.
    pub fn admit(&self, ip: IpAddr, mac: Mac) -> Result<(), u64> {
        let (limit, window) = {
            let s = self.settings.read().unwrap_or_else(|p| p.into_inner());
            if s.0 == u32::MAX || any_contains(&s.2, ip) {
                return Ok(());
            }
            (s.0, s.1)
        };
        let now = Instant::now();
        let mut map = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, s| now - s.window_start < window);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let s = map.entry(ip).or_insert_with(|| Seen {
            window_start: now,
            macs: HashSet::new(),
            warned: false,
        });
        if now - s.window_start >= window {
            s.window_start = now;
            s.macs.clear();
            s.warned = false;
        }
        if s.macs.contains(&mac) {
            return Ok(());
        }
        if s.macs.len() >= limit as usize {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let left = window.saturating_sub(now - s.window_start);
            if !s.warned {
                s.warned = true;
                log::warn!(
                    "{ip} read the files of {} devices within {}s without proving it is any of them (served; reported)",
                    limit,
                    window.as_secs()
                );
            }
            return Err(left.as_secs().max(1));
        }
        s.macs.insert(mac);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> Mac {
        format!("0004f2{n:06x}").parse().expect("mac")
    }

    #[test]
    fn one_address_reads_a_few_macs_then_only_those() {
        let r = MacReaders::new(3, Duration::from_secs(60), Vec::new());
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        for n in 0..3 {
            assert!(r.admit(ip, mac(n)).is_ok());
        }
        assert!(r.admit(ip, mac(9)).is_err());
        assert!(r.admit(ip, mac(10)).is_err());
        assert!(r.admit(ip, mac(9)).is_err(), "a refused MAC stays refused");
        // MACs it already read stay readable (a phone behind the same address).
        assert!(r.admit(ip, mac(1)).is_ok());
        // Another address is not affected.
        assert!(r.admit("10.0.0.6".parse().expect("ip"), mac(9)).is_ok());
        assert_eq!(r.refused.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn allowlisted_sites_and_new_windows_are_not_limited() {
        let nat: IpNet = "192.0.2.0/24".parse().expect("net");
        // A window no test run outlasts, so the refusal below cannot race its end.
        let r = MacReaders::new(1, Duration::from_secs(3600), vec![nat]);
        let site: IpAddr = "192.0.2.9".parse().expect("ip");
        for n in 0..20 {
            assert!(r.admit(site, mac(n)).is_ok());
        }
        let other: IpAddr = "198.51.100.1".parse().expect("ip");
        assert!(r.admit(other, mac(1)).is_ok());
        assert!(r.admit(other, mac(2)).is_err());
        // A new window: a short one, over once the sleep is longer than it, however slow
        // the machine.
        let short = MacReaders::new(1, Duration::from_millis(50), vec![]);
        assert!(short.admit(other, mac(1)).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(short.admit(other, mac(2)).is_ok());
    }
}
