//! Signed, self-contained tokens over protobuf messages (the `token`
//! capability: the host holds the key and does the HMAC).
//!
//! The waiting token and the reservation token carry their facts (event, user,
//! position, expiry) signed, so checking one costs no storage round trip; that
//! keeps queue status O(1) under a flash crowd.

use crate::bindings::tacos::platform::token as raw;
use prost::Message;

/// Sign `message` for `purpose`.
pub fn sign<M: Message>(purpose: &str, message: &M) -> String {
    raw::sign(purpose, &message.encode_to_vec())
}

/// Verify and decode a token signed for `purpose`; `None` if malformed, forged
/// or signed for another purpose.
pub fn verify<M: Message + Default>(purpose: &str, token: &str) -> Option<M> {
    let payload = raw::verify(purpose, token)?;
    M::decode(payload.as_slice()).ok()
}
