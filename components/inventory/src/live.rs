//! An event's seat map, live: what the host's feed asks once per event per
//! tick. Every seat change also adds to the event's `changes` counter (in the
//! same transaction), so an idle event costs the feed one counter read, and
//! a busy one a scan of its seats, however many buyers watch it.

use super::*;
use tacos_guest::proto::internal::v1::{SeatMapRequest, SeatMapResponse};

pub(crate) fn seat_map(req: SeatMapRequest) -> Result<SeatMapResponse> {
    load_event(&req.event_id)?;
    let version = kv::counter(&changes_key(&req.event_id))?;
    if version == req.known_version {
        return Ok(SeatMapResponse {
            version,
            changed: false,
            ..Default::default()
        });
    }
    // The version is read before the seats: a change that lands during the
    // scan shows as a newer version next tick, never as a missed one.
    let seats = events::event_seats(&req.event_id)?;
    let remaining_seats = kv::counter(&remaining_key(&req.event_id))? as i32;
    Ok(SeatMapResponse {
        version,
        changed: true,
        seats,
        remaining_seats,
    })
}
