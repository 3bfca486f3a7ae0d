//! Where a request's host time goes, stage by stage (issue #17): the
//! counters `tacos_stage_seconds_total{stage}` and `tacos_stage_entered_total{stage}`
//! (how often: instances, host calls, store reads, commits) that a
//! benchmark reads before and after a phase and divides by its requests to
//! print a budget per request.
//!
//! Each stage is a span the code around it already has to cross, timed with
//! the clock reads it mostly makes anyway ([`Stages::lap`]). Spans nest the
//! way calls do, so a budget subtracts: `host_calls` (every host function a
//! guest called, from the call hooks) contains `store_read`, `commit_wait`
//! and `rpc` (a nested component call, whose own stages are counted too);
//! `admission` contains `auth`. `commit_wait` (a group commit) and `durable`
//! (its fsync, once per top-level call) are time waited, not CPU; the store writer's own work is in the store's figures
//! (`/readyz`). What no stage covers (hyper's parsing and writing, the
//! sockets, the scheduler) is the process's CPU less the stages.

use super::Seconds;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

/// A stage of the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Guard, tenant, rate limits and quotas, the user (auth included).
    Admission,
    /// Verifying the caller's token.
    Auth,
    /// The request into protobuf (JSON or gRPC), the caller bound in.
    Decode,
    /// The edge's idempotency records: begin and finish.
    Idempotency,
    /// A fresh store and instance.
    Instantiate,
    /// The guest's own code.
    Guest,
    /// Every host function a guest called (contains the next three).
    HostCalls,
    /// Reads from the store (get, get-many, scan, counters).
    StoreRead,
    /// Waiting for a transaction's group commit (visible to readers).
    CommitWait,
    /// Waiting, as a top-level call ends, for what it wrote or read to be
    /// durable (the fsync its commits did not wait for).
    Durable,
    /// A component's rpc to another, all of it (the callee's stages are
    /// counted in theirs as well).
    Rpc,
    /// Dropping the store: the pooling allocator resets what the call dirtied.
    Teardown,
    /// The answer out of protobuf (JSON or gRPC).
    Encode,
}

impl Stage {
    pub const ALL: [Stage; 13] = [
        Stage::Admission,
        Stage::Auth,
        Stage::Decode,
        Stage::Idempotency,
        Stage::Instantiate,
        Stage::Guest,
        Stage::HostCalls,
        Stage::StoreRead,
        Stage::CommitWait,
        Stage::Durable,
        Stage::Rpc,
        Stage::Teardown,
        Stage::Encode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Auth => "auth",
            Stage::Decode => "decode",
            Stage::Idempotency => "idempotency",
            Stage::Instantiate => "instantiate",
            Stage::Guest => "guest",
            Stage::HostCalls => "host_calls",
            Stage::StoreRead => "store_read",
            Stage::CommitWait => "commit_wait",
            Stage::Durable => "durable",
            Stage::Rpc => "rpc",
            Stage::Teardown => "teardown",
            Stage::Encode => "encode",
        }
    }
}

/// The stage counters, pre-made handles of time and of times entered (an
/// add is two atomic updates). Cloning shares them.
#[derive(Clone)]
pub struct Stages {
    counters: Arc<[(Seconds, Counter); Stage::ALL.len()]>,
}

impl Stages {
    pub fn new(
        seconds: &Family<StageLabels, Seconds>,
        entered: &Family<StageLabels, Counter>,
    ) -> Stages {
        Stages {
            counters: Arc::new(Stage::ALL.map(|s| {
                let labels = StageLabels { stage: s.name() };
                (
                    seconds.get_or_create_owned(&labels),
                    entered.get_or_create_owned(&labels),
                )
            })),
        }
    }

    pub fn add(&self, stage: Stage, took: Duration) {
        let (seconds, entered) = &self.counters[stage as usize];
        seconds.inc_by(took.as_secs_f64());
        entered.inc();
    }

    /// Await `work`, counting its time under `stage`.
    pub async fn time<F: std::future::Future>(&self, stage: Stage, work: F) -> F::Output {
        let started = Instant::now();
        let out = work.await;
        self.lap(stage, started);
        out
    }

    /// A span of `stage` that counts until it is dropped (however the
    /// scope it lives in is left).
    pub fn span(&self, stage: Stage) -> Span<'_> {
        Span {
            stages: self,
            stage,
            started: Instant::now(),
        }
    }

    /// Count the time since `since` under `stage`; returns now, the start of
    /// whatever comes next.
    pub fn lap(&self, stage: Stage, since: Instant) -> Instant {
        let now = Instant::now();
        self.add(stage, now.saturating_duration_since(since));
        now
    }
}

/// See [`Stages::span`].
pub struct Span<'a> {
    stages: &'a Stages,
    stage: Stage,
    started: Instant,
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        self.stages.lap(self.stage, self.started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_under_their_names() {
        let (family, entered) = (Family::default(), Family::<_, Counter>::default());
        let stages = Stages::new(&family, &entered);
        stages.add(Stage::Guest, Duration::from_millis(3));
        stages.clone().add(Stage::Guest, Duration::from_millis(2));
        let start = Instant::now() - Duration::from_millis(1);
        let next = stages.lap(Stage::Encode, start);
        assert!(next >= start);
        let guest = family.get_or_create(&StageLabels { stage: "guest" }).get();
        assert!((guest - 0.005).abs() < 1e-9, "{guest}");
        let encode = family.get_or_create(&StageLabels { stage: "encode" }).get();
        assert!(encode >= 0.001, "{encode}");
        assert_eq!(
            entered.get_or_create(&StageLabels { stage: "guest" }).get(),
            2
        );
        // A span counts however its scope is left.
        let early = || -> Result<(), ()> {
            let _span = stages.span(Stage::Admission);
            Err(())
        };
        assert!(early().is_err());
        let admission = StageLabels { stage: "admission" };
        assert_eq!(entered.get_or_create(&admission).get(), 1);
        assert_eq!(
            Stage::ALL.iter().position(|s| *s == Stage::Encode),
            Some(Stage::Encode as usize)
        );
    }
}
