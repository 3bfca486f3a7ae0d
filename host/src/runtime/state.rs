//! The data of one call's `Store` ([`CallState`]): the call's context, the
//! host state of each capability (made from the runtime's resources for this
//! caller), the WASI context, and the memory and guest-time accounting.
//!
//! Adding a capability touches three places: its module in `capabilities/`
//! (state, `Host` impl, `add_to_linker`), a field here made in
//! [`CallState::new`], and one line in [`add_to_linker`]; plus its WIT.

use super::{CallContext, ComponentVersion, Runtime};
use crate::capabilities::clock::ClockCtx;
use crate::capabilities::config::ConfigCtx;
use crate::capabilities::kv::KvCtx;
use crate::capabilities::log::LogCtx;
use crate::capabilities::queue::QueueCtx;
use crate::capabilities::rpc::{Answer, Rpc, RpcCtx};
use crate::capabilities::token::TokenCtx;
use crate::capabilities::webhook::WebhookCtx;
use crate::capabilities::{self, Caller};
use crate::foundations::metrics::Stages;
use crate::tenancy::cpu::GuestClock;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The state of one component call.
pub struct CallState {
    pub ctx: CallContext,
    clock: ClockCtx,
    config: ConfigCtx,
    kv: KvCtx,
    log: LogCtx,
    queue: QueueCtx,
    rpc: RpcCtx,
    token: TokenCtx,
    webhook: WebhookCtx,
    wasi: WasiCtx,
    table: ResourceTable,
    memory_limit: usize,
    /// Set when the guest asked for more memory than its limit.
    pub memory_exceeded: bool,
    /// How long the guest's own code has run.
    pub guest: GuestClock,
    /// Where host time goes (guest, host calls).
    pub stages: Stages,
    /// The host calls under way: how deep they nest, and when the outermost
    /// began.
    pub host_depth: u32,
    pub host_since: std::time::Instant,
}

impl CallState {
    pub fn new(
        runtime: &Arc<Runtime>,
        version: &ComponentVersion,
        ctx: CallContext,
        memory_limit: usize,
    ) -> CallState {
        let caller = Arc::new(Caller {
            tenant: ctx.tenant.tenant.clone(),
            component: version.name.clone(),
            version: version.short_hash().to_string(),
            policy: version.policy.clone(),
            trace_id: ctx.trace_id.clone(),
            deadline: ctx.deadline,
            seen: ctx.seen.clone(),
        });
        let queue = || {
            QueueCtx::new(
                caller.clone(),
                runtime.queue.clone(),
                runtime.clock.clone(),
                runtime.queue_wakeup.clone(),
            )
        };
        let nested = Nested {
            runtime: runtime.clone(),
            ctx: ctx.child(),
        };
        // No environment, arguments, files or sockets: only the host clock.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .wall_clock(crate::foundations::clock::WasiWallClock(
                runtime.clock.clone(),
            ))
            .build();
        CallState {
            clock: ClockCtx::new(runtime.clock.clone()),
            config: ConfigCtx::new(version.config.clone(), runtime.public_url.clone()),
            kv: KvCtx::new(runtime.kv.clone(), queue(), runtime.metrics.stages.clone()),
            log: LogCtx::new(caller.clone(), runtime.metrics.clone()),
            queue: queue(),
            rpc: RpcCtx::new(
                caller.clone(),
                Box::new(nested),
                runtime.metrics.stages.clone(),
            ),
            token: TokenCtx::new(caller.clone()),
            webhook: WebhookCtx::new(
                caller,
                runtime.http.clone(),
                runtime.codec.clone(),
                runtime.clock.clone(),
                runtime.public_url.clone(),
            ),
            ctx,
            wasi,
            table: ResourceTable::new(),
            memory_limit,
            memory_exceeded: false,
            guest: GuestClock::new(),
            stages: runtime.metrics.stages.clone(),
            host_depth: 0,
            host_since: std::time::Instant::now(),
        }
    }

    /// The memory limit of this instance (policy and tenant quota), bytes.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }
}

/// WASI and every `tacos:platform` capability, each given its own state.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    capabilities::clock::add_to_linker(linker, |s| &mut s.clock)?;
    capabilities::config::add_to_linker(linker, |s| &mut s.config)?;
    capabilities::kv::add_to_linker(linker, |s| &mut s.kv)?;
    capabilities::log::add_to_linker(linker, |s| &mut s.log)?;
    capabilities::queue::add_to_linker(linker, |s| &mut s.queue)?;
    capabilities::rpc::add_to_linker(linker, |s| &mut s.rpc)?;
    capabilities::token::add_to_linker(linker, |s| &mut s.token)?;
    capabilities::webhook::add_to_linker(linker, |s| &mut s.webhook)?;
    Ok(())
}

/// The rpc capability's calls: through the runtime, one level deeper.
struct Nested {
    runtime: Arc<Runtime>,
    ctx: CallContext,
}

impl Rpc for Nested {
    fn call<'a>(&'a self, service: &'a str, method: &'a str, request: &'a [u8]) -> Answer<'a> {
        Box::pin(async move {
            let runtime = &self.runtime;
            Box::pin(runtime.call(&self.ctx, service, method, request))
                .await
                .map_err(|e| e.to_proto(&self.ctx.trace_id))
        })
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
