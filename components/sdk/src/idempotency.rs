//! Idempotency keys: the first response under a key is replayed for 5 minutes
//! (config `idempotency_window_seconds`); the same key with another request is
//! refused with IDEMPOTENCY_CONFLICT.
//!
//! A key is claimed before the work starts (a conditional put), so concurrent
//! duplicates run the work once: the others see the claim and get
//! CONCURRENT_MODIFICATION (retryable) until the first one finishes. The final
//! response is written in the same transaction as the work's own records.
//! Refusals (bad input, credentials) and transient failures release the claim
//! so that a retry runs again; business outcomes (a conflict) are replayed.
//!
//! [`claim_with`] also takes keys the work must own before it starts (a
//! one-use admission, say) in the same commit as the claim: a key already
//! taken refuses the request; only a successful result keeps them, and a
//! failure gives them back in the same commit as its record. So a request
//! costs the same two commits whether or not it takes such keys.

use crate::kv::{self, Condition, Tx, TxError};
use crate::{Reply, Result, ServiceError, config_or, now_ms};
use prost::Message;
use sha2::{Digest, Sha256};
use tacos_proto::common::v1::ErrorCode;
use tacos_proto::internal::v1::{IdempotencyRecord, Marker};

/// How long a claim without a result blocks its key (a crashed call).
const CLAIM_LEASE_MS: i64 = 30_000;

/// The outcome of claiming a key.
pub enum Claim {
    /// The key was used before: this is the reply to give again.
    Replay(Reply),
    /// The key is ours; do the work and `finish`.
    Fresh(Claimed),
}

/// A claimed key.
pub struct Claimed {
    key: String,
    version: u64,
    record: IdempotencyRecord,
    /// Keys taken with the claim, and their versions, given back on failure.
    taken: Vec<(String, u64)>,
}

/// A key the work takes for itself with its idempotency claim (absent
/// before; kept `ttl_ms` if the work succeeds).
pub struct Take {
    pub key: String,
    pub ttl_ms: u64,
}

fn window_ms() -> u64 {
    config_or::<u64>("idempotency_window_seconds", 300) * 1000
}

/// For a self-check: the idempotency window, if set, is sensible.
pub fn check_config() -> Result<()> {
    crate::check_config::<u64>(
        "idempotency_window_seconds",
        |s| (1..=86_400).contains(s),
        "seconds from 1 to 86400",
    )
}

/// Claim `key` of `user` for `request` in `scope` (e.g. "create").
pub fn claim(scope: &str, user: &str, key: &str, request: &[u8]) -> Result<Claim> {
    claim_with(scope, user, key, request, &[], || {
        ServiceError::internal("nothing to take")
    })
}

