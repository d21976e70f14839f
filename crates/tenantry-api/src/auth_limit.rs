//! Slows down key guessing: after too many failed authentications from one address within a
//! minute, every request from that address is answered 429 until the minute is over, before
//! any key is checked. In-process by design: with N API replicas an attacker gets N× the
//! budget, which still makes guessing a 256-bit secret hopeless; the point is to keep
//! noise out of the database and the logs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked addresses, expired windows are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;

pub struct AuthFailureLimiter {
    max_failures: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl AuthFailureLimiter {
    pub fn new(max_failures_per_minute: u32) -> Self {
        Self {
            max_failures: max_failures_per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// How long `address` must still wait, if it has used up its failures.
    pub fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows.get(&address)?;
        let elapsed = window.started.elapsed();
        (window.failures >= self.max_failures && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    pub fn record_failure(&self, address: IpAddr) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, window| window.started.elapsed() < WINDOW);
        }
        let window = windows.entry(address).or_insert_with(|| Window {
            started: Instant::now(),
            failures: 0,
        });
        if window.started.elapsed() >= WINDOW {
            *window = Window {
                started: Instant::now(),
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_an_address_after_its_budget_and_no_other() {
        let limiter = AuthFailureLimiter::new(3);
        let attacker: IpAddr = [192, 0, 2, 1].into();
        let bystander: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..2 {
            limiter.record_failure(attacker);
            assert!(limiter.blocked_for(attacker).is_none());
        }
        limiter.record_failure(attacker);
        let wait = limiter
            .blocked_for(attacker)
            .expect("blocked after 3 failures");
        assert!(wait <= WINDOW && wait > Duration::from_secs(50));
        assert!(limiter.blocked_for(bystander).is_none());
    }
}
