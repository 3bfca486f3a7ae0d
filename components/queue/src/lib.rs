//! The virtual waiting room: join, position, ETA, admission at a set rate,
//! reservation token.
//!
//! Admission is a lazily anchored rate schedule (GCRA): a joiner takes the next
//! position from an atomic counter and is due at
//! `anchor.at + (position - anchor.position) / rate`. When that time is already
//! past (the room had drained), the joiner re-anchors the schedule at itself and
//! now. Joining is O(1) (one increment, one read, one conditional put); status
//! and admission are O(1) too: the waiting token carries position and due time,
//! signed, so checking it needs no scan of the room (the original scanned keys
//! and saturated Redis at 10k RPS).

use tacos_guest::kv::{self, Condition, Tx, TxError};
use tacos_guest::proto::gateway::v1::*;
use tacos_guest::proto::internal::v1::{
    AdmissionAnchor, AdmissionGrant, ConfigureEventRequest, ConfigureEventResponse, Marker,
    QueueEventConfig, WaitingTicket,
};

mod live;
use tacos_guest::proto::{common::v1::ErrorCode, timestamp_ms};
use tacos_guest::{Reply, Result, ServiceError, config_or, handle, now_ms, reply, require, token};

tacos_guest::component_bindings!("../../wit", "tacos:platform/service");

struct Queue;

impl bindings::exports::tacos::platform::handler::Guest for Queue {
    fn call(method: String, request: Vec<u8>) -> Reply {
        match method.as_str() {
            tacos_guest::SELF_CHECK => reply(self_check()),
            "gateway.v1.QueueService/JoinQueue" => handle(&request, join),
            "gateway.v1.QueueService/GetQueueStatus" => handle(&request, status),
            "gateway.v1.QueueService/RequestAdmission" => handle(&request, admit),
            "gateway.v1.QueueService/LeaveQueue" => handle(&request, leave),
            "gateway.v1.QueueService/GetQueueStats" => handle(&request, stats),
            "tacos.internal.v1.QueueAdmin/ConfigureEvent" => handle(&request, configure),
            "tacos.internal.v1.QueueLive/Watch" => handle(&request, live::watch),
            "tacos.internal.v1.QueueLive/Standings" => handle(&request, live::standings),
            other => Err(ServiceError::invalid(format!("unknown method {other}")).encode()),
        }
    }
}

bindings::export!(Queue with_types_in bindings);

/// Token purposes: a waiting token can never pass as a reservation token.
const WAITING: &str = "waiting";
const ADMISSION: &str = "admission";
/// How long a waiting token stays valid after its holder is due.
const TICKET_GRACE_MS: i64 = 3_600_000;

fn event_key(event_id: &str) -> String {
    format!("event:{event_id}")
}

fn configure(req: ConfigureEventRequest) -> Result<ConfigureEventResponse> {
    require("event_id", &req.event_id)?;
    if req.admission_per_second <= 0 {
        return Err(ServiceError::invalid_field(
            "admission_per_second",
            "must be positive",
        ));
    }
    let mut tx = Tx::new();
    tx.put(
        &event_key(&req.event_id),
        &QueueEventConfig {
            admission_per_second: req.admission_per_second,
        },
        Condition::None,
    );
    tx.commit()?;
    Ok(ConfigureEventResponse::default())
}

fn rate_of(event_id: &str) -> Result<i64> {
    match kv::get::<QueueEventConfig>(&event_key(event_id))? {
        Some(c) => Ok(i64::from(c.value.admission_per_second.max(1))),
        None => Err(ServiceError::not_found(format!(
            "event {event_id} not found"
        ))),
    }
}

