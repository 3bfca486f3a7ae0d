//! Reservations: a 60 s hold on seats, confirmed after payment, cancelled, or
//! expired by the worker.
//!
//! Creating one is ordered so that a crash at any step loses nothing: the
//! idempotency key is claimed first; inventory holds the seats and schedules
//! their expiry in one transaction; then the reservation record and the
//! idempotent response are written together. If the last step never happens,
//! the expiry finds no reservation and releases the orphaned hold.
//!
//! One module per concern (`create`, `read`, `confirm`, `end` for cancel,
//! expire and fail, `extend`); this file dispatches RPCs and holds the record
//! helpers they share, which the modules take with `use super::*`.

use tacos_guest::idempotency::{self, Claim, Take};
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
    Message, Reply, Result, ServiceError, config_or, decode, handle, now_ms, reply, require, token,
};

mod confirm;
mod create;
mod end;
mod extend;
mod read;

use confirm::confirm;
use create::create;
use end::{cancel, expire, fail};
use extend::extend;
use read::{get, list};

tacos_guest::component_bindings!("../../wit", "tacos:platform/service");

struct Reservations;

impl bindings::exports::tacos::platform::handler::Guest for Reservations {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "reservation.v1.ReservationService/CreateReservation" => create(&request),
            "reservation.v1.ReservationService/GetReservation" => handle(&request, get),
            "reservation.v1.ReservationService/ConfirmReservation" => handle(&request, confirm),
            "reservation.v1.ReservationService/CancelReservation" => handle(&request, cancel),
            "reservation.v1.ReservationService/ListReservations" => handle(&request, list),
            "reservation.v1.ReservationService/ExtendHold" => handle(&request, extend),
            "tacos.internal.v1.ReservationLifecycle/ExpireReservation" => handle(&request, expire),
            "tacos.internal.v1.ReservationLifecycle/FailReservation" => handle(&request, fail),
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

/// When the hold runs out, in ms since the epoch (0 when it has no expiry).
fn hold_expires_ms(r: &Reservation) -> i64 {
    r.hold_expires_at.as_ref().map(timestamp_to_ms).unwrap_or(0)
}

fn load(id: &str) -> Result<Versioned<Reservation>> {
    require("reservation_id", id)?;
    kv::get::<Reservation>(&res_key(id))?
        .ok_or_else(|| ServiceError::not_found(format!("reservation {id} not found")))
}

/// A reservation as its owner sees it; `user_id` may be empty for internal
/// callers. Another user's reservation is answered as if it did not exist,
/// so ids cannot be probed.
fn load_owned(id: &str, user_id: &str) -> Result<Versioned<Reservation>> {
    let r = load(id)?;
    if !user_id.is_empty() && r.value.user_id != user_id {
        return Err(ServiceError::not_found(format!(
            "reservation {id} not found"
        )));
    }
    Ok(r)
}

/// Refuse anything but a held reservation (an expired hold says so).
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

fn save(r: &Reservation, version: u64) -> core::result::Result<u64, TxError> {
    let mut tx = Tx::new();
    tx.put(&res_key(&r.reservation_id), r, Condition::Version(version));
    tx.commit().map(|v| v[0])
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
