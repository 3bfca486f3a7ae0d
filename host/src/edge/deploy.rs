//! Operator routes that change what runs: list services, swap a service's
//! component or config, roll it back. All need the admin token when the host
//! has one; all answer in the contract's error shape.
//!
//! - `GET  /admin/v1/services`
//! - `POST /admin/v1/services/{service}/swap`
//!   `{"component_base64"?, "build"?, "origin"?, "config"?: {k: v}, "self_check"?: true}`
//! - `POST /admin/v1/services/{service}/rollback`

use super::{Body, Edge, admin, errors, json};
use crate::runtime::swap::{SwapError, SwapRequest};
use crate::sync::Change;
use crate::tenancy::ComponentSource;
use base64::Engine as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use tacos_proto::common::v1::ErrorCode;

/// The largest swap request: a component, base64-encoded.
const MAX_SWAP_BODY: usize = 64 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapBody {
    /// The new component's bytes.
    component_base64: Option<String>,
    /// Or one of the builds the bundle names for this service.
    build: Option<String>,
    /// Where the bytes came from (a path), for `tacos services`.
    origin: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default = "yes")]
    self_check: bool,
}

fn yes() -> bool {
    true
}

/// Answer the service routes; anything else is handed back.
/// The routes this module serves.
pub(super) const PREFIX: &str = "/admin/v1/services";

/// A request under [`PREFIX`]; `rest` is its path after it.
pub(super) async fn handle(
    edge: &Edge,
    req: Request<Incoming>,
    rest: &str,
    trace: &str,
) -> Response<Body> {
    let fail = |code, msg: String| edge.error(&errors::error(code, msg, trace));
    if let Err(e) = admin::authorize(edge, req.headers(), trace) {
        return edge.error(&e);
    }
    let runtime = &edge.shared.runtime;
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let method = req.method().clone();
    let (outcome, change) = match (&method, segments.as_slice()) {
        (&Method::GET, []) => {
            let services = serde_json::json!({"services": runtime.services()});
            return ok(edge, &services, trace);
        }
        (&Method::POST, [service, action]) if action == "rollback" => {
            let change = (
                Change::Rollback {
                    service: service.clone(),
                },
                Vec::new(),
            );
            (runtime.rollback(service).await, change)
        }
        (&Method::POST, [service, action]) if action == "swap" => {
            let body = match Limited::new(req.into_body(), MAX_SWAP_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return fail(
                        ErrorCode::InvalidArgument,
                        format!("reading the swap request (at most {MAX_SWAP_BODY} bytes): {e}"),
                    );
                }
            };
            let change = (
                Change::Swap {
                    service: service.clone(),
                },
                body.to_vec(),
            );
            match swap_request(service, &body) {
                Ok(req) => (runtime.swap(req).await, change),
                Err(msg) => return fail(ErrorCode::InvalidArgument, msg),
            }
        }
        _ => {
            return fail(
                ErrorCode::NotFound,
                format!("no route for {method} {PREFIX}{rest}"),
            );
        }
    };
    match outcome {
        Ok(outcome) => {
            let mut answer = serde_json::to_value(&outcome).unwrap_or_default();
            if outcome.changed {
                let (change, body) = change;
                edge.shared.publish(change, &body, &mut answer).await;
            }
            ok(edge, &answer, trace)
        }
        Err(e) => {
            if matches!(e, SwapError::Refused { .. }) {
                tracing::warn!(error = %e, "swap refused");
            }
            fail(e.code(), e.to_string())
        }
    }
}

pub(super) fn swap_request(service: &str, body: &[u8]) -> Result<SwapRequest, String> {
    let b: SwapBody =
        serde_json::from_slice(body).map_err(|e| format!("invalid swap request: {e}"))?;
    let source = upload(b.component_base64, b.build, b.origin)?;
    if source.is_none() && b.config.is_empty() {
        return Err("nothing to swap: give `component_base64`, `build` or `config`".into());
    }
    Ok(SwapRequest {
        service: service.to_string(),
        source,
        config: b.config,
        self_check: b.self_check,
    })
}

pub(super) fn ok(edge: &Edge, value: &impl serde::Serialize, trace: &str) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json(StatusCode::OK, body, trace),
        Err(e) => edge.error(&errors::error(
            ErrorCode::Internal,
            format!("rendering the answer: {e}"),
            trace,
        )),
    }
}

/// The component an admin body names: uploaded bytes (`component_base64`,
/// with an `origin` to show) or one of the bundle's builds; neither keeps
/// the running one. Only the syntax is checked here: whether the build
/// exists is the runtime's (`runtime::source`).
pub(super) fn upload(
    component_base64: Option<String>,
    build: Option<String>,
    origin: Option<String>,
) -> Result<Option<ComponentSource>, String> {
    Ok(match (component_base64, build) {
        (Some(_), Some(_)) => return Err("give `component_base64` or `build`, not both".into()),
        (Some(encoded), None) => Some(ComponentSource::Bytes {
            bytes: base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| format!("component_base64: {e}"))?,
            origin: origin.unwrap_or_else(|| "upload".into()),
        }),
        (None, Some(build)) => Some(ComponentSource::Build(build)),
        (None, None) => None,
    })
}
