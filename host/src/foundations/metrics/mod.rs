//! The host's Prometheus metrics, served as text at `GET /metrics`.
//!
//! What is measured, and where:
//! - the edge: requests by protocol (`rest`, `grpc`), route and outcome code
//!   (`OK` or the contract's `ERROR_CODE_…`), and their latency;
//! - components: calls by outcome (`ok`, `error`, `trap`,
//!   `deadline_exceeded`, `memory_exceeded`), call latency, instantiations;
//! - the queue: messages by topic and outcome, and at scrape time the depth
//!   and the dead letters;
//! - rate-limit refusals and idempotent replays;
//! - tenants: calls by outcome, latency, quota refusals, guest time run and
//!   throttled, and at scrape time storage and queued messages;
//! - stages: host time by stage of the request path ([`stages`]), for the
//!   per-request budgets of the benchmarks;
//! - domain events: every info-level log line a component writes counts
//!   under its message ("reservation held", "reservation confirmed",
//!   "reservation expired", …). At most [`MAX_EVENTS_PER_COMPONENT`] distinct
//!   messages per component are kept apart, the rest count as `other`, so a
//!   component cannot blow up the series count.
//!
//! Hot paths hold pre-made handles (a counter is one atomic add); label
//! lookups happen only on the rarer paths.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

mod handles;
pub mod pulse;
pub mod stages;

pub use handles::{ComponentMetrics, RouteMetrics, TenantMetrics};
pub use stages::{Stage, Stages};

pub type Label = Cow<'static, str>;

