//! The runtime: one engine, the component slots of a bundle, and the call path.
//!
//! A call resolves its service to a slot, takes the slot's current version
//! (an `ArcSwap`, so a later swap never disturbs calls in flight), and runs it
//! in a fresh `Store` and instance: isolation by construction, nothing kept
//! between calls. The store ([`call`]) carries the call's deadline (checked
//! on epoch ticks), a memory limit, the capabilities' view of the caller, and
//! the guest time it runs, charged to its tenant (which may have it sleep:
//! ADR 0010).
//!
//! Back-pressure: top-level calls (edge requests, queue deliveries) take a
//! permit sized so that, with rpc chains at most [`engine::MAX_CALL_DEPTH`]
//! deep, the instance pool can never run dry; excess callers wait.

mod call;
mod component;
pub mod engine;
mod instance;
mod served;
pub mod source;
pub mod state;
pub mod swap;
mod tenants;
pub mod watch;

pub use call::{CallContext, CallError};
pub use component::{ComponentVersion, LoadRequest, Prepared, content_hash, with_custom_section};
pub use served::{Named, Served, Tenants};

use crate::bundle::Bundle;
use crate::capabilities::bindings;
use crate::capabilities::webhook::HttpClient;
use crate::foundations::clock::Clock;
use crate::foundations::json::Codec;
use crate::foundations::metrics::{ComponentMetrics, Metrics};
use crate::store::{KvStore, Leased, QueueStore, Seen};
use crate::tenancy::Quotas;
use anyhow::Context;
use arc_swap::ArcSwap;
use bindings::consumer::exports::tacos::platform::message_handler::Delivery;
use instance::Invoke;
use state::CallState;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use wasmtime::Engine;
use wasmtime::component::Linker;

/// A named place in the bundle that a component version fills.
pub struct Slot {
    pub name: String,
    pub serves: Vec<String>,
    pub consumes: Vec<String>,
    /// Named builds the bundle ships for this slot (`chaos`, `standard`).
    pub builds: BTreeMap<String, PathBuf>,
    /// The version calls go to; replaced atomically by a swap.
    pub current: ArcSwap<ComponentVersion>,
    /// Earlier versions, most recent last, for rollback.
    history: std::sync::Mutex<Vec<Arc<ComponentVersion>>>,
    /// One swap or rollback of this slot at a time.
    swap_lock: tokio::sync::Mutex<()>,
}

impl Slot {
    /// A slot like `like` (same services, topics, builds) running `version`.
    pub fn like(like: &Slot, version: Arc<ComponentVersion>) -> Slot {
        Slot {
            name: like.name.clone(),
            serves: like.serves.clone(),
            consumes: like.consumes.clone(),
            builds: like.builds.clone(),
            current: ArcSwap::new(version),
            history: Default::default(),
            swap_lock: Default::default(),
        }
    }
}

/// Host settings components can see through `config`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How clients (and webhooks) reach this host, e.g. `http://127.0.0.1:8000`.
    pub public_url: String,
}

pub struct Runtime {
    pub engine: Engine,
    linker: Linker<CallState>,
    compiled: component::CompiledCache,
    /// The bundle's slots: what tenants run unless they override a service.
    slots: Vec<Arc<Slot>>,
    /// The tenants served, by id and host name.
    tenants: ArcSwap<Tenants>,
    /// One `apply_tenant` or `remove_tenant` at a time.
    tenants_lock: tokio::sync::Mutex<()>,
    /// The tenant of the host's own calls (self-checks): no services, no data.
    system: Arc<Served>,
    /// The bundle's default quotas for every tenant.
    quotas: Quotas,
    /// The bundle's demo events: a tenant's unless it names its own.
    events: Vec<crate::tenancy::DemoEvent>,
    pub kv: Arc<dyn KvStore>,
    pub queue: Arc<dyn QueueStore>,
    pub clock: Arc<Clock>,
    pub settings: Settings,
    pub codec: Codec,
    pub http: HttpClient,
    /// `settings.public_url`, shared with every call's capabilities.
    public_url: Arc<str>,
    /// Wakes the queue dispatcher (a message was sent, or time moved).
    pub queue_wakeup: Arc<Notify>,
    permits: Semaphore,
    pub metrics: Arc<Metrics>,
    /// Metric handles by component (slot) name.
    component_metrics: HashMap<String, ComponentMetrics>,
}

/// Everything the runtime is built from.
pub struct RuntimeParts {
    pub kv: Arc<dyn KvStore>,
    pub queue: Arc<dyn QueueStore>,
    pub clock: Arc<Clock>,
    pub settings: Settings,
    pub cache_dir: std::path::PathBuf,
    /// The client webhooks go out through.
    pub http: HttpClient,
}

