//! A tenant's secrets: the key that signs its waiting and reservation tokens
//! and its Standard Webhooks keys. Made on the tenant's first start and kept
//! in the store's metadata (hosts starting together agree on the first one
//! stored), so tokens and signatures stay valid across restarts and hosts.
//! The webhook key can be rotated; the old one keeps working for an overlap.

use crate::store::KvStore;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::time::Duration;

/// A tenant's Standard Webhooks keys. The current one signs and verifies;
/// after a rotation the previous one does too until `previous_until_ms`, so a
/// receiver that still has the old secret (or already the new one) verifies
/// every delivery, as Standard Webhooks allows with several signatures.
#[derive(Debug, Clone)]
pub struct WebhookKeys {
    pub current: Vec<u8>,
    pub previous: Option<(Vec<u8>, u64)>,
}

impl WebhookKeys {
    /// The keys that sign and verify at `now_ms`, current first.
    pub fn active(&self, now_ms: u64) -> Vec<&[u8]> {
        let mut keys = vec![self.current.as_slice()];
        if let Some((key, until)) = &self.previous
            && now_ms < *until
        {
            keys.push(key);
        }
        keys
    }

    /// A key in Standard Webhooks form (`whsec_…`), for receivers elsewhere.
    pub fn secret(key: &[u8]) -> String {
        format!("whsec_{}", B64.encode(key))
    }

    fn current_key(id: &str) -> String {
        format!("tenant/{id}/webhook_secret")
    }

    fn previous_key(id: &str) -> String {
        format!("tenant/{id}/webhook_secret_previous")
    }

    /// Load tenant `id`'s keys, making the current one on first start.
    pub async fn load_or_create(store: &dyn KvStore, id: &str) -> anyhow::Result<WebhookKeys> {
        let current = secret(store, &Self::current_key(id)).await?;
        let previous = store
            .meta_get(&Self::previous_key(id))
            .await
            .context("reading tenant secret")?
            .filter(|v| v.len() > 8)
            .map(|v| {
                let (until, key) = v.split_at(8);
                let until = u64::from_le_bytes(until.try_into().unwrap_or_default());
                (key.to_vec(), until)
            });
        Ok(WebhookKeys { current, previous })
    }

    /// Make a new current key for tenant `id`; the one it replaces keeps
    /// signing and verifying for `overlap` of the host's clock from `now_ms`.
    pub async fn rotate(
        store: &dyn KvStore,
        id: &str,
        now_ms: u64,
        overlap: Duration,
    ) -> anyhow::Result<WebhookKeys> {
        let old = Self::load_or_create(store, id).await?;
        let until = now_ms.saturating_add(overlap.as_millis() as u64);
        let mut previous = until.to_le_bytes().to_vec();
        previous.extend_from_slice(&old.current);
        // The old key is kept first, so a crash between the writes leaves
        // both names holding keys that still verify.
        store
            .meta_put(&Self::previous_key(id), previous)
            .await
            .context("storing the previous webhook secret")?;
        let current = rand::random::<[u8; 32]>().to_vec();
        store
            .meta_put(&Self::current_key(id), current.clone())
            .await
            .context("storing the new webhook secret")?;
        Ok(WebhookKeys {
            current,
            previous: Some((old.current, until)),
        })
    }
}

/// A tenant's keys.
pub struct Secrets {
    pub token_key: Vec<u8>,
    pub webhook: WebhookKeys,
}

impl Secrets {
    /// Load a tenant's secrets from the store, creating them on first start.
    pub async fn load_or_create(store: &dyn KvStore, id: &str) -> anyhow::Result<Secrets> {
        Ok(Secrets {
            token_key: secret(store, &format!("tenant/{id}/token_secret")).await?,
            webhook: WebhookKeys::load_or_create(store, id).await?,
        })
    }

    /// Keys that live only as long as the process (the host's own calls).
    pub fn ephemeral() -> Secrets {
        Secrets {
            token_key: rand::random::<[u8; 32]>().to_vec(),
            webhook: WebhookKeys {
                current: rand::random::<[u8; 32]>().to_vec(),
                previous: None,
            },
        }
    }
}

async fn secret(store: &dyn KvStore, key: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(v) = store.meta_get(key).await.context("reading tenant secret")? {
        return Ok(v);
    }
    let fresh: [u8; 32] = rand::random();
    // Hosts starting together on a shared store agree on the first one stored.
    store
        .meta_create(key, fresh.to_vec())
        .await
        .context("storing tenant secret")
}
