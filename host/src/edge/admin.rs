//! Host routes that reach no component: health, readiness, `/metrics`, the virtual clock,
//! dead letters (of the tenant the request names, as API routes pick it).
//! Operator routes require `Authorization: Bearer <token>` when the host has
//! an admin token, which it always has off loopback (the composition root,
//! `host::admin_token`, makes one); the token is compared in
//! constant time.

use super::{Body, Edge, errors, json};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json as j;
use std::time::Duration;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

/// How long a clock advance waits for the queue to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn authorize(
    edge: &Edge,
    headers: &hyper::HeaderMap,
    trace: &str,
) -> Result<(), ProtoError> {
    let Some(token) = &edge.shared.admin_token else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let matches = given.is_some_and(|g| {
        use subtle::ConstantTimeEq;
        bool::from(g.as_bytes().ct_eq(token.as_bytes()))
    });
    if matches {
        Ok(())
    } else {
        Err(errors::error(
            ErrorCode::Unauthenticated,
            "admin routes need Authorization: Bearer <admin token>",
            trace,
        ))
    }
}

fn ok(value: serde_json::Value, trace: &str) -> Response<Body> {
    json(StatusCode::OK, value.to_string().into_bytes(), trace)
}

/// Answer host routes; anything else is handed back.
pub(super) async fn handle(
    edge: &Edge,
    req: Request<Incoming>,
    trace: &str,
) -> Result<Response<Body>, Request<Incoming>> {
    let shared = &edge.shared;
    let runtime = &shared.runtime;
    let fail = |e: ProtoError| edge.error(&e);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => ok(j!({"status": "ok"}), trace),
        // Ready when both stores answer: the queue's depth, and a kv read.
        (&Method::GET, "/readyz") => match async {
            let depth = runtime.queue.depth().await?;
            runtime.kv.meta_get("ready").await?;
            Ok::<_, crate::store::StoreError>(depth)
        }
        .await
        {
            Ok(depth) => {
                let stores = &shared.stores;
                let mut store = j!({
                    "kv": stores.kv_backend.name(),
                    "queue": stores.queue_backend.name(),
                });
                store["round_trips"] = stores
                    .round_trips()
                    .into_iter()
                    .map(|(b, n)| (b.name().to_string(), n.into()))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                if let (Some(embedded), Some(fields)) = (&stores.embedded, store.as_object_mut()) {
                    fields.extend(embedded.stats().to_json());
                }
                ok(
                    j!({"status": "ready", "queue": depth, "store": store}),
                    trace,
                )
            }
            Err(e) => fail(errors::error(
                ErrorCode::Unavailable,
                format!("store: {e}"),
                trace,
            )),
        },
        (&Method::GET, "/admin/v1/pulse") => {
            if let Err(e) = authorize(edge, req.headers(), trace) {
                return Ok(fail(e));
            }
            ok(pulse(edge).await, trace)
        }
        (&Method::GET, "/metrics") => {
            if let Err(e) = authorize(edge, req.headers(), trace) {
                return Ok(fail(e));
            }
            let metrics = &runtime.metrics;
            match runtime.queue.depth().await {
                Ok(depth) => {
                    metrics.queue_pending.set(depth.pending as i64);
                    metrics.queue_dead_letters.set(depth.dead as i64);
                }
                Err(e) => tracing::warn!(error = %e, "reading the queue depth for /metrics"),
            }
            for (backend, n) in shared.stores.round_trips() {
                let labels = crate::foundations::metrics::BackendLabels {
                    backend: backend.name().into(),
                };
                let counter = metrics.store_requests.get_or_create(&labels);
                counter.inc_by(n.saturating_sub(counter.get()));
            }
            for t in runtime.tenants().all() {
                let labels = crate::foundations::metrics::TenantLabels {
                    tenant: t.id.clone().into(),
                };
                if let Ok(u) = runtime.kv.usage(&t.id).await {
                    metrics
                        .tenant_storage_keys
                        .get_or_create(&labels)
                        .set(u.keys as i64);
                    metrics
                        .tenant_storage_bytes
                        .get_or_create(&labels)
                        .set(u.bytes as i64);
                }
                if let Ok(n) = runtime.queue.pending(&t.id).await {
                    metrics
                        .tenant_queue_pending
                        .get_or_create(&labels)
                        .set(n as i64);
                }
            }
            let mut resp = Response::new(Body::from(metrics.encode()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        (&Method::GET, "/admin/v1/clock") => match authorize(edge, req.headers(), trace) {
            Ok(()) => ok(
                j!({"now_ms": runtime.clock.now_ms(), "virtual": runtime.clock.is_virtual()}),
                trace,
            ),
            Err(e) => fail(e),
        },
        (&Method::POST, "/admin/v1/clock/advance") => match authorize(edge, req.headers(), trace) {
            Ok(()) => advance(edge, req, trace).await,
            Err(e) => fail(e),
        },
        (&Method::GET, "/admin/v1/dead-letters") => {
            if let Err(e) = authorize(edge, req.headers(), trace) {
                return Ok(fail(e));
            }
            let tenant = match edge.tenant_of(req.headers(), req.uri(), None, trace) {
                Ok(t) => t,
                Err(e) => return Ok(fail(e)),
            };
            match runtime.queue.dead_letters(&tenant.id, 1000).await {
                Ok(list) => ok(j!({"dead_letters": list}), trace),
                Err(e) => fail(errors::error(ErrorCode::Unavailable, e.to_string(), trace)),
            }
        }
        _ => return Err(req),
    };
    Ok(resp)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

/// `POST /admin/v1/clock/advance {"seconds": N}`: move virtual time, then wait
/// until the queue has delivered everything that became due.
async fn advance(edge: &Edge, req: Request<Incoming>, trace: &str) -> Response<Body> {
    let shared = &edge.shared;
    let runtime = &shared.runtime;
    let fail = |code, msg: String| edge.error(&errors::error(code, msg, trace));
    if !runtime.clock.is_virtual() {
        return fail(
            ErrorCode::FailedPrecondition,
            "the clock is not virtual; start the host with --virtual-clock".into(),
        );
    }
    let body = match Limited::new(req.into_body(), super::MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return fail(
                ErrorCode::InvalidArgument,
                format!("reading the request body: {e}"),
            );
        }
    };
    let seconds = serde_json::from_slice::<Advance>(&body)
        .ok()
        .map(|a| a.seconds);
    let Some(seconds) = seconds.filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0 * 365.0)
    else {
        return fail(
            ErrorCode::InvalidArgument,
            "give {\"seconds\": N} with N from 0 to one year".into(),
        );
    };
    let now = match shared.advance_clock(Duration::from_secs_f64(seconds)).await {
        Ok(now) => now,
        Err(e) => return fail(ErrorCode::Unavailable, format!("{e:#}")),
    };
    let settled = shared.dispatcher.settle(SETTLE_TIMEOUT).await;
    ok(j!({"now_ms": now, "settled": settled}), trace)
}

/// What the console charts, read twice a second apart: every tenant's
/// pulse and their sum (cumulative counts, latency buckets), messages
/// waiting for delivery, and live watchers.
async fn pulse(edge: &Edge) -> serde_json::Value {
    use crate::foundations::metrics::pulse::{LATENCY_BUCKETS_MS, PulseView};
    let runtime = &edge.shared.runtime;
    let mut all = PulseView::default();
    let mut tenants = serde_json::Map::new();
    for t in runtime.tenants().all() {
        let view = t.metrics.pulse.view();
        all.add(&view);
        let pending = runtime.queue.pending(&t.id).await.ok();
        let mut v = serde_json::to_value(&view).unwrap_or_default();
        v["queue_pending"] = j!(pending);
        v["name"] = j!(t.name);
        tenants.insert(t.id.clone(), v);
    }
    let depth = runtime.queue.depth().await.ok();
    let (places, seat_maps) = edge.shared.live.watchers();
    j!({
        "now_ms": crate::foundations::clock::system_now_ms(),
        "latency_buckets_ms": LATENCY_BUCKETS_MS,
        "all": all,
        "queue_pending": depth.as_ref().map(|d| d.pending),
        "dead_letters": depth.as_ref().map(|d| d.dead),
        "watchers": {"places": places, "seat_maps": seat_maps},
        "tenants": tenants,
    })
}