impl Runtime {
    /// Compile, check and prepare every component of `bundle`.
    pub fn new(bundle: &Bundle, parts: RuntimeParts) -> anyhow::Result<Arc<Runtime>> {
        let engine = engine::build(&parts.cache_dir)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        state::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("adding WASI and tacos:platform to the linker")?;

        let compiled = component::CompiledCache::default();
        let mut slots = Vec::new();
        for spec in &bundle.services {
            let bytes = std::fs::read(&spec.component).with_context(|| {
                format!(
                    "service `{}`: reading {}",
                    spec.name,
                    spec.component.display()
                )
            })?;
            let version = component::load(
                &engine,
                &linker,
                &compiled,
                LoadRequest {
                    name: &spec.name,
                    bytes: &bytes,
                    origin: &spec.component.display().to_string(),
                    policy: bundle.policy.for_component(&spec.name),
                    config: spec.config.clone(),
                    must_consume: !spec.consumes.is_empty(),
                    now_ms: parts.clock.now_ms(),
                },
            )?;
            slots.push(Arc::new(Slot {
                name: spec.name.clone(),
                serves: spec.serves.clone(),
                consumes: spec.consumes.clone(),
                builds: spec.builds.clone(),
                current: ArcSwap::from_pointee(version),
                history: Default::default(),
                swap_lock: Default::default(),
            }));
        }
        let top_level = (engine::POOL_INSTANCES / (engine::MAX_CALL_DEPTH + 1)) as usize;
        let metrics = Arc::new(Metrics::new());
        let component_metrics = slots
            .iter()
            .map(|s| (s.name.clone(), metrics.component(&s.name)))
            .collect();
        let system = Arc::new(tenants::system_tenant());
        Ok(Arc::new(Runtime {
            engine,
            linker,
            compiled,
            slots,
            tenants: Default::default(),
            tenants_lock: Default::default(),
            system,
            quotas: bundle.quotas,
            events: bundle.events.clone(),
            kv: parts.kv,
            queue: parts.queue,
            clock: parts.clock,
            public_url: parts.settings.public_url.as_str().into(),
            settings: parts.settings,
            codec: Codec::new()?,
            http: parts.http,
            queue_wakeup: Arc::new(Notify::new()),
            permits: Semaphore::new(top_level),
            metrics,
            component_metrics,
        }))
    }

    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// The bundle's slot named `name`.
    pub fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// A new context for a top-level call of `tenant`.
    pub fn context(
        &self,
        tenant: &Arc<Served>,
        trace_id: Arc<str>,
        timeout: Duration,
    ) -> CallContext {
        CallContext::new(
            tenant.clone(),
            trace_id,
            timeout,
            Seen::new(self.kv.clone()),
        )
    }

    /// Call `service`/`method` with an encoded request.
    pub async fn call(
        self: &Arc<Self>,
        ctx: &CallContext,
        service: &str,
        method: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        self.call_served(ctx, service, method, request).await.0
    }

    /// [`Runtime::call`], also saying which version served it (`None` when
    /// the call reached no component).
    pub async fn call_served(
        self: &Arc<Self>,
        ctx: &CallContext,
        service: &str,
        method: &str,
        request: &[u8],
    ) -> (Result<Vec<u8>, CallError>, Option<Arc<ComponentVersion>>) {
        let Some(slot) = ctx.tenant.service(service) else {
            return (Err(CallError::UnknownService(service.to_string())), None);
        };
        if ctx.depth > engine::MAX_CALL_DEPTH {
            return (
                Err(CallError::Denied(format!(
                    "rpc chain deeper than {}",
                    engine::MAX_CALL_DEPTH
                ))),
                None,
            );
        }
        // A top-level call takes a place among its tenant's calls in flight
        // (refused at the quota), then a share of the instance pool (waits).
        let _tenant_permit = match ctx.depth {
            0 => match ctx.tenant.enter() {
                Ok(p) => p,
                Err(q) => return (Err(CallError::Quota(q)), None),
            },
            _ => None,
        };
        let _permit = match ctx.depth {
            0 => match self.permits.acquire().await {
                Ok(p) => Some(p),
                Err(_) => {
                    return (
                        Err(CallError::Internal("host is shutting down".into())),
                        None,
                    );
                }
            },
            _ => None,
        };
        let version = slot.current.load_full();
        let full = format!("{service}/{method}");
        let invoke = Invoke::Call {
            method: &full,
            request,
        };
        let result = self.invoke(ctx.clone(), &version, invoke).await;
        (result, Some(version))
    }

    /// Deliver a queue message to the component of its tenant consuming its topic.
    pub async fn deliver(
        self: &Arc<Self>,
        msg: &Leased,
        trace_id: Arc<str>,
    ) -> Result<(), Undelivered> {
        let tenant = self
            .tenant(&msg.tenant)
            .ok_or_else(|| Undelivered::NoTenant(msg.tenant.clone()))?;
        let slot = tenant.consumer(&msg.topic).ok_or_else(|| {
            Undelivered::NoConsumer(format!("no component consumes topic `{}`", msg.topic))
        })?;
        // Deliveries wait for a place among the tenant's calls in flight.
        let _tenant_permit = tenant.wait_to_enter().await;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Undelivered::Failed("host is shutting down".to_string()))?;
        let version = slot.current.load_full();
        if !version.is_consumer() {
            return Err(Undelivered::NoConsumer(format!(
                "`{}` cannot consume messages",
                version.name
            )));
        }
        // The consumer's own deadline applies (see `invoke`).
        let ctx = self.context(&tenant, trace_id, instance::NO_DEADLINE);
        let delivery = Delivery {
            id: format!("{:016x}", msg.id),
            topic: msg.topic.clone(),
            payload: msg.payload.clone(),
            attempt: msg.attempt,
        };
        let invoke = Invoke::Deliver {
            topic: &msg.topic,
            delivery: &delivery,
        };
        match self.invoke(ctx, &version, invoke).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Undelivered::Failed(e.to_string())),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug)]
pub enum Undelivered {
    /// Its tenant is not on this host (removed, or not yet added).
    NoTenant(String),
    /// Nothing of its tenant consumes its topic.
    NoConsumer(String),
    /// The consumer failed or could not run: retry.
    Failed(String),
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undelivered::NoTenant(t) => write!(f, "tenant `{t}` is not on this host"),
            Undelivered::NoConsumer(m) | Undelivered::Failed(m) => f.write_str(m),
        }
    }
}