/// The due time of `position`, re-anchoring the schedule if the room had drained.
fn due_time(event_id: &str, position: i64, rate: i64, now: i64) -> Result<i64> {
    let key = format!("anchor:{event_id}");
    for _ in 0..8 {
        let anchor = kv::get::<AdmissionAnchor>(&key)?;
        let condition = match &anchor {
            Some(a) => {
                let due = a.value.at_ms + (position - a.value.position) * 1000 / rate;
                if due >= now || position < a.value.position {
                    return Ok(due.max(now));
                }
                Condition::Version(a.version)
            }
            None => Condition::Absent,
        };
        let mut tx = Tx::new();
        tx.put(
            &key,
            &AdmissionAnchor {
                position,
                at_ms: now,
            },
            condition,
        );
        match tx.commit() {
            Ok(_) => return Ok(now),
            Err(TxError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::new(
        ErrorCode::ConcurrentModification,
        "waiting room is busy; retry",
    ))
}

fn waiting_view(ticket: &WaitingTicket, rate: i64, now: i64) -> (QueueStatus, i32, i32) {
    let wait_ms = (ticket.ready_at_ms - now).max(0);
    if wait_ms == 0 {
        return (QueueStatus::Ready, 0, 0);
    }
    // Saturating: a far-off place is clamped below, never wrapped.
    let ahead = wait_ms.saturating_mul(rate).saturating_add(999) / 1000;
    let eta = wait_ms.saturating_add(999) / 1000;
    (
        QueueStatus::Waiting,
        ahead.min(i64::from(i32::MAX)) as i32,
        eta.min(i64::from(i32::MAX)) as i32,
    )
}

fn join(req: JoinQueueRequest) -> Result<JoinQueueResponse> {
    require("event_id", &req.event_id)?;
    require("user_id", &req.user_id)?;
    let rate = rate_of(&req.event_id)?;
    let now = now_ms();
    // A user who joins again from the same session keeps their place; another
    // session naming the same user gets a place of its own, never this one's
    // token (signed in, the user is the token's subject, so nobody else can
    // name them at all).
    let user_key = format!(
        "user:{}:{}:{}{}",
        req.event_id,
        req.user_id.len(),
        req.user_id,
        req.session_id
    );

    if let Some(existing) = kv::get::<WaitingTicket>(&user_key)? {
        let t = existing.value;
        if t.expires_at_ms > now && kv::get::<Marker>(&left_key(&t.id))?.is_none() {
            return Ok(join_response(&t, token::sign(WAITING, &t), rate, now));
        }
    }

    let position = kv::increment(&format!("joined:{}", req.event_id), 1)?;
    let ready_at_ms = due_time(&req.event_id, position, rate, now)?;
    let ticket = WaitingTicket {
        event_id: req.event_id.clone(),
        user_id: req.user_id.clone(),
        session_id: req.session_id.clone(),
        position,
        ready_at_ms,
        expires_at_ms: ready_at_ms + TICKET_GRACE_MS,
        id: tacos_guest::new_id("wt"),
        admission_per_second: rate as i32,
    };
    let ttl = (ticket.expires_at_ms - now).max(1) as u64;
    let mut tx = Tx::new();
    tx.put_ttl(&user_key, &ticket, Condition::None, ttl);
    tx.commit()?;
    Ok(join_response(
        &ticket,
        token::sign(WAITING, &ticket),
        rate,
        now,
    ))
}

fn join_response(
    t: &WaitingTicket,
    waiting_token: String,
    rate: i64,
    now: i64,
) -> JoinQueueResponse {
    let (status, position_hint, eta_seconds) = waiting_view(t, rate, now);
    JoinQueueResponse {
        waiting_token,
        position_hint,
        eta_seconds,
        status: status as i32,
        expires_at: Some(timestamp_ms(t.expires_at_ms)),
        error: None,
    }
}

fn left_key(ticket_id: &str) -> String {
    format!("left:{ticket_id}")
}

fn ticket_of(waiting_token: &str) -> Result<WaitingTicket> {
    require("waiting_token", waiting_token)?;
    token::verify(WAITING, waiting_token)
        .ok_or_else(|| ServiceError::invalid_field("waiting_token", "is not a valid waiting token"))
}

/// Where a ticket stands now: (status, position, eta seconds). One kv read.
fn standing(t: &WaitingTicket, now: i64) -> Result<(QueueStatus, i32, i32)> {
    let left = kv::get::<Marker>(&left_key(&t.id))?.is_some();
    Ok(standing_of(t, left, now))
}

/// Where a ticket stands at `now`, knowing whether its holder left.
fn standing_of(t: &WaitingTicket, left: bool, now: i64) -> (QueueStatus, i32, i32) {
    if now >= t.expires_at_ms {
        return (QueueStatus::Expired, 0, 0);
    }
    if left {
        return (QueueStatus::Left, 0, 0);
    }
    waiting_view(t, i64::from(t.admission_per_second.max(1)), now)
}

fn status(req: GetQueueStatusRequest) -> Result<GetQueueStatusResponse> {
    let t = ticket_of(&req.waiting_token)?;
    let (status, position, eta_seconds) = standing(&t, now_ms())?;
    Ok(GetQueueStatusResponse {
        status: status as i32,
        position,
        eta_seconds,
        admission_ready: status == QueueStatus::Ready,
        expires_at: Some(timestamp_ms(t.expires_at_ms)),
        error: None,
    })
}

fn admit(req: RequestAdmissionRequest) -> Result<RequestAdmissionResponse> {
    let t = ticket_of(&req.waiting_token)?;
    if !req.event_id.is_empty() && req.event_id != t.event_id {
        return Err(ServiceError::invalid_field(
            "event_id",
            "does not match the waiting token",
        ));
    }
    if !req.user_id.is_empty() && req.user_id != t.user_id {
        return Err(ServiceError::invalid_field(
            "user_id",
            "does not match the waiting token",
        ));
    }
    let now = now_ms();
    let (status, ahead, eta) = standing(&t, now)?;
    match status {
        QueueStatus::Ready => {}
        QueueStatus::Waiting => {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                format!("not admitted yet: {ahead} ahead, about {eta} s to wait"),
            ));
        }
        QueueStatus::Expired => {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "waiting token expired",
            ));
        }
        _ => {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "left the waiting room",
            ));
        }
    }
    let ttl_seconds: i64 = config_or("reservation_token_ttl_seconds", 30);
    let grant = AdmissionGrant {
        event_id: t.event_id.clone(),
        user_id: t.user_id.clone(),
        expires_at_ms: now + ttl_seconds * 1000,
        ticket_id: t.id.clone(),
        ticket_expires_at_ms: t.expires_at_ms,
    };
    // Count each ticket's first admission only.
    let mut tx = Tx::new();
    tx.put_ttl(
        &format!("admitted:{}", t.id),
        &Marker {},
        Condition::Absent,
        TICKET_GRACE_MS as u64,
    )
    .add(&format!("admitted:{}", t.event_id), 1);
    match tx.commit() {
        Ok(_) | Err(TxError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(RequestAdmissionResponse {
        admission: AdmissionStatus::Granted as i32,
        reservation_token: token::sign(ADMISSION, &grant),
        ttl_seconds: ttl_seconds as i32,
        valid_until: Some(timestamp_ms(grant.expires_at_ms)),
        error: None,
    })
}

fn leave(req: LeaveQueueRequest) -> Result<LeaveQueueResponse> {
    let t = ticket_of(&req.waiting_token)?;
    let now = now_ms();
    let ttl = (t.expires_at_ms - now).max(1) as u64;
    let mut tx = Tx::new();
    tx.put_ttl(&left_key(&t.id), &Marker {}, Condition::None, ttl);
    tx.commit()?;
    Ok(LeaveQueueResponse {
        success: true,
        left_at: Some(timestamp_ms(now)),
        error: None,
    })
}

fn stats(req: GetQueueStatsRequest) -> Result<GetQueueStatsResponse> {
    require("event_id", &req.event_id)?;
    let rate = rate_of(&req.event_id)?;
    let joined = kv::counter(&format!("joined:{}", req.event_id))?;
    let admitted = kv::counter(&format!("admitted:{}", req.event_id))?;
    let now = now_ms();
    let waiting = (joined - admitted).max(0);
    let stats = EventQueueStats {
        event_id: req.event_id,
        total_waiting: waiting,
        total_admitted: admitted,
        admission_rate_per_minute: (rate * 60) as f64,
        average_wait_time_seconds: waiting as f64 / rate as f64 / 2.0,
        last_updated: Some(timestamp_ms(now)),
    };
    Ok(GetQueueStatsResponse {
        system: Some(SystemQueueStats {
            total_events: 1,
            total_waiting: waiting,
            total_admitted: admitted,
            last_updated: Some(timestamp_ms(now)),
        }),
        events: vec![stats],
        error: None,
    })
}

/// Self-check: the config this component reads makes sense.
fn self_check() -> Result<()> {
    tacos_guest::check_config::<i64>(
        "reservation_token_ttl_seconds",
        |s| (1..=3_600).contains(s),
        "seconds from 1 to 3600",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(ready_at_ms: i64) -> WaitingTicket {
        WaitingTicket {
            ready_at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn a_waiting_place_counts_down_to_ready() {
        // Due now or earlier: ready, nobody ahead.
        assert_eq!(
            waiting_view(&ticket(1_000), 100, 1_000),
            (QueueStatus::Ready, 0, 0)
        );
        assert_eq!(
            waiting_view(&ticket(500), 100, 1_000),
            (QueueStatus::Ready, 0, 0)
        );
        // 2.5 s away at 100 admissions/s: 250 ahead, about 3 s (rounded up).
        assert_eq!(
            waiting_view(&ticket(3_500), 100, 1_000),
            (QueueStatus::Waiting, 250, 3)
        );
        // 1 ms away still counts one ahead and one second.
        assert_eq!(
            waiting_view(&ticket(1_001), 100, 1_000),
            (QueueStatus::Waiting, 1, 1)
        );
        // Far away: clamped, never wrapped.
        let (_, ahead, eta) = waiting_view(&ticket(i64::MAX / 2), 1_000_000, 0);
        assert_eq!((ahead, eta), (i32::MAX, i32::MAX));
    }
}
