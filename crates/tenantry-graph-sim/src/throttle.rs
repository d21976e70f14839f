//! Microsoft's identity throttling model (graph-facts §7.4): each application has a budget
//! of resource units per tenant (3,500 / 5,000 / 8,000 per 10 seconds for tenants of size
//! S / M / L), plus a write quota of 3,000 requests per 150 seconds; each request costs
//! resource units by endpoint. Modelled as token buckets that refill continuously. Identity
//! Protection (riskyUsers) allows one request per second per tenant, without Retry-After.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::model::SizeClass;

struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(capacity: f64, window: Duration) -> Self {
        Self {
            capacity,
            per_second: capacity / window.as_secs_f64(),
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens
            + now.duration_since(self.updated).as_secs_f64() * self.per_second)
            .min(self.capacity);
        self.updated = now;
    }

    /// Takes `cost`, or says how long until it could be taken.
    fn take(&mut self, cost: f64) -> Result<(), Duration> {
        self.refill();
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (cost - self.tokens) / self.per_second,
            ))
        }
    }

    fn used_share(&self) -> f64 {
        1.0 - self.tokens / self.capacity
    }
}

pub enum Verdict {
    /// Allowed; `limit_percentage` is set once more than 80 % of the budget is used.
    Allowed { limit_percentage: Option<f64> },
    Throttled {
        retry_after: Duration,
        scope: String,
        information: &'static str,
    },
}

pub struct Throttle {
    /// Multiplies every budget; 1.0 is Microsoft's. Lower it to see throttling sooner.
    scale: f64,
    resource_units: HashMap<(Uuid, Uuid), Bucket>,
    writes: HashMap<(Uuid, Uuid), Bucket>,
    risky: HashMap<Uuid, Instant>,
    /// The Exchange admin API's budget per application and tenant.
    exchange: HashMap<(Uuid, Uuid), Bucket>,
}

/// The Exchange admin API's budget: `Rate-Limit-Limit: 30000` was captured (graph-facts-next
/// §2.6); the window it refers to is UNVERIFIED, the simulator refills it over an hour.
pub const EXCHANGE_LIMIT: f64 = 30_000.0;
const EXCHANGE_WINDOW: Duration = Duration::from_secs(3600);

/// What the Exchange budget said about one request.
pub struct ExchangeVerdict {
    pub limit: u64,
    pub remaining: u64,
    /// Until the budget is full again.
    pub reset_in: Duration,
    /// `Some`: throttled, retry after this long.
    pub retry_after: Option<Duration>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_scale(1.0)
    }
}

impl Throttle {
    pub fn with_scale(scale: f64) -> Self {
        Self {
            scale,
            resource_units: HashMap::new(),
            writes: HashMap::new(),
            risky: HashMap::new(),
            exchange: HashMap::new(),
        }
    }

