//! `tacos:platform/webhook`: signed outbound webhooks to hosts the policy allows,
//! over `http://` or `https://` (the server's certificate checked against the
//! system's roots plus the operator's `--webhook-ca`).
//!
//! A component posts only where its policy says (`self`, or `host:port`),
//! and never to an operator route: not to this host's own anything but its
//! webhook receivers (`/api/v1/webhooks/…`), and not to `/admin/…` or
//! `/metrics` of any host. So a user-chosen `webhook_url` cannot reach the
//! admin API, whatever the policy.
//!
//! The payload arrives as protobuf and leaves as proto3 JSON, signed the
//! Standard Webhooks way with the tenant's key (which the component never
//! sees), and carries `x-tenant-id`, so a tacos host receiving it (the
//! default `webhook_url`) knows whose key to verify with. The call is bounded by 5 seconds and by the caller's deadline.
//! It leaves only once what the call has written or read is durable.
//! Retrying is the caller's business: a consumer returns an error and the
//! queue retries it with backoff.

use super::bindings::platform::webhook::{self, Request};
use super::{Caller, Has};
use crate::foundations::clock::Clock;
use crate::foundations::json::Codec;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;

const MAX_PAYLOAD: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The outbound HTTP client webhooks go through.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The webhook client: `http://`, and `https://` trusting the system's roots
/// and the CA certificates (PEM) in `ca`, when given.
pub fn http_client(ca: Option<&Path>) -> anyhow::Result<HttpClient> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "loading the system's root certificates");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(ca) = ca {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading the webhook CA {}", ca.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "the webhook CA {} holds no certificate",
            ca.display()
        );
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("the webhook CA {}", ca.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS for webhooks")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}

/// The webhook capability's state: the caller (whose tenant's keys sign),
/// the HTTP client, the codec that renders the payload, and this host's own
/// address (which only its webhook receivers may be posted to on).
pub struct WebhookCtx {
    caller: Arc<Caller>,
    http: HttpClient,
    codec: Codec,
    clock: Arc<Clock>,
    public_url: Arc<str>,
}

impl WebhookCtx {
    pub fn new(
        caller: Arc<Caller>,
        http: HttpClient,
        codec: Codec,
        clock: Arc<Clock>,
        public_url: Arc<str>,
    ) -> WebhookCtx {
        WebhookCtx {
            caller,
            http,
            codec,
            clock,
            public_url,
        }
    }
}

impl webhook::Host for WebhookCtx {
    async fn deliver(&mut self, request: Request) -> wasmtime::Result<Result<u16, String>> {
        Ok(self
            .deliver_webhook(request)
            .await
            .map_err(|e| e.to_string()))
    }
}

/// Why a webhook was not delivered (the guest gets the message).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request itself is wrong: url, size, id, payload type.
    #[error("{0}")]
    Invalid(String),
    /// The destination is not one this component may post to.
    #[error("{0}")]
    Denied(String),
    #[error("delivery failed: {0}")]
    Failed(String),
    #[error("no answer within {} ms", .0.as_millis())]
    NoAnswer(Duration),
}

/// The paths of this host a webhook may go to.
const OWN_RECEIVERS: &str = "/api/v1/webhooks/";

/// A path as a receiver that normalizes might read it: percent-decoded,
/// lowercase, empty and `.` segments dropped, `..` applied. The operator-route
/// checks run on this, so `//admin`, `/%61dmin` or `/x/../admin` pass none.
fn normalized(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for s in decoded.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = if decoded.ends_with('/') { "/" } else { "" };
    format!("/{}{trailing}", segments.join("/"))
}

impl WebhookCtx {
    /// Whether `host:port` is this host: its public address, or its port on
    /// a loopback or unspecified address.
    fn is_own_address(&self, host: &str, port: u16) -> bool {
        let Ok(own) = self.public_url.parse::<hyper::Uri>() else {
            return false;
        };
        if own.port_u16().unwrap_or(80) != port {
            return false;
        }
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>();
        own.host() == Some(host)
            || host.eq_ignore_ascii_case("localhost")
            || ip.is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
    }

