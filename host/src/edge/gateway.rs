//! `gateway.v1.GatewayService`, the backend-for-frontend of the original
//! platform, served by the edge itself.
//!
//! Its business RPCs take and return the owning services' messages, so each
//! is an alias: `GatewayService/CreateReservation` runs
//! `ReservationService/CreateReservation` with the same bytes, the same guard
//! (a bearer token on reservation and payment calls) and the same rate-limit
//! class. `HealthCheck` (every served service, from its current version's
//! calls and failures) and `ValidateToken` (the edge's own JWT check) are
//! answered by the host, since only the host knows either.

use super::errors;
use crate::foundations::auth::Claims;
use crate::runtime::Runtime;
use prost::Message;
use std::collections::BTreeMap;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use tacos_proto::gateway::v1::{
    HealthCheckResponse, HealthStatus, UserContext, ValidateTokenRequest, ValidateTokenResponse,
};

pub const SERVICE: &str = "gateway.v1.GatewayService";

/// An RPC the host answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    HealthCheck,
    ValidateToken,
}

/// What a GatewayService method does: answered here, or the owning
/// service's RPC of that name.
pub fn target(method: &str) -> Option<Result<Native, (&'static str, &'static str)>> {
    Some(match method {
        "HealthCheck" => Ok(Native::HealthCheck),
        "ValidateToken" => Ok(Native::ValidateToken),
        "GetEventAvailability" => Err(("reservation.v1.Inventory", "GetInventoryStatus")),
        "CreateReservation" => Err(("reservation.v1.ReservationService", "CreateReservation")),
        "GetReservation" => Err(("reservation.v1.ReservationService", "GetReservation")),
        "ConfirmReservation" => Err(("reservation.v1.ReservationService", "ConfirmReservation")),
        "CancelReservation" => Err(("reservation.v1.ReservationService", "CancelReservation")),
        "CreatePaymentIntent" => Err(("payment.v1.PaymentService", "CreatePaymentIntent")),
        "GetPaymentStatus" => Err(("payment.v1.PaymentService", "GetPaymentStatus")),
        _ => return None,
    })
}

/// Answer a native RPC with its encoded response.
pub fn answer(
    native: Native,
    runtime: &Runtime,
    verify: impl Fn(&str) -> Result<Claims, String>,
    request: &[u8],
    trace: &str,
) -> Result<Vec<u8>, ProtoError> {
    let now_ms = runtime.clock.now_ms();
    Ok(match native {
        Native::HealthCheck => health(runtime, now_ms).encode_to_vec(),
        Native::ValidateToken => {
            let req = ValidateTokenRequest::decode(request).map_err(|e| {
                errors::error(
                    ErrorCode::InvalidArgument,
                    format!("decoding ValidateTokenRequest: {e}"),
                    trace,
                )
            })?;
            let token = req.token.trim();
            let token = token.strip_prefix("Bearer ").unwrap_or(token);
            match verify(token) {
                Ok(claims) => ValidateTokenResponse {
                    valid: true,
                    user: Some(UserContext {
                        user_id: claims.sub,
                        ..Default::default()
                    }),
                    expires_at: Some(tacos_proto::timestamp_ms(claims.exp as i64 * 1000)),
                    error: None,
                },
                Err(reason) => ValidateTokenResponse {
                    valid: false,
                    error: Some(errors::error(ErrorCode::Unauthenticated, reason, trace)),
                    ..Default::default()
                },
            }
            .encode_to_vec()
        }
    })
}

/// Healthy unless a service's current version fails more than half its calls
/// (after at least 10).
fn health(runtime: &Runtime, now_ms: u64) -> HealthCheckResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let mut services = BTreeMap::new();
    for slot in runtime.slots() {
        let v = slot.current.load();
        let (calls, failures) = (v.calls.load(Relaxed), v.failures.load(Relaxed));
        let status = if calls >= 10 && failures * 2 > calls {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        for service in slot.serves.iter().filter(|s| !s.starts_with("tacos.")) {
            services.insert(service.clone(), status as i32);
        }
    }
    let status = if services
        .values()
        .all(|s| *s == HealthStatus::Healthy as i32)
    {
        HealthStatus::Healthy
    } else {
        HealthStatus::Degraded
    };
    HealthCheckResponse {
        status: status as i32,
        services,
        version: env!("CARGO_PKG_VERSION").to_string(),
        checked_at: Some(tacos_proto::timestamp_ms(now_ms as i64)),
    }
}
