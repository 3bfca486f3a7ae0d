//! `tacos:platform/queue`: durable delayed messages, scoped by tenant.
//!
//! A component may send only to the topics its policy lists. The message is
//! durable when `send` returns; the dispatcher is woken so a message due now is
//! delivered at once.

use super::CallState;
use crate::runtime::bindings::platform::queue;
use crate::store::NewMessage;

const MAX_PAYLOAD: usize = 256 * 1024;

impl queue::Host for CallState {
    async fn send(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        delay_ms: u64,
    ) -> wasmtime::Result<Result<String, String>> {
        if !self.version.policy.may_send(&topic) {
            return Ok(Err(format!(
                "component `{}` may not send to topic `{topic}` (policy)",
                self.version.name
            )));
        }
        if payload.len() > MAX_PAYLOAD {
            return Ok(Err(format!(
                "payload is {} bytes; the limit is {MAX_PAYLOAD}",
                payload.len()
            )));
        }
        let msg = NewMessage {
            tenant: self.ctx.tenant.id.clone(),
            topic,
            payload,
            due_at_ms: self.now_ms().saturating_add(delay_ms),
        };
        match self.runtime.queue.enqueue(msg).await {
            Ok(id) => {
                self.runtime.queue_wakeup.notify_one();
                Ok(Ok(format!("{id:016x}")))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}
