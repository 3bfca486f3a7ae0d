//! Tenants: whose keys, topics, config, secrets, component versions and limits
//! a call uses.
//!
//! One host serves many tenants (ticket sellers). Every kv key, counter, queue
//! message and idempotency record is scoped by tenant inside the capability
//! layer, so isolation does not depend on component code: a component cannot
//! even name another tenant's data. A tenant sees the bundle's services; it may
//! override one (its own component, build, config or policy), and then it has a
//! slot of its own that bundle-wide swaps leave alone. Its [`Quotas`] bound
//! memory per instance, call deadlines, calls in flight, requests per second,
//! storage and queue depth, each refused for that tenant only, and the guest
//! time its calls may run per second, which throttles rather than refuses
//! ([`cpu`]).
//!
//! Secrets (for reservation tokens and webhook signatures) are generated on a
//! tenant's first start and kept in the store, so tokens and signatures stay
//! valid across restarts, and a removed tenant that comes back finds its data.
//! The operator can rotate the webhook secret ([`WebhookKeys::rotate`]); both
//! keys sign and verify until the overlap ends.
//!
//! Which slot serves a tenant's service, and which tenant a request names,
//! is the runtime's (`runtime::served`): a tenant's own slots are component
//! versions, a floor above this one.

pub mod cpu;
mod quotas;
pub mod rate;
mod secrets;

pub use quotas::{Quotas, TenantQuotaError};
pub use secrets::{Secrets, WebhookKeys};

use crate::foundations::auth::{Auth, TenantAuth};
use crate::foundations::metrics::TenantMetrics;
use crate::foundations::policy::Policy;
use rate::TenantBucket;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The tenant of a bundle that names none, and of requests that name none.
pub const DEFAULT_TENANT: &str = "default";
/// The header that names a request's tenant.
pub const TENANT_HEADER: &str = "x-tenant-id";
/// The JWT claim that names the tenant a user token is for.
pub const TENANT_CLAIM: &str = "tenant";

/// Why a tenant's spec is refused before anything is built for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("tenant id `{0}` must be 1 to 63 lowercase letters, digits and '-' (a DNS label)")]
    BadId(String),
    #[error("quota {0} must be at least 1")]
    ZeroQuota(&'static str),
    #[error("quota deadline_ms must be at most {0}")]
    DeadlineTooLong(u64),
    #[error("a tenant's name must be 1 to 100 characters with no control characters")]
    BadName,
}

/// Whether `name` may be shown as a tenant's name.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let chars = name.chars().count();
    match (1..=100).contains(&chars) && !name.chars().any(char::is_control) {
        true => Ok(()),
        false => Err(SpecError::BadName),
    }
}

/// Whether `id` may name a tenant: a DNS label (1 to 63 lowercase letters,
/// digits and `-`, not starting or ending with `-`), so it can be a host name's
/// first label and can never contain the `/` that separates key scopes.
pub fn check_id(id: &str) -> Result<(), SpecError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(SpecError::BadId(id.to_string()))
    }
}

/// Where a tenant's own component for a service comes from.
#[derive(Debug, Clone)]
pub enum ComponentSource {
    File(PathBuf),
    /// One of the builds the bundle names for the service.
    Build(String),
    Bytes {
        bytes: Vec<u8>,
        origin: String,
    },
}

/// Merge `changes` over `config`: a value replaces, an empty value removes
/// the key (a swap's `--config`, a tenant's service config).
pub fn merge_config(config: &mut BTreeMap<String, String>, changes: BTreeMap<String, String>) {
    for (k, v) in changes {
        if v.is_empty() {
            config.remove(&k);
        } else {
            config.insert(k, v);
        }
    }
}

/// What a tenant changes of one bundle service.
#[derive(Debug, Clone, Default)]
pub struct ServiceOverride {
    /// Its own component (a pin, e.g. a canary); the bundle's when `None`.
    pub component: Option<ComponentSource>,
    /// Merged over the bundle's config; an empty value removes a key.
    pub config: BTreeMap<String, String>,
}

/// An event created at start-up if it does not exist yet.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoEvent {
    pub event_id: String,
    pub name: String,
    pub seat_count: i32,
    pub price_amount: i64,
    #[serde(default = "krw")]
    pub currency: String,
    #[serde(default = "hundred")]
    pub admission_per_second: i32,
}

fn krw() -> String {
    "KRW".into()
}
fn hundred() -> i32 {
    100
}

/// A tenant as the bundle or the admin API describes it.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub id: String,
    /// What buyers see (the web app's title); the id when `None`.
    pub name: Option<String>,
    /// Host names that pick this tenant, besides `{id}.…`.
    pub hosts: Vec<String>,
    /// Over the bundle's default quotas, field by field.
    pub quotas: Quotas,
    /// Replaces the bundle's policy for every service of this tenant.
    pub policy: Option<Policy>,
    /// By service (slot) name.
    pub services: BTreeMap<String, ServiceOverride>,
    /// Demo events to seed; the bundle's when `None`.
    pub events: Option<Vec<DemoEvent>>,
    /// Its own token keys; the host's when `None`.
    pub auth: Option<TenantAuth>,
}

