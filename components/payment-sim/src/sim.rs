//! The payment simulator: intents that complete or fail by scenario, announced
//! by signed webhooks that are retried until the receiver accepts them.
//!
//! Scenarios (from the original): APPROVE completes after 2–4 s, FAIL fails
//! after 1–2 s, DELAY completes after 10–29 s, RANDOM completes (70 %) or fails
//! after 2–6 s, TIMEOUT never completes and expires with the intent (15 min).
//! The delay is a delayed queue message to this component, so it survives a
//! restart and follows the virtual clock. The outcome is stored before the
//! webhook goes out, so a retried delivery announces the same result; the
//! webhook id is stable across retries for receivers to deduplicate.
//!
//! This file is the code of every build; each build's `lib.rs` includes it
//! and sets [`Profile`] (the standard build adds nothing; `payment-sim-chaos`
//! fails more and answers later).

use crate::announce::status_of;
use tacos_guest::idempotency::{self, Claim};
use tacos_guest::kv::{self, Condition, Tx, TxError, Versioned};
use tacos_guest::proto::common::v1::{ErrorCode, PageInfo};
use tacos_guest::proto::internal::v1::{Marker, PaymentCompletion};
use tacos_guest::proto::payment::v1::*;
use tacos_guest::proto::reservation::v1::{GetReservationRequest, GetReservationResponse};
use tacos_guest::proto::timestamp_ms;
use tacos_guest::{
    Message, Reply, Result, ServiceError, config_or, decode, handle, now_ms, random_below, reply,
    require,
};

tacos_guest::component_bindings!("../../wit", "tacos:platform/consumer");

struct PaymentSim;

impl bindings::exports::tacos::platform::handler::Guest for PaymentSim {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "payment.v1.PaymentService/CreatePaymentIntent" => create(&request),
            "payment.v1.PaymentService/GetPaymentStatus" => handle(&request, get),
            "payment.v1.PaymentService/ProcessPayment" => handle(&request, process),
            "payment.v1.PaymentService/CancelPayment" => handle(&request, cancel),
            "payment.v1.PaymentService/ListPayments" => handle(&request, list),
            "payment.v1.PaymentService/SimulateWebhook" => handle(&request, simulate),
            other => Err(ServiceError::invalid(format!("unknown method {other}")).encode()),
        }
    }
}

impl bindings::exports::tacos::platform::message_handler::Guest for PaymentSim {
    fn handle(
        message: bindings::exports::tacos::platform::message_handler::Delivery,
    ) -> core::result::Result<(), String> {
        let completion = PaymentCompletion::decode(message.payload.as_slice())
            .map_err(|e| format!("bad payload: {e}"))?;
        complete(completion, message.attempt).map_err(|e| e.0.message)
    }
}

bindings::export!(PaymentSim with_types_in bindings);

const TOPIC: &str = "payment-completions";
const INTENT_TTL_MS: i64 = 15 * 60 * 1000;

fn pay_key(id: &str) -> String {
    format!("pay:{id}")
}

/// An intent as its owner sees it (`user_id` empty: an internal caller).
/// Another user's intent is answered as if it did not exist.
fn load(id: &str, user_id: &str) -> Result<Versioned<Payment>> {
    require("payment_intent_id", id)?;
    let not_found = || ServiceError::not_found(format!("payment intent {id} not found"));
    let p = kv::get::<Payment>(&pay_key(id))?.ok_or_else(not_found)?;
    if !user_id.is_empty() && p.value.user_id != user_id {
        return Err(not_found());
    }
    Ok(p)
}

/// The payer's own reservation, asked of the reservation service with the
/// payer as its user: someone else's is not found.
fn check_reservation(reservation_id: &str, user_id: &str) -> Result<()> {
    let _: GetReservationResponse = tacos_guest::call(
        "reservation.v1.ReservationService",
        "GetReservation",
        &GetReservationRequest {
            reservation_id: reservation_id.to_string(),
            user_id: user_id.to_string(),
        },
    )?;
    Ok(())
}
fn scenario_of(value: i32) -> PaymentScenario {
    match PaymentScenario::try_from(value).unwrap_or(PaymentScenario::Unspecified) {
        PaymentScenario::Unspecified => {
            let name: String =
                config_or("default_scenario", "PAYMENT_SCENARIO_APPROVE".to_string());
            scenario_named(&name).unwrap_or(PaymentScenario::Approve)
        }
        s => s,
    }
}

