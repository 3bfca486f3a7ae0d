//! Announcing an intent's outcome: a signed webhook (the host signs it with
//! the tenant's key) to the intent's `webhook_url` or the host's own
//! receiver, retried by the queue until the receiver accepts it. The webhook
//! id is stable per outcome, so receivers can deduplicate retries.
//!
//! Shared, like `sim.rs`, by every build of the simulator.

use tacos_guest::proto::common::v1::ErrorCode;
use tacos_guest::proto::gateway::v1::{
    PaymentWebhookData, PaymentWebhookRequest, PaymentWebhookStatus, PaymentWebhookType,
};
use tacos_guest::proto::payment::v1::{Payment, PaymentStatus};
use tacos_guest::proto::timestamp_ms;
use tacos_guest::{Message, Result, ServiceError, config_or, now_ms};

/// The webhook id of an intent's outcome.
pub(crate) fn webhook_id(payment_id: &str, status: PaymentStatus) -> String {
    format!("wh_{payment_id}_{}", status as i32)
}

pub(crate) fn announce(p: &Payment, attempt: u32) -> Result<()> {
    let status = status_of(p);
    let (event_type, hook_status) = match status {
        PaymentStatus::Completed => (PaymentWebhookType::Approved, PaymentWebhookStatus::Approved),
        PaymentStatus::Failed | PaymentStatus::Expired => {
            (PaymentWebhookType::Failed, PaymentWebhookStatus::Failed)
        }
        PaymentStatus::Cancelled => (
            PaymentWebhookType::Cancelled,
            PaymentWebhookStatus::Cancelled,
        ),
        _ => return Ok(()),
    };
    let url = if p.webhook_url.is_empty() {
        config_or("default_webhook_url", String::new())
    } else {
        p.webhook_url.clone()
    };
    if url.is_empty() {
        return Ok(());
    }
    let id = webhook_id(&p.payment_intent_id, status);
    let body = PaymentWebhookRequest {
        webhook_id: id.clone(),
        event_type: event_type as i32,
        data: Some(PaymentWebhookData {
            payment_intent_id: p.payment_intent_id.clone(),
            reservation_id: p.reservation_id.clone(),
            transaction_id: p.transaction_id.clone(),
            status: hook_status as i32,
            amount: p.amount.clone(),
            failure_reason: p
                .result
                .as_ref()
                .map(|r| r.failure_reason.clone())
                .unwrap_or_default(),
            metadata: [("user_id".to_string(), p.user_id.clone())]
                .into_iter()
                .collect(),
            processed_at: p.processed_at,
        }),
        timestamp: Some(timestamp_ms(now_ms())),
        signature: String::new(),
        source: "payment-sim".into(),
        attempt: attempt as i32,
    };
    let request = tacos_guest::webhook::Request {
        url,
        webhook_id: id,
        message_type: "gateway.v1.PaymentWebhookRequest".into(),
        payload: body.encode_to_vec(),
    };
    match tacos_guest::webhook::deliver(&request) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(ServiceError::new(
            ErrorCode::UpstreamError,
            format!("webhook receiver answered {status}"),
        )),
        Err(e) => Err(ServiceError::new(
            ErrorCode::UpstreamError,
            format!("webhook not delivered: {e}"),
        )),
    }
}

/// The status a payment record holds.
pub(crate) fn status_of(p: &Payment) -> PaymentStatus {
    PaymentStatus::try_from(p.status).unwrap_or(PaymentStatus::Unspecified)
}
