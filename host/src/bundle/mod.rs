//! Bundles: which component serves which service, with what config and policy.
//!
//! A bundle manifest (`bundles/*.toml`) names, per service slot, its component
//! file, the protobuf services it serves, the topics it consumes and its
//! config; plus the policy file, store settings and demo events to seed.
//! Component paths are relative to the manifest; `{components}` stands for the
//! directory the build put the workspace's components in. The default bundle is
//! compiled into the binary, so `tacos up` works from anywhere.
//!
//! A bundle is a manifest file, a directory holding `bundle.toml`, or an
//! archive made by `tacos bundle pack` (see [`pack`]); a manifest that lists
//! `hashes` has every listed file checked before anything loads.

pub mod pack;

use crate::foundations::policy::Policy;
use crate::store::open::StoreSettings;
use crate::tenancy::{self, ComponentSource, DemoEvent, Quotas, ServiceOverride, TenantSpec};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in bundle: the five services.
pub const DEFAULT_BUNDLE: &str = include_str!("../../../bundles/default.toml");
/// The built-in bundle's policy.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

/// Where the build put the components (see `host/build.rs`).
pub const BUILT_COMPONENTS_DIR: &str = env!("TACOS_COMPONENTS_DIR");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    policy: String,
    #[serde(default)]
    store: StoreSettings,
    services: BTreeMap<String, ServiceManifest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<DemoEvent>,
    /// Every tenant's default quotas.
    #[serde(default, skip_serializing_if = "is_default")]
    quotas: Quotas,
    /// The tenants; one `default` tenant when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tenants: BTreeMap<String, TenantManifest>,
    /// SHA-256 (hex) of files relative to the manifest, checked at load.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    hashes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ServiceManifest {
    component: String,
    serves: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    consumes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    config: BTreeMap<String, String>,
    /// Other builds of this service the host may be swapped to by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    builds: BTreeMap<String, String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A tenant: `[tenants.ID]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantManifest {
    /// What buyers see (the web app's title); the id when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host names that pick the tenant, besides `ID.…`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub quotas: Quotas,
    /// A policy file replacing the bundle's for this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What the tenant changes of the bundle's services.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, TenantServiceManifest>,
    /// Demo events to seed instead of the bundle's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<DemoEvent>>,
    /// The tenant's own token keys (its users are signed by these alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::foundations::auth::TenantAuth>,
}

/// `[tenants.ID.services.NAME]`: a component or build of the tenant's own,
/// and config merged over the bundle's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantServiceManifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// One service slot of a bundle, resolved.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The slot (and component) name, e.g. `payment-sim`: it names the policy
    /// entry and the kv namespace, and stays across versions.
    pub name: String,
    pub component: PathBuf,
    pub serves: Vec<String>,
    pub consumes: Vec<String>,
    pub config: BTreeMap<String, String>,
    /// Named builds for `tacos swap SERVICE --build NAME`.
    pub builds: BTreeMap<String, PathBuf>,
}

/// A loaded bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub origin: String,
    pub policy: Policy,
    pub store: StoreSettings,
    pub services: Vec<ServiceSpec>,
    pub events: Vec<DemoEvent>,
    /// Every tenant's default quotas.
    pub quotas: Quotas,
    /// At least one; `default` alone when the manifest names none.
    pub tenants: Vec<TenantSpec>,
}

impl Bundle {
    /// The bundle compiled into the binary (`bundles/default.toml`).
    pub fn builtin(components_dir: &Path) -> anyhow::Result<Bundle> {
        let policy = Policy::parse(DEFAULT_POLICY, "policies/default.toml (built in)")?;
        Self::parse(
            DEFAULT_BUNDLE,
            "bundles/default.toml (built in)",
            None,
            components_dir,
            Some(policy),
        )
    }

    /// Load a bundle from a manifest, a directory with `bundle.toml`, or an
    /// archive (unpacked once under `unpack_root`, by content).
    pub fn open(path: &Path, components_dir: &Path, unpack_root: &Path) -> anyhow::Result<Bundle> {
        if path.is_dir() {
            let manifest = path.join(pack::MANIFEST);
            if !manifest.is_file() {
                bail!(
                    "bundle directory {} has no {}",
                    path.display(),
                    pack::MANIFEST
                );
            }
            return Self::load(&manifest, components_dir);
        }
        if pack::is_archive(path)? {
            let dir = pack::unpack(path, unpack_root)?;
            return Self::load(&dir.join(pack::MANIFEST), components_dir);
        }
        Self::load(path, components_dir)
    }