/// [`claim`], taking `take` in the same commit; `taken` is the answer when
/// one of them is someone else's already. A replay is answered before
/// anything is taken.
pub fn claim_with(
    scope: &str,
    user: &str,
    key: &str,
    request: &[u8],
    take: &[Take],
    taken: impl Fn() -> ServiceError,
) -> Result<Claim> {
    let kv_key = format!("idem:{scope}:{user}:{key}");
    let hash = Sha256::digest(request).to_vec();
    // The first try is blind: a key is almost always fresh, so it is claimed
    // without reading it first. Whatever stops that try (the key is there, a
    // take is gone, a quota), the tries that read the key first decide; a
    // failure that is not a conflict stands if the key is still fresh (so a
    // quota refuses once, and a replay is still a replay).
    let mut blind_failure = None;
    for attempt in 0..5 {
        let now = now_ms();
        let blind = attempt == 0;
        let existing = if blind {
            None
        } else {
            kv::get::<IdempotencyRecord>(&kv_key)?
        };
        let condition = match &existing {
            Some(rec) if rec.value.request_hash != hash => {
                return Err(ServiceError::new(
                    ErrorCode::IdempotencyConflict,
                    "idempotency_key was already used with a different request",
                ));
            }
            Some(rec) if rec.value.done => {
                let r = rec.value.response.clone();
                return Ok(Claim::Replay(if rec.value.error { Err(r) } else { Ok(r) }));
            }
            Some(rec) if now - rec.value.created_at_ms < CLAIM_LEASE_MS => {
                return Err(ServiceError::new(
                    ErrorCode::ConcurrentModification,
                    "a request with this idempotency_key is in progress; retry shortly",
                ));
            }
            Some(rec) => Condition::Version(rec.version),
            None => match blind_failure.take() {
                Some(e) => return Err(e),
                None => Condition::Absent,
            },
        };
        let record = IdempotencyRecord {
            request_hash: hash.clone(),
            created_at_ms: now,
            ..Default::default()
        };
        let mut tx = Tx::new();
        tx.put_ttl(&kv_key, &record, condition, window_ms());
        for t in take {
            tx.put_ttl(&t.key, &Marker {}, Condition::Absent, t.ttl_ms);
        }
        match tx.commit() {
            Ok(v) => {
                let taken = take
                    .iter()
                    .map(|t| t.key.clone())
                    .zip(v[1..].iter().copied());
                return Ok(Claim::Fresh(Claimed {
                    key: kv_key,
                    version: v[0],
                    record,
                    taken: taken.collect(),
                }));
            }
            Err(TxError::Failed(e)) if blind => blind_failure = Some(e),
            Err(_) if blind => continue,
            Err(TxError::Conflict(0)) => continue,
            Err(TxError::Conflict(_)) => return Err(taken()),
            Err(TxError::Failed(e)) => return Err(e),
        }
    }
    Err(ServiceError::new(
        ErrorCode::ConcurrentModification,
        "idempotency_key is contended; retry",
    ))
}

/// Failures after which nothing happened and a retry should run again: the
/// request was refused (bad input, credentials) or the failure was transient.
fn not_recorded(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InvalidArgument
            | ErrorCode::Unauthenticated
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::Internal
            | ErrorCode::Unavailable
            | ErrorCode::Timeout
            | ErrorCode::UpstreamTimeout
            | ErrorCode::UpstreamError
            | ErrorCode::ConcurrentModification
    )
}

/// Record the outcome under the claimed key, together with the work's own
/// writes in `tx`, and return the reply.
pub fn finish<M: Message>(claim: Claimed, result: Result<(M, Tx)>) -> Reply {
    let Claimed {
        key,
        version,
        mut record,
        taken,
    } = claim;
    // A failure gives back what the claim took, in its own commit.
    let give_back = |tx: &mut Tx| {
        for (k, v) in &taken {
            tx.delete(k, Condition::Version(*v));
        }
    };
    match result {
        Ok((response, mut tx)) => {
            let bytes = response.encode_to_vec();
            record.response = bytes.clone();
            record.done = true;
            tx.put_ttl(&key, &record, Condition::Version(version), window_ms());
            match tx.commit() {
                Ok(_) => Ok(bytes),
                Err(e) => Err(ServiceError::from(e).encode()),
            }
        }
        Err(e) if not_recorded(e.code()) => {
            let mut tx = Tx::new();
            tx.delete(&key, Condition::Version(version));
            give_back(&mut tx);
            let _ = tx.commit();
            Err(e.encode())
        }
        Err(e) => {
            let bytes = e.encode();
            record.response = bytes.clone();
            record.done = true;
            record.error = true;
            let mut tx = Tx::new();
            tx.put_ttl(&key, &record, Condition::Version(version), window_ms());
            give_back(&mut tx);
            let _ = tx.commit();
            Err(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_transient_failures_are_not_recorded() {
        // A retry of these should run again.
        for code in [
            ErrorCode::InvalidArgument,
            ErrorCode::Unauthenticated,
            ErrorCode::Unavailable,
            ErrorCode::ConcurrentModification,
        ] {
            assert!(not_recorded(code), "{code:?}");
        }
        // These are the request's answer: a retry replays them.
        for code in [
            ErrorCode::InsufficientInventory,
            ErrorCode::InventoryConflict,
            ErrorCode::ReservationExpired,
        ] {
            assert!(!not_recorded(code), "{code:?}");
        }
    }
}
