//! The end of a hold: cancel (by the user), expire (by the worker, at the
//! hold's deadline) and fail (by the worker, on a failed payment) all release
//! the seats and move the reservation on, if it is still held.

use super::*;

/// Release the seats and move the reservation to `status`, if it is still held.
fn end_hold(
    id: &str,
    user_id: &str,
    status: ReservationStatus,
    reason: &str,
) -> Result<(Reservation, Vec<String>, bool)> {
    for _ in 0..4 {
        let r = load_owned(id, user_id)?;
        if status_of(&r.value) != ReservationStatus::Hold {
            return Ok((r.value, Vec::new(), false));
        }
        let released: ReleaseHoldResponse = tacos_guest::call(
            INVENTORY,
            "ReleaseHold",
            &ReleaseHoldRequest {
                reservation_id: id.to_string(),
                event_id: r.value.event_id.clone(),
                reason: reason.to_string(),
                ..Default::default()
            },
        )?;
        let mut next = r.value.clone();
        next.status = status as i32;
        next.updated_at = Some(timestamp_ms(now_ms()));
        for seat in &mut next.seats {
            seat.status = SeatStatus::Available as i32;
        }
        match save(&next, r.version) {
            Ok(_) => return Ok((next, released.released_seats, true)),
            Err(TxError::Conflict(_)) => continue,
            Err(TxError::Failed(e)) => return Err(e),
        }
    }
    Err(ServiceError::new(
        ErrorCode::ConcurrentModification,
        "reservation kept changing; retry",
    ))
}

pub(crate) fn cancel(req: CancelReservationRequest) -> Result<CancelReservationResponse> {
    let (r, released, changed) = end_hold(
        &req.reservation_id,
        &req.user_id,
        ReservationStatus::Cancelled,
        "CANCELLED",
    )?;
    if !changed && status_of(&r) != ReservationStatus::Cancelled {
        refuse_unless_held(&r)?;
    }
    Ok(CancelReservationResponse {
        status: ReservationStatus::Cancelled as i32,
        cancelled_at: r.updated_at,
        released_seats: released,
        error: None,
    })
}

pub(crate) fn expire(req: ExpireReservationRequest) -> Result<ExpireReservationResponse> {
    let Some(r) = kv::get::<Reservation>(&res_key(&req.reservation_id))? else {
        // The record was never written (a create failed half-way): free
        // whatever inventory may hold for it.
        let released: ReleaseHoldResponse = tacos_guest::call(
            INVENTORY,
            "ReleaseHold",
            &ReleaseHoldRequest {
                reservation_id: req.reservation_id.clone(),
                event_id: req.event_id.clone(),
                reason: "EXPIRED".into(),
                ..Default::default()
            },
        )?;
        return Ok(ExpireReservationResponse {
            outcome: "orphan-released".into(),
            released_seats: released.released_seats,
            error: None,
        });
    };
    let expires = hold_expires_ms(&r.value);
    if status_of(&r.value) == ReservationStatus::Hold && now_ms() < expires {
        // The hold was extended; a later expiry message covers it.
        return Ok(ExpireReservationResponse {
            outcome: "extended".into(),
            ..Default::default()
        });
    }
    let (outcome, released_seats) = finish_hold(
        &req.reservation_id,
        ReservationStatus::Expired,
        "EXPIRED",
        "expired",
    )?;
    // The host counts these as events: only a hold that really ended is an expiry.
    let event = if outcome == "expired" {
        "reservation expired"
    } else {
        "expiry skipped"
    };
    tacos_guest::info(
        event,
        &[
            ("reservation_id", &req.reservation_id),
            ("outcome", &outcome),
        ],
    );
    Ok(ExpireReservationResponse {
        outcome,
        released_seats,
        error: None,
    })
}

pub(crate) fn fail(req: FailReservationRequest) -> Result<FailReservationResponse> {
    let r = load(&req.reservation_id)?;
    let paid_otherwise =
        !r.value.payment_intent_id.is_empty() && r.value.payment_intent_id != req.payment_intent_id;
    if paid_otherwise && !req.payment_intent_id.is_empty() {
        return Ok(FailReservationResponse {
            outcome: "skipped:other-payment".into(),
            ..Default::default()
        });
    }
    let (outcome, released_seats) = finish_hold(
        &req.reservation_id,
        ReservationStatus::Failed,
        "FAILED_PAYMENT",
        "failed",
    )?;
    Ok(FailReservationResponse {
        outcome,
        released_seats,
        error: None,
    })
}

/// End a hold for the worker and say what happened: `done` if it ended now,
/// `skipped:<status>` if it had already moved on, `skipped:committed` if a
/// confirmation won the race.
fn finish_hold(
    id: &str,
    status: ReservationStatus,
    reason: &str,
    done: &str,
) -> Result<(String, Vec<String>)> {
    match end_hold(id, "", status, reason) {
        Ok((_, released, true)) => Ok((done.to_string(), released)),
        Ok((r, _, false)) => Ok((
            format!("skipped:{}", status_of(&r).as_str_name()),
            Vec::new(),
        )),
        Err(e) if e.code() == ErrorCode::FailedPrecondition => {
            Ok(("skipped:committed".into(), Vec::new()))
        }
        Err(e) => Err(e),
    }
}
