//! The web apps the host serves itself: the buyer's app at `/` and the
//! operator's console at `/console`, from files built into the binary
//! (`host/web/`: plain HTML, CSS and JavaScript, no build step and no
//! framework; ADR 0014), and the two host routes the buyer's app needs
//! beside the contracts:
//!
//! - `GET /api/v1/site`: the tenant the request is for (by host name, as
//!   every API route picks it) with its name, and whether demo sign-in is on;
//! - `POST /api/v1/demo/sign-in` `{user_id}`: a user token for that tenant,
//!   signed with the host's key. It exists only where the operator allows
//!   it (`--demo-sign-in`; by default only on a loopback listener with no
//!   proxy in front): elsewhere it is 404 like any unknown route. A tenant
//!   with keys of its own signs its users itself.
//!
//! Both pass the one admission path (as the waiting room's routes: the
//! client's bucket, the tenant, its quota). The pages carry a strict
//! content security policy: scripts, styles and connections only from this
//! host, no frames.

use super::{Body, Edge, MAX_BODY, errors, json};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json as j;
use std::net::IpAddr;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

/// How long a demo sign-in's token is good for.
const DEMO_TOKEN_TTL_S: u64 = 12 * 3600;
/// Whose class of limits the web routes take.
const LIMITED_AS: &str = "gateway.v1.QueueService";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml; charset=utf-8";

/// Path → content type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", HTML, include_bytes!("../../web/index.html")),
    ("/console", HTML, include_bytes!("../../web/console.html")),
    ("/assets/app.js", JS, include_bytes!("../../web/app.js")),
    (
        "/assets/console.js",
        JS,
        include_bytes!("../../web/console.js"),
    ),
    (
        "/assets/common.js",
        JS,
        include_bytes!("../../web/common.js"),
    ),
    (
        "/assets/style.css",
        CSS,
        include_bytes!("../../web/style.css"),
    ),
    (
        "/assets/icon.svg",
        SVG,
        include_bytes!("../../web/icon.svg"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A built-in file for `GET path`, if there is one.
pub(super) fn asset(method: &Method, path: &str) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = match path {
        "/console/" => "/console",
        p => p,
    };
    let (_, content_type, bytes) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let mut resp = Response::new(Full::new(Bytes::from_static(bytes)));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small files that change with the binary: always revalidated.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Some(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user_id: String,
}

/// A user id the demo sign-in takes: 1 to 64 letters, digits and `._@-`.
fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

impl Edge {
    /// `/api/v1/site` and `/api/v1/demo/sign-in`; anything else is handed back.
    pub(super) async fn web_api(
        &self,
        req: Request<Incoming>,
        peer: IpAddr,
        trace: &str,
    ) -> Result<Result<Response<Body>, ProtoError>, Request<Incoming>> {
        let path = req.uri().path();
        let site = path == "/api/v1/site" && req.method() == Method::GET;
        let sign_in = path == "/api/v1/demo/sign-in"
            && req.method() == Method::POST
            && self.shared.demo_sign_in;
        if !site && !sign_in {
            return Err(req);
        }
        Ok(self.web_call(req, peer, site, trace).await)
    }

    async fn web_call(
        &self,
        req: Request<Incoming>,
        peer: IpAddr,
        site: bool,
        trace: &str,
    ) -> Result<Response<Body>, ProtoError> {
        let err = |code, msg: String| errors::error(code, msg, trace);
        let guard = super::guards::Guard::Open;
        let admitted = self.admit(guard, LIMITED_AS, req.headers(), req.uri(), peer, trace)?;
        let tenant = &admitted.tenant;
        if site {
            let body = j!({
                "tenant_id": tenant.id,
                "name": tenant.name,
                "demo_sign_in": self.shared.demo_sign_in && tenant.auth.is_none(),
            });
            return Ok(json(StatusCode::OK, body.to_string().into_bytes(), trace));
        }
        let read = Limited::new(req.into_body(), MAX_BODY).collect();
        let body = match tokio::time::timeout(self.conn.body_read, read).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => return Err(err(ErrorCode::InvalidArgument, "unreadable body".into())),
        };
        let asked: SignIn = serde_json::from_slice(&body)
            .map_err(|e| err(ErrorCode::InvalidArgument, format!("invalid JSON: {e}")))?;
        if !valid_user(&asked.user_id) {
            return Err(err(
                ErrorCode::InvalidArgument,
                "user_id must be 1 to 64 letters, digits and . _ @ -".into(),
            ));
        }
        if tenant.auth.is_some() {
            return Err(err(
                ErrorCode::FailedPrecondition,
                format!("tenant {} signs in its own users", tenant.id),
            ));
        }
        let now_s = self.shared.runtime.clock.now_ms() / 1000;
        let claim = (tenant.id != crate::tenancy::DEFAULT_TENANT).then_some(tenant.id.as_str());
        let token = self
            .shared
            .auth
            .mint(claim, &asked.user_id, now_s, DEMO_TOKEN_TTL_S)
            .map_err(|m| err(ErrorCode::FailedPrecondition, m))?;
        let expires = tacos_proto::timestamp_ms(((now_s + DEMO_TOKEN_TTL_S) * 1000) as i64);
        let body = j!({
            "token": token,
            "user_id": asked.user_id,
            "tenant_id": tenant.id,
            "expires_at": expires.to_string(),
        });
        Ok(json(StatusCode::OK, body.to_string().into_bytes(), trace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_plain() {
        for ok in ["alice", "a.b-c_d@x", &"u".repeat(64)] {
            assert!(valid_user(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "<script>", &"u".repeat(65)] {
            assert!(!valid_user(bad), "{bad}");
        }
    }

    #[test]
    fn every_asset_has_a_type() {
        for (path, content_type, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{path}");
            assert!(content_type.contains("charset=utf-8"), "{path}");
            assert!(std::str::from_utf8(bytes).is_ok(), "{path}");
        }
    }
}
