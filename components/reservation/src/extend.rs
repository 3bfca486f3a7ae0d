//! ExtendHold: one extension of a held reservation's deadline.

use super::*;

pub(crate) fn extend(req: ExtendHoldRequest) -> Result<ExtendHoldResponse> {
    let r = load_owned(&req.reservation_id, &req.user_id)?;
    refuse_unless_held(&r.value)?;
    let max: i32 = config_or("max_hold_extension_seconds", 60);
    let now = now_ms();
    let expires = hold_expires_ms(&r.value);
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
