//! `tacos:platform/rpc`: calls to other services through the host.
//!
//! The caller's policy must list the target service. The call itself is the
//! runtime's ([`Rpc`], implemented a floor up): it keeps the tenant, trace id
//! and deadline of the call it is part of, one level deeper. Whatever goes
//! wrong comes back as an encoded `common.v1.Error`.

use super::bindings::platform::rpc;
use super::{Caller, Has};
use crate::foundations::metrics::{Stage, Stages};
use prost::Message;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use wasmtime::component::Linker;

const MAX_REQUEST: usize = 4 << 20;

/// A nested call's future.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, ProtoError>> + Send + 'a>>;

/// Makes the calls of one component call to other services.
pub trait Rpc: Send + Sync {
    /// Call `service`/`method` with an encoded request, one level deeper in
    /// this call's chain; an error is the contract's, trace id filled in.
    fn call<'a>(&'a self, service: &'a str, method: &'a str, request: &'a [u8]) -> Answer<'a>;
}

/// The rpc capability's state: the caller, and the runtime's way to call.
pub struct RpcCtx {
    caller: Arc<Caller>,
    rpc: Box<dyn Rpc>,
    /// A nested call's whole time is counted as a stage.
    stages: Stages,
}

impl RpcCtx {
    pub fn new(caller: Arc<Caller>, rpc: Box<dyn Rpc>, stages: Stages) -> RpcCtx {
        RpcCtx {
            caller,
            rpc,
            stages,
        }
    }

    fn denied(&self, message: String) -> Vec<u8> {
        ProtoError {
            code: ErrorCode::Forbidden as i32,
            message,
            trace_id: self.caller.trace_id.to_string(),
            details: Vec::new(),
        }
        .encode_to_vec()
    }
}

impl rpc::Host for RpcCtx {
    async fn call(
        &mut self,
        service: String,
        method: String,
        request: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, Vec<u8>>> {
        if !self.caller.policy.may_call(&service) {
            let component = &self.caller.component;
            return Ok(Err(self.denied(format!(
                "component `{component}` may not call `{service}` (policy)"
            ))));
        }
        if request.len() > MAX_REQUEST {
            return Ok(Err(self.denied(format!(
                "request of {} bytes exceeds {MAX_REQUEST}",
                request.len()
            ))));
        }
        let call = self.rpc.call(&service, &method, &request);
        let answer = self.stages.time(Stage::Rpc, call).await;
        Ok(answer.map_err(|e| e.encode_to_vec()))
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut RpcCtx,
) -> wasmtime::Result<()> {
    rpc::add_to_linker::<T, Has<RpcCtx>>(linker, get)
}
