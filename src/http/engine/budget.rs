//! Memory for request bodies, admitted after the service has looked at the head.
//!
//! Each listener has a budget of its own (`BodyBudget`), so a flood on one port never takes
//! the memory another port's requests need, and one client address may hold at most a
//! quarter of it (`share`), so one host cannot take the whole of it either — except that an
//! address holding nothing may always have one body in memory, so a single upload of the
//! largest allowed size is never refused for its address's share alone.
//!
//! A body no larger than `SMALL_BODY` costs no budget at all: a connection may already hold
//! as much in its request head, and the connection caps bound both. That keeps small bodies
//! (a sign-in form, a console form, a JSON call) out of reach of anyone declaring large
//! bodies, and keeps the budget's lock off every small request. Which larger bodies may be
//! held is the service's decision (`Service::plan`), made from the head before any of this
//! is reserved: the engine only counts. Requests without a body (every phone's GET) never
//! come here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Bodies up to this many bytes are read into memory without counting against a budget.
pub const SMALL_BODY: usize = 16 * 1024;

/// The bytes of request bodies one listener holds in memory, in total and per address.
#[derive(Debug)]
pub struct BodyBudget {
    total: usize,
    share: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a reservation was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The listener's budget is in use.
    Full,
    /// This address holds its share already.
    Share,
}

impl BodyBudget {
    /// A budget of `total` bytes, a quarter of it per address.
    pub fn new(total: usize) -> BodyBudget {
        BodyBudget {
            total,
            share: total / 4,
            state: Mutex::new(State::default()),
        }
    }

    /// Bytes reserved now (for tests and metrics).
    pub fn in_use(&self) -> usize {
        self.lock().in_use
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `bytes` for a body from `ip`; the bytes stay counted until the returned
    /// guard drops.
    pub fn reserve(&self, ip: IpAddr, bytes: usize) -> Result<Reservation<'_>, Refusal> {
        let mut s = self.lock();
        if s.in_use.saturating_add(bytes) > self.total {
            return Err(Refusal::Full);
        }
        let held = s.per_ip.get(&ip).copied().unwrap_or(0);
        if held > 0 && held.saturating_add(bytes) > self.share {
            return Err(Refusal::Share);
        }
        s.in_use += bytes;
        *s.per_ip.entry(ip).or_insert(0) += bytes;
        Ok(Reservation {
            budget: self,
            ip,
            bytes,
        })
    }
}

/// Bytes of one body counted against a budget until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a BodyBudget,
    ip: IpAddr,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        s.in_use = s.in_use.saturating_sub(self.bytes);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_address_holds_at_most_a_quarter_but_always_one_body() {
        let b = BodyBudget::new(100);
        let big = b
            .reserve(ip(1), 60)
            .expect("one body always fits its share");
        assert_eq!(b.reserve(ip(1), 1).err(), Some(Refusal::Share));
        let other = b.reserve(ip(2), 25).expect("another address");
        drop(big);
        let a = b.reserve(ip(1), 20).expect("within the share");
        assert_eq!(b.reserve(ip(1), 10).err(), Some(Refusal::Share));
        drop((a, other));
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn the_total_bounds_every_address_together() {
        let b = BodyBudget::new(100);
        let held: Vec<_> = (1..=4)
            .map(|i| b.reserve(ip(i), 25).expect("fits"))
            .collect();
        assert_eq!(b.reserve(ip(9), 1).err(), Some(Refusal::Full));
        drop(held);
        assert!(b.reserve(ip(9), 100).is_ok(), "released when dropped");
    }
}