/// A scenario by full (`PAYMENT_SCENARIO_FAIL`) or short (`FAIL`) name.
fn scenario_named(name: &str) -> Option<PaymentScenario> {
    PaymentScenario::from_str_name(name)
        .or_else(|| PaymentScenario::from_str_name(&format!("PAYMENT_SCENARIO_{name}")))
        .filter(|s| *s != PaymentScenario::Unspecified)
}

/// How a build behaves beyond the scenario it is asked for.
pub struct Profile {
    /// Percent of intents that would complete which fail instead.
    pub extra_failure_percent: u64,
    /// Extra seconds (an inclusive range) before any outcome.
    pub extra_delay_seconds: (i64, i64),
}

/// Whether this build fails an intent that would complete.
// The standard build's percent is 0, which makes the comparison constant there.
#[allow(clippy::absurd_extreme_comparisons)]
fn extra_failure() -> bool {
    random_below(100) < crate::PROFILE.extra_failure_percent
}

fn between(lo: i64, hi: i64) -> i64 {
    lo + random_below((hi - lo + 1) as u64) as i64
}

/// Milliseconds until a scenario's outcome.
fn delay_ms(scenario: PaymentScenario) -> i64 {
    let (lo, hi) = crate::PROFILE.extra_delay_seconds;
    let extra = between(lo, hi) * 1000;
    let between = |lo: i64, hi: i64| between(lo, hi) * 1000 + extra;
    match scenario {
        PaymentScenario::Fail => between(1, 2),
        PaymentScenario::Delay => between(10, 29),
        PaymentScenario::Random => between(2, 6),
        PaymentScenario::Timeout => INTENT_TTL_MS,
        _ => between(2, 4),
    }
}

fn schedule(id: &str, target: PaymentStatus, force: bool, delay: i64) -> Result<()> {
    let msg = PaymentCompletion {
        payment_intent_id: id.to_string(),
        target_status: target as i32,
        force,
    };
    tacos_guest::queue::send(TOPIC, &msg.encode_to_vec(), delay.max(0) as u64)
        .map(|_| ())
        .map_err(|e| {
            ServiceError::new(
                ErrorCode::Unavailable,
                format!("cannot schedule payment processing: {e}"),
            )
        })
}

fn create(request: &[u8]) -> Reply {
    let req: CreatePaymentIntentRequest = decode(request).map_err(|e| e.encode())?;
    let validated = (|| -> Result<()> {
        require("reservation_id", &req.reservation_id)?;
        require("user_id", &req.user_id)?;
        let amount = req
            .amount
            .as_ref()
            .ok_or_else(|| ServiceError::invalid_field("amount", "is required"))?;
        if amount.amount <= 0 {
            return Err(ServiceError::invalid_field(
                "amount.amount",
                "must be positive",
            ));
        }
        if amount.currency.len() != 3 {
            return Err(ServiceError::invalid_field(
                "amount.currency",
                "must be an ISO 4217 code",
            ));
        }
        let url = &req.webhook_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ServiceError::invalid_field(
                "webhook_url",
                "must be an http(s) URL",
            ));
        }
        Ok(())
    })();
    if let Err(e) = validated.and_then(|_| check_reservation(&req.reservation_id, &req.user_id)) {
        return Err(e.encode());
    }
    let claim = if req.idempotency_key.is_empty() {
        None
    } else {
        match idempotency::claim("intent", &req.user_id, &req.idempotency_key, request) {
            Ok(Claim::Replay(r)) => return r,
            Ok(Claim::Fresh(c)) => Some(c),
            Err(e) => return Err(e.encode()),
        }
    };
    let result = new_intent(req);
    match claim {
        Some(c) => idempotency::finish(c, result),
        None => match result {
            Ok((resp, tx)) => tx
                .commit()
                .map(|_| resp.encode_to_vec())
                .map_err(|e| ServiceError::from(e).encode()),
            Err(e) => Err(e.encode()),
        },
    }
}

