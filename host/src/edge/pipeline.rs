//! The one pipeline of a request on either protocol, after admission
//! ([`super::admission`]: client IP, guard, tenant, quota, user) and once its
//! message is read: each protocol only translates its wire format into a
//! [`Call`] and renders the [`Answer`] back.
//!
//! 1. a signed webhook's signature, over the bytes as they arrived
//!    ([`Edge::verify_webhook`]);
//! 2. the caller bound into the message: the authenticated user as
//!    `user_id`, the idempotency key as `idempotency_key` ([`Edge::bind`]);
//! 3. the idempotency key: replay an earlier answer, refuse a different
//!    request under the same key, or wait for a duplicate in flight
//!    ([`super::idempotency`]);
//! 4. the component call, with the tenant, trace and deadline
//!    (`Runtime::call_served`); an answer of `CONCURRENT_MODIFICATION` (the
//!    component changed nothing: a duplicate of this request is running on
//!    another host, or a write raced) is retried with backoff within the
//!    deadline, so a duplicate gets the first request's answer on every host,
//!    as it does on one ([`retry_pause`]);
//! 5. the answer recorded under the key.

use super::admission::Admitted;
use super::guards::Guard;
use super::idempotency::{self, Begin};
use super::{Edge, errors};
use crate::foundations::metrics::Stage;
use crate::runtime::ComponentVersion;
use hyper::HeaderMap;
use prost_reflect::MessageDescriptor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

/// The longest a call may run: the REST deadline, and the most a gRPC
/// client's `grpc-timeout` can ask for.
pub(super) const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// A request of either protocol, admitted and read.
pub(super) struct Call<'a> {
    pub admitted: &'a Admitted,
    pub guard: Guard,
    /// The component's service and RPC.
    pub service: &'a str,
    pub method: &'a str,
    pub input: &'a MessageDescriptor,
    pub headers: &'a HeaderMap,
    /// What a webhook signature covers: the body as it arrived.
    pub signed: &'a [u8],
    /// The encoded request message.
    pub message: Vec<u8>,
    /// A checked idempotency key (see [`idempotency::valid_key`]).
    pub idempotency_key: Option<&'a str>,
    pub trace: &'a str,
    pub timeout: Duration,
}

/// What the pipeline answers.
pub(super) struct Answer {
    pub result: idempotency::Answer,
    /// The version that ran the call (none when nothing ran).
    pub version: Option<Arc<ComponentVersion>>,
    /// An earlier answer to the same idempotency key.
    pub replayed: bool,
}

impl From<ProtoError> for Answer {
    fn from(e: ProtoError) -> Answer {
        Answer {
            result: Err(e),
            version: None,
            replayed: false,
        }
    }
}

impl Edge {
    /// Run `call` through the pipeline.
    pub(super) async fn run(&self, call: Call<'_>) -> Answer {
        let started = Instant::now();
        let admitted = call.admitted;
        let answer = match self.run_steps(call).await {
            Ok(answer) => answer,
            Err(e) => e.into(),
        };
        admitted.tenant.metrics.pulse.request(started.elapsed());
        answer
    }

    async fn run_steps(&self, call: Call<'_>) -> Result<Answer, ProtoError> {
        let Admitted { tenant, user } = call.admitted;
        let trace = call.trace;
        if call.guard == Guard::SignedWebhook {
            self.verify_webhook(tenant, call.headers, call.signed, trace)?;
        }
        let stages = &self.shared.runtime.metrics.stages;
        let started = Instant::now();
        let message = self.bind(
            call.input,
            call.message,
            user.as_deref(),
            call.idempotency_key,
            trace,
        );
        stages.lap(Stage::Decode, started);
        let message = message?;
        let runtime = &self.shared.runtime;
        let ticket = match call.idempotency_key {
            None => None,
            Some(key) => {
                let fingerprint = idempotency::fingerprint(call.service, call.method, &message);
                let caller = user.as_deref().unwrap_or("");
                let begin = self.idempotency.begin(&tenant.id, caller, key, fingerprint);
                match stages.time(Stage::Idempotency, begin).await {
                    Ok(Begin::Run(ticket)) => Some(ticket),
                    Ok(Begin::Replay(result)) => {
                        runtime.metrics.idempotent_replays.inc();
                        return Ok(Answer {
                            result,
                            version: None,
                            replayed: true,
                        });
                    }
                    Ok(Begin::Conflict) => {
                        return Err(errors::error(
                            ErrorCode::IdempotencyConflict,
                            format!("Idempotency-Key `{key}` was used for a different request"),
                            trace,
                        ));
                    }
                    Err(e) => {
                        return Err(errors::error(
                            ErrorCode::Unavailable,
                            format!("idempotency records: {e}"),
                            trace,
                        ));
                    }
                }
            }
        };
        let ctx = runtime.context(tenant, trace.into(), call.timeout);
        let mut attempt = 0;
        let (result, version) = loop {
            let (result, version) = runtime
                .call_served(&ctx, call.service, call.method, &message)
                .await;
            let result = result.map_err(|e| e.to_proto(trace));
            let contended =
                matches!(&result, Err(e) if e.code == ErrorCode::ConcurrentModification as i32);
            match retry_pause(attempt) {
                Some(pause) if contended && pause < ctx.remaining() => {
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                _ => break (result, version),
            }
        };
        if let Some(ticket) = ticket {
            stages
                .time(Stage::Idempotency, ticket.finish(&result))
                .await;
        }
        Ok(Answer {
            result,
            version,
            replayed: false,
        })
    }
}

/// How long to wait before retrying a call answered `CONCURRENT_MODIFICATION`
/// for the `attempt`th time: 5 ms doubling to 320 ms, then give up (about
/// 0.6 s in all); the answer goes back as it is then.
fn retry_pause(attempt: u32) -> Option<Duration> {
    (attempt < 7).then(|| Duration::from_millis(5 << attempt))
}

#[cfg(test)]
mod tests {
    use super::retry_pause;
    use std::time::Duration;

    #[test]
    fn contended_calls_back_off_then_give_up() {
        assert_eq!(retry_pause(0), Some(Duration::from_millis(5)));
        assert_eq!(retry_pause(6), Some(Duration::from_millis(320)));
        assert_eq!(retry_pause(7), None);
        let total: Duration = (0..10).filter_map(retry_pause).sum();
        assert_eq!(total, Duration::from_millis(635));
    }
}
