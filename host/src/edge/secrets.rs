//! A tenant's Standard Webhooks secret, for the merchant's own receiver:
//! shown and rotated by the operator (admin token, like every tenant route).
//!
//! - `GET  /admin/v1/tenants/{id}/webhook-secret`: `{"secret": "whsec_…",
//!   "previous": "whsec_…" | null, "previous_until_ms": N | null}`
//! - `POST /admin/v1/tenants/{id}/webhook-secret/rotate` `{"overlap_seconds"?: N}`
//!   (default a day, at most a week): a new secret; the old one keeps signing
//!   beside it (two `v1,` entries) and verifying until the overlap ends, so a
//!   receiver switches at its own pace and never misses a delivery. Other
//!   hosts on a shared store reload the keys.

use super::deploy::ok;
use super::{Body, Edge, errors};
use crate::runtime::Served;
use crate::sync::Change;
use crate::tenancy::{Tenant, WebhookKeys};
use http_body_util::{BodyExt, Limited};
use hyper::Response;
use hyper::body::Incoming;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tacos_proto::common::v1::ErrorCode;

/// How long an old secret keeps working after a rotation, unless told.
const DEFAULT_OVERLAP: Duration = Duration::from_secs(86_400);
/// The longest overlap an operator may ask for.
const MAX_OVERLAP_S: u64 = 7 * 86_400;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    overlap_seconds: Option<u64>,
}

fn view(keys: &WebhookKeys, now_ms: u64) -> serde_json::Value {
    let previous = keys.previous.as_ref().filter(|(_, until)| now_ms < *until);
    json!({
        "secret": WebhookKeys::secret(&keys.current),
        "previous": previous.map(|(k, _)| WebhookKeys::secret(k)),
        "previous_until_ms": previous.map(|(_, until)| until),
    })
}

/// `GET …/webhook-secret`.
pub(super) fn show(edge: &Edge, tenant: &Tenant, trace: &str) -> Response<Body> {
    let now_ms = edge.shared.runtime.clock.now_ms();
    ok(edge, &view(&tenant.webhook_keys(), now_ms), trace)
}

/// `POST …/webhook-secret/rotate`.
pub(super) async fn rotate(
    edge: &Edge,
    tenant: &Arc<Served>,
    body: Incoming,
    trace: &str,
) -> Response<Body> {
    let fail = |code, msg: String| edge.error(&errors::error(code, msg, trace));
    let body = match Limited::new(body, super::MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return fail(ErrorCode::InvalidArgument, format!("reading the body: {e}")),
    };
    let asked = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        match serde_json::from_slice::<Rotate>(&body) {
            Ok(r) => r,
            Err(e) => return fail(ErrorCode::InvalidArgument, format!("invalid body: {e}")),
        }
    };
    let overlap = match asked.overlap_seconds {
        None => DEFAULT_OVERLAP,
        Some(s) if s <= MAX_OVERLAP_S => Duration::from_secs(s),
        Some(s) => {
            return fail(
                ErrorCode::InvalidArgument,
                format!("overlap_seconds {s} is more than a week ({MAX_OVERLAP_S})"),
            );
        }
    };
    let shared = &edge.shared;
    let runtime = &shared.runtime;
    let now_ms = runtime.clock.now_ms();
    let keys = match WebhookKeys::rotate(runtime.kv.as_ref(), &tenant.id, now_ms, overlap).await {
        Ok(k) => k,
        Err(e) => return fail(ErrorCode::Unavailable, format!("{e:#}")),
    };
    let mut answer = view(&keys, now_ms);
    tenant.set_webhook_keys(keys);
    tracing::info!(tenant = %tenant.id, overlap_s = overlap.as_secs(), "webhook secret rotated");
    let change = Change::TenantSecret {
        id: tenant.id.clone(),
    };
    shared.publish(change, &[], &mut answer).await;
    ok(edge, &answer, trace)
}

/// Another host rotated `tenant`'s keys: take them from the store.
pub(super) async fn reload(runtime: &crate::runtime::Runtime, id: &str) -> anyhow::Result<()> {
    let Some(tenant) = runtime.tenant(id) else {
        return Ok(()); // not served here; it loads its keys when it is
    };
    let keys = WebhookKeys::load_or_create(runtime.kv.as_ref(), id).await?;
    tenant.set_webhook_keys(keys);
    Ok(())
}
