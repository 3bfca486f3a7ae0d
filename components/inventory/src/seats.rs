//! Reading seats: validation of seat lists, CheckAvailability, and the
//! random pick of free seats for quantity-only holds.

use super::*;

pub(crate) fn seat_list(field: &str, seat_ids: &[String], quantity: i32) -> Result<()> {
    let max: i32 = config_or("max_seats_per_reservation", 10);
    if seat_ids.is_empty() {
        if quantity <= 0 || quantity > max {
            return Err(ServiceError::invalid_field(
                "quantity",
                &format!("must be between 1 and {max} when no seat_ids are given"),
            ));
        }
        return Ok(());
    }
    if seat_ids.len() > max as usize {
        return Err(ServiceError::invalid_field(
            field,
            &format!("at most {max} seats per reservation"),
        ));
    }
    if quantity != 0 && quantity as usize != seat_ids.len() {
        return Err(ServiceError::invalid_field(
            "quantity",
            "must match the number of seat_ids",
        ));
    }
    for (i, id) in seat_ids.iter().enumerate() {
        require(field, id)?;
        if seat_ids[..i].contains(id) {
            return Err(ServiceError::invalid_field(
                field,
                &format!("seat {id} is listed twice"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn load_seats(
    event_id: &str,
    seat_ids: &[String],
) -> Result<Vec<Versioned<SeatRecord>>> {
    let keys: Vec<String> = seat_ids.iter().map(|s| seat_key(event_id, s)).collect();
    kv::get_many::<SeatRecord>(&keys)?
        .into_iter()
        .zip(seat_ids)
        .map(|(rec, id)| {
            rec.ok_or_else(|| {
                ServiceError::not_found(format!("seat {id} not found in event {event_id}"))
            })
        })
        .collect()
}

pub(crate) fn seat_status(rec: &SeatRecord) -> SeatStatus {
    rec.seat
        .as_ref()
        .and_then(|s| SeatStatus::try_from(s.status).ok())
        .unwrap_or(SeatStatus::Unspecified)
}

pub(crate) fn with_status(rec: &SeatRecord, status: SeatStatus) -> Seat {
    let mut seat = rec.seat.clone().unwrap_or_default();
    seat.status = status as i32;
    seat
}

pub(crate) fn check(req: CheckAvailabilityRequest) -> Result<CheckAvailabilityResponse> {
    load_event(&req.event_id)?;
    seat_list("seat_ids", &req.seat_ids, req.quantity)?;
    let remaining = kv::counter(&remaining_key(&req.event_id))? as i32;
    if req.seat_ids.is_empty() {
        return Ok(CheckAvailabilityResponse {
            available: remaining >= req.quantity,
            remaining_in_section: remaining,
            ..Default::default()
        });
    }
    let mut resp = CheckAvailabilityResponse {
        remaining_in_section: remaining,
        ..Default::default()
    };
    for rec in load_seats(&req.event_id, &req.seat_ids)? {
        if seat_status(&rec.value) == SeatStatus::Available {
            resp.available_seats
                .push(with_status(&rec.value, SeatStatus::Available));
        } else if let Some(s) = &rec.value.seat {
            resp.unavailable_seat_ids.push(s.id.clone());
        }
    }
    resp.available = resp.unavailable_seat_ids.is_empty();
    Ok(resp)
}

/// `quantity` free seats chosen at random among the first few in the free-seat
/// index after a random place (wrapping around), so that concurrent
/// quantity-only holds rarely pick the same seats, even near sell-out.
pub(crate) fn pick_seats(
    event: &EventRecord,
    event_id: &str,
    quantity: usize,
) -> Result<Vec<String>> {
    let wanted = (quantity * 4) as u32;
    let total = event
        .event
        .as_ref()
        .map(|e| e.total_seats)
        .unwrap_or(0)
        .max(1) as u64;
    let prefix = free_prefix(event_id);
    let start = free_key(
        event_id,
        &format!("{SECTION}-{}", 1 + tacos_guest::random_below(total)),
    );
    let mut free: Vec<String> = kv::scan::<Marker>(&prefix, Some(&start), wanted)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    if free.len() < wanted as usize {
        let more = kv::scan::<Marker>(&prefix, None, wanted - free.len() as u32)?;
        free.extend(more.into_iter().map(|(k, _)| k).filter(|k| *k <= start));
    }
    let mut picked = Vec::with_capacity(quantity);
    while picked.len() < quantity && !free.is_empty() {
        let i = tacos_guest::random_below(free.len() as u64) as usize;
        picked.push(free.swap_remove(i)[prefix.len()..].to_string());
    }
    Ok(picked)
}
