//! The worker: consumes the events that move reservations on.
//!
//! - `reservation-expiry` (sent by reservation at hold time, delayed by the hold
//!   length): expire the reservation and release its seats; a no-op if it was
//!   confirmed, cancelled or extended meanwhile.
//! - payment webhooks (`gateway.v1.WebhookService/ReceivePaymentWebhook`, routed
//!   here by the host after it verified the signature): deduplicated on
//!   `webhook_id` and queued on `payment-results`, so that the receiver answers
//!   fast and the work is retried with backoff if reservation is briefly down.
//! - `payment-results`: approved → confirm the reservation (order, seats SOLD);
//!   failed → release the seats.
//!
//! Every handler is idempotent: delivery is at least once.

use tacos_guest::kv::{self, Condition, Tx};
use tacos_guest::proto::common::v1::ErrorCode;
use tacos_guest::proto::gateway::v1::{
    PaymentWebhookRequest, PaymentWebhookResponse, PaymentWebhookType,
};
use tacos_guest::proto::internal::v1::{
    ExpireReservationRequest, ExpireReservationResponse, FailReservationRequest,
    FailReservationResponse, Marker,
};
use tacos_guest::proto::reservation::v1::*;
use tacos_guest::proto::timestamp_ms;
use tacos_guest::{Message, Reply, Result, ServiceError, decode, handle, now_ms, reply, require};

tacos_guest::component_bindings!("../../wit", "tacos:platform/consumer");

struct Worker;

impl bindings::exports::tacos::platform::handler::Guest for Worker {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "reservation.v1.WorkerService/ProcessReservationExpiry" => handle(&request, expiry),
            "reservation.v1.WorkerService/ProcessPaymentResult" => handle(&request, payment_result),
            "gateway.v1.WebhookService/ReceivePaymentWebhook" => handle(&request, webhook),
            other => Err(ServiceError::invalid(format!("unknown method {other}")).encode()),
        }
    }
}

impl bindings::exports::tacos::platform::message_handler::Guest for Worker {
    fn handle(
        message: bindings::exports::tacos::platform::message_handler::Delivery,
    ) -> core::result::Result<(), String> {
        let retry = message.attempt.saturating_sub(1) as i32;
        let outcome = match message.topic.as_str() {
            EXPIRY_TOPIC => decode::<ProcessExpiryRequest>(&message.payload)
                .and_then(|mut r| {
                    r.retry_count = retry;
                    expiry(r)
                })
                .map(|r| r.next_action),
            RESULTS_TOPIC => decode::<ProcessPaymentResultRequest>(&message.payload)
                .and_then(|mut r| {
                    r.retry_count = retry;
                    payment_result(r)
                })
                .map(|r| r.next_action),
            other => return Err(format!("worker does not consume topic {other}")),
        };
        match outcome {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{}: {}", e.code().as_str_name(), e.0.message)),
        }
    }
}

bindings::export!(Worker with_types_in bindings);

const EXPIRY_TOPIC: &str = "reservation-expiry";
const RESULTS_TOPIC: &str = "payment-results";
const LIFECYCLE: &str = "tacos.internal.v1.ReservationLifecycle";
/// Webhook ids are remembered this long for deduplication.
const WEBHOOK_DEDUPE_MS: u64 = 24 * 3600 * 1000;

fn expiry(req: ProcessExpiryRequest) -> Result<ProcessExpiryResponse> {
    require("reservation_id", &req.reservation_id)?;
    let done: ExpireReservationResponse = tacos_guest::call(
        LIFECYCLE,
        "ExpireReservation",
        &ExpireReservationRequest {
            reservation_id: req.reservation_id.clone(),
            event_id: req.event_id.clone(),
        },
    )?;
    let status = if done.outcome.starts_with("skipped") || done.outcome == "extended" {
        ProcessingStatus::Skipped
    } else {
        ProcessingStatus::Success
    };
    tacos_guest::info(
        "expiry processed",
        &[
            ("reservation_id", &req.reservation_id),
            ("outcome", &done.outcome),
        ],
    );
    Ok(ProcessExpiryResponse {
        status: status as i32,
        released_seats: done.released_seats,
        processed_at: Some(timestamp_ms(now_ms())),
        next_action: "completed".into(),
        error: None,
    })
}

