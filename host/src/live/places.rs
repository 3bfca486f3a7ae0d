//! The waiting room's feed: every watcher of one event's queue, asked about
//! together once per tick.
//!
//! A watcher keeps the ticket the queue component answered when it opened
//! (opaque here) and its latest standing, in a `watch` channel: a reader
//! that does not keep up sees only the newest standing, never a backlog.

use super::{Closing, FeedKey, Live, Next, Push};
use crate::runtime::Served;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use tacos_proto::gateway::v1::{QueueEventType, QueueUpdateEvent};
use tacos_proto::internal::v1::{
    StandingsRequest, StandingsResponse, WatchPlaceRequest, WatchPlaceResponse,
};
use tokio::sync::watch;

const SERVICE: &str = "tacos.internal.v1.QueueLive";
/// Tickets per `Standings` call (the component takes at most 1,000: one
/// batch read).
const BATCH: usize = 1_000;

#[derive(Default)]
pub(super) struct Places {
    feeds: Mutex<HashMap<FeedKey, HashMap<u64, Watcher>>>,
    next_id: AtomicU64,
}

struct Watcher {
    ticket: Bytes,
    /// The standing last pushed, without its timestamp.
    last: QueueUpdateEvent,
    tx: watch::Sender<Arc<Push>>,
}

/// One feed's watchers at the start of a tick.
pub(super) struct Due {
    key: FeedKey,
    watchers: Vec<(u64, Bytes)>,
}

/// A watched place; dropping it stops watching.
pub struct PlaceWatch {
    rx: watch::Receiver<Arc<Push>>,
    first: bool,
    _unwatch: Unwatch,
}

struct Unwatch {
    places: Weak<Places>,
    key: FeedKey,
    id: u64,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        let Some(places) = self.places.upgrade() else {
            return;
        };
        let mut feeds = super::locked(&places.feeds);
        if let Some(watchers) = feeds.get_mut(&self.key) {
            watchers.remove(&self.id);
            if watchers.is_empty() {
                feeds.remove(&self.key);
            }
        }
    }
}

impl PlaceWatch {
    pub(super) async fn next(&mut self) -> Next {
        if !std::mem::take(&mut self.first) && self.rx.changed().await.is_err() {
            return Next::End(Closing::Stopping);
        }
        Next::Push(self.rx.borrow_and_update().clone())
    }
}

impl Places {
    pub(super) fn watchers(&self) -> usize {
        let feeds = super::locked(&self.feeds);
        feeds.values().map(HashMap::len).sum()
    }

    pub(super) fn due(&self) -> Vec<Due> {
        let feeds = super::locked(&self.feeds);
        feeds
            .iter()
            .map(|(key, watchers)| Due {
                key: key.clone(),
                watchers: watchers
                    .iter()
                    .map(|(id, w)| (*id, w.ticket.clone()))
                    .collect(),
            })
            .collect()
    }

    /// Push `update` to watcher `id` if its standing changed.
    fn offer(&self, key: &FeedKey, id: u64, update: QueueUpdateEvent, live: &Live) {
        let mut feeds = super::locked(&self.feeds);
        let Some(w) = feeds.get_mut(key).and_then(|f| f.get_mut(&id)) else {
            return; // gone meanwhile
        };
        if w.last == update {
            return;
        }
        w.tx.send_replace(stamped(&update, live));
        w.last = update;
    }

    /// End every watcher of `key` with `error`.
    fn end_all(&self, key: &FeedKey, error: ProtoError, live: &Live) {
        let feeds = super::locked(&self.feeds);
        for w in feeds.get(key).into_iter().flat_map(HashMap::values) {
            let update = QueueUpdateEvent {
                error: Some(error.clone()),
                ..Default::default()
            };
            w.tx.send_replace(stamped(&update, live));
        }
    }
}

/// The message pushed for `update`: stamped with the host's time, and the
/// last of its stream when the place is done (expired, left, or an error).
fn stamped(update: &QueueUpdateEvent, live: &Live) -> Arc<Push> {
    let mut message = update.clone();
    message.timestamp = Some(live.now());
    let last = match (&update.error, QueueEventType::try_from(update.r#type)) {
        (Some(e), _) => Some(Closing::Failed(e.clone())),
        (None, Ok(QueueEventType::TokenExpired)) => Some(Closing::Done("waiting token expired")),
        (None, Ok(QueueEventType::Left)) => Some(Closing::Done("left the waiting room")),
        _ => None,
    };
    Push::new(&message, last)
}

pub(super) async fn watch(
    live: &Live,
    tenant: &Arc<Served>,
    waiting_token: &str,
    session_id: &str,
    event_id: &str,
    trace: &str,
) -> Result<PlaceWatch, ProtoError> {
    let request = WatchPlaceRequest {
        waiting_token: waiting_token.into(),
        session_id: session_id.into(),
        event_id: event_id.into(),
    };
    let opened: WatchPlaceResponse = live.call(tenant, SERVICE, "Watch", &request, trace).await?;
    let update = opened.update.unwrap_or_default();
    let (tx, rx) = watch::channel(stamped(&update, live));
    let key = FeedKey {
        tenant: tenant.id.clone(),
        event: opened.event_id,
    };
    let places = &live.places;
    let id = places.next_id.fetch_add(1, Ordering::Relaxed);
    let watcher = Watcher {
        ticket: opened.ticket.into(),
        last: update,
        tx,
    };
    super::locked(&places.feeds)
        .entry(key.clone())
        .or_default()
        .insert(id, watcher);
    Ok(PlaceWatch {
        rx,
        first: true,
        _unwatch: Unwatch {
            places: Arc::downgrade(places),
            key,
            id,
        },
    })
}

/// One feed's tick: the standings of all its watchers, in batches.
pub(super) async fn tick(live: &Live, due: Due) {
    let Some(tenant) = live.tenant(&due.key) else {
        let gone = ProtoError {
            code: ErrorCode::NotFound as i32,
            message: format!("tenant {} is no longer served here", due.key.tenant),
            ..Default::default()
        };
        live.places.end_all(&due.key, gone, live);
        return;
    };
    for batch in due.watchers.chunks(BATCH) {
        let request = StandingsRequest {
            event_id: due.key.event.clone(),
            tickets: batch.iter().map(|(_, t)| t.to_vec()).collect(),
        };
        let trace = Live::trace();
        let answer: Result<StandingsResponse, _> = live
            .call(&tenant, SERVICE, "Standings", &request, &trace)
            .await;
        match answer {
            Ok(a) if a.updates.len() == batch.len() => {
                for ((id, _), update) in batch.iter().zip(a.updates) {
                    live.places.offer(&due.key, *id, update, live);
                }
            }
            Ok(a) => tracing::warn!(
                asked = batch.len(),
                answered = a.updates.len(),
                "queue standings: answer does not match the tickets"
            ),
            // A busy tenant or a failing version: try again next tick.
            Err(e) => tracing::warn!(trace = %trace, error = %e.message, "queue standings failed"),
        }
    }
}
