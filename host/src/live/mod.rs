//! Live updates: a buyer's place in the waiting room and an event's seat map,
//! pushed as they change, to WebSocket and gRPC-stream watchers alike.
//!
//! The host fans out. For each (tenant, event) with watchers there is one
//! feed, and once per [`TICK`] the feed asks the component once for all its
//! watchers: the queue's `QueueLive/Standings` with every watcher's ticket
//! (one batch read of "left" markers, whatever the number of sockets), the
//! inventory's `InventoryLive/SeatMap` with the version it has (one counter
//! read when nothing moved). A watcher gets a message only when its view
//! changed; a place in the queue keeps only its latest standing (a slow
//! reader never builds a backlog), a seat watcher a short ring of changes
//! (one that falls behind it is told to reconnect, and gets a fresh
//! snapshot when it does). A watch starts with the view now, so a client
//! that reconnects resumes where it stands.
//!
//! The edge admits a watcher like any request (one admission path) and then
//! opens a [`Watch`] here; what a message looks like on the wire (JSON text
//! frames, gRPC messages) is the edge's.

mod places;
mod seats;

use crate::foundations::trace::new_trace_id;
use crate::runtime::{Runtime, Served};
use bytes::Bytes;
use prost::Message;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use tokio::task::JoinHandle;

pub use places::PlaceWatch;
pub use seats::SeatWatch;

/// How often each feed asks its component (and so the most a change waits
/// before it is pushed, plus the call).
pub const TICK: Duration = Duration::from_millis(250);
/// The deadline of one feed call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The live feeds of one host.
pub struct Live {
    runtime: Arc<Runtime>,
    places: Arc<places::Places>,
    seats: Arc<seats::Seats>,
}

/// Whose feed: one per tenant and event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FeedKey {
    tenant: String,
    event: String,
}

/// One message for a watcher: the encoded contract message, its JSON made
/// once however many watchers share it, and whether the stream ends after it.
#[derive(Debug)]
pub struct Push {
    pub proto: Bytes,
    json: OnceLock<Bytes>,
    pub last: Option<Closing>,
}

impl Push {
    fn new(message: &impl Message, last: Option<Closing>) -> Arc<Push> {
        Arc::new(Push {
            proto: message.encode_to_vec().into(),
            json: OnceLock::new(),
            last,
        })
    }
}

/// Why a stream ends; the edge says it on the wire (a WebSocket close code
/// and reason, a gRPC status).
#[derive(Debug, Clone, PartialEq)]
pub enum Closing {
    /// The place is done with (its token expired, its holder left).
    Done(&'static str),
    /// The watch cannot go on: the contract's error.
    Failed(ProtoError),
    /// The watcher fell behind the feed; it may reconnect and start afresh.
    Behind,
    /// The host is stopping.
    Stopping,
}

/// What a watch yields next.
pub enum Next {
    Push(Arc<Push>),
    /// The stream ends without a message (fell behind, or the host stops).
    End(Closing),
}

/// An open watch of either kind; dropping it stops watching.
pub enum Watch {
    Place(PlaceWatch),
    Seats(SeatWatch),
}

impl Watch {
    /// The next message, waiting until there is one.
    pub async fn next(&mut self) -> Next {
        match self {
            Watch::Place(w) => w.next().await,
            Watch::Seats(w) => w.next().await,
        }
    }

    /// The contract message this watch pushes.
    pub fn message_name(&self) -> &'static str {
        match self {
            Watch::Place(_) => "gateway.v1.QueueUpdateEvent",
            Watch::Seats(_) => "reservation.v1.SeatUpdateEvent",
        }
    }
}

/// A feed table's lock; a panic elsewhere while holding it leaves nothing
/// half-written that a reader could trip on, so a poisoned lock is taken.
fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// The feeds of `runtime`, and the task that ticks them.
    pub fn start(runtime: Arc<Runtime>) -> (Arc<Live>, JoinHandle<()>) {
        let live = Arc::new(Live {
            places: Arc::new(places::Places::default()),
            seats: Arc::new(seats::Seats::default()),
            runtime,
        });
        let ticking = live.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                ticking.tick().await;
            }
        });
        (live, task)
    }

    /// Watchers open now: (places, seat maps).
    pub fn watchers(&self) -> (usize, usize) {
        (self.places.watchers(), self.seats.watchers())
    }

    /// Watch a place in `tenant`'s waiting room.
    pub async fn watch_place(
        &self,
        tenant: &Arc<Served>,
        waiting_token: &str,
        session_id: &str,
        event_id: &str,
        trace: &str,
    ) -> Result<Watch, ProtoError> {
        places::watch(self, tenant, waiting_token, session_id, event_id, trace)
            .await
            .map(Watch::Place)
    }

    /// Watch the seat map of `tenant`'s event.
    pub async fn watch_seats(
        &self,
        tenant: &Arc<Served>,
        event_id: &str,
        trace: &str,
    ) -> Result<Watch, ProtoError> {
        seats::watch(self, tenant, event_id, trace)
            .await
            .map(Watch::Seats)
    }

    /// A push's JSON (the contract's mapping), made once per push.
    pub fn json(&self, watch: &Watch, push: &Push) -> Bytes {
        push.json
            .get_or_init(|| {
                let codec = &self.runtime.codec;
                let rendered = codec
                    .message(watch.message_name())
                    .and_then(|desc| codec.to_json(&desc, &push.proto));
                match rendered {
                    Ok(json) => json.into(),
                    Err(e) => {
                        tracing::error!(error = %e, "rendering a live update");
                        Bytes::from_static(b"{}")
                    }
                }
            })
            .clone()
    }

    /// One round: every feed asks its component once.
    async fn tick(&self) {
        let places = self.places.due().into_iter().map(|f| places::tick(self, f));
        let seats = self.seats.due().into_iter().map(|f| seats::tick(self, f));
        futures_util::future::join_all(places).await;
        futures_util::future::join_all(seats).await;
    }

    /// Call `service`/`method` of `tenant` with `request` and decode the answer.
    async fn call<T: Message + Default>(
        &self,
        tenant: &Arc<Served>,
        service: &str,
        method: &str,
        request: &impl Message,
        trace: &str,
    ) -> Result<T, ProtoError> {
        let ctx = self.runtime.context(tenant, trace.into(), CALL_TIMEOUT);
        let bytes = self
            .runtime
            .call(&ctx, service, method, &request.encode_to_vec())
            .await
            .map_err(|e| e.to_proto(trace))?;
        T::decode(bytes.as_slice()).map_err(|e| ProtoError {
            code: ErrorCode::Internal as i32,
            message: format!("{service}/{method} answered something else: {e}"),
            trace_id: trace.into(),
            details: Vec::new(),
        })
    }

    /// The tenant a feed is for, while it is served.
    fn tenant(&self, key: &FeedKey) -> Option<Arc<Served>> {
        self.runtime.tenant(&key.tenant)
    }

    fn now(&self) -> prost_types::Timestamp {
        tacos_proto::timestamp_ms(self.runtime.clock.now_ms() as i64)
    }

    fn trace() -> String {
        new_trace_id()
    }
}
