//! Rate limits on the API routes, REST and gRPC: a token bucket per client IP
//! and, on routes that act for a signed-in user, per user, for each route
//! class (`queue`, `inventory`, `reservation`, `payment`, `webhook`).
//!
//! The defaults are the original platform's: 50 requests/s with bursts of
//! 100, for every class; `--rate-limit CLASS=RPS/BURST` (or `CLASS=off`,
//! `all=…`) changes them. A limited request gets `ERROR_CODE_RATE_LIMITED`
//! (HTTP 429 / gRPC RESOURCE_EXHAUSTED) with `retry-after` in seconds. The
//! buckets run on the host's clock, so a virtual clock holds them still.
//! A client IP has one bucket per class whichever tenant it names, and it is
//! charged first, before any tenant's quota. The client IP is the TCP peer:
//! behind a proxy every client shares its address, so raise or turn off the
//! IP limits there.
//!
//! The buckets are [`governor`]'s GCRA; idle ones are dropped every minute.

use crate::foundations::clock::Clock;
use crate::tenancy::rate::{HostClock, Rate};
use governor::clock::Reference;
use governor::{Quota, RateLimiter};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The groups of routes that share a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteClass {
    Queue,
    Inventory,
    Reservation,
    Payment,
    Webhook,
}

impl RouteClass {
    pub const ALL: [RouteClass; 5] = [
        RouteClass::Queue,
        RouteClass::Inventory,
        RouteClass::Reservation,
        RouteClass::Payment,
        RouteClass::Webhook,
    ];

    /// The class of a contract service; operator services have none.
    pub fn of_service(service: &str) -> Option<RouteClass> {
        Some(match service {
            "gateway.v1.QueueService" => RouteClass::Queue,
            "reservation.v1.Inventory" => RouteClass::Inventory,
            "reservation.v1.ReservationService" => RouteClass::Reservation,
            "payment.v1.PaymentService" => RouteClass::Payment,
            "gateway.v1.WebhookService" => RouteClass::Webhook,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Queue => "queue",
            RouteClass::Inventory => "inventory",
            RouteClass::Reservation => "reservation",
            RouteClass::Payment => "payment",
            RouteClass::Webhook => "webhook",
        }
    }
}

/// The original platform's limit, for every class.
pub const DEFAULT_RATE: Rate = Rate {
    per_second: 50,
    burst: 100,
};

/// Limits by class; `None` turns a class's limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits(pub BTreeMap<RouteClass, Option<Rate>>);

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits(
            RouteClass::ALL
                .iter()
                .map(|c| (*c, Some(DEFAULT_RATE)))
                .collect(),
        )
    }
}

impl RateLimits {
    /// No limits at all (benchmarks, tests that load one host from one IP).
    pub fn off() -> RateLimits {
        RateLimits(RouteClass::ALL.iter().map(|c| (*c, None)).collect())
    }

