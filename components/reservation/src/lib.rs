//! Reservations: a 60 s hold on seats, confirmed after payment, cancelled, or
//! expired by the worker.
//!
//! Creating one is ordered so that a crash at any step loses nothing: the
//! idempotency key is claimed first; inventory holds the seats and schedules
//! their expiry in one transaction; then the reservation record and the
//! idempotent response are written together. If the last step never happens,
//! the expiry finds no reservation and releases the orphaned hold.

use tacos_guest::idempotency::{self, Claim};
use tacos_guest::kv::{self, Condition, Tx, TxError, Versioned};
use tacos_guest::proto::common::v1::{ErrorCode, Money, Seat, SeatStatus};
use tacos_guest::proto::internal::v1::{
    AdmissionGrant, ExpireReservationRequest, ExpireReservationResponse, FailReservationRequest,
    FailReservationResponse, Marker,
};
use tacos_guest::proto::payment::v1::{
    GetPaymentStatusRequest, GetPaymentStatusResponse, PaymentStatus,
};
use tacos_guest::proto::reservation::v1::*;
use tacos_guest::proto::{timestamp_ms, timestamp_to_ms};
use tacos_guest::{
    Message, Reply, Result, ServiceError, config_or, decode, now_ms, reply, require, token,
};

tacos_guest::component_bindings!("../../wit", "tacos:platform/service");

struct Reservations;

impl bindings::exports::tacos::platform::handler::Guest for Reservations {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "reservation.v1.ReservationService/CreateReservation" => create(&request),
            "reservation.v1.ReservationService/GetReservation" => {
                reply(decode(&request).and_then(get))
            }
            "reservation.v1.ReservationService/ConfirmReservation" => {
                reply(decode(&request).and_then(confirm))
            }
            "reservation.v1.ReservationService/CancelReservation" => {
                reply(decode(&request).and_then(cancel))
            }
            "reservation.v1.ReservationService/ListReservations" => {
                reply(decode(&request).and_then(list))
            }
            "reservation.v1.ReservationService/ExtendHold" => {
                reply(decode(&request).and_then(extend))
            }
            "tacos.internal.v1.ReservationLifecycle/ExpireReservation" => {
                reply(decode(&request).and_then(expire))
            }
            "tacos.internal.v1.ReservationLifecycle/FailReservation" => {
                reply(decode(&request).and_then(fail))
            }
            other => Err(ServiceError::invalid(format!("unknown method {other}")).encode()),
        }
    }
}

bindings::export!(Reservations with_types_in bindings);

const INVENTORY: &str = "reservation.v1.Inventory";
const EXPIRY_TOPIC: &str = "reservation-expiry";

fn res_key(id: &str) -> String {
    format!("res:{id}")
}

fn status_of(r: &Reservation) -> ReservationStatus {
    ReservationStatus::try_from(r.status).unwrap_or(ReservationStatus::Unspecified)
}

fn load(id: &str) -> Result<Versioned<Reservation>> {
    require("reservation_id", id)?;
    kv::get::<Reservation>(&res_key(id))?
        .ok_or_else(|| ServiceError::not_found(format!("reservation {id} not found")))
}

/// A reservation as its owner sees it; `user_id` may be empty for internal callers.
fn load_owned(id: &str, user_id: &str) -> Result<Versioned<Reservation>> {
    let r = load(id)?;
    if !user_id.is_empty() && r.value.user_id != user_id {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "reservation belongs to another user",
        ));
    }
    Ok(r)
}

fn save(r: &Reservation, version: u64) -> core::result::Result<u64, TxError> {
    let mut tx = Tx::new();
    tx.put(&res_key(&r.reservation_id), r, Condition::Version(version));
    tx.commit().map(|v| v[0])
}

// ---------------------------------------------------------------- create