    /// One request to the Exchange admin API (one unit of its budget).
    pub fn check_exchange(&mut self, app: Uuid, tenant: Uuid) -> ExchangeVerdict {
        let capacity = (EXCHANGE_LIMIT * self.scale).max(1.0);
        let bucket = self
            .exchange
            .entry((app, tenant))
            .or_insert_with(|| Bucket::new(capacity, EXCHANGE_WINDOW));
        let retry_after = bucket.take(1.0).err();
        ExchangeVerdict {
            limit: bucket.capacity as u64,
            remaining: bucket.tokens.max(0.0).floor() as u64,
            reset_in: Duration::from_secs_f64(
                ((bucket.capacity - bucket.tokens) / bucket.per_second).max(0.0),
            ),
            retry_after,
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn check(
        &mut self,
        app: Uuid,
        tenant: Uuid,
        size: SizeClass,
        cost: u32,
        write: bool,
    ) -> Verdict {
        let bucket = self.resource_units.entry((app, tenant)).or_insert_with(|| {
            Bucket::new(
                size.resource_units_per_10s() * self.scale,
                Duration::from_secs(10),
            )
        });
        if let Err(retry_after) = bucket.take(f64::from(cost)) {
            return Verdict::Throttled {
                retry_after,
                scope: format!("Tenant_Application/ReadWrite/{app}/{tenant}"),
                information: "ResourceUnitLimitExceeded",
            };
        }
        let share = bucket.used_share();
        if write {
            let writes = self
                .writes
                .entry((app, tenant))
                .or_insert_with(|| Bucket::new(3000.0, Duration::from_secs(150)));
            if let Err(retry_after) = writes.take(1.0) {
                return Verdict::Throttled {
                    retry_after,
                    scope: format!("Tenant_Application/Write/{app}/{tenant}"),
                    information: "WriteLimitExceeded",
                };
            }
        }
        Verdict::Allowed {
            limit_percentage: (share > 0.8).then(|| (share * 100.0).round() / 100.0),
        }
    }

    /// Identity Protection: one request per second per tenant.
    pub fn check_risky(&mut self, tenant: Uuid) -> bool {
        let now = Instant::now();
        match self.risky.get(&tenant) {
            Some(last) if now.duration_since(*last) < Duration::from_secs(1) => false,
            _ => {
                self.risky.insert(tenant, now);
                true
            }
        }
    }
}

/// Resource-unit cost of a request (graph-facts §7.4): base cost by endpoint, −1 with
/// `$select`, +1 with `$expand`, −1 with `$top` under 20, never below 1.
pub fn cost(method: &str, segments: &[&str], select: bool, expand: bool, top: Option<u32>) -> u32 {
    if method != "GET" {
        return 1;
    }
    let base: i32 = match segments {
        ["users"] | ["users", "delta"] => 2,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitiveMembers"] => 5,
        ["servicePrincipals", _, "appRoleAssignments"] => 2,
        ["subscribedSkus"] => 3,
        ["applications"] => 2,
        _ => 1,
    };
    let adjusted =
        base - i32::from(select) + i32::from(expand) - i32::from(top.is_some_and(|t| t < 20));
    u32::try_from(adjusted.max(1)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_published_table() {
        assert_eq!(cost("GET", &["users"], false, false, None), 2);
        assert_eq!(cost("GET", &["users"], true, false, Some(999)), 1);
        assert_eq!(
            cost("GET", &["groups", "x", "members"], false, false, Some(5)),
            2
        );
        assert_eq!(
            cost("GET", &["organization"], true, false, Some(1)),
            1,
            "never below 1"
        );
        assert_eq!(cost("PATCH", &["users", "x"], false, false, None), 1);
    }

    #[test]
    fn a_burst_above_the_budget_is_throttled_and_the_budget_refills() {
        let mut throttle = Throttle::default();
        let (app, tenant) = (Uuid::new_v4(), Uuid::new_v4());
        let mut allowed = 0;
        let started = std::time::Instant::now();
        while let Verdict::Allowed { .. } = throttle.check(app, tenant, SizeClass::S, 2, false) {
            allowed += 1;
            // The budget refills continuously (3,500 RU per 10 s = 175 requests of 2 RU a
            // second), so a slow, loaded machine earns a little more while looping.
            let refilled = (started.elapsed().as_secs_f64() * 175.0).ceil() as u32;
            assert!(allowed <= 1750 + refilled + 1, "3,500 RU at 2 RU each");
        }
        assert!(allowed >= 1749);
        match throttle.check(app, tenant, SizeClass::S, 2, false) {
            Verdict::Throttled {
                retry_after,
                information,
                ..
            } => {
                assert!(retry_after < Duration::from_millis(10));
                assert_eq!(information, "ResourceUnitLimitExceeded");
            }
            Verdict::Allowed { .. } => panic!("still throttled"),
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            matches!(
                throttle.check(app, tenant, SizeClass::S, 2, false),
                Verdict::Allowed { .. }
            ),
            "refilled"
        );
        assert!(
            matches!(
                throttle.check(Uuid::new_v4(), tenant, SizeClass::S, 2, false),
                Verdict::Allowed { .. }
            ),
            "per application"
        );
    }
}
