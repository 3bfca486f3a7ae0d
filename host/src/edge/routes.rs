//! The REST routes: each maps an HTTP method and path onto one RPC of a
//! protobuf service, with path and query parameters filling request fields.
//! No route carries per-message code: the JSON mapping is descriptor-driven,
//! and who may call a route is its RPC's entry in [`guards`](super::guards).

use hyper::Method;

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Segments; `{field}` captures into that request field.
    pub path: &'static str,
    pub service: &'static str,
    pub rpc: &'static str,
    pub input: &'static str,
    pub output: &'static str,
    /// Query parameter → request field.
    pub query: &'static [(&'static str, &'static str)],
}

macro_rules! route {
    ($m:ident $path:literal => $svc:literal / $rpc:literal ($input:literal -> $output:literal) $(query [$(($q:literal, $f:literal)),*])?) => {
        Route {
            method: Method::$m,
            path: $path,
            service: $svc,
            rpc: $rpc,
            input: $input,
            output: $output,
            query: &[$($(($q, $f)),*)?],
        }
    };
}

pub fn table() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/queue/join" => "gateway.v1.QueueService" / "JoinQueue" ("gateway.v1.JoinQueueRequest" -> "gateway.v1.JoinQueueResponse")),
        route!(GET "/api/v1/queue/status" => "gateway.v1.QueueService" / "GetQueueStatus" ("gateway.v1.GetQueueStatusRequest" -> "gateway.v1.GetQueueStatusResponse") query [("token", "waiting_token"), ("waiting_token", "waiting_token")]),
        route!(POST "/api/v1/queue/enter" => "gateway.v1.QueueService" / "RequestAdmission" ("gateway.v1.RequestAdmissionRequest" -> "gateway.v1.RequestAdmissionResponse")),
        route!(POST "/api/v1/queue/leave" => "gateway.v1.QueueService" / "LeaveQueue" ("gateway.v1.LeaveQueueRequest" -> "gateway.v1.LeaveQueueResponse")),
        route!(GET "/api/v1/queue/stats" => "gateway.v1.QueueService" / "GetQueueStats" ("gateway.v1.GetQueueStatsRequest" -> "gateway.v1.GetQueueStatsResponse") query [("event_id", "event_id")]),
        route!(GET "/api/v1/events/{event_id}/seats" => "reservation.v1.Inventory" / "GetInventoryStatus" ("reservation.v1.GetInventoryStatusRequest" -> "reservation.v1.GetInventoryStatusResponse") query [("section", "section")]),
        route!(POST "/api/v1/reservations" => "reservation.v1.ReservationService" / "CreateReservation" ("reservation.v1.CreateReservationRequest" -> "reservation.v1.CreateReservationResponse")),
        route!(GET "/api/v1/reservations" => "reservation.v1.ReservationService" / "ListReservations" ("reservation.v1.ListReservationsRequest" -> "reservation.v1.ListReservationsResponse") query [("user_id", "user_id"), ("event_id", "event_id")]),
        route!(GET "/api/v1/reservations/{reservation_id}" => "reservation.v1.ReservationService" / "GetReservation" ("reservation.v1.GetReservationRequest" -> "reservation.v1.GetReservationResponse") query [("user_id", "user_id")]),
        route!(POST "/api/v1/reservations/{reservation_id}/confirm" => "reservation.v1.ReservationService" / "ConfirmReservation" ("reservation.v1.ConfirmReservationRequest" -> "reservation.v1.ConfirmReservationResponse")),
        route!(POST "/api/v1/reservations/{reservation_id}/cancel" => "reservation.v1.ReservationService" / "CancelReservation" ("reservation.v1.CancelReservationRequest" -> "reservation.v1.CancelReservationResponse")),
        route!(POST "/api/v1/reservations/{reservation_id}/extend" => "reservation.v1.ReservationService" / "ExtendHold" ("reservation.v1.ExtendHoldRequest" -> "reservation.v1.ExtendHoldResponse")),
        route!(POST "/api/v1/payments/intent" => "payment.v1.PaymentService" / "CreatePaymentIntent" ("payment.v1.CreatePaymentIntentRequest" -> "payment.v1.CreatePaymentIntentResponse")),
        route!(GET "/api/v1/payments/{payment_intent_id}" => "payment.v1.PaymentService" / "GetPaymentStatus" ("payment.v1.GetPaymentStatusRequest" -> "payment.v1.GetPaymentStatusResponse") query [("user_id", "user_id")]),
        route!(POST "/api/v1/payments/{payment_intent_id}/process" => "payment.v1.PaymentService" / "ProcessPayment" ("payment.v1.ProcessPaymentRequest" -> "payment.v1.ProcessPaymentResponse")),
        route!(POST "/api/v1/payments/{payment_intent_id}/cancel" => "payment.v1.PaymentService" / "CancelPayment" ("payment.v1.CancelPaymentRequest" -> "payment.v1.CancelPaymentResponse")),
        route!(POST "/api/v1/payments/{payment_intent_id}/simulate-webhook" => "payment.v1.PaymentService" / "SimulateWebhook" ("payment.v1.SimulateWebhookRequest" -> "payment.v1.SimulateWebhookResponse")),
        route!(POST "/api/v1/webhooks/payment" => "gateway.v1.WebhookService" / "ReceivePaymentWebhook" ("gateway.v1.PaymentWebhookRequest" -> "gateway.v1.PaymentWebhookResponse")),
        route!(POST "/admin/v1/events" => "tacos.internal.v1.EventAdmin" / "CreateEvent" ("tacos.internal.v1.CreateEventRequest" -> "tacos.internal.v1.CreateEventResponse")),
    ]
}

/// Match with captures borrowed from the static pattern.
pub fn capture(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut want = pattern.trim_end_matches('/').split('/');
    let mut got = path.trim_end_matches('/').split('/');
    let mut out = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(out),
            (Some(w), Some(g)) => {
                if let Some(field) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    out.push((field, percent_decode(g)?));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Decode `%XX` escapes (and `+` in queries is left to the caller).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `a=1&b=2` into pairs, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((
                percent_decode(&k.replace('+', " "))?,
                percent_decode(&v.replace('+', " "))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_queries() {
        assert_eq!(
            capture(
                "/api/v1/reservations/{reservation_id}/confirm",
                "/api/v1/reservations/res_1/confirm"
            ),
            Some(vec![("reservation_id", "res_1".to_string())])
        );
        assert_eq!(
            capture(
                "/api/v1/reservations/{reservation_id}",
                "/api/v1/reservations/"
            ),
            None
        );
        assert_eq!(
            capture("/api/v1/reservations", "/api/v1/reservations/x"),
            None
        );
        assert_eq!(
            query_pairs("token=a%2Bb&x=1+2"),
            vec![("token".into(), "a+b".into()), ("x".into(), "1 2".into())]
        );
        // Every route names real messages.
        let codec = crate::json::Codec::new().unwrap();
        for r in table() {
            assert!(
                codec.message(r.input).is_ok() && codec.message(r.output).is_ok(),
                "{r:?}"
            );
        }
    }
}
