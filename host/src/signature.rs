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

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing webhook-id, webhook-timestamp or webhook-signature header")]
    MissingHeaders,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no webhook-signature matches")]
    Mismatch,
}

/// Verify a webhook. `signatures` is the header value (space-separated
/// `v1,…` entries, as key rotation sends several).
pub fn verify(
    key: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_seconds: u64,
) -> Result<(), VerifyError> {
    let (Some(id), Some(ts), Some(sigs)) = (id, timestamp, signatures) else {
        return Err(VerifyError::MissingHeaders);
    };
    let ts: u64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if ts.abs_diff(now_seconds) > TOLERANCE_SECONDS {
        return Err(VerifyError::Stale);
    }
    for sig in sigs.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(raw) = B64.decode(b64) else { continue };
        if mac(key, id, ts, body).verify_slice(&raw).is_ok() {
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
            key,
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_010,
        );
        assert_eq!(ok, Ok(()));
        let forged = verify(
            key,
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{\"x\":1}",
            1_700_000_010,
        );
        assert_eq!(forged, Err(VerifyError::Mismatch));
        let stale = verify(
            key,
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_400,
        );
        assert_eq!(stale, Err(VerifyError::Stale));
        let other_key = verify(
            b"k2",
            Some("wh_1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            1_700_000_000,
        );
        assert_eq!(other_key, Err(VerifyError::Mismatch));
        assert_eq!(
            verify(key, None, None, None, b"", 0),
            Err(VerifyError::MissingHeaders)
        );
    }
}
