//! Seats per event: AVAILABLE → RESERVED (by one reservation) → SOLD, with zero
//! overselling.
//!
//! Every seat change is one kv transaction conditioned on the versions read, so
//! of two holds racing for a seat exactly one applies; a hold of N seats is all
//! or nothing. The hold also writes `hold:{reservation}` (which seats it took),
//! so commit and release need no seat list from the caller; a per-event
//! `remaining` counter and the free-seat index move in the same transaction,
//! and so does the hold's expiry message (a transactional outbox send).
//!
//! One module per concern (`events`, `seats`, `holds`); this file dispatches
//! RPCs and holds the key layout and loaders they share, which the modules
//! take with `use super::*`.

use tacos_guest::kv::{self, Condition, Tx, TxError, Versioned};
use tacos_guest::proto::common::v1::{ErrorCode, Event, Money, PageInfo, Seat, SeatStatus};
use tacos_guest::proto::internal::v1::{
    ConfigureEventRequest, ConfigureEventResponse, CreateEventRequest, CreateEventResponse,
    EventRecord, HoldRecord, Marker, SeatRecord,
};
use tacos_guest::proto::reservation::v1::*;
use tacos_guest::proto::timestamp_ms;
use tacos_guest::{Reply, Result, ServiceError, config_or, handle, now_ms, reply, require};

mod events;
mod holds;
mod live;
mod seats;

use events::{create_event, list_events, status};
use holds::{commit, release, reserve};
use seats::check;

tacos_guest::component_bindings!("../../wit", "tacos:platform/service");

struct Inventory;

impl bindings::exports::tacos::platform::handler::Guest for Inventory {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "reservation.v1.Inventory/CheckAvailability" => handle(&request, check),
            "reservation.v1.Inventory/ReserveSeat" => handle(&request, reserve),
            "reservation.v1.Inventory/CommitReservation" => handle(&request, commit),
            "reservation.v1.Inventory/ReleaseHold" => handle(&request, release),
            "reservation.v1.Inventory/GetInventoryStatus" => handle(&request, status),
            "reservation.v1.Inventory/ListEvents" => handle(&request, list_events),
            "tacos.internal.v1.InventoryLive/SeatMap" => handle(&request, live::seat_map),
            "tacos.internal.v1.EventAdmin/CreateEvent" => handle(&request, create_event),
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
/// Grows by one for every seat whose status changes, so a live feed can
/// tell in one read whether the seat map moved.
fn changes_key(event_id: &str) -> String {
    format!("changes:{event_id}")
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

/// Self-check: the config this component reads makes sense.
fn self_check() -> Result<()> {
    tacos_guest::check_config::<i32>(
        "max_seats_per_reservation",
        |n| (1..=100).contains(n),
        "a number from 1 to 100",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_keys_list_in_number_order_and_name_one_seat_one_way() {
        assert_eq!(seat_key("e", "A-7"), "seat:e:A-000007");
        assert_eq!(seat_key("e", "A-000007"), seat_key("e", "A-7"));
        assert!(seat_key("e", "A-9") < seat_key("e", "A-10"));
        // Not a `section-number` id: kept as it is.
        assert_eq!(seat_key("e", "VIP"), "seat:e:VIP");
        assert_eq!(seat_key("e", "A-1234567"), "seat:e:A-1234567");
        assert_eq!(seat_key("e", "A-"), "seat:e:A-");
        // The free index names the same seat under its own prefix.
        assert_eq!(free_key("e", "A-7"), "free:e:A-000007");
        assert!(free_key("e", "A-7").starts_with(&free_prefix("e")));
    }

    #[test]
    fn ids_are_short_and_plain() {
        assert!(valid_id("event_id", "concert_2026-A").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(valid_id("event_id", bad).is_err(), "{bad:?}");
        }
    }
}
