//! ConfirmReservation: check the payment, commit the seats through inventory,
//! and record the order, once.

use super::*;

fn confirmed_response(r: &Reservation) -> ConfirmReservationResponse {
    ConfirmReservationResponse {
        order_id: r.order_id.clone(),
        status: ReservationStatus::Confirmed as i32,
        confirmed_at: r.updated_at,
        confirmed_seats: r.seats.clone(),
        error: None,
    }
}

pub(crate) fn confirm(req: ConfirmReservationRequest) -> Result<ConfirmReservationResponse> {
    require("payment_intent_id", &req.payment_intent_id)?;
    let r = load_owned(&req.reservation_id, &req.user_id)?;
    if status_of(&r.value) == ReservationStatus::Confirmed {
        if r.value.payment_intent_id == req.payment_intent_id {
            return Ok(confirmed_response(&r.value));
        }
        return Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            "reservation was confirmed with another payment",
        ));
    }
    refuse_unless_held(&r.value)?;
    let expires = hold_expires_ms(&r.value);
    if now_ms() >= expires {
        return Err(ServiceError::new(
            ErrorCode::ReservationExpired,
            "the hold has expired",
        ));
    }

    let payment: GetPaymentStatusResponse = tacos_guest::call(
        "payment.v1.PaymentService",
        "GetPaymentStatus",
        &GetPaymentStatusRequest {
            payment_intent_id: req.payment_intent_id.clone(),
            user_id: String::new(),
        },
    )?;
    let payment = payment.payment.unwrap_or_default();
    if payment.reservation_id != r.value.reservation_id {
        return Err(ServiceError::invalid_field(
            "payment_intent_id",
            "belongs to another reservation",
        ));
    }
    if payment.status != PaymentStatus::Completed as i32 {
        return Err(ServiceError::new(
            ErrorCode::PaymentNotApproved,
            "payment is not completed",
        ));
    }
    if payment.amount != r.value.total_amount {
        return Err(ServiceError::new(
            ErrorCode::PaymentNotApproved,
            "payment amount does not match the reservation total",
        ));
    }

    let committed: CommitReservationResponse = tacos_guest::call(
        INVENTORY,
        "CommitReservation",
        &CommitReservationRequest {
            reservation_id: r.value.reservation_id.clone(),
            event_id: r.value.event_id.clone(),
            payment_intent_id: req.payment_intent_id.clone(),
            user_id: r.value.user_id.clone(),
            idempotency_key: req.idempotency_key.clone(),
            ..Default::default()
        },
    )?;
    let mut next = r.value.clone();
    next.status = ReservationStatus::Confirmed as i32;
    next.order_id = committed.order_id;
    next.payment_intent_id = req.payment_intent_id.clone();
    next.seats = committed.sold_seats;
    next.updated_at = Some(timestamp_ms(now_ms()));
    match save(&next, r.version) {
        Ok(_) => {
            tacos_guest::info(
                "reservation confirmed",
                &[
                    ("reservation_id", &next.reservation_id),
                    ("order_id", &next.order_id),
                ],
            );
            Ok(confirmed_response(&next))
        }
        // Someone else moved it (a concurrent confirm of the same payment is fine).
        Err(TxError::Conflict(_)) => {
            let now = load(&req.reservation_id)?;
            if status_of(&now.value) == ReservationStatus::Confirmed
                && now.value.payment_intent_id == req.payment_intent_id
            {
                Ok(confirmed_response(&now.value))
            } else {
                Err(ServiceError::new(
                    ErrorCode::ConcurrentModification,
                    "reservation changed while confirming",
                ))
            }
        }
        Err(TxError::Failed(e)) => Err(e),
    }
}
