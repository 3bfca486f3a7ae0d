//! Per-tenant quotas: what one tenant may take of a shared host.
//!
//! Unset means unlimited (but for what the host itself bounds: the policy's
//! memory and deadline per component, the instance pool). A bundle's
//! `[quotas]` are every tenant's defaults; a tenant's own override them field
//! by field. Memory and deadline quotas cap the policy's limits (the smaller
//! wins); the rest are checked by the edge (requests/s), the runtime (calls in
//! flight, guest time) and the kv and queue capabilities (storage, queue
//! depth), and an exceeded one (guest time aside: that one slows calls down)
//! answers `ERROR_CODE_QUOTA_EXCEEDED` (HTTP 429, gRPC
//! RESOURCE_EXHAUSTED) to that tenant only.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode, ErrorDetail};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Linear memory per component instance, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Longest component call, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Requests and deliveries running at once; more requests are refused,
    /// deliveries wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_calls: Option<u32>,
    /// API requests per second (a token bucket over all of the tenant's routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// The bucket's size; twice the rate when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Keys stored (values and counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_keys: Option<u64>,
    /// Bytes stored (keys and values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// Messages waiting for delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
    /// Guest time (ms) the tenant's calls may run per second, summed over
    /// its calls: 1000 is one core. Calls over it are slowed, not refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_second: Option<u32>,
}

impl Quotas {
    /// These quotas, with `defaults` where these set nothing.
    pub fn over(self, defaults: Quotas) -> Quotas {
        Quotas {
            memory_mb: self.memory_mb.or(defaults.memory_mb),
            deadline_ms: self.deadline_ms.or(defaults.deadline_ms),
            concurrent_calls: self.concurrent_calls.or(defaults.concurrent_calls),
            requests_per_second: self.requests_per_second.or(defaults.requests_per_second),
            burst: self.burst.or(defaults.burst),
            storage_keys: self.storage_keys.or(defaults.storage_keys),
            storage_bytes: self.storage_bytes.or(defaults.storage_bytes),
            queue_depth: self.queue_depth.or(defaults.queue_depth),
            cpu_ms_per_second: self.cpu_ms_per_second.or(defaults.cpu_ms_per_second),
        }
    }

    /// Zero quotas make a tenant unusable; say so at load.
    pub fn check(&self) -> Result<(), super::SpecError> {
        let zero = [
            ("memory_mb", self.memory_mb.map(u64::from)),
            ("deadline_ms", self.deadline_ms),
            ("concurrent_calls", self.concurrent_calls.map(u64::from)),
            (
                "requests_per_second",
                self.requests_per_second.map(u64::from),
            ),
            ("burst", self.burst.map(u64::from)),
            ("cpu_ms_per_second", self.cpu_ms_per_second.map(u64::from)),
        ]
        .into_iter()
        .find(|(_, v)| *v == Some(0));
        if let Some((name, _)) = zero {
            return Err(super::SpecError::ZeroQuota(name));
        }
        match self.deadline_ms {
            Some(ms) if ms > crate::foundations::policy::MAX_DEADLINE_MS => Err(
                super::SpecError::DeadlineTooLong(crate::foundations::policy::MAX_DEADLINE_MS),
            ),
            _ => Ok(()),
        }
    }

    /// Whether storage writes need checking at all.
    pub fn limits_storage(&self) -> bool {
        self.storage_keys.is_some() || self.storage_bytes.is_some()
    }

    /// The memory limit of an instance whose policy allows `policy_bytes`.
    pub fn memory_bytes(&self, policy_bytes: usize) -> usize {
        match self.memory_mb {
            Some(mb) => policy_bytes.min((mb as usize) << 20),
            None => policy_bytes,
        }
    }

    /// The deadline of a call whose policy allows `policy`.
    pub fn deadline(&self, policy: Duration) -> Duration {
        match self.deadline_ms {
            Some(ms) => policy.min(Duration::from_millis(ms)),
            None => policy,
        }
    }
}

/// A tenant went over one of its quotas.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tenant `{tenant}` {what}")]
pub struct TenantQuotaError {
    pub tenant: String,
    pub what: String,
    pub retry_after: Option<Duration>,
}

impl TenantQuotaError {
    pub fn new(tenant: &str, what: String, retry_after: Option<Duration>) -> TenantQuotaError {
        TenantQuotaError {
            tenant: tenant.to_string(),
            what,
            retry_after,
        }
    }

    /// The contract's error, with `retry_after_seconds` when there is one.
    pub fn to_proto(&self, trace_id: &str) -> ProtoError {
        let mut details = Vec::new();
        if let Some(after) = self.retry_after {
            details.push(ErrorDetail {
                field: "retry_after_seconds".into(),
                reason: "quota exceeded".into(),
                value: (after.as_secs_f64().ceil().max(1.0) as u64).to_string(),
            });
        }
        ProtoError {
            code: ErrorCode::QuotaExceeded as i32,
            message: self.to_string(),
            trace_id: trace_id.to_string(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_quotas_override_defaults_and_cap_policies() {
        let defaults = Quotas {
            memory_mb: Some(64),
            concurrent_calls: Some(32),
            ..Quotas::default()
        };
        let own = Quotas {
            memory_mb: Some(16),
            ..Quotas::default()
        };
        let q = own.over(defaults);
        assert_eq!((q.memory_mb, q.concurrent_calls), (Some(16), Some(32)));
        assert_eq!(q.memory_bytes(64 << 20), 16 << 20);
        assert_eq!(
            q.memory_bytes(8 << 20),
            8 << 20,
            "the policy's smaller limit wins"
        );
        assert_eq!(q.deadline(Duration::from_secs(5)), Duration::from_secs(5));
        let zero = Quotas {
            concurrent_calls: Some(0),
            ..Quotas::default()
        };
        assert_eq!(
            zero.check(),
            Err(super::super::SpecError::ZeroQuota("concurrent_calls"))
        );
    }
}
