//! Which tenant a request is for ([`Edge::tenant_of`]), and the operator
//! routes for tenants: list them, add or change one, remove one.
//! All need the admin token when the host has one; all answer in the
//! contract's error shape.
//!
//! - `GET    /admin/v1/tenants`: each tenant's services (version, own or the
//!   bundle's), quotas, storage and queue use, calls and quota refusals
//! - `PUT    /admin/v1/tenants/{id}` `{"hosts"?, "quotas"?, "policy_toml"?,
//!   "services"?: {NAME: {"component_base64"? | "build"?, "origin"?, "config"?}},
//!   "events"?, "auth"?: {"jwks"? | "hs256_secret"?, "issuer"?, "audience"?}}`: add or replace, with a swap's checks (400 for a malformed
//!   request, 409 FAILED_PRECONDITION when a check fails; nothing changes)
//! - `DELETE /admin/v1/tenants/{id}`: stop serving it (its data stays)
//! - `…/{id}/webhook-secret[/rotate]`: its Standard Webhooks secret ([`secrets`])

use super::deploy::ok;
use super::{Body, Edge, admin, errors, secrets};
use crate::foundations::policy::Policy;
use crate::runtime::{Named, Served};
use crate::sync::Change;
use crate::tenancy::DemoEvent;
use crate::tenancy::{DEFAULT_TENANT, Quotas, ServiceOverride, TENANT_HEADER, TenantSpec};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tacos_proto::common::v1::Error as ProtoError;
use tacos_proto::common::v1::ErrorCode;

/// The largest tenant request: components, base64-encoded.
const MAX_TENANT_BODY: usize = 128 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    name: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    quotas: Quotas,
    /// A policy (TOML, the `policies/` format) replacing the bundle's.
    policy_toml: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, ServiceBody>,
    events: Option<Vec<DemoEvent>>,
    auth: Option<crate::foundations::auth::TenantAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    component_base64: Option<String>,
    origin: Option<String>,
    build: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

/// A tenant as `tacos tenants` shows it.
#[derive(Serialize)]
struct TenantView {
    id: String,
    name: String,
    hosts: Vec<String>,
    quotas: Quotas,
    services: Vec<ServiceView>,
    storage: crate::store::Usage,
    queue_pending: u64,
    calls_ok: u64,
    calls_failed: u64,
    quota_hits: u64,
    /// Seconds the tenant's component code ran.
    guest_seconds: f64,
    /// Seconds its calls slept for its `cpu_ms_per_second` quota.
    throttled_seconds: f64,
}

#[derive(Serialize)]
struct ServiceView {
    name: String,
    hash: String,
    origin: String,
    /// The tenant's own slot (a pin, its config or policy), not the bundle's.
    own: bool,
}

impl Edge {
    /// The tenant a request is for (see [`Tenants::named_by`](crate::runtime::Tenants::named_by));
    /// `default` when it names none. A user token is good only for its own
    /// tenant.
    pub(crate) fn tenant_of(
        &self,
        headers: &hyper::HeaderMap,
        uri: &hyper::Uri,
        token_tenant: Option<&str>,
        trace: &str,
    ) -> Result<Arc<Served>, ProtoError> {
        let header = match headers.get(TENANT_HEADER).map(|v| v.to_str()) {
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                return Err(errors::error(
                    ErrorCode::InvalidArgument,
                    format!("{TENANT_HEADER} is not visible ASCII"),
                    trace,
                ));
            }
            None => None,
        };
        let host = uri.host().or_else(|| {
            headers
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
        });
        let tenants = self.shared.runtime.tenants();
        let tenant = match tenants.named_by(header, host, token_tenant) {
            Named::Tenant(t) => t,
            Named::Unknown(id) => {
                return Err(errors::error(
                    ErrorCode::NotFound,
                    format!("no tenant `{id}` on this host"),
                    trace,
                ));
            }
            Named::Nothing => tenants.get(DEFAULT_TENANT).cloned().ok_or_else(|| {
                errors::error(
                    ErrorCode::NotFound,
                    format!(
                        "this host has no `{DEFAULT_TENANT}` tenant: name one with {TENANT_HEADER}, the host name or the token's `tenant` claim"
                    ),
                    trace,
                )
            })?,
        };
        if let Some(for_tenant) = token_tenant
            && for_tenant != tenant.id
        {
            return Err(errors::error(
                ErrorCode::Forbidden,
                format!(
                    "the token is for tenant `{for_tenant}`, not `{}`",
                    tenant.id
                ),
                trace,
            ));
        }
        Ok(tenant)
    }
}

/// Answer the tenant routes; anything else is handed back.
/// The routes this module serves.
pub(super) const PREFIX: &str = "/admin/v1/tenants";

