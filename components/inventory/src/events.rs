//! Events: CreateEvent writes an event, its seats and their free-seat index;
//! GetInventoryStatus counts their seats; ListEvents lists them.

use super::*;

pub(crate) fn create_event(req: CreateEventRequest) -> Result<CreateEventResponse> {
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

pub(crate) fn status(req: GetInventoryStatusRequest) -> Result<GetInventoryStatusResponse> {
    let event = load_event(&req.event_id)?;
    let mut sections: Vec<SectionInventory> = Vec::new();
    let mut stats = InventoryStats::default();
    for seat in event_seats(&req.event_id)? {
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
    Ok(GetInventoryStatusResponse {
        event: Some(event_view(&event.value)?),
        sections,
        stats: Some(stats),
        error: None,
    })
}

/// Every seat of an event, in number order.
pub(crate) fn event_seats(event_id: &str) -> Result<Vec<Seat>> {
    let prefix = seat_prefix(event_id);
    let mut seats = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = kv::scan::<SeatRecord>(&prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seats.extend(page.into_iter().filter_map(|(_, rec)| rec.value.seat));
    }
    Ok(seats)
}

/// The tenant's events in id order, a page at a time (the cursor is the last
/// id of the page before). Events still being created are left out.
pub(crate) fn list_events(req: ListEventsRequest) -> Result<ListEventsResponse> {
    let page = req.pagination.unwrap_or_default();
    let size = match page.page_size {
        0 => 50,
        n if (1..=200).contains(&n) => n as usize,
        _ => {
            return Err(ServiceError::invalid_field(
                "pagination.page_size",
                "must be between 1 and 200",
            ));
        }
    };
    if !page.cursor.is_empty() {
        valid_id("pagination.cursor", &page.cursor)?;
    }
    let prefix = event_key("");
    let mut after = (!page.cursor.is_empty()).then(|| event_key(&page.cursor));
    let mut events = Vec::with_capacity(size);
    let mut has_next_page = false;
    'pages: loop {
        let batch = kv::scan::<EventRecord>(&prefix, after.as_deref(), 100)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (_, rec) in batch {
            if !rec.value.ready {
                continue;
            }
            if events.len() == size {
                has_next_page = true;
                break 'pages;
            }
            events.push(event_view(&rec.value)?);
        }
    }
    let next_cursor = match has_next_page {
        true => events.last().map(|e| e.id.clone()).unwrap_or_default(),
        false => String::new(),
    };
    Ok(ListEventsResponse {
        page_info: Some(PageInfo {
            total_count: events.len() as i32,
            has_next_page,
            has_previous_page: !page.cursor.is_empty(),
            next_cursor,
            previous_cursor: String::new(),
        }),
        events,
        error: None,
    })
}
