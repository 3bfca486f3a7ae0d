//! The edge: REST/JSON and gRPC on one port (hyper, HTTP/1.1 and HTTP/2;
//! `content-type: application/grpc…` goes to [`grpc`]).
//!
//! A request is matched to a route, its JSON body parsed into the route's
//! request message by the contract descriptors (unknown fields and wrong types
//! refused), path and query parameters set, and the encoded message handed to
//! the owning component. The response is rendered back to proto3 JSON; a
//! failure becomes `{"error": {…}}` with a fitting status. Bodies over 64 KiB
//! are refused before parsing. Every response carries `x-trace-id`; a W3C
//! `traceparent` on the request is honoured.
//!
//! Before a component runs, both sides pass one admission path
//! ([`admission`]): the client IP's bucket, the method's guard from the one
//! table ([`guards`]), the tenant, its quota, the user's bucket; then, with
//! the message read, one pipeline ([`pipeline`]): a webhook's signature, the
//! authenticated user and idempotency key bound into the request, a replay
//! of an earlier answer ([`idempotency`]), the call.
//!
//! WebSocket routes (`/ws/…`: the live waiting room and seat map) go to
//! [`live`], which admits them like any request; the web apps (`/`,
//! `/console`, `/assets/…`) and their two host routes to [`web`].
//! Operator routes go straight to the module that serves them: `deploy`
//! (swaps, rollbacks), `tenants` (and their secrets), `admin` (health,
//! readiness, metrics, the clock, dead letters). API paths are matched by
//! [`routes`] ([`matchit`]).

mod admin;
mod admission;
pub mod conn;
mod deploy;
pub mod errors;
pub mod gateway;
pub mod grpc;
pub mod guards;
pub mod idempotency;
pub mod limits;
mod live;
mod pipeline;
pub mod routes;
mod secrets;
mod shared;
pub mod sync;
mod tenants;
mod web;

pub use shared::Shared;

use crate::foundations::metrics::{RouteMetrics, Stage};
use bytes::Bytes;
use guards::Guard;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use prost_reflect::MessageDescriptor;
use routes::Route;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// The request header that makes a POST safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header naming the component version that answered.
pub const SERVED_BY: &str = "x-tacos-served-by";

pub type Body = Full<Bytes>;
/// A response of either side of the edge.
pub type EdgeBody = Either<Body, tonic::body::Body>;

pub struct Edge {
    shared: Arc<Shared>,
    conn: conn::ConnLimits,
    routes: routes::Router<Resolved>,
    idempotency: Arc<idempotency::Idempotency>,
    limiter: Arc<limits::Limiter>,
    ws_routes: routes::Router<live::WsRoute>,
    pub grpc: grpc::Grpc,
}

/// A route with its request and response descriptors and its metric
/// handles made once.
struct Resolved {
    route: Route,
    guard: Guard,
    input: MessageDescriptor,
    output: MessageDescriptor,
    metrics: RouteMetrics,
}

/// On a response built from a component's error: its code, for the metrics.
#[derive(Clone, Copy)]
struct FailedWith(&'static str);

fn trace_id_of<B>(req: &Request<B>) -> String {
    req.headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::foundations::trace::from_traceparent)
        .unwrap_or_else(crate::foundations::trace::new_trace_id)
}

/// The `retry-after` seconds a rate-limit error carries.
pub fn retry_after(e: &ProtoError) -> Option<u64> {
    e.details
        .iter()
        .find(|d| d.field == "retry_after_seconds")
        .and_then(|d| d.value.parse().ok())
}

pub fn json(status: StatusCode, body: Vec<u8>, trace_id: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(trace_id) {
        resp.headers_mut().insert("x-trace-id", v);
    }
    resp
}

