//! One component call: where it stands ([`CallContext`]), how it can fail
//! ([`CallError`]), and its `Store`: memory limit, deadline, and the guest
//! time it runs, metered by call hooks and epoch checks, preempted after a
//! slice and charged to its tenant, which may have it sleep (ADR 0010).

use super::state::CallState;
use super::{ComponentVersion, Runtime, Served};
use crate::foundations::metrics::Stage;
use crate::store::Seen;
use crate::tenancy::TenantQuotaError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use wasmtime::{CallHook, Store, UpdateDeadline};

/// Guest time a call runs before it yields to other tasks (it is checked
/// every epoch tick, a millisecond).
const SLICE: Duration = Duration::from_millis(1);

/// Where a call stands: tenant, trace, deadline, depth, and what it and the
/// calls it made have seen of the store.
#[derive(Clone)]
pub struct CallContext {
    pub tenant: Arc<Served>,
    pub trace_id: Arc<str>,
    pub deadline: Instant,
    pub depth: u32,
    pub seen: Seen,
}

impl CallContext {
    pub fn new(
        tenant: Arc<Served>,
        trace_id: Arc<str>,
        timeout: Duration,
        seen: Seen,
    ) -> CallContext {
        CallContext {
            tenant,
            trace_id,
            deadline: later(timeout),
            depth: 0,
            seen,
        }
    }

    /// The context of an rpc call made within this one.
    pub fn child(&self) -> CallContext {
        CallContext {
            depth: self.depth + 1,
            ..self.clone()
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Why a call did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The component answered with an error of the contract.
    #[error("{}", .0.message)]
    App(ProtoError),
    #[error("no service `{0}` in this bundle")]
    UnknownService(String),
    #[error("{0}")]
    Denied(String),
    #[error("`{component}` did not answer {method} within its deadline of {ms} ms")]
    Timeout {
        component: String,
        method: String,
        ms: u128,
    },
    #[error("`{component}` exceeded its memory limit of {mb} MiB")]
    MemoryExceeded { component: String, mb: usize },
    #[error("`{component}` failed: {message}")]
    Trapped { component: String, message: String },
    /// The calling tenant is at one of its quotas.
    #[error("{0}")]
    Quota(TenantQuotaError),
    #[error("{0}")]
    Internal(String),
}

impl CallError {
    /// The outcome label of a failed call in the metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::App(_) | CallError::UnknownService(_) | CallError::Denied(_) => "error",
            CallError::Timeout { .. } => "deadline_exceeded",
            CallError::MemoryExceeded { .. } => "memory_exceeded",
            CallError::Quota(_) => "quota_exceeded",
            CallError::Trapped { .. } | CallError::Internal(_) => "trap",
        }
    }

    /// The contract's error shape, with the trace id filled in.
    pub fn to_proto(&self, trace_id: &str) -> ProtoError {
        let code = match self {
            CallError::App(e) => {
                let mut e = e.clone();
                if e.trace_id.is_empty() {
                    e.trace_id = trace_id.to_string();
                }
                return e;
            }
            CallError::Quota(q) => return q.to_proto(trace_id),
            CallError::UnknownService(_) => ErrorCode::NotFound,
            CallError::Denied(_) => ErrorCode::Forbidden,
            CallError::Timeout { .. } => ErrorCode::Timeout,
            CallError::MemoryExceeded { .. } => ErrorCode::QuotaExceeded,
            CallError::Trapped { .. } | CallError::Internal(_) => ErrorCode::Internal,
        };
        ProtoError {
            code: code as i32,
            message: self.to_string(),
            trace_id: trace_id.to_string(),
            details: Vec::new(),
        }
    }
}

/// A fresh store for one call of `version`: its memory limit (policy and
/// tenant quota), and the epoch and call hooks that keep its deadline and
/// meter, preempt and throttle its guest time.
pub(super) fn new_store(
    runtime: &Arc<Runtime>,
    version: &Arc<ComponentVersion>,
    ctx: CallContext,
) -> Store<CallState> {
    let memory = ctx
        .tenant
        .quotas
        .memory_bytes(version.policy.limits().memory_bytes());
    let deadline = ctx.deadline;
    let state = CallState::new(runtime, version, ctx, memory);
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
    store.call_hook(|mut store, hook| {
        let now = Instant::now();
        let state = store.data_mut();
        match hook {
            CallHook::CallingWasm => state.guest.enter(now),
            CallHook::ReturningFromWasm => state.guest.leave(now),
            // Host calls nest (a host function lowering its result calls the
            // guest's allocator, which may grow memory, a libcall): count the
            // outermost span.
            CallHook::CallingHost => {
                state.guest.leave(now);
                if state.host_depth == 0 {
                    state.host_since = now;
                }
                state.host_depth += 1;
            }
            CallHook::ReturningFromHost => {
                state.guest.enter(now);
                state.host_depth = state.host_depth.saturating_sub(1);
                if state.host_depth == 0 {
                    state.stages.add(Stage::HostCalls, now - state.host_since);
                }
            }
        }
        Ok(())
    });
    // Every epoch tick of guest code: trap if late; charge the tenant what
    // ran; sleep off its debt over its guest-time quota, or yield once a
    // slice has run, so a spinning guest cannot starve the executor.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut store| {
        let now = Instant::now();
        if now >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        let state = store.data_mut();
        let ran = state.guest.take(now);
        state.stages.add(Stage::Guest, ran);
        let tenant = &state.ctx.tenant;
        if let Some(debt) = tenant.charge_guest_time(ran, now) {
            let sleep = debt.min(deadline - now);
            tenant.metrics.throttled(sleep);
            let pause = state.guest.pause(now, tokio::time::sleep(sleep));
            return Ok(UpdateDeadline::YieldCustom(1, pause));
        }
        if state.guest.since_yield() >= SLICE {
            let pause = state.guest.pause(now, tokio::task::yield_now());
            return Ok(UpdateDeadline::YieldCustom(1, pause));
        }
        Ok(UpdateDeadline::Continue(1))
    });
    store
}

/// Charge a finished call's tenant the guest time no epoch check charged;
/// the instance goes back to the pool (its teardown is counted).
pub(super) fn settle(mut store: Store<CallState>) {
    let now = Instant::now();
    let state = store.data_mut();
    let ran = state.guest.take(now);
    state.stages.add(Stage::Guest, ran);
    state.ctx.tenant.charge_guest_time(ran, now);
    let stages = state.stages.clone();
    drop(store);
    stages.lap(Stage::Teardown, now);
}

/// `now + by`, saturating at a year from now (an operator's huge
/// `deadline_ms` must not overflow `Instant`).
pub fn later(by: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(by)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(365 * 86_400))
}
