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
//!    (`Runtime::call_served`);
//! 5. the answer recorded under the key.

use super::admission::Admitted;
use super::guards::Guard;
use super::idempotency::{self, Begin};
use super::{Edge, errors};
use crate::runtime::ComponentVersion;
use hyper::HeaderMap;
use prost_reflect::MessageDescriptor;
use std::sync::Arc;
use std::time::Duration;
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
        match self.run_steps(call).await {
            Ok(answer) => answer,
            Err(e) => e.into(),
        }
    }

    async fn run_steps(&self, call: Call<'_>) -> Result<Answer, ProtoError> {
        let Admitted { tenant, user } = call.admitted;
        let trace = call.trace;
        if call.guard == Guard::SignedWebhook {
            self.verify_webhook(tenant, call.headers, call.signed, trace)?;
        }
        let message = self.bind(
            call.input,
            call.message,
            user.as_deref(),
            call.idempotency_key,
            trace,
        )?;
        let runtime = &self.shared.runtime;
        let ticket = match call.idempotency_key {
            None => None,
            Some(key) => {
                let fingerprint = idempotency::fingerprint(call.service, call.method, &message);
                let caller = user.as_deref().unwrap_or("");
                let begin = self.idempotency.begin(&tenant.id, caller, key, fingerprint);
                match begin.await {
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
        let (result, version) = runtime
            .call_served(&ctx, call.service, call.method, &message)
            .await;
        let result = result.map_err(|e| e.to_proto(trace));
        if let Some(ticket) = ticket {
            ticket.finish(&result).await;
        }
        Ok(Answer {
            result,
            version,
            replayed: false,
        })
    }
}
