//! The waiting room, live: what the host's feed asks so that a watcher's
//! place can be pushed to it as it moves.
//!
//! `Watch` checks a waiting token once, when a watcher connects, and answers
//! its ticket (opaque to the host) with the standing now. `Standings` is asked
//! once per event per tick for every watcher of the event together: each
//! ticket already carries its due time and rate, so the only read is one
//! batch of "left" markers, and the store's work grows with the events
//! watched, not with the sockets.

use super::*;
use tacos_guest::proto::Message;
use tacos_guest::proto::internal::v1::{
    StandingsRequest, StandingsResponse, WatchPlaceRequest, WatchPlaceResponse,
};

/// The most tickets one `Standings` call takes (the host sends batches): one
/// batch read of their "left" markers (the kv capability reads at most
/// 1,000 keys at once).
const MAX_TICKETS: usize = 1_000;

pub(crate) fn watch(req: WatchPlaceRequest) -> Result<WatchPlaceResponse> {
    let t = ticket_of(&req.waiting_token)?;
    if !t.session_id.is_empty() && req.session_id != t.session_id {
        return Err(ServiceError::invalid_field(
            "session_id",
            "is not the session that joined with this waiting token",
        ));
    }
    if !req.event_id.is_empty() && req.event_id != t.event_id {
        return Err(ServiceError::invalid_field(
            "event_id",
            "does not match the waiting token",
        ));
    }
    let (status, position, eta) = standing(&t, now_ms())?;
    Ok(WatchPlaceResponse {
        event_id: t.event_id.clone(),
        update: Some(update_of(&t, status, position, eta)),
        ticket: t.encode_to_vec(),
    })
}

pub(crate) fn standings(req: StandingsRequest) -> Result<StandingsResponse> {
    if req.tickets.len() > MAX_TICKETS {
        return Err(ServiceError::invalid_field(
            "tickets",
            &format!("at most {MAX_TICKETS} per call"),
        ));
    }
    let tickets = req
        .tickets
        .iter()
        .map(|raw| {
            WaitingTicket::decode(raw.as_slice())
                .map_err(|_| ServiceError::invalid_field("tickets", "not a waiting ticket"))
        })
        .collect::<Result<Vec<_>>>()?;
    let keys: Vec<String> = tickets.iter().map(|t| left_key(&t.id)).collect();
    let left = kv::get_many::<Marker>(&keys)?;
    let now = now_ms();
    let updates = tickets
        .iter()
        .zip(left)
        .map(|(t, left)| {
            let (status, position, eta) = standing_of(t, left.is_some(), now);
            update_of(t, status, position, eta)
        })
        .collect();
    Ok(StandingsResponse { updates })
}

/// The stream's message for a ticket standing so.
fn update_of(t: &WaitingTicket, status: QueueStatus, position: i32, eta: i32) -> QueueUpdateEvent {
    let kind = match status {
        QueueStatus::Ready => QueueEventType::AdmissionReady,
        QueueStatus::Expired => QueueEventType::TokenExpired,
        QueueStatus::Left => QueueEventType::Left,
        _ => QueueEventType::PositionChanged,
    };
    QueueUpdateEvent {
        r#type: kind as i32,
        queue_update: Some(QueueUpdate {
            position,
            eta_seconds: eta,
            event_type: kind as i32,
            admission_ready: status == QueueStatus::Ready,
            expires_at: Some(timestamp_ms(t.expires_at_ms)),
            status: status as i32,
        }),
        timestamp: None,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_moves_to_ready_then_expires() {
        let t = WaitingTicket {
            ready_at_ms: 3_000,
            expires_at_ms: 10_000,
            admission_per_second: 2,
            ..Default::default()
        };
        let at = |now, left| {
            let (s, p, e) = standing_of(&t, left, now);
            let u = update_of(&t, s, p, e);
            (u.r#type, u.queue_update.map(|q| q.position))
        };
        let waiting = QueueEventType::PositionChanged as i32;
        assert_eq!(at(1_000, false), (waiting, Some(4)));
        assert_eq!(at(2_500, false), (waiting, Some(1)));
        assert_eq!(at(3_000, false).0, QueueEventType::AdmissionReady as i32);
        assert_eq!(at(2_000, true).0, QueueEventType::Left as i32);
        // Expiry wins over leaving: the token is no longer good either way.
        assert_eq!(at(10_000, true).0, QueueEventType::TokenExpired as i32);
    }
}