fn payment_result(req: ProcessPaymentResultRequest) -> Result<ProcessPaymentResultResponse> {
    require("reservation_id", &req.reservation_id)?;
    require("payment_intent_id", &req.payment_intent_id)?;
    let kind =
        PaymentResultType::try_from(req.result_type).unwrap_or(PaymentResultType::Unspecified);
    let done = |status: ProcessingStatus, order_id: String, seats: Vec<String>| {
        ProcessPaymentResultResponse {
            status: status as i32,
            order_id,
            affected_seats: seats,
            processed_at: Some(timestamp_ms(now_ms())),
            next_action: "completed".into(),
            error: None,
        }
    };
    match kind {
        PaymentResultType::Approved => {
            let confirmed = tacos_guest::call::<_, ConfirmReservationResponse>(
                "reservation.v1.ReservationService",
                "ConfirmReservation",
                &ConfirmReservationRequest {
                    reservation_id: req.reservation_id.clone(),
                    payment_intent_id: req.payment_intent_id.clone(),
                    user_id: String::new(),
                    idempotency_key: format!("auto:{}", req.payment_intent_id),
                },
            );
            match confirmed {
                Ok(c) => {
                    let seats = c.confirmed_seats.iter().map(|s| s.id.clone()).collect();
                    Ok(done(ProcessingStatus::Success, c.order_id, seats))
                }
                // Paid too late, or for a reservation that is gone: nothing to
                // confirm; a refund flow would start here.
                Err(e)
                    if matches!(
                        e.code(),
                        ErrorCode::ReservationExpired
                            | ErrorCode::FailedPrecondition
                            | ErrorCode::NotFound
                            | ErrorCode::InventoryConflict
                            | ErrorCode::PaymentNotApproved
                    ) =>
                {
                    tacos_guest::warn(
                        "approved payment could not confirm its reservation",
                        &[
                            ("reservation_id", &req.reservation_id),
                            ("payment_intent_id", &req.payment_intent_id),
                            ("reason", &e.0.message),
                        ],
                    );
                    Ok(done(ProcessingStatus::Failed, String::new(), Vec::new()))
                }
                Err(e) => Err(e),
            }
        }
        PaymentResultType::Failed | PaymentResultType::Cancelled | PaymentResultType::Timeout => {
            let failed: FailReservationResponse = tacos_guest::call(
                LIFECYCLE,
                "FailReservation",
                &FailReservationRequest {
                    reservation_id: req.reservation_id.clone(),
                    payment_intent_id: req.payment_intent_id.clone(),
                    reason: kind.as_str_name().into(),
                },
            )?;
            Ok(done(
                ProcessingStatus::Success,
                String::new(),
                failed.released_seats,
            ))
        }
        _ => Ok(done(ProcessingStatus::Skipped, String::new(), Vec::new())),
    }
}

fn webhook(req: PaymentWebhookRequest) -> Result<PaymentWebhookResponse> {
    require("webhook_id", &req.webhook_id)?;
    let data = req
        .data
        .clone()
        .ok_or_else(|| ServiceError::invalid_field("data", "is required"))?;
    require("data.reservation_id", &data.reservation_id)?;
    require("data.payment_intent_id", &data.payment_intent_id)?;
    let seen_key = format!("webhook:{}", req.webhook_id);
    let accepted = |next: &str| PaymentWebhookResponse {
        accepted: true,
        correlation_id: req.webhook_id.clone(),
        processed_at: Some(timestamp_ms(now_ms())),
        next_action: next.into(),
        error: None,
    };
    if kv::get::<Marker>(&seen_key)?.is_some() {
        return Ok(accepted("duplicate"));
    }
    let result_type = match PaymentWebhookType::try_from(req.event_type)
        .unwrap_or(PaymentWebhookType::Unspecified)
    {
        PaymentWebhookType::Approved => PaymentResultType::Approved,
        PaymentWebhookType::Failed => PaymentResultType::Failed,
        PaymentWebhookType::Cancelled => PaymentResultType::Cancelled,
        PaymentWebhookType::Refunded => PaymentResultType::Refunded,
        _ => return Ok(accepted("ignored")),
    };
    let work = ProcessPaymentResultRequest {
        reservation_id: data.reservation_id.clone(),
        payment_intent_id: data.payment_intent_id.clone(),
        result_type: result_type as i32,
        event_data: Some(PaymentEventData {
            transaction_id: data.transaction_id.clone(),
            amount: data.amount.clone(),
            failure_reason: data.failure_reason.clone(),
            processed_at: data.processed_at,
            user_id: data.metadata.get("user_id").cloned().unwrap_or_default(),
        }),
        correlation_id: req.webhook_id.clone(),
        retry_count: 0,
    };
    // Queue first, then remember the id: a crash in between means a duplicate
    // message, which the idempotent handler absorbs, never a lost one.
    tacos_guest::queue::send(RESULTS_TOPIC, &work.encode_to_vec(), 0).map_err(|e| {
        ServiceError::new(
            ErrorCode::Unavailable,
            format!("cannot queue payment result: {e}"),
        )
    })?;
    let mut tx = Tx::new();
    tx.put_ttl(&seen_key, &Marker {}, Condition::None, WEBHOOK_DEDUPE_MS);
    tx.commit()?;
    Ok(accepted("queued"))
}

/// Self-check: the worker reads no config.
fn self_check() -> Result<()> {
    Ok(())
}