fn new_intent(req: CreatePaymentIntentRequest) -> Result<(CreatePaymentIntentResponse, Tx)> {
    let now = now_ms();
    let id = tacos_guest::new_id("pi");
    let scenario = scenario_of(req.scenario);
    // Scheduled before the record is written: a message for an intent that was
    // never stored is dropped, while a stored intent always gets its outcome.
    schedule(&id, PaymentStatus::Unspecified, false, delay_ms(scenario))?;
    let payment = Payment {
        payment_intent_id: id.clone(),
        payment_id: String::new(),
        reservation_id: req.reservation_id.clone(),
        user_id: req.user_id.clone(),
        status: PaymentStatus::Pending as i32,
        amount: req.amount.clone(),
        method: req.method,
        created_at: Some(timestamp_ms(now)),
        updated_at: Some(timestamp_ms(now)),
        metadata: req
            .metadata
            .as_ref()
            .map(|m| m.attributes.clone())
            .unwrap_or_default(),
        scenario: scenario as i32,
        // Empty means the host's own receiver, resolved at delivery time.
        webhook_url: req.webhook_url.clone(),
        ..Default::default()
    };
    let mut tx = Tx::new();
    tx.put(&pay_key(&id), &payment, Condition::Absent).put(
        &format!("byuser:{}:{}", req.user_id, id),
        &Marker {},
        Condition::None,
    );
    let base: String = config_or("public_url", String::new());
    let resp = CreatePaymentIntentResponse {
        payment_intent_id: id.clone(),
        status: PaymentStatus::Pending as i32,
        client_secret: format!("{id}_secret_{}", tacos_guest::new_id("cs")),
        payment_url: format!("{base}/api/v1/payments/{id}"),
        expires_at: Some(timestamp_ms(now + INTENT_TTL_MS)),
        error: None,
    };
    Ok((resp, tx))
}

fn get(req: GetPaymentStatusRequest) -> Result<GetPaymentStatusResponse> {
    Ok(GetPaymentStatusResponse {
        payment: Some(load(&req.payment_intent_id, &req.user_id)?.value),
        error: None,
    })
}

fn process(req: ProcessPaymentRequest) -> Result<ProcessPaymentResponse> {
    let p = load(&req.payment_intent_id, &req.user_id)?;
    if status_of(&p.value) == PaymentStatus::Pending {
        schedule(&req.payment_intent_id, PaymentStatus::Unspecified, false, 0)?;
    }
    Ok(ProcessPaymentResponse {
        status: p.value.status,
        transaction_id: p.value.transaction_id,
        error: None,
    })
}

fn cancel(req: CancelPaymentRequest) -> Result<CancelPaymentResponse> {
    let p = load(&req.payment_intent_id, &req.user_id)?;
    match status_of(&p.value) {
        PaymentStatus::Cancelled => {}
        PaymentStatus::Pending => {
            let mut next = p.value.clone();
            next.status = PaymentStatus::Cancelled as i32;
            next.updated_at = Some(timestamp_ms(now_ms()));
            let mut tx = Tx::new();
            tx.put(
                &pay_key(&next.payment_intent_id),
                &next,
                Condition::Version(p.version),
            );
            tx.commit()?;
        }
        s => {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                format!("payment is {}", s.as_str_name()),
            ));
        }
    }
    Ok(CancelPaymentResponse {
        status: PaymentStatus::Cancelled as i32,
        cancelled_at: Some(timestamp_ms(now_ms())),
        error: None,
    })
}

fn list(req: ListPaymentsRequest) -> Result<ListPaymentsResponse> {
    require("user_id", &req.user_id)?;
    let prefix = format!("byuser:{}:", req.user_id);
    let keys = kv::scan::<Marker>(&prefix, None, 1000)?;
    let ids: Vec<String> = keys
        .iter()
        .map(|(k, _)| pay_key(&k[prefix.len()..]))
        .collect();
    let payments: Vec<Payment> = kv::get_many::<Payment>(&ids)?
        .into_iter()
        .flatten()
        .map(|p| p.value)
        .filter(|p| {
            (req.reservation_id.is_empty() || p.reservation_id == req.reservation_id)
                && (req.status == 0 || p.status == req.status)
        })
        .collect();
    Ok(ListPaymentsResponse {
        page_info: Some(PageInfo {
            total_count: payments.len() as i32,
            ..Default::default()
        }),
        payments,
        error: None,
    })
}

fn simulate(req: SimulateWebhookRequest) -> Result<SimulateWebhookResponse> {
    require("user_id", &req.user_id)?;
    let p = load(&req.payment_intent_id, &req.user_id)?;
    let target = PaymentStatus::try_from(req.target_status).unwrap_or(PaymentStatus::Unspecified);
    if !matches!(
        target,
        PaymentStatus::Completed | PaymentStatus::Failed | PaymentStatus::Unspecified
    ) {
        return Err(ServiceError::invalid_field(
            "target_status",
            "must be COMPLETED or FAILED",
        ));
    }
    if status_of(&p.value) != PaymentStatus::Pending && !req.force_trigger {
        return Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            "payment already processed; set force_trigger to resend",
        ));
    }
    let delay = i64::from(req.delay_seconds.max(0)) * 1000;
    schedule(&req.payment_intent_id, target, req.force_trigger, delay)?;
    Ok(SimulateWebhookResponse {
        webhook_sent: true,
        webhook_id: crate::announce::webhook_id(&req.payment_intent_id, target),
        scheduled_at: Some(timestamp_ms(now_ms() + delay)),
        error: None,
    })
}

