//! Replays the admin changes other hosts recorded (see [`crate::sync`]) on
//! this host, through the same parsing and checks as the admin routes.

use super::Shared;
use super::{deploy, secrets, tenants};
use crate::sync::{Change, POLL, Sync};
use std::sync::Arc;
use std::time::Duration;

/// Poll the log and replay what other hosts changed, forever.
pub async fn run(shared: Arc<Shared>, sync: Arc<Sync>) {
    let mut waited = Duration::ZERO;
    loop {
        tokio::time::sleep(POLL).await;
        match sync.fetch(&mut waited).await {
            Ok(changes) => {
                for (change, body) in changes {
                    replay(&shared, change, &body).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading other hosts' changes failed"),
        }
    }
}

async fn replay(shared: &Shared, change: Change, body: &[u8]) {
    let runtime = &shared.runtime;
    let outcome: anyhow::Result<()> = match &change {
        Change::Swap { service } => match deploy::swap_request(service, body) {
            Ok(req) => runtime.swap(req).await.map(drop).map_err(Into::into),
            Err(e) => Err(anyhow::anyhow!(e)),
        },
        Change::Rollback { service } => runtime
            .rollback(service)
            .await
            .map(drop)
            .map_err(Into::into),
        Change::TenantPut { id } => match tenants::spec(id, body) {
            Ok(spec) => runtime
                .apply_tenant(spec)
                .await
                .map(drop)
                .map_err(Into::into),
            Err(e) => Err(anyhow::anyhow!(e)),
        },
        Change::TenantRemove { id } => {
            runtime.remove_tenant(id).await;
            Ok(())
        }
        Change::TenantSecret { id } => secrets::reload(runtime, id).await,
    };
    match outcome {
        Ok(()) => tracing::info!(?change, "applied another host's change"),
        Err(e) => {
            tracing::error!(?change, error = %format!("{e:#}"), "another host's change does not apply here")
        }
    }
}
