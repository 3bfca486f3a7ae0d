//! Hot swap: replace the component (or the config) of a running service while
//! traffic flows, with every check a start-up load makes, and roll it back.
//!
//! A swap compiles the new component (through the in-memory cache by content
//! hash, then wasmtime's on-disk cache), type-checks it against the slot's
//! world, checks the slot's policy, runs its self-check call, and only then
//! stores it into the slot's `ArcSwap`. Calls in flight keep the `Arc` of the
//! version they started on and finish there; new calls get the new version.
//! The replaced version goes on the slot's history, so a rollback is one
//! pointer swap with nothing to compile. Swapping in what already runs (same
//! bytes, same config) changes nothing.

use super::component::{self, ComponentVersion, LoadRequest};
use super::source::{self, SourceError};
use super::{CallError, Runtime, Slot};
use crate::tenancy::{ComponentSource, merge_config};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tacos_proto::common::v1::ErrorCode;

/// The method a swap calls on the new version before switching.
pub use tacos_proto::SELF_CHECK_METHOD as SELF_CHECK;
/// How long a self-check may take.
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Versions kept per slot for rollback.
const HISTORY: usize = 16;

pub struct SwapRequest {
    pub service: String,
    /// The component to install; `None` keeps the running one (a
    /// config-only swap).
    pub source: Option<ComponentSource>,
    /// Merged over the current config; an empty value removes the key.
    pub config: BTreeMap<String, String>,
    pub self_check: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no service `{0}` in this bundle (services: {1})")]
    UnknownService(String, String),
    #[error("{0}")]
    Invalid(String),
    /// The new version failed a check; the old one keeps serving.
    #[error("swap of `{service}` refused, the running version keeps serving: {reason:#}")]
    Refused {
        service: String,
        reason: anyhow::Error,
    },
}

impl SwapError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SwapError::UnknownService(..) => ErrorCode::NotFound,
            SwapError::Invalid(_) => ErrorCode::InvalidArgument,
            SwapError::Refused { .. } => ErrorCode::FailedPrecondition,
        }
    }
}

/// A version as operators see it.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub hash: String,
    pub origin: String,
    /// When it became current (host clock, ms since the epoch).
    pub since_ms: u64,
    pub calls: u64,
    pub failures: u64,
    pub config: BTreeMap<String, String>,
}