    async fn deliver_webhook(&mut self, request: Request) -> Result<u16, WebhookError> {
        let uri: hyper::Uri = request
            .url
            .parse()
            .map_err(|e| WebhookError::Invalid(format!("invalid url: {e}")))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(WebhookError::Invalid(
                    "webhook urls are http:// or https://".into(),
                ));
            }
        };
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(default_port);
        let path = normalized(uri.path());
        let is_self = self.is_own_address(host, port);
        let operator_route = path.starts_with("/admin") || path.starts_with("/metrics");
        let component = &self.caller.component;
        if operator_route || (is_self && !path.starts_with(OWN_RECEIVERS)) {
            return Err(WebhookError::Denied(format!(
                "component `{component}` may not post to {path} (only webhook receivers)"
            )));
        }
        if !self.caller.policy.may_post_to(host, port, is_self) {
            return Err(WebhookError::Denied(format!(
                "component `{component}` may not post to {host}:{port} (policy)"
            )));
        }
        if request.payload.len() > MAX_PAYLOAD {
            return Err(WebhookError::Invalid(format!(
                "payload exceeds {MAX_PAYLOAD} bytes"
            )));
        }
        if request.webhook_id.is_empty() || request.webhook_id.len() > 256 {
            return Err(WebhookError::Invalid(
                "webhook-id must be 1 to 256 bytes".into(),
            ));
        }
        let codec = &self.codec;
        let invalid = |e: anyhow::Error| WebhookError::Invalid(format!("{e:#}"));
        let desc = codec.message(&request.message_type).map_err(invalid)?;
        let body = codec.to_json(&desc, &request.payload).map_err(invalid)?;
        let now_ms = self.clock.now_ms();
        let timestamp = now_ms / 1000;
        let keys = self.caller.tenant.webhook_keys();
        let signature = crate::foundations::signature::sign_all(
            &keys.active(now_ms),
            &request.webhook_id,
            timestamp,
            &body,
        );
        let req = hyper::Request::post(uri)
            .header("content-type", "application/json")
            .header("webhook-id", &request.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(
                "traceparent",
                crate::foundations::trace::traceparent(&self.caller.trace_id),
            )
            // Whose key signed it: the receiving tacos host verifies with it.
            .header(crate::tenancy::TENANT_HEADER, &self.caller.tenant.id)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| WebhookError::Invalid(e.to_string()))?;
        // What the call wrote or read is durable before the world hears of it.
        self.caller
            .seen
            .durable()
            .await
            .map_err(|e| WebhookError::Failed(format!("the store: {e}")))?;
        let budget = self.caller.remaining().min(TIMEOUT);
        match tokio::time::timeout(budget, self.http.request(req)).await {
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            // With its causes: "client error (Connect)" alone hides a
            // refused certificate or connection.
            Ok(Err(e)) => Err(WebhookError::Failed(format!("{:#}", anyhow::Error::new(e)))),
            Err(_) => Err(WebhookError::NoAnswer(budget)),
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WebhookCtx,
) -> wasmtime::Result<()> {
    webhook::add_to_linker::<T, Has<WebhookCtx>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::normalized;

    #[test]
    fn operator_routes_cannot_hide_behind_path_tricks() {
        for path in [
            "//admin/v1/events",
            "/%61dmin/v1/events",
            "/x/../admin",
            "/ADMIN",
            "/./metrics",
        ] {
            let p = normalized(path);
            assert!(
                p.starts_with("/admin") || p.starts_with("/metrics"),
                "{path} → {p}"
            );
        }
        assert_eq!(
            normalized("/api/v1/webhooks/payment"),
            "/api/v1/webhooks/payment"
        );
        assert_eq!(normalized("/api/v1/webhooks/"), "/api/v1/webhooks/");
        assert!(!normalized("/api/v1/webhooks/../../../admin").starts_with("/api/v1/webhooks/"));
    }
}