impl Edge {
    pub async fn new(shared: Arc<Shared>) -> anyhow::Result<Arc<Edge>> {
        let codec = &shared.runtime.codec;
        let routes = routes::table()
            .into_iter()
            .map(|route| {
                let guard = guards::of(route.service, route.rpc)
                    .filter(|g| *g != Guard::Internal)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "route {} {} has no outside guard",
                            route.method,
                            route.path
                        )
                    })?;
                Ok(Resolved {
                    guard,
                    input: codec.message(route.input)?,
                    output: codec.message(route.output)?,
                    metrics: shared
                        .runtime
                        .metrics
                        .route("rest", format!("{} {}", route.method, route.path).into()),
                    route,
                })
            })
            .collect::<anyhow::Result<Vec<Resolved>>>()?;
        let routes = routes::Router::new(
            routes
                .into_iter()
                .map(|r| (r.route.path, r.route.method.clone(), r)),
        )?;
        let services = shared
            .runtime
            .slots()
            .iter()
            .flat_map(|s| s.serves.iter().cloned())
            .collect();
        let grpc = grpc::Grpc::new(services, codec, &shared.runtime.metrics).await?;
        let runtime = &shared.runtime;
        let idempotency = idempotency::Idempotency::new(
            runtime.kv.clone(),
            runtime.clock.clone(),
            shared.idempotency_window,
        );
        let limiter = limits::Limiter::new(&shared.rate_limits, runtime.clock.clone());
        Ok(Arc::new(Edge {
            conn: shared.connections.clone(),
            shared,
            routes,
            idempotency,
            limiter,
            ws_routes: live::ws_routes()?,
            grpc,
        }))
    }

    fn error(&self, e: &ProtoError) -> Response<Body> {
        let (status, body) = self.error_body(e);
        json(status, body, &e.trace_id)
    }

    /// A failed request's response: the error, `retry-after` when it says
    /// when to retry, and its code for the route's metrics.
    fn failure(&self, e: &ProtoError) -> Response<Body> {
        let mut resp = self.error(e);
        if let Some(secs) = retry_after(e) {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.extensions_mut()
            .insert(FailedWith(errors::code_name(e.code)));
        resp
    }

    fn error_body(&self, e: &ProtoError) -> (StatusCode, Vec<u8>) {
        (
            errors::status_of(e.code),
            errors::body(&self.shared.runtime.codec, e),
        )
    }

    /// One request of either kind.
    pub async fn serve_one(&self, req: Request<Incoming>, peer: IpAddr) -> Response<EdgeBody> {
        let is_grpc = req
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if is_grpc {
            self.grpc.handle(self, req, peer).await.map(Either::Right)
        } else {
            self.handle(req, peer).await.map(Either::Left)
        }
    }

    /// One REST request.
    pub async fn handle(&self, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
        let trace = trace_id_of(&req);
        // The operator's own routes, each to the one module that serves it;
        // then the API routes of the contracts.
        let path = req.uri().path();
        if path.starts_with(live::PREFIX) {
            return match self.websocket(req, peer, &trace).await {
                Ok(resp) => resp,
                Err(e) => self.failure(&e),
            };
        }
        if let Some(resp) = web::asset(req.method(), path) {
            return resp;
        }
        let req = match self.web_api(req, peer, &trace).await {
            Ok(Ok(resp)) => return resp,
            Ok(Err(e)) => return self.failure(&e),
            Err(req) => req,
        };
        let path = req.uri().path();
        if let Some(rest) = path.strip_prefix(deploy::PREFIX) {
            let rest = rest.to_string();
            return deploy::handle(self, req, &rest, &trace).await;
        }
        if let Some(rest) = path.strip_prefix(tenants::PREFIX) {
            let rest = rest.to_string();
            return tenants::handle(self, req, &rest, &trace).await;
        }
        let req = match admin::handle(self, req, &trace).await {
            Ok(resp) => return resp,
            Err(req) => req,
        };
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let (route, captures) = match self.routes.find(&method, &path) {
            routes::Found::Route(route, captures) => (route, captures),
            routes::Found::WrongMethod => {
                let e = errors::error(
                    ErrorCode::InvalidArgument,
                    format!("{method} is not allowed on {path}"),
                    &trace,
                );
                let mut resp = self.error(&e);
                *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                return resp;
            }
            routes::Found::NotFound => {
                let msg = format!("no route for {method} {path}");
                return self.error(&errors::error(ErrorCode::NotFound, msg, &trace));
            }
        };
        let started = std::time::Instant::now();
        let resp = match self.dispatch(route, captures, req, peer, &trace).await {
            Ok(resp) => resp,
            Err(e) => self.failure(&e),
        };
        let code = resp.extensions().get::<FailedWith>().map(|f| f.0);
        let metrics = &self.shared.runtime.metrics;
        route.metrics.observe(metrics, code, started.elapsed());
        resp
    }

    async fn dispatch(
        &self,
        resolved: &Resolved,
        captures: Vec<(&str, String)>,
        req: Request<Incoming>,
        peer: IpAddr,
        trace: &str,
    ) -> Result<Response<Body>, ProtoError> {
        let Resolved {
            route,
            guard,
            input,
            output,
            ..
        } = resolved;
        let err = |code, msg: String| errors::error(code, msg, trace);
        let admitted = self.admit(*guard, route.service, req.headers(), req.uri(), peer, trace)?;
        let mut fields: Vec<(&str, String)> = captures;
        if let Some(q) = req.uri().query() {
            for (k, v) in routes::query_pairs(q) {
                match route.query.iter().find(|(name, _)| *name == k) {
                    Some((_, field)) => fields.push((field, v)),
                    None => {
                        return Err(err(
                            ErrorCode::InvalidArgument,
                            format!("unknown query parameter `{k}`"),
                        ));
                    }
                }
            }
        }
        let (parts, incoming) = req.into_parts();
        let headers = &parts.headers;
        if parts.method == Method::POST {
            let ct = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json");
            if !ct.starts_with("application/json") {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    format!("content-type must be application/json, not {ct}"),
                ));
            }
        }
        let deadline = self.conn.body_read;
        let read = tokio::time::timeout(deadline, Limited::new(incoming, MAX_BODY).collect());
        let Ok(read) = read.await else {
            return Err(err(
                ErrorCode::Timeout,
                format!(
                    "the request body did not arrive within {} ms",
                    deadline.as_millis()
                ),
            ));
        };
        let body = match read {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                let mut e = err(
                    ErrorCode::InvalidArgument,
                    format!("request body exceeds {MAX_BODY} bytes"),
                );
                e.details.push(tacos_proto::common::v1::ErrorDetail {
                    field: "body".into(),
                    reason: "too large".into(),
                    value: String::new(),
                });
                return Err(e);
            }
            Err(e) => {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    format!("reading the request body: {e}"),
                ));
            }
        };
        let idempotency_key =
            idempotency::key_of(headers).map_err(|m| err(ErrorCode::InvalidArgument, m))?;
        if idempotency_key.is_some() && parts.method != Method::POST {
            return Err(err(
                ErrorCode::InvalidArgument,
                "Idempotency-Key is for POST routes".into(),
            ));
        }
        let codec = &self.shared.runtime.codec;
        let stages = &self.shared.runtime.metrics.stages;
        let started = Instant::now();
        let message = codec.from_json(input, &body, &fields);
        stages.lap(Stage::Decode, started);
        let message = message.map_err(|m| err(ErrorCode::InvalidArgument, m))?;
        let answer = self
            .run(pipeline::Call {
                admitted: &admitted,
                guard: *guard,
                service: route.service,
                method: route.rpc,
                input,
                headers,
                signed: &body,
                message,
                idempotency_key,
                trace,
                timeout: pipeline::MAX_DEADLINE,
            })
            .await;
        let started = Instant::now();
        let rendered = answer.result.and_then(|bytes| {
            codec
                .to_json(output, &bytes)
                .map_err(|e| err(ErrorCode::Internal, format!("{e:#}")))
        });
        stages.lap(Stage::Encode, started);
        let mut resp = match rendered {
            Ok(rendered) => json(StatusCode::OK, rendered, trace),
            Err(e) => self.failure(&e),
        };
        if answer.replayed {
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let Some(v) = answer.version {
            // Which version answered: `payment-sim@3f2a…` (full content hash).
            if let Ok(h) = HeaderValue::from_str(&v.label) {
                resp.headers_mut().insert(SERVED_BY, h);
            }
        }
        Ok(resp)
    }
}
