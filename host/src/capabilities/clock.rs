//! `tacos:platform/clock`: the host clock (virtual under `--virtual-clock`).

use super::Has;
use super::bindings::platform::clock;
use crate::foundations::clock::Clock;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The clock capability's state: the host clock.
pub struct ClockCtx {
    clock: Arc<Clock>,
}

impl ClockCtx {
    pub fn new(clock: Arc<Clock>) -> ClockCtx {
        ClockCtx { clock }
    }
}

impl clock::Host for ClockCtx {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ClockCtx,
) -> wasmtime::Result<()> {
    clock::add_to_linker::<T, Has<ClockCtx>>(linker, get)
}
