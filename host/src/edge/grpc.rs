//! gRPC for every contract service, on the edge's port (HTTP/2, by content type).
//!
//! A call to `/package.Service/Method` goes to the component serving
//! `package.Service` with the request bytes exactly as they arrived: tonic
//! deframes them, the host checks that the method exists in the contract
//! descriptors, and nothing is translated on the way in or out. So a client
//! generated from the original protos works unchanged, and a new RPC in a
//! component needs no host change.
//!
//! Beside the contract services: server reflection (v1 and v1alpha, so
//! `grpcurl` needs no local protos) and `grpc.health.v1.Health`, which reports
//! every served service. `grpc-timeout` becomes the component call's deadline.
//! Errors map to gRPC status codes and carry the contract's `common.v1.Error`
//! as a detail of the standard `google.rpc.Status` (`grpc-status-details-bin`).
//! Who may call a method is its entry in [`guards`], as on REST; methods the
//! table marks internal (service-to-service) or does not list are not served.
//! A signed webhook's Standard Webhooks signature covers the message bytes.
//! After admission every call runs the edge's one pipeline
//! ([`super::pipeline`]), as a REST request does: signature, binding, the
//! `idempotency-key` metadata (the same rule as REST's header), the call.
//! `gateway.v1.GatewayService` is served from [`gateway`]: aliases of the
//! owning services' RPCs, and two RPCs the host answers. Server streams
//! (`StreamQueueUpdates`, `StreamSeatUpdates`) are admitted the same way and
//! served from the live feeds ([`super::live::grpc_stream`]).

use super::guards::{self, Guard};
use super::pipeline::{Call, MAX_DEADLINE};
use super::{Edge, MAX_BODY, SERVED_BY, errors, gateway, idempotency, trace_id_of};
use crate::foundations::metrics::{Metrics, RouteMetrics};
use bytes::{Buf, BufMut, Bytes};
use hyper::body::Incoming;
use hyper::http;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

type Response = http::Response<tonic::body::Body>;
type Builtin = BoxCloneSyncService<http::Request<Incoming>, Response, Infallible>;