/// Distinct event names kept per component.
pub const MAX_EVENTS_PER_COMPONENT: usize = 64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub protocol: Label,
    pub route: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub protocol: Label,
    pub route: Label,
    pub code: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub component: Label,
    pub outcome: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub component: Label,
    pub event: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: Label,
    pub outcome: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantOutcomeLabels {
    pub tenant: Label,
    pub outcome: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantQuotaLabels {
    pub tenant: Label,
    pub quota: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub class: Label,
    pub by: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: Label,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
/// A counter of seconds.
pub type Seconds = Counter<f64, AtomicU64>;

fn latency() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_25, 2.0, 16,
    ))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histograms<RouteLabels>,
    pub calls: Family<OutcomeLabels, Counter>,
    pub call_seconds: Histograms<ComponentLabels>,
    pub instantiations: Family<ComponentLabels, Counter>,
    pub messages: Family<TopicLabels, Counter>,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub connections_refused: Counter,
    pub idempotent_replays: Counter,
    pub queue_pending: Gauge,
    pub queue_dead_letters: Gauge,
    pub store_requests: Family<BackendLabels, Counter>,
    pub tenant_calls: Family<TenantOutcomeLabels, Counter>,
    pub tenant_call_seconds: Histograms<TenantLabels>,
    pub tenant_quota_hits: Family<TenantQuotaLabels, Counter>,
    pub tenant_storage_keys: Family<TenantLabels, Gauge>,
    pub tenant_storage_bytes: Family<TenantLabels, Gauge>,
    pub tenant_queue_pending: Family<TenantLabels, Gauge>,
    pub tenant_guest_seconds: Family<TenantLabels, Seconds>,
    pub tenant_throttled_seconds: Family<TenantLabels, Seconds>,
    /// Host time by stage of the request path.
    pub stages: Stages,
    events: Family<EventLabels, Counter>,
    event_names: Mutex<HashMap<String, HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tacos");
        let requests = Family::default();
        registry.register(
            "requests",
            "Edge requests by protocol, route and outcome code",
            requests.clone(),
        );
        let request_seconds: Histograms<RouteLabels> = Family::new_with_constructor(latency);
        registry.register(
            "request_duration_seconds",
            "Edge request latency by protocol and route",
            request_seconds.clone(),
        );
        let calls = Family::default();
        registry.register(
            "component_calls",
            "Component calls by outcome",
            calls.clone(),
        );
        let call_seconds: Histograms<ComponentLabels> = Family::new_with_constructor(latency);
        registry.register(
            "component_call_duration_seconds",
            "Component call latency, instantiation included",
            call_seconds.clone(),
        );
        let instantiations = Family::default();
        registry.register(
            "component_instantiations",
            "Fresh component instances made (one per call or message)",
            instantiations.clone(),
        );
        let messages = Family::default();
        registry.register(
            "queue_messages",
            "Queue deliveries by topic and outcome (acked, retried, dead_lettered)",
            messages.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by route class and bucket (ip, user)",
            rate_limited.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 and closed because the host had its maximum open",
            connections_refused.clone(),
        );
        let idempotent_replays = Counter::default();
        registry.register(
            "idempotent_replays",
            "Responses replayed for a repeated Idempotency-Key",
            idempotent_replays.clone(),
        );
        let queue_pending = Gauge::default();
        registry.register(
            "queue_pending_messages",
            "Messages waiting for delivery (due or delayed)",
            queue_pending.clone(),
        );
        let queue_dead_letters = Gauge::default();
        registry.register(
            "queue_dead_letters",
            "Messages in dead-letter topics",
            queue_dead_letters.clone(),
        );
        let store_requests = Family::default();
        registry.register(
            "store_requests",
            "Requests sent to Redis and DynamoDB (a pipeline or script counts once)",
            store_requests.clone(),
        );
        let tenant_calls = Family::default();
        registry.register(
            "tenant_calls",
            "Component calls by tenant and outcome",
            tenant_calls.clone(),
        );
        let tenant_call_seconds: Histograms<TenantLabels> = Family::new_with_constructor(latency);
        registry.register(
            "tenant_call_duration_seconds",
            "Component call latency by tenant",
            tenant_call_seconds.clone(),
        );
        let tenant_quota_hits = Family::default();
        registry.register(
            "tenant_quota_hits",
            "Refusals by a tenant quota, by tenant and quota",
            tenant_quota_hits.clone(),
        );
        let tenant_storage_keys = Family::default();
        registry.register(
            "tenant_storage_keys",
            "Keys a tenant stores (at scrape time)",
            tenant_storage_keys.clone(),
        );
        let tenant_storage_bytes = Family::default();
        registry.register(
            "tenant_storage_bytes",
            "Bytes a tenant stores, keys and values (at scrape time)",
            tenant_storage_bytes.clone(),
        );
        let tenant_queue_pending = Family::default();
        registry.register(
            "tenant_queue_pending_messages",
            "A tenant's messages waiting for delivery (at scrape time)",
            tenant_queue_pending.clone(),
        );
        let tenant_guest_seconds = Family::default();
        registry.register(
            "tenant_guest_seconds",
            "Time a tenant's component code ran (host calls not included)",
            tenant_guest_seconds.clone(),
        );
        let tenant_throttled_seconds = Family::default();
        registry.register(
            "tenant_throttled_seconds",
            "Time a tenant's calls slept for its cpu_ms_per_second quota",
            tenant_throttled_seconds.clone(),
        );
        let stage_seconds = Family::default();
        registry.register(
            "stage_seconds",
            "Host time by stage of the request path (spans nest: see the stages module)",
            stage_seconds.clone(),
        );
        let stage_entered = Family::default();
        registry.register(
            "stage_entered",
            "Times a stage of the request path was entered (instances, host calls, store reads, commits)",
            stage_entered.clone(),
        );
        let events = Family::default();
        registry.register(
            "component_events",
            "Info-level log lines of components, by message (domain events)",
            events.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            calls,
            call_seconds,
            instantiations,
            messages,
            rate_limited,
            connections_refused,
            idempotent_replays,
            queue_pending,
            queue_dead_letters,
            store_requests,
            tenant_calls,
            tenant_call_seconds,
            tenant_quota_hits,
            tenant_storage_keys,
            tenant_storage_bytes,
            tenant_queue_pending,
            tenant_guest_seconds,
            tenant_throttled_seconds,
            stages: Stages::new(&stage_seconds, &stage_entered),
            events,
            event_names: Mutex::default(),
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// Count a component's info-level log line as a domain event.
    pub fn event(&self, component: &str, message: &str) {
        let event = {
            let mut names = self.event_names.lock().unwrap_or_else(|e| e.into_inner());
            let seen = names.entry(component.to_string()).or_default();
            if seen.contains(message) {
                message.to_string()
            } else if seen.len() < MAX_EVENTS_PER_COMPONENT {
                seen.insert(message.to_string());
                message.to_string()
            } else {
                "other".to_string()
            }
        };
        self.events
            .get_or_create(&EventLabels {
                component: Cow::Owned(component.to_string()),
                event: Cow::Owned(event),
            })
            .inc();
    }

    /// Handles for one edge route.
    pub fn route(&self, protocol: &'static str, route: Label) -> RouteMetrics {
        let labels = RouteLabels {
            protocol: Cow::Borrowed(protocol),
            route,
        };
        RouteMetrics {
            ok: self.requests.get_or_create_owned(&RequestLabels {
                protocol: labels.protocol.clone(),
                route: labels.route.clone(),
                code: Cow::Borrowed("OK"),
            }),
            seconds: self.request_seconds.get_or_create_owned(&labels),
            labels,
        }
    }

    /// Handles for one tenant.
    pub fn tenant(&self, id: &str) -> TenantMetrics {
        let tenant: Label = Cow::Owned(id.to_string());
        TenantMetrics {
            ok: self.tenant_calls.get_or_create_owned(&TenantOutcomeLabels {
                tenant: tenant.clone(),
                outcome: Cow::Borrowed("ok"),
            }),
            seconds: self.tenant_call_seconds.get_or_create_owned(&TenantLabels {
                tenant: tenant.clone(),
            }),
            guest: self
                .tenant_guest_seconds
                .get_or_create_owned(&TenantLabels {
                    tenant: tenant.clone(),
                }),
            throttled: self
                .tenant_throttled_seconds
                .get_or_create_owned(&TenantLabels {
                    tenant: tenant.clone(),
                }),
            calls: self.tenant_calls.clone(),
            quota_hits: self.tenant_quota_hits.clone(),
            failed: Counter::default(),
            refused: Counter::default(),
            pulse: Default::default(),
            tenant,
        }
    }

    /// Handles for one component.
    pub fn component(&self, name: &str) -> ComponentMetrics {
        let labels = ComponentLabels {
            component: Cow::Owned(name.to_string()),
        };
        ComponentMetrics {
            ok: self.calls.get_or_create_owned(&OutcomeLabels {
                component: labels.component.clone(),
                outcome: Cow::Borrowed("ok"),
            }),
            seconds: self.call_seconds.get_or_create_owned(&labels),
            instantiations: self.instantiations.get_or_create_owned(&labels),
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn encodes_and_caps_event_names() {
        let m = Metrics::new();
        let r = m.route("rest", Cow::Borrowed("POST /api/v1/reservations"));
        r.observe(&m, None, Duration::from_millis(3));
        r.observe(&m, Some("ERROR_CODE_NOT_FOUND"), Duration::from_millis(1));
        for i in 0..MAX_EVENTS_PER_COMPONENT + 5 {
            m.event("reservation", &format!("event {i}"));
        }
        let text = m.encode();
        assert!(text.contains(
            r#"tacos_requests_total{protocol="rest",route="POST /api/v1/reservations",code="OK"} 1"#
        ), "{text}");
        assert!(text.contains(r#"code="ERROR_CODE_NOT_FOUND"} 1"#));
        assert!(
            text.contains(
                r#"tacos_component_events_total{component="reservation",event="other"} 5"#
            )
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
