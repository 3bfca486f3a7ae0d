//! `Idempotency-Key` on the mutating REST routes, kept once at the edge for
//! every route rather than in each component.
//!
//! The first response to a key is recorded for the window (5 minutes unless
//! configured) and replayed to every retry that sends the same request; the
//! same key with a different request (method, path, query or body) is
//! refused with `ERROR_CODE_IDEMPOTENCY_CONFLICT`. Duplicates that arrive
//! while the first is still running wait for it and get its response, so the
//! work happens once. Keys belong to the caller (the authenticated user, or
//! no one for open routes) within the tenant, so two users' keys never meet.
//!
//! Records live in the kv store with a TTL, so they survive a restart. A 5xx
//! or 429 answer is not recorded: the failure was not the request's fault,
//! and a retry runs again.

use crate::clock::Clock;
use crate::store::{Condition, KvStore, Op, StoreResult};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// SHA-256 of the request it answered.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// What to do with a request carrying a key.
pub enum Begin {
    /// Answer with this earlier response.
    Replay(Recorded),
    /// The key was used for a different request.
    Conflict,
    /// Run the request, then [`Ticket::finish`].
    Run(Ticket),
}

/// A request in flight under a key; dropping it unfinished (the client went
/// away) lets waiting duplicates run instead.
pub struct Ticket {
    owner: Arc<Idempotency>,
    key: String,
    fingerprint: String,
    done: Arc<watch::Sender<State>>,
    finished: bool,
}

#[derive(Clone)]
enum State {
    Running,
    /// Finished without a record (a transient failure, or the caller left).
    Unrecorded,
    Recorded(Recorded),
}

struct InFlight {
    fingerprint: String,
    done: Arc<watch::Sender<State>>,
}

pub struct Idempotency {
    kv: Arc<dyn KvStore>,
    clock: Arc<Clock>,
    window: Duration,
    in_flight: Mutex<HashMap<String, InFlight>>,
}

/// Check a header value: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ));
    }
    Ok(())
}

/// The fingerprint of a request: what must match for a replay.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path_and_query.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

impl Idempotency {
    pub fn new(kv: Arc<dyn KvStore>, clock: Arc<Clock>, window: Duration) -> Arc<Idempotency> {
        Arc::new(Idempotency {
            kv,
            clock,
            window,
            in_flight: Mutex::default(),
        })
    }

    fn record_key(tenant: &str, caller: &str, key: &str) -> String {
        let mut h = Sha256::new();
        h.update(caller.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        format!("{tenant}/@edge/idem/{}", hex::encode(h.finalize()))
    }

    /// Start a request of `caller` of `tenant` under `key`.
    pub async fn begin(
        self: &Arc<Self>,
        tenant: &str,
        caller: &str,
        key: &str,
        fingerprint: String,
    ) -> StoreResult<Begin> {
        let key = Self::record_key(tenant, caller, key);
        loop {
            // Decide under the lock, act after it.
            let step = {
                let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                match map.get(&key) {
                    Some(f) if f.fingerprint != fingerprint => return Ok(Begin::Conflict),
                    Some(f) => Err(f.done.subscribe()),
                    None => {
                        let done = Arc::new(watch::Sender::new(State::Running));
                        let flight = InFlight {
                            fingerprint: fingerprint.clone(),
                            done: done.clone(),
                        };
                        map.insert(key.clone(), flight);
                        Ok(done)
                    }
                }
            };
            let mut waiting = match step {
                Ok(done) => return self.claimed(key, fingerprint, done).await,
                Err(waiting) => waiting,
            };
            let state = waiting
                .wait_for(|s| !matches!(s, State::Running))
                .await
                .map(|s| s.clone())
                .unwrap_or(State::Unrecorded);
            match state {
                State::Recorded(r) => return Ok(self.answer(r, &fingerprint)),
                // The first run left no answer: take a turn ourselves.
                State::Unrecorded | State::Running => continue,
            }
        }
    }

    /// This request holds the key in this host; an earlier run may have
    /// left a record already.
    async fn claimed(
        self: &Arc<Self>,
        key: String,
        fingerprint: String,
        done: Arc<watch::Sender<State>>,
    ) -> StoreResult<Begin> {
        let mut ticket = Ticket {
            owner: self.clone(),
            key,
            fingerprint,
            done,
            finished: false,
        };
        let existing = self.kv.get(&ticket.key).await?;
        match existing.and_then(|e| serde_json::from_slice::<Recorded>(&e.value).ok()) {
            Some(r) => {
                let answer = self.answer(r.clone(), &ticket.fingerprint);
                ticket.settle(State::Recorded(r));
                Ok(answer)
            }
            None => Ok(Begin::Run(ticket)),
        }
    }

    fn answer(&self, r: Recorded, fingerprint: &str) -> Begin {
        if r.fingerprint == fingerprint {
            Begin::Replay(r)
        } else {
            Begin::Conflict
        }
    }
}

impl Ticket {
    /// Record the response (unless it was a 5xx or 429) and release waiters.
    pub async fn finish(mut self, status: u16, body: &[u8]) {
        let keep = status < 500 && status != 429;
        let state = match (keep, std::str::from_utf8(body)) {
            (true, Ok(text)) => {
                let r = Recorded {
                    fingerprint: self.fingerprint.clone(),
                    status,
                    body: text.to_string(),
                };
                let owner = &self.owner;
                let put = Op::Put {
                    key: self.key.clone(),
                    value: serde_json::to_vec(&r).unwrap_or_default(),
                    condition: Condition::None,
                    expires_at_ms: Some(owner.clock.now_ms() + owner.window.as_millis() as u64),
                };
                match owner.kv.transact(vec![put]).await {
                    Ok(_) => State::Recorded(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "recording an idempotent response failed");
                        // Waiters still get this answer; later retries run again.
                        State::Recorded(r)
                    }
                }
            }
            _ => State::Unrecorded,
        };
        self.settle(state);
    }

    fn settle(&mut self, state: State) {
        self.finished = true;
        self.owner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        self.done.send_replace(state);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.settle(State::Unrecorded);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_fingerprints() {
        assert!(valid_key("order-42").is_ok());
        assert!(valid_key("").is_err());
        assert!(valid_key("has space").is_err());
        assert!(valid_key(&"k".repeat(256)).is_err());
        let a = fingerprint("POST", "/api/v1/reservations", b"{}");
        assert_eq!(a, fingerprint("POST", "/api/v1/reservations", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/reservations", b"{ }"));
        assert_ne!(a, fingerprint("POST", "/api/v1/reservation", b"s{}"));
    }
}