/// Decide (once) and announce (until accepted) the outcome of an intent.
fn complete(c: PaymentCompletion, attempt: u32) -> Result<()> {
    let Some(mut p) = kv::get::<Payment>(&pay_key(&c.payment_intent_id))? else {
        return Ok(()); // never stored: the create failed after scheduling
    };
    let target = PaymentStatus::try_from(c.target_status).unwrap_or(PaymentStatus::Unspecified);
    if status_of(&p.value) == PaymentStatus::Pending
        || (c.force && target != PaymentStatus::Unspecified)
    {
        let now = now_ms();
        let outcome = match (target, scenario_of(p.value.scenario)) {
            (PaymentStatus::Completed | PaymentStatus::Failed, _) => target,
            (_, PaymentScenario::Fail) => PaymentStatus::Failed,
            (_, PaymentScenario::Timeout) => PaymentStatus::Expired,
            (_, PaymentScenario::Random) if random_below(100) >= 70 => PaymentStatus::Failed,
            _ if extra_failure() => PaymentStatus::Failed,
            _ => PaymentStatus::Completed,
        };
        let mut next = p.value.clone();
        next.status = outcome as i32;
        next.updated_at = Some(timestamp_ms(now));
        next.processed_at = Some(timestamp_ms(now));
        next.transaction_id = tacos_guest::new_id("txn");
        if next.payment_id.is_empty() {
            next.payment_id = tacos_guest::new_id("pay");
        }
        next.result = Some(PaymentResult {
            success: outcome == PaymentStatus::Completed,
            failure_code: if outcome == PaymentStatus::Completed {
                String::new()
            } else {
                "card_declined".into()
            },
            failure_reason: match outcome {
                PaymentStatus::Completed => String::new(),
                PaymentStatus::Expired => "payment timed out".into(),
                _ => "declined by scenario".into(),
            },
            authorization_code: if outcome == PaymentStatus::Completed {
                tacos_guest::new_id("auth")
            } else {
                String::new()
            },
        });
        let mut tx = Tx::new();
        tx.put(
            &pay_key(&next.payment_intent_id),
            &next,
            Condition::Version(p.version),
        );
        match tx.commit() {
            Ok(v) => {
                p = Versioned {
                    value: next,
                    version: v[0],
                }
            }
            Err(TxError::Conflict(_)) => {
                return Err(ServiceError::new(
                    ErrorCode::ConcurrentModification,
                    "payment changed; retry",
                ));
            }
            Err(TxError::Failed(e)) => return Err(e),
        }
    }
    crate::announce::announce(&p.value, attempt)
}

/// Self-check: the config this component reads makes sense.
fn self_check() -> Result<()> {
    if let Some(name) = tacos_guest::config::get("default_scenario")
        && scenario_named(&name).is_none()
    {
        return Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            format!(
                "config `default_scenario` is `{name}`; expected APPROVE, FAIL, DELAY, RANDOM or TIMEOUT"
            ),
        ));
    }
    tacos_guest::idempotency::check_config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_by_full_or_short_name() {
        assert_eq!(
            scenario_named("PAYMENT_SCENARIO_FAIL"),
            Some(PaymentScenario::Fail)
        );
        assert_eq!(scenario_named("FAIL"), Some(PaymentScenario::Fail));
        assert_eq!(scenario_named("DELAY"), Some(PaymentScenario::Delay));
        assert_eq!(scenario_named("fail"), None, "names are case-sensitive");
        assert_eq!(scenario_named("UNSPECIFIED"), None);
        assert_eq!(scenario_named("PAYMENT_SCENARIO_UNSPECIFIED"), None);
        assert_eq!(scenario_named(""), None);
    }

    #[test]
    fn one_outcome_has_one_webhook_id() {
        let approved = crate::announce::webhook_id("pi_1", PaymentStatus::Completed);
        assert_eq!(
            approved,
            crate::announce::webhook_id("pi_1", PaymentStatus::Completed)
        );
        assert_ne!(
            approved,
            crate::announce::webhook_id("pi_1", PaymentStatus::Failed)
        );
        assert_ne!(
            approved,
            crate::announce::webhook_id("pi_2", PaymentStatus::Completed)
        );
    }
}
