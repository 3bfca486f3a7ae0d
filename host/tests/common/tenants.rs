//! Tenancy test helpers: a bundle of the default services and the looper
//! fixture with tenants added, a host on it, and calls to the looper as a
//! given tenant.

use super::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tacos_host::runtime::CallError;

/// The default services and the looper fixture, with `tenants` (TOML) after.
pub fn bundle(dir: &Path, tenants: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let default = std::fs::read_to_string(root.join("bundles/default.toml")).unwrap();
    let services = default
        .split("# Seeded on start-up")
        .next()
        .unwrap()
        .replace("../policies/default.toml", "policy.toml");
    let policy = std::fs::read_to_string(root.join("policies/default.toml")).unwrap()
        + "\n[components.looper]\ncapabilities = [\"config\", \"kv\"]\nlimits = { deadline_ms = 300, memory_mb = 16 }\n";
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let manifest = format!(
        "{services}\n[services.looper]\ncomponent = \"{{components}}/tacos_fixture_looper.wasm\"\nserves = [\"tacos.testing.Looper\"]\n\n{tenants}"
    );
    let path = dir.join("bundle.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// [`bundle`] with `tenants`, whose payment-sim may also post webhooks to
/// `extra` (policy entries such as `127.0.0.1:*`).
pub fn bundle_posting_to(dir: &Path, tenants: &str, extra: &str) -> PathBuf {
    let path = bundle(dir, tenants);
    let policy = dir.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    let granted = format!("webhook_hosts = [\"self\", \"{extra}\"]");
    assert!(text.contains("webhook_hosts = [\"self\"]"), "{text}");
    std::fs::write(
        &policy,
        text.replace("webhook_hosts = [\"self\"]", &granted),
    )
    .unwrap();
    path
}

pub async fn start_tenants(tenants: &str) -> (TestHost, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let path = bundle(files.path(), tenants);
    let t = start_with(|o| o.bundle = Some(path)).await;
    (t, files)
}

/// Call the looper as `tenant`.
pub async fn looper(
    t: &TestHost,
    tenant: &str,
    method: &str,
    req: &str,
) -> Result<Vec<u8>, CallError> {
    let rt = t.host.runtime();
    let ctx = rt.context(
        &rt.tenant(tenant).expect("tenant exists"),
        "trace".into(),
        Duration::from_secs(10),
    );
    rt.call(&ctx, "tacos.testing.Looper", method, req.as_bytes())
        .await
}

pub fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}
