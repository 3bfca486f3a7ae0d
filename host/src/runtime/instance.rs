//! The one way a component runs: a fresh instance per invocation, for a
//! request (`handler.call`) and a queue delivery (`message-handler.handle`)
//! alike. [`Runtime::invoke`] sets the deadline (the caller's, shortened to
//! the version's policy and the tenant's quota), makes the store, counts the
//! instance, runs the export, contains a trap, a timeout or a memory overrun
//! as a [`CallError`], settles the guest time and records the metrics.

use super::call::{self, CallContext, CallError};
use super::component::{ComponentVersion, Prepared};
use super::state::CallState;
use super::{Runtime, bindings};
use crate::foundations::metrics::Stage;
use bindings::consumer::exports::tacos::platform::message_handler::Delivery;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use wasmtime::{Store, Trap};

/// A context's timeout that leaves the deadline to the version and tenant
/// (what a delivery, which no client waits for, starts with).
pub(super) const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// What an invocation asks of an instance.
pub(super) enum Invoke<'a> {
    /// `handler.call(method, request)`; `method` is `package.Service/Method`.
    Call { method: &'a str, request: &'a [u8] },
    /// `message-handler.handle(delivery)` of a message on `topic`.
    Deliver {
        topic: &'a str,
        delivery: &'a Delivery,
    },
}

impl Invoke<'_> {
    /// How logs and errors name it.
    fn name(&self) -> String {
        match self {
            Invoke::Call { method, .. } => method.to_string(),
            Invoke::Deliver { topic, .. } => format!("message on {topic}"),
        }
    }
}

impl Runtime {
    /// Run `what` in a fresh instance of `version`: the response bytes (a
    /// delivery answers none), or why there are none.
    pub(super) async fn invoke(
        self: &Arc<Self>,
        mut ctx: CallContext,
        version: &Arc<ComponentVersion>,
        what: Invoke<'_>,
    ) -> Result<Vec<u8>, CallError> {
        let limit = ctx
            .tenant
            .quotas
            .deadline(version.policy.limits().deadline());
        // The time it is given: the version's and tenant's limit, or what the
        // caller has left if that is less.
        let started = Instant::now();
        let budget = limit.min(ctx.deadline.saturating_duration_since(started));
        if budget.is_zero() {
            // The caller has given up already (a gRPC client's `grpc-timeout`).
            return Err(CallError::Timeout {
                component: version.name.clone(),
                method: what.name(),
                ms: 0,
            });
        }
        // Never past the caller's deadline, so this cannot overflow.
        ctx.deadline = started + budget;
        let deadline = ctx.deadline;
        let tenant = ctx.tenant.clone();
        let trace = ctx.trace_id.clone();
        // A top-level call answers once what it (and the calls it made) wrote
        // or read is durable; the store answered their writes before that.
        let seen = (ctx.depth == 0).then(|| ctx.seen.clone());
        let mut store = call::new_store(self, version, ctx);
        let metrics = self.component_metrics.get(&version.name);
        if let Some(m) = metrics {
            m.instantiations.inc();
        }
        let outcome = run(&mut store, &version.prepared, &what, started).await;
        version.calls.fetch_add(1, Ordering::Relaxed);
        let result = match outcome {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(CallError::App(e)),
            Err(trap) => {
                version.failures.fetch_add(1, Ordering::Relaxed);
                let err = contained(version, &what.name(), &store, trap, budget, deadline);
                tracing::warn!(component = %version.name, version = version.short_hash(), method = %what.name(), trace_id = %trace, error = %err, "component call contained");
                Err(err)
            }
        };
        call::settle(store);
        let result = match seen {
            Some(seen) => match self
                .metrics
                .stages
                .time(Stage::Durable, seen.durable())
                .await
            {
                Ok(()) => result,
                Err(e) => Err(CallError::Internal(format!(
                    "the store did not make the call's writes durable: {e}"
                ))),
            },
            None => result,
        };
        let outcome = result.as_ref().err().map(CallError::outcome);
        if let Some(m) = metrics {
            m.observe(&self.metrics, outcome, started.elapsed());
        }
        let took = started.elapsed();
        tenant.metrics.observe(outcome, took);
        if let Invoke::Call { method, .. } = &what {
            let contained = matches!(&result, Err(e) if !matches!(e, CallError::App(_)));
            tenant.metrics.pulse.call(method, result.is_ok(), contained);
        }
        result
    }
}

/// Instantiate and run the export: a trap is the outer error, the
/// component's own error the inner one. The time from `started` (the
/// store's making) to a ready instance counts as instantiation.
async fn run(
    store: &mut Store<CallState>,
    prepared: &Prepared,
    what: &Invoke<'_>,
    started: Instant,
) -> wasmtime::Result<Result<Vec<u8>, ProtoError>> {
    let instantiated = |store: &Store<CallState>| {
        store.data().stages.lap(Stage::Instantiate, started);
    };
    match (prepared, what) {
        (Prepared::Service(pre), Invoke::Call { method, request }) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            instantiated(store);
            let handler = instance.tacos_platform_handler();
            let answer = handler.call_call(&mut *store, method, request).await?;
            Ok(answer.map_err(|e| app_error(&e, what)))
        }
        (Prepared::Consumer(pre), Invoke::Call { method, request }) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            instantiated(store);
            let handler = instance.tacos_platform_handler();
            let answer = handler.call_call(&mut *store, method, request).await?;
            Ok(answer.map_err(|e| app_error(&e, what)))
        }
        (Prepared::Consumer(pre), Invoke::Deliver { delivery, .. }) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            instantiated(store);
            let handler = instance.tacos_platform_message_handler();
            let handled = handler.call_handle(&mut *store, delivery).await?;
            // A consumer's error is a message for the retry log, not a contract error.
            Ok(handled.map(|()| Vec::new()).map_err(|message| ProtoError {
                code: ErrorCode::Unspecified as i32,
                message,
                ..Default::default()
            }))
        }
        (Prepared::Service(_), Invoke::Deliver { .. }) => {
            wasmtime::bail!("this component cannot consume messages")
        }
    }
}

/// A component's encoded `common.v1.Error`.
fn app_error(bytes: &[u8], what: &Invoke<'_>) -> ProtoError {
    prost::Message::decode(bytes).unwrap_or_else(|_| ProtoError {
        code: ErrorCode::Internal as i32,
        message: format!("{} returned an undecodable error", what.name()),
        ..Default::default()
    })
}

/// Describe a trapped call.
fn contained(
    version: &ComponentVersion,
    method: &str,
    store: &Store<CallState>,
    trap: wasmtime::Error,
    budget: Duration,
    deadline: Instant,
) -> CallError {
    if store.data().memory_exceeded {
        return CallError::MemoryExceeded {
            component: version.name.clone(),
            mb: store.data().memory_limit() >> 20,
        };
    }
    if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) || Instant::now() >= deadline {
        return CallError::Timeout {
            component: version.name.clone(),
            method: method.to_string(),
            ms: budget.as_millis(),
        };
    }
    CallError::Trapped {
        component: version.name.clone(),
        message: format!("{trap:#}"),
    }
}
