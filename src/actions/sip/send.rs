//! Sending many SIP requests at once, paced: one process-wide pace (`sip.rate_per_sec`)
//! shared by every apply-now running in this process, so a flood of apply-now requests
//! sends no faster than one; transactions run side by side (each may wait up to timer F).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sip::{DigestCredentials, Outcome, RequestSpec, Sender};

/// The next free send slot of this process.
static NEXT_SLOT: Mutex<Option<Instant>> = Mutex::new(None);

/// Transactions running at once, at most (each thread waits on its own socket).
const MAX_IN_FLIGHT: usize = 512;

/// Waits for this process's next send slot at `rate` per second.
fn wait_for_slot(rate: u32) {
    let interval = Duration::from_secs(1) / rate.max(1);
    let now = Instant::now();
    let at = {
        let mut next = NEXT_SLOT.lock().unwrap_or_else(|p| p.into_inner());
        let at = next.map_or(now, |t| t.max(now));
        *next = Some(at + interval);
        at
    };
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// One request to send.
pub struct Job {
    pub spec: RequestSpec,
    pub creds: Option<DigestCredentials>,
}

/// Sends every job, paced at `rate` per second (process-wide), and returns each outcome
/// in order with when it was sent (milliseconds since the epoch).
pub fn send_all(jobs: Vec<Job>, sender: Sender, rate: u32) -> Vec<(Outcome, i64)> {
    let n = jobs.len();
    let queue: Mutex<VecDeque<(usize, Job)>> = Mutex::new(jobs.into_iter().enumerate().collect());
    let results: Mutex<Vec<Option<(Outcome, i64)>>> = Mutex::new(vec![None; n]);
    // As many threads as can be waiting at once: the rate times timer F, bounded.
    let in_flight = (rate as u64 * sender.timers.timer_f().as_secs().max(1) + 1)
        .min(MAX_IN_FLIGHT as u64) as usize;
    std::thread::scope(|s| {
        for _ in 0..in_flight.min(n) {
            let spawned = std::thread::Builder::new()
                .name("sip-send".into())
                .stack_size(256 * 1024)
                .spawn_scoped(s, || {
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                        let Some((i, job)) = next else { break };
                        wait_for_slot(rate);
                        let at = crate::db::now_ms();
                        let out = sender.send(&job.spec, job.creds.as_ref());
                        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some((out, at));
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads only means slower: the others drain the queue.
                log::warn!("apply-now: cannot start a sending thread: {e}");
                break;
            }
        }
    });
    // A job no thread could take (none started) is reported as a local failure.
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                (
                    Outcome::Failed("no sending thread".into()),
                    crate::db::now_ms(),
                )
            })
        })
        .collect()
}
