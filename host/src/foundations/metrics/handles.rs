//! Pre-made metric handles of one route, component or tenant: what the hot
//! paths hold, so recording a success is one atomic add and label lookups
//! happen only for failures. Made by [`Metrics`]'s `route`, `component` and
//! `tenant`.

use super::{
    ComponentLabels, Label, Metrics, OutcomeLabels, RequestLabels, RouteLabels, Seconds,
    TenantOutcomeLabels, TenantQuotaLabels,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::borrow::Cow;
use std::time::Duration;

/// Pre-made handles of one edge route.
#[derive(Clone)]
pub struct RouteMetrics {
    pub(super) labels: RouteLabels,
    pub(super) ok: Counter,
    pub(super) seconds: Histogram,
}

impl RouteMetrics {
    /// One request: `code` is `None` for success, else the error code's name.
    pub fn observe(&self, metrics: &Metrics, code: Option<&'static str>, took: Duration) {
        self.seconds.observe(took.as_secs_f64());
        match code {
            None => {
                self.ok.inc();
            }
            Some(code) => {
                metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        protocol: self.labels.protocol.clone(),
                        route: self.labels.route.clone(),
                        code: Cow::Borrowed(code),
                    })
                    .inc();
            }
        }
    }
}

/// Pre-made handles of one component (by service name, across versions).
#[derive(Clone)]
pub struct ComponentMetrics {
    pub(super) labels: ComponentLabels,
    pub(super) ok: Counter,
    pub(super) seconds: Histogram,
    pub instantiations: Counter,
}

impl ComponentMetrics {
    /// One call: `outcome` is `None` for success.
    pub fn observe(&self, metrics: &Metrics, outcome: Option<&'static str>, took: Duration) {
        self.seconds.observe(took.as_secs_f64());
        match outcome {
            None => {
                self.ok.inc();
            }
            Some(outcome) => {
                metrics
                    .calls
                    .get_or_create(&OutcomeLabels {
                        component: self.labels.component.clone(),
                        outcome: Cow::Borrowed(outcome),
                    })
                    .inc();
            }
        }
    }
}

/// Pre-made handles of one tenant.
#[derive(Clone)]
pub struct TenantMetrics {
    pub(super) tenant: Label,
    pub(super) ok: Counter,
    pub(super) seconds: Histogram,
    pub(super) guest: Seconds,
    pub(super) throttled: Seconds,
    pub(super) calls: Family<TenantOutcomeLabels, Counter>,
    pub(super) quota_hits: Family<TenantQuotaLabels, Counter>,
    /// Totals of this tenant object (not exported; the families are).
    pub(super) failed: Counter,
    pub(super) refused: Counter,
    /// What the operator's console charts.
    pub pulse: std::sync::Arc<super::pulse::Pulse>,
}

impl TenantMetrics {
    /// One component call of the tenant: `outcome` is `None` for success.
    pub fn observe(&self, outcome: Option<&'static str>, took: Duration) {
        self.seconds.observe(took.as_secs_f64());
        match outcome {
            None => {
                self.ok.inc();
            }
            Some(outcome) => {
                self.failed.inc();
                self.calls
                    .get_or_create(&TenantOutcomeLabels {
                        tenant: self.tenant.clone(),
                        outcome: Cow::Borrowed(outcome),
                    })
                    .inc();
            }
        }
    }

    /// Guest time the tenant's calls ran.
    pub fn guest_time(&self, ran: Duration) {
        self.guest.inc_by(ran.as_secs_f64());
    }

    /// Time one of its calls slept for the tenant's guest-time quota.
    pub fn throttled(&self, slept: Duration) {
        self.throttled.inc_by(slept.as_secs_f64());
    }

    /// Guest seconds run and seconds throttled, for `tacos tenants`.
    pub fn guest_totals(&self) -> (f64, f64) {
        (self.guest.get(), self.throttled.get())
    }

    /// A refusal by one of the tenant's quotas.
    pub fn quota_hit(&self, quota: &'static str) {
        self.refused.inc();
        self.quota_hits
            .get_or_create(&TenantQuotaLabels {
                tenant: self.tenant.clone(),
                quota: Cow::Borrowed(quota),
            })
            .inc();
    }

    /// Totals for `tacos tenants`: calls that succeeded, calls that failed,
    /// quota refusals.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.ok.get(), self.failed.get(), self.refused.get())
    }
}