fn create(request: &[u8]) -> Reply {
    let req: CreateReservationRequest = decode(request).map_err(|e| e.encode())?;
    if let Err(e) = validate_shape(&req) {
        return Err(e.encode());
    }
    // Replay comes before the token check: a retry after the token expired
    // still gets the first answer.
    let claim = match idempotency::claim("create", &req.user_id, &req.idempotency_key, request) {
        Ok(Claim::Replay(reply)) => return reply,
        Ok(Claim::Fresh(claim)) => claim,
        Err(e) => return Err(e.encode()),
    };
    let result = check_token(&req)
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
    idempotency::finish(claim, result)
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

fn check_token(req: &CreateReservationRequest) -> Result<AdmissionGrant> {
    let grant: AdmissionGrant =
        token::verify("admission", &req.reservation_token).ok_or_else(|| {
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
    Ok(grant)
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

// ---------------------------------------------------------------- read

fn get(req: GetReservationRequest) -> Result<GetReservationResponse> {
    let r = load_owned(&req.reservation_id, &req.user_id)?;
    Ok(GetReservationResponse {
        reservation: Some(r.value),
        error: None,
    })
}

fn list(req: ListReservationsRequest) -> Result<ListReservationsResponse> {
    require("user_id", &req.user_id)?;
    let page = req.pagination.clone().unwrap_or_default();
    let size = if page.page_size <= 0 {
        20
    } else {
        page.page_size.min(100)
    } as usize;
    let prefix = format!("byuser:{}:", req.user_id);
    let after = (!page.cursor.is_empty()).then(|| format!("{prefix}{}", page.cursor));
    let mut out = Vec::new();
    let mut cursor = after;
    let mut more = false;
    'pages: loop {
        let keys = kv::scan::<Marker>(&prefix, cursor.as_deref(), 100)?;
        let Some((last, _)) = keys.last() else { break };
        cursor = Some(last.clone());
        let ids: Vec<String> = keys
            .iter()
            .map(|(k, _)| res_key(&k[prefix.len()..]))
            .collect();
        for r in kv::get_many::<Reservation>(&ids)?.into_iter().flatten() {
            let r = r.value;
            if (req.status != 0 && r.status != req.status)
                || (!req.event_id.is_empty() && r.event_id != req.event_id)
            {
                continue;
            }
            if out.len() == size {
                more = true;
                break 'pages;
            }
            out.push(r);
        }
        if keys.len() < 100 {
            break;
        }
    }
    let next_cursor = if more {
        out.last()
            .map(|r| r.reservation_id.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(ListReservationsResponse {
        page_info: Some(tacos_guest::proto::common::v1::PageInfo {
            total_count: out.len() as i32,
            has_next_page: more,
            has_previous_page: !page.cursor.is_empty(),
            next_cursor,
            previous_cursor: String::new(),
        }),
        reservations: out,
        error: None,
    })
}

// ---------------------------------------------------------------- confirm

fn confirmed_response(r: &Reservation) -> ConfirmReservationResponse {
    ConfirmReservationResponse {
        order_id: r.order_id.clone(),
        status: ReservationStatus::Confirmed as i32,
        confirmed_at: r.updated_at,
        confirmed_seats: r.seats.clone(),
        error: None,
    }
}

fn refuse_unless_held(r: &Reservation) -> Result<()> {
    match status_of(r) {
        ReservationStatus::Hold => Ok(()),
        ReservationStatus::Expired => Err(ServiceError::new(
            ErrorCode::ReservationExpired,
            "the hold has expired",
        )),
        s => Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            format!("reservation is {}", s.as_str_name()),
        )),
    }
}

fn confirm(req: ConfirmReservationRequest) -> Result<ConfirmReservationResponse> {
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
    let expires = r
        .value
        .hold_expires_at
        .as_ref()
        .map(timestamp_to_ms)
        .unwrap_or(0);
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

// ---------------------------------------------------------------- end of a hold

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

fn cancel(req: CancelReservationRequest) -> Result<CancelReservationResponse> {
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

fn expire(req: ExpireReservationRequest) -> Result<ExpireReservationResponse> {
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
    let expires = r
        .value
        .hold_expires_at
        .as_ref()
        .map(timestamp_to_ms)
        .unwrap_or(0);
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
    tacos_guest::info(
        "expiry handled",
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

fn fail(req: FailReservationRequest) -> Result<FailReservationResponse> {
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

// ---------------------------------------------------------------- extend

fn extend(req: ExtendHoldRequest) -> Result<ExtendHoldResponse> {
    let r = load_owned(&req.reservation_id, &req.user_id)?;
    refuse_unless_held(&r.value)?;
    let max: i32 = config_or("max_hold_extension_seconds", 60);
    let now = now_ms();
    let expires = r
        .value
        .hold_expires_at
        .as_ref()
        .map(timestamp_to_ms)
        .unwrap_or(0);
    let already = r.value.metadata.contains_key("tacos.extended");
    if req.extension_seconds <= 0 || req.extension_seconds > max || already || now >= expires {
        return Ok(ExtendHoldResponse {
            new_expires_at: r.value.hold_expires_at,
            extended_seconds: 0,
            extension_allowed: false,
            error: None,
        });
    }
    let new_expires = expires + i64::from(req.extension_seconds) * 1000;
    let expiry = ProcessExpiryRequest {
        reservation_id: r.value.reservation_id.clone(),
        event_id: r.value.event_id.clone(),
        expired_at: Some(timestamp_ms(new_expires)),
        ..Default::default()
    };
    tacos_guest::queue::send(
        EXPIRY_TOPIC,
        &expiry.encode_to_vec(),
        (new_expires - now) as u64,
    )
    .map_err(|e| {
        ServiceError::new(
            ErrorCode::Unavailable,
            format!("cannot schedule expiry: {e}"),
        )
    })?;
    let mut next = r.value.clone();
    next.hold_expires_at = Some(timestamp_ms(new_expires));
    next.updated_at = Some(timestamp_ms(now));
    next.metadata
        .insert("tacos.extended".into(), req.extension_seconds.to_string());
    save(&next, r.version)?;
    Ok(ExtendHoldResponse {
        new_expires_at: next.hold_expires_at,
        extended_seconds: req.extension_seconds,
        extension_allowed: true,
        error: None,
    })
}

/// Self-check: the config this component reads makes sense.
fn self_check() -> Result<()> {
    tacos_guest::check_config::<i64>(
        "hold_seconds",
        |s| (1..=86_400).contains(s),
        "seconds from 1 to 86400",
    )?;
    tacos_guest::check_config::<i32>(
        "max_seats_per_reservation",
        |n| (1..=100).contains(n),
        "a number from 1 to 100",
    )?;
    tacos_guest::check_config::<i32>(
        "max_hold_extension_seconds",
        |s| (0..=86_400).contains(s),
        "seconds from 0 to 86400",
    )?;
    tacos_guest::idempotency::check_config()
}