    /// Load a bundle manifest from a file.
    pub fn load(path: &Path, components_dir: &Path) -> anyhow::Result<Bundle> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading bundle {}", path.display()))?;
        Self::parse(
            &text,
            &path.display().to_string(),
            path.parent(),
            components_dir,
            None,
        )
    }

    /// A manifest's text (files relative to `base`), as [`Bundle::load`]
    /// reads it from a file.
    pub fn parse_manifest(
        text: &str,
        origin: &str,
        base: &Path,
        components_dir: &Path,
    ) -> anyhow::Result<Bundle> {
        Self::parse(text, origin, Some(base), components_dir, None)
    }

    fn parse(
        text: &str,
        origin: &str,
        base: Option<&Path>,
        components_dir: &Path,
        policy: Option<Policy>,
    ) -> anyhow::Result<Bundle> {
        let m: Manifest =
            toml::from_str(text).with_context(|| format!("parsing bundle {origin}"))?;
        let resolve = |p: &str| resolve(p, base, components_dir);
        for (file, expected) in &m.hashes {
            let path = resolve(file);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("bundle {origin}: reading {}", path.display()))?;
            let actual = hex::encode(Sha256::digest(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                bail!(
                    "bundle {origin}: {file} has SHA-256 {actual}, but the manifest records {expected}: the bundle was changed after packing"
                );
            }
        }
        let unhashed = |file: &str| !m.hashes.is_empty() && !m.hashes.contains_key(file);
        let policy = match policy {
            Some(p) => p,
            None => Policy::load(&resolve(&m.policy))?,
        };
        m.store
            .backends()
            .map_err(|e| anyhow::anyhow!("bundle {origin}: [store]: {e}"))?;
        let mut services = Vec::new();
        for (name, s) in m.services {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!(
                    "bundle {origin}: service name `{name}` must be lowercase letters, digits and '-'"
                );
            }
            if s.serves.is_empty() {
                bail!("bundle {origin}: service `{name}` serves no protobuf service");
            }
            if let Some(file) = std::iter::once(&s.component)
                .chain(s.builds.values())
                .find(|f| unhashed(f))
            {
                bail!(
                    "bundle {origin}: service `{name}`: {file} is not among the manifest's hashes"
                );
            }
            let component = resolve(&s.component);
            if !component.is_file() {
                bail!(
                    "bundle {origin}: service `{name}`: component file {} does not exist (build it with `cargo build`)",
                    component.display()
                );
            }
            let mut builds = BTreeMap::new();
            for (build, path) in &s.builds {
                let path = resolve(path);
                if !path.is_file() {
                    bail!(
                        "bundle {origin}: service `{name}`: build `{build}`: component file {} does not exist",
                        path.display()
                    );
                }
                builds.insert(build.clone(), path);
            }
            services.push(ServiceSpec {
                name,
                component,
                serves: s.serves,
                consumes: s.consumes,
                config: s.config,
                builds,
            });
        }
        for (i, a) in services.iter().enumerate() {
            for b in &services[..i] {
                if let Some(dup) = a.serves.iter().find(|s| b.serves.contains(s)) {
                    bail!(
                        "bundle {origin}: `{dup}` is served by both `{}` and `{}`",
                        b.name,
                        a.name
                    );
                }
                if let Some(dup) = a.consumes.iter().find(|t| b.consumes.contains(t)) {
                    bail!(
                        "bundle {origin}: topic `{dup}` is consumed by both `{}` and `{}`",
                        b.name,
                        a.name
                    );
                }
            }
        }
        if let Some(unknown) = m
            .store
            .kv_per_service
            .keys()
            .find(|s| !services.iter().any(|spec| &spec.name == *s))
        {
            bail!(
                "bundle {origin}: [store.kv_per_service] names `{unknown}`, which is not a service"
            );
        }
        m.quotas
            .check()
            .map_err(|e| anyhow::anyhow!("bundle {origin}: [quotas]: {e}"))?;
        let mut tenants = Vec::new();
        for (id, t) in m.tenants {
            let spec = tenant_spec(&id, t, &resolve, &unhashed)
                .with_context(|| format!("bundle {origin}: tenant `{id}`"))?;
            tenants.push(spec);
        }
        if tenants.is_empty() {
            tenants.push(TenantSpec::plain(tenancy::DEFAULT_TENANT));
        }
        Ok(Bundle {
            origin: origin.to_string(),
            policy,
            store: m.store,
            services,
            events: m.events,
            quotas: m.quotas,
            tenants,
        })
    }
}

/// Check and resolve one `[tenants.ID]`.
fn tenant_spec(
    id: &str,
    t: TenantManifest,
    resolve: &dyn Fn(&str) -> PathBuf,
    unhashed: &dyn Fn(&str) -> bool,
) -> anyhow::Result<TenantSpec> {
    tenancy::check_id(id).map_err(anyhow::Error::msg)?;
    t.quotas.check().map_err(anyhow::Error::msg)?;
    let policy = match &t.policy {
        Some(file) => Some(Policy::load(&resolve(file))?),
        None => None,
    };
    let mut overrides = std::collections::BTreeMap::new();
    // Only syntax here: whether the service and build exist and the file
    // can be read is the runtime's to say when the tenant is applied.
    for (name, s) in t.services {
        let component = match (s.component, s.build) {
            (Some(_), Some(_)) => bail!("service `{name}`: give `component` or `build`, not both"),
            (Some(file), None) => {
                if unhashed(&file) {
                    bail!("service `{name}`: {file} is not among the manifest's hashes");
                }
                Some(ComponentSource::File(resolve(&file)))
            }
            (None, Some(build)) => Some(ComponentSource::Build(build)),
            (None, None) => None,
        };
        overrides.insert(
            name,
            ServiceOverride {
                component,
                config: s.config,
            },
        );
    }
    Ok(TenantSpec {
        id: id.to_string(),
        name: t.name,
        hosts: t.hosts,
        quotas: t.quotas,
        policy,
        services: overrides,
        events: t.events,
        auth: t.auth,
    })
}

/// A manifest path, `{components}` expanded, relative to the manifest's directory.
fn resolve(p: &str, base: Option<&Path>, components_dir: &Path) -> PathBuf {
    let expanded = p.replace("{components}", &components_dir.display().to_string());
    match base {
        Some(b) if Path::new(&expanded).is_relative() => b.join(expanded),
        _ => PathBuf::from(expanded),
    }
}
