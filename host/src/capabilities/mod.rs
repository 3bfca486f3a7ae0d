//! The host side of the `tacos:platform` capabilities, one file per WIT interface.
//!
//! [`CallState`] is the data of one call's `Store`: who is calling (tenant,
//! component version, trace id, deadline, depth) and the WASI context. Every
//! capability scopes what it touches by tenant and component here, so a
//! component cannot name another tenant's or component's data whatever it
//! sends. Host functions return `wasmtime::Result<Result<T, E>>`: the outer
//! error traps the guest (a host bug or an abuse), the inner one is the guest's
//! to handle.

mod clock;
mod config;
mod kv;
mod log;
mod queue;
mod rpc;
mod token;
mod webhook;

use crate::runtime::{CallContext, ComponentVersion, Runtime};
use crate::tenancy::cpu::GuestClock;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The state of one component call.
pub struct CallState {
    pub runtime: Arc<Runtime>,
    pub version: Arc<ComponentVersion>,
    pub ctx: CallContext,
    wasi: WasiCtx,
    table: ResourceTable,
    memory_limit: usize,
    /// Set when the guest asked for more memory than its limit.
    pub memory_exceeded: bool,
    /// How long the guest's own code has run.
    pub guest: GuestClock,
}

impl CallState {
    pub fn new(
        runtime: Arc<Runtime>,
        version: Arc<ComponentVersion>,
        ctx: CallContext,
        memory_limit: usize,
    ) -> CallState {
        // No environment, arguments, files or sockets: only the host clock.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .wall_clock(crate::clock::WasiWallClock(runtime.clock.clone()))
            .build();
        CallState {
            runtime,
            version,
            ctx,
            wasi,
            table: ResourceTable::new(),
            memory_limit,
            memory_exceeded: false,
            guest: GuestClock::new(),
        }
    }

    /// The memory limit of this instance (policy and tenant quota), bytes.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// The prefix that scopes kv keys: `{tenant}/{component}/`.
    fn scope(&self) -> String {
        format!("{}/{}/", self.ctx.tenant.id, self.version.name)
    }

    fn now_ms(&self) -> u64 {
        self.runtime.clock.now_ms()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
