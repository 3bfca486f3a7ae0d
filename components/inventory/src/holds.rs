//! Holds: ReserveSeat (all or nothing, with the hold's expiry sent in the
//! same transaction), CommitReservation (seats SOLD) and ReleaseHold (seats
//! AVAILABLE again).

use super::*;
use crate::seats::{load_seats, pick_seats, seat_list, seat_status, with_status};

pub(crate) fn reserve(req: ReserveSeatRequest) -> Result<ReserveSeatResponse> {
    require("reservation_id", &req.reservation_id)?;
    let event = load_event(&req.event_id)?;
    seat_list("seat_ids", &req.seat_ids, req.quantity)?;
    let hold_expires_at_ms = req
        .hold_expires_at
        .as_ref()
        .map(tacos_guest::proto::timestamp_to_ms)
        .unwrap_or_else(|| now_ms() + 60_000);

    let by_quantity = req.seat_ids.is_empty();
    let attempts = if by_quantity { 16 } else { 1 };
    for _ in 0..attempts {
        let seat_ids = if by_quantity {
            let remaining = kv::counter(&remaining_key(&req.event_id))?;
            if remaining < i64::from(req.quantity) {
                return Err(ServiceError::new(
                    ErrorCode::InsufficientInventory,
                    format!("only {remaining} seats left"),
                ));
            }
            let picked = pick_seats(&event.value, &req.event_id, req.quantity as usize)?;
            if picked.len() < req.quantity as usize {
                return Err(ServiceError::new(
                    ErrorCode::InsufficientInventory,
                    format!("only {} seats left", picked.len()),
                ));
            }
            picked
        } else {
            req.seat_ids.clone()
        };
        let seats = load_seats(&req.event_id, &seat_ids)?;
        let taken: Vec<&str> = seats
            .iter()
            .filter(|s| seat_status(&s.value) != SeatStatus::Available)
            .filter_map(|s| s.value.seat.as_ref().map(|x| x.id.as_str()))
            .collect();
        if !taken.is_empty() {
            if by_quantity {
                continue;
            }
            return Err(ServiceError::new(
                ErrorCode::InventoryConflict,
                format!("seats not available: {}", taken.join(", ")),
            ));
        }
        let mut tx = Tx::new();
        let mut reserved = Vec::with_capacity(seats.len());
        for (id, rec) in seat_ids.iter().zip(&seats) {
            let mut next = rec.value.clone();
            let seat = with_status(&next, SeatStatus::Reserved);
            reserved.push(seat.clone());
            next.seat = Some(seat);
            next.reservation_id = req.reservation_id.clone();
            next.hold_expires_at_ms = hold_expires_at_ms;
            tx.put(
                &seat_key(&req.event_id, id),
                &next,
                Condition::Version(rec.version),
            )
            .delete(&free_key(&req.event_id, id), Condition::None);
        }
        // The hold keeps the seats' own ids (a pick yields index keys).
        let seat_ids: Vec<String> = reserved.iter().map(|s| s.id.clone()).collect();
        tx.put(
            &hold_key(&req.reservation_id),
            &HoldRecord {
                event_id: req.event_id.clone(),
                seat_ids: seat_ids.clone(),
            },
            Condition::Absent,
        );
        tx.add(&remaining_key(&req.event_id), -(seat_ids.len() as i64));
        tx.add(&changes_key(&req.event_id), seat_ids.len() as i64);
        // The hold and its expiry commit together: no hold can outlive its time.
        tx.send(
            EXPIRY_TOPIC,
            &ProcessExpiryRequest {
                reservation_id: req.reservation_id.clone(),
                event_id: req.event_id.clone(),
                expired_at: Some(timestamp_ms(hold_expires_at_ms)),
                ..Default::default()
            },
            (hold_expires_at_ms - now_ms()).max(0) as u64,
        );
        match tx.commit() {
            Ok(_) => {
                return Ok(ReserveSeatResponse {
                    hold_id: req.reservation_id.clone(),
                    reserved_seats: reserved,
                    hold_expires_at: Some(timestamp_ms(hold_expires_at_ms)),
                    status: HoldStatus::Active as i32,
                    error: None,
                });
            }
            Err(TxError::Conflict(i)) if (i as usize) == 2 * seat_ids.len() => {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    "this reservation already holds seats",
                ));
            }
            Err(TxError::Conflict(_)) if by_quantity => continue,
            Err(TxError::Conflict(_)) => {
                return Err(ServiceError::new(
                    ErrorCode::InventoryConflict,
                    "seats were taken by another reservation",
                ));
            }
            Err(TxError::Failed(e)) => return Err(e),
        }
    }
    Err(ServiceError::new(
        ErrorCode::InventoryConflict,
        "seats were taken by other reservations; retry",
    ))
}

/// A hold and the seats it names.
type Held = (Versioned<HoldRecord>, Vec<Versioned<SeatRecord>>);

fn held_seats(reservation_id: &str) -> Result<Option<Held>> {
    require("reservation_id", reservation_id)?;
    let Some(hold) = kv::get::<HoldRecord>(&hold_key(reservation_id))? else {
        return Ok(None);
    };
    let seats = load_seats(&hold.value.event_id, &hold.value.seat_ids)?;
    Ok(Some((hold, seats)))
}

