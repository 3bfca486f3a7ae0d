//! Token buckets on the host's clock: a [`Rate`] and a tenant's
//! requests-per-second bucket ([`TenantBucket`]).
//!
//! They are [`governor`]'s GCRA driven by [`Clock`], so a virtual clock holds
//! them still. The edge's per-IP and per-user limits are built from the same
//! parts (`edge::limits`).

use crate::foundations::clock::Clock;
use governor::clock::Reference;
use governor::{Quota, RateLimiter};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// One bucket's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s burst {}", self.per_second, self.burst)
    }
}

/// The host's clock as governor's.
#[derive(Clone)]
pub(crate) struct HostClock(pub(crate) Arc<Clock>);

impl governor::clock::Clock for HostClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms())
    }
}

type Direct = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    HostClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// One tenant's requests-per-second quota: a single bucket on the host clock.
pub struct TenantBucket {
    bucket: Direct,
    clock: HostClock,
}

impl TenantBucket {
    /// `None` when the rate is zero (quotas are checked before this).
    pub fn new(rate: Rate, clock: Arc<Clock>) -> Option<TenantBucket> {
        let quota = Quota::per_second(NonZeroU32::new(rate.per_second)?)
            .allow_burst(NonZeroU32::new(rate.burst)?);
        let clock = HostClock(clock);
        Some(TenantBucket {
            bucket: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        })
    }

    /// Take a token, or say how long until one is there.
    pub fn check(&self) -> Result<(), Duration> {
        self.bucket.check().map_err(|n| {
            n.earliest_possible()
                .duration_since(governor::clock::Clock::now(&self.clock))
                .into()
        })
    }
}
