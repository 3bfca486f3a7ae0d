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
//! [`Tenants`] is the routing table: by id, and by host name. How a request
//! picks its tenant is [`Tenants::named_by`]'s doc.

pub mod cpu;
mod quotas;
mod secrets;

pub use quotas::{Quotas, TenantQuotaError};
pub use secrets::{Secrets, WebhookKeys};

use crate::auth::{Auth, TenantAuth};
use crate::bundle::DemoEvent;
use crate::edge::limits::TenantBucket;
use crate::metrics::TenantMetrics;
use crate::policy::Policy;
use crate::runtime::Slot;
use std::collections::{BTreeMap, HashMap};
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

/// Whether `id` may name a tenant: a DNS label (1 to 63 lowercase letters,
/// digits and `-`, not starting or ending with `-`), so it can be a host name's
/// first label and can never contain the `/` that separates key scopes.
pub fn check_id(id: &str) -> Result<(), String> {
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
        Err(format!(
            "tenant id `{id}` must be 1 to 63 lowercase letters, digits and '-' (a DNS label)"
        ))
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

/// What a tenant changes of one bundle service.
#[derive(Debug, Clone, Default)]
pub struct ServiceOverride {
    /// Its own component (a pin, e.g. a canary); the bundle's when `None`.
    pub component: Option<ComponentSource>,
    /// Merged over the bundle's config; an empty value removes a key.
    pub config: BTreeMap<String, String>,
}

/// A tenant as the bundle or the admin API describes it.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub id: String,
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
            hosts: Vec::new(),
            quotas: Quotas::default(),
            policy: None,
            services: BTreeMap::new(),
            events: None,
            auth: None,
        }
    }
}

/// A tenant on a running host. Replaced whole when the tenant changes; calls
/// in flight finish on the one they started with.
pub struct Tenant {
    pub id: String,
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
    /// One per bundle service, in the bundle's order: the bundle's slot, or
    /// the tenant's own when it overrides the service.
    pub slots: Vec<Arc<Slot>>,
    /// Slot names this tenant has its own slot for.
    pub own: Vec<String>,
    services: HashMap<String, Arc<Slot>>,
    topics: HashMap<String, Arc<Slot>>,
    in_flight: Option<Arc<Semaphore>>,
    bucket: Option<TenantBucket>,
    cpu: Option<cpu::CpuBudget>,
    pub metrics: TenantMetrics,
    pub events: Vec<DemoEvent>,
}

/// How a [`Tenant`] is put together (see `Runtime::apply_tenant`).
pub struct TenantParts {
    pub id: String,
    pub secrets: Secrets,
    pub auth: Option<Arc<Auth>>,
    pub hosts: Vec<String>,
    pub quotas: Quotas,
    pub slots: Vec<Arc<Slot>>,
    pub own: Vec<String>,
    pub bucket: Option<TenantBucket>,
    pub metrics: TenantMetrics,
    pub events: Vec<DemoEvent>,
}

impl Tenant {
    pub fn new(p: TenantParts) -> Tenant {
        let mut services = HashMap::new();
        let mut topics = HashMap::new();
        for slot in &p.slots {
            for s in &slot.serves {
                services.insert(s.clone(), slot.clone());
            }
            for t in &slot.consumes {
                topics.insert(t.clone(), slot.clone());
            }
        }
        Tenant {
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
            slots: p.slots,
            own: p.own,
            services,
            topics,
            bucket: p.bucket,
            metrics: p.metrics,
            events: p.events,
        }
    }

    /// The slot serving a protobuf service for this tenant.
    pub fn service(&self, service: &str) -> Option<&Arc<Slot>> {
        self.services.get(service)
    }

    /// The slot consuming a topic for this tenant.
    pub fn consumer(&self, topic: &str) -> Option<&Arc<Slot>> {
        self.topics.get(topic)
    }

    pub fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.name == name)
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

/// What a request names as its tenant.
pub enum Named {
    Tenant(Arc<Tenant>),
    /// A name that is no tenant here.
    Unknown(String),
    Nothing,
}

/// The tenants of a running host, by id and host name. Immutable: a change
/// makes a new table (the runtime keeps it in an `ArcSwap`).
#[derive(Default, Clone)]
pub struct Tenants {
    by_id: HashMap<String, Arc<Tenant>>,
    by_host: HashMap<String, String>,
}

impl Tenants {
    pub fn get(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every tenant, by id.
    pub fn all(&self) -> Vec<&Arc<Tenant>> {
        let mut all: Vec<_> = self.by_id.values().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// This table with `tenant` added or replaced. A host name another
    /// tenant already has is refused.
    pub fn with(&self, tenant: Arc<Tenant>) -> Result<Tenants, String> {
        let mut next = self.without(&tenant.id);
        for host in &tenant.hosts {
            let host = host.to_ascii_lowercase();
            if let Some(other) = next.by_host.get(&host) {
                return Err(format!("host name `{host}` already picks tenant `{other}`"));
            }
            next.by_host.insert(host, tenant.id.clone());
        }
        next.by_id.insert(tenant.id.clone(), tenant);
        Ok(next)
    }

    /// This table without tenant `id`.
    pub fn without(&self, id: &str) -> Tenants {
        let mut next = self.clone();
        next.by_id.remove(id);
        next.by_host.retain(|_, t| t != id);
        next
    }

    /// The tenant a request names, in this order:
    ///
    /// 1. the `x-tenant-id` header (an unknown id is refused);
    /// 2. the host name (`Host`, or `:authority` in HTTP/2): one of a
    ///    tenant's `hosts`, or a name whose first label is a tenant id
    ///    (`acme.tickets.example`, `acme.localhost`); other names name none;
    /// 3. the user token's `tenant` claim, on signed-in routes (the caller
    ///    passes it; an unknown one is refused);
    ///
    /// and otherwise nothing (the caller falls back to `default`).
    pub fn named_by(&self, header: Option<&str>, host: Option<&str>, claim: Option<&str>) -> Named {
        let lookup = |id: &str| match self.by_id.get(id) {
            Some(t) => Named::Tenant(t.clone()),
            None => Named::Unknown(id.to_string()),
        };
        if let Some(id) = header {
            return lookup(id);
        }
        if let Some(host) = host.map(strip_port).filter(|h| !h.is_empty()) {
            let host = host.to_ascii_lowercase();
            if let Some(id) = self.by_host.get(&host) {
                return lookup(id);
            }
            if host.parse::<std::net::IpAddr>().is_err()
                && let Some((label, _)) = host.split_once('.')
                && let Some(t) = self.by_id.get(label)
            {
                return Named::Tenant(t.clone());
            }
        }
        match claim {
            Some(id) => lookup(id),
            None => Named::Nothing,
        }
    }
}

/// `host:port` → `host` (and `[v6]:port` → `[v6]`).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
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

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("acme.example:8000"), "acme.example");
        assert_eq!(strip_port("[::1]:8000"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
    }
}
