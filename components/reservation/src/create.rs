//! CreateReservation: claim the idempotency key and the token's one hold,
//! check the reservation token, hold the seats through inventory, then write
//! the reservation and the idempotent response together.
//!
//! One admission makes one hold: the token's waiting ticket is taken in the
//! same commit as the idempotency claim, before inventory runs, so of two
//! different requests with the same token only one gets past it (a replay of
//! the same request is answered by its idempotency record first). A hold that
//! fails gives the ticket back with its record, so the buyer may try other
//! seats with the same admission.

use super::*;

pub(crate) fn create(request: &[u8]) -> Reply {
    let req: CreateReservationRequest = decode(request).map_err(|e| e.encode())?;
    if let Err(e) = validate_shape(&req) {
        return Err(e.encode());
    }
    // Replay comes before the token check: a retry after the token expired
    // still gets the first answer.
    let grant: Option<AdmissionGrant> = token::verify("admission", &req.reservation_token);
    // Only a token that can pass takes its ticket (others are refused below).
    let now = now_ms();
    let take: Vec<Take> = grant
        .iter()
        .filter(|g| g.user_id == req.user_id && g.event_id == req.event_id)
        .filter(|g| now < g.expires_at_ms)
        .map(admission)
        .collect();
    let used = || {
        ServiceError::new(
            ErrorCode::Forbidden,
            "reservation_token was already used for a hold; join the waiting room again",
        )
    };
    let claim = match idempotency::claim_with(
        "create",
        &req.user_id,
        &req.idempotency_key,
        request,
        &take,
        used,
    ) {
        Ok(Claim::Replay(reply)) => return reply,
        Ok(Claim::Fresh(claim)) => claim,
        Err(e) => return Err(e.encode()),
    };
    let result = check_grant(grant, &req)
        .and_then(|_| hold(req))
        .map(|(resp, rec)| {
            let mut tx = Tx::new();
            tx.put(&res_key(&rec.reservation_id), &rec, Condition::Absent)
                .put(
                    &format!("byuser:{}:{}", rec.user_id, rec.reservation_id),
                    &Marker {},
                    Condition::None,
                );
            (resp, tx)
        });
    let held = result.as_ref().ok().map(|(r, _)| r.reservation_id.clone());
    let reply = idempotency::finish(claim, result);
    if let (Ok(_), Some(id)) = (&reply, held) {
        // Counted by the host as the `reservation held` event.
        tacos_guest::info("reservation held", &[("reservation_id", &id)]);
    }
    reply
}

fn validate_shape(req: &CreateReservationRequest) -> Result<()> {
    require("event_id", &req.event_id)?;
    require("user_id", &req.user_id)?;
    if req.idempotency_key.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyRequired,
            "idempotency_key is required",
        ));
    }
    require("idempotency_key", &req.idempotency_key)?;
    require("reservation_token", &req.reservation_token)?;
    if req.seat_ids.is_empty() && req.quantity <= 0 {
        return Err(ServiceError::invalid_field(
            "quantity",
            "give seat_ids or a positive quantity",
        ));
    }
    Ok(())
}

/// The one hold an admission allows: its waiting ticket, taken as long as
/// the queue could grant that ticket again.
fn admission(grant: &AdmissionGrant) -> Take {
    let ttl = grant.ticket_expires_at_ms.max(grant.expires_at_ms) - now_ms();
    Take {
        key: format!("admission-used:{}", grant.ticket_id),
        ttl_ms: ttl.max(1) as u64,
    }
}

fn check_grant(grant: Option<AdmissionGrant>, req: &CreateReservationRequest) -> Result<()> {
    let grant = grant.ok_or_else(|| {
        ServiceError::new(ErrorCode::Unauthenticated, "reservation_token is not valid")
    })?;
    if grant.event_id != req.event_id {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "reservation_token was issued for another event",
        ));
    }
    if grant.user_id != req.user_id {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "reservation_token was issued to another user",
        ));
    }
    if now_ms() >= grant.expires_at_ms {
        return Err(ServiceError::new(
            ErrorCode::Unauthenticated,
            "reservation_token has expired; request admission again",
        ));
    }
    Ok(())
}

fn hold(req: CreateReservationRequest) -> Result<(CreateReservationResponse, Reservation)> {
    let now = now_ms();
    let hold_seconds: i64 = config_or("hold_seconds", 60);
    let expires = now + hold_seconds * 1000;
    let id = tacos_guest::new_id("res");

    // Inventory schedules the hold's expiry in the same transaction as the hold.
    let held: ReserveSeatResponse = tacos_guest::call(
        INVENTORY,
        "ReserveSeat",
        &ReserveSeatRequest {
            reservation_id: id.clone(),
            event_id: req.event_id.clone(),
            seat_ids: req.seat_ids.clone(),
            quantity: req.quantity,
            user_id: req.user_id.clone(),
            hold_expires_at: Some(timestamp_ms(expires)),
            idempotency_key: req.idempotency_key.clone(),
        },
    )?;
    let total = total_of(&held.reserved_seats);
    let base: String = config_or("public_url", String::new());
    let record = Reservation {
        reservation_id: id.clone(),
        event_id: req.event_id.clone(),
        user_id: req.user_id.clone(),
        status: ReservationStatus::Hold as i32,
        seats: held.reserved_seats.clone(),
        quantity: held.reserved_seats.len() as i32,
        total_amount: Some(total.clone()),
        created_at: Some(timestamp_ms(now)),
        updated_at: Some(timestamp_ms(now)),
        hold_expires_at: Some(timestamp_ms(expires)),
        metadata: req
            .metadata
            .as_ref()
            .map(|m| m.attributes.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let response = CreateReservationResponse {
        reservation_id: id.clone(),
        status: ReservationStatus::Hold as i32,
        hold_expires_at: Some(timestamp_ms(expires)),
        reserved_seats: held.reserved_seats,
        total_amount: Some(total),
        payment_url: format!("{base}/api/v1/payments/intent?reservation_id={id}"),
        error: None,
    };
    Ok((response, record))
}

fn total_of(seats: &[Seat]) -> Money {
    let currency = seats
        .iter()
        .find_map(|s| s.price.as_ref().map(|p| p.currency.clone()))
        .unwrap_or_else(|| "KRW".to_string());
    Money {
        amount: seats
            .iter()
            .filter_map(|s| s.price.as_ref())
            .map(|p| p.amount)
            .sum(),
        currency,
    }
}
