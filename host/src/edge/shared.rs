//! What the edge's routes share ([`Shared`]): the runtime, the dispatcher, the live feeds,
//! the stores, the admin and user auth settings, the limits and the fleet's
//! change log. The composition root (`host`) fills it; the edge only reads it.

use super::conn::ConnLimits;
use super::limits::RateLimits;
use crate::foundations::auth::Auth;
use crate::live::Live;
use crate::queue::Dispatcher;
use crate::runtime::Runtime;
use crate::store::open::Stores;
use crate::sync::{Change, Sync};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// What the edge and admin routes share.
pub struct Shared {
    pub runtime: Arc<Runtime>,
    pub dispatcher: Arc<Dispatcher>,
    /// The live feeds (WebSocket and gRPC streams).
    pub live: Arc<Live>,
    pub stores: Stores,
    pub admin_token: Option<String>,
    /// Whether and where an admin token is required, for the banner.
    pub admin_summary: String,
    pub auth: Auth,
    /// How tokens are checked, for the banner.
    pub auth_summary: String,
    pub idempotency_window: Duration,
    pub rate_limits: RateLimits,
    pub connections: ConnLimits,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seed a tenant's demo events when it is added.
    pub seed_events: bool,
    /// Whether anyone may get a user token by naming a user (a developer's
    /// host: loopback, or turned on by the operator).
    pub demo_sign_in: bool,
    /// The log of runtime changes, when other hosts share the store.
    pub sync: Option<Arc<Sync>>,
}

impl Shared {
    /// Record an admin change for the other hosts on the store, and say in
    /// `answer` whether they will make it too.
    pub async fn publish(&self, change: Change, body: &[u8], answer: &mut serde_json::Value) {
        let Some(sync) = &self.sync else { return };
        let hosts = match sync.publish(change, body).await {
            Ok(()) => "every host".to_string(),
            Err(e) => {
                tracing::error!(error = %e, "recording a change for the other hosts failed");
                format!("this host only: recording it for the others failed ({e})")
            }
        };
        answer["applied_on"] = hosts.into();
    }

    /// Advance the virtual clock, persist it, and wake the dispatcher.
    pub async fn advance_clock(&self, by: Duration) -> anyhow::Result<u64> {
        let now = self
            .runtime
            .clock
            .advance(by)
            .context("the clock is not virtual")?;
        self.stores
            .kv
            .meta_put(
                crate::foundations::clock::VIRTUAL_NOW_KEY,
                now.to_le_bytes().to_vec(),
            )
            .await
            .context("persisting the virtual clock")?;
        self.runtime.queue_wakeup.notify_one();
        Ok(now)
    }
}
