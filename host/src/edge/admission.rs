//! One admission path for every protocol: REST and gRPC requests pass the
//! same steps, in the same order, before a component runs.
//!
//! 1. the client IP's bucket for the method's class: first, so a stranger
//!    spends nothing else (no token check, no tenant's budget) once limited
//!    (the IP is the TCP peer's, or behind a trusted proxy the one it
//!    forwards: [`client_ip`]);
//! 2. the method's [`Guard`]: the admin token, or a bearer token, checked
//!    with the keys of the tenant it claims (its own, or the host's);
//! 3. the tenant (header, host name, token claim; see [`Edge::tenant_of`]);
//! 4. the tenant's requests-per-second quota;
//! 5. the signed-in user's bucket.
//!
//! Then, once the request is read: a signed webhook's signature
//! ([`Edge::verify_webhook`]) and the caller bound into the request
//! ([`Edge::bind`]).

use super::guards::Guard;
use super::{Edge, admin, errors, limits};
use crate::foundations::auth;
use crate::foundations::json::BindError;
use crate::foundations::metrics::Stage;
use crate::runtime::Served;
use crate::tenancy::{DEFAULT_TENANT, Tenant};
use hyper::header::AUTHORIZATION;
use prost_reflect::MessageDescriptor;
use std::net::IpAddr;
use std::sync::Arc;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode, ErrorDetail};

