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
        route!(GET "/api/v1/events" => "reservation.v1.Inventory" / "ListEvents" ("reservation.v1.ListEventsRequest" -> "reservation.v1.ListEventsResponse") query [("cursor", "pagination.cursor"), ("page_size", "pagination.page_size")]),
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

/// The routes by path ([`matchit`], the router axum uses), each path with
/// the methods it serves.
pub struct Router<T> {
    paths: matchit::Router<Vec<(Method, T)>>,
}

/// What a request's method and path find.
pub enum Found<'a, T> {
    Route(&'a T, Vec<(&'a str, String)>),
    /// The path exists, for other methods.
    WrongMethod,
    NotFound,
}

impl<T> Router<T> {
    /// A router of `routes`, each with the pattern (`/a/{field}`) and method
    /// it is served on.
    pub fn new(
        routes: impl IntoIterator<Item = (&'static str, Method, T)>,
    ) -> anyhow::Result<Self> {
        let mut by_path: Vec<(&'static str, Vec<(Method, T)>)> = Vec::new();
        for (path, method, target) in routes {
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push((method, target)),
                None => by_path.push((path, vec![(method, target)])),
            }
        }
        let mut paths = matchit::Router::new();
        for (path, methods) in by_path {
            paths
                .insert(path, methods)
                .map_err(|e| anyhow::anyhow!("route {path}: {e}"))?;
        }
        Ok(Router { paths })
    }

    /// The route for `method` on `path` (a trailing `/` ignored), with its
    /// path parameters percent-decoded; a parameter that is not UTF-8 after
    /// decoding finds nothing.
    pub fn find(&self, method: &Method, path: &str) -> Found<'_, T> {
        let path = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        let Ok(matched) = self.paths.at(path) else {
            return Found::NotFound;
        };
        let Some((_, target)) = matched.value.iter().find(|(m, _)| m == method) else {
            return Found::WrongMethod;
        };
        let mut captures = Vec::new();
        for (name, raw) in matched.params.iter() {
            let Ok(value) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
                return Found::NotFound;
            };
            captures.push((name, value.into_owned()));
        }
        Found::Route(target, captures)
    }
}

/// `a=1&b=2` into pairs, decoded (`+` is a space), as HTML forms and URLs
/// write them.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<'a>(
        router: &'a Router<usize>,
        method: Method,
        path: &str,
    ) -> Option<(usize, Vec<(&'a str, String)>)> {
        match router.find(&method, path) {
            Found::Route(i, captures) => Some((*i, captures)),
            _ => None,
        }
    }

    #[test]
    fn captures_and_queries() {
        let router = Router::new(
            table()
                .into_iter()
                .enumerate()
                .map(|(i, r)| (r.path, r.method, i)),
        )
        .unwrap();
        let (i, captures) = found(
            &router,
            Method::POST,
            "/api/v1/reservations/res%5F1/confirm/",
        )
        .unwrap();
        assert_eq!(table()[i].rpc, "ConfirmReservation");
        assert_eq!(captures, vec![("reservation_id", "res_1".to_string())]);
        assert!(
            found(&router, Method::GET, "/api/v1/reservations/")
                .is_some_and(|(i, _)| table()[i].rpc == "ListReservations")
        );
        assert!(found(&router, Method::GET, "/api/v1/reservations/x/y").is_none());
        assert!(matches!(
            router.find(&Method::DELETE, "/api/v1/reservations"),
            Found::WrongMethod
        ));
        assert!(
            found(&router, Method::GET, "/api/v1/reservations/%ff").is_none(),
            "not UTF-8"
        );
        assert_eq!(
            query_pairs("token=a%2Bb&x=1+2"),
            vec![("token".into(), "a+b".into()), ("x".into(), "1 2".into())]
        );
        // Every route names real messages.
        let codec = crate::foundations::json::Codec::new().unwrap();
        for r in table() {
            assert!(
                codec.message(r.input).is_ok() && codec.message(r.output).is_ok(),
                "{r:?}"
            );
        }
    }
}
