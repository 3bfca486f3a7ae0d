//! Storage accounting: what a write costs its tenant, by one rule for every
//! backend. A value counts one key and its key's and value's bytes; a
//! counter one key and its key's bytes plus 8; a delete or an expiry gives
//! back what the value counted. The embedded and DynamoDB backends gather a
//! transaction's changes here ([`UsageDelta`]) and store them with the
//! write; Redis applies the same rule inside its script (`redis/transact.lua`,
//! `redis/sweep.lua`), and the conformance suite
//! (`conformance::usage_is_counted_per_tenant`) holds all three to it.

use super::tenant_of;

/// What a counter costs in the usage figures, besides its key: an i64.
pub(crate) const COUNTER_BYTES: usize = 8;

/// One tenant's share of a write: keys and bytes added (or, negative,
/// given back), and the first key it touched (DynamoDB picks the usage item
/// to update by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantDelta {
    pub tenant: String,
    pub keys: i64,
    pub bytes: i64,
    pub first_key: String,
}

/// The usage changes of one write, by tenant.
#[derive(Debug, Default)]
pub(crate) struct UsageDelta(Vec<TenantDelta>);

impl UsageDelta {
    /// A put of `value_len` bytes over a value of `old_len` (none: a new key).
    pub fn put(&mut self, key: &str, value_len: usize, old_len: Option<u64>) {
        match old_len {
            Some(old) => self.add(key, 0, value_len as i64 - old as i64),
            None => self.add(key, 1, (key.len() + value_len) as i64),
        }
    }

    /// A value of `old_len` bytes deleted or expired (none: nothing was there).
    pub fn remove(&mut self, key: &str, old_len: Option<u64>) {
        if let Some(old) = old_len {
            self.add(key, -1, -((key.len() as u64 + old) as i64));
        }
    }

    /// A counter made by its first add.
    pub fn counter_created(&mut self, key: &str) {
        self.add(key, 1, (key.len() + COUNTER_BYTES) as i64);
    }

    fn add(&mut self, key: &str, keys: i64, bytes: i64) {
        let tenant = tenant_of(key);
        match self.0.iter_mut().find(|d| d.tenant == tenant) {
            Some(d) => {
                d.keys += keys;
                d.bytes += bytes;
            }
            None => self.0.push(TenantDelta {
                tenant: tenant.to_string(),
                keys,
                bytes,
                first_key: key.to_string(),
            }),
        }
    }

    /// The tenants whose usage changed.
    pub fn changed(self) -> impl Iterator<Item = TenantDelta> {
        self.0.into_iter().filter(|d| d.keys != 0 || d.bytes != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_values_counters_and_removals() {
        let mut d = UsageDelta::default();
        d.put("a/c/k1", 10, None); // 1 key, 6 + 10 bytes
        d.put("a/c/k2", 4, Some(9)); // same key count, 5 fewer bytes
        d.counter_created("a/c/n"); // 1 key, 5 + 8 bytes
        d.remove("b/c/gone", Some(2)); // another tenant gives back 1 key, 8 + 2 bytes
        d.remove("b/c/never", None); // nothing was there
        d.put("z/c/x", 1, Some(1)); // no change at all
        let changed: Vec<_> = d.changed().map(|t| (t.tenant, t.keys, t.bytes)).collect();
        assert_eq!(
            changed,
            vec![("a".into(), 2, 16 - 5 + 13), ("b".into(), -1, -10)]
        );
    }
}
