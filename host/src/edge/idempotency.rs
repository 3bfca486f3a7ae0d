//! The `Idempotency-Key` step of the pipeline ([`super::pipeline`]): one
//! rule for every method on both protocols (the header on REST POSTs, the
//! `idempotency-key` metadata on gRPC), kept once at the edge rather than in
//! each component.
//!
//! The first answer to a key is recorded for the window (5 minutes unless
//! configured) and replayed to every retry that sends the same request; the
//! same key with a different request (method or message) is refused with
//! `ERROR_CODE_IDEMPOTENCY_CONFLICT`. Duplicates that arrive while the first
//! is still running wait for it and get its answer, so the work happens once.
//! Keys belong to the caller (the authenticated user, or no one for open
//! routes) within the tenant, so two users' keys never meet. An answer is
//! recorded as the encoded response or contract error, not as either
//! protocol's rendering, so a retry over the other protocol replays it too.
//!
//! Records live in the kv store with a TTL, so they survive a restart. An
//! error that is the host's or the moment's (5xx or 429 on REST) is not
//! recorded: the failure was not the request's fault, and a retry runs again.

use super::errors;
use crate::foundations::clock::Clock;
use crate::store::{Condition, KvStore, Op, StoreResult};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tacos_proto::common::v1::Error as ProtoError;
use tokio::sync::watch;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// An answer: the encoded response, or the contract's error.
pub type Answer = Result<Vec<u8>, ProtoError>;

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// SHA-256 of the request it answered.
    pub fingerprint: String,
    /// The encoded response (base64), or
    ok: Option<String>,
    /// the encoded `common.v1.Error` (base64).
    error: Option<String>,
}

impl Recorded {
    fn new(fingerprint: String, answer: &Answer) -> Recorded {
        let (ok, error) = match answer {
            Ok(bytes) => (Some(B64.encode(bytes)), None),
            Err(e) => (None, Some(B64.encode(e.encode_to_vec()))),
        };
        Recorded {
            fingerprint,
            ok,
            error,
        }
    }

    /// The answer it holds (a damaged record reads as no record).
    fn answer(&self) -> Option<Answer> {
        match (&self.ok, &self.error) {
            (Some(ok), None) => B64.decode(ok).ok().map(Ok),
            (None, Some(e)) => {
                let bytes = B64.decode(e).ok()?;
                ProtoError::decode(bytes.as_slice()).ok().map(Err)
            }
            _ => None,
        }
    }
}

/// What to do with a request carrying a key.
pub enum Begin {
    /// Answer with this earlier answer.
    Replay(Answer),
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

/// The `Idempotency-Key` header (gRPC: `idempotency-key` metadata), checked,
/// if the request sends one.
pub fn key_of(headers: &hyper::HeaderMap) -> Result<Option<&str>, String> {
    let Some(raw) = headers.get(super::IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = raw.to_str().map_err(|e| format!("Idempotency-Key: {e}"))?;
    valid_key(key)?;
    Ok(Some(key))
}

/// The fingerprint of a request: what must match for a replay (the RPC and
/// the encoded message, whichever protocol carried it).
pub fn fingerprint(service: &str, method: &str, message: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(service.as_bytes());
    h.update([0]);
    h.update(method.as_bytes());
    h.update([0]);
    h.update(message);
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
                State::Recorded(r) => {
                    if let Some(begin) = self.answer(&r, &fingerprint) {
                        return Ok(begin);
                    }
                }
                // The first run left no answer: take a turn ourselves.
                State::Unrecorded | State::Running => {}
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
        let recorded = existing.and_then(|e| serde_json::from_slice::<Recorded>(&e.value).ok());
        match recorded.and_then(|r| Some((self.answer(&r, &ticket.fingerprint)?, r))) {
            Some((begin, r)) => {
                ticket.settle(State::Recorded(r));
                Ok(begin)
            }
            None => Ok(Begin::Run(ticket)),
        }
    }

    /// A replay of `r`, a conflict, or `None` when the record is damaged.
    fn answer(&self, r: &Recorded, fingerprint: &str) -> Option<Begin> {
        if r.fingerprint != fingerprint {
            return Some(Begin::Conflict);
        }
        r.answer().map(Begin::Replay)
    }
}

impl Ticket {
    /// Record the answer (unless it is a failure of the host or the moment:
    /// a 5xx or 429) and release waiters.
    pub async fn finish(mut self, answer: &Answer) {
        let keep = match answer {
            Ok(_) => true,
            Err(e) => {
                let status = errors::status_of(e.code).as_u16();
                status < 500 && status != 429
            }
        };
        let state = if keep {
            let r = {
                let r = Recorded::new(self.fingerprint.clone(), answer);
                let owner = &self.owner;
                let put = Op::Put {
                    key: self.key.clone(),
                    value: serde_json::to_vec(&r).unwrap_or_default(),
                    condition: Condition::None,
                    expires_at_ms: Some(owner.clock.now_ms() + owner.window.as_millis() as u64),
                };
                if let Err(e) = owner.kv.transact(vec![put]).await {
                    // Waiters still get this answer; later retries run again.
                    tracing::warn!(error = %e, "recording an idempotent response failed");
                }
                r
            };
            State::Recorded(r)
        } else {
            State::Unrecorded
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
        let a = fingerprint("r.v1.R", "Create", b"\x0a\x01x");
        assert_eq!(a, fingerprint("r.v1.R", "Create", b"\x0a\x01x"));
        assert_ne!(a, fingerprint("r.v1.R", "Create", b"\x0a\x01y"));
        assert_ne!(a, fingerprint("r.v1.R", "Creat", b"e\x0a\x01x"));
    }

    #[test]
    fn a_record_holds_an_answer_or_an_error() {
        let ok: Answer = Ok(vec![1, 2, 3]);
        assert_eq!(Recorded::new("f".into(), &ok).answer(), Some(ok));
        let err: Answer = Err(ProtoError {
            code: 7,
            message: "no".into(),
            ..Default::default()
        });
        assert_eq!(Recorded::new("f".into(), &err).answer(), Some(err));
        let damaged = Recorded {
            fingerprint: "f".into(),
            ok: Some("!!".into()),
            error: None,
        };
        assert_eq!(damaged.answer(), None);
    }
}
