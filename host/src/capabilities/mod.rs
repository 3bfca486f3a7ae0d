//! The host side of the `tacos:platform` capabilities, one module per WIT
//! interface, in the shape of wasmtime-wasi's crates: each module has its own
//! host state (`KvCtx`, `WebhookCtx`, …) holding only what that capability
//! needs, implements the interface's `Host` trait on it, and has an
//! `add_to_linker` that takes a getter from the store's data to that state.
//! So webhook code cannot reach the kv store, and a capability is tested and
//! read alone.
//!
//! Every state carries the [`Caller`] (tenant, component, policy, trace,
//! deadline) and scopes what it touches by tenant and component, so a
//! component cannot name another tenant's or component's data whatever it
//! sends. Host functions return `wasmtime::Result<Result<T, E>>`: the outer
//! error traps the guest (a host bug or an abuse), the inner one is the
//! guest's to handle.
//!
//! The store's data that composes these states is the runtime's
//! (`runtime::state::CallState`), a floor up: this floor knows nothing of
//! slots or calls, only of what one call may do.

pub mod bindings;
pub mod clock;
pub mod config;
pub mod kv;
pub mod log;
pub mod queue;
pub mod rpc;
pub mod token;
pub mod webhook;

use crate::foundations::policy::ComponentPolicy;
use crate::store::Seen;
use crate::tenancy::Tenant;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::HasData;

/// Who is calling, as every capability sees it; made once per call.
pub struct Caller {
    pub tenant: Arc<Tenant>,
    /// The slot name (`payment-sim`): policy entry and kv namespace.
    pub component: String,
    /// The version's short hash, for logs.
    pub version: String,
    pub policy: Arc<ComponentPolicy>,
    pub trace_id: Arc<str>,
    pub deadline: Instant,
    /// What the call has seen of the store, to be durable before it answers.
    pub seen: Seen,
}

impl Caller {
    /// Time left before the call's deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The `HasData` of a capability whose host state is `C`: the bindings'
/// `add_to_linker` hands the getter's `&mut C` to the `Host` impl.
struct Has<C>(PhantomData<C>);

impl<C: 'static> HasData for Has<C> {
    type Data<'a> = &'a mut C;
}
