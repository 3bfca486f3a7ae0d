//! `tacos:platform/token`: signed, self-contained tokens, signed and checked by
//! the host with the tenant's token key, which never enters a component.
//!
//! Format: `base64url(payload) "." base64url(HMAC-SHA256(key, purpose 0x00 payload))`.
//! The purpose (e.g. "waiting", "admission") is part of the MAC, so a token
//! issued for one purpose never verifies for another.

use super::bindings::platform::token;
use super::{Caller, Has};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use wasmtime::component::Linker;

/// Tokens larger than this are refused unread.
const MAX_TOKEN: usize = 4096;

fn mac(key: &[u8], purpose: &str, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(payload);
    mac
}

pub fn sign(key: &[u8], purpose: &str, payload: &[u8]) -> String {
    let sig = mac(key, purpose, payload).finalize().into_bytes();
    format!("{}.{}", B64.encode(payload), B64.encode(sig))
}

pub fn verify(key: &[u8], purpose: &str, token: &str) -> Option<Vec<u8>> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (body, sig) = token.split_once('.')?;
    let payload = B64.decode(body).ok()?;
    let sig = B64.decode(sig).ok()?;
    mac(key, purpose, &payload).verify_slice(&sig).ok()?;
    Some(payload)
}

/// The token capability's state: the caller, whose tenant's key signs.
pub struct TokenCtx {
    caller: Arc<Caller>,
}

impl TokenCtx {
    pub fn new(caller: Arc<Caller>) -> TokenCtx {
        TokenCtx { caller }
    }
}

impl token::Host for TokenCtx {
    async fn sign(&mut self, purpose: String, payload: Vec<u8>) -> wasmtime::Result<String> {
        if payload.len() > MAX_TOKEN {
            wasmtime::bail!(
                "token payload of {} bytes exceeds {MAX_TOKEN}",
                payload.len()
            );
        }
        Ok(sign(&self.caller.tenant.token_key, &purpose, &payload))
    }

    async fn verify(
        &mut self,
        purpose: String,
        token: String,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(verify(&self.caller.tenant.token_key, &purpose, &token))
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut TokenCtx,
) -> wasmtime::Result<()> {
    token::add_to_linker::<T, Has<TokenCtx>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_and_key_bind_the_token() {
        let t = sign(b"k1", "waiting", b"payload");
        assert_eq!(
            verify(b"k1", "waiting", &t).as_deref(),
            Some(&b"payload"[..])
        );
        assert_eq!(verify(b"k1", "admission", &t), None);
        assert_eq!(verify(b"k2", "waiting", &t), None);
        let (body, sig) = t.split_once('.').unwrap();
        let forged = format!("{}.{sig}", B64.encode(b"payloae"));
        assert_eq!(verify(b"k1", "waiting", &forged), None);
        assert_eq!(verify(b"k1", "waiting", body), None);
        assert_eq!(verify(b"k1", "waiting", &"x".repeat(5000)), None);
    }
}