/// The gRPC side of the edge.
pub struct Grpc {
    /// `/package.Service/Method` → the RPC.
    rpcs: HashMap<String, Rpc>,
    /// Reflection (v1, v1alpha) and health, by path prefix.
    builtin: Vec<(&'static str, Builtin)>,
    /// Kept so the health service's statuses live as long as the edge.
    _health: HealthReporter,
}

struct Rpc {
    /// The service and method of the component that runs it.
    service: String,
    method: String,
    input: prost_reflect::MessageDescriptor,
    guard: Guard,
    metrics: RouteMetrics,
    /// Answered by the host instead (GatewayService's own RPCs).
    native: Option<gateway::Native>,
    /// A server stream, served from the live feeds ([`super::live::grpc_stream`]).
    streams: bool,
}

impl Grpc {
    /// Serve every RPC of the contract services the runtime's components serve.
    pub async fn new(
        services: Vec<String>,
        codec: &crate::foundations::json::Codec,
        metrics: &Metrics,
    ) -> anyhow::Result<Grpc> {
        let mut rpcs = HashMap::new();
        let mut served = Vec::new();
        for name in services {
            if name.starts_with("tacos.") {
                continue;
            }
            let Some(service) = codec.service(&name) else {
                // Reachable over `rpc` from other components, not from outside.
                tracing::info!(service = %name, "not on gRPC: no contract defines it");
                continue;
            };
            for m in service.methods() {
                // Unclassified and internal methods are not served at all.
                let Some(guard) = guards::of(&name, m.name()).filter(|g| *g != Guard::Internal)
                else {
                    continue;
                };
                let path = format!("/{name}/{}", m.name());
                rpcs.insert(
                    path.clone(),
                    Rpc {
                        metrics: metrics.route("grpc", path.into()),
                        service: name.clone(),
                        method: m.name().to_string(),
                        input: m.input(),
                        guard,
                        native: None,
                        streams: m.is_server_streaming(),
                    },
                );
            }
            served.push(name);
        }
        if let Some(service) = codec.service(gateway::SERVICE) {
            for m in service.methods() {
                let path = format!("/{}/{}", gateway::SERVICE, m.name());
                let Some(guard) = guards::of(gateway::SERVICE, m.name()) else {
                    continue;
                };
                let (service, method, native) = match gateway::target(m.name()) {
                    Some(Ok(native)) => (gateway::SERVICE, m.name(), Some(native)),
                    // An alias of an RPC served above (the same guard, by the table).
                    Some(Err((service, method)))
                        if rpcs.contains_key(&format!("/{service}/{method}")) =>
                    {
                        (service, method, None)
                    }
                    _ => continue,
                };
                let rpc = Rpc {
                    metrics: metrics.route("grpc", path.clone().into()),
                    service: service.to_string(),
                    method: method.to_string(),
                    input: m.input(),
                    guard,
                    native,
                    streams: false,
                };
                rpcs.insert(path, rpc);
            }
            served.push(gateway::SERVICE.to_string());
        }
        served.sort();

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &served {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        // Reflection advertises what is served here, in both versions.
        let reflection = |own: &str| {
            served.iter().fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(tacos_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .with_service_name("grpc.health.v1.Health")
                    .with_service_name(own),
                |b, name| b.with_service_name(name.clone()),
            )
        };
        let builtin = vec![
            (
                "/grpc.reflection.v1.ServerReflection/",
                Builtin::new(reflection("grpc.reflection.v1.ServerReflection").build_v1()?),
            ),
            (
                "/grpc.reflection.v1alpha.ServerReflection/",
                Builtin::new(
                    reflection("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?,
                ),
            ),
            ("/grpc.health.v1.Health/", Builtin::new(health_service)),
        ];
        Ok(Grpc {
            rpcs,
            builtin,
            _health: health,
        })
    }

    pub async fn handle(
        &self,
        edge: &Edge,
        req: http::Request<Incoming>,
        peer: IpAddr,
    ) -> Response {
        let path = req.uri().path();
        if let Some((_, svc)) = self.builtin.iter().find(|(p, _)| path.starts_with(p)) {
            return match svc.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
        }
        let Some(rpc) = self.rpcs.get(path) else {
            let mut e = errors::error(
                ErrorCode::NotFound,
                format!("no gRPC method {path} here"),
                &trace_id_of(&req),
            );
            return with_details(Code::Unimplemented, &mut e).into_http();
        };
        let started = std::time::Instant::now();
        let failed = OnceLock::new();
        let resp = self.call(edge, rpc, req, peer, &failed).await;
        let metrics = &edge.shared.runtime.metrics;
        rpc.metrics
            .observe(metrics, failed.get().copied(), started.elapsed());
        resp
    }

    /// Run one RPC; the error code of a failure goes into `failed`.
    async fn call(
        &self,
        edge: &Edge,
        rpc: &Rpc,
        req: http::Request<Incoming>,
        peer: IpAddr,
        failed: &OnceLock<&'static str>,
    ) -> Response {
        let trace = trace_id_of(&req);
        let status = |e: &ProtoError| {
            let _ = failed.set(errors::code_name(e.code));
            status(e)
        };
        let fail = |e: ProtoError| status(&e).into_http();
        let admitted = match edge.admit(
            rpc.guard,
            &rpc.service,
            req.headers(),
            req.uri(),
            peer,
            &trace,
        ) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        if rpc.streams {
            return super::live::grpc_stream(edge, &rpc.method, req, admitted, trace, status).await;
        }
        // A signed webhook's signature covers the message bytes; keep the headers for it.
        let signed = match rpc.guard {
            Guard::SignedWebhook => req.headers().clone(),
            _ => http::HeaderMap::new(),
        };
        let idempotency_key = match idempotency::key_of(req.headers()) {
            Ok(k) => k.map(str::to_string),
            Err(msg) => return fail(errors::error(ErrorCode::InvalidArgument, msg, &trace)),
        };
        let timeout = match grpc_timeout(req.headers()) {
            Ok(t) => t.unwrap_or(MAX_DEADLINE).min(MAX_DEADLINE),
            Err(msg) => return fail(errors::error(ErrorCode::InvalidArgument, msg, &trace)),
        };
        let call = tower::service_fn(|request: tonic::Request<Bytes>| {
            let trace = &trace;
            let status = &status;
            let admitted = &admitted;
            let signed = &signed;
            let idempotency_key = idempotency_key.as_deref();
            async move {
                if let Some(native) = rpc.native {
                    // Valid for the tenant this request is for.
                    let verify = |token: &str| {
                        edge.verify_token(&admitted.tenant, Some(&format!("Bearer {token}")))
                    };
                    let runtime = &edge.shared.runtime;
                    let bytes = gateway::answer(native, runtime, verify, request.get_ref(), trace)
                        .map_err(|e| status(&e))?;
                    let mut response = tonic::Response::new(bytes);
                    add_trace(response.metadata_mut(), trace);
                    return Ok(response);
                }
                let answer = edge
                    .run(Call {
                        admitted,
                        guard: rpc.guard,
                        service: &rpc.service,
                        method: &rpc.method,
                        input: &rpc.input,
                        headers: signed,
                        signed: request.get_ref(),
                        message: request.get_ref().to_vec(),
                        idempotency_key,
                        trace,
                        timeout,
                    })
                    .await;
                let mut response = match answer.result {
                    Ok(bytes) => tonic::Response::new(bytes),
                    Err(e) => {
                        let mut s = status(&e);
                        add_served_by(s.metadata_mut(), answer.version.as_deref());
                        return Err(s);
                    }
                };
                let md = response.metadata_mut();
                add_trace(md, trace);
                add_served_by(md, answer.version.as_deref());
                if answer.replayed {
                    md.insert("idempotent-replayed", MetadataValue::from_static("true"));
                }
                Ok::<_, Status>(response)
            }
        });
        let mut grpc = tonic::server::Grpc::new(Raw).max_decoding_message_size(MAX_BODY);
        let unary = grpc.unary(call, req);
        // The message must arrive within the body deadline; the call has its own.
        match tokio::time::timeout(timeout + edge.conn.body_read, unary).await {
            Ok(resp) => resp,
            Err(_) => fail(errors::error(
                ErrorCode::Timeout,
                "the request did not complete in time",
                &trace,
            )),
        }
    }
}

/// A `tonic::Status` for a contract error: the matching gRPC code, the
/// message, and the error itself as a `google.rpc.Status` detail.
pub fn status(e: &ProtoError) -> Status {
    let mut e = e.clone();
    with_details(errors::grpc_code_of(e.code), &mut e)
}

fn with_details(code: Code, e: &mut ProtoError) -> Status {
    let details = RpcStatus {
        code: code as i32,
        message: e.message.clone(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/common.v1.Error".into(),
            value: prost::Message::encode_to_vec(&*e),
        }],
    };
    let mut s = Status::with_details(
        code,
        std::mem::take(&mut e.message),
        prost::Message::encode_to_vec(&details).into(),
    );
    add_trace(s.metadata_mut(), &e.trace_id);
    if let Some(secs) = super::retry_after(e) {
        s.metadata_mut()
            .insert("retry-after", MetadataValue::from(secs));
    }
    s
}

pub(super) fn add_trace(md: &mut tonic::metadata::MetadataMap, trace: &str) {
    if let Ok(v) = MetadataValue::try_from(trace) {
        md.insert("x-trace-id", v);
    }
}

fn add_served_by(
    md: &mut tonic::metadata::MetadataMap,
    version: Option<&crate::runtime::ComponentVersion>,
) {
    if let Some(v) = version
        && let Ok(v) = MetadataValue::try_from(v.label.as_str())
    {
        md.insert(SERVED_BY, v);
    }
}

/// `grpc-timeout` (`<up to 8 digits><H|M|S|m|u|n>`), if sent.
pub fn grpc_timeout(headers: &http::HeaderMap) -> Result<Option<Duration>, String> {
    let Some(raw) = headers.get("grpc-timeout") else {
        return Ok(None);
    };
    let bad = || format!("malformed grpc-timeout {raw:?}");
    let text = raw.to_str().map_err(|_| bad())?;
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    }))
}

/// `google.rpc.Status`, the standard carrier of error details (what
/// `grpc-status-details-bin` holds).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// Passes message bytes through untouched: the component decodes them.
/// (Public for clients that send raw bytes, such as the tests.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        let mut h = http::HeaderMap::new();
        assert_eq!(grpc_timeout(&h), Ok(None));
        for (raw, want) in [
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("2M", Duration::from_secs(120)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ] {
            h.insert("grpc-timeout", raw.parse().unwrap());
            assert_eq!(grpc_timeout(&h), Ok(Some(want)), "{raw}");
        }
        for raw in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            h.insert("grpc-timeout", raw.parse().unwrap());
            assert!(grpc_timeout(&h).is_err(), "{raw}");
        }
    }
}
