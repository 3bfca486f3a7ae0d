//! Loading a component version: compile (through the cache), check its world
//! and its imports against the policy, and prepare an `InstancePre` so each
//! call only instantiates.
//!
//! Everything that can be wrong with a component is found here, before it
//! serves a single call: not a component, wrong world, an import its policy
//! does not grant, a consumer slot whose component cannot consume.

use super::state::CallState;
use crate::capabilities::bindings::{consumer::ConsumerPre, service::ServicePre};
use crate::foundations::policy::ComponentPolicy;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

const HANDLER: &str = "tacos:platform/handler";
const MESSAGE_HANDLER: &str = "tacos:platform/message-handler";

/// A prepared component, by the world it exports.
#[derive(Clone)]
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
    /// `name@hash`: how responses name the version that served them.
    pub label: String,
    /// Where the bytes came from (a path, a build name, an upload).
    pub origin: String,
    pub prepared: Prepared,
    /// The compiled component (shared, cheap to clone), for preparing it
    /// again under another policy.
    pub component: Component,
    pub policy: Arc<ComponentPolicy>,
    pub config: Arc<BTreeMap<String, String>>,
    /// When this version last became the slot's current one (host clock, ms).
    pub since_ms: AtomicU64,
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

    /// The same component with another config (a config-only swap).
    pub fn with_config(&self, config: BTreeMap<String, String>, now_ms: u64) -> ComponentVersion {
        ComponentVersion {
            name: self.name.clone(),
            hash: self.hash.clone(),
            label: self.label.clone(),
            origin: self.origin.clone(),
            prepared: self.prepared.clone(),
            component: self.component.clone(),
            policy: self.policy.clone(),
            config: Arc::new(config),
            since_ms: AtomicU64::new(now_ms),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The same code and config: swapping one for the other changes nothing.
    pub fn same_as(&self, other: &ComponentVersion) -> bool {
        self.hash == other.hash && self.config == other.config
    }
}

/// What to load.
pub struct LoadRequest<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    /// Where the bytes came from, for messages.
    pub origin: &'a str,
    pub policy: ComponentPolicy,
    pub config: BTreeMap<String, String>,
    pub must_consume: bool,
    pub now_ms: u64,
}

/// SHA-256 of component bytes, hex: a version's identity.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled components by content hash, so a swap to a known component (or
/// back) skips compilation entirely; wasmtime's on-disk cache covers restarts.
#[derive(Default)]
pub struct CompiledCache {
    entries: Mutex<Vec<(String, Component)>>,
}

/// How many compiled components the in-memory cache keeps (most recent first).
const COMPILED_CACHE_ENTRIES: usize = 32;

impl CompiledCache {
    fn get_or_compile(
        &self,
        engine: &Engine,
        hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        if let Some(c) = self.lookup(hash) {
            return Ok(c);
        }
        let component = Component::new(engine, bytes)?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(h, _)| h != hash);
        entries.insert(0, (hash.to_string(), component.clone()));
        entries.truncate(COMPILED_CACHE_ENTRIES);
        Ok(component)
    }

    fn lookup(&self, hash: &str) -> Option<Component> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, c)| c.clone())
    }
}

pub fn load(
    engine: &Engine,
    linker: &Linker<CallState>,
    cache: &CompiledCache,
    req: LoadRequest<'_>,
) -> anyhow::Result<ComponentVersion> {
    let name = req.name;
    let origin = req.origin;
    if !wasmparser_is_component(req.bytes) {
        bail!("service `{name}`: {origin} is not a wasm component (build it for wasm32-wasip2)");
    }
    let hash = content_hash(req.bytes);
    let component = cache
        .get_or_compile(engine, &hash, req.bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("service `{name}`: compiling {origin}"))?;
    prepare(engine, linker, component, hash, req)
}

/// Check a compiled component's world and imports (against `req.policy`) and
/// prepare it; `req.bytes` is not read.
pub fn prepare(
    engine: &Engine,
    linker: &Linker<CallState>,
    component: Component,
    hash: String,
    req: LoadRequest<'_>,
) -> anyhow::Result<ComponentVersion> {
    let name = req.name;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
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
        label: format!("{name}@{hash}"),
        hash,
        origin: req.origin.to_string(),
        prepared,
        component,
        policy: Arc::new(req.policy),
        config: Arc::new(req.config),
        since_ms: AtomicU64::new(req.now_ms),
        calls: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    })
}

/// A component starts with the preamble `\0asm` and layer 1 (core modules have layer 0).
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// `component` with a custom section appended: the same behaviour under a new
/// content hash, as a rebuild would have (tests and benchmarks use it to roll
/// out "new" versions).
pub fn with_custom_section(component: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    let mut out = component.to_vec();
    out.push(0); // section id 0: custom
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
