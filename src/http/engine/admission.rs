//! Admission control for the heavy, deferrable device requests: firmware downloads and
//! uploads (logs, overrides, contacts).
//!
//! In a boot storm what a phone cannot do without is its master and configuration files: a
//! phone whose config request times out starts its boot again. A firmware image or a log
//! upload can wait: the phone's updater and its log timer try again later. So each of those
//! kinds passes a `Gate` with a cap on how many run at once; over the cap the request is
//! answered 503 with a Retry-After (spread over a window, so that refused phones do not come
//! back all in the same second) before any body is read or sent. Configuration requests never
//! pass a gate.
//!
//! A `Pass` is held for the whole exchange — body received, handled, response sent (the
//! loop sends firmware after the handler returned) — by parking it in a per-thread slot that
//! the connection loop empties when the exchange ends (`Exchange`).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A cap on how many requests of one kind run at once.
pub struct Gate {
    inflight: AtomicUsize,
    cap: AtomicUsize,
    /// Requests refused over the cap.
    pub shed: AtomicU64,
}

/// One admitted request; leaves the gate when dropped.
pub struct Pass(Arc<Gate>);

impl Gate {
    pub fn new(cap: usize) -> Arc<Gate> {
        Arc::new(Gate {
            inflight: AtomicUsize::new(0),
            cap: AtomicUsize::new(cap),
            shed: AtomicU64::new(0),
        })
    }

    /// Admits one request, or returns None (and counts it) when `cap` are running.
    pub fn try_enter(self: &Arc<Self>) -> Option<Pass> {
        let entered = self
            .inflight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap.load(Ordering::Relaxed)).then_some(n + 1)
            })
            .is_ok();
        if entered {
            Some(Pass(self.clone()))
        } else {
            self.shed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Requests running now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    /// A new cap (SIGHUP); requests running over a lowered cap finish, and no new one
    /// enters until they are under it.
    pub fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// The pass of the exchange this connection thread is serving.
    static HELD: RefCell<Option<Pass>> = const { RefCell::new(None) };
}

/// Keeps `pass` until the current exchange on this thread ends (its response is sent or the
/// connection fails).
pub fn hold(pass: Pass) {
    HELD.with(|h| *h.borrow_mut() = Some(pass));
}

/// Marks one exchange on the connection thread: whatever pass the handler parked is released
/// when this is dropped, however the exchange ends.
pub struct Exchange(());

impl Exchange {
    pub fn begin() -> Exchange {
        release();
        Exchange(())
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        release();
    }
}

fn release() {
    // Taken out first, dropped outside the borrow.
    let pass = HELD.with(|h| h.borrow_mut().take());
    drop(pass);
}

/// Seconds a refused client is asked to wait: `base` to `2 × base`, spread by the clock.
pub fn retry_after(base: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + u64::from(nanos) % (base.max(1) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_admits_up_to_its_cap_and_counts_the_rest() {
        let g = Gate::new(2);
        let a = g.try_enter().expect("first");
        let b = g.try_enter().expect("second");
        assert!(g.try_enter().is_none());
        assert_eq!(g.shed.load(Ordering::Relaxed), 1);
        drop(a);
        let c = g.try_enter().expect("a place was freed");
        assert_eq!(g.inflight(), 2);
        drop((b, c));
        assert_eq!(g.inflight(), 0);
    }

    #[test]
    fn a_held_pass_lives_until_the_exchange_ends() {
        let g = Gate::new(1);
        {
            let _x = Exchange::begin();
            hold(g.try_enter().expect("enter"));
            assert_eq!(g.inflight(), 1, "held while the response is sent");
        }
        assert_eq!(g.inflight(), 0, "released with the exchange");
        // A pass left over by an exchange that never ended is released by the next one.
        hold(g.try_enter().expect("enter"));
        let _x = Exchange::begin();
        assert_eq!(g.inflight(), 0);
    }

    #[test]
    fn retry_after_spreads_over_one_window() {
        for _ in 0..100 {
            let s = retry_after(30);
            assert!((30..=60).contains(&s), "{s}");
        }
    }
}
