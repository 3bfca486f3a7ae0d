//! `tacos:platform/clock`: the host clock (virtual under `--virtual-clock`).

use super::CallState;
use crate::runtime::bindings::platform::clock;

impl clock::Host for CallState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(CallState::now_ms(self))
    }
}