impl VersionInfo {
    pub fn of(v: &ComponentVersion) -> VersionInfo {
        VersionInfo {
            hash: v.hash.clone(),
            origin: v.origin.clone(),
            since_ms: v.since_ms.load(Ordering::Relaxed),
            calls: v.calls.load(Ordering::Relaxed),
            failures: v.failures.load(Ordering::Relaxed),
            config: (*v.config).clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SwapOutcome {
    pub service: String,
    /// False when the request named what already runs.
    pub changed: bool,
    pub previous: VersionInfo,
    pub current: VersionInfo,
    /// From the request to the switch, checks included.
    pub took_ms: f64,
}

impl SwapOutcome {
    fn new(
        slot: &Slot,
        previous: &Arc<ComponentVersion>,
        current: &Arc<ComponentVersion>,
        started: Instant,
    ) -> SwapOutcome {
        SwapOutcome {
            service: slot.name.clone(),
            changed: !Arc::ptr_eq(previous, current),
            previous: VersionInfo::of(previous),
            current: VersionInfo::of(current),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ServiceInfo {
    pub name: String,
    pub serves: Vec<String>,
    pub consumes: Vec<String>,
    pub builds: Vec<String>,
    pub current: VersionInfo,
    /// Earlier versions, most recent first: what rollbacks return to.
    pub history: Vec<VersionInfo>,
}

impl Runtime {
    fn slot_or_err(&self, service: &str) -> Result<&Arc<Slot>, SwapError> {
        self.slot(service).ok_or_else(|| {
            let names: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
            SwapError::UnknownService(service.to_string(), names.join(", "))
        })
    }

    /// Every slot with its current version and history.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.slots
            .iter()
            .map(|slot| ServiceInfo {
                name: slot.name.clone(),
                serves: slot.serves.clone(),
                consumes: slot.consumes.clone(),
                builds: slot.builds.keys().cloned().collect(),
                current: VersionInfo::of(&slot.current.load()),
                history: slot
                    .history
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .rev()
                    .map(|v| VersionInfo::of(v))
                    .collect(),
            })
            .collect()
    }

    /// Check and install a new version of a service.
    pub async fn swap(self: &Arc<Self>, req: SwapRequest) -> Result<SwapOutcome, SwapError> {
        let started = Instant::now();
        let slot = self.slot_or_err(&req.service)?.clone();
        let _one_at_a_time = slot.swap_lock.lock().await;
        let current = slot.current.load_full();
        let refused = |reason: anyhow::Error| SwapError::Refused {
            service: slot.name.clone(),
            reason,
        };

        let mut config = (*current.config).clone();
        merge_config(&mut config, req.config);
        let next = match req.source {
            None => Arc::new(current.with_config(config, self.clock.now_ms())),
            Some(source) => {
                let (bytes, origin) = source::read(&slot, source).await.map_err(|e| match e {
                    SourceError::UnknownBuild { .. } => SwapError::Invalid(e.to_string()),
                    SourceError::Unreadable { .. } => refused(e.into()),
                })?;
                self.load_version(&slot, (*current.policy).clone(), bytes, origin, config)
                    .await
                    .map_err(refused)?
            }
        };
        if next.same_as(&current) {
            return Ok(SwapOutcome::new(&slot, &current, &current, started));
        }
        if req.self_check {
            self.self_check(&next).await.map_err(refused)?;
        }
        next.since_ms.store(self.clock.now_ms(), Ordering::Relaxed);
        {
            let mut history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
            history.push(current.clone());
            let excess = history.len().saturating_sub(HISTORY);
            history.drain(..excess);
        }
        slot.current.store(next.clone());
        tracing::info!(service = %slot.name, from = current.short_hash(), to = next.short_hash(), origin = %next.origin, "service swapped");
        Ok(SwapOutcome::new(&slot, &current, &next, started))
    }

    /// Return a service to the version it ran before its last swap.
    pub async fn rollback(self: &Arc<Self>, service: &str) -> Result<SwapOutcome, SwapError> {
        let started = Instant::now();
        let slot = self.slot_or_err(service)?.clone();
        let _one_at_a_time = slot.swap_lock.lock().await;
        let previous = slot
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .ok_or_else(|| {
                SwapError::Invalid(format!(
                    "service `{}` has no earlier version to roll back to",
                    slot.name
                ))
            })?;
        previous
            .since_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let replaced = slot.current.swap(previous.clone());
        tracing::info!(service = %slot.name, from = replaced.short_hash(), to = previous.short_hash(), "service rolled back");
        Ok(SwapOutcome::new(&slot, &replaced, &previous, started))
    }

    /// Compile and check `bytes` for `slot` under `policy` (off the async
    /// threads: a cold compile takes a while).
    pub(super) async fn load_version(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        policy: crate::foundations::policy::ComponentPolicy,
        bytes: Vec<u8>,
        origin: String,
        config: BTreeMap<String, String>,
    ) -> anyhow::Result<Arc<ComponentVersion>> {
        let runtime = self.clone();
        let name = slot.name.clone();
        let must_consume = !slot.consumes.is_empty();
        let now_ms = self.clock.now_ms();
        let version = tokio::task::spawn_blocking(move || {
            component::load(
                &runtime.engine,
                &runtime.linker,
                &runtime.compiled,
                LoadRequest {
                    name: &name,
                    bytes: &bytes,
                    origin: &origin,
                    policy,
                    config,
                    must_consume,
                    now_ms,
                },
            )
        })
        .await??;
        Ok(Arc::new(version))
    }

    /// Run a version's self-check: OK, or why not.
    pub async fn self_check(
        self: &Arc<Self>,
        version: &Arc<ComponentVersion>,
    ) -> anyhow::Result<()> {
        let ctx = self.context(
            &self.system,
            crate::foundations::trace::new_trace_id().into(),
            SELF_CHECK_TIMEOUT,
        );
        let invoke = super::instance::Invoke::Call {
            method: SELF_CHECK,
            request: &[],
        };
        match self.invoke(ctx, version, invoke).await {
            Ok(_) => Ok(()),
            Err(CallError::App(e)) => Err(anyhow::anyhow!(
                "self-check answered {}: {}",
                ErrorCode::try_from(e.code)
                    .map(|c| c.as_str_name())
                    .unwrap_or("an unknown error code"),
                e.message
            )),
            Err(e) => Err(anyhow::anyhow!("self-check: {e}")),
        }
    }

    /// Self-check every service's current version (at start-up).
    pub async fn self_check_all(self: &Arc<Self>) -> anyhow::Result<()> {
        for slot in &self.slots {
            let version = slot.current.load_full();
            self.self_check(&version).await.map_err(|e| {
                anyhow::anyhow!("service `{}` ({}): {e:#}", slot.name, version.origin)
            })?;
        }
        Ok(())
    }
}
