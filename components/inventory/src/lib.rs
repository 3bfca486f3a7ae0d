//! Seats per event: AVAILABLE → RESERVED (by one reservation) → SOLD, with zero
//! overselling.
//!
//! Every seat change is one kv transaction conditioned on the versions read, so
//! of two holds racing for a seat exactly one applies; a hold of N seats is all
//! or nothing. The hold also writes `hold:{reservation}` (which seats it took),
//! so commit and release need no seat list from the caller; a per-event
//! `remaining` counter and the free-seat index move in the same transaction,
//! and so does the hold's expiry message (a transactional outbox send).

use tacos_guest::kv::{self, Condition, Tx, TxError, Versioned};
use tacos_guest::proto::common::v1::{ErrorCode, Event, Money, Seat, SeatStatus};
use tacos_guest::proto::internal::v1::{
    ConfigureEventRequest, ConfigureEventResponse, CreateEventRequest, CreateEventResponse,
    EventRecord, HoldRecord, Marker, SeatRecord,
};
use tacos_guest::proto::reservation::v1::*;
use tacos_guest::proto::timestamp_ms;
use tacos_guest::{Reply, Result, ServiceError, config_or, decode, now_ms, reply, require};

tacos_guest::component_bindings!("../../wit", "tacos:platform/service");

struct Inventory;

impl bindings::exports::tacos::platform::handler::Guest for Inventory {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "reservation.v1.Inventory/CheckAvailability" => reply(decode(&request).and_then(check)),
            "reservation.v1.Inventory/ReserveSeat" => reply(decode(&request).and_then(reserve)),
            "reservation.v1.Inventory/CommitReservation" => {
                reply(decode(&request).and_then(commit))
            }
            "reservation.v1.Inventory/ReleaseHold" => reply(decode(&request).and_then(release)),
            "reservation.v1.Inventory/GetInventoryStatus" => {
                reply(decode(&request).and_then(status))
            }
            "tacos.internal.v1.EventAdmin/CreateEvent" => {
                reply(decode(&request).and_then(create_event))
            }
            other => Err(ServiceError::invalid(format!("unknown method {other}")).encode()),
        }
    }
}

bindings::export!(Inventory with_types_in bindings);

const MAX_SEATS_PER_EVENT: i32 = 200_000;
/// Consumed by the worker, which expires the reservation and releases its seats.
const EXPIRY_TOPIC: &str = "reservation-expiry";
const SECTION: &str = "A";

fn event_key(event_id: &str) -> String {
    format!("event:{event_id}")
}
fn seat_prefix(event_id: &str) -> String {
    format!("seat:{event_id}:")
}
fn free_prefix(event_id: &str) -> String {
    format!("free:{event_id}:")
}
/// The free-seat index: a key per AVAILABLE seat, so that picking seats for a
/// quantity-only hold reads only free seats, however sold out the event is.
fn free_key(event_id: &str, seat_id: &str) -> String {
    let seat = seat_key(event_id, seat_id);
    format!("free:{event_id}:{}", &seat[seat_prefix(event_id).len()..])
}
/// `A-7` is stored as `seat:{event}:A-000007`, so that seats list in number order
/// (and `A-000007` names the same seat).
fn seat_key(event_id: &str, seat_id: &str) -> String {
    match seat_id.split_once('-') {
        Some((section, n))
            if !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let n: u32 = n.parse().unwrap_or(0);
            format!("seat:{event_id}:{section}-{n:06}")
        }
        _ => format!("seat:{event_id}:{seat_id}"),
    }
}
fn remaining_key(event_id: &str) -> String {
    format!("remaining:{event_id}")
}
fn hold_key(reservation_id: &str) -> String {
    format!("hold:{reservation_id}")
}

fn valid_id(field: &str, id: &str) -> Result<()> {
    require(field, id)?;
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ServiceError::invalid_field(
            field,
            "must be 1-64 characters of A-Z, a-z, 0-9, '-', '_'",
        ));
    }
    Ok(())
}

