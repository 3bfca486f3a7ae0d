//! GetReservation and ListReservations.

use super::*;

pub(crate) fn get(req: GetReservationRequest) -> Result<GetReservationResponse> {
    let r = load_owned(&req.reservation_id, &req.user_id)?;
    Ok(GetReservationResponse {
        reservation: Some(r.value),
        error: None,
    })
}

pub(crate) fn list(req: ListReservationsRequest) -> Result<ListReservationsResponse> {
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