    /// Apply a `CLASS=RPS/BURST`, `CLASS=RPS` or `CLASS=off` setting
    /// (`all` for every class).
    pub fn set(&mut self, setting: &str) -> Result<(), String> {
        let (class, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("`{setting}`: expected CLASS=RPS/BURST or CLASS=off"))?;
        let rate = if value == "off" {
            None
        } else {
            let (rps, burst) = value.split_once('/').unwrap_or((value, ""));
            let num = |s: &str| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{setting}`: `{s}` is not a positive number"))
            };
            let per_second = num(rps)?;
            let burst = if burst.is_empty() {
                per_second * 2
            } else {
                num(burst)?
            };
            Some(Rate { per_second, burst })
        };
        let classes: Vec<RouteClass> = match class {
            "all" => RouteClass::ALL.to_vec(),
            name => vec![
                *RouteClass::ALL
                    .iter()
                    .find(|c| c.name() == name)
                    .ok_or_else(|| {
                        format!(
                            "`{name}` is not a route class (queue, inventory, reservation, payment, webhook, all)"
                        )
                    })?,
            ],
        };
        for c in classes {
            self.0.insert(c, rate);
        }
        Ok(())
    }

    /// One line for the banner.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (class, rate) in &self.0 {
            parts.push(match rate {
                Some(r) => format!("{} {r}", class.name()),
                None => format!("{} off", class.name()),
            });
        }
        format!("{} (per IP and per user)", parts.join(", "))
    }
}

impl FromStr for RateLimits {
    type Err = String;

    /// Settings separated by commas, applied over the defaults.
    fn from_str(s: &str) -> Result<RateLimits, String> {
        let mut limits = RateLimits::default();
        for setting in s.split(',').filter(|p| !p.is_empty()) {
            limits.set(setting.trim())?;
        }
        Ok(limits)
    }
}

/// Who a bucket belongs to: a client IP (whichever tenant it names, so
/// naming another tenant buys no second budget), or a user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Ip(IpAddr),
    User(String, String),
}

type Buckets = RateLimiter<
    Subject,
    governor::state::keyed::DashMapStateStore<Subject>,
    HostClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// The buckets of every class.
pub struct Limiter {
    classes: BTreeMap<RouteClass, Buckets>,
    clock: HostClock,
}

/// A refusal: how long until a request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub class: RouteClass,
    pub by_user: bool,
    pub retry_after: Duration,
}

impl Limited {
    /// `retry-after` in whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    pub fn message(&self) -> String {
        format!(
            "rate limit of the {} routes per {} exceeded; retry after {} s",
            self.class.name(),
            if self.by_user { "user" } else { "client IP" },
            self.retry_after_secs()
        )
    }
}

impl Limiter {
    pub fn new(limits: &RateLimits, clock: Arc<Clock>) -> Arc<Limiter> {
        let clock = HostClock(clock);
        let classes = limits
            .0
            .iter()
            .filter_map(|(class, rate)| {
                let rate = (*rate)?;
                let quota = Quota::per_second(NonZeroU32::new(rate.per_second)?)
                    .allow_burst(NonZeroU32::new(rate.burst)?);
                Some((
                    *class,
                    RateLimiter::dashmap_with_clock(quota, clock.clone()),
                ))
            })
            .collect();
        let limiter = Arc::new(Limiter { classes, clock });
        // Drop idle buckets now and then; stop with the limiter.
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(l) = weak.upgrade() else { return };
                for buckets in l.classes.values() {
                    buckets.retain_recent();
                    buckets.shrink_to_fit();
                }
            }
        });
        limiter
    }

    /// Take a token from the client IP's bucket for a route of `class`.
    pub fn check_ip(&self, class: RouteClass, ip: IpAddr) -> Result<(), Limited> {
        self.take(class, Subject::Ip(ip), false)
    }

    /// Take a token from a signed-in user's bucket (users of different
    /// tenants never share one).
    pub fn check_user(&self, class: RouteClass, tenant: &str, user: &str) -> Result<(), Limited> {
        self.take(
            class,
            Subject::User(tenant.to_string(), user.to_string()),
            true,
        )
    }

    fn take(&self, class: RouteClass, subject: Subject, by_user: bool) -> Result<(), Limited> {
        let Some(buckets) = self.classes.get(&class) else {
            return Ok(());
        };
        buckets.check_key(&subject).map_err(|not_until| Limited {
            class,
            by_user,
            retry_after: not_until
                .earliest_possible()
                .duration_since(governor::clock::Clock::now(&self.clock))
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        let l: RateLimits = "reservation=20/40,webhook=off".parse().unwrap();
        assert_eq!(
            l.0[&RouteClass::Reservation],
            Some(Rate {
                per_second: 20,
                burst: 40
            })
        );
        assert_eq!(l.0[&RouteClass::Webhook], None);
        assert_eq!(l.0[&RouteClass::Queue], Some(DEFAULT_RATE));
        let all: RateLimits = "all=off".parse().unwrap();
        assert_eq!(all, RateLimits::off());
        let l: RateLimits = "queue=7".parse().unwrap();
        assert_eq!(l.0[&RouteClass::Queue].map(|r| r.burst), Some(14));
        for bad in ["queue", "nope=1/2", "queue=0/1", "queue=x/1", "queue=1/-1"] {
            assert!(bad.parse::<RateLimits>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn bucket_allows_its_burst_then_refills_with_the_clock() {
        let clock = Arc::new(Clock::virtual_at(1_000_000));
        let limits: RateLimits = "all=10/20".parse().unwrap();
        let l = Limiter::new(&limits, clock.clone());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let allowed = (0..50)
            .filter(|_| l.check_ip(RouteClass::Queue, ip).is_ok())
            .count();
        assert_eq!(allowed, 20);
        let refused = l.check_ip(RouteClass::Queue, ip).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.retry_after_secs(), 1);
        // Other IPs and other classes have their own buckets; users have
        // theirs, per tenant.
        assert!(
            l.check_ip(RouteClass::Queue, "10.0.0.2".parse().unwrap())
                .is_ok()
        );
        assert!(l.check_ip(RouteClass::Payment, ip).is_ok());
        for _ in 0..20 {
            assert!(l.check_user(RouteClass::Queue, "t", "ann").is_ok());
        }
        assert!(l.check_user(RouteClass::Queue, "t", "ann").is_err());
        assert!(l.check_user(RouteClass::Queue, "u", "ann").is_ok());
        clock.advance(Duration::from_millis(500));
        let allowed = (0..50)
            .filter(|_| l.check_ip(RouteClass::Queue, ip).is_ok())
            .count();
        assert_eq!(allowed, 5);
    }
}
