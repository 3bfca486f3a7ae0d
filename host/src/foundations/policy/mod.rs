//! Policies: what each component may use, deny by default.
//!
//! A policy file (`policies/*.toml`) grants each component, by name, the
//! `tacos:platform` capabilities it may import, the services it may call over
//! `rpc`, the topics it may send to, the hosts it may post webhooks to, and its
//! limits. Secrets (token and webhook keys) never enter a component: the
//! `token` and `webhook` capabilities use them on the component's behalf. A component that imports anything it was not granted is refused at
//! load with a message naming the import, so a swap can never widen what a
//! service may do. The WASI interfaces Rust's standard library imports (cli,
//! io, clocks, random, filesystem without preopens) are granted to every
//! component; the host gives them no environment, files or sockets.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The `tacos:platform` capabilities a policy can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Kv,
    Queue,
    Clock,
    Rpc,
    Config,
    Log,
    Webhook,
    Token,
}

impl Capability {
    /// The WIT interface this capability grants.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Kv => "tacos:platform/kv",
            Capability::Queue => "tacos:platform/queue",
            Capability::Clock => "tacos:platform/clock",
            Capability::Rpc => "tacos:platform/rpc",
            Capability::Config => "tacos:platform/config",
            Capability::Log => "tacos:platform/log",
            Capability::Webhook => "tacos:platform/webhook",
            Capability::Token => "tacos:platform/token",
        }
    }

    fn name(self) -> &'static str {
        &self.interface()["tacos:platform/".len()..]
    }
}

/// WASI interfaces every component gets (what Rust's std imports); the host
/// configures them with nothing to reach.
const WASI_BASELINE: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// Resource limits of one component call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one call, rpc calls it makes included.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Linear memory of one instance.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
}

fn default_deadline_ms() -> u64 {
    5_000
}
fn default_memory_mb() -> u64 {
    64
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: default_deadline_ms(),
            memory_mb: default_memory_mb(),
        }
    }
}

/// The longest deadline a policy or quota may give one call (10 minutes).
pub const MAX_DEADLINE_MS: u64 = 600_000;

/// Limits no call could run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("deadline_ms {0} is not from 1 to {MAX_DEADLINE_MS}")]
    Deadline(u64),
    #[error("memory_mb {0} is not from 1 to 4096")]
    Memory(u64),
}

impl Limits {
    /// Refuse limits no call could run with.
    pub fn check(&self) -> Result<(), LimitsError> {
        if !(1..=MAX_DEADLINE_MS).contains(&self.deadline_ms) {
            return Err(LimitsError::Deadline(self.deadline_ms));
        }
        if !(1..=4096).contains(&self.memory_mb) {
            return Err(LimitsError::Memory(self.memory_mb));
        }
        Ok(())
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mb as usize) << 20
    }
}

/// What one component may do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentPolicy {
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Services (full protobuf names) it may call over `rpc`.
    #[serde(default)]
    pub calls: Vec<String>,
    /// Topics it may send to.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Where it may deliver webhooks: `self` (this host's own webhook
    /// routes), `name:port` or `name:*` (any port, written out on purpose).
    #[serde(default)]
    pub webhook_hosts: Vec<String>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// A policy file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub defaults: Limits,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentPolicy>,
}

impl Policy {
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Policy> {
        let policy: Policy =
            toml::from_str(text).with_context(|| format!("parsing policy {origin}"))?;
        policy
            .defaults
            .check()
            .map_err(|e| anyhow::anyhow!("policy {origin}: [defaults]: {e}"))?;
        for (name, c) in &policy.components {
            if let Some(limits) = &c.limits {
                limits
                    .check()
                    .map_err(|e| anyhow::anyhow!("policy {origin}: [components.{name}]: {e}"))?;
            }
            for h in &c.webhook_hosts {
                let valid = h == "self"
                    || h.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty()
                            && !host.ends_with(':')
                            && (port == "*" || port.parse::<u16>().is_ok_and(|p| p > 0))
                    });
                if !valid {
                    bail!(
                        "policy {origin}: [components.{name}] webhook_hosts entry `{h}` needs a port (`{h}:8080`, or `{h}:*` for any), or is `self`"
                    );
                }
            }
        }
        Ok(policy)
    }

    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading policy {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The grant of `component`; an unnamed component gets nothing.
    pub fn for_component(&self, component: &str) -> ComponentPolicy {
        let mut p = self.components.get(component).cloned().unwrap_or_default();
        p.limits.get_or_insert(self.defaults);
        p
    }
}

