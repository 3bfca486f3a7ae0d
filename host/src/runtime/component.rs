//! Loading a component version: compile (through the cache), check its world
//! and its imports against the policy, and prepare an `InstancePre` so each
//! call only instantiates.
//!
//! Everything that can be wrong with a component is found here, before it
//! serves a single call: not a component, wrong world, an import its policy
//! does not grant, a consumer slot whose component cannot consume.

use super::bindings::{consumer::ConsumerPre, service::ServicePre};
use crate::capabilities::CallState;
use crate::policy::ComponentPolicy;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

const HANDLER: &str = "tacos:platform/handler";
const MESSAGE_HANDLER: &str = "tacos:platform/message-handler";

/// A prepared component, by the world it exports.
pub enum Prepared {
    Service(ServicePre<CallState>),
    Consumer(ConsumerPre<CallState>),
}

/// One version of a component in a slot.
pub struct ComponentVersion {
    /// The slot name (`payment-sim`): policy entry and kv namespace.
    pub name: String,
    /// SHA-256 of the component bytes, hex.
    pub hash: String,
    pub prepared: Prepared,
    pub policy: Arc<ComponentPolicy>,
    pub config: Arc<BTreeMap<String, String>>,
    pub loaded_at_ms: u64,
    pub calls: AtomicU64,
    pub failures: AtomicU64,
}

impl ComponentVersion {
    pub fn short_hash(&self) -> &str {
        &self.hash[..12.min(self.hash.len())]
    }

    pub fn is_consumer(&self) -> bool {
        matches!(self.prepared, Prepared::Consumer(_))
    }
}

/// What to load.
pub struct LoadRequest<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub policy: ComponentPolicy,
    pub config: BTreeMap<String, String>,
    pub must_consume: bool,
    pub now_ms: u64,
}

fn interface_names(names: impl Iterator<Item = String>) -> Vec<String> {
    names.collect()
}

pub fn load(
    engine: &Engine,
    linker: &Linker<CallState>,
    req: LoadRequest<'_>,
) -> anyhow::Result<ComponentVersion> {
    let name = req.name;
    let bytes = std::fs::read(req.path)
        .with_context(|| format!("service `{name}`: reading {}", req.path.display()))?;
    if !wasmparser_is_component(&bytes) {
        bail!(
            "service `{name}`: {} is not a wasm component (build it for wasm32-wasip2)",
            req.path.display()
        );
    }
    let hash = hex::encode(Sha256::digest(&bytes));
    let component = Component::new(engine, &bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("service `{name}`: compiling {}", req.path.display()))?;
    let ty = component.component_type();
    let imports = interface_names(ty.imports(engine).map(|(n, _)| n.to_string()));
    let exports = interface_names(ty.exports(engine).map(|(n, _)| n.to_string()));
    req.policy
        .check_imports(name, imports.iter().map(String::as_str))?;

    let exports_iface = |iface: &str| exports.iter().any(|e| e.split('@').next() == Some(iface));
    if !exports_iface(HANDLER) {
        bail!(
            "service `{name}`: component does not export `{HANDLER}` (world tacos:platform/service); it exports [{}]",
            exports.join(", ")
        );
    }
    let consumes = exports_iface(MESSAGE_HANDLER);
    if req.must_consume && !consumes {
        bail!(
            "service `{name}` consumes topics, but its component does not export `{MESSAGE_HANDLER}` (world tacos:platform/consumer)"
        );
    }
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("service `{name}`: linking its imports"))?;
    let prepared = if consumes {
        Prepared::Consumer(
            ConsumerPre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("service `{name}`: type-checking against tacos:platform/consumer")
                })?,
        )
    } else {
        Prepared::Service(
            ServicePre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("service `{name}`: type-checking against tacos:platform/service")
                })?,
        )
    };
    Ok(ComponentVersion {
        name: name.to_string(),
        hash,
        prepared,
        policy: Arc::new(req.policy),
        config: Arc::new(req.config),
        loaded_at_ms: req.now_ms,
        calls: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    })
}

/// A component starts with the preamble `\0asm` and layer 1 (core modules have layer 0).
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}
