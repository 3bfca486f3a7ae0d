//! The seat map's feed: one per event watched, holding the seats as last
//! read and the version they were read at, asking inventory once per tick
//! whether that version is still current and broadcasting the seats whose
//! status changed.
//!
//! A new watcher gets the feed's seats as a snapshot and subscribes under
//! the same lock, so it misses no change and sees none twice. Changes go out
//! through a short ring ([`RING`]); a watcher that falls a whole ring behind
//! is ended ([`Closing::Behind`]) and starts afresh when it reconnects.

use super::{Closing, FeedKey, Live, Next, Push};
use crate::runtime::Served;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode, Seat};
use tacos_proto::internal::v1::{SeatMapRequest, SeatMapResponse};
use tacos_proto::reservation::v1::SeatUpdateEvent;
use tokio::sync::broadcast;

const SERVICE: &str = "tacos.internal.v1.InventoryLive";
/// Changes kept for watchers that are behind.
const RING: usize = 16;

#[derive(Default)]
pub(super) struct Seats {
    feeds: Mutex<HashMap<FeedKey, Feed>>,
}

struct Feed {
    version: i64,
    seats: Vec<Seat>,
    /// Seat id → its place in `seats`.
    index: HashMap<String, usize>,
    remaining: i32,
    tx: broadcast::Sender<Arc<Push>>,
}

impl Feed {
    fn new(map: SeatMapResponse) -> Feed {
        let index = map
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Feed {
            version: map.version,
            seats: map.seats,
            index,
            remaining: map.remaining_seats,
            tx: broadcast::channel(RING).0,
        }
    }

    /// Take a newer read; the seats whose status (or anything) changed.
    fn apply(&mut self, map: SeatMapResponse) -> Vec<Seat> {
        let mut changed = Vec::new();
        for seat in map.seats {
            match self.index.get(&seat.id) {
                Some(&i) if self.seats[i] == seat => {}
                Some(&i) => {
                    changed.push(seat.clone());
                    self.seats[i] = seat;
                }
                None => {
                    self.index.insert(seat.id.clone(), self.seats.len());
                    changed.push(seat.clone());
                    self.seats.push(seat);
                }
            }
        }
        self.version = map.version;
        self.remaining = map.remaining_seats;
        changed
    }
}

/// A watched seat map; dropping it stops watching.
pub struct SeatWatch {
    snapshot: Option<Arc<Push>>,
    rx: broadcast::Receiver<Arc<Push>>,
    _unwatch: Unwatch,
}

struct Unwatch {
    seats: Weak<Seats>,
    key: FeedKey,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        let Some(seats) = self.seats.upgrade() else {
            return;
        };
        let mut feeds = super::locked(&seats.feeds);
        // This watcher's receiver is gone already: the feed ends with its last.
        if feeds
            .get(&self.key)
            .is_some_and(|f| f.tx.receiver_count() == 0)
        {
            feeds.remove(&self.key);
        }
    }
}

impl SeatWatch {
    pub(super) async fn next(&mut self) -> Next {
        if let Some(first) = self.snapshot.take() {
            return Next::Push(first);
        }
        match self.rx.recv().await {
            Ok(push) => Next::Push(push),
            Err(broadcast::error::RecvError::Lagged(_)) => Next::End(Closing::Behind),
            Err(broadcast::error::RecvError::Closed) => Next::End(Closing::Stopping),
        }
    }
}

impl Seats {
    pub(super) fn watchers(&self) -> usize {
        let feeds = super::locked(&self.feeds);
        feeds.values().map(|f| f.tx.receiver_count()).sum()
    }

    /// Every feed and the version it has.
    pub(super) fn due(&self) -> Vec<(FeedKey, i64)> {
        let feeds = super::locked(&self.feeds);
        feeds.iter().map(|(k, f)| (k.clone(), f.version)).collect()
    }
}

fn update(
    key: &FeedKey,
    seats: Vec<Seat>,
    remaining: i32,
    snapshot: bool,
    live: &Live,
) -> Arc<Push> {
    let event = SeatUpdateEvent {
        event_id: key.event.clone(),
        snapshot,
        seats,
        remaining_seats: remaining,
        timestamp: Some(live.now()),
        error: None,
    };
    Push::new(&event, None)
}