/// The client's address: the TCP peer, unless the peer is a trusted proxy;
/// then the nearest address in `x-forwarded-for` that is not a trusted proxy
/// (each proxy appends the address it heard from, so entries left of that one
/// were written by the client and prove nothing).
pub fn client_ip(peer: IpAddr, headers: &hyper::HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break; // garbage: stop at the last address we could trust
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Who a request is for, once admitted.
pub(crate) struct Admitted {
    pub tenant: Arc<Served>,
    /// The signed-in user (a bearer token's subject).
    pub user: Option<String>,
}

impl Edge {
    /// Admit a request to a method of `service` behind `guard`.
    pub(crate) fn admit(
        &self,
        guard: Guard,
        service: &str,
        headers: &hyper::HeaderMap,
        uri: &hyper::Uri,
        peer: IpAddr,
        trace: &str,
    ) -> Result<Admitted, ProtoError> {
        let _span = self.shared.runtime.metrics.stages.span(Stage::Admission);
        let class = limits::RouteClass::of_service(service);
        if let Some(class) = class {
            let client = client_ip(peer, headers, &self.shared.trusted_proxies);
            self.limiter
                .check_ip(class, client)
                .map_err(|l| self.limited(l, trace))?;
        }
        let bearer = headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        let signs_in = match guard {
            Guard::Admin => {
                admin::authorize(self, headers, trace)?;
                false
            }
            Guard::User => true,
            Guard::MaybeUser => bearer.is_some(),
            Guard::Open | Guard::SignedWebhook => false,
            Guard::Internal => {
                return Err(errors::error(
                    ErrorCode::NotFound,
                    format!("{service} is not served here"),
                    trace,
                ));
            }
        };
        // A token's (yet unproven) tenant claim picks whose keys check it; no
        // token, or none readable, claims nothing and fails its check below.
        let claimed = bearer
            .filter(|_| signs_in)
            .and_then(auth::claimed_tenant)
            .map(|t| t.unwrap_or_else(|| DEFAULT_TENANT.to_string()));
        let tenant = self.tenant_of(headers, uri, claimed.as_deref(), trace)?;
        let claims = match signs_in {
            true => Some(
                self.verify_token(&tenant, bearer)
                    .map_err(|m| errors::error(ErrorCode::Unauthenticated, m, trace))?,
            ),
            false => None,
        };
        tenant.admit_request().map_err(|q| q.to_proto(trace))?;
        let user = claims.map(|c| c.sub);
        if let (Some(class), Some(user)) = (class, &user) {
            self.limiter
                .check_user(class, &tenant.id, user)
                .map_err(|l| self.limited(l, trace))?;
        }
        Ok(Admitted { tenant, user })
    }

    /// The claims of a user of `tenant` from an `authorization` header
    /// value: checked with the tenant's own keys if it has them, else the
    /// host's, against the host's clock (see [`auth::Auth::verify`]), and
    /// for this tenant only.
    pub(crate) fn verify_token(
        &self,
        tenant: &Tenant,
        authorization: Option<&str>,
    ) -> Result<auth::Claims, String> {
        let _span = self.shared.runtime.metrics.stages.span(Stage::Auth);
        let now_s = self.shared.runtime.clock.now_ms() / 1000;
        let real_s = crate::foundations::clock::system_now_ms() / 1000;
        let keys = tenant.auth.as_deref().unwrap_or(&self.shared.auth);
        let claims = keys.verify(authorization, now_s, real_s)?;
        let for_tenant = claims.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
        if for_tenant != tenant.id {
            return Err(format!(
                "the token is for tenant `{for_tenant}`, not `{}`",
                tenant.id
            ));
        }
        Ok(claims)
    }

    /// A rate-limit refusal, counted, with `retry_after_seconds`.
    fn limited(&self, l: limits::Limited, trace: &str) -> ProtoError {
        self.shared
            .runtime
            .metrics
            .rate_limited
            .get_or_create(&crate::foundations::metrics::LimitLabels {
                class: l.class.name().into(),
                by: (if l.by_user { "user" } else { "ip" }).into(),
            })
            .inc();
        let mut e = errors::error(ErrorCode::RateLimited, l.message(), trace);
        e.details.push(ErrorDetail {
            field: "retry_after_seconds".into(),
            reason: "rate limited".into(),
            value: l.retry_after_secs().to_string(),
        });
        e
    }

    /// Check a Standard Webhooks signature of `body` with the tenant's keys.
    pub(crate) fn verify_webhook(
        &self,
        tenant: &Tenant,
        headers: &hyper::HeaderMap,
        body: &[u8],
        trace: &str,
    ) -> Result<(), ProtoError> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now_ms = self.shared.runtime.clock.now_ms();
        let keys = tenant.webhook_keys();
        crate::foundations::signature::verify(
            &keys.active(now_ms),
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body,
            now_ms / 1000,
        )
        .map_err(|e| {
            errors::error(
                ErrorCode::Unauthenticated,
                format!("webhook signature: {e}"),
                trace,
            )
        })
    }

    /// Write what the edge vouches for into an encoded request: the
    /// authenticated user as `user_id`, the `Idempotency-Key` header as
    /// `idempotency_key` (see [`Codec::bind`](crate::foundations::json::Codec::bind)).
    pub(crate) fn bind(
        &self,
        desc: &MessageDescriptor,
        request: Vec<u8>,
        user: Option<&str>,
        idempotency_key: Option<&str>,
        trace: &str,
    ) -> Result<Vec<u8>, ProtoError> {
        let mut values = Vec::with_capacity(2);
        if let Some(u) = user {
            values.push(("user_id", u));
        }
        if let Some(k) = idempotency_key {
            values.push(("idempotency_key", k));
        }
        if values.is_empty() {
            return Ok(request);
        }
        self.shared
            .runtime
            .codec
            .bind(desc, request, &values)
            .map_err(|e| match e {
                BindError::Undecodable(m) => errors::error(ErrorCode::InvalidArgument, m, trace),
                BindError::Mismatch { field, given } if field == "user_id" => errors::error(
                    ErrorCode::Forbidden,
                    format!("user_id `{given}` is not the authenticated user"),
                    trace,
                ),
                BindError::Mismatch { field, given } => errors::error(
                    ErrorCode::InvalidArgument,
                    format!("{field} `{given}` disagrees with the Idempotency-Key header"),
                    trace,
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let ip = |s: &str| s.parse().unwrap();
        // From the proxy: the first address it did not write itself.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        // From anyone else the header is the client's own word: ignored.
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        h.insert("x-forwarded-for", "1.2.3.4, garbage".parse().unwrap());
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        h.remove("x-forwarded-for");
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }
}