impl TenantSpec {
    /// A tenant that takes everything from the bundle.
    pub fn plain(id: &str) -> TenantSpec {
        TenantSpec {
            id: id.to_string(),
            name: None,
            hosts: Vec::new(),
            quotas: Quotas::default(),
            policy: None,
            services: BTreeMap::new(),
            events: None,
            auth: None,
        }
    }
}

/// A tenant on a running host: its keys, limits and metrics (the runtime
/// adds the slots that serve it, `runtime::Served`). Replaced whole when the
/// tenant changes; calls in flight finish on the one they started with.
pub struct Tenant {
    pub id: String,
    /// What buyers see; the id unless the spec names it.
    pub name: String,
    /// Signs waiting and reservation tokens (the `token` capability); never enters a component.
    pub token_key: Vec<u8>,
    /// Standard Webhooks keys (`whsec_…` decoded); never enter a component.
    /// Swapped in place when the operator rotates them.
    webhook: arc_swap::ArcSwap<WebhookKeys>,
    pub hosts: Vec<String>,
    /// Verifies its users' tokens when it has keys of its own.
    pub auth: Option<Arc<Auth>>,
    /// Effective quotas (the bundle's defaults under the tenant's own).
    pub quotas: Quotas,
    in_flight: Option<Arc<Semaphore>>,
    bucket: Option<TenantBucket>,
    cpu: Option<cpu::CpuBudget>,
    pub metrics: TenantMetrics,
    pub events: Vec<DemoEvent>,
}

/// How a [`Tenant`] is put together (see `Runtime::apply_tenant`).
pub struct TenantParts {
    pub id: String,
    pub name: Option<String>,
    pub secrets: Secrets,
    pub auth: Option<Arc<Auth>>,
    pub hosts: Vec<String>,
    pub quotas: Quotas,
    pub bucket: Option<TenantBucket>,
    pub metrics: TenantMetrics,
    pub events: Vec<DemoEvent>,
}

impl Tenant {
    pub fn new(p: TenantParts) -> Tenant {
        Tenant {
            name: p.name.unwrap_or_else(|| p.id.clone()),
            id: p.id,
            token_key: p.secrets.token_key,
            webhook: arc_swap::ArcSwap::from_pointee(p.secrets.webhook),
            hosts: p.hosts,
            auth: p.auth,
            in_flight: p
                .quotas
                .concurrent_calls
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            cpu: p
                .quotas
                .cpu_ms_per_second
                .map(|ms| cpu::CpuBudget::new(ms, std::time::Instant::now())),
            quotas: p.quotas,
            bucket: p.bucket,
            metrics: p.metrics,
            events: p.events,
        }
    }

    /// A place among the tenant's calls in flight, or the quota error.
    pub fn enter(&self) -> Result<Option<OwnedSemaphorePermit>, TenantQuotaError> {
        let Some(sem) = &self.in_flight else {
            return Ok(None);
        };
        sem.clone().try_acquire_owned().map(Some).map_err(|_| {
            self.metrics.quota_hit("concurrent_calls");
            TenantQuotaError::new(
                &self.id,
                format!(
                    "has {} calls in flight, its concurrent_calls quota",
                    self.quotas.concurrent_calls.unwrap_or(0)
                ),
                None,
            )
        })
    }

    /// How many of its calls are in flight, when its `concurrent_calls`
    /// quota counts them.
    pub fn calls_in_flight(&self) -> Option<usize> {
        let sem = self.in_flight.as_ref()?;
        let quota = self.quotas.concurrent_calls.unwrap_or(0) as usize;
        Some(quota.saturating_sub(sem.available_permits()))
    }

    /// Wait for a place among the tenant's calls in flight (queue deliveries
    /// wait rather than fail).
    pub async fn wait_to_enter(&self) -> Option<OwnedSemaphorePermit> {
        let sem = self.in_flight.as_ref()?;
        sem.clone().acquire_owned().await.ok()
    }

    /// Take a token from the tenant's requests-per-second bucket.
    pub fn admit_request(&self) -> Result<(), TenantQuotaError> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        bucket.check().map_err(|retry_after| {
            self.metrics.quota_hit("requests_per_second");
            TenantQuotaError::new(
                &self.id,
                format!(
                    "exceeded its quota of {} requests/s",
                    self.quotas.requests_per_second.unwrap_or(0)
                ),
                Some(retry_after),
            )
        })
    }

    /// Charge `ran` of guest time to the tenant: how long its call should
    /// sleep when that puts it over its `cpu_ms_per_second` quota.
    pub fn charge_guest_time(&self, ran: Duration, now: Instant) -> Option<Duration> {
        self.metrics.guest_time(ran);
        self.cpu.as_ref()?.charge(ran, now)
    }

    /// The webhook keys now.
    pub fn webhook_keys(&self) -> Arc<WebhookKeys> {
        self.webhook.load_full()
    }

    /// Take rotated webhook keys (from [`WebhookKeys::rotate`] or the store).
    pub fn set_webhook_keys(&self, keys: WebhookKeys) {
        self.webhook.store(Arc::new(keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dns_labels() {
        for ok in ["default", "acme", "a", "tenant-7", "0"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "a/b", "-a", "a-", "a.b", "a_b", &"x".repeat(64)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
