//! Tenants on a running host: add, change and remove them while traffic flows.
//!
//! Applying a tenant makes every check a swap makes: a service the tenant
//! overrides (its own component or build, its config, or a policy of its
//! own) gets a slot of its own whose version is compiled, checked against the
//! world and the policy, prepared and self-checked before the tenant is
//! switched in; services it leaves alone share the bundle's slot (and follow
//! bundle-wide swaps). The tenant table is replaced atomically, so calls in
//! flight finish on the tenant they started with. Removing a tenant stops
//! routing to it and keeps its data: re-adding it finds everything, and its
//! queued messages wait (see the dispatcher) rather than being lost.

use super::served::HostTaken;
use super::{CallError, ComponentVersion, Runtime, Served, Slot, Tenants, component};
use crate::foundations::metrics::Metrics;
use crate::tenancy::rate::{Rate, TenantBucket};
use crate::tenancy::{self, Quotas, Secrets, SpecError, Tenant, TenantParts, TenantSpec};
use anyhow::Context;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tacos_proto::common::v1::{ErrorCode, Money};
use tacos_proto::internal::v1::CreateEventRequest;

/// The host's own tenant (self-checks): no services, no stored data, and
/// metrics of its own, not among the tenants' on `/metrics`.
pub(super) fn system_tenant() -> Served {
    let tenant = Tenant::new(TenantParts {
        id: "@host".into(),
        name: None,
        secrets: Secrets::ephemeral(),
        auth: None,
        hosts: Vec::new(),
        quotas: Quotas::default(),
        bucket: None,
        metrics: Metrics::new().tenant("@host"),
        events: Vec::new(),
    });
    Served::new(Arc::new(tenant), Vec::new(), Vec::new())
}

/// Why a tenant was not applied; what ran before keeps running.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    HostTaken(#[from] HostTaken),
    #[error(
        "tenant `{tenant}` overrides service `{service}`, which the bundle does not have (services: {known})"
    )]
    UnknownService {
        tenant: String,
        service: String,
        known: String,
    },
    #[error("tenant `{tenant}`: auth: {reason:#}")]
    Auth {
        tenant: String,
        reason: anyhow::Error,
    },
    #[error("tenant `{tenant}` refused, nothing changed: {reason:#}")]
    Refused {
        tenant: String,
        reason: anyhow::Error,
    },
}

impl TenantError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TenantError::Refused { .. } => ErrorCode::FailedPrecondition,
            _ => ErrorCode::InvalidArgument,
        }
    }
}

impl Runtime {
    /// The tenant `id`, if it is on this host.
    pub fn tenant(&self, id: &str) -> Option<Arc<Served>> {
        self.tenants.load().get(id).cloned()
    }

    /// The tenant table now.
    pub fn tenants(&self) -> Arc<Tenants> {
        self.tenants.load_full()
    }

    /// Add tenant `spec.id`, or replace it; returns it and whether it is new.
    pub async fn apply_tenant(
        self: &Arc<Self>,
        spec: TenantSpec,
    ) -> Result<(Arc<Served>, bool), TenantError> {
        let _one_at_a_time = self.tenants_lock.lock().await;
        tenancy::check_id(&spec.id)?;
        if let Some(name) = &spec.name {
            tenancy::check_name(name)?;
        }
        spec.quotas.check()?;
        if let Some(name) = spec.services.keys().find(|n| self.slot(n).is_none()) {
            let known: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
            return Err(TenantError::UnknownService {
                tenant: spec.id.clone(),
                service: name.clone(),
                known: known.join(", "),
            });
        }
        let auth = match &spec.auth {
            Some(a) => Some(Arc::new(
                crate::foundations::auth::Auth::for_tenant(a).map_err(|reason| {
                    TenantError::Auth {
                        tenant: spec.id.clone(),
                        reason,
                    }
                })?,
            )),
            None => None,
        };
        let refused = |reason: anyhow::Error| TenantError::Refused {
            tenant: spec.id.clone(),
            reason,
        };
        let previous = self.tenant(&spec.id);
        let quotas = spec.quotas.over(self.quotas);
        let mut slots = Vec::with_capacity(self.slots.len());
        let mut own = Vec::new();
        for base in &self.slots {
            let overrides = spec.services.get(&base.name);
            if overrides.is_none() && spec.policy.is_none() {
                slots.push(base.clone());
                continue;
            }
            let version = self
                .tenant_version(&spec, base)
                .await
                .with_context(|| format!("service `{}`", base.name))
                .map_err(refused)?;
            slots.push(Arc::new(Slot::like(base, version)));
            own.push(base.name.clone());
        }
        let secrets = Secrets::load_or_create(self.kv.as_ref(), &spec.id)
            .await
            .map_err(refused)?;
        let bucket = quotas.requests_per_second.and_then(|rps| {
            let rate = Rate {
                per_second: rps,
                burst: quotas.burst.unwrap_or(rps.saturating_mul(2)),
            };
            TenantBucket::new(rate, self.clock.clone())
        });
        let metrics = match &previous {
            Some(p) => p.metrics.clone(),
            None => self.metrics.tenant(&spec.id),
        };
        let tenant = Tenant::new(TenantParts {
            id: spec.id.clone(),
            name: spec.name,
            secrets,
            auth,
            hosts: spec.hosts,
            quotas,
            bucket,
            metrics,
            events: spec.events.unwrap_or_else(|| self.events.clone()),
        });
        let tenant = Arc::new(Served::new(Arc::new(tenant), slots, own));
        let next = self.tenants.load().with(tenant.clone())?;
        self.tenants.store(Arc::new(next));
        tracing::info!(tenant = %tenant.id, own = ?tenant.own, created = previous.is_none(), "tenant applied");
        Ok((tenant, previous.is_none()))
    }

