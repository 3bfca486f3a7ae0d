//! `tacos:platform/log`: structured logs, tagged by the host with tenant,
//! component, version and trace id so that a component cannot forge them.

use super::CallState;
use crate::runtime::bindings::platform::log::{self, Level};

const MAX_MESSAGE: usize = 4096;

impl log::Host for CallState {
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
        let (tenant, component, version, trace) = (
            &self.ctx.tenant.id,
            &self.version.name,
            self.version.short_hash(),
            &*self.ctx.trace_id,
        );
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
                self.runtime.metrics.event(component, &message);
            }
            Level::Warn => emit!(tracing::Level::WARN),
            Level::Error => emit!(tracing::Level::ERROR),
        }
        Ok(())
    }
}
