//! Slows down key guessing: after too many failed authentications from one client within
//! a minute, every further *failed* authentication from that client is answered 429 until
//! the minute is over. Requests that authenticate still pass: a blocked address may be a
//! NAT or proxy that a guesser shares with legitimate callers. A success does not lift the
//! block either, so a guesser holding one valid key cannot reset its budget.
//!
//! Clients are counted by address, IPv6 by /64 (one host usually owns a whole /64). The
//! table is bounded: past [`MAX_TRACKED`] clients, expired windows are dropped (at most
//! once a second), and if it is still full, new clients are not tracked: the limiter fails
//! open rather than growing without bound or locking everyone out. In-process by design:
//! with N API replicas an attacker gets N× the budget; what makes guessing hopeless is the
//! 256-bit secret, and the point here is to keep the noise out of the logs and to tell a
//! misbehaving client to back off.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);
/// The most clients tracked at once.
pub const MAX_TRACKED: usize = 100_000;

pub struct AuthFailureLimiter {
    max_failures: u32,
    state: Mutex<State>,
}

struct State {
    windows: HashMap<IpAddr, Window>,
    last_prune: Instant,
}

struct Window {
    started: Instant,
    failures: u32,
}

/// The unit counted: the address itself, or its /64 for IPv6.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl AuthFailureLimiter {
    pub fn new(max_failures_per_minute: u32) -> Self {
        Self {
            max_failures: max_failures_per_minute.max(1),
            state: Mutex::new(State {
                windows: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// How long `address` must still wait, if it has used up its failures.
    pub fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = state.windows.get(&client_key(address))?;
        let elapsed = window.started.elapsed();
        (window.failures >= self.max_failures && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    /// Counts a failure; true when it is the one that uses up the address's budget.
    pub fn record_failure(&self, address: IpAddr) -> bool {
        let key = client_key(address);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.windows.len() >= MAX_TRACKED && !state.windows.contains_key(&key) {
            if state.last_prune.elapsed() >= PRUNE_INTERVAL {
                state
                    .windows
                    .retain(|_, window| window.started.elapsed() < WINDOW);
                state.last_prune = Instant::now();
            }
            if state.windows.len() >= MAX_TRACKED {
                return false;
            }
        }
        let window = state.windows.entry(key).or_insert_with(|| Window {
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
        window.failures == self.max_failures
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
            assert!(!limiter.record_failure(attacker));
            assert!(limiter.blocked_for(attacker).is_none());
        }
        assert!(limiter.record_failure(attacker), "the failure that blocks");
        let wait = limiter
            .blocked_for(attacker)
            .expect("blocked after 3 failures");
        assert!(wait <= WINDOW && wait > Duration::from_secs(50));
        assert!(limiter.blocked_for(bystander).is_none());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let limiter = AuthFailureLimiter::new(2);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        limiter.record_failure(a);
        limiter.record_failure(b);
        assert!(limiter.blocked_for(a).is_some(), "same /64");
        assert!(limiter.blocked_for(other).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = AuthFailureLimiter::new(1);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            limiter.record_failure(IpAddr::V4(i.into()));
        }
        let state = limiter.state.lock().expect("lock");
        assert_eq!(state.windows.len(), MAX_TRACKED);
    }
}