    /// The version of `base`'s service for a tenant that overrides it,
    /// checked and self-checked.
    async fn tenant_version(
        self: &Arc<Self>,
        spec: &TenantSpec,
        base: &Arc<Slot>,
    ) -> anyhow::Result<Arc<ComponentVersion>> {
        let current = base.current.load_full();
        let mut config = (*current.config).clone();
        let overrides = spec.services.get(&base.name).cloned().unwrap_or_default();
        tenancy::merge_config(&mut config, overrides.config);
        let policy = match &spec.policy {
            Some(p) => p.for_component(&base.name),
            None => (*current.policy).clone(),
        };
        let version = match overrides.component {
            Some(source) => {
                let (bytes, origin) = super::source::read(base, source).await?;
                self.load_version(base, policy, bytes, origin, config)
                    .await?
            }
            None if spec.policy.is_some() => Arc::new(component::prepare(
                &self.engine,
                &self.linker,
                current.component.clone(),
                current.hash.clone(),
                component::LoadRequest {
                    name: &base.name,
                    bytes: &[],
                    origin: &current.origin,
                    policy,
                    config,
                    must_consume: !base.consumes.is_empty(),
                    now_ms: self.clock.now_ms(),
                },
            )?),
            None => Arc::new(current.with_config(config, self.clock.now_ms())),
        };
        self.self_check(&version).await?;
        Ok(version)
    }

    /// Stop serving tenant `id`; its data stays in the store.
    pub async fn remove_tenant(&self, id: &str) -> Option<Arc<Served>> {
        let _one_at_a_time = self.tenants_lock.lock().await;
        let tenants = self.tenants.load();
        let removed = tenants.get(id)?.clone();
        self.tenants.store(Arc::new(tenants.without(id)));
        tracing::info!(tenant = %id, "tenant removed");
        Some(removed)
    }

    /// Create the tenant's demo events that do not exist yet.
    pub async fn seed_events(self: &Arc<Self>, tenant: &Arc<Served>) -> anyhow::Result<()> {
        for e in &tenant.events {
            let req = CreateEventRequest {
                event_id: e.event_id.clone(),
                name: e.name.clone(),
                seat_count: e.seat_count,
                price: Some(Money {
                    amount: e.price_amount,
                    currency: e.currency.clone(),
                }),
                admission_per_second: e.admission_per_second,
                description: String::new(),
            };
            let ctx = self.context(
                tenant,
                crate::foundations::trace::new_trace_id().into(),
                Duration::from_secs(120),
            );
            match self
                .call(
                    &ctx,
                    "tacos.internal.v1.EventAdmin",
                    "CreateEvent",
                    &req.encode_to_vec(),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(tenant = %tenant.id, event_id = %e.event_id, seats = e.seat_count, "demo event created")
                }
                Err(CallError::App(err)) if err.code == ErrorCode::AlreadyExists as i32 => {}
                Err(err) => {
                    anyhow::bail!(
                        "tenant `{}`: creating demo event {}: {err}",
                        tenant.id,
                        e.event_id
                    );
                }
            }
        }
        Ok(())
    }
}
