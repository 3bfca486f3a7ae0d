//! Delivery of queue messages to consumer components.
//!
//! The dispatcher leases due messages from the [`QueueStore`] (a lease hides a
//! message for [`VISIBILITY_MS`], so a host that dies mid-delivery loses
//! nothing: the message becomes due again), hands each to the component that
//! consumes its topic, then acks it, or retries it after 1 s, 2 s, 4 s, 8 s, or
//! after [`MAX_ATTEMPTS`] moves it to the tenant's dead letters. Delivery is at
//! least once; handlers are idempotent. A message goes to the consumer of its
//! own tenant; a message whose tenant is not on the host (removed, or not yet
//! added) waits [`NO_TENANT_RETRY_MS`] between attempts, so a tenant re-added
//! in time gets it.
//!
//! It sleeps until the next message is due, or until woken by a send or a
//! virtual-clock advance. [`Dispatcher::settle`] waits until nothing is due or
//! in flight, which is how an advance of the virtual clock returns only once
//! the consequences (expiries, payments, confirmations) have happened.

use crate::foundations::metrics::TopicLabels;
use crate::runtime::{Runtime, Undelivered};
use crate::store::{Leased, QueueStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Delays before attempts 2, 3, 4 and 5.
pub const BACKOFF_MS: [u64; 4] = [1_000, 2_000, 4_000, 8_000];
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a leased message stays hidden (longer than any call deadline).
pub const VISIBILITY_MS: u64 = 90_000;
/// How long a message of a tenant not on this host waits before the next attempt.
pub const NO_TENANT_RETRY_MS: u64 = 60_000;
/// Deliveries running at once.
const CONCURRENCY: usize = 64;
const BATCH: usize = 64;

/// Delivery counters.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
}

/// One running delivery: its place in `busy` and its concurrency slot,
/// given back when dropped.
struct Busy {
    dispatcher: Arc<Dispatcher>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.dispatcher.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Dispatcher {
    runtime: Arc<Runtime>,
    /// Deliveries running, plus one while a lease is being taken.
    busy: AtomicUsize,
    slots: Arc<Semaphore>,
    pub stats: DeliveryStats,
}

impl Dispatcher {
    pub fn start(runtime: Arc<Runtime>) -> Arc<Dispatcher> {
        let d = Arc::new(Dispatcher {
            runtime,
            busy: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(CONCURRENCY)),
            stats: DeliveryStats::default(),
        });
        tokio::spawn(d.clone().run());
        d
    }

    fn queue(&self) -> &dyn QueueStore {
        self.runtime.queue.as_ref()
    }

    async fn run(self: Arc<Self>) {
        loop {
            let now = self.runtime.clock.now_ms();
            self.busy.fetch_add(1, Ordering::SeqCst);
            let leased = self
                .queue()
                .lease_due(now, now + VISIBILITY_MS, BATCH)
                .await;
            let full = match leased {
                Ok(batch) => {
                    let full = batch.len() == BATCH;
                    for msg in batch {
                        let Ok(permit) = self.slots.clone().acquire_owned().await else {
                            return;
                        };
                        self.busy.fetch_add(1, Ordering::SeqCst);
                        let me = self.clone();
                        tokio::spawn(async move {
                            // Counted down however the delivery ends, a panic
                            // included, so `settle` still returns.
                            let _busy = Busy {
                                dispatcher: me.clone(),
                                _slot: permit,
                            };
                            let (tenant, topic, id) =
                                (msg.tenant.clone(), msg.topic.clone(), msg.id);
                            let delivery = tokio::spawn(async move { me.deliver(msg).await });
                            if let Err(e) = delivery.await {
                                tracing::error!(%tenant, %topic, id, error = %e, "a delivery failed in the host; the message comes due again when its lease ends");
                            }
                        });
                    }
                    full
                }
                Err(e) => {
                    tracing::error!(error = %e, "leasing queue messages failed; retrying in 1 s");
                    false
                }
            };
            self.busy.fetch_sub(1, Ordering::SeqCst);
            if full {
                continue;
            }
            let wait = self.wait_time(now).await;
            if !wait.is_zero() {
                tokio::select! {
                    _ = self.runtime.queue_wakeup.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// How long to sleep before looking again.
    async fn wait_time(&self, now: u64) -> Duration {
        const IDLE: Duration = Duration::from_secs(1);
        match self.queue().next_due().await {
            Ok(Some(due)) if due <= now => Duration::ZERO,
            // Virtual time only moves when advanced, and an advance wakes us.
            Ok(Some(_)) if self.runtime.clock.is_virtual() => IDLE,
            Ok(Some(due)) => Duration::from_millis(due - now).min(IDLE),
            Ok(None) => IDLE,
            Err(_) => IDLE,
        }
    }

    async fn deliver(&self, msg: Leased) {
        // The delivery continues the trace of the call that sent the message.
        let trace: Arc<str> = if msg.trace_id.is_empty() {
            crate::foundations::trace::new_trace_id().into()
        } else {
            msg.trace_id.as_str().into()
        };
        let outcome = self.runtime.deliver(&msg, trace.clone()).await;
        let store = self.queue();
        let count = |outcome: &'static str| {
            self.runtime
                .metrics
                .messages
                .get_or_create(&TopicLabels {
                    topic: msg.topic.clone().into(),
                    outcome: outcome.into(),
                })
                .inc();
        };
        let result = match outcome {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                count("acked");
                store.ack(&msg).await
            }
            Err(why)
                if msg.attempt >= MAX_ATTEMPTS || matches!(why, Undelivered::NoConsumer(_)) =>
            {
                let reason = why.to_string();
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                count("dead_lettered");
                tracing::error!(tenant = %msg.tenant, topic = %msg.topic, id = msg.id, attempt = msg.attempt, trace_id = %trace, %reason, "message dead-lettered");
                store.dead_letter(&msg, &reason).await
            }
            Err(why) => {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                count("retried");
                let backoff = match why {
                    Undelivered::NoTenant(_) => NO_TENANT_RETRY_MS,
                    _ => BACKOFF_MS[(msg.attempt as usize - 1).min(BACKOFF_MS.len() - 1)],
                };
                let reason = why.to_string();
                tracing::warn!(tenant = %msg.tenant, topic = %msg.topic, id = msg.id, attempt = msg.attempt, retry_in_ms = backoff, trace_id = %trace, %reason, "message delivery failed");
                store
                    .retry(&msg, self.runtime.clock.now_ms() + backoff)
                    .await
            }
        };
        if let Err(e) = result {
            // The lease runs out and the message comes back: nothing is lost.
            tracing::error!(id = msg.id, error = %e, "recording a delivery outcome failed");
        }
    }

    /// Wait until no message is due and none is being delivered, or `timeout`.
    /// Returns whether the queue settled.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let now = self.runtime.clock.now_ms();
            let due = matches!(self.queue().next_due().await, Ok(Some(d)) if d <= now);
            if !due && self.busy.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