fn load_event(event_id: &str) -> Result<Versioned<EventRecord>> {
    require("event_id", event_id)?;
    match kv::get::<EventRecord>(&event_key(event_id))? {
        Some(e) if e.value.ready => Ok(e),
        _ => Err(ServiceError::not_found(format!(
            "event {event_id} not found"
        ))),
    }
}

fn event_view(rec: &EventRecord) -> Result<Event> {
    let mut event = rec.event.clone().unwrap_or_default();
    event.remaining_seats = kv::counter(&remaining_key(&event.id))? as i32;
    Ok(event)
}

// ---------------------------------------------------------------- events

fn create_event(req: CreateEventRequest) -> Result<CreateEventResponse> {
    valid_id("event_id", &req.event_id)?;
    require("name", &req.name)?;
    if req.seat_count <= 0 || req.seat_count > MAX_SEATS_PER_EVENT {
        return Err(ServiceError::invalid_field(
            "seat_count",
            "must be between 1 and 200000",
        ));
    }
    let price = req.price.clone().unwrap_or_default();
    if price.amount < 0 {
        return Err(ServiceError::invalid_field(
            "price.amount",
            "must not be negative",
        ));
    }
    let currency = if price.currency.is_empty() {
        "KRW".to_string()
    } else {
        price.currency.clone()
    };
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ServiceError::invalid_field(
            "price.currency",
            "must be an ISO 4217 code such as KRW",
        ));
    }
    let rate = if req.admission_per_second == 0 {
        100
    } else {
        req.admission_per_second
    };
    if rate < 0 {
        return Err(ServiceError::invalid_field(
            "admission_per_second",
            "must be positive",
        ));
    }
    let price = Money {
        amount: price.amount,
        currency,
    };
    let record = EventRecord {
        event: Some(Event {
            id: req.event_id.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            total_seats: req.seat_count,
            remaining_seats: req.seat_count,
            ..Default::default()
        }),
        price: Some(price.clone()),
        admission_per_second: rate,
        ready: false,
    };

    // Claim the id; a retry of the same unfinished creation may resume it.
    let key = event_key(&req.event_id);
    let claimed_version = match kv::get::<EventRecord>(&key)? {
        Some(existing) if existing.value.ready => {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("event {} already exists", req.event_id),
            ));
        }
        Some(existing) if existing.value != record => {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "event {} is being created with other settings",
                    req.event_id
                ),
            ));
        }
        Some(existing) => existing.version,
        None => {
            let mut tx = Tx::new();
            tx.put(&key, &record, Condition::Absent);
            match tx.commit() {
                Ok(v) => v[0],
                Err(TxError::Conflict(_)) => {
                    return Err(ServiceError::new(
                        ErrorCode::AlreadyExists,
                        format!("event {} already exists", req.event_id),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };

    let chunk = kv::max_transact_ops() as i32 / 2;
    let mut n = 1;
    while n <= req.seat_count {
        let mut tx = Tx::new();
        let end = (n + chunk - 1).min(req.seat_count);
        for i in n..=end {
            let id = format!("{SECTION}-{i}");
            let seat = SeatRecord {
                seat: Some(Seat {
                    id: id.clone(),
                    section: SECTION.to_string(),
                    row: String::new(),
                    number: i.to_string(),
                    price: Some(price.clone()),
                    status: SeatStatus::Available as i32,
                }),
                ..Default::default()
            };
            tx.put(&seat_key(&req.event_id, &id), &seat, Condition::None)
                .put(&free_key(&req.event_id, &id), &Marker {}, Condition::None);
        }
        tx.commit()?;
        n = end + 1;
    }

    let mut done = record.clone();
    done.ready = true;
    let mut tx = Tx::new();
    tx.put(&key, &done, Condition::Version(claimed_version));
    // The counter is written once, with the flip to ready, so a resumed creation
    // cannot count twice.
    let current = kv::counter(&remaining_key(&req.event_id))?;
    tx.add(
        &remaining_key(&req.event_id),
        i64::from(req.seat_count) - current,
    );
    tx.commit()?;

    let _: ConfigureEventResponse = tacos_guest::call(
        "tacos.internal.v1.QueueAdmin",
        "ConfigureEvent",
        &ConfigureEventRequest {
            event_id: req.event_id.clone(),
            admission_per_second: rate,
        },
    )?;
    tacos_guest::info("event created", &[("event_id", &req.event_id)]);
    Ok(CreateEventResponse {
        event: done.event,
        error: None,
    })
}

fn status(req: GetInventoryStatusRequest) -> Result<GetInventoryStatusResponse> {
    let event = load_event(&req.event_id)?;
    let mut sections: Vec<SectionInventory> = Vec::new();
    let mut stats = InventoryStats::default();
    let prefix = seat_prefix(&req.event_id);
    let mut after: Option<String> = None;
    loop {
        let page = kv::scan::<SeatRecord>(&prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, rec) in page {
            let Some(seat) = rec.value.seat else { continue };
            if !req.section.is_empty() && seat.section != req.section {
                continue;
            }
            let idx = match sections.iter().position(|s| s.section == seat.section) {
                Some(i) => i,
                None => {
                    sections.push(SectionInventory {
                        section: seat.section.clone(),
                        ..Default::default()
                    });
                    sections.len() - 1
                }
            };
            let s = &mut sections[idx];
            s.total_seats += 1;
            stats.total_seats += 1;
            match SeatStatus::try_from(seat.status).unwrap_or(SeatStatus::Unspecified) {
                SeatStatus::Available => {
                    s.available_seats += 1;
                    stats.available_seats += 1;
                }
                SeatStatus::Reserved => {
                    s.reserved_seats += 1;
                    stats.reserved_seats += 1;
                }
                SeatStatus::Sold => {
                    s.sold_seats += 1;
                    stats.sold_seats += 1;
                }
                _ => stats.blocked_seats += 1,
            }
            s.seats.push(seat);
        }
    }
    Ok(GetInventoryStatusResponse {
        event: Some(event_view(&event.value)?),
        sections,
        stats: Some(stats),
        error: None,
    })
}

// ---------------------------------------------------------------- seats

fn seat_list(field: &str, seat_ids: &[String], quantity: i32) -> Result<()> {
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

fn load_seats(event_id: &str, seat_ids: &[String]) -> Result<Vec<Versioned<SeatRecord>>> {
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

fn seat_status(rec: &SeatRecord) -> SeatStatus {
    rec.seat
        .as_ref()
        .and_then(|s| SeatStatus::try_from(s.status).ok())
        .unwrap_or(SeatStatus::Unspecified)
}

fn with_status(rec: &SeatRecord, status: SeatStatus) -> Seat {
    let mut seat = rec.seat.clone().unwrap_or_default();
    seat.status = status as i32;
    seat
}

fn check(req: CheckAvailabilityRequest) -> Result<CheckAvailabilityResponse> {
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
fn pick_seats(event: &EventRecord, event_id: &str, quantity: usize) -> Result<Vec<String>> {
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

fn reserve(req: ReserveSeatRequest) -> Result<ReserveSeatResponse> {
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

/// The seats a reservation holds, from its hold record.
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

fn commit(req: CommitReservationRequest) -> Result<CommitReservationResponse> {
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

fn release(req: ReleaseHoldRequest) -> Result<ReleaseHoldResponse> {
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

/// Self-check: the config this component reads makes sense.
fn self_check() -> Result<()> {
    tacos_guest::check_config::<i32>(
        "max_seats_per_reservation",
        |n| (1..=100).contains(n),
        "a number from 1 to 100",
    )
}
