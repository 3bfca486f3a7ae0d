//! A tenant as this host serves it ([`Served`]): its keys and limits
//! (`tenancy::Tenant`) and the slot that serves each of its services and
//! topics, the bundle's or its own. [`Tenants`] is the routing table: by id,
//! and by host name; how a request picks its tenant is
//! [`Tenants::named_by`]'s doc.
//!
//! It lives in the runtime, not in `tenancy`, because slots hold compiled
//! component versions, and those are the runtime's.

use super::Slot;
use crate::tenancy::Tenant;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

/// A tenant and its slots. Replaced whole when the tenant changes; calls in
/// flight finish on the one they started with.
pub struct Served {
    pub tenant: Arc<Tenant>,
    /// One per bundle service, in the bundle's order: the bundle's slot, or
    /// the tenant's own when it overrides the service.
    pub slots: Vec<Arc<Slot>>,
    /// Slot names this tenant has its own slot for.
    pub own: Vec<String>,
    services: HashMap<String, Arc<Slot>>,
    topics: HashMap<String, Arc<Slot>>,
}

impl Served {
    pub fn new(tenant: Arc<Tenant>, slots: Vec<Arc<Slot>>, own: Vec<String>) -> Served {
        let mut services = HashMap::new();
        let mut topics = HashMap::new();
        for slot in &slots {
            for s in &slot.serves {
                services.insert(s.clone(), slot.clone());
            }
            for t in &slot.consumes {
                topics.insert(t.clone(), slot.clone());
            }
        }
        Served {
            tenant,
            slots,
            own,
            services,
            topics,
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
}

/// A host name another tenant has already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host name `{host}` already picks tenant `{tenant}`")]
pub struct HostTaken {
    pub host: String,
    pub tenant: String,
}

/// A served tenant reads as its tenant: `served.id`, `served.quotas`.
impl Deref for Served {
    type Target = Tenant;

    fn deref(&self) -> &Tenant {
        &self.tenant
    }
}

/// What a request names as its tenant.
pub enum Named {
    Tenant(Arc<Served>),
    /// A name that is no tenant here.
    Unknown(String),
    Nothing,
}

/// The tenants of a running host, by id and host name. Immutable: a change
/// makes a new table (the runtime keeps it in an `ArcSwap`).
#[derive(Default, Clone)]
pub struct Tenants {
    by_id: HashMap<String, Arc<Served>>,
    by_host: HashMap<String, String>,
}

impl Tenants {
    pub fn get(&self, id: &str) -> Option<&Arc<Served>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every tenant, by id.
    pub fn all(&self) -> Vec<&Arc<Served>> {
        let mut all: Vec<_> = self.by_id.values().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// This table with `tenant` added or replaced. A host name another
    /// tenant already has is refused.
    pub fn with(&self, tenant: Arc<Served>) -> Result<Tenants, HostTaken> {
        let mut next = self.without(&tenant.id);
        for host in &tenant.hosts {
            let host = host.to_ascii_lowercase();
            if let Some(other) = next.by_host.get(&host) {
                return Err(HostTaken {
                    host,
                    tenant: other.clone(),
                });
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
    fn ports_are_stripped() {
        assert_eq!(strip_port("acme.example:8000"), "acme.example");
        assert_eq!(strip_port("[::1]:8000"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
    }
}
