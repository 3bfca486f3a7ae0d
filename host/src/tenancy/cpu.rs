//! Guest time: how long a call's component code has run, and the tenant's
//! `cpu_ms_per_second` quota that keeps a tenant whose code spins from taking
//! the host's cores from the others.
//!
//! A call's [`GuestClock`] runs while the guest's own code does: from entering
//! wasm (or coming back from a host call, or resuming after a yield) to leaving
//! it (a host call, returning, yielding), fed by the store's call hooks and
//! its epoch checks. Time spent in host calls (the store, rpc, waits) is not
//! guest time.
//!
//! What a call runs is charged to its tenant's [`CpuBudget`], a token bucket
//! of guest time refilled at the quota's rate, holding at most one second's
//! worth of credit and of debt. Guests are preempted at epoch checks once they
//! have run a slice (see `runtime/call.rs`); a call whose tenant is in debt
//! sleeps there until the debt is paid (never past its deadline), so a
//! spinning tenant gets its share of the cores and the others the rest. A
//! call that finishes within its slice never sleeps; what it ran still counts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The guest time of one call.
pub struct GuestClock {
    /// When the running segment started; `None` while the guest is out (in a
    /// host call, or yielded: then see `resumed`).
    since: Option<Instant>,
    /// Segments ended, not yet charged to the tenant.
    uncharged: Duration,
    /// Guest time since the call last yielded.
    since_yield: Duration,
    /// Nanoseconds after `base` at which the guest resumed from its last
    /// yield (set by the yield's future, which cannot reach the store).
    resumed: Arc<AtomicU64>,
    base: Instant,
}

impl Default for GuestClock {
    fn default() -> GuestClock {
        GuestClock::new()
    }
}

impl GuestClock {
    pub fn new() -> GuestClock {
        GuestClock {
            since: None,
            uncharged: Duration::ZERO,
            since_yield: Duration::ZERO,
            resumed: Arc::new(AtomicU64::new(0)),
            base: Instant::now(),
        }
    }

    /// The guest starts running (entering wasm, back from a host call).
    pub fn enter(&mut self, now: Instant) {
        self.since = Some(now);
    }

    /// The guest stops running (a host call, returning).
    pub fn leave(&mut self, now: Instant) {
        let started = self.since.take().or_else(|| self.resumed_at());
        if let Some(started) = started {
            let ran = now.saturating_duration_since(started);
            self.uncharged += ran;
            self.since_yield += ran;
        }
    }

    /// Guest time not yet charged, up to now; the guest keeps running.
    pub fn take(&mut self, now: Instant) -> Duration {
        self.leave(now);
        self.since = Some(now);
        std::mem::take(&mut self.uncharged)
    }

    /// Guest time since the last yield.
    pub fn since_yield(&self) -> Duration {
        self.since_yield
    }

    /// The guest yields to `pause` (a sleep, or one turn of the executor):
    /// the future to hand wasmtime, which marks when the guest resumes.
    pub fn pause(
        &mut self,
        now: Instant,
        pause: impl Future<Output = ()> + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.leave(now);
        self.since_yield = Duration::ZERO;
        self.resumed.store(0, Ordering::Relaxed);
        let (resumed, base) = (self.resumed.clone(), self.base);
        Box::pin(async move {
            pause.await;
            let ns = base.elapsed().as_nanos().max(1) as u64;
            resumed.store(ns, Ordering::Relaxed);
        })
    }

    fn resumed_at(&self) -> Option<Instant> {
        match self.resumed.swap(0, Ordering::Relaxed) {
            0 => None,
            ns => Some(self.base + Duration::from_nanos(ns)),
        }
    }
}

/// A tenant's `cpu_ms_per_second` quota: a bucket of guest time.
pub struct CpuBudget {
    /// Guest seconds per second.
    rate: f64,
    /// (credit in seconds, negative when in debt; when last refilled)
    state: Mutex<(f64, Instant)>,
}

impl CpuBudget {
    pub fn new(ms_per_second: u32, now: Instant) -> CpuBudget {
        let rate = f64::from(ms_per_second) / 1000.0;
        CpuBudget {
            rate,
            state: Mutex::new((rate, now)),
        }
    }

    /// Charge `ran` of guest time: how long to sleep to pay the debt, if the
    /// tenant is in debt.
    pub fn charge(&self, ran: Duration, now: Instant) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (credit, last) = &mut *state;
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *last = now;
        // At most a second's worth either way: an idle tenant cannot save up
        // a burst of cores, and a past debt does not starve it for long.
        *credit = (*credit + refill - ran.as_secs_f64()).clamp(-self.rate, self.rate);
        (*credit < 0.0).then(|| Duration::from_secs_f64(-*credit / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn budget_refills_goes_into_debt_and_says_how_long_to_pay() {
        let t0 = Instant::now();
        let budget = CpuBudget::new(100, t0);
        // 100 ms of credit to start with.
        assert_eq!(budget.charge(60 * MS, t0), None);
        // 20 ms in debt at 100 ms/s: 200 ms to pay.
        let wait = budget.charge(60 * MS, t0).expect("in debt");
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        // 200 ms later it is paid; 100 ms more buys 10 ms of guest time.
        assert_eq!(budget.charge(5 * MS, t0 + 300 * MS), None);
        // Debt is capped at a second's worth: a second to pay at most.
        let wait = budget.charge(Duration::from_secs(30), t0 + 300 * MS);
        assert_eq!(wait, Some(Duration::from_secs(1)));
    }

    #[test]
    fn clock_counts_guest_segments_only() {
        let t0 = Instant::now();
        let mut clock = GuestClock::new();
        clock.enter(t0);
        clock.leave(t0 + 2 * MS);
        // Out of the guest (a host call) until t0 + 7 ms: not counted.
        clock.enter(t0 + 7 * MS);
        assert_eq!(clock.take(t0 + 8 * MS), 3 * MS);
        // Taking keeps the segment open.
        assert_eq!(clock.take(t0 + 10 * MS), 2 * MS);
        assert_eq!(clock.since_yield(), 5 * MS);
    }

    #[test]
    fn clock_restarts_when_a_yield_ends() {
        let t0 = Instant::now();
        let mut clock = GuestClock::new();
        clock.enter(t0);
        let pause = clock.pause(t0 + MS, async {});
        assert_eq!(clock.since_yield(), Duration::ZERO);
        let before = Instant::now();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(pause);
        let after = Instant::now();
        // The guest ran 1 ms before the pause, then from its end to `later`.
        let later = after + 3 * MS;
        let ran = clock.take(later);
        assert!(ran >= MS + (later - after) && ran <= MS + (later - before));
    }
}