impl ComponentPolicy {
    pub fn limits(&self) -> Limits {
        self.limits.unwrap_or_default()
    }

    pub fn grants(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    /// Check a component's imports against this grant (`imports` are
    /// interface names as the component states them, versions included).
    pub fn check_imports<'a>(
        &self,
        component: &str,
        imports: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<()> {
        for import in imports {
            let unversioned = import.split('@').next().unwrap_or(import);
            if WASI_BASELINE.contains(&unversioned) {
                continue;
            }
            let granted = self
                .capabilities
                .iter()
                .any(|c| c.interface() == unversioned);
            if !granted {
                let hint = match unversioned.strip_prefix("tacos:platform/") {
                    Some(name) => format!(
                        "add \"{name}\" to [components.{component}] capabilities to grant it"
                    ),
                    None => "only tacos:platform capabilities and the WASI baseline can be granted"
                        .to_string(),
                };
                bail!(
                    "component `{component}` imports `{import}`, which its policy does not grant ({hint})"
                );
            }
        }
        Ok(())
    }

    pub fn may_call(&self, service: &str) -> bool {
        self.grants(Capability::Rpc) && self.calls.iter().any(|s| s == service)
    }

    pub fn may_send(&self, topic: &str) -> bool {
        self.grants(Capability::Queue) && self.topics.iter().any(|t| t == topic)
    }

    /// Whether a webhook may go to `host:port`; `is_self` says whether that
    /// is this host's own address (which the policy names `self`).
    pub fn may_post_to(&self, host: &str, port: u16, is_self: bool) -> bool {
        self.grants(Capability::Webhook)
            && self.webhook_hosts.iter().any(|h| match h.as_str() {
                "self" => is_self,
                h => h == format!("{host}:{port}") || h == format!("{host}:*"),
            })
    }

    /// A one-line summary for logs and `tacos services`.
    pub fn describe(&self) -> String {
        let caps: Vec<&str> = self.capabilities.iter().map(|c| c.name()).collect();
        format!(
            "capabilities [{}], calls [{}]",
            caps.join(", "),
            self.calls.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default() {
        let p = Policy::parse(
            "[components.a]\ncapabilities = [\"kv\", \"rpc\"]\ncalls = [\"x.v1.S\"]\n",
            "test",
        )
        .unwrap();
        let a = p.for_component("a");
        assert!(
            a.check_imports("a", ["tacos:platform/kv@0.1.0", "wasi:io/streams@0.2.6"])
                .is_ok()
        );
        let err = a
            .check_imports("a", ["tacos:platform/webhook@0.1.0"])
            .unwrap_err();
        assert!(err.to_string().contains("does not grant"), "{err}");
        assert!(a.check_imports("a", ["wasi:sockets/tcp@0.2.0"]).is_err());
        assert!(a.may_call("x.v1.S") && !a.may_call("y.v1.T"));
        let nobody = p.for_component("b");
        assert!(
            nobody
                .check_imports("b", ["tacos:platform/kv@0.1.0"])
                .is_err()
        );
        assert_eq!(nobody.limits(), Limits::default());
    }

    #[test]
    fn webhook_hosts_carry_ports() {
        let p = Policy::parse(
            "[components.a]\ncapabilities = [\"webhook\"]\nwebhook_hosts = [\"self\", \"hooks.example:443\", \"127.0.0.1:*\"]\n",
            "t",
        )
        .unwrap();
        let a = p.for_component("a");
        assert!(a.may_post_to("localhost", 8000, true));
        assert!(!a.may_post_to("localhost", 8001, false));
        assert!(a.may_post_to("hooks.example", 443, false));
        assert!(!a.may_post_to("hooks.example", 80, false));
        assert!(a.may_post_to("127.0.0.1", 9, false));
        for bad in ["localhost", "[::1]", "x:0", "x:", ":80", "x:http"] {
            let text = format!(
                "[components.a]\ncapabilities = [\"webhook\"]\nwebhook_hosts = [\"{bad}\"]\n"
            );
            let err = Policy::parse(&text, "t").unwrap_err();
            assert!(err.to_string().contains("needs a port"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Policy::parse("[components.a]\ncapabilites = []\n", "t").is_err());
    }
}
