//! `tacos:platform/rpc`: calls to other services through the host.
//!
//! The caller's policy must list the target service. The call keeps the
//! tenant, trace id and deadline of the call it is part of, one level deeper;
//! whatever goes wrong comes back as an encoded `common.v1.Error`.

use super::CallState;
use crate::runtime::CallError;
use crate::runtime::bindings::platform::rpc;
use prost::Message;

const MAX_REQUEST: usize = 4 << 20;

impl rpc::Host for CallState {
    async fn call(
        &mut self,
        service: String,
        method: String,
        request: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, Vec<u8>>> {
        let trace = self.ctx.trace_id.clone();
        if !self.version.policy.may_call(&service) {
            let e = CallError::Denied(format!(
                "component `{}` may not call `{service}` (policy)",
                self.version.name
            ));
            return Ok(Err(e.to_proto(&trace).encode_to_vec()));
        }
        if request.len() > MAX_REQUEST {
            let e = CallError::Denied(format!(
                "request of {} bytes exceeds {MAX_REQUEST}",
                request.len()
            ));
            return Ok(Err(e.to_proto(&trace).encode_to_vec()));
        }
        let ctx = self.ctx.child();
        let runtime = self.runtime.clone();
        let result = Box::pin(runtime.call(&ctx, &service, &method, &request)).await;
        Ok(result.map_err(|e| e.to_proto(&trace).encode_to_vec()))
    }
}