/// A request under [`PREFIX`]; `rest` is its path after it.
pub(super) async fn handle(
    edge: &Edge,
    req: Request<Incoming>,
    rest: &str,
    trace: &str,
) -> Response<Body> {
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let fail = |code, msg: String| edge.error(&errors::error(code, msg, trace));
    if let Err(e) = admin::authorize(edge, req.headers(), trace) {
        return edge.error(&e);
    }
    let shared = &edge.shared;
    let runtime = &shared.runtime;
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, []) => {
            let mut views = Vec::new();
            for t in runtime.tenants().all() {
                match view(edge, t).await {
                    Ok(v) => views.push(v),
                    Err(e) => return fail(ErrorCode::Unavailable, format!("store: {e}")),
                }
            }
            ok(edge, &serde_json::json!({ "tenants": views }), trace)
        }
        (&Method::PUT, [id]) => {
            let body = match Limited::new(req.into_body(), MAX_TENANT_BODY)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return fail(
                        ErrorCode::InvalidArgument,
                        format!("reading the tenant (at most {MAX_TENANT_BODY} bytes): {e}"),
                    );
                }
            };
            let spec = match spec(id, &body) {
                Ok(s) => s,
                Err(msg) => return fail(ErrorCode::InvalidArgument, msg),
            };
            match runtime.apply_tenant(spec).await {
                Ok((tenant, created)) => {
                    if created
                        && shared.seed_events
                        && let Err(e) = runtime.seed_events(&tenant).await
                    {
                        tracing::warn!(tenant = %tenant.id, error = %format!("{e:#}"), "seeding a new tenant's events");
                    }
                    match view(edge, &tenant).await {
                        Ok(v) => {
                            let mut answer = serde_json::json!({"created": created, "tenant": v});
                            let change = Change::TenantPut { id: id.clone() };
                            shared.publish(change, &body, &mut answer).await;
                            ok(edge, &answer, trace)
                        }
                        Err(e) => fail(ErrorCode::Unavailable, format!("store: {e}")),
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant = %id, error = %e, "tenant refused");
                    fail(e.code(), e.to_string())
                }
            }
        }
        (&Method::DELETE, [id]) => match runtime.remove_tenant(id).await {
            Some(t) => {
                let mut answer = serde_json::json!({"removed": t.id, "data": "kept"});
                let change = Change::TenantRemove { id: id.clone() };
                shared.publish(change, &[], &mut answer).await;
                ok(edge, &answer, trace)
            }
            None => fail(
                ErrorCode::NotFound,
                format!("no tenant `{id}` on this host"),
            ),
        },
        (&Method::GET | &Method::POST, [id, what, rest @ ..]) if what == "webhook-secret" => {
            let Some(tenant) = runtime.tenant(id) else {
                return fail(
                    ErrorCode::NotFound,
                    format!("no tenant `{id}` on this host"),
                );
            };
            match (&method, rest) {
                (&Method::GET, []) => secrets::show(edge, &tenant, trace),
                (&Method::POST, [r]) if r == "rotate" => {
                    secrets::rotate(edge, &tenant, req.into_body(), trace).await
                }
                _ => fail(
                    ErrorCode::NotFound,
                    format!("no route for {method} {}", req.uri().path()),
                ),
            }
        }
        _ => fail(
            ErrorCode::NotFound,
            format!("no route for {method} {}", req.uri().path()),
        ),
    }
}

async fn view(edge: &Edge, t: &Arc<Served>) -> Result<TenantView, crate::store::StoreError> {
    let runtime = &edge.shared.runtime;
    let storage = runtime.kv.usage(&t.id).await?;
    let queue_pending = runtime.queue.pending(&t.id).await?;
    let (calls_ok, calls_failed, quota_hits) = t.metrics.totals();
    let (guest_seconds, throttled_seconds) = t.metrics.guest_totals();
    Ok(TenantView {
        id: t.id.clone(),
        name: t.name.clone(),
        hosts: t.hosts.clone(),
        quotas: t.quotas,
        services: t
            .slots
            .iter()
            .map(|s| {
                let v = s.current.load();
                ServiceView {
                    name: s.name.clone(),
                    hash: v.hash.clone(),
                    origin: v.origin.clone(),
                    own: t.own.contains(&s.name),
                }
            })
            .collect(),
        storage,
        queue_pending,
        calls_ok,
        calls_failed,
        quota_hits,
        guest_seconds,
        throttled_seconds,
    })
}

pub(super) fn spec(id: &str, body: &[u8]) -> Result<TenantSpec, String> {
    let b: TenantBody = serde_json::from_slice(body).map_err(|e| format!("invalid tenant: {e}"))?;
    let policy = match &b.policy_toml {
        Some(text) => Some(
            Policy::parse(text, &format!("policy of tenant `{id}`"))
                .map_err(|e| format!("{e:#}"))?,
        ),
        None => None,
    };
    let mut services = BTreeMap::new();
    for (name, s) in b.services {
        let component = super::deploy::upload(s.component_base64, s.build, s.origin)
            .map_err(|e| format!("service `{name}`: {e}"))?;
        services.insert(
            name,
            ServiceOverride {
                component,
                config: s.config,
            },
        );
    }
    Ok(TenantSpec {
        id: id.to_string(),
        name: b.name,
        hosts: b.hosts,
        quotas: b.quotas,
        policy,
        services,
        events: b.events,
        auth: b.auth,
    })
}
