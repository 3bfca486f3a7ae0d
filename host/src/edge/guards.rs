//! Who may call each contract method from outside: one table for REST and
//! gRPC alike, so a guard can never exist on one protocol and not the other.
//!
//! Every method of every contract service is listed. A method that is not
//! listed is not served on either protocol (and a unit test fails), so a new
//! RPC is closed until someone decides who may call it. Service-to-service
//! RPCs (inventory's writes, the reservation lifecycle, queue and event
//! administration) are [`Guard::Internal`]: components reach them over the
//! `rpc` capability, never the edge. `gateway.v1.GatewayService`'s aliases take
//! the guard of the RPC they stand for.

use super::gateway;

/// How a method is reached from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Any client (reads, and the waiting room, whose tokens prove who holds them).
    Open,
    /// Any client; a bearer token, when sent, must be valid and its subject
    /// becomes the request's `user_id` (joining the waiting room signed in).
    MaybeUser,
    /// An end user with a valid bearer token; the request's `user_id` is the
    /// token's subject, and components answer only with that user's objects.
    User,
    /// Only with a valid Standard Webhooks signature by the tenant's key.
    SignedWebhook,
    /// Operator methods: the admin token.
    Admin,
    /// Not reachable from outside at all: components call it over `rpc`.
    Internal,
}

use Guard::*;

/// `package.Service/Method` → its guard.
const TABLE: &[(&str, Guard)] = &[
    ("gateway.v1.QueueService/JoinQueue", MaybeUser),
    ("gateway.v1.QueueService/GetQueueStatus", Open),
    ("gateway.v1.QueueService/RequestAdmission", MaybeUser),
    ("gateway.v1.QueueService/LeaveQueue", Open),
    ("gateway.v1.QueueService/GetQueueStats", Open),
    // Served by the host's live feed (WebSocket and gRPC streams).
    ("gateway.v1.QueueService/StreamQueueUpdates", Open),
    ("reservation.v1.Inventory/CheckAvailability", Open),
    ("reservation.v1.Inventory/GetInventoryStatus", Open),
    ("reservation.v1.Inventory/ListEvents", Open),
    ("reservation.v1.Inventory/StreamSeatUpdates", Open),
    ("reservation.v1.Inventory/ReserveSeat", Internal),
    ("reservation.v1.Inventory/CommitReservation", Internal),
    ("reservation.v1.Inventory/ReleaseHold", Internal),
    ("reservation.v1.ReservationService/CreateReservation", User),
    ("reservation.v1.ReservationService/GetReservation", User),
    ("reservation.v1.ReservationService/ConfirmReservation", User),
    ("reservation.v1.ReservationService/CancelReservation", User),
    ("reservation.v1.ReservationService/ListReservations", User),
    ("reservation.v1.ReservationService/ExtendHold", User),
    ("payment.v1.PaymentService/CreatePaymentIntent", User),
    ("payment.v1.PaymentService/ProcessPayment", User),
    ("payment.v1.PaymentService/GetPaymentStatus", User),
    ("payment.v1.PaymentService/CancelPayment", User),
    ("payment.v1.PaymentService/ListPayments", User),
    ("payment.v1.PaymentService/SimulateWebhook", User),
    (
        "gateway.v1.WebhookService/ReceivePaymentWebhook",
        SignedWebhook,
    ),
    // The worker's RPCs change anyone's reservations: operators only.
    (
        "reservation.v1.WorkerService/ProcessReservationExpiry",
        Admin,
    ),
    ("reservation.v1.WorkerService/ProcessPaymentResult", Admin),
    ("gateway.v1.GatewayService/HealthCheck", Open),
    ("gateway.v1.GatewayService/ValidateToken", Open),
    ("tacos.internal.v1.EventAdmin/CreateEvent", Admin),
    ("tacos.internal.v1.QueueAdmin/ConfigureEvent", Internal),
    // The host's live feeds call these; no client does.
    ("tacos.internal.v1.QueueLive/Watch", Internal),
    ("tacos.internal.v1.QueueLive/Standings", Internal),
    ("tacos.internal.v1.InventoryLive/SeatMap", Internal),
    (
        "tacos.internal.v1.ReservationLifecycle/ExpireReservation",
        Internal,
    ),
    (
        "tacos.internal.v1.ReservationLifecycle/FailReservation",
        Internal,
    ),
];

/// The guard of `service`/`method`; `None` for a method nobody classified,
/// which the edge then does not serve.
pub fn of(service: &str, method: &str) -> Option<Guard> {
    if service == gateway::SERVICE
        && let Some(Err((owner, rpc))) = gateway::target(method)
    {
        return of(owner, rpc);
    }
    TABLE
        .iter()
        .find(|(m, _)| {
            m.strip_prefix(service)
                .and_then(|rest| rest.strip_prefix('/'))
                == Some(method)
        })
        .map(|(_, g)| *g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method of every contract service is classified, and every method
    /// that binds a user has a `user_id` to bind it to.
    #[test]
    fn every_contract_method_has_a_guard() {
        let codec = crate::foundations::json::Codec::new().expect("contracts load");
        let mut seen = 0;
        for service in codec.services() {
            for m in service.methods() {
                let name = format!("{}/{}", service.full_name(), m.name());
                let guard = of(service.full_name(), m.name())
                    .unwrap_or_else(|| panic!("{name} has no entry in the guard table"));
                if matches!(guard, User | MaybeUser) {
                    assert!(
                        m.input().get_field_by_name("user_id").is_some(),
                        "{name} binds the caller but its request has no user_id"
                    );
                }
                seen += 1;
            }
        }
        assert!(seen >= TABLE.len(), "{seen} methods in the contracts");
        for (name, _) in TABLE {
            let (s, m) = name.split_once('/').expect("Service/Method");
            assert!(
                codec
                    .service(s)
                    .is_some_and(|svc| svc.methods().any(|x| x.name() == m)),
                "{name} is in the guard table but not in the contracts"
            );
        }
    }

    #[test]
    fn aliases_take_their_owners_guard() {
        assert_eq!(of(gateway::SERVICE, "CreateReservation"), Some(User));
        assert_eq!(of(gateway::SERVICE, "GetEventAvailability"), Some(Open));
        assert_eq!(
            of("reservation.v1.Inventory", "ReserveSeat"),
            Some(Internal)
        );
        assert_eq!(of("reservation.v1.Inventory", "Nope"), None);
        assert_eq!(of("reservation.v1.Inv", "entory/ReserveSeat"), None);
    }
}
