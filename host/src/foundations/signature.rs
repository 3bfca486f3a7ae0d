//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, timestamps older or newer than 5 minutes refused.
//!
//! The host signs on behalf of components (the key never enters a sandbox) and
//! verifies inbound webhooks before any component sees them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a webhook's timestamp may be from the host clock.
pub const TOLERANCE_SECONDS: u64 = 300;
/// The most `v1,…` entries a `webhook-signature` header may carry (a sender
/// rotating keys sends two or three).
pub const MAX_SIGNATURES: usize = 8;
/// The longest `webhook-signature` header accepted (an entry is 47 bytes).
pub const MAX_SIGNATURE_HEADER: usize = 1024;
/// The longest `webhook-id` accepted.
pub const MAX_ID: usize = 256;

fn mac(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        B64.encode(mac(key, id, timestamp, body).finalize().into_bytes())
    )
}

/// The header value signed by each of `keys` (during a key rotation, the
/// new and the old), space-separated as Standard Webhooks sends them.
pub fn sign_all(keys: &[&[u8]], id: &str, timestamp: u64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing webhook-id, webhook-timestamp or webhook-signature header")]
    MissingHeaders,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes from now")]
    Stale,
    #[error(
        "webhook-signature has more than 8 entries or 1024 bytes, or webhook-id more than 256 bytes"
    )]
    TooLarge,
    #[error("no webhook-signature matches")]
    Mismatch,
}

/// Verify a webhook against any of `keys` (the tenant's current key and,
/// during a rotation, its previous one). `signatures` is the header value
/// (space-separated `v1,…` entries, as key rotation sends several). The cost
/// is bounded whatever the sender sends: the header's size and entries are
/// capped and the HMAC over the body is computed once per key, then compared
/// with each entry in constant time.
pub fn verify(
    keys: &[&[u8]],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_seconds: u64,
) -> Result<(), VerifyError> {
    let (Some(id), Some(ts), Some(sigs)) = (id, timestamp, signatures) else {
        return Err(VerifyError::MissingHeaders);
    };
    if sigs.len() > MAX_SIGNATURE_HEADER
        || sigs.split_whitespace().count() > MAX_SIGNATURES
        || id.len() > MAX_ID
    {
        return Err(VerifyError::TooLarge);
    }
    let ts: u64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if ts.abs_diff(now_seconds) > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    let expected: Vec<_> = keys.iter().map(|k| mac(k, id, ts, body)).collect();
    for sig in sigs.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(raw) = B64.decode(b64) else { continue };
        // `verify_slice` compares in constant time; the clone reuses the
        // inner state that has the body, so the body is hashed once per key.
        if expected
            .iter()
            .any(|m| m.clone().verify_slice(&raw).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = b"secret-key";
        let sig = sign(key, "wh_1", 1_700_000_000, b"{}");
        let ok = verify(
            &[key],
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_010,
        );
        assert_eq!(ok, Ok(()));
        let forged = verify(
            &[key],
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{\"x\":1}",
            1_700_000_010,
        );
        assert_eq!(forged, Err(VerifyError::Mismatch));
        let stale = verify(
            &[key],
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_400,
        );
        assert_eq!(stale, Err(VerifyError::Stale));
        let other_key = verify(
            &[b"k2"],
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_000,
        );
        assert_eq!(other_key, Err(VerifyError::Mismatch));
        assert_eq!(
            verify(&[key], None, None, None, b"", 0),
            Err(VerifyError::MissingHeaders)
        );
    }

    #[test]
    fn rotation_and_caps() {
        let key = b"secret-key";
        let good = sign(key, "wh_1", 1_700_000_000, b"{}");
        let old = sign(b"old-key", "wh_1", 1_700_000_000, b"{}");
        let both = format!("{old} {good}");
        let check = |sigs: &str| {
            verify(
                &[key],
                Some("wh_1"),
                Some("1700000000"),
                Some(sigs),
                b"{}",
                1_700_000_000,
            )
        };
        assert_eq!(check(&both), Ok(()));
        // Signed by both keys of a rotation: a receiver with either verifies.
        let both = sign_all(&[b"new-key", b"old-key"], "wh_1", 1_700_000_000, b"{}");
        for k in [&b"new-key"[..], b"old-key"] {
            assert_eq!(
                verify(
                    &[k],
                    Some("wh_1"),
                    Some("1700000000"),
                    Some(&both),
                    b"{}",
                    1_700_000_000
                ),
                Ok(())
            );
        }
        // The attack of many entries: refused before any HMAC.
        let many = vec![old.as_str(); 40_000].join(" ");
        assert_eq!(check(&many), Err(VerifyError::TooLarge));
        let nine = [old.as_str(); 9].join(" ");
        assert!(nine.len() <= MAX_SIGNATURE_HEADER);
        assert_eq!(check(&nine), Err(VerifyError::TooLarge));
        let long_id = "x".repeat(MAX_ID + 1);
        assert_eq!(
            verify(&[key], Some(&long_id), Some("1"), Some(&good), b"", 1),
            Err(VerifyError::TooLarge)
        );
    }
}
