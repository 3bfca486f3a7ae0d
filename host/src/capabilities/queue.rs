//! `tacos:platform/queue`: durable delayed messages, scoped by tenant.
//!
//! A component may send only to the topics its policy lists, and a tenant no
//! more than its `queue_depth` quota lets wait. The message is
//! durable when `send` returns; the dispatcher is woken so a message due now is
//! delivered at once.

use super::bindings::platform::kv::{Error, OutboxMessage};
use super::bindings::platform::queue;
use super::{Caller, Has};
use crate::foundations::clock::Clock;
use crate::store::{NewMessage, QueueStore, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;
use wasmtime::component::Linker;

const MAX_PAYLOAD: usize = 256 * 1024;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("component `{component}` may not send to topic `{topic}` (policy)")]
    NotAllowed { component: String, topic: String },
    #[error("payload is {0} bytes; the limit is {MAX_PAYLOAD}")]
    TooLarge(usize),
    /// The tenant's `queue_depth` quota.
    #[error("tenant `{tenant}` has {pending} messages waiting; its queue_depth quota is {max}")]
    Depth {
        tenant: String,
        pending: u64,
        max: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The queue capability's state: the caller, the queue store, the clock
/// that dates messages, and the dispatcher's wake-up. The kv capability holds
/// one too, for the messages a transaction sends.
pub struct QueueCtx {
    caller: Arc<Caller>,
    store: Arc<dyn QueueStore>,
    clock: Arc<Clock>,
    wakeup: Arc<Notify>,
}

impl QueueCtx {
    pub fn new(
        caller: Arc<Caller>,
        store: Arc<dyn QueueStore>,
        clock: Arc<Clock>,
        wakeup: Arc<Notify>,
    ) -> QueueCtx {
        QueueCtx {
            caller,
            store,
            clock,
            wakeup,
        }
    }

    pub(super) fn caller(&self) -> &Caller {
        &self.caller
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Tell the dispatcher a message was sent.
    pub(super) fn wake(&self) {
        self.wakeup.notify_one();
    }

    /// Check a message against the policy and limits and scope it to the tenant.
    pub(super) fn outbox_message(
        &self,
        m: OutboxMessage,
        now_ms: u64,
    ) -> Result<NewMessage, Error> {
        self.new_message(m.topic, m.payload, m.delay_ms, now_ms)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    fn new_message(
        &self,
        topic: String,
        payload: Vec<u8>,
        delay_ms: u64,
        now_ms: u64,
    ) -> Result<NewMessage, QueueError> {
        if !self.caller.policy.may_send(&topic) {
            return Err(QueueError::NotAllowed {
                component: self.caller.component.clone(),
                topic,
            });
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(QueueError::TooLarge(payload.len()));
        }
        Ok(NewMessage {
            tenant: self.caller.tenant.id.clone(),
            topic,
            payload,
            due_at_ms: now_ms.saturating_add(delay_ms),
            trace_id: self.caller.trace_id.to_string(),
        })
    }

    /// Refuse `adding` messages that would take the tenant past its queue depth.
    pub(super) async fn check_queue_depth(&mut self, adding: u64) -> Result<(), QueueError> {
        let tenant = &self.caller.tenant;
        let Some(max) = tenant.quotas.queue_depth else {
            return Ok(());
        };
        let pending = self.store.pending(&tenant.id).await?;
        if pending + adding > max {
            tenant.metrics.quota_hit("queue_depth");
            return Err(QueueError::Depth {
                tenant: tenant.id.clone(),
                pending,
                max,
            });
        }
        Ok(())
    }
}

impl queue::Host for QueueCtx {
    async fn send(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        delay_ms: u64,
    ) -> wasmtime::Result<Result<String, String>> {
        let msg = match self.new_message(topic, payload, delay_ms, self.now_ms()) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Err(e) = self.check_queue_depth(1).await {
            return Ok(Err(e.to_string()));
        }
        match self.store.enqueue(msg).await {
            Ok(id) => {
                self.wake();
                Ok(Ok(format!("{id:016x}")))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut QueueCtx,
) -> wasmtime::Result<()> {
    queue::add_to_linker::<T, Has<QueueCtx>>(linker, get)
}