pub(crate) fn commit(req: CommitReservationRequest) -> Result<CommitReservationResponse> {
    let Some((hold, seats)) = held_seats(&req.reservation_id)? else {
        return Err(ServiceError::new(
            ErrorCode::InventoryConflict,
            "no seats are held for this reservation",
        ));
    };
    let ours = |s: &Versioned<SeatRecord>| s.value.reservation_id == req.reservation_id;
    // Already committed (a retry): answer as the first time.
    if seats
        .iter()
        .all(|s| ours(s) && seat_status(&s.value) == SeatStatus::Sold)
    {
        let order_id = seats
            .first()
            .map(|s| s.value.order_id.clone())
            .unwrap_or_default();
        return Ok(CommitReservationResponse {
            order_id,
            sold_seats: seats
                .iter()
                .map(|s| with_status(&s.value, SeatStatus::Sold))
                .collect(),
            status: CommitStatus::Success as i32,
            committed_at: Some(timestamp_ms(now_ms())),
            error: None,
        });
    }
    if !seats
        .iter()
        .all(|s| ours(s) && seat_status(&s.value) == SeatStatus::Reserved)
    {
        return Err(ServiceError::new(
            ErrorCode::InventoryConflict,
            "seats are no longer held for this reservation",
        ));
    }
    let order_id = tacos_guest::new_id("ord");
    let mut tx = Tx::new();
    let mut sold = Vec::with_capacity(seats.len());
    for (id, rec) in hold.value.seat_ids.iter().zip(&seats) {
        let mut next = rec.value.clone();
        let seat = with_status(&next, SeatStatus::Sold);
        sold.push(seat.clone());
        next.seat = Some(seat);
        next.order_id = order_id.clone();
        tx.put(
            &seat_key(&hold.value.event_id, id),
            &next,
            Condition::Version(rec.version),
        );
    }
    tx.add(&changes_key(&hold.value.event_id), sold.len() as i64);
    match tx.commit() {
        Ok(_) => Ok(CommitReservationResponse {
            order_id,
            sold_seats: sold,
            status: CommitStatus::Success as i32,
            committed_at: Some(timestamp_ms(now_ms())),
            error: None,
        }),
        Err(TxError::Conflict(_)) => Err(ServiceError::new(
            ErrorCode::InventoryConflict,
            "seats changed while committing; retry",
        )),
        Err(TxError::Failed(e)) => Err(e),
    }
}

pub(crate) fn release(req: ReleaseHoldRequest) -> Result<ReleaseHoldResponse> {
    let now = Some(timestamp_ms(now_ms()));
    let Some((hold, seats)) = held_seats(&req.reservation_id)? else {
        return Ok(ReleaseHoldResponse {
            status: ReleaseStatus::NotFound as i32,
            released_at: now,
            ..Default::default()
        });
    };
    let ours: Vec<(&String, &Versioned<SeatRecord>)> = hold
        .value
        .seat_ids
        .iter()
        .zip(&seats)
        .filter(|(_, s)| s.value.reservation_id == req.reservation_id)
        .collect();
    if ours
        .iter()
        .any(|(_, s)| seat_status(&s.value) == SeatStatus::Sold)
    {
        return Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            "the reservation is already committed",
        ));
    }
    let held: Vec<_> = ours
        .into_iter()
        .filter(|(_, s)| seat_status(&s.value) == SeatStatus::Reserved)
        .collect();
    if held.is_empty() {
        return Ok(ReleaseHoldResponse {
            status: ReleaseStatus::AlreadyReleased as i32,
            released_at: now,
            ..Default::default()
        });
    }
    let mut tx = Tx::new();
    let mut released = Vec::with_capacity(held.len());
    for (id, rec) in &held {
        let mut next = rec.value.clone();
        next.seat = Some(with_status(&next, SeatStatus::Available));
        next.reservation_id.clear();
        next.hold_expires_at_ms = 0;
        tx.put(
            &seat_key(&hold.value.event_id, id),
            &next,
            Condition::Version(rec.version),
        )
        .put(
            &free_key(&hold.value.event_id, id),
            &Marker {},
            Condition::None,
        );
        released.push((*id).clone());
    }
    tx.add(&remaining_key(&hold.value.event_id), held.len() as i64);
    tx.add(&changes_key(&hold.value.event_id), held.len() as i64);
    match tx.commit() {
        Ok(_) => {
            tacos_guest::info(
                "hold released",
                &[
                    ("reservation_id", &req.reservation_id),
                    ("reason", &req.reason),
                ],
            );
            Ok(ReleaseHoldResponse {
                released_seats: released,
                status: ReleaseStatus::Success as i32,
                released_at: now,
                error: None,
            })
        }
        Err(TxError::Conflict(_)) => Err(ServiceError::new(
            ErrorCode::ConcurrentModification,
            "seats changed while releasing; retry",
        )),
        Err(TxError::Failed(e)) => Err(e),
    }
}
