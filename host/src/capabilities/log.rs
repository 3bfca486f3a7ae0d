//! `tacos:platform/log`: structured logs, tagged by the host with tenant,
//! component, version and trace id so that a component cannot forge them.

use super::bindings::platform::log::{self, Level};
use super::{Caller, Has};
use crate::foundations::metrics::Metrics;
use std::sync::Arc;
use wasmtime::component::Linker;

const MAX_MESSAGE: usize = 4096;

/// The log capability's state: who is logging, and the event counters.
pub struct LogCtx {
    caller: Arc<Caller>,
    metrics: Arc<Metrics>,
}

impl LogCtx {
    pub fn new(caller: Arc<Caller>, metrics: Arc<Metrics>) -> LogCtx {
        LogCtx { caller, metrics }
    }
}

impl log::Host for LogCtx {
    async fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let mut message = message;
        message.truncate(MAX_MESSAGE);
        let fields: String = fields
            .iter()
            .take(32)
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        let c = &self.caller;
        let (tenant, component, version, trace) =
            (&c.tenant.id, &c.component, &c.version, &*c.trace_id);
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(target: "tacos::component", $lvl, tenant, component, version, trace_id = trace, fields, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(tracing::Level::TRACE),
            Level::Debug => emit!(tracing::Level::DEBUG),
            Level::Info => {
                emit!(tracing::Level::INFO);
                self.metrics.event(component, &message);
            }
            Level::Warn => emit!(tracing::Level::WARN),
            Level::Error => emit!(tracing::Level::ERROR),
        }
        Ok(())
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, Has<LogCtx>>(linker, get)
}