pub(super) async fn watch(
    live: &Live,
    tenant: &Arc<Served>,
    event_id: &str,
    trace: &str,
) -> Result<SeatWatch, ProtoError> {
    let key = FeedKey {
        tenant: tenant.id.clone(),
        event: event_id.to_string(),
    };
    // The first watcher of an event reads its seats (and finds out whether
    // it exists); later ones share the feed's.
    let mut read: Option<SeatMapResponse> = None;
    loop {
        {
            let mut feeds = super::locked(&live.seats.feeds);
            if let Some(map) = read.take() {
                match feeds.get_mut(&key) {
                    Some(feed) if map.version > feed.version => {
                        feed.apply(map);
                    }
                    Some(_) => {}
                    None => {
                        feeds.insert(key.clone(), Feed::new(map));
                    }
                }
            }
            if let Some(feed) = feeds.get(&key) {
                let snapshot = update(&key, feed.seats.clone(), feed.remaining, true, live);
                return Ok(SeatWatch {
                    snapshot: Some(snapshot),
                    rx: feed.tx.subscribe(),
                    _unwatch: Unwatch {
                        seats: Arc::downgrade(&live.seats),
                        key,
                    },
                });
            }
        }
        read = Some(seat_map(live, tenant, event_id, -1, trace).await?);
    }
}

async fn seat_map(
    live: &Live,
    tenant: &Arc<Served>,
    event_id: &str,
    known_version: i64,
    trace: &str,
) -> Result<SeatMapResponse, ProtoError> {
    let request = SeatMapRequest {
        event_id: event_id.into(),
        known_version,
    };
    live.call(tenant, SERVICE, "SeatMap", &request, trace).await
}

/// One feed's tick: a newer seat map, if there is one, and its changes out.
pub(super) async fn tick(live: &Live, (key, version): (FeedKey, i64)) {
    let Some(tenant) = live.tenant(&key) else {
        let gone = ProtoError {
            code: ErrorCode::NotFound as i32,
            message: format!("tenant {} is no longer served here", key.tenant),
            ..Default::default()
        };
        end(live, &key, gone);
        return;
    };
    let trace = Live::trace();
    let map = match seat_map(live, &tenant, &key.event, version, &trace).await {
        Ok(map) if map.changed => map,
        Ok(_) => return,
        Err(e) if e.code == ErrorCode::NotFound as i32 => return end(live, &key, e),
        Err(e) => {
            // A busy tenant or a failing version: try again next tick.
            tracing::warn!(trace = %trace, error = %e.message, "seat map failed");
            return;
        }
    };
    let mut feeds = super::locked(&live.seats.feeds);
    let Some(feed) = feeds.get_mut(&key) else {
        return; // nobody watches any more
    };
    if map.version <= feed.version {
        return; // a newer read landed meanwhile
    }
    let changed = feed.apply(map);
    if !changed.is_empty() {
        // No receivers is not an error: the last one may be leaving.
        let _ = feed
            .tx
            .send(update(&key, changed, feed.remaining, false, live));
    }
}

/// End every watcher of `key`'s seat map with `error`.
fn end(live: &Live, key: &FeedKey, error: ProtoError) {
    let feeds = super::locked(&live.seats.feeds);
    if let Some(feed) = feeds.get(key) {
        let event = SeatUpdateEvent {
            event_id: key.event.clone(),
            error: Some(error.clone()),
            ..Default::default()
        };
        let _ = feed
            .tx
            .send(Push::new(&event, Some(Closing::Failed(error))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(id: &str, status: i32) -> Seat {
        Seat {
            id: id.into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn a_newer_read_yields_only_what_changed() {
        let mut feed = Feed::new(SeatMapResponse {
            version: 1,
            changed: true,
            seats: vec![seat("A-1", 1), seat("A-2", 1)],
            remaining_seats: 2,
        });
        let changed = feed.apply(SeatMapResponse {
            version: 3,
            changed: true,
            seats: vec![seat("A-1", 1), seat("A-2", 2), seat("A-3", 1)],
            remaining_seats: 2,
        });
        let ids: Vec<&str> = changed.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["A-2", "A-3"]);
        assert_eq!((feed.version, feed.seats.len()), (3, 3));
    }

    #[tokio::test]
    async fn a_watcher_that_falls_a_ring_behind_is_told_to_reconnect() {
        let seats = Arc::new(Seats::default());
        let key = FeedKey {
            tenant: "t".into(),
            event: "e".into(),
        };
        let feed = Feed::new(SeatMapResponse::default());
        let rx = feed.tx.subscribe();
        let tx = feed.tx.clone();
        seats.feeds.lock().unwrap().insert(key.clone(), feed);
        let mut watch = SeatWatch {
            snapshot: None,
            rx,
            _unwatch: Unwatch {
                seats: Arc::downgrade(&seats),
                key: key.clone(),
            },
        };
        for _ in 0..=RING {
            tx.send(Push::new(&SeatUpdateEvent::default(), None))
                .unwrap();
        }
        assert!(matches!(watch.next().await, Next::End(Closing::Behind)));
        // Its going ends the feed, which no one else watches.
        drop(watch);
        drop(tx);
        assert!(seats.feeds.lock().unwrap().is_empty());
    }
}
