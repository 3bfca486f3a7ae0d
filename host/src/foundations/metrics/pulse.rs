//! A tenant's pulse: what the operator's console charts live, without an
//! external Prometheus. Cumulative counts of the sale's steps (joins, holds,
//! confirmations, failed payments), calls that failed in the component
//! (traps, deadlines, memory), and a histogram of the latency of the
//! requests the edge answered, so that two reads a second apart give each rate and
//! that second's p99 ([`PulseView`]).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds (one more bucket
/// holds the rest).
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000];

/// The methods whose successful calls are the sale's steps.
const STEPS: [(&str, Step); 4] = [
    ("gateway.v1.QueueService/JoinQueue", Step::Join),
    (
        "reservation.v1.ReservationService/CreateReservation",
        Step::Hold,
    ),
    (
        "reservation.v1.ReservationService/ConfirmReservation",
        Step::Confirm,
    ),
    (
        "tacos.internal.v1.ReservationLifecycle/FailReservation",
        Step::PaymentFailed,
    ),
];

#[derive(Clone, Copy)]
enum Step {
    Join,
    Hold,
    Confirm,
    PaymentFailed,
}

#[derive(Debug, Default)]
pub struct Pulse {
    joins: AtomicU64,
    holds: AtomicU64,
    confirmations: AtomicU64,
    payments_failed: AtomicU64,
    failures: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// The counts at one moment (all cumulative).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct PulseView {
    pub joins: u64,
    pub holds: u64,
    pub confirmations: u64,
    pub payments_failed: u64,
    /// Calls that trapped, ran out of time or memory.
    pub failures: u64,
    /// Requests per latency bucket ([`LATENCY_BUCKETS_MS`], then the rest).
    pub latency: Vec<u64>,
}

impl Pulse {
    /// One component call: `method` (`package.Service/Method`) answered
    /// (`ok`), or failed in the component (`contained`).
    pub fn call(&self, method: &str, ok: bool, contained: bool) {
        if ok && let Some((_, step)) = STEPS.iter().find(|(m, _)| *m == method) {
            let counter = match step {
                Step::Join => &self.joins,
                Step::Hold => &self.holds,
                Step::Confirm => &self.confirmations,
                Step::PaymentFailed => &self.payments_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if contained {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One request the edge answered, in `took`.
    pub fn request(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms < *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> PulseView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PulseView {
            joins: get(&self.joins),
            holds: get(&self.holds),
            confirmations: get(&self.confirmations),
            payments_failed: get(&self.payments_failed),
            failures: get(&self.failures),
            latency: self.latency.iter().map(get).collect(),
        }
    }
}

impl PulseView {
    /// The sum of several tenants' views.
    pub fn add(&mut self, other: &PulseView) {
        self.joins += other.joins;
        self.holds += other.holds;
        self.confirmations += other.confirmations;
        self.payments_failed += other.payments_failed;
        self.failures += other.failures;
        self.latency
            .resize(other.latency.len().max(self.latency.len()), 0);
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_failures_and_latency_are_counted_apart() {
        let p = Pulse::default();
        let ms = Duration::from_millis;
        p.call("gateway.v1.QueueService/JoinQueue", true, false);
        p.call("gateway.v1.QueueService/JoinQueue", false, false);
        p.call(
            "reservation.v1.ReservationService/ConfirmReservation",
            true,
            false,
        );
        p.call("payment.v1.PaymentService/GetPaymentStatus", false, true);
        for took in [0, 3, 9_000] {
            p.request(ms(took));
        }
        let v = p.view();
        assert_eq!((v.joins, v.confirmations, v.failures), (1, 1, 1));
        // 0 ms under 1 ms, 3 ms under 5 ms, 9 s past the last bound.
        let mut want = vec![0; LATENCY_BUCKETS_MS.len() + 1];
        want[0] = 1;
        want[2] = 1;
        want[LATENCY_BUCKETS_MS.len()] = 1;
        assert_eq!(v.latency, want);
        let mut sum = PulseView::default();
        sum.add(&v);
        sum.add(&v);
        assert_eq!((sum.joins, sum.latency[0]), (2, 2));
    }
}
