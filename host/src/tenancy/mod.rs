//! Tenants: whose keys, topics, config and secrets a call uses.
//!
//! Every kv key and queue message is scoped by tenant inside the capability
//! layer, so isolation does not depend on component code. Until multi-tenancy
//! lands there is one tenant, `default`. Its secrets (for reservation tokens and
//! webhook signatures) are generated on first start and kept in the store, so
//! tokens and signatures stay valid across restarts.

use crate::store::KvStore;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    /// Signs waiting and reservation tokens (the `token` capability); never enters a component.
    pub token_key: Vec<u8>,
    /// Standard Webhooks key (`whsec_…` decoded); never enters a component.
    pub webhook_key: Vec<u8>,
}

impl Tenant {
    /// Load the tenant's secrets from the store, creating them on first start.
    pub async fn load_or_create(store: &dyn KvStore, id: &str) -> anyhow::Result<Tenant> {
        let token_key = secret(store, &format!("tenant/{id}/token_secret")).await?;
        let webhook_key = secret(store, &format!("tenant/{id}/webhook_secret")).await?;
        Ok(Tenant {
            id: id.to_string(),
            token_key,
            webhook_key,
        })
    }

    /// The webhook secret in Standard Webhooks form, for receivers elsewhere.
    pub fn webhook_secret(&self) -> String {
        format!("whsec_{}", B64.encode(&self.webhook_key))
    }
}

async fn secret(store: &dyn KvStore, key: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(v) = store.meta_get(key).await.context("reading tenant secret")? {
        return Ok(v);
    }
    let fresh: [u8; 32] = rand::random();
    store
        .meta_put(key, fresh.to_vec())
        .await
        .context("storing tenant secret")?;
    Ok(fresh.to_vec())
}
